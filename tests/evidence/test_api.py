"""``/api/v1/evidence-exports/`` (API.md, RULES.md L3, V3): holders of export_evidence request,
follow, download and retry exports; everyone else is refused with nothing written; bad input is a
400 with field messages, a wrong state a 409, never a 500."""
from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.evidence.services import MAX_PERIOD_DAYS
from audit.models import AuditEvent, EvidenceExport
from tests.evidence.export_rows import export_row, small_zip

URL = "/api/v1/evidence-exports/"
OTHERS = ["dev", "rev", "ops", "mgr", "sec", "idev"]


@pytest.fixture
def nothing_written(db):
    """``with nothing_written():`` — no export and no audit event was added or changed."""
    from contextlib import contextmanager

    @contextmanager
    def guard():
        def state():
            return (list(EvidenceExport.objects.order_by("pk").values_list("pk", "status", "progress", "error")),
                    AuditEvent.objects.count())

        before = state()
        yield
        assert state() == before

    return guard


@pytest.fixture
def builds(monkeypatch):
    """The export ids handed to the build task (which is not run: the builder is tested apart)."""
    from compliance.tasks import build_evidence_export

    handed = []
    monkeypatch.setattr(build_evidence_export, "delay", handed.append)
    return handed


def codes(response) -> list[str]:
    return [reason["code"] for reason in response.json()["reasons"]]


def body(**overrides):
    today = timezone.now().date()
    return {"framework": "sox", "period_start": str(today - timedelta(days=30)), "period_end": str(today),
            **overrides}


# --- Requesting ----------------------------------------------------------------------------------


def test_the_auditor_requests_an_export_and_it_is_queued_and_audited(
    demo, api_as, builds, django_capture_on_commit_callbacks
):
    client = api_as(demo.auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body(framework="hipaa"), format="json")

    assert response.status_code == 202, response.content
    export = EvidenceExport.objects.get()
    assert response.json()["id"] == export.pk
    assert response.json()["status"] == "queued"
    assert response.json()["download_url"] is None
    assert (export.framework, export.requested_by, export.status) == ("hipaa", demo.auditor, "queued")
    assert export.period_end == timezone.now().date()
    event = AuditEvent.objects.get(action="evidence.export_requested")
    assert (event.actor_username, event.target_id) == ("auditor", str(export.pk))
    assert event.data["framework"] == "hipaa"
    assert builds == [export.pk], "the build is handed to a worker once the row is committed"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"framework": None}, "framework"),
        ({"framework": "pci"}, "framework"),
        ({"period_start": None}, "period_start"),
        ({"period_end": None}, "period_end"),
        ({"period_start": "2025-02-30"}, "period_start"),
        ({"period_end": "yesterday"}, "period_end"),
        ({"period_start": "2025-03-01", "period_end": "2025-02-01"}, "period_end"),
        ({"period_start": "2023-01-01", "period_end": "2025-01-01"}, "period_end"),
        ({"period_start": "9999-12-01", "period_end": "9999-12-31"}, "period_start"),
        ({"period_start": "0001-01-01", "period_end": "9999-12-31"}, "period_end"),
    ],
    ids=["no-framework", "bad-framework", "no-start", "no-end", "bad-date", "not-a-date", "reversed", "too-long",
         "future", "absurd"],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(demo, api_as, nothing_written, overrides, field):
    data = {key: value for key, value in body(**overrides).items() if value is not None}

    client = api_as(demo.auditor)
    with nothing_written():
        response = client.post(URL, data, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert all(isinstance(message, str) for message in response.json()[field])


def test_the_longest_period_allowed_is_accepted_and_one_day_more_is_not(demo, api_as):
    today = timezone.now().date()
    client = api_as(demo.auditor)

    longest = client.post(URL, body(period_start=str(today - timedelta(days=MAX_PERIOD_DAYS - 1))), format="json")
    too_long = client.post(URL, body(period_start=str(today - timedelta(days=MAX_PERIOD_DAYS))), format="json")

    assert longest.status_code == 202
    assert too_long.status_code == 400 and "period_end" in too_long.json()
    assert EvidenceExport.objects.count() == 1


def test_a_body_that_is_not_json_is_a_400(demo, api_as, nothing_written):
    client = api_as(demo.auditor)
    with nothing_written():
        response = client.post(URL, "{nope", content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize("persona", OTHERS)
def test_others_are_refused_missing_duty_on_the_list_and_on_requests(demo, api_as, nothing_written, persona):
    export_row(demo.auditor)
    client = api_as(getattr(demo, persona))

    with nothing_written():
        listed = client.get(URL)
        requested = client.post(URL, body(), format="json")
        requested_badly = client.post(URL, {"framework": "pci"}, format="json")

    for response in (listed, requested, requested_badly):
        assert response.status_code == 403, response.content
        assert codes(response) == ["missing_duty"]


@pytest.mark.parametrize("persona", OTHERS)
def test_a_single_export_is_missing_for_others(demo, api_as, nothing_written, persona):
    done = export_row(demo.auditor, status="done")
    failed = export_row(demo.auditor, status="failed")
    client = api_as(getattr(demo, persona))

    with nothing_written():
        responses = [
            client.get(f"{URL}{done.pk}/"),
            client.get(f"{URL}{done.pk}/download/"),
            client.post(f"{URL}{failed.pk}/retry/"),
        ]

    assert [r.status_code for r in responses] == [404, 404, 404]


def test_without_credentials_the_api_answers_401(demo, api_as, nothing_written):
    export = export_row(demo.auditor, status="done")
    anonymous = api_as(None)

    with nothing_written():
        responses = [anonymous.get(URL), anonymous.post(URL, body(), format="json"),
                     anonymous.get(f"{URL}{export.pk}/download/")]

    assert [r.status_code for r in responses] == [401, 401, 401]


# --- Reading -------------------------------------------------------------------------------------


def test_holders_list_every_export_newest_first_and_filter_them(demo, api_as):
    mine = export_row(demo.auditor, status="done")
    # Requested by someone who held the duty earlier (the admin user stands in): still listed.
    theirs = export_row(demo.admin, status="failed", framework="iso27001")
    client = api_as(demo.auditor)

    listed = client.get(URL).json()
    failed = client.get(URL, {"status": "failed"}).json()
    sox = client.get(URL, {"framework": "sox"}).json()

    assert [row["id"] for row in listed["results"]] == [theirs.pk, mine.pk]
    assert [row["id"] for row in failed["results"]] == [theirs.pk]
    assert [row["id"] for row in sox["results"]] == [mine.pk]
    assert client.get(URL, {"status": "lost"}).status_code == 400


def test_retrieve_shows_progress_and_a_download_url_once_done(demo, api_as):
    running = export_row(demo.auditor, status="running")
    done = export_row(demo.auditor, status="done")
    client = api_as(demo.auditor)

    building = client.get(f"{URL}{running.pk}/").json()
    built = client.get(f"{URL}{done.pk}/").json()

    assert set(built) == {
        "id", "framework", "period_start", "period_end", "requested_by", "requested_at", "status", "progress",
        "sha256", "size", "error", "download_url",
    }
    assert (building["status"], building["progress"], building["download_url"]) == ("running", 40, None)
    assert (built["status"], built["progress"], built["requested_by"]) == ("done", 100, "auditor")
    assert (built["period_start"], built["period_end"]) == ("2025-01-01", "2025-03-31")
    assert built["sha256"] == done.sha256 and built["size"] == done.size
    assert built["download_url"] == f"http://testserver{URL}{done.pk}/download/"


@pytest.mark.parametrize("pk", ["0", "abc", "99999999999999999999", "1.5"])
def test_odd_ids_are_404(demo, api_as, pk):
    assert api_as(demo.auditor).get(f"{URL}{pk}/").status_code == 404


# --- Downloading ---------------------------------------------------------------------------------


def test_download_streams_the_zip_and_records_the_download(demo, api_as):
    export = export_row(demo.auditor, status="done")

    response = api_as(demo.auditor).get(f"{URL}{export.pk}/download/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert f"countersign-sox-2025-01-01-2025-03-31-{export.pk}.zip" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == small_zip(f"export {export.pk}")
    event = AuditEvent.objects.get(action="evidence.downloaded")
    assert (event.actor_username, event.target_id, event.data["sha256"]) == ("auditor", str(export.pk), export.sha256)


def test_a_client_asking_for_a_zip_gets_it_and_json_refusals(demo, api_as):
    done = export_row(demo.auditor, status="done")
    queued = export_row(demo.auditor)
    client = api_as(demo.auditor)

    zipped = client.get(f"{URL}{done.pk}/download/", HTTP_ACCEPT="application/zip")
    refused = client.get(f"{URL}{queued.pk}/download/", HTTP_ACCEPT="application/zip")

    assert zipped.status_code == 200 and zipped["Content-Type"] == "application/zip"
    assert refused.status_code == 409 and codes(refused) == ["invalid_state"]


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_download_before_the_bundle_is_built_is_a_409_and_records_nothing(demo, api_as, nothing_written, status):
    export = export_row(demo.auditor, status=status)

    client = api_as(demo.auditor)
    with nothing_written():
        response = client.get(f"{URL}{export.pk}/download/")

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


def test_a_bundle_whose_file_is_gone_is_a_409_not_a_500(demo, api_as, nothing_written, evidence_root):
    export = export_row(demo.auditor, status="done")
    (evidence_root / export.file).unlink()

    client = api_as(demo.auditor)
    with nothing_written():
        response = client.get(f"{URL}{export.pk}/download/")

    assert response.status_code == 409 and codes(response) == ["invalid_state"]


def test_a_file_path_outside_the_evidence_root_is_never_served(demo, api_as, nothing_written, evidence_root):
    export = export_row(demo.auditor, status="done")
    outside = evidence_root.parent / "secret.zip"
    outside.write_bytes(b"not evidence")
    EvidenceExport.objects.filter(pk=export.pk).update(file="../secret.zip")

    client = api_as(demo.auditor)
    with nothing_written():
        response = client.get(f"{URL}{export.pk}/download/")

    assert response.status_code == 409


# --- Retrying ------------------------------------------------------------------------------------


def test_a_failed_export_is_retried_and_the_retry_audited(demo, api_as, builds, django_capture_on_commit_callbacks):
    export = export_row(demo.auditor, status="failed")

    client = api_as(demo.auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}{export.pk}/retry/")

    assert response.status_code == 202, response.content
    assert (response.json()["status"], response.json()["progress"], response.json()["error"]) == ("queued", 0, "")
    export.refresh_from_db()
    assert export.status == "queued"
    assert AuditEvent.objects.filter(action="evidence.export_retried", target_id=str(export.pk)).count() == 1
    assert builds == [export.pk]


@pytest.mark.parametrize("status", ["queued", "running", "done"])
def test_only_a_failed_export_can_be_retried(demo, api_as, nothing_written, status):
    export = export_row(demo.auditor, status=status)

    client = api_as(demo.auditor)
    with nothing_written():
        response = client.post(f"{URL}{export.pk}/retry/")

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


# --- The OpenAPI document ------------------------------------------------------------------------


def test_the_schema_documents_the_endpoints_and_their_errors(db):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    shared = {"401", "403", "404", "409", "429", "503"}  # every operation's (core/openapi.py); 415 with a body
    assert set(paths[URL]["post"]["responses"]) == {"202", "400", "415"} | shared
    assert set(paths[URL]["get"]["responses"]) == {"200", "400"} | shared
    assert set(paths[URL + "{id}/"]["get"]["responses"]) == {"200"} | shared
    download = paths[URL + "{id}/download/"]["get"]["responses"]
    assert set(download) == {"200"} | shared
    assert download["200"]["content"] == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
    assert set(paths[URL + "{id}/retry/"]["post"]["responses"]) == {"202", "400"} | shared
