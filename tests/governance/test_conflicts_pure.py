"""governance.conflicts: G2 and G3 as pure rules, one table row per way each can say yes or no.
No database (no ``django_db`` mark: a query would raise), so the rules read only the unsaved
objects they are given."""
from datetime import datetime, timedelta, timezone

import pytest

from governance import conflicts
from governance.models import ConflictRule, Environment, Role, RoleAssignment, SoDException, Team

AT = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
PROD = Environment(pk=1, slug="prod", tier="production")
PROD2 = Environment(pk=3, slug="prod-eu", tier="production")
STAGING = Environment(pk=2, slug="staging", tier="staging")
ENVS = [PROD, PROD2, STAGING]
SUBMIT_DEPLOY = ConflictRule(pk=1, duty_a="submit", duty_b="deploy", tier="production", is_active=True)
APPROVE_DEPLOY = ConflictRule(pk=2, duty_a="approve", duty_b="deploy", tier="production", is_active=True)
RULES = [SUBMIT_DEPLOY, APPROVE_DEPLOY]
TEAM = Team(pk=1, slug="payments")


def held(duty, environment, pk=10):
    role = Role(pk=pk, slug=f"role-{duty}")
    assignment = RoleAssignment(pk=pk, role=role, team=TEAM, environment=environment)
    return conflicts.Held(assignment, frozenset({duty}))


def exception(duty_a="submit", duty_b="deploy", environment=None, status="active", expires=AT + timedelta(days=1)):
    return SoDException(pk=7, duty_a=duty_a, duty_b=duty_b, environment=environment, status=status, expires_at=expires)


@pytest.mark.parametrize("role_privileged, duties, is_production, production_exists, expected", [
    (True, set(), False, False, True),            # a privileged role, whatever it carries
    (False, {"manage_roles"}, None, True, False),  # no environment duty: never privileged by tier
    (False, {"deploy"}, True, True, True),         # an environment duty on production
    (False, {"deploy"}, False, True, False),       # ... on staging
    (False, {"deploy"}, None, True, True),         # every environment, production among them
    (False, {"deploy"}, None, False, False),       # every environment, none of them production
])
def test_g2_privileged(role_privileged, duties, is_production, production_exists, expected):
    assert conflicts.is_privileged(role_is_privileged=role_privileged, role_duties=duties,
                                   environment_is_production=is_production,
                                   production_exists=production_exists) is expected


@pytest.mark.parametrize("changes, field", [
    ({}, None),
    ({"justification": "  "}, "justification"),
    ({"role_scope": Role.Scope.ENVIRONMENT, "has_environment": False}, "environment"),
    ({"role_scope": Role.Scope.TEAM, "has_environment": True}, "environment"),
    ({"role_scope": Role.Scope.GLOBAL, "has_environment": True}, "environment"),
    ({"expires_at": AT}, "expires_at"),                                   # not in the future
    ({"expires_at": None}, "expires_at"),                                 # privileged without expiry
    ({"expires_at": AT + timedelta(days=91)}, "expires_at"),              # beyond the maximum
    ({"expires_at": None, "privileged": False}, None),                    # not privileged: no expiry needed
    ({"expires_at": AT + timedelta(days=90)}, None),                      # exactly the maximum
])
def test_g2_grant_errors(changes, field):
    args = dict(role_scope=Role.Scope.ENVIRONMENT, role_slug="operations", has_environment=True,
                justification="on call", expires_at=AT + timedelta(days=30), privileged=True, at=AT,
                max_lifetime=timedelta(days=90))
    errors = conflicts.grant_errors(**{**args, **changes})
    assert list(errors) == ([field] if field else [])


def test_g3_a_held_grant_conflicts_on_a_production_environment_they_share():
    found = conflicts.conflicts(new_duties={"deploy"}, environment=PROD, held=[held("submit", PROD)],
                                rules=RULES, environments=ENVS, exceptions=[], at=AT)
    assert [(c.rule, c.environment, c.other.pk, c.exception) for c in found] == [(SUBMIT_DEPLOY, PROD, 10, None)]
    assert found[0].reason().code == "sod_conflict" and "grant #10" in found[0].reason().message


@pytest.mark.parametrize("new_env, held_env, rules, new_duties, expected", [
    (PROD, PROD2, RULES, {"deploy"}, 0),            # different environments do not meet
    (STAGING, STAGING, RULES, {"deploy"}, 0),       # the rule's tier is production
    (None, PROD, RULES, {"deploy"}, 1),             # every environment meets the held one's
    (PROD, None, RULES, {"deploy"}, 1),             # the held grant is for every environment
    (PROD, PROD, [], {"deploy"}, 0),                # no rules
    (PROD, PROD, [ConflictRule(pk=3, duty_a="submit", duty_b="deploy", tier="", is_active=False)], {"deploy"}, 0),
    (STAGING, STAGING, [ConflictRule(pk=4, duty_a="submit", duty_b="deploy", tier="", is_active=True)], {"deploy"}, 1),
    (PROD, PROD, RULES, {"approve"}, 0),            # approve x submit is no rule
    (PROD, PROD, RULES, {"view_audit"}, 0),         # no environment duty among the new ones
])
def test_g3_where_a_held_grant_conflicts(new_env, held_env, rules, new_duties, expected):
    found = conflicts.conflicts(new_duties=new_duties, environment=new_env, held=[held("submit", held_env)],
                                rules=rules, environments=ENVS, exceptions=[], at=AT)
    assert len(found) == expected


def test_g3_a_role_can_conflict_with_itself_once_per_environment_it_reaches():
    found = conflicts.conflicts(new_duties={"submit", "deploy"}, environment=None, held=[], rules=RULES,
                                environments=ENVS, exceptions=[], at=AT)
    assert [(c.environment, c.other) for c in found] == [(PROD, None), (PROD2, None)]
    assert "the duties of this role itself" in found[0].reason().message


@pytest.mark.parametrize("exc, covered", [
    (exception(), True),                                        # every environment
    (exception(environment=PROD), True),
    (exception(duty_a="deploy", duty_b="submit"), True),        # either order
    (exception(environment=PROD2), False),                      # another environment
    (exception(duty_a="approve"), False),                       # another pair
    (exception(status="pending"), False),                       # not approved yet
    (exception(expires=AT), False),                             # expired at the instant
])
def test_g3_an_exception_covers_only_its_pair_environment_and_time(exc, covered):
    found = conflicts.conflicts(new_duties={"deploy"}, environment=PROD, held=[held("submit", PROD)],
                                rules=RULES, environments=ENVS, exceptions=[exc], at=AT)
    assert len(found) == 1 and (found[0].exception is exc) is covered


def test_g3_held_conflicts_after_the_fact():
    by_env = {PROD: {"submit", "deploy"}, PROD2: {"deploy"}, STAGING: {"submit", "deploy"}}
    assert conflicts.held_conflicts(duties_by_environment=by_env, rules=RULES, exceptions=[], at=AT) == [
        (SUBMIT_DEPLOY, PROD)]
    assert conflicts.held_conflicts(duties_by_environment=by_env, rules=RULES, exceptions=[exception(environment=PROD)],
                                    at=AT) == []
    assert conflicts.held_conflicts(duties_by_environment=by_env, rules=RULES, exceptions=[exception(environment=PROD2)],
                                    at=AT) == [(SUBMIT_DEPLOY, PROD)]


@pytest.mark.parametrize("a, b, expected", [
    ("submit", "deploy", SUBMIT_DEPLOY), ("deploy", "approve", APPROVE_DEPLOY),
    ("submit", "approve", None), ("deploy", "deploy", None),
])
def test_g3_an_exception_is_only_for_a_pair_a_rule_names(a, b, expected):
    assert conflicts.rule_for_pair(RULES, a, b) is expected

