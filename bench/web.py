"""The served half of ``make bench``: gunicorn as in production (Procfile) and load from a separate
locust process on 127.0.0.1, plus sequential page timings. Nothing here imports Django: it only
starts processes and reads what they report."""
import csv
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCUSTFILES = ROOT / "bench" / "locustfiles"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``gunicorn config.wsgi`` with the bench's environment; a context manager that waits for
    ``/healthz`` and stops the server (its process group) on exit."""

    def __init__(self, env: dict, *, workers: int, port: int | None = None):
        self.env, self.workers, self.port = env, workers, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])

    def __enter__(self):
        cmd = [str(BIN / "gunicorn"), "config.wsgi", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
               "--timeout", "120", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:  # http://127.0.0.1  # nosec B310
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /healthz: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _num(value: str) -> float:
    """Locust writes N/A for a percentile of no successful request."""
    try:
        return float(value)
    except ValueError:
        return float("nan")


def locust(locustfile: str, *, host: str, users: int, seconds: int, plan: Path, target: str) -> dict:
    """Run ``locustfile`` headless in its own process (all users started at once) and return the
    aggregated requests/s, p50/p95 (ms), request and failure counts, and the first failures."""
    out = Path(tempfile.mkdtemp(prefix="bench-locust-"))
    env = {**os.environ, "BENCH_PLAN": str(plan), "BENCH_TARGET": target, "PYTHONPATH": str(ROOT)}
    cmd = [str(BIN / "locust"), "-f", str(LOCUSTFILES / locustfile), "--headless", "--only-summary",
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "10",
           "--host", host, "--csv", str(out / "run"), "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
    stats = {}
    with (out / "run_stats.csv").open() as fh:
        for row in csv.DictReader(fh):
            stats[row["Name"]] = row
    total = stats["Aggregated"]
    failures = []
    failures_csv = out / "run_failures.csv"
    if failures_csv.exists():
        with failures_csv.open() as fh:
            failures = [f"{r['Name']}: {r['Error']} (x{r['Occurrences']})" for r in csv.DictReader(fh)][:5]
    if run.returncode != 0 and not stats:
        raise RuntimeError(f"locust failed: {run.stderr[-2000:]}")
    return {
        "rps": _num(total["Requests/s"]),
        "p50_ms": _num(total["50%"]),
        "p95_ms": _num(total["95%"]),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "by_name": {name: {"requests": int(r["Request Count"]), "rps": _num(r["Requests/s"]),
                           "p95_ms": _num(r["95%"])} for name, r in stats.items() if name != "Aggregated"},
        "failure_samples": failures,
    }


def merge(runs: list[dict]) -> dict:
    """Several locust runs of the same target as one: counts added, rates and percentiles averaged."""
    def mean(key, items):
        values = [r[key] for r in items if r["requests"]]
        return sum(values) / len(values) if values else float("nan")

    names = {name for r in runs for name in r["by_name"]}
    return {
        "rps": mean("rps", runs), "p50_ms": mean("p50_ms", runs), "p95_ms": mean("p95_ms", runs),
        "requests": sum(r["requests"] for r in runs), "failures": sum(r["failures"] for r in runs),
        "by_name": {name: {"requests": sum(r["by_name"].get(name, {}).get("requests", 0) for r in runs),
                           "rps": mean("rps", [r["by_name"][name] | {"requests": 1} for r in runs
                                               if name in r["by_name"]]),
                           "p95_ms": mean("p95_ms", [r["by_name"][name] | {"requests": 1} for r in runs
                                                     if name in r["by_name"]])}
                    for name in names},
        "failure_samples": [f for r in runs for f in r["failure_samples"]][:5],
        "rounds": len(runs),
    }


def page_timings(urls: dict[str, str], *, cookie: str, count: int, warmup: int = 3) -> dict:
    """Fetch each of ``urls`` ``count`` times, one request at a time and the pages taking turns
    (one client: latency, not throughput; a change in the machine's load hits every page alike).
    Returns p50 and p95 in milliseconds per name. Any answer but 200 at that URL is an error."""
    samples = {name: [] for name in urls}
    sizes = {}
    for n in range(warmup + count):
        for name, url in urls.items():
            request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "text/html"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:  # the bench's own server  # nosec B310
                body = response.read()
                if response.status != 200 or response.geturl() != url:
                    raise RuntimeError(f"{url}: HTTP {response.status} at {response.geturl()} (not signed in?)")
            if n >= warmup:
                samples[name].append((time.perf_counter() - started) * 1000)
            sizes[name] = len(body)
    result = {}
    for name, values in samples.items():
        values.sort()
        result[name] = {"p50_ms": statistics.median(values), "p95_ms": values[int(0.95 * (len(values) - 1))],
                        "bytes": sizes[name], "requests": len(values)}
    return result
