"""What the controls were while a deployment was decided (RULES.md K7), worked out once per export.

Two questions, each answered from a small table read once, so that a deployment row (in Python, or
formerly also in a PostgreSQL statement) only looks its start time and its
environment up in the answer:

- **Weaker than at the period's start?** From the period's applied ``ControlChange`` rows: for each
  control changed in the period, its state at the start is the ``before`` of its first change
  applied in the period; walking its changes in order, every interval in which the kind's own
  ``weakening`` (the comparators of the control door, ``governance.controls``) finds the state
  weaker than that start state is a *window*, with the environments its scope names (or all of
  them), its reasons and the change that opened it. A deployment started in a window of a control
  concerning its environment is a ``control_weakened`` finding.
- **Weaker than the framework's baseline?** Each recorded approval-policy version of a
  production-tier environment (the versions ``datasets.load_lookups`` already rendered) is
  compared with the framework's ``PolicyBaseline`` by the approval-policy kind's own ``weakens``,
  restricted to the baseline's fields. A deployment decided under such a version is a
  ``below_baseline`` finding.

Changes made around the control door (a database edit) have no ``ControlChange`` row and open no
window; the baseline still catches a policy left below it, whoever wrote it.
"""
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from compliance.evidence.writer import iso
from governance.controls import registry
from governance.controls.registry import Scope
from governance.models import ControlChange

APPROVAL_POLICY = "releases.approvalpolicy"
WEAKENED = "control_weakened"
BELOW_BASELINE = "below_baseline"


@dataclass(frozen=True)
class PolicyBaseline:
    """The weakest approval policy a framework accepts for production: each field's weakest value
    (``weakens(values, policy)`` must find nothing), and the same in words for the finding."""

    framework: str  # as findings name it: "SOX"
    values: dict
    summary: str


@dataclass(frozen=True)
class Window:
    """An interval in which one control was weaker than at the period's start."""

    ordinal: int  # windows in order of their start (then of the change that opened them)
    control: str  # "approval policy production"
    environments: tuple[str, ...]  # slugs; empty when ``everywhere``
    everywhere: bool
    since: datetime  # the change that made it weaker was applied
    until: datetime | None  # the next change to the control was applied (None: still so at the period's end)
    change_id: int
    reasons: tuple[str, ...]

    @property
    def finding(self) -> str:
        until = f"until {iso(self.until)}" if self.until is not None else "to the end of the period"
        return (f"{WEAKENED}: {self.control}: {'; '.join(self.reasons)} (weaker than at the period's start: "
                f"control change #{self.change_id}, from {iso(self.since)} {until})")


def _window_scope(kind, start_state: dict | None, state: dict | None) -> tuple[tuple[str, ...], bool]:
    """The environments the control concerns in either state (K6's scope of the kind). A scope
    naming no environment (all of them, or a team's own controls) concerns every deployment."""
    scope: Scope = kind.scope(start_state, state)
    environments = tuple(sorted(set(scope.environments)))
    everywhere = scope.everywhere or not environments
    return (() if everywhere else environments), everywhere


def weakened_windows(start: datetime, end: datetime) -> list[Window]:
    """The windows of every control changed in the period (one query; the kinds' comparators in
    Python). A change applied at ``t`` is in force from ``t`` on, as a policy version is. A window
    lasts while the control stays weaker in the same way: a later change that leaves the reasons
    as they were (another field tightened, say) does not end it; one that restores the control, or
    weakens it further, does (and opens the next window)."""
    changes = (
        ControlChange.objects.filter(status=ControlChange.Status.APPLIED, applied_at__gte=start, applied_at__lt=end)
        .order_by("applied_at", "pk")
        .values_list("pk", "kind", "target_id", "target_repr", "before", "after", "applied_at")
    )
    by_control: dict[tuple[str, str], list[tuple]] = {}
    for pk, kind, target_id, target_repr, before, after, applied_at in changes:
        by_control.setdefault((kind, target_id), []).append((pk, target_repr, before, after, applied_at))
    found = []  # (since, change id, control, (environments, everywhere), reasons, until)
    for (key, _), steps in by_control.items():
        try:
            kind = registry.get(key)
        except KeyError:  # a kind this version no longer has: its changes are still listed, unjudged
            continue
        start_state = steps[0][2]
        current = None
        for pk, target_repr, _, state, applied_at in steps:
            reasons = tuple(r.message for r in kind.weakening(start_state, state))
            scope = _window_scope(kind, start_state, state) if reasons else None
            if current is not None and (current[3], current[4]) == (scope, reasons):
                continue
            if current is not None:
                found.append((*current, applied_at))
            current = (applied_at, pk, target_repr, scope, reasons) if reasons else None
        if current is not None:
            found.append((*current, None))
    found.sort(key=lambda w: (w[0], w[1]))
    return [
        Window(ordinal, control, environments, everywhere, since, until, pk, reasons)
        for ordinal, (since, pk, control, (environments, everywhere), reasons, until) in enumerate(found)
    ]


def below_baseline(baseline: PolicyBaseline, policy: dict | None, environment: str | None) -> list[str]:
    """Where an approval policy (as a deployment row shows it; ``None``: no policy, so the engine's
    default one) falls below the framework's baseline, as findings."""
    kind = registry.get(APPROVAL_POLICY)
    values = policy if policy is not None else kind.baseline({"environment": environment})
    fields = list(baseline.values)
    reasons = kind.weakens({name: baseline.values[name] for name in fields}, {name: values.get(name) for name in fields})
    return [f"{BELOW_BASELINE}: {r.message} (the {baseline.framework} baseline for production: {baseline.summary})"
            for r in reasons]


@dataclass
class ControlHistory:
    """The windows and the baseline findings of one export, and the lookups a deployment row makes."""

    windows: list[Window] = field(default_factory=list)
    # production environment id -> (findings of each recorded policy version, findings before the first)
    policy_versions: dict = field(default_factory=dict)
    no_policy: dict = field(default_factory=dict)  # production environment id without recorded policy -> findings
    _by_environment: dict = field(default_factory=dict, init=False, repr=False)
    _everywhere: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        for window in self.windows:
            if window.everywhere:
                self._everywhere.append(window)
            for slug in window.environments:
                self._by_environment.setdefault(slug, []).append(window)

    def weakened_at(self, environment: str, at: datetime) -> list[str]:
        """The findings of the windows open at ``at`` of controls concerning the environment."""
        if not self.windows:
            return []
        candidates = sorted((*self._everywhere, *self._by_environment.get(environment, ())), key=lambda w: w.ordinal)
        return [w.finding for w in candidates if w.since <= at and (w.until is None or at < w.until)]

    def below_baseline_at(self, policy_history: dict, environment_id: int, at: datetime) -> list[str]:
        """The baseline findings of the policy version ``datasets.policy_at`` gives for ``at``."""
        versions = self.policy_versions.get(environment_id)
        if versions is None:
            return self.no_policy.get(environment_id, [])
        findings, before_first = versions
        index = bisect_right(policy_history[environment_id][0], at)
        return findings[index - 1] if index else before_first


def load(*, start: datetime, end: datetime, policy_history: dict, production_environments: set,
         environment_slugs: dict, baseline: PolicyBaseline | None) -> ControlHistory:
    """Read the period's control changes (one query) and judge every policy version of a
    production environment against ``baseline``: what every deployment row of the export looks up."""
    policy_versions, no_policy = {}, {}
    if baseline is not None:
        for environment_id in production_environments:
            slug = environment_slugs.get(environment_id)
            found = policy_history.get(environment_id)
            if found is None:
                no_policy[environment_id] = below_baseline(baseline, None, slug)
                continue
            _, versions, (before_first, _) = found
            policy_versions[environment_id] = (
                [below_baseline(baseline, policy, slug) for policy, _ in versions],
                below_baseline(baseline, before_first, slug),
            )
    return ControlHistory(windows=weakened_windows(start, end), policy_versions=policy_versions, no_policy=no_policy)
