"""Microsoft Entra ID's SCIM sequences (Entra's provisioning docs and its SCIM validator): query by
userName, create with the enterprise extension, PATCH with capitalised ops, string booleans,
filtered paths and a bare manager id, disable with ``PATCH active "False"`` (Entra never sends
DELETE for a leaver), and groups with ``excludedAttributes=members`` and Remove carrying a value."""
import pytest

from audit.models import Alert, AuditEvent
from governance.models import Membership, RoleAssignment
from identity.models import GroupRoleMapping, Person, ScimGroup
from tests.identity.conftest import api_with
from tests.identity.scim_client import ENTERPRISE, GROUP, USER, Scim

pytestmark = pytest.mark.django_db


def entra_user(user_name, external_id="58342554-38d6-4ec8-948c-50044d0a33fd"):
    return {"schemas": [USER, ENTERPRISE], "externalId": external_id, "userName": user_name, "active": True,
            "displayName": "Grace Hopper", "emails": [{"primary": True, "type": "work", "value": user_name}],
            "meta": {"resourceType": "User"}, "name": {"formatted": "Grace Hopper", "familyName": "Hopper",
                                                      "givenName": "Grace"},
            "roles": [], ENTERPRISE: {"employeeNumber": "1234", "department": "Engineering"}}


def test_entra_user_lifecycle(demo):
    scim = Scim("entra")
    assert scim.get('/Users?filter=userName+eq+"grace@example.org"').body["totalResults"] == 0

    created = scim.post("/Users", entra_user("grace@example.org"))
    assert created.status_code == 201, created.body
    uid = created.body["id"]
    by_external = scim.get('/Users?filter=externalId+eq+"58342554-38d6-4ec8-948c-50044d0a33fd"')
    assert [r["id"] for r in by_external.body["Resources"]] == [uid]

    updated = scim.patch(f"/Users/{uid}", [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "grace.hopper@example.org"},
        {"op": "Replace", "path": "name.familyName", "value": "Murray Hopper"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": str(demo.mgr.pk)},
    ])
    assert updated.status_code == 200, updated.body
    assert updated.body["emails"][0]["value"] == "grace.hopper@example.org"
    assert updated.body[ENTERPRISE]["manager"]["value"] == str(demo.mgr.pk)
    assert Person.objects.get(user_id=uid).manager == demo.mgr

    disabled = scim.patch(f"/Users/{uid}", [{"op": "Replace", "path": "active", "value": "False"}])
    assert disabled.status_code == 200 and disabled.body["active"] is False
    listed = scim.get('/Users?filter=userName+eq+"grace@example.org"')
    assert listed.body["Resources"][0]["active"] is False

    reenabled = scim.patch(f"/Users/{uid}", [{"op": "Replace", "path": "active", "value": "True"}])
    assert reenabled.status_code == 200 and reenabled.body["active"] is False  # four eyes, in the admin
    assert Alert.objects.filter(kind="scim_reactivation_refused").exists()


def test_entra_groups(demo):
    scim = Scim("entra")
    GroupRoleMapping.objects.create(group_name="Countersign Reviewers", role=demo.roles["reviewer"],
                                    team=demo.payments, environment=demo.staging)
    uid = scim.post("/Users", entra_user("grace@example.org")).body["id"]
    assert scim.get('/Groups?filter=displayName+eq+"Countersign+Reviewers"&excludedAttributes=members').body[
        "totalResults"] == 0
    created = scim.post("/Groups", {"schemas": [GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                                    "displayName": "Countersign Reviewers", "meta": {"resourceType": "Group"},
                                    "members": []})
    gid = created.body["id"]
    scim.patch(f"/Groups/{gid}", [{"op": "Add", "path": "members", "value": [{"value": uid}]}])
    grant = RoleAssignment.objects.get(user_id=uid, role=demo.roles["reviewer"])
    assert grant.status == RoleAssignment.Status.ACTIVE

    member = scim.get(f'/Groups?filter=id+eq+"{gid}"+and+members[value+eq+"{uid}"]&excludedAttributes=members')
    assert member.body["totalResults"] == 1 and "members" not in member.body["Resources"][0]

    scim.patch(f"/Groups/{gid}", [{"op": "Remove", "path": "members", "value": [{"value": uid}]}])
    grant.refresh_from_db()
    assert grant.status == RoleAssignment.Status.REVOKED
    assert not ScimGroup.objects.get(pk=gid).members.exists()


def test_the_leaver_deactivated_by_entra(leaver):
    """The acceptance's leaver: grants in three environments, two keys, a pending approval, open
    review items; Entra's PATCH active=false ends them all, each with its event, and the key gets 401."""
    from tests.identity.test_leavers import assert_everything_ended

    scim = Scim("entra")
    response = scim.patch(f"/Users/{leaver.user.pk}", [{"op": "Replace", "path": "active", "value": "False"}])

    assert response.status_code == 200 and response.body["active"] is False
    assert_everything_ended(leaver)
    assert api_with(leaver.keys[0]).get("/api/v1/change-requests/").status_code == 401


def test_a_conflicting_group_push_is_refused_for_that_person_only(demo):
    """dev writes changes for production; the group maps to operations in production (whoever writes a
    change may not deploy it to production): dev is refused with an alert naming the group, nothing of dev's changes, and the
    other member gets the role."""
    scim = Scim("okta")
    GroupRoleMapping.objects.create(group_name="production-deployers", role=demo.roles["operations"],
                                    team=demo.payments, environment=demo.production)
    ada = scim.post("/Users", {"schemas": [USER], "userName": "ada@example.org", "active": True}).body["id"]
    dev_grants = sorted(RoleAssignment.objects.filter(user=demo.dev).values_list("pk", "status"))
    dev_teams = sorted(Membership.objects.filter(user=demo.dev).values_list("team_id", flat=True))
    events_before = AuditEvent.objects.count()

    response = scim.post("/Groups", {"schemas": [GROUP], "displayName": "production-deployers",
                                     "members": [{"value": str(demo.dev.pk)}, {"value": ada}]})

    assert response.status_code == 201
    assert [m["value"] for m in response.body["members"]] == [ada]
    alert = Alert.objects.get(kind="scim_group_conflict")
    assert "production-deployers" in alert.subject and alert.details["group"] == "production-deployers"
    assert alert.details["user"] == "dev"
    assert sorted(RoleAssignment.objects.filter(user=demo.dev).values_list("pk", "status")) == dev_grants
    assert sorted(Membership.objects.filter(user=demo.dev).values_list("team_id", flat=True)) == dev_teams
    assert not ScimGroup.objects.get(pk=response.body["id"]).members.filter(pk=demo.dev.pk).exists()
    # The other member's grant is privileged (production): requested, waiting for a second person.
    assert RoleAssignment.objects.get(user_id=ada, role=demo.roles["operations"]).status == RoleAssignment.Status.PENDING
    new = list(AuditEvent.objects.order_by("-pk").values_list("action", "data")[:AuditEvent.objects.count() - events_before])
    assert [d["user"] for a, d in new if a.startswith("role.") or a.startswith("team.")] == ["ada@example.org"] * 2
