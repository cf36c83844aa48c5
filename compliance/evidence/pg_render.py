"""PostgreSQL fast path of the evidence export: PostgreSQL renders the final CSV and JSON lines.

On a large period the exporter's cost is not reading rows but turning them into text in Python
(a row dict, twenty CSV cells, a JSON line per row). On PostgreSQL the deployments (SOX
production_deployments, ISO changes) and the role grants are instead produced by ONE statement
each, read through a server-side cursor, whose rows already are ``(csv_line, json_line,
exception bitmask)``: Python only joins a batch of them, hands the bytes to the ZIP pipe and
counts. (``COPY … TO STDOUT`` is no faster here, the statement's own work dominates, and it would
hold the connection so the export's progress could not move until the dataset is done.) The bytes are the ones the Python path writes (``compliance.evidence.writer`` and
``datasets.deployment_rows`` / ``grant_rows``); ``tests/evidence/test_pg_render.py`` builds both
ways on awkward data and compares the files byte for byte.

What stays in Python, rendered once per export by the writer's own functions and passed to the
statement as a small VALUES list: the recorded approval-policy versions (``policy_at_deploy``,
``policy_source``, and each version's ``below_baseline`` findings), the windows in which a control
was weaker than at the period's start with their ``control_weakened`` findings
(``compliance.evidence.control_history``: the statement only looks a deployment up in them, it holds no
rule of its own), the grants held under an SoD exception, and the roles' privilege flags.

The population is the dataset's own queryset, used as the statement's inner subquery, so the
rows (and the manifest's ``query``) are exactly the Python path's. Other datasets, and SQLite,
keep the Python path.
"""
import json
from contextlib import contextmanager

from django.db import connection

from compliance.evidence import datasets as ds
from compliance.evidence.writer import NEUTRALISED_PREFIXES, DatasetWriter, csv_value
from releases.models import Approval, ChangeRequest, Deployment

_json_text = json.JSONEncoder(ensure_ascii=False).encode  # the encoder of writer._json_line


def _lit(text: str) -> str:
    """A SQL string literal, ``%`` doubled: the statement goes through the cursor's mogrify."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _lit_value(value, sql_type: str) -> str:
    if value is None:
        return f"NULL::{sql_type}"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_lit(str(v)) for v in value) + f"]::{sql_type}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "isoformat"):
        return f"{_lit(value.isoformat())}::{sql_type}"
    return f"{_lit(str(value))}::{sql_type}"


_NEUTRALISED = ", ".join(_lit(p) for p in NEUTRALISED_PREFIXES)


def _neutralised(expr: str) -> str:
    return f"(CASE WHEN left({expr}, 1) IN ({_NEUTRALISED}) THEN '''' || {expr} ELSE {expr} END)"


def _quoted(expr: str) -> str:
    """RFC 4180 quoting as Python's csv module does it (QUOTE_MINIMAL, lineterminator CRLF)."""
    return (f"(CASE WHEN strpos({expr}, '\"') > 0 OR strpos({expr}, ',') > 0 OR strpos({expr}, chr(13)) > 0 "
            f"OR strpos({expr}, chr(10)) > 0 THEN '\"' || replace({expr}, '\"', '\"\"') || '\"' ELSE {expr} END)")


# Each renderer returns (csv cell expression, json value expression), both never NULL.

def text(expr: str) -> tuple[str, str]:
    """A string cell. Rendered in the statement's last level but one (see _statement): one regular
    expression tells the common case — nothing to neutralise, quote or escape, where the cell is the
    string itself — from the rest, rendered in full."""
    return ("TEXT", expr)


# A string needs work when it holds a quote, a comma, a backslash or a control character (CSV
# quoting, JSON escaping), or starts with = + - @ (tab and CR are control characters).
_NEEDS_WORK = "('[\",\\\\' || chr(1) || '-' || chr(31) || ']|^[-=+@]')"
# The same over a row's strings joined by DEL, each of them preceded by one (see _statement).
_ROW_NEEDS_WORK = "('[\",\\\\' || chr(1) || '-' || chr(31) || ']|' || chr(127) || '[-=+@]')"


def _text_parts(expr: str, plain: str) -> tuple[str, str]:
    slow_csv = f"coalesce({_quoted(_neutralised(expr))}, '')"
    slow_json = f"coalesce(to_json({expr})::text, 'null')"
    return (f"(CASE WHEN {plain} THEN {expr} ELSE {slow_csv} END)",
            f"(CASE WHEN {plain} THEN '\"' || {expr} || '\"' ELSE {slow_json} END)")


def integer(expr: str) -> tuple[str, str]:
    return f"coalesce(({expr})::text, '')", f"coalesce(({expr})::text, 'null')"


def boolean(expr: str) -> tuple[str, str]:
    value = f"(CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END)"
    return f"coalesce({value}, '')", f"coalesce({value}, 'null')"


def iso_sql(expr: str) -> str:
    """writer.iso in SQL: ISO 8601 UTC with Z, microseconds only when there are some (NULL stays NULL)."""
    utc = f"(({expr}) AT TIME ZONE 'UTC')"
    return (f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN {utc} = date_trunc('second', {utc}) "
            f"THEN 'Z' ELSE to_char({utc}, '.US\"Z\"') END)")


def timestamp(iso_column: str) -> tuple[str, str]:
    """``iso_column`` already holds iso_sql(...), computed once in a lower level of the statement
    (each level ends with OFFSET 0, which keeps PostgreSQL from inlining it and computing it twice)."""
    return f"coalesce({iso_column}, '')", f"coalesce('\"' || {iso_column} || '\"', 'null')"


def text_list(expr: str) -> tuple[str, str]:
    """A text[] without NULL elements, as a list of strings ("; "-joined in the CSV). Rendered in
    the statement's last level but one (see _statement), so each array is joined once."""
    return ("LIST", expr)


def _list_parts(expr: str) -> tuple[str, str]:
    # array_to_json writes ["a","b"]; Python writes ["a", "b"]. '","' occurs in that text only
    # between two elements (a quote inside a string is always escaped as \"), so the replace is exact.
    return f"array_to_string({expr}, '; ')", f"replace(array_to_json({expr})::text, '\",\"', '\", \"')"


def _lines(columns: list[tuple[str, tuple[str, str]]]) -> tuple[str, str]:
    """concat_ws / concat build each line in one allocation (a chain of ``||`` copies the growing
    line once per cell). The CSV line is without its CRLF."""
    csv_line = "concat_ws(',', " + ", ".join(c for _, (c, _) in columns) + ")"
    parts = []
    for index, (name, (_, j)) in enumerate(columns):
        parts.append(_lit(("{" if index == 0 else ", ") + json.dumps(name) + ": "))
        parts.append(j)
    json_line = "concat(" + ", ".join(parts) + ", '}')"
    return csv_line, json_line


def _mask(flags: list[str]) -> str:
    return " + ".join(f"(CASE WHEN {f} THEN {1 << i} ELSE 0 END)" for i, f in enumerate(flags)) or "0"


def _values(rows: list[tuple], types: tuple[str, ...]) -> str:
    """A VALUES list of literals (a handful of rows); one all-NULL row when empty (it matches nothing)."""
    rows = rows or [(None,) * len(types)]
    return "VALUES " + ", ".join(
        "(" + ", ".join(_lit_value(v, t) for v, t in zip(row, types, strict=True)) + ")" for row in rows
    )


def _inner(queryset, names: tuple[str, ...]) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    aliases = ", ".join(f"c_{n.replace('__', '_')}" if n != "pk" else "c_pk" for n in names)
    return f"({sql}) AS q({aliases})", list(params)


# --- Deployments -------------------------------------------------------------------------------


def _cell(value) -> str:
    """One value as the Python writer writes its CSV cell (quoted as needed)."""
    return DatasetWriter._csv_text([[csv_value(value), ""]]).decode("utf-8")[:-3]


POLICY_NUMBERS = ("min_approvals", "emergency_min_approvals", "min_security_approvals",
                  "high_risk_security_approvals", "team_reviewer_required")


def _policy_table(ctx: ds.Context) -> str:
    """Every recorded policy version as (environment, valid from, valid until, rendered policy and
    source, the numbers policy_findings needs, its below_baseline findings): the bisect of
    datasets.policy_at as intervals."""
    rows = []
    for environment_id, (dates, versions, before_first) in ctx.policy_history.items():
        below, below_first = ctx.control_history.policy_versions.get(environment_id, ([[]] * len(versions), []))
        bounds = [(None, dates[0], before_first, below_first)]
        for i, version in enumerate(versions):
            bounds.append((dates[i], dates[i + 1] if i + 1 < len(dates) else None, version, below[i]))
        for valid_from, valid_until, (policy, source), below_baseline in bounds:
            if valid_from is not None and valid_until is not None and valid_until <= valid_from:
                continue  # an edit saved at the same moment as the next one: never in force
            numbers = [policy[k] for k in POLICY_NUMBERS] if policy is not None else [None] * len(POLICY_NUMBERS)
            rows.append((environment_id, valid_from, valid_until, _cell(policy), _json_text(policy), _cell(source),
                         _json_text(source), policy is not None, *numbers, below_baseline))
    return _values(rows, ("bigint", "timestamptz", "timestamptz", "text", "text", "text", "text", "boolean",
                          "integer", "integer", "integer", "integer", "boolean", "text[]"))


def _no_policy_table(ctx: ds.Context) -> str:
    """The below_baseline findings of a production environment with no recorded policy (held to
    the engine's default one)."""
    return _values(list(ctx.control_history.no_policy.items()), ("bigint", "text[]"))


def _window_table(ctx: ds.Context) -> str:
    """The windows in which a control was weaker than at the period's start (computed once, in
    compliance.evidence.control_history), one row per environment they concern (environment NULL for one
    concerning every environment), each with its finding already written."""
    rows = []
    for window in ctx.control_history.windows:
        for environment in window.environments or (None,):
            rows.append((window.ordinal, environment, window.everywhere, window.since, window.until, window.finding))
    return _values(rows, ("integer", "text", "boolean", "timestamptz", "timestamptz", "text"))


def _weakened_at(environment: str, at: str) -> str:
    """The findings of the windows open at ``at`` for the environment (ControlHistory.weakened_at)."""
    return (f"ARRAY(SELECT w.finding FROM w WHERE (w.everywhere OR w.environment = {environment}) "
            f"AND w.opened_at <= {at} AND (w.closed_at IS NULL OR {at} < w.closed_at) ORDER BY w.ordinal)")  # built from code constants only  # nosec B608


def _grant_table(ctx: ds.Context) -> str:
    rows = [(user_id, *grant) for user_id, grants in ctx.exception_grants.items() for grant in grants]
    return _values(rows, ("integer", "bigint", "bigint", "timestamptz", "timestamptz", "timestamptz"))


def _held(user: str, environment: str, at: str) -> str:
    """Grant row g is held under an SoD exception by ``user`` for the environment at ``at``
    (datasets._under_exception)."""
    return (f"g.user_id = {user} AND (g.environment_id IS NULL OR g.environment_id = {environment}) "
            f"AND g.approved_at IS NOT NULL AND g.approved_at <= {at} "
            f"AND (g.expires_at IS NULL OR g.expires_at > {at}) AND (g.ended_at IS NULL OR g.ended_at > {at})")


def _participant_exceptions(role: str, user: str, username: str, at: str) -> str:
    return (f"ARRAY(SELECT {_lit(role + ' ')} || {username} || ' under SoD exception #' || x.exc "  # built from code constants and _lit()-escaped values only  # nosec B608
            f"FROM (SELECT DISTINCT g.exc FROM g WHERE {_held(user, 'q.c_environment_id', at)}) x ORDER BY x.exc)")


def deployment_statement(ctx: ds.Context, dataset: ds.Dataset) -> tuple[str, list]:
    inner, params = _inner(dataset.queryset(ctx), ds.DEPLOYMENT_FIELDS)
    approved, auto = _lit(Approval.Decision.APPROVED), _lit(Approval.Via.AUTO)
    at_iso = iso_sql("a.created_at")
    approver_name = "(CASE WHEN a.reviewer_id IS NOT NULL THEN u.username ELSE 'system (policy)' END)"
    approver_role = f"(CASE WHEN a.is_security THEN 'security_approve' WHEN a.via = {auto} THEN 'auto' ELSE 'approve' END)"
    approver_tm = "(CASE WHEN a.is_team_member THEN 'true' ELSE 'false' END)"
    if ctx.exception_grants:
        exceptions = f"""
            ARRAY(SELECT 'approver ' || x.username || ' under SoD exception #' || x.exc FROM (
                SELECT DISTINCT a.created_at, a.id, au.username, g.exc
                FROM releases_approval a JOIN auth_user au ON au.id = a.reviewer_id
                JOIN g ON {_held("a.reviewer_id", "q.c_environment_id", "a.created_at")}
                WHERE a.change_request_id = q.c_change_request_id AND a.revision = q.c_revision
                  AND a.decision = {approved}
              ) x ORDER BY x.created_at, x.id, x.exc)
            || {_participant_exceptions("deployer", "q.c_deployer_id", "q.c_deployer_username", "q.c_started_at")}
            || {_participant_exceptions("author", "q.c_change_request_author_id", "q.c_change_request_author_username",
                                        "q.c_change_request_created_at")}"""  # built from code constants and _lit()-escaped values only  # nosec B608
    else:
        exceptions = "ARRAY[]::text[]"
    weakened = (_weakened_at("q.c_environment_slug", "q.c_started_at")
                if ctx.control_history.windows else "ARRAY[]::text[]")
    sql_r = f"""
        SELECT q.*,
          {iso_sql("q.c_change_request_created_at")} AS i_created,
          {iso_sql("q.c_change_request_submitted_at")} AS i_submitted,
          {iso_sql("q.c_change_request_approved_at")} AS i_approved,
          {iso_sql("q.c_started_at")} AS i_started,
          {iso_sql("q.c_finished_at")} AS i_finished,
          {iso_sql("q.c_rolled_back_at")} AS i_rolled_back,
          {iso_sql("q.c_change_request_pir_due_at")} AS i_pir_due,
          {iso_sql("q.c_change_request_pir_at")} AS i_pir,
          ap.n AS ap_n, ap.n_security AS ap_security, ap.auto AS ap_auto, ap.team AS ap_team,
          ap.csv AS ap_csv, ap.json AS ap_json, co.names AS co_names,
          p.policy_csv, p.policy_json, p.source_csv, p.source_json, p.has_policy,
          p.min_approvals, p.emergency_min_approvals, p.min_security_approvals, p.high_risk_security_approvals,
          p.team_reviewer_required,
          array_remove(ARRAY[
            CASE WHEN q.c_change_request_author_id = ANY(ap.ids) THEN 'author_approved' END,
            CASE WHEN co.ids && ap.ids THEN 'contributor_approved' END,
            CASE WHEN q.c_deployer_id = q.c_change_request_author_id THEN 'deployer_is_author' END,
            CASE WHEN q.c_deployer_id = ANY(co.ids) THEN 'deployer_is_contributor' END,
            CASE WHEN q.c_deployer_id = ANY(ap.ids) THEN 'deployer_approved' END
          ], NULL) AS sod,
          {exceptions} AS sod_exceptions,
          {weakened} AS weakened, coalesce(p.below_baseline, nb.findings, ARRAY[]::text[]) AS below_baseline
        FROM {inner}
        CROSS JOIN LATERAL (
          SELECT count(*) AS n, count(*) FILTER (WHERE a.is_security) AS n_security,
            coalesce(bool_or(a.via = {auto}), false) AS auto, coalesce(bool_or(a.is_team_member), false) AS team,
            array_agg(a.reviewer_id) FILTER (WHERE a.reviewer_id IS NOT NULL) AS ids,
            string_agg('username=' || a.name || ' role=' || a.role || ' team_member=' || {approver_tm}
                       || ' via=' || a.via || ' at=' || a.at_iso, '; ' ORDER BY a.created_at, a.id) AS csv,
            string_agg('{{"username": ' || to_json(a.name)::text || ', "role": "' || a.role
                       || '", "team_member": ' || {approver_tm} || ', "via": ' || to_json(a.via)::text
                       || ', "at": "' || a.at_iso || '"}}', ', ' ORDER BY a.created_at, a.id) AS json
          FROM (
            SELECT a.*, {approver_name} AS name, {approver_role} AS role, {at_iso} AS at_iso
            FROM releases_approval a LEFT JOIN auth_user u ON u.id = a.reviewer_id
            WHERE a.change_request_id = q.c_change_request_id AND a.revision = q.c_revision
              AND a.decision = {approved}
          ) a
        ) ap
        CROSS JOIN LATERAL (
          SELECT array_agg(u.username ORDER BY u.username COLLATE "C") AS names, array_agg(m.user_id) AS ids
          FROM (SELECT DISTINCT r.user_id FROM releases_revisioncontributor r
                WHERE r.change_request_id = q.c_change_request_id) m
          JOIN auth_user u ON u.id = m.user_id
        ) co
        LEFT JOIN p ON p.environment_id = q.c_environment_id
             AND (p.valid_from IS NULL OR p.valid_from <= q.c_started_at)
             AND (p.valid_until IS NULL OR q.c_started_at < p.valid_until)
        LEFT JOIN nb ON nb.environment_id = q.c_environment_id
        ORDER BY q.c_started_at, q.c_pk OFFSET 0"""  # built from code constants and _lit()-escaped values only  # nosec B608
    emergency = f"(r.c_change_request_change_type = {_lit(ChangeRequest.ChangeType.EMERGENCY)})"
    required = f"(CASE WHEN {emergency} THEN r.emergency_min_approvals ELSE r.min_approvals END)"
    security_base = (f"(CASE WHEN r.c_change_request_risk = {_lit(ChangeRequest.Risk.HIGH)} THEN "
                     "greatest(r.min_security_approvals, r.high_risk_security_approvals) ELSE r.min_security_approvals END)")
    required_security = (f"(CASE WHEN r.ap_auto AND r.c_change_request_change_type = "
                         f"{_lit(ChangeRequest.ChangeType.STANDARD)} THEN 0 ELSE {security_base} END)")
    policy_findings = f"""(CASE WHEN r.has_policy THEN array_remove(ARRAY[
          CASE WHEN r.ap_n < {required} THEN 'approvals_below_policy (' || r.ap_n || ' of ' || {required} || ')' END,
          CASE WHEN r.ap_security < {required_security}
               THEN 'security_approvals_below_policy (' || r.ap_security || ' of ' || {required_security} || ')' END,
          CASE WHEN r.team_reviewer_required AND NOT r.ap_auto AND NOT r.ap_team THEN 'no_team_reviewer' END
        ], NULL) ELSE ARRAY[]::text[] END)"""
    verdict = ("(CASE WHEN cardinality(r.sod) > 0 THEN 'violation' "
               "WHEN cardinality(r.sod_exceptions) > 0 THEN 'exception' ELSE 'pass' END)")
    now = _lit_value(ctx.generated_at, "timestamptz")
    pir = f"""(CASE WHEN NOT {emergency} THEN 'not_required'
          WHEN r.c_change_request_pir_at IS NOT NULL THEN
            CASE WHEN r.c_change_request_pir_due_at IS NOT NULL
                      AND r.c_change_request_pir_at > r.c_change_request_pir_due_at
                 THEN 'done_late' ELSE 'done' END
          WHEN r.c_change_request_pir_due_at IS NULL THEN
            CASE WHEN r.c_state <> {_lit(Deployment.State.SUCCEEDED)} THEN 'not_due' ELSE 'pending' END
          WHEN {now} > r.c_change_request_pir_due_at THEN 'overdue' ELSE 'pending' END)"""
    sql_s = f"""
        SELECT r.*, {policy_findings} AS policy_findings, {verdict} AS verdict, {pir} AS pir, {emergency} AS emergency
        FROM ({sql_r}) r ORDER BY r.c_started_at, r.c_pk OFFSET 0"""  # built from code constants and _lit()-escaped values only  # nosec B608
    no_policy, no_source = ds.NO_POLICY
    columns = [
        ("deployment_id", integer("s.c_pk")),
        ("change_id", text("('CR-' || s.c_change_request_id)")),
        ("change_title", text("s.c_change_request_title")),
        ("team", text("s.c_change_request_team_slug")),
        ("environment", text("s.c_environment_slug")),
        ("environment_tier", text("s.c_environment_tier")),
        ("ticket_url", text("s.c_change_request_ticket_url")),
        ("artifact", text("s.c_artifact")),
        ("revision", integer("s.c_revision")),
        ("change_type", text("s.c_change_request_change_type")),
        ("risk", text("s.c_change_request_risk")),
        ("emergency", boolean("s.emergency")),
        ("author", text("s.c_change_request_author_username")),
        ("contributors", text_list("coalesce(s.co_names, ARRAY[]::text[])")),
        ("approvers", (f"coalesce({_quoted(_neutralised('s.ap_csv'))}, '')", "coalesce('[' || s.ap_json || ']', '[]')")),
        ("deployer", text("s.c_deployer_username")),
        ("deployment_state", text("s.c_state")),
        ("change_created_at", timestamp("s.i_created")),
        ("change_submitted_at", timestamp("s.i_submitted")),
        ("change_approved_at", timestamp("s.i_approved")),
        ("deploy_started_at", timestamp("s.i_started")),
        ("deploy_finished_at", timestamp("s.i_finished")),
        ("rolled_back_at", timestamp("s.i_rolled_back")),
        ("pipeline_url", text("s.c_pipeline_url")),
        ("pir_status", text("s.pir")),
        ("pir_due_at", timestamp("s.i_pir_due")),
        ("pir_by", text("s.c_change_request_pir_by_username")),
        ("pir_at", timestamp("s.i_pir")),
        ("policy_at_deploy", (f"coalesce(s.policy_csv, {_lit(_cell(no_policy))})",
                              f"coalesce(s.policy_json, {_lit(_json_text(no_policy))})")),
        ("policy_source", (f"coalesce(s.source_csv, {_lit(_cell(no_source))})",
                           f"coalesce(s.source_json, {_lit(_json_text(no_source))})")),
        ("policy_findings", text_list("s.policy_findings")),
        ("sod_verdict", text("s.verdict")),
        ("sod_findings", text_list("(s.sod || s.sod_exceptions)")),
        ("control_findings", text_list("(s.weakened || s.below_baseline)")),
    ]
    if [n for n, _ in columns] != dataset.column_names:
        raise RuntimeError(f"{dataset.name}: the SQL rendering's columns differ from the dataset's")
    mask = ["s.verdict = 'violation'", "s.verdict = 'exception'", "cardinality(s.policy_findings) > 0",
            "s.pir IN ('overdue', 'done_late')", "cardinality(s.weakened) > 0", "cardinality(s.below_baseline) > 0"]
    if len(mask) != len(dataset.exceptions):
        raise RuntimeError(f"{dataset.name}: one exception mask per exception kind")
    return _statement(columns, mask, sql_s, "s.c_started_at, s.c_pk", {
        "p(environment_id, valid_from, valid_until, policy_csv, policy_json, source_csv, source_json, has_policy, "
        "min_approvals, emergency_min_approvals, min_security_approvals, high_risk_security_approvals, "
        "team_reviewer_required, below_baseline)": _policy_table(ctx),
        "g(user_id, environment_id, exc, approved_at, expires_at, ended_at)": _grant_table(ctx),
        "nb(environment_id, findings)": _no_policy_table(ctx),
        "w(ordinal, environment, everywhere, opened_at, closed_at, finding)": _window_table(ctx),
    }), params


def _statement(columns, mask, source: str, order: str, tables: dict[str, str]) -> str:
    """The final statement: ``source`` (aliased s, ordered by ``order``), one more level holding
    each string and joined list once and whether the whole row is plain, and the (csv_line,
    json_line, exception bitmask) projection.

    A row is plain when none of its strings needs work (see _NEEDS_WORK): one regular expression
    over all of them, joined by DEL (0x7f) so that each string's first character follows a DEL,
    tells. A plain row's lines are its strings as they are (the common case, a few concatenations);
    any other row takes the exact rendering, string by string. A DEL inside a value only sends the
    row to the exact rendering, which is right for every value."""
    strings, fast, exact = [], [], []
    for name, spec in columns:
        if spec[0] in ("TEXT", "LIST"):
            index = len(strings)
            column = f"s.t{index}"
            if spec[0] == "LIST":
                joined, json_list = _list_parts(spec[1])
                strings.append((joined, f"{json_list} AS j{index}"))
                json_fast = json_exact = f"s.j{index}"
            else:
                joined = spec[1]
                strings.append((joined, None))
                json_fast = f"coalesce('\"' || {column} || '\"', 'null')"
                json_exact = None
            csv_exact, text_json_exact = _text_parts(column, f"({column} !~ {_NEEDS_WORK})")
            fast.append((name, (f"coalesce({column}, '')", json_fast)))
            exact.append((name, (csv_exact, json_exact or text_json_exact)))
        else:
            fast.append((name, spec))
            exact.append((name, spec))
    csv_fast, json_fast = _lines(fast)
    csv_exact, json_exact = _lines(exact)
    csv_line = f"CASE WHEN s.plain THEN {csv_fast} ELSE {csv_exact} END || chr(13) || chr(10)"
    json_line = f"CASE WHEN s.plain THEN {json_fast} ELSE {json_exact} END"
    held = "".join(f", {expr} AS t{i}" + (f", {extra}" if extra else "") for i, (expr, extra) in enumerate(strings))
    every_string = ", ".join(expr for expr, _ in strings) or "''"
    plain = f"(chr(127) || concat_ws(chr(127), {every_string})) !~ {_ROW_NEEDS_WORK} AS plain"
    ctes = ", ".join(f"{name} AS ({values})" for name, values in tables.items())
    listed = f"SELECT s.*{held}, {plain} FROM ({source}) s ORDER BY {order} OFFSET 0"  # built from code constants and _lit()-escaped values only  # nosec B608
    return (f"{'WITH ' + ctes if ctes else ''} SELECT {csv_line}, {json_line}, {_mask(mask)} FROM ({listed}) s "  # built from code constants and _lit()-escaped values only  # nosec B608
            f"ORDER BY {order}")


# --- Role grants -------------------------------------------------------------------------------


def grant_statement(ctx: ds.Context, dataset: ds.Dataset) -> tuple[str, list]:
    inner, params = _inner(dataset.queryset(ctx), ds.GRANT_FIELDS)
    start, end = _lit_value(ctx.start, "timestamptz"), _lit_value(ctx.end, "timestamptz")
    roles = _values([(pk, privileged, environment_duty) for pk, (privileged, environment_duty) in ctx.roles.items()],
                    ("integer", "boolean", "boolean"))
    production = "ARRAY[" + ", ".join(str(int(pk)) for pk in sorted(ctx.production_environments)) + "]::bigint[]"
    has_production = "true" if ctx.has_production else "false"
    privileged = (f"(CASE WHEN coalesce(ro.privileged, false) THEN true WHEN NOT coalesce(ro.environment_duty, false) "
                  f"THEN false WHEN q.c_environment_id IS NOT NULL THEN q.c_environment_id = ANY({production}) "
                  f"ELSE {has_production} END)")
    open_statuses = ", ".join(_lit(s) for s in ds.OPEN_STATUSES)

    def in_period(column):
        return f"({column} IS NOT NULL AND {start} <= {column} AND {column} < {end})"

    sql_r = f"""
        SELECT q.*, {privileged} AS privileged,
          {iso_sql("q.c_created_at")} AS i_created, {iso_sql("q.c_approved_at")} AS i_approved,
          {iso_sql("q.c_expires_at")} AS i_expires, {iso_sql("q.c_ended_at")} AS i_ended
        FROM {inner} LEFT JOIN ro ON ro.role_id = q.c_role_id
        ORDER BY q.c_created_at, q.c_pk OFFSET 0"""  # built from code constants and _lit()-escaped values only  # nosec B608
    sql_s = f"""
        SELECT r.*,
          array_remove(ARRAY[
            CASE WHEN {in_period("r.c_created_at")} THEN 'requested' END,
            CASE WHEN {in_period("r.c_approved_at")} THEN 'approved' END,
            CASE WHEN {in_period("r.c_ended_at")} THEN 'ended' END
          ], NULL) AS activity,
          array_remove(ARRAY[
            CASE WHEN r.c_requested_by_id IS NULL THEN 'no_requester (bootstrapped grant)'
                 WHEN r.c_requested_by_id = r.c_user_id THEN 'self_granted' END,
            CASE WHEN r.c_approved_by_id IS NOT NULL
                      AND (r.c_approved_by_id = r.c_user_id OR r.c_approved_by_id = r.c_requested_by_id)
                 THEN 'approver_not_independent' END,
            CASE WHEN r.privileged AND r.c_approved_at IS NOT NULL AND r.c_approved_by_id IS NULL
                 THEN 'privileged_without_second_approver' END,
            CASE WHEN r.privileged AND r.c_expires_at IS NULL AND r.c_status IN ({open_statuses})
                 THEN 'privileged_without_expiry' END
          ], NULL) AS findings
        FROM ({sql_r}) r ORDER BY r.c_created_at, r.c_pk OFFSET 0"""  # built from code constants and _lit()-escaped values only  # nosec B608
    columns = [
        ("grant_id", integer("s.c_pk")),
        ("grantee", text("s.c_user_username")),
        ("grantee_active", boolean("s.c_user_is_active")),
        ("role", text("s.c_role_slug")),
        ("privileged", boolean("s.privileged")),
        ("team", text("s.c_team_slug")),
        ("environment", text("(CASE WHEN s.c_environment_id IS NOT NULL THEN s.c_environment_slug ELSE 'all' END)")),
        ("status", text("s.c_status")),
        ("justification", text("s.c_justification")),
        ("requested_by", text("s.c_requested_by_username")),
        ("requested_at", timestamp("s.i_created")),
        ("approved_by", text("s.c_approved_by_username")),
        ("approved_at", timestamp("s.i_approved")),
        ("expires_at", timestamp("s.i_expires")),
        ("ended_at", timestamp("s.i_ended")),
        ("ended_by", text("s.c_ended_by_username")),
        ("end_reason", text("s.c_end_reason")),
        ("sod_exception_id", integer("s.c_sod_exception_id")),
        ("activity_in_period", text_list("s.activity")),
        ("findings", text_list("s.findings")),
    ]
    if [n for n, _ in columns] != dataset.column_names:
        raise RuntimeError(f"{dataset.name}: the SQL rendering's columns differ from the dataset's")
    mask = ["cardinality(s.findings) > 0"]
    if len(mask) != len(dataset.exceptions):
        raise RuntimeError(f"{dataset.name}: one exception mask per exception kind")
    return _statement(columns, mask, sql_s, "s.c_created_at, s.c_pk",
                      {"ro(role_id, privileged, environment_duty)": roles}), params


STATEMENTS = {  # dataset name -> (its rows function, the statement that renders what it returns)
    ds.PRODUCTION_DEPLOYMENTS.name: (ds.deployment_rows, deployment_statement),
    ds.CHANGES.name: (ds.deployment_rows, deployment_statement),
    ds.ROLE_GRANTS.name: (ds.grant_rows, grant_statement),
}


def supports(dataset: ds.Dataset) -> bool:
    """On PostgreSQL, for a dataset whose rows are still the ones the statement reproduces."""
    found = STATEMENTS.get(dataset.name)
    return connection.vendor == "postgresql" and found is not None and dataset.rows is found[0]


def stream(ctx: ds.Context, dataset: ds.Dataset, writer: DatasetWriter, batch_size: int, on_batch) -> list[int]:
    """Write the dataset's rows through ``writer``, calling ``on_batch(rows)`` after each batch;
    returns how many rows hit each exception kind (in ``dataset.exceptions`` order) and, last, how
    many rows hit any.

    The statement runs in a server-side cursor (as ``QuerySet.iterator`` does), so the connection
    is free between batches for the export's progress updates."""
    sql, params = STATEMENTS[dataset.name][1](ctx, dataset)
    kinds = len(dataset.exceptions)
    counts = [0] * (kinds + 1)
    with _planner_settings(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(batch_size):
            _flush(writer, batch, counts, kinds)
            on_batch(len(batch))
    return counts


@contextmanager
def _planner_settings():
    """JIT-compiling these wide expressions costs PostgreSQL seconds (in every parallel worker) and
    buys nothing on a statement read once; and every row is read, so the cursor is planned for all
    of them, not the first tenth. The session's settings are put back after."""
    settings = {"jit": "off", "cursor_tuple_fraction": "1"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in settings))
        previous = cursor.fetchone()
        cursor.execute("SELECT " + ", ".join(f"set_config('{name}', %s, false)" for name in settings),
                       list(settings.values()))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f"set_config('{name}', %s, false)" for name in settings),
                           list(previous))


def _flush(writer: DatasetWriter, batch: list, counts: list[int], kinds: int) -> None:
    csv_lines, json_lines, masks = zip(*batch, strict=True)
    for mask in masks:
        if mask:
            counts[kinds] += 1
            for bit in range(kinds):
                if mask >> bit & 1:
                    counts[bit] += 1
    writer.write_rendered("".join(csv_lines).encode("utf-8"), ",\n".join(json_lines), len(batch))
