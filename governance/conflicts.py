"""The grant rules G2 and G3 as pure decisions over already-loaded objects and a time, in the style
of ``releases.policy``: nothing here queries the database. The grant services, the SoD-exception
service, the creep scan and the access reviews load what a rule reads and ask it here, so each rule
has one home (RULES.md section 2; docs/rules.md).

- ``is_privileged`` (G2): a grant carrying any duty on a production-tier environment, or of a
  privileged role (security, manager). A grant for every environment carries its duties on
  production whenever a production-tier environment exists.
- ``grant_errors`` (G2): justification, the environment the role's scope asks for, and the expiry
  a privileged grant needs (at most ``max_lifetime``).
- ``conflicts`` (G3): the conflict rules a new grant would break, with the user's grants in force
  or pending, each with the SoD exception that covers it (or none).
- ``held_conflicts`` (G3, after the fact): the rules a user's held duties break per environment,
  those no exception covers (the creep scan's ``sod_conflict_held``).
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.errors import Reason
from governance import duties
from governance.models import ConflictRule, Environment, Role, RoleAssignment, SoDException

ENVIRONMENT_DUTIES = frozenset(duties.ENVIRONMENT_DUTIES)


# --- G2: privileged grants and what a grant request must say -------------------------------------


def is_privileged(*, role_is_privileged: bool, role_duties: Iterable[str], environment_is_production: bool | None,
                  production_exists: bool) -> bool:
    """G2. ``environment_is_production`` is None for a grant for every environment, which reaches
    production whenever a production-tier environment exists."""
    if role_is_privileged:
        return True
    if not ENVIRONMENT_DUTIES & set(role_duties):
        return False
    if environment_is_production is None:
        return production_exists
    return environment_is_production


def grant_errors(*, role_scope: str, role_slug: str, has_environment: bool, justification: str,
                 expires_at: datetime | None, privileged: bool, at: datetime,
                 max_lifetime: timedelta) -> dict[str, list[str]]:
    """G2: the field errors of a grant request (empty when it may go on)."""
    errors: dict[str, list[str]] = {}
    if not (justification or "").strip():
        errors["justification"] = ["A justification is required for every grant."]
    if role_scope == Role.Scope.ENVIRONMENT and not has_environment:
        errors["environment"] = [f"The {role_slug} role is granted for one environment; choose it."]
    if role_scope in (Role.Scope.TEAM, Role.Scope.GLOBAL) and has_environment:
        errors["environment"] = [f"The {role_slug} role is not environment-scoped; leave the environment empty."]
    if expires_at is not None and expires_at <= at:
        errors["expires_at"] = ["The expiry must be in the future."]
    elif privileged and expires_at is None:
        errors["expires_at"] = [f"This grant is privileged and needs an expiry (at most {max_lifetime.days} days)."]
    elif privileged and expires_at > at + max_lifetime:
        errors["expires_at"] = [f"Privileged grants may last at most {max_lifetime.days} days."]
    return errors


# --- G3: conflict rules -----------------------------------------------------------------------------


def rule_applies(rule: ConflictRule, environment: Environment) -> bool:
    """A rule concerns the environments of its tier (every tier when it names none)."""
    return not rule.tier or environment.tier == rule.tier


def rule_pairs(rule: ConflictRule, held: Iterable[str], added: Iterable[str]) -> bool:
    """Adding ``added`` to ``held`` puts the rule's two duties in one hand."""
    held, added = set(held), set(added)
    return (rule.duty_a in added and rule.duty_b in held) or (rule.duty_b in added and rule.duty_a in held)


def rule_for_pair(rules: Iterable[ConflictRule], duty_a: str, duty_b: str) -> ConflictRule | None:
    """The active rule that pairs these two duties (an SoD exception is only for such a pair)."""
    if duty_a == duty_b:
        return None
    return next((r for r in rules if r.is_active and {r.duty_a, r.duty_b} == {duty_a, duty_b}), None)


def covering_exception(exceptions: Iterable[SoDException], rule: ConflictRule, environment: Environment,
                       at: datetime) -> SoDException | None:
    """The first exception that lets this user hold the rule's duties for ``environment`` at ``at``."""
    return next((e for e in exceptions if e.covers(rule.duty_a, rule.duty_b, environment, at)), None)


def describe(assignment: RoleAssignment) -> str:
    where = assignment.environment.slug if assignment.environment_id else "all environments"
    return f"grant #{assignment.pk} ({assignment.role.slug} in {where}, team {assignment.team.slug})"


@dataclass(frozen=True)
class Conflict:
    rule: ConflictRule
    environment: Environment
    other: RoleAssignment | None  # None: the role conflicts with itself
    exception: SoDException | None

    def reason(self) -> Reason:
        against = describe(self.other) if self.other else "the duties of this role itself"
        return Reason(
            "sod_conflict",
            f"Conflicts with {against}: {self.rule.duty_a} and {self.rule.duty_b} may not be held together "
            f"for {self.environment.slug} ({self.environment.tier}).",
        )


@dataclass(frozen=True)
class Held:
    """A grant the user holds (in force or pending), loaded for the rule."""

    assignment: RoleAssignment
    duties: frozenset[str]


def conflicts(*, new_duties: Iterable[str], environment: Environment | None, held: Iterable[Held],
              rules: Iterable[ConflictRule], environments: Iterable[Environment],
              exceptions: Iterable[SoDException], at: datetime) -> list[Conflict]:
    """G3: the conflicts a grant of ``new_duties`` for ``environment`` (None: every environment)
    would create with the role itself and with each of ``held``; ``exception`` names what covers
    one, if anything. ``environments`` is every environment (what a grant for all of them reaches)."""
    new_duties = set(new_duties) & ENVIRONMENT_DUTIES
    rules = [r for r in rules if r.is_active]
    if not new_duties or not rules:
        return []
    environments = list(environments)
    exceptions = list(exceptions)
    targets = [environment] if environment is not None else environments
    found: list[Conflict] = []
    for rule in rules:
        for env in targets:
            if rule_applies(rule, env) and rule_pairs(rule, new_duties, new_duties):
                found.append(Conflict(rule, env, None, covering_exception(exceptions, rule, env, at)))
    for other in held:
        other_duties = other.duties & ENVIRONMENT_DUTIES
        other_targets = [other.assignment.environment] if other.assignment.environment_id else environments
        overlap = [env for env in targets if env in other_targets]
        for rule in rules:
            env = next((e for e in overlap if rule_applies(rule, e) and rule_pairs(rule, other_duties, new_duties)), None)
            if env is not None:
                found.append(Conflict(rule, env, other.assignment, covering_exception(exceptions, rule, env, at)))
    return found


def held_conflicts(*, duties_by_environment: Mapping[Environment, Iterable[str]], rules: Iterable[ConflictRule],
                   exceptions: Iterable[SoDException], at: datetime) -> list[tuple[ConflictRule, Environment]]:
    """G3 after the fact: (rule, environment) for each active rule whose two duties one user holds
    for an environment of its tier, with no exception covering them."""
    exceptions = list(exceptions)
    rules = [r for r in rules if r.is_active]
    found = []
    for env, held in duties_by_environment.items():
        held = set(held)
        for rule in rules:
            if rule_applies(rule, env) and {rule.duty_a, rule.duty_b} <= held \
                    and covering_exception(exceptions, rule, env, at) is None:
                found.append((rule, env))
    return found
