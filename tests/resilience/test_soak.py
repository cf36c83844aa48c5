"""Issue 7, point 5, bounded for CI: bench/soak.py with 50 clients for 20 seconds (``make soak`` runs
the full 60). No 5xx, every acknowledged write has its audit event and row and no event lacks an
acknowledged write, and the audit chain verifies afterwards."""
import json
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from tests.resilience.servers import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.resilience]
USERS, SECONDS = 50, 20


def _soak_url() -> str:
    db = settings.DATABASES["default"]
    base = f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/"
    return urlunsplit(urlsplit(base)._replace(path=f"/{db['NAME']}_soak"))


def test_fifty_clients_lose_no_write_and_see_no_5xx(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--users", str(USERS), "--duration", str(SECONDS),
         "--workers", "2", "--database-url", _soak_url(), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    print(run.stdout)
    assert out.exists(), run.stdout + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["requests"] >= USERS, result
    assert result["server_errors_5xx"] == 0 and result["no_answer"] == 0, result["tally"]
    assert result["writes_ok"] > 0 and set(result["writes_by_kind"].values()) != {0}, result
    assert result["writes_lost"] == 0 and result["writes_unacknowledged"] == 0, result
    assert result["audit_events_by_kind"] == result["writes_by_kind"] == result["rows_by_kind"], result
    assert result["audit_verify_ok"], result["audit_verify"]
    assert result["web_alive_after"]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
