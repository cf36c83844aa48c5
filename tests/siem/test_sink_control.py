"""SIEM sinks are a governed control (``compliance.siemsink``, docs/rules.md section 8): what takes
security's stream away waits for a second person; what streams more applies at once."""
import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from compliance.siem import delivery
from compliance.siem.models import SiemSink
from core.errors import Denied
from governance.controls.services import control_change, control_change_approve
from governance.models import ControlChange
from tests.siem.receivers import SyslogReceiver

pytestmark = pytest.mark.django_db
KIND = "compliance.siemsink"


def new_sink(demo, **values):
    values = {"name": "SOC", "transport": "syslog_tls", "destination": "siem.example.com:6514", **values}
    change = control_change(actor=demo.admin, kind=KIND, values=values)
    assert change.status == ControlChange.Status.APPLIED  # adding a stream is not weakening
    return SiemSink.objects.get(pk=change.target_id)


def test_switching_a_sink_off_by_one_person_is_a_proposal_and_the_stream_goes_on(demo):
    receiver = SyslogReceiver().start()
    sink = new_sink(demo, transport="syslog_tcp", destination=f"127.0.0.1:{receiver.port}")
    change = control_change(actor=demo.admin, kind=KIND, target=sink, values={"is_active": False})

    assert change.status == ControlChange.Status.PENDING
    assert [w["field"] for w in change.weakening] == ["is_active"]
    assert SiemSink.objects.get(pk=sink.pk).is_active
    assert AuditEvent.objects.filter(action="control.proposed", data__kind=KIND).exists()
    delivery.deliver(sink.pk)  # still streaming
    assert receiver.connections
    with pytest.raises(Denied):  # not by the proposer
        control_change_approve(actor=demo.admin, change=change)
    control_change_approve(actor=demo.sec, change=change)
    receiver.stop()
    assert not SiemSink.objects.get(pk=sink.pk).is_active


@pytest.mark.parametrize("values, field", [
    ({"destination": "elsewhere.example.com:6514"}, "destination"),
    ({"transport": "https_json", "destination": "https://siem.example.com/in"}, "destination"),
    ({"format": "countersign"}, "format"),
    ({"secret": "a-new-key"}, "secret"),
    ({"actions": "change_request.*"}, "actions"),
])
def test_pointing_a_sink_elsewhere_or_narrowing_it_waits_for_a_second_person(demo, values, field):
    sink = new_sink(demo, secret="old-key")
    change = control_change(actor=demo.admin, kind=KIND, target=sink, values=values)
    assert change.status == ControlChange.Status.PENDING
    assert field in {w["field"] for w in change.weakening}
    assert SiemSink.objects.get(pk=sink.pk).destination == "siem.example.com:6514"


@pytest.mark.parametrize("values", [{"actions": ""}, {"batch_size": 500}, {"name": "SOC EU"}, {"is_active": True}])
def test_widening_or_renaming_applies_at_once(demo, values):
    sink = new_sink(demo, actions="role.*", is_active=False) if "actions" in values or "is_active" in values else new_sink(demo)
    change = control_change(actor=demo.admin, kind=KIND, target=sink, values=values)
    assert change.status == ControlChange.Status.APPLIED and change.weakening == []


def test_the_token_and_secret_reach_the_chain_only_as_fingerprints(demo):
    new_sink(demo, transport="https_hec", destination="https://splunk.example.com:8088/services/collector/event",
             token="very-secret-hec-token", secret="very-secret-hmac")
    event = AuditEvent.objects.filter(action="control.changed", data__kind=KIND).latest("sequence")
    assert "very-secret" not in str(event.data)
    assert event.data["after"]["token"].startswith("set (sha256 ")


@pytest.mark.parametrize("values, field", [
    ({"transport": "https_json", "destination": "ftp://siem.example.com/"}, "destination"),
    ({"transport": "https_json", "destination": "http://siem.example.com/in"}, "destination"),
    ({"transport": "https_json", "destination": "https://user:pw@siem.example.com/in"}, "destination"),
    ({"transport": "https_hec", "destination": "https://splunk.example.com/services/collector/event"}, "token"),
    ({"transport": "syslog_tcp", "destination": "siem.example.com:514"}, "transport"),
    ({"destination": "siem.example.com"}, "destination"),
    ({"destination": "siem.example.com:99999"}, "destination"),
    ({"ca_certificate": "not a certificate"}, "ca_certificate"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 5000}, "batch_size"),
])
def test_bad_configuration_is_refused_with_field_errors_and_nothing_written(demo, values, field):
    before = (SiemSink.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as refused:
        control_change(actor=demo.admin, kind=KIND, values={
            "name": "Bad", "transport": "syslog_tls", "destination": "siem.example.com:6514", **values})
    assert field in refused.value.message_dict
    assert (SiemSink.objects.count(), AuditEvent.objects.count()) == before


def test_only_administrators_configure_sinks(demo):
    with pytest.raises(Denied) as refused:
        control_change(actor=demo.dev, kind=KIND, values={
            "name": "Mine", "transport": "syslog_tls", "destination": "mine.example.com:6514"})
    assert [r.code for r in refused.value.reasons] == ["missing_duty"]


def test_switching_off_in_the_admin_leaves_the_sink_on_until_approved(demo, client_as, form_data):
    sink = new_sink(demo)
    client = client_as(demo.admin)
    url = reverse("admin:compliance_siemsink_change", args=[sink.pk])
    data = form_data(client.get(url))
    data.pop("is_active")
    response = client.post(url, data)
    proposal = ControlChange.objects.get(kind=KIND, status=ControlChange.Status.PENDING)
    assert response.status_code == 302 and response["Location"].endswith(f"/{proposal.pk}/change/")
    assert SiemSink.objects.get(pk=sink.pk).is_active
    listing = client.get(reverse("admin:compliance_siemsink_changelist"))
    assert listing.status_code == 200 and b"Lag (events)" in listing.content
    page = admin.site._registry[SiemSink]
    row = page.get_queryset(listing.wsgi_request).get(pk=sink.pk)
    head = AuditEvent.objects.order_by("-sequence").first()
    assert page.lag_events(row) == head.sequence  # nothing sent yet
    assert page.oldest_unsent(row) > 0
