"""Throwaway servers for the outage tests: a Redis, a PostgreSQL cluster and gunicorn, each a child
process of the test on a free 127.0.0.1 port, so stopping them never touches the machine's shared
PostgreSQL (5432) or Redis (6379). Used by tests/resilience and by bench/soak.py."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.waiting import wait_for  # noqa: F401 - the tests here import it from this module

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class RedisServer:
    """``redis-server`` without persistence on its own port; ``stop()`` and ``start()`` again is an outage."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process = None

    def start(self) -> "RedisServer":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: _port_open(self.port) or self.process.poll() is not None, timeout=20, what="redis-server")
        assert self.process.poll() is None, self.log_path.read_text(errors="replace")[-2000:]
        return self

    def stop(self) -> None:
        _stop(self.process)
        wait_for(lambda: not _port_open(self.port), timeout=10, what="redis-server to stop")


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise FileNotFoundError(f"no PostgreSQL {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class PostgresCluster:
    """A PostgreSQL cluster of its own (``initdb`` in a temporary directory, trust auth, its own port).

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` system user."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="countersign-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args, timeout: float = 120):
        subprocess.run([*self._as, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def init(self) -> "PostgresCluster":
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log_path), "-w",
                  "start")

    def stop(self) -> None:
        """``-m fast``: open sessions are cut off, as in a real restart or failover."""
        if (self.data / "postmaster.pid").exists():
            self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def createdb(self, name: str) -> None:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name], check=True)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def server_env(database_url: str, var_dir: Path, **extra) -> dict:
    """The environment of a production-shaped process (DEBUG off) on ``database_url``."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "resilience-test-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "COUNTERSIGN_VAR_DIR": str(var_dir),
        "SIGNING_KEY_AUTOGENERATE": "1",
        "THROTTLE_USER_RATE": "100000/min",
        "THROTTLE_ANON_RATE": "100000/min",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("COUNTERSIGN_AUDIT_PURGE_ALLOWED", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env: dict, *args, timeout: float = 600) -> str:
    """Run ``manage.py`` in its own process; returns stdout, raises with the output on failure."""
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


class Gunicorn:
    """The Procfile's ``web`` process: ``gunicorn config.wsgi`` with ``workers`` processes."""

    def __init__(self, env: dict, log_path: Path, workers: int = 2):
        self.env, self.log_path, self.workers = env, log_path, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout: float = 60) -> "Gunicorn":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers",
             str(self.workers), "--timeout", "120", "--graceful-timeout", "10"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: self.process.poll() is not None or self.get("/healthz")[0] == 200, timeout=timeout,
                 what=f"gunicorn on :{self.port}")
        assert self.process.poll() is None, self.log()
        return self

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def get(self, path: str, token: str | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        return self.request("GET", path, token=token, timeout=timeout)

    def request(self, method: str, path: str, token: str | None = None, body: dict | None = None,
                cookie: str | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        """(status, headers, body); status 0 when nothing answered at all. With ``cookie`` the request
        is a browser's (session cookie, HTML accepted); otherwise an API client's."""
        headers = {"Accept": "text/html" if cookie else "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        if cookie:
            headers["Cookie"] = cookie
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
        except OSError:
            return 0, {}, b""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _stop(self.process, timeout=30)
