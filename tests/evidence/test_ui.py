"""Evidence exports in the admin and on the portal's ``/evidence/`` page (RULES.md L3, V3, V4): only
holders of export_evidence request, follow and download bundles; each request and download is an
audit event written by the service; nobody else sees the pages or the link to them."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import signing
from audit.models import AuditEvent, EvidenceExport
from tests.evidence.export_rows import export_row, small_zip

CHANGELIST = reverse("admin:audit_evidenceexport_changelist")
ADD = reverse("admin:audit_evidenceexport_add")
PORTAL = "/evidence/"
NON_HOLDERS = ["dev", "rev", "ops", "mgr", "sec", "idev"]


@pytest.fixture
def nothing_written(db):
    from contextlib import contextmanager

    @contextmanager
    def guard():
        def state():
            return (list(EvidenceExport.objects.order_by("pk").values_list("pk", "status")),
                    AuditEvent.objects.count())

        before = state()
        yield
        assert state() == before

    return guard


def period(days=30):
    today = timezone.now().date()
    return {"period_start": str(today - timedelta(days=days)), "period_end": str(today)}


# --- Admin ---------------------------------------------------------------------------------------


def test_the_auditor_requests_an_export_through_the_admin_add_form(demo, client_as, messages_in):
    client = client_as(demo.auditor)

    page = client.get(ADD)
    response = client.post(ADD, {"framework": "iso27001", **period()}, follow=True)

    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields) == {"framework", "period_start", "period_end"}
    export = EvidenceExport.objects.get()
    assert (export.framework, export.requested_by, export.status) == ("iso27001", demo.auditor, "queued")
    assert response.redirect_chain[-1][0] == CHANGELIST
    assert messages_in(response) == [f"{export} is requested; this list shows its progress."]
    event = AuditEvent.objects.get(action="evidence.export_requested")
    assert (event.actor_username, event.target_id) == ("auditor", str(export.pk))


def test_a_reversed_period_in_the_admin_is_a_form_error_and_writes_nothing(demo, client_as, nothing_written):
    client = client_as(demo.auditor)
    today = timezone.now().date()

    with nothing_written():
        response = client.post(ADD, {"framework": "sox", "period_start": str(today),
                                     "period_end": str(today - timedelta(days=3))})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["period_end"] == ["The period ends before it starts."]


def test_the_changelist_shows_status_progress_digest_download_and_the_key_fingerprint(demo, client_as):
    done = export_row(demo.auditor, status="done")
    running = export_row(demo.auditor, status="running")

    page = client_as(demo.auditor).get(CHANGELIST)

    html = page.content.decode()
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [running, done]
    assert signing.fingerprint() in html
    assert reverse("admin:audit_evidenceexport_download", args=[done.pk]) in html
    assert reverse("admin:audit_evidenceexport_download", args=[running.pk]) not in html
    assert done.sha256[:12] in html and "40%" in html


def test_the_admin_download_streams_the_bundle_and_records_it(demo, client_as):
    export = export_row(demo.auditor, status="done")

    response = client_as(demo.auditor).get(reverse("admin:audit_evidenceexport_download", args=[export.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content) == small_zip(f"export {export.pk}")
    assert AuditEvent.objects.filter(action="evidence.downloaded", actor_username="auditor").count() == 1


def test_an_admin_download_before_the_bundle_is_built_says_so_and_records_nothing(demo, client_as, nothing_written, messages_in):
    export = export_row(demo.auditor, status="running")
    client = client_as(demo.auditor)

    with nothing_written():
        response = client.get(reverse("admin:audit_evidenceexport_download", args=[export.pk]), follow=True)

    assert messages_in(response) == [f"{export}: not downloaded. invalid_state: The bundle is not ready."]


def test_the_retry_action_requeues_failed_exports_only(demo, client_as, builds, messages_in):
    failed = export_row(demo.auditor, status="failed")
    done = export_row(demo.auditor, status="done")

    response = client_as(demo.auditor).post(
        CHANGELIST, {"action": "retry_selected", "_selected_action": [failed.pk, done.pk], "index": 0}, follow=True
    )

    assert set(messages_in(response)) == {
        f"{failed}: queued again.",
        f"{done}: not queued again. invalid_state: Only a failed export can be retried.",
    }
    assert EvidenceExport.objects.get(pk=failed.pk).status == "queued"
    assert EvidenceExport.objects.get(pk=done.pk).status == "done"
    assert AuditEvent.objects.filter(action="evidence.export_retried", target_id=str(failed.pk)).count() == 1


@pytest.mark.parametrize("persona", ["mgr", "sec"])
def test_staff_without_the_duty_do_not_see_the_admin_pages(demo, client_as, nothing_written, persona):
    export = export_row(demo.auditor, status="done")
    client = client_as(getattr(demo, persona))

    with nothing_written():
        index = client.get(reverse("admin:index"))
        pages = [
            client.get(CHANGELIST),
            client.get(ADD),
            client.post(ADD, {"framework": "sox", **period()}),
            client.get(reverse("admin:audit_evidenceexport_change", args=[export.pk])),
        ]
        download = client.get(reverse("admin:audit_evidenceexport_download", args=[export.pk]))

    assert CHANGELIST not in index.content.decode()
    assert [page.status_code for page in pages] == [403, 403, 403, 403]
    assert download.status_code == 404


def test_a_developer_is_not_let_into_the_admin_at_all(demo, client_as, nothing_written):
    client = client_as(demo.dev)

    with nothing_written():
        responses = [client.get(CHANGELIST), client.post(ADD, {"framework": "sox", **period()})]

    for response in responses:
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_superuser_sees_the_exports_but_requests_and_downloads_only_with_the_duty(demo, client_as, nothing_written, messages_in):
    export = export_row(demo.auditor, status="done")
    client = client_as(demo.admin)

    with nothing_written():
        listed = client.get(CHANGELIST)
        adding = client.get(ADD)
        download = client.get(reverse("admin:audit_evidenceexport_download", args=[export.pk]), follow=True)

    assert listed.status_code == 200 and list(listed.context["cl"].result_list) == [export]
    assert adding.status_code == 403
    assert messages_in(download) == [
        f"{export}: not downloaded. missing_duty: Evidence bundles need export_evidence."
    ]


# --- Portal --------------------------------------------------------------------------------------


def test_the_auditor_sees_the_request_form_the_exports_and_the_nav_link(demo, client_as):
    done = export_row(demo.auditor, status="done")
    failed = export_row(demo.auditor, status="failed")

    page = client_as(demo.auditor).get(PORTAL)

    html = page.content.decode()
    assert page.status_code == 200
    assert set(page.context["form"].fields) == {"framework", "period_start", "period_end"}
    assert page.context["exports"] == [failed, done]
    assert f'href="{reverse("evidence:download", args=[done.pk])}"' in html
    assert f'href="{reverse("evidence:download", args=[failed.pk])}"' not in html
    assert "database went away" in html
    assert f'<a href="{PORTAL}">Evidence</a>' in html
    assert 'http-equiv="refresh"' not in html, "nothing is building: no reload"
    assert "<script" not in html


@pytest.mark.parametrize("status", ["queued", "running"])
def test_the_page_reloads_itself_while_an_export_builds(demo, client_as, status):
    export_row(demo.auditor, status="done")
    export_row(demo.auditor, status=status)

    html = client_as(demo.auditor).get(PORTAL).content.decode()

    assert '<meta http-equiv="refresh" content="5">' in html
    assert "<progress" in html
    assert "<script" not in html


def test_posting_the_form_requests_an_export(demo, client_as, messages_in):
    response = client_as(demo.auditor).post(PORTAL, {"framework": "sox", **period(60)}, follow=True)

    export = EvidenceExport.objects.get()
    assert response.redirect_chain == [(PORTAL, 302)]
    assert (export.framework, export.requested_by) == ("sox", demo.auditor)
    assert export.period_start == timezone.now().date() - timedelta(days=60)
    assert AuditEvent.objects.filter(action="evidence.export_requested", target_id=str(export.pk)).count() == 1
    assert messages_in(response)[0].startswith(f"{export} is requested.")
    assert response.context["exports"] == [export]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"framework": "pci", **period()}, "framework"),
        ({"framework": "sox", "period_start": "2025-02-30", "period_end": "2025-03-01"}, "period_start"),
        ({"framework": "sox", "period_start": "2025-03-01", "period_end": "2025-02-01"}, "period_end"),
        ({"framework": "sox", "period_start": "2020-01-01", "period_end": "2025-01-01"}, "period_end"),
        ({"framework": "sox"}, "period_start"),
    ],
    ids=["framework", "bad-date", "reversed", "too-long", "missing"],
)
def test_bad_input_on_the_portal_is_a_400_with_field_errors(demo, client_as, nothing_written, data, field):
    client = client_as(demo.auditor)

    with nothing_written():
        response = client.post(PORTAL, data)

    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert 'class="field-errors"' in response.content.decode()


def test_the_portal_download_streams_the_bundle_and_records_it(demo, client_as):
    export = export_row(demo.auditor, status="done")

    response = client_as(demo.auditor).get(reverse("evidence:download", args=[export.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content) == small_zip(f"export {export.pk}")
    event = AuditEvent.objects.get(action="evidence.downloaded")
    assert (event.actor_username, event.target_id) == ("auditor", str(export.pk))


def test_a_portal_download_before_the_bundle_is_built_is_a_409_page(demo, client_as, nothing_written):
    export = export_row(demo.auditor, status="queued")
    client = client_as(demo.auditor)

    with nothing_written():
        response = client.get(reverse("evidence:download", args=[export.pk]))
        missing = client.get(reverse("evidence:download", args=[export.pk + 1000]))

    assert response.status_code == 409
    assert "invalid_state" in response.content.decode()
    assert missing.status_code == 404


@pytest.mark.parametrize("persona", [*NON_HOLDERS, "admin"])
def test_others_get_404_for_the_page_and_no_link(demo, client_as, nothing_written, persona):
    export = export_row(demo.auditor, status="done")
    client = client_as(getattr(demo, persona))

    with nothing_written():
        page = client.get(PORTAL)
        posted = client.post(PORTAL, {"framework": "sox", **period()})
        download = client.get(reverse("evidence:download", args=[export.pk]))
        dashboard = client.get("/")

    assert [page.status_code, posted.status_code, download.status_code] == [404, 404, 404]
    assert dashboard.status_code == 200
    assert f'href="{PORTAL}"' not in dashboard.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(demo, client_as):
    response = client_as(None).get(PORTAL)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PORTAL}"


@pytest.fixture
def builds(monkeypatch):
    """The export ids handed to the build task (not run here: the builder is tested apart)."""
    from compliance.tasks import build_evidence_export

    handed = []
    monkeypatch.setattr(build_evidence_export, "delay", handed.append)
    return handed
