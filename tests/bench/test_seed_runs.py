"""Running the generator: deterministic, refuses a second run, the command, and the COPY path."""
import hashlib
import io
from datetime import datetime, timezone as dt_timezone

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from audit.chain import verify
from audit.models import AuditEvent
from bench import seed as bench_seed
from releases.models import Approval, ChangeRequest, Deployment
from tests.bench.conftest import TINY

ANCHOR = datetime(2026, 3, 2, 12, tzinfo=dt_timezone.utc)


class _Undo(Exception):
    pass


def _fingerprint() -> tuple:
    rows = hashlib.sha256()
    for queryset in (
        ChangeRequest.objects.order_by("pk").values_list("pk", "state", "author_id", "artifact", "created_at"),
        Approval.objects.order_by("pk").values_list("pk", "change_request_id", "reviewer_id", "stale"),
        Deployment.objects.order_by("pk").values_list("pk", "deployer_id", "state", "started_at"),
    ):
        for row in queryset:
            rows.update(repr(row).encode())
    return AuditEvent.objects.order_by("-sequence").values_list("hash", flat=True).first(), rows.hexdigest()


def _seed_and_forget():
    """Seed TINY at a fixed anchor, fingerprint it, and roll it back (an empty database again)."""
    try:
        with transaction.atomic():
            counts = bench_seed.seed(TINY, anchor=ANCHOR)
            result = (counts, _fingerprint())
            raise _Undo
    except _Undo:
        return result


def test_same_scale_and_anchor_give_the_same_rows_and_chain(db):
    first_counts, first = _seed_and_forget()
    assert not ChangeRequest.objects.exists() and not AuditEvent.objects.exists()
    second_counts, second = _seed_and_forget()
    assert first == second
    assert first_counts["chain_head"] == second_counts["chain_head"] == first[0]
    assert first_counts["AuditEvent"] == TINY["audit_events"] and first_counts["Approval"] == TINY["approvals"]


def test_the_command_prints_counts_and_refuses_a_second_run(db, monkeypatch):
    monkeypatch.setitem(bench_seed.SCALES, "small", TINY)
    out = io.StringIO()
    call_command("bench_seed", "--scale", "small", stdout=out)
    text = out.getvalue()
    assert f"AuditEvent: {TINY['audit_events']:,}" in text and "Seeded scale small" in text
    assert "bench-ops" in text and f"{TINY['queue_pending']} change requests await approval" in text
    with pytest.raises(CommandError, match="already holds bench data"):
        call_command("bench_seed", "--scale", "small", stdout=io.StringIO())
    assert AuditEvent.objects.count() == TINY["audit_events"]


def test_inconsistent_scales_are_refused(db):
    with pytest.raises(ValueError, match="multiple of 3"):
        bench_seed.seed({**TINY, "environments": 4})
    with pytest.raises(ValueError, match="deployed at most once"):
        bench_seed.seed({**TINY, "deployments": TINY["change_requests"] + 1})
    assert not ChangeRequest.objects.exists()


@pytest.mark.postgres
def test_copy_path_on_postgresql_writes_a_chain_that_verifies(db):
    from django.db import connection

    assert connection.vendor == "postgresql"
    counts = bench_seed.seed(TINY, anchor=ANCHOR)
    assert AuditEvent.objects.count() == counts["AuditEvent"] == TINY["audit_events"]
    assert verify() == (TINY["audit_events"], None)
    # The sequences were moved past the copied ids: the next service insert gets a fresh id.
    fixtures = bench_seed.bench_fixtures()
    assert max(fixtures["pending"]) < ChangeRequest.objects.create(
        title="after", team_id=fixtures["team"], environment_id=fixtures["environment"], artifact="a",
        author_id=fixtures["users"]["bench-dev"]).pk
