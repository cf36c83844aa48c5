"""The offline procedure of docs/audit-events.md, run as written (the Python block extracted from the
doc) on a range downloaded through the API, with the public key and nothing of Countersign."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import audit
from audit import signing
from audit.seals import seal
from tests.audit.rawsql import drop_triggers, rolled_back
from tests.audit.sealtools import rewrite_event, signing_key  # noqa: F401 (fixture)

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-events.md"
EVENTS = "/api/v1/audit-events/"


def the_documented_script(tmp_path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    script = [b for b in blocks if b.startswith("# verify_trail.py")]
    assert len(script) == 1
    path = tmp_path / "verify_trail.py"
    path.write_text(script[0])
    return path


def download(client, first: int, last: int, tmp_path) -> list[Path]:
    """Steps 1 and 2 of the procedure, through the API's links only."""
    events, url = [], f"{EVENTS}?order=asc&after={first - 1}&limit=4"
    while url:
        body = client.get(url).json()
        for event in body["results"]:
            events.append(event)
            if event["action"] == "audit.sealed" and event["data"]["sequence"] >= last:
                url = None
                break
        else:
            url = body["next"]
    files = [tmp_path / "range.json"]
    files[0].write_text(json.dumps(events, ensure_ascii=False))
    announcement = events[-1]
    if announcement["data"]["number"] > 1:
        previous = client.get(f"{EVENTS}?action=audit.sealed&before={announcement['sequence']}&limit=1").json()
        files.append(tmp_path / "previous.json")
        files[1].write_text(json.dumps(previous["results"]))
    return files


@pytest.fixture
def offline(demo, api_as, signing_key, tmp_path):  # noqa: F811
    for n in range(3):
        audit.record("test.step", data={"n": n, "text": "zürich ✓"})
    seal()
    for n in range(3, 8):
        audit.record("test.step", data={"n": n})
    second = seal()
    key = tmp_path / "public_key.pem"
    key.write_text(signing.public_key_pem())
    script = the_documented_script(tmp_path)

    def run(files):
        return subprocess.run([sys.executable, str(script), str(files[0]), str(key), *map(str, files[1:])],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)

    return api_as(demo.auditor), second, run


def test_a_downloaded_range_verifies_offline(offline, tmp_path):
    client, second, run = offline
    files = download(client, second.sequence - 4, second.sequence - 2, tmp_path)

    result = run(files)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"verified, sealed by seal {second.number}" in result.stdout


def test_a_changed_or_missing_event_fails_offline(offline, tmp_path):
    client, second, run = offline
    files = download(client, second.sequence - 4, second.sequence - 2, tmp_path)
    events = json.loads(files[0].read_text())

    changed = [dict(e) for e in events]
    changed[1]["data"] = {"n": 999}
    files[0].write_text(json.dumps(changed))
    assert run(files).returncode == 1
    assert "content does not match its hash" in run(files).stdout

    files[0].write_text(json.dumps(events[:1] + events[2:]))
    assert "is missing" in run(files).stdout

    files[0].write_text(json.dumps(events))
    assert run(files[:1]).returncode == 1  # seal 2 needs seal 1's announcement


def test_a_rewritten_trail_with_every_hash_recomputed_fails_offline(offline, tmp_path):
    client, second, run = offline
    with rolled_back():
        drop_triggers()
        rewrite_event(second.sequence - 3, {"rewritten": True})
        files = download(client, second.sequence - 4, second.sequence - 2, tmp_path)

    result = run(files)

    assert result.returncode == 1
    assert "head_hash is not the hash of event" in result.stdout


def test_another_key_fails_offline(offline, tmp_path):
    from tests.audit.sealtools import other_key, pem_of

    client, second, run = offline
    files = download(client, second.sequence - 4, second.sequence - 2, tmp_path)
    (tmp_path / "public_key.pem").write_bytes(pem_of(other_key()))

    result = run(files)

    assert result.returncode == 1 and "not this key" in result.stdout
