"""Okta's SCIM 2.0 sequences (Okta's SCIM protocol reference): look up by userName, create, read,
update with PUT, deactivate with PATCH ``replace {active: false}``, and push groups (create, add
members with PATCH add, remove with a filtered path, rename with replace, delete)."""
import pytest

from audit.models import AuditEvent
from governance.models import RoleAssignment
from identity.models import GroupRoleMapping
from tests.identity.scim_client import GROUP, USER, Scim

pytestmark = pytest.mark.django_db


def okta_user(user_name, given="Ada", family="Lovelace", active=True):
    return {"schemas": [USER], "userName": user_name, "name": {"givenName": given, "familyName": family},
            "emails": [{"primary": True, "value": user_name, "type": "work"}], "displayName": f"{given} {family}",
            "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "password": "1mz050nq",
            "active": active}


def test_okta_user_lifecycle(demo):
    scim = Scim("okta")

    lookup = scim.get('/Users?filter=userName%20eq%20%22ada%40example.org%22&startIndex=1&count=100')
    assert lookup.status_code == 200 and lookup.body["totalResults"] == 0 and lookup.body["Resources"] == []

    created = scim.post("/Users", okta_user("ada@example.org"))
    assert created.status_code == 201, created.body
    uid = created.body["id"]
    assert created.body["userName"] == "ada@example.org" and created.body["active"] is True
    assert created["Location"].endswith(f"/scim/v2/Users/{uid}") and created["ETag"].startswith('W/"')
    assert "password" not in created.body

    again = scim.post("/Users", okta_user("ADA@example.org"))
    assert again.status_code == 409 and again.body["scimType"] == "uniqueness"

    read = scim.get(f"/Users/{uid}")
    assert read.status_code == 200 and read.body["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert read.body["displayName"] == "Ada Lovelace" and read.body["emails"] == [
        {"value": "ada@example.org", "type": "work"}]

    replaced = scim.put(f"/Users/{uid}", {**okta_user("ada@example.org", family="King"), "id": uid})
    assert replaced.status_code == 200 and replaced.body["name"]["familyName"] == "King"
    assert AuditEvent.objects.filter(action="account.updated_by_provider", data__changed=["display_name", "last_name"]).exists()

    stale = scim.put(f"/Users/{uid}", okta_user("ada@example.org", family="Byron"), HTTP_IF_MATCH=read["ETag"])
    assert stale.status_code == 412

    deactivated = scim.patch(f"/Users/{uid}", [{"op": "replace", "value": {"active": False}}])
    assert deactivated.status_code == 200 and deactivated.body["active"] is False
    assert AuditEvent.objects.filter(action="account.deactivated", data__user="ada@example.org",
                                     data__source="scim").count() == 1
    assert scim.get(f"/Users/{uid}").body["active"] is False


def test_okta_pagination_and_filters(demo):
    scim = Scim("okta")
    for n in range(5):
        scim.post("/Users", okta_user(f"p{n}@example.org"))
    first = scim.get("/Users?startIndex=1&count=2")
    second = scim.get("/Users?startIndex=3&count=2")
    assert first.body["itemsPerPage"] == 2 and first.body["startIndex"] == 1
    assert first.body["totalResults"] == second.body["totalResults"] >= 5
    assert {r["id"] for r in first.body["Resources"]}.isdisjoint({r["id"] for r in second.body["Resources"]})
    complex_filter = scim.get('/Users?filter=userName%20sw%20%22p%22%20and%20active%20eq%20true')
    assert complex_filter.status_code == 200
    assert {r["userName"] for r in complex_filter.body["Resources"]} == {f"p{n}@example.org" for n in range(5)}
    assert scim.get("/Users?filter=userName%20eq").status_code == 400
    assert scim.get("/Users?filter=userName%20eq").body["scimType"] == "invalidFilter"
    narrowed = scim.get('/Users?filter=userName%20eq%20%22p1%40example.org%22&attributes=userName')
    assert set(narrowed.body["Resources"][0]) == {"schemas", "id", "userName"}


def test_okta_group_push_grants_through_the_grant_service(demo):
    scim = Scim("okta")
    GroupRoleMapping.objects.create(group_name="cs-reviewers", role=demo.roles["reviewer"], team=demo.payments,
                                    environment=demo.staging)
    ada = scim.post("/Users", okta_user("ada@example.org")).body["id"]

    group = scim.post("/Groups", {"schemas": [GROUP], "displayName": "cs-reviewers", "members": []})
    assert group.status_code == 201
    gid = group.body["id"]
    added = scim.patch(f"/Groups/{gid}", [{"op": "add", "path": "members",
                                           "value": [{"value": ada, "display": "ada@example.org"}]}])
    assert added.status_code == 200 and [m["value"] for m in added.body["members"]] == [ada]
    grant = RoleAssignment.objects.get(user_id=ada, role=demo.roles["reviewer"], environment=demo.staging)
    assert grant.status == RoleAssignment.Status.ACTIVE
    assert AuditEvent.objects.filter(action="role.granted", data__assignment=grant.pk, data__provisioned=True).exists()

    removed = scim.patch(f"/Groups/{gid}", [{"op": "remove", "path": f'members[value eq "{ada}"]'}])
    assert removed.status_code == 200 and "members" not in removed.body
    grant.refresh_from_db()
    assert grant.status == RoleAssignment.Status.REVOKED

    renamed = scim.patch(f"/Groups/{gid}", [{"op": "replace", "value": {"id": gid, "displayName": "cs-readers"}}])
    assert renamed.status_code == 200 and renamed.body["displayName"] == "cs-readers"
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert scim.get(f"/Groups/{gid}").status_code == 404


def test_a_privileged_group_role_waits_for_four_eyes(demo):
    scim = Scim("okta")
    GroupRoleMapping.objects.create(group_name="cs-compliance", role=demo.roles["compliance"], team=demo.payments)
    ada = scim.post("/Users", okta_user("ada@example.org")).body["id"]
    scim.post("/Groups", {"schemas": [GROUP], "displayName": "cs-compliance", "members": [{"value": ada}]})

    grant = RoleAssignment.objects.get(user_id=ada, role=demo.roles["compliance"])
    assert grant.status == RoleAssignment.Status.PENDING and grant.expires_at is not None


def test_no_token_wrong_token_or_an_ordinary_api_key_is_401(demo, api_as):
    scim = Scim("okta")
    assert scim.client.get("/scim/v2/Users").status_code == 401
    assert scim.client.get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer cs_nope").status_code == 401
    from governance import services

    _, key = services.api_token_create(actor=demo.dev, user=demo.dev, name="mine")
    assert scim.client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    services.api_token_revoke(actor=demo.admin, token=scim.credential.token)
    assert scim.get("/Users").status_code == 401


def test_break_glass_superusers_are_not_the_providers(demo):
    scim = Scim("okta")
    names = {r["userName"] for r in scim.get("/Users?count=200").body["Resources"]}
    assert "admin" not in names and "dev" in names
    assert scim.get(f"/Users/{demo.admin.pk}").status_code == 404


def test_group_mappings_are_proposed_with_a_recorded_command(demo):
    from django.core.management import call_command

    call_command("map_group", "cs-reviewers", "reviewer", "payments", "staging", "--by", "admin",
                 stdout=open("/dev/null", "w"))
    assert not GroupRoleMapping.objects.exists()  # a control: waits for a second person
    assert AuditEvent.objects.filter(action="control.proposed", data__kind="identity.grouprolemapping",
                                     data__after__group_name="cs-reviewers").exists()
