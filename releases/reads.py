"""The change reads on the hot paths as statements built once (issue 21): the gate, and the row a
decision locks. The ORM spent more time building and compiling these queries than PostgreSQL
spent running them (docs/performance.md: 0.35–0.45 ms of Python for each ``EXISTS``, 0.42 ms of
planning): here each statement's SQL is generated once per database vendor from the models' own
metadata (no column is listed by hand), and each call binds new values, runs it and builds the
model instances with ``Model.from_db`` and the fields' own converters, as the ORM does.

Two statements, always the same ones: the change with its environment, policy and the policy's
prior environment (and, for the gate, the actor's team membership and a freeze window in force as
``EXISTS``); then its approvals and the ids of everyone ever listed as a contributor, together. What they read and
how the policy reads it is what the services' ``selectors.change_request_for_decision`` read through
the ORM before; ``tests/releases/test_gate_read.py`` holds the two to the same answers for every
persona, change and action, and over random stories.
"""
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import Model

from governance.models import Environment, Membership, Team
from releases.models import Approval, ApprovalPolicy, ChangeRequest, FreezeWindow, RevisionContributor


@dataclass(frozen=True)
class _Columns:
    """One model's concrete columns in a statement, under ``alias``."""

    model: type[Model]
    alias: str

    def sql(self, quote) -> str:
        return ", ".join(f"{self.alias}.{quote(f.column)}" for f in self.model._meta.concrete_fields)

    @property
    def width(self) -> int:
        return len(self.model._meta.concrete_fields)

    def build(self, values) -> Model | None:
        """The instance for these values, converted as the ORM converts them; None for a row an
        outer join did not find (its primary key is NULL)."""
        pk_index, attnames, converters = _conversions(self, connection.vendor)
        if values[pk_index] is None:
            return None
        converted = []
        for (col, convert_all), value in zip(converters, values, strict=True):
            for convert in convert_all:
                value = convert(value, col, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, attnames, converted)


@cache
def _conversions(columns: _Columns, vendor: str) -> tuple[int, list[str], list[tuple]]:
    """For ``columns`` on this vendor, found once: where the primary key is, the fields' attribute
    names, and each column with its converters (the backend's, then the field's)."""
    fields = columns.model._meta.concrete_fields
    cols = [field.get_col(columns.alias) for field in fields]
    converters = [(col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in cols]
    return [f.primary_key for f in fields].index(True), [f.attname for f in fields], converters


CHANGE = _Columns(ChangeRequest, "cr")
ENVIRONMENT = _Columns(Environment, "env")
POLICY = _Columns(ApprovalPolicy, "pol")
PRIOR = _Columns(Environment, "pe")
TEAM = _Columns(Team, "team")
APPROVAL = _Columns(Approval, "a")


def _parts(with_team: bool) -> list[_Columns]:
    """The models of the change's statement, in the order of its columns."""
    return [CHANGE, ENVIRONMENT, POLICY, PRIOR] + ([TEAM] if with_team else [])


def _position(name: str) -> int:
    """Where an approval's column ``name`` is in the children statement's rows (1-based, after the kind)."""
    return 2 + [f.name for f in Approval._meta.concrete_fields].index(name)


@cache
def _statements(vendor: str, with_team: bool, gate: bool, lock: bool) -> tuple[str, str]:
    """The two statements' SQL for this vendor (``%s`` placeholders, in the order ``change`` binds)."""
    q = connection.ops.quote_name
    table = lambda model: q(model._meta.db_table)  # noqa: E731
    columns = ", ".join(part.sql(q) for part in _parts(with_team))
    joins = [
        f"INNER JOIN {table(Environment)} env ON env.{q('id')} = cr.{q('environment_id')}",
        f"LEFT OUTER JOIN {table(ApprovalPolicy)} pol ON pol.{q('environment_id')} = env.{q('id')}",
        f"LEFT OUTER JOIN {table(Environment)} pe ON pe.{q('id')} = pol.{q('require_prior_environment_id')}",
    ]
    if with_team:
        joins.append(f"INNER JOIN {table(Team)} team ON team.{q('id')} = cr.{q('team_id')}")
    if gate:
        through = FreezeWindow.environments.through
        columns += (
            f", EXISTS (SELECT 1 FROM {table(Membership)} m WHERE m.{q('user_id')} = %s AND m.{q('team_id')} = "  # nosec B608: names from the models' metadata, values bound
            f"cr.{q('team_id')}), EXISTS (SELECT 1 FROM {table(FreezeWindow)} fw INNER JOIN {q(through._meta.db_table)} "
            f"fwe ON fwe.{q('freezewindow_id')} = fw.{q('id')} WHERE fwe.{q('environment_id')} = cr.{q('environment_id')} "
            f"AND fw.{q('starts_at')} <= %s AND fw.{q('ends_at')} > %s)"
        )
    change = f"SELECT {columns} FROM {table(ChangeRequest)} cr {' '.join(joins)} WHERE cr.{q('id')} = %s"  # nosec B608: names from the models' metadata, values bound
    if lock and connection.features.has_select_for_update_of:
        change += " FOR UPDATE OF cr"  # the change's own row; SQLite's write transaction serialises already
    # The approvals and the contributors' ids in one round trip: a row per approval (kind 0, its
    # columns) and per contributor record (kind 1, its user id), approvals in Approval's own order.
    blanks = ", ".join(["NULL"] * APPROVAL.width)
    children = (
        f"SELECT 0, {APPROVAL.sql(q)}, NULL FROM {table(Approval)} a WHERE a.{q('change_request_id')} = %s "  # nosec B608: names from the models' metadata, values bound
        f"UNION ALL SELECT 1, {blanks}, rc.{q('user_id')} FROM {table(RevisionContributor)} rc "
        f"WHERE rc.{q('change_request_id')} = %s ORDER BY 1, {_position('created_at')}, {_position('id')}"
    )
    return change, children


def _prefetched(instance: ChangeRequest, name: str, objects: list) -> None:
    """What ``prefetch_related(name)`` leaves on an instance: ``instance.<name>.all()`` answers
    from ``objects`` without a query."""
    queryset = getattr(instance, name).all()
    queryset._result_cache, queryset._prefetch_done = objects, True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


def change(pk: int, *, actor=None, at: datetime | None = None, lock: bool = False,
           with_team: bool = False) -> ChangeRequest | None:
    """The change request ``pk`` with its environment, policy and prior environment, its approvals
    (without their reviewers) and contributor history, as ``policy_context`` reads them; None if
    there is none. With ``actor`` and ``at`` (the gate), it also carries ``actor_in_team`` and
    ``in_freeze`` (``selectors.change_for_gate`` and ``policy_context`` read them). ``lock`` takes the change's row lock
    in the same statement."""
    gate = actor is not None
    change_sql, children_sql = _statements(connection.vendor, with_team, gate, lock)
    params = [pk]
    if gate:
        at_db = FreezeWindow._meta.get_field("starts_at").get_db_prep_value(at, connection)
        params = [actor.pk, at_db, at_db, pk]
    with connection.cursor() as cursor:
        cursor.execute(change_sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(children_sql, [pk, pk])
        children = cursor.fetchall()
    approval_rows = [child[1:-1] for child in children if child[0] == 0]
    contributor_ids = {child[-1] for child in children if child[0] == 1}
    built, start = [], 0
    for part in _parts(with_team):
        built.append(part.build(row[start:start + part.width]))
        start += part.width
    cr, environment, policy, prior = built[:4]
    ApprovalPolicy.environment.field.remote_field.set_cached_value(environment, policy)  # environment.approval_policy
    if policy is not None:
        policy.require_prior_environment = prior
        ApprovalPolicy.environment.field.set_cached_value(policy, environment)
    cr.environment = environment
    if with_team:
        cr.team = built[4]
    if gate:
        cr.actor_in_team, cr.in_freeze = bool(row[start]), bool(row[start + 1])
    _prefetched(cr, "approvals", [APPROVAL.build(values) for values in approval_rows])
    _prefetched(cr, "contributor_history",
                [RevisionContributor(change_request_id=pk, user_id=user_id) for user_id in contributor_ids])
    return cr
