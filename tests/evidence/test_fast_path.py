"""The exporter's fast paths change how rows are read and written, never what the bundle holds:
PostgreSQL timestamps read by ``datetime.fromisoformat`` are the very values Django's own loader
gives, and the background ZIP thread writes the same bytes as writing in line, and hands its
errors back."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection

from compliance.evidence import builder, services as evidence_services, writer
from audit.models import EvidenceExport
from governance import duties, services as governance
from governance.models import Role
from releases.models import RevisionContributor
from tests.evidence.conftest import build_export, deploy_in

UTC = dt_timezone.utc
DATASET_FILES = ("production_deployments", "role_grants", "access_reviews", "leavers", "changes", "audit_events",
                 "alerts", "conflict_rules", "sod_exceptions", "control_changes")

MOMENTS = [
    "2026-03-01 10:00:00+00",            # no fraction
    "2026-03-01 10:00:00.1+00",          # PostgreSQL trims trailing zeros
    "2026-03-01 10:00:00.000001+00",
    "2026-03-01 10:00:00.999999+00",
    "1999-12-31 23:59:59.5+05:30",       # another offset: converted to the connection's zone
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "infinity",                          # fromisoformat cannot: Django's loader answers (or refuses) alike
    "2000-01-01 00:00:00 BC",
]


def _load(sql_value: str):
    with connection.cursor() as cursor:
        try:
            cursor.execute("SELECT %s::timestamptz", [sql_value])
            return ("value", cursor.fetchone()[0])
        except Exception as exc:  # noqa: BLE001 — compared, not hidden
            return ("error", type(exc).__name__)


@pytest.mark.postgres
@pytest.mark.django_db
def test_fast_timestamps_load_exactly_what_django_loads():
    expected = [_load(m) for m in MOMENTS]
    with builder.fast_timestamps():
        fast = [_load(m) for m in MOMENTS]
    assert fast == expected
    for (kind, value), (_, fast_value) in zip(expected, fast, strict=True):
        if kind == "value":
            assert fast_value.tzinfo == value.tzinfo and fast_value.utcoffset() == value.utcoffset()
    assert _load(MOMENTS[1]) == expected[1]  # the connection's own loader is back afterwards
    loader = connection.connection.adapters.get_loader(1184, 0)
    assert "Fast" not in loader.__name__


def _members(bundle) -> dict:
    return {n: b for n, b in bundle.members.items() if n.rsplit(".", 1)[0] in DATASET_FILES}


def _seed(demo, period):
    """Rows that exercise every branch of the deployment and grant rows: an SoD exception, a
    policy version, a formula title, microsecond and whole-second times, a contributor."""
    at = period.middle.replace(microsecond=0)
    exception = governance.sod_exception_request(
        actor=demo.mgr, user=demo.rev2, duty_a=duties.APPROVE, duty_b=duties.DEPLOY, environment=demo.production,
        justification="cover", expires_at=at + timedelta(days=20), at=at - timedelta(hours=2),
    )
    governance.sod_exception_approve(actor=demo.sec, exception=exception, at=at - timedelta(hours=2))
    grant = governance.role_grant(
        actor=demo.mgr, user=demo.rev2, role=Role.objects.get(slug="operations"), team=demo.payments,
        environment=demo.production, justification="weekend", expires_at=at + timedelta(days=10),
        at=at - timedelta(hours=1),
    )
    governance.role_assignment_approve(actor=demo.sec, assignment=grant, at=at - timedelta(hours=1))
    deploy_in(demo, demo.production, at, title='=HYPERLINK("http://x","y")', approvers=(demo.rev, demo.rev2))
    cr, _ = deploy_in(demo, demo.production, at + timedelta(microseconds=120))
    cr.contributors.add(demo.dev2)
    RevisionContributor.objects.create(change_request=cr, revision=cr.revision, user=demo.dev2)


@pytest.mark.django_db
@pytest.mark.parametrize("framework", ["sox", "iso27001", "hipaa"])
def test_fast_paths_write_the_same_bundle_content(demo, period, bundle_of, monkeypatch, framework):
    _seed(demo, period)
    fast = bundle_of(build_export(demo, framework, period))

    @builder.contextmanager
    def plain_loader():
        yield

    monkeypatch.setattr(builder, "fast_timestamps", plain_loader)
    monkeypatch.setattr(builder, "ZipPipe", lambda: writer.ZipPipe(threaded=False))
    plain = bundle_of(build_export(demo, framework, period))

    fast_members, plain_members = _members(fast), _members(plain)
    assert set(fast_members) == set(plain_members) and fast_members
    for name in fast_members:
        if name.startswith("audit_events"):  # the second export's own request event is one more row
            continue
        assert fast_members[name] == plain_members[name], name
    assert fast.manifest["row_counts"].keys() == plain.manifest["row_counts"].keys()


def test_zip_pipe_runs_in_order_and_hands_back_errors():
    done = []
    pipe = writer.ZipPipe(depth=2)
    for i in range(10):
        pipe.submit(done.append, i)
    pipe.close()
    assert done == list(range(10))

    def fail(_):
        raise OSError("disk full")

    pipe = writer.ZipPipe(depth=2)
    pipe.submit(fail, 1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):  # the error surfaces at a later submit, or at close
            pipe.submit(done.append, i)
        pipe.close()


@pytest.mark.django_db
def test_a_failure_in_the_zip_thread_fails_the_export_cleanly(demo, period, monkeypatch, settings):
    deploy_in(demo, demo.production, period.middle)

    def broken(self, csv_bytes, json_bytes):
        raise OSError("disk full")

    monkeypatch.setattr(writer.DatasetWriter, "_write", broken)
    export = evidence_services.export_request(
        actor=demo.auditor, framework="sox", period_start=period.start, period_end=period.end
    )
    assert builder.build(export.pk) == EvidenceExport.Status.FAILED
    export.refresh_from_db()
    assert "OSError" in export.error
    assert list(settings.EVIDENCE_ROOT.iterdir()) == []


def test_iso_is_the_same_on_every_path():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert writer.iso(moment) == "2026-01-02T03:04:05Z"
    assert writer.iso(moment.replace(microsecond=120)) == "2026-01-02T03:04:05.000120Z"
    other = moment.astimezone(dt_timezone(timedelta(hours=2)))
    assert writer.iso(other) == "2026-01-02T03:04:05Z"
