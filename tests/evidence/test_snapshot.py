"""One snapshot per bundle (issue 15, RULES.md L3): every dataset is read from the same database
state, so a row committed while the bundle is being built appears in every dataset it belongs to
or in none; the manifest names the chain head that snapshot saw; progress is written on a
connection of its own, so another connection sees it move while the bundle is built."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

import audit
from audit.models import ChainHead, EvidenceExport
from compliance.evidence import builder
from governance.models import Role, RoleAssignment
from tests.evidence.conftest import build_export, deploy_in
from tests.factories import UserFactory


def _in_another_connection(work):
    """Run ``work`` in a thread (its own database connection), committed, and return its result."""
    found = {}

    def run():
        try:
            with transaction.atomic():
                found["result"] = work()
        except BaseException as exc:  # handed back to the test
            found["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in found:
        raise found["error"]
    return found.get("result")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_committed_between_two_datasets_is_in_both_or_neither(demo, period, bundle_of, monkeypatch, settings):
    settings.EVIDENCE_BATCH_SIZE = 1
    deploy_in(demo, demo.production, period.middle)
    leaver = UserFactory(username="leaver", is_active=False)
    role = Role.objects.get(slug="reviewer")
    original = builder._write_dataset
    seen = {}

    def commit_a_grant_after(ctx, export, dataset, *args):
        summary = original(ctx, export, dataset, *args)
        if dataset.name == "role_grants":  # read; leavers (where the same grant belongs) is next
            def write():
                head = ChainHead.objects.get(pk=1).sequence
                grant = RoleAssignment.objects.create(
                    user=leaver, role=role, team=demo.payments, environment=demo.production, justification="late",
                    status=RoleAssignment.Status.ACTIVE, requested_by=demo.mgr, created_at=period.middle,
                    approved_at=period.middle, expires_at=period.middle + timedelta(days=30),
                )
                audit.record("role.granted", target=grant, data={"grant": grant.pk})
                return grant.pk, EvidenceExport.objects.get(pk=export.pk).progress, head

            seen["grant"], seen["progress"], seen["head"] = _in_another_connection(write)
        return summary

    monkeypatch.setattr(builder, "_write_dataset", commit_a_grant_after)
    bundle = bundle_of(build_export(demo, "sox", period))

    grant = seen["grant"]
    assert RoleAssignment.objects.filter(pk=grant).exists()  # committed while the bundle was built
    in_grants = grant in {r["grant_id"] for r in bundle.json_rows("role_grants")}
    in_leavers = grant in {r["grant_id"] for r in bundle.json_rows("leavers")}
    assert (in_grants, in_leavers) == (False, False)
    assert bundle.manifest["snapshot"]["isolation"].startswith("REPEATABLE READ")
    assert bundle.manifest["snapshot"]["chain_head"] == bundle.manifest["audit_chain_head"]
    assert bundle.manifest["snapshot"]["chain_head"]["sequence"] == seen["head"]  # not the grant's event
    assert ChainHead.objects.get(pk=1).sequence > seen["head"]
    # Progress was written outside the snapshot: the other connection saw it move mid-build.
    assert 0 < seen["progress"] < 100

    # The next bundle sees the grant, in both datasets.
    monkeypatch.setattr(builder, "_write_dataset", original)
    later = bundle_of(build_export(demo, "sox", period))
    assert grant in {r["grant_id"] for r in later.json_rows("role_grants")}
    assert grant in {r["grant_id"] for r in later.json_rows("leavers")}
