"""Timestamp authorities are controls (``audit.timestampauthority``, compliance/timestamps/controls.py):
added and strengthened at once through the control door; switched off, removed, pointed at another
URL or certificate, or given a weaker digest only with a second person (K3). Every step is on the chain."""
import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent, TimestampAuthority
from governance.controls.services import control_change, control_change_approve
from governance.models import ControlChange
from tests.timestamps import tsa as tsa_server

pytestmark = pytest.mark.django_db


def test_adding_an_authority_applies_at_once_and_is_on_the_chain(demo, tsa):
    change = control_change(actor=demo.admin, kind="audit.timestampauthority", values={
        "name": "Local TSA", "url": tsa.url, "certificate": tsa.certificate})
    assert change.status == ControlChange.Status.APPLIED
    authority = TimestampAuthority.objects.get(pk=change.target_id)
    assert (authority.is_active, authority.hash_algorithm) == (True, "sha256")
    event = AuditEvent.objects.filter(action="control.changed").latest("sequence")
    assert event.data["after"]["url"] == tsa.url and event.data["weakening"] == []


@pytest.mark.parametrize("values, field", [
    ({"is_active": False}, "is_active"),
    ({"url": "https://tsa.elsewhere.example/tsr"}, "url"),
    ({"certificate": "other"}, "certificate"),
    ({"hash_algorithm": "sha256"}, "hash_algorithm"),
    (None, ""),  # removing it
])
def test_weakening_an_authority_waits_for_a_second_person(demo, authority, values, field):
    authority = control_change(actor=demo.admin, kind="audit.timestampauthority", target=authority,
                               values={"hash_algorithm": "sha512"})  # stronger: applies at once
    authority = TimestampAuthority.objects.get(name="Local TSA")
    assert authority.hash_algorithm == "sha512"
    if values and values.get("certificate") == "other":
        values = {"certificate": tsa_server.make_authority("Elsewhere TSA")[0]}
    before = (authority.is_active, authority.url, authority.certificate, authority.hash_algorithm)

    change = control_change(actor=demo.admin, kind="audit.timestampauthority", target=authority, values=values,
                            operation="delete" if values is None else None)
    assert change.status == ControlChange.Status.PENDING and field in {w["field"] for w in change.weakening}
    authority.refresh_from_db()
    assert (authority.is_active, authority.url, authority.certificate, authority.hash_algorithm) == before

    control_change_approve(actor=demo.sec, change=change)
    if values is None:
        assert not TimestampAuthority.objects.filter(name="Local TSA").exists()
    else:
        authority.refresh_from_db()
        assert getattr(authority, field) == values[field]


@pytest.mark.parametrize("values, field", [
    ({"url": "ftp://tsa.example.com/"}, "url"),
    ({"url": "https://user:pw@tsa.example.com/"}, "url"),
    ({"certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}, "certificate"),
])
def test_a_bad_url_or_certificate_is_refused(demo, tsa, values, field):
    with pytest.raises(ValidationError) as caught:
        control_change(actor=demo.admin, kind="audit.timestampauthority",
                       values={"name": "Bad TSA", "url": tsa.url, "certificate": tsa.certificate, **values})
    assert field in caught.value.message_dict and not TimestampAuthority.objects.exists()
