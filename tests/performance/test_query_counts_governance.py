"""Queries per request do not grow with data (issue 21), the control plane and identity: pending
control changes in the API and the admin, group-role mappings, and SCIM's users and groups, at
SMALL and LARGE rows. The OIDC pages (``oidc/authenticate/``, ``oidc/callback/``) read no rows
that grow: they redirect to the provider or sign one person in; the login page is counted.
``POST control-changes/{id}/approve/`` and ``reject/`` are counted with real pending weakening
changes (a conflict rule's deactivation each) at SMALL and LARGE others pending."""
import itertools
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance.models import ControlChange
from identity.models import GroupRoleMapping, Person, ScimGroup
from tests.factories import UserFactory
from tests.identity.scim_client import GROUP, USER, Scim
from tests.performance.counting import assert_same_at_two_sizes

PROPOSED = {"name": "Black Friday", "starts_at": "2026-11-27T00:00:00Z", "ends_at": "2026-11-30T00:00:00Z"}


def scim_user(n: int) -> dict:
    name = f"person{n}@example.org"
    return {"schemas": [USER], "userName": name, "externalId": f"ext-{n}", "active": True,
            "name": {"givenName": "Person", "familyName": str(n)}, "emails": [{"primary": True, "value": name}]}


@pytest.fixture
def governed(demo):
    """``governed.grow(n)``: n more pending and n decided control changes (each proposer, subject and
    decider another account), group-role mappings, and SCIM users who all belong to every SCIM
    group (n more groups)."""
    numbers, scim = itertools.count(1), Scim()
    scim_ids, groups = [], []

    def grow(n):
        for _ in range(n):
            k = next(numbers)
            proposer, decider = UserFactory(username=f"proposer{k}"), UserFactory(username=f"decider{k}")
            for status, by in ((ControlChange.Status.PENDING, None), (ControlChange.Status.APPLIED, decider)):
                ControlChange.objects.create(
                    kind="releases.freezewindow", operation="create", target_repr=f"Freeze {k}", status=status,
                    scope={"everywhere": True}, subject=proposer, after=PROPOSED, changed=list(PROPOSED),
                    proposed_by=proposer, proposed_at=timezone.now(), decided_by=by)
            GroupRoleMapping.objects.create(group_name=f"cs-group-{k}", role=demo.roles["developer"],
                                            team=demo.payments, environment=demo.staging)
            scim_ids.append(scim.post("/Users", scim_user(k)).body["id"])
            groups.append(ScimGroup.objects.create(display_name=f"cs-group-{k}"))
            members = [person.user for person in Person.objects.filter(provisioned=True).select_related("user")]
            for group in groups:
                group.members.set(members)

    return SimpleNamespace(grow=grow, scim=scim, scim_ids=scim_ids, groups=groups)


def test_control_changes_and_mappings_cost_the_same_at_two_sizes(demo, api_as, client_as, governed):
    def requests():
        api, admin = api_as(demo.admin), client_as(demo.admin)
        first = ControlChange.objects.order_by("pk").first()
        calls = {
            "api control-changes/": lambda: api.get("/api/v1/control-changes/"),
            "api control-changes/?status=pending": lambda: api.get("/api/v1/control-changes/?status=pending"),
            "api control-changes/{id}/": lambda: api.get(f"/api/v1/control-changes/{first.pk}/"),
            "admin control change page": lambda: admin.get(
                reverse("admin:governance_controlchange_change", args=[first.pk])),
            "login page": lambda: Client().get("/accounts/login/"),
        }
        for label in ("governance_controlchange", "identity_grouprolemapping"):
            calls[f"admin {label}"] = lambda label=label: admin.get(reverse(f"admin:{label}_changelist"))
        return calls

    assert_same_at_two_sizes(governed.grow, requests)


def test_scim_users_and_groups_cost_the_same_at_two_sizes(demo, governed):
    scim, users = governed.scim, itertools.count(1000)

    def requests():
        user, group = governed.scim_ids[0], governed.groups[0].pk
        return {
            "scim GET Users": lambda: scim.get("/Users"),
            "scim GET Users/{id}": lambda: scim.get(f"/Users/{user}"),
            "scim GET Groups": lambda: scim.get("/Groups"),
            "scim GET Groups/{id}": lambda: scim.get(f"/Groups/{group}"),
            "scim POST Users": lambda: scim.post("/Users", scim_user(next(users))),
            "scim POST Groups": lambda: scim.post("/Groups", {"schemas": [GROUP], "displayName": f"new-{next(users)}",
                                                              "members": []}),
        }

    assert_same_at_two_sizes(governed.grow, requests)


def test_deciding_a_control_change_costs_the_same_with_more_pending(demo, api_as):
    """``POST control-changes/{id}/approve/`` and ``reject/``: security decides one of admin's
    pending deactivations of a conflict rule (a weakening change, K3), with SMALL and then LARGE
    others pending."""
    from itertools import combinations

    from governance import duties
    from governance.controls.services import control_change
    from governance.models import ConflictRule
    from tests.factories import set_control

    pairs = (pair for pair in combinations(sorted(duties.ALL), 2)
             if not ConflictRule.objects.filter(duty_a__in=pair, duty_b__in=pair).exists())
    pending, decided = [], []

    def propose_deactivating_a_new_rule():
        duty_a, duty_b = next(pairs)
        rule = set_control(by=demo.admin, control="governance.conflictrule", duty_a=duty_a, duty_b=duty_b, tier="",
                           description=f"{duty_a} never {duty_b}")
        change = control_change(actor=demo.admin, kind="governance.conflictrule", target=rule,
                                values={"is_active": False})
        assert change.status == ControlChange.Status.PENDING, change.weakening
        return change

    def grow(n):
        for _ in range(n + 4):  # n that stay pending, and the warm-up and counted decision of each endpoint
            pending.append(propose_deactivating_a_new_rule())

    def decide(how):
        def call():
            decided.append((how, pending.pop()))
            return api_as(demo.sec).post(f"/api/v1/control-changes/{decided[-1][1].pk}/{how}/",
                                         {"comment": "Second pair of eyes."}, format="json")
        return call

    assert_same_at_two_sizes(grow, lambda: {"POST control-changes/{id}/approve/": decide("approve"),
                                            "POST control-changes/{id}/reject/": decide("reject")})
    statuses = {how: {ControlChange.objects.get(pk=change.pk).status for h, change in decided if h == how}
                for how in ("approve", "reject")}
    assert statuses == {"approve": {ControlChange.Status.APPLIED}, "reject": {ControlChange.Status.REJECTED}}
    assert len(decided) == 8
