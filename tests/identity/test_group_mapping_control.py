"""A group role mapping is a control (RULES.md section 8, K1–K3): adding one hands out a role, so
it waits for a second person and grants nothing until approved; switching it off applies at once."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from core.errors import Denied
from governance.controls.services import control_change, control_change_approve
from governance.models import ControlChange, RoleAssignment
from identity.models import GroupRoleMapping
from tests.identity.scim_client import GROUP, Scim
from tests.identity.test_scim_okta import okta_user

pytestmark = pytest.mark.django_db


def _push(scim, name, members):
    return scim.post("/Groups", {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]})


def _reviewer_grants(demo, user_id):
    return RoleAssignment.objects.filter(user_id=user_id, role=demo.roles["reviewer"], environment=demo.staging)


def test_a_proposed_mapping_grants_nothing_until_a_second_person_approves(demo):
    scim = Scim("okta")
    change = control_change(actor=demo.admin, kind="identity.grouprolemapping", values={
        "group_name": "cs-reviewers", "role": demo.roles["reviewer"], "team": demo.payments,
        "environment": demo.staging, "is_active": True})
    assert change.status == ControlChange.Status.PENDING and change.weakening
    assert not GroupRoleMapping.objects.exists()
    assert AuditEvent.objects.filter(action="control.proposed", data__kind="identity.grouprolemapping").exists()

    ada = scim.post("/Users", okta_user("ada@example.org")).body["id"]
    assert _push(scim, "cs-reviewers", [ada]).status_code == 201
    assert not _reviewer_grants(demo, ada).exists()

    with pytest.raises(Denied) as refused:
        control_change_approve(actor=demo.admin, change=change)
    assert "four_eyes_control" in [r.code for r in refused.value.reasons]
    assert not GroupRoleMapping.objects.exists()

    approved = control_change_approve(actor=demo.sec, change=change)
    assert approved.status == ControlChange.Status.APPLIED
    mapping = GroupRoleMapping.objects.get(group_name="cs-reviewers")
    changed = AuditEvent.objects.filter(action__startswith="control.", data__kind="identity.grouprolemapping")
    assert changed.filter(data__after__role="reviewer", data__after__environment="staging").exists()

    bob = scim.post("/Users", okta_user("bob@example.org", given="Bob")).body["id"]
    assert _push(scim, "cs-reviewers-2", []).status_code == 201  # another group grants nothing
    gid = scim.get('/Groups?filter=displayName%20eq%20%22cs-reviewers%22').body["Resources"][0]["id"]
    added = scim.patch(f"/Groups/{gid}", [{"op": "add", "path": "members", "value": [{"value": bob}]}])
    assert added.status_code == 200
    assert _reviewer_grants(demo, bob).get().status == RoleAssignment.Status.ACTIVE

    # Switching it off strengthens the controls: at once, and later members are granted nothing.
    off = control_change(actor=demo.admin, kind="identity.grouprolemapping", target=mapping,
                         values={"is_active": False})
    assert off.status == ControlChange.Status.APPLIED and off.weakening == []
    carl = scim.post("/Users", okta_user("carl@example.org", given="Carl")).body["id"]
    scim.patch(f"/Groups/{gid}", [{"op": "add", "path": "members", "value": [{"value": carl}]}])
    assert not _reviewer_grants(demo, carl).exists()

    # Switching it back on hands the role out again: a second person.
    on = control_change(actor=demo.admin, kind="identity.grouprolemapping", target=mapping, values={"is_active": True})
    assert on.status == ControlChange.Status.PENDING


def test_a_mapping_is_never_deleted(demo):
    mapping = GroupRoleMapping.objects.create(group_name="cs-reviewers", role=demo.roles["reviewer"], team=demo.payments)
    with pytest.raises(Denied) as refused:
        control_change(actor=demo.admin, kind="identity.grouprolemapping", target=mapping, operation="delete")
    assert [r.code for r in refused.value.reasons] == ["control_not_deletable"]


def test_a_developer_cannot_propose_a_mapping(demo):
    with pytest.raises(Denied) as refused:
        control_change(actor=demo.dev, kind="identity.grouprolemapping", values={
            "group_name": "cs-admins", "role": demo.roles["reviewer"], "team": demo.payments, "is_active": True})
    assert [r.code for r in refused.value.reasons] == ["missing_duty"]


def test_map_group_proposes_and_remove_applies_at_once(demo):
    out = StringIO()
    with pytest.raises(CommandError, match="--by"):
        call_command("map_group", "cs-reviewers", "reviewer", "payments", "staging", stdout=out)
    call_command("map_group", "cs-reviewers", "reviewer", "payments", "staging", "--by", "admin", stdout=out)
    assert "waits for a second person" in out.getvalue()
    assert not GroupRoleMapping.objects.exists()
    change = ControlChange.objects.get(kind="identity.grouprolemapping", status=ControlChange.Status.PENDING)
    assert change.after["group_name"] == "cs-reviewers" and change.proposed_by == demo.admin

    control_change_approve(actor=demo.sec, change=change)
    mapping = GroupRoleMapping.objects.get(group_name="cs-reviewers", role__slug="reviewer", is_active=True)

    call_command("map_group", "cs-reviewers", "reviewer", "payments", "staging", "--remove", stdout=out)
    mapping.refresh_from_db()
    assert mapping.is_active is False
    assert AuditEvent.objects.filter(action="control.changed", data__kind="identity.grouprolemapping",
                                     data__after__is_active=False).exists()
