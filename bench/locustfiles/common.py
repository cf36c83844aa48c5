"""What every locustfile reads: the plan the bench wrote for this run (JSON file named by
``BENCH_PLAN``), so the load process needs no database access and no Django."""
import json
import os


def plan() -> dict:
    with open(os.environ["BENCH_PLAN"]) as fh:
        return json.load(fh)


def auth(token: str) -> dict:
    return {"Authorization": f"Token {token}", "Accept": "application/json"}
