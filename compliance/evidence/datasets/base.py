"""What every dataset of an evidence bundle shares: the export's ``Context`` (the period and the
small lookup tables read once), the ``Dataset`` description, and the period rule.

Every population is read as plain tuples (``values_list``, the joined slugs and usernames in the
same SELECT) with ``.iterator(chunk_size=EVIDENCE_BATCH_SIZE)``: a million rows must build neither
a million model instances nor a related manager per row. ``Dataset.rows`` receives the whole
batch; the few related rows it needs come in one query per batch each, and the small lookup
tables (policy versions, roles, environments, alerts naming a change) are read once per export
(``load_lookups``). So the number of queries per batch is constant and the per-row work is
dictionary lookups. All of it is read inside the bundle's one snapshot (``builder.snapshot``).

Period rule (the same for every dataset): a timestamp is *in the period* when
``period_start 00:00 UTC <= t < (period_end + 1 day) 00:00 UTC``. Which timestamp(s) place a row in
the period is said in each dataset's ``population``.

The datasets read other apps' models, never write them (ARCHITECTURE principle 5), and judge no
release rule of their own: a deployment's verdict is the decision the policy engine recorded
(``compliance.evidence.datasets.deployments``).
"""
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from django.db.models import Q, QuerySet

from audit.models import Alert
from compliance.evidence.control_history import ControlHistory, PolicyBaseline
from compliance.evidence.control_history import load as load_controls
from governance import duties
from governance.models import Environment, Role, RoleDuty
from releases.decisions import POLICY_FIELDS
from releases.models import ApprovalPolicy


@dataclass
class Context:
    """What every dataset of one export shares: the period and facts read once at the start."""

    start: datetime
    end: datetime
    generated_at: datetime
    head_sequence: int
    # environment id -> ([history_date, …], [(policy, source), …], (policy, source) before the first), oldest first
    policy_history: dict = field(default_factory=dict)
    environment_slugs: dict = field(default_factory=dict)
    production_environments: set = field(default_factory=set)
    has_production: bool = False
    roles: dict = field(default_factory=dict)  # role id -> (is_privileged, holds an environment duty)
    change_alerts: dict = field(default_factory=dict)  # change request id -> ["alert #id kind (status)", …]
    # the controls while each deployment was decided (K7): see load_control_history
    control_history: ControlHistory = field(default_factory=ControlHistory)
    baseline: PolicyBaseline | None = None
    baseline_findings: dict = field(default_factory=dict)  # (environment id, policy values) -> findings

    def in_period(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start, f"{field_name}__lt": self.end})


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    population: str  # which rows, in words (the query itself goes into the manifest too)
    columns: tuple[tuple[str, str], ...]  # (name, meaning)
    queryset: Callable[[Context], QuerySet] | None
    rows: Callable[[Context, list], list[dict]]
    # Exception kinds: name -> predicate on a row. A row is an exception when any predicate holds.
    exceptions: dict[str, Callable[[dict], bool]] = field(default_factory=dict)
    computed: Callable[[Context], list] | None = None  # rows not read from a queryset
    json_columns: tuple[str, ...] = ()  # free-form JSON: written as compact JSON text in the CSV

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


def user_name(user) -> str | None:
    return user.username if user is not None else None


def environment_name(environment) -> str:
    return environment.slug if environment is not None else "all"


def _policy_version(ctx: Context, version, source: str) -> tuple[dict | None, str]:
    """One recorded policy version as the row shows it (built once per version, shared by rows)."""
    if version.history_type == "-":
        return None, f"none: policy deleted on {version.history_date.isoformat()}"
    policy = {}
    for name in POLICY_FIELDS:
        if name == "require_prior_environment":
            prior = version.require_prior_environment_id
            policy[name] = ctx.environment_slugs.get(prior, prior) if prior else None
        else:
            value = getattr(version, name)
            policy[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return policy, source


def load_lookups(ctx: Context) -> None:
    """The small lookup tables every batch needs, read once per export (a handful of queries
    whatever the period): environments, roles and their duties, the alerts that name a change
    request, and every recorded version of every approval policy (django-simple-history), each
    already rendered as the row shows it."""
    ctx.environment_slugs = {}
    ctx.production_environments = set()
    for pk, slug, tier in Environment.objects.values_list("pk", "slug", "tier"):
        ctx.environment_slugs[pk] = slug
        if tier == Environment.Tier.PRODUCTION:
            ctx.production_environments.add(pk)
    ctx.has_production = bool(ctx.production_environments)
    environment_duties = {}
    for role_id, duty in RoleDuty.objects.values_list("role_id", "duty"):
        environment_duties[role_id] = environment_duties.get(role_id, False) or duty in duties.ENVIRONMENT_DUTIES
    ctx.roles = {pk: (privileged, environment_duties.get(pk, False))
                 for pk, privileged in Role.objects.values_list("pk", "is_privileged")}
    ctx.change_alerts = {}
    alerts = (Alert.objects.filter(details__has_key="change_request")
              .order_by("created_at", "pk").values_list("pk", "kind", "status", "details__change_request"))
    for pk, kind, status, change_id in alerts:
        if isinstance(change_id, int):
            ctx.change_alerts.setdefault(change_id, []).append(f"alert #{pk} {kind} ({status})")
    history: dict[int, list] = {}
    for row in ApprovalPolicy.history.order_by("history_date", "history_id").iterator():
        history.setdefault(row.environment_id, []).append(row)
    ctx.policy_history = {}
    for environment_id, versions in history.items():
        oldest = versions[0]
        ctx.policy_history[environment_id] = (
            [v.history_date for v in versions],
            [_policy_version(ctx, v, f"policy version of {v.history_date.isoformat()} (in force at deploy)")
             for v in versions],
            _policy_version(ctx, oldest, f"oldest recorded policy version, of {oldest.history_date.isoformat()} "
                                         "(recorded after the deploy)"),
        )


NO_POLICY = (None, "none: no approval policy recorded for this environment (nothing required)")


def policy_at(ctx: Context, environment_id: int, at: datetime) -> tuple[dict | None, str]:
    """The environment's approval policy as recorded at ``at`` (the last version saved at or before
    it), and where that answer comes from: for a deployment with no decision record only."""
    found = ctx.policy_history.get(environment_id)
    if found is None:
        return NO_POLICY
    dates, versions, before_first = found
    index = bisect_right(dates, at)
    return versions[index - 1] if index else before_first


def load_control_history(ctx: Context, baseline: PolicyBaseline | None) -> None:
    """After ``load_lookups``: the windows in which a control was weaker than at the period's
    start, and each policy version judged against the framework's ``baseline`` (one query, once
    per export; ``compliance.evidence.control_history``)."""
    ctx.baseline = baseline
    ctx.control_history = load_controls(
        start=ctx.start, end=ctx.end, policy_history=ctx.policy_history,
        production_environments=ctx.production_environments, environment_slugs=ctx.environment_slugs,
        baseline=baseline,
    )
