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

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model

from audit.models import AuditEvent
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
def _history_date_conversion(vendor: str) -> tuple:
    """The policy history's ``history_date`` column under alias ``h`` and its converters (the
    backend's, then the field's), found once per vendor: ``ApprovalPolicy.history`` builds a
    manager class at each access."""
    col = ApprovalPolicy.history.model._meta.get_field("history_date").get_col("h")
    return col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


def _history_date(value):
    """A ``history_date`` read by the decision's statement, converted as the ORM converts it."""
    col, converters = _history_date_conversion(connection.vendor)
    for convert in converters:
        value = convert(value, col, connection)
    return value


@cache
def _statements(vendor: str, with_team: bool, gate: bool, lock: bool, decision: bool = False) -> tuple[str, str]:
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
    if decision:
        # What a decision records beyond the policy's facts: whether the actor is on call for the
        # team (``Approval.is_on_call``), and the policy version (``selectors.decision_facts``, the
        # attestations), its latest history row, the newest save first.
        on_call = Team.on_call_reviewers.through
        history = table(ApprovalPolicy.history.model)
        latest = (f"FROM {history} h WHERE h.{q('id')} = pol.{q('id')} "
                  f"ORDER BY h.{q('history_date')} DESC, h.{q('history_id')} DESC LIMIT 1")
        # And the new-IP check's two questions (releases.anomalies): has the actor acted from any
        # recorded address before, and from this one (``ip``)?
        events = table(AuditEvent)
        columns += (
            f", EXISTS (SELECT 1 FROM {q(on_call._meta.db_table)} oc WHERE oc.{q('team_id')} = cr.{q('team_id')} "  # nosec B608: names from the models' metadata, values bound
            f"AND oc.{q('user_id')} = %s), (SELECT h.{q('history_id')} {latest}), (SELECT h.{q('history_date')} {latest})"
            f", EXISTS (SELECT 1 FROM {events} e WHERE e.{q('actor_id')} = %s AND e.{q('ip')} IS NOT NULL)"
            f", EXISTS (SELECT 1 FROM {events} e WHERE e.{q('actor_id')} = %s AND e.{q('ip')} = %s)"
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
           with_team: bool = False, decision: bool = False, ip: str | None = None) -> ChangeRequest | None:
    """The change request ``pk`` with its environment, policy and prior environment, its approvals
    (without their reviewers) and contributor history, as ``policy_context`` reads them; None if
    there is none. With ``actor`` and ``at`` (the gate), it also carries ``actor_in_team`` and
    ``in_freeze`` (``selectors.change_for_gate`` and ``policy_context`` read them). ``lock`` takes the change's row lock
    in the same statement. ``decision`` (with ``actor``): it also carries ``actor_on_call`` (the
    actor is an on-call reviewer of the team), and the policy ``latest_version``, its latest
    history row as ``(history_id, history_date)`` (None if it has none), for the decision's record,
    and ``actor_seen_from``: ``(ip, has_history, seen_here)``, whether the actor acted from any
    recorded address before and from ``ip`` (the request's), for the new-IP check."""
    gate = actor is not None
    change_sql, children_sql = _statements(connection.vendor, with_team, gate, lock, decision)
    params = [pk]
    if gate:
        at_db = FreezeWindow._meta.get_field("starts_at").get_db_prep_value(at, connection)
        params = [actor.pk, at_db, at_db, pk]
        if decision:  # before the change's id: on call, then the new-IP check's actor, actor, address
            ip_db = AuditEvent._meta.get_field("ip").get_db_prep_value(ip, connection)
            params[3:3] = [actor.pk, actor.pk, actor.pk, ip_db]
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
        start += 2
    if decision:
        cr.actor_on_call = bool(row[start])
        if policy is not None:
            policy.latest_version = None if row[start + 1] is None else (
                row[start + 1], _history_date(row[start + 2]))
        cr.actor_seen_from = (ip, bool(row[start + 3]), bool(row[start + 4]))
    _prefetched(cr, "approvals", [APPROVAL.build(values) for values in approval_rows])
    _prefetched(cr, "contributor_history",
                [RevisionContributor(change_request_id=pk, user_id=user_id) for user_id in contributor_ids])
    return cr


@cache
def _answer_statement(vendor: str) -> str:
    """The SQL of ``answer`` for this vendor: one row per approval (kind 0, with its reviewer), per
    current contributor (1) and per requested reviewer (2), each with the user's id and username,
    and the author and reviewer of the post-implementation review (3); people in id order."""
    q = connection.ops.quote_name
    User = get_user_model()
    users, blanks = q(User._meta.db_table), ", ".join(["NULL"] * APPROVAL.width)
    uid, name = q(User._meta.pk.column), q(User.USERNAME_FIELD)
    parts = [
        f"SELECT 0, {APPROVAL.sql(q)}, u.{uid}, u.{name} FROM {q(Approval._meta.db_table)} a "  # nosec B608: names from the models' metadata, values bound
        f"LEFT OUTER JOIN {users} u ON u.{uid} = a.{q('reviewer_id')} WHERE a.{q('change_request_id')} = %s"
    ]
    for kind, relation in ((1, "contributors"), (2, "requested_reviewers")):
        field = ChangeRequest._meta.get_field(relation)
        through = field.remote_field.through._meta
        own, other = (q(through.get_field(n).column) for n in (field.m2m_field_name(), field.m2m_reverse_field_name()))
        parts.append(
            f"SELECT {kind}, {blanks}, u.{uid}, u.{name} FROM {q(through.db_table)} t "  # nosec B608: names from the models' metadata, values bound
            f"INNER JOIN {users} u ON u.{uid} = t.{other} WHERE t.{own} = %s"
        )
    parts.append(f"SELECT 3, {blanks}, u.{uid}, u.{name} FROM {users} u WHERE u.{uid} IN (%s, %s)")  # nosec B608
    # Approvals in Approval's order; people by id, as ``selectors.with_details`` prefetches them.
    return (" UNION ALL ".join(parts)
            + f" ORDER BY 1, {_position('created_at')}, {_position('id')}, {APPROVAL.width + 2}")


def answer(cr: ChangeRequest) -> ChangeRequest:
    """``cr`` with what its API representation reads beyond its own row, team and environment (one
    statement, built once): its approvals with their reviewers, its current contributors and
    requested reviewers, its author and PIR reviewer (id and username: what the answer names).
    For a service that answers with the change it just wrote, instead of reading it all again."""
    User = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(_answer_statement(connection.vendor), [cr.pk, cr.pk, cr.pk, cr.author_id, cr.pir_by_id])
        rows = cursor.fetchall()
    width = APPROVAL.width
    person = lambda values: None if values[0] is None else User.from_db(connection.alias, ["id", User.USERNAME_FIELD], list(values))  # noqa: E731
    approvals, listed, named = [], {1: [], 2: []}, {}
    for row in rows:
        kind, user = row[0], person(row[1 + width:3 + width])
        if kind == 0:
            approval = APPROVAL.build(row[1:1 + width])
            approval.reviewer = user
            approvals.append(approval)
        elif kind in listed:
            listed[kind].append(user)
        else:
            named[user.pk] = user
    _prefetched(cr, "approvals", approvals)
    _prefetched(cr, "contributors", listed[1])
    _prefetched(cr, "requested_reviewers", listed[2])
    cr.author = named[cr.author_id]
    cr.pir_by = named.get(cr.pir_by_id) if cr.pir_by_id else None
    return cr
