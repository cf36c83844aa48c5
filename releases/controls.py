"""The release controls (RULES.md K1): each environment's approval policy, with its deploy window,
freeze windows and the catalogue of standard changes. What would weaken them (K3) and what no policy
may allow (K4)."""
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError

from governance.controls.registry import (
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    Scope,
    add_floor,
    Weakening,
    all_of,
    changed,
    fewer,
    more,
    register,
    removed_items,
    switched_off,
    switched_on,
)
from core.errors import Reason
from governance.models import Environment
from releases.models import RISK_ORDER, ApprovalPolicy, FreezeWindow, StandardChangeTemplate
from core.english import possessive

MINUTES_PER_DAY = 24 * 60


def _environments(*snapshots, name: str = "environment") -> Scope:
    slugs = set()
    for values in snapshots:
        value = (values or {}).get(name)
        if isinstance(value, list):
            slugs.update(value)
        elif value:
            slugs.add(value)
    return Scope(environments=tuple(sorted(slugs)))


def _clock(value) -> time | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, time) else time.fromisoformat(value)


def deploy_minutes(values: dict) -> frozenset[tuple[int, int]]:
    """C7's window as the (ISO weekday, minute of day) pairs it admits, in the environment's zone."""
    days = {int(d) for d in (values.get("deploy_weekdays") or "").split(",") if d.strip().isdigit()} or set(range(1, 8))
    start, end = _clock(values.get("deploy_window_start")), _clock(values.get("deploy_window_end"))
    if start is None or end is None:
        minutes = set(range(MINUTES_PER_DAY))
    else:
        first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
        minutes = set(range(first, last)) if first <= last else set(range(first, MINUTES_PER_DAY)) | set(range(last))
    return frozenset((day, minute) for day in days for minute in minutes)


def _window_widened(before: dict, after: dict) -> list[Weakening]:
    if deploy_minutes(after) - deploy_minutes(before):
        return [Weakening("deploy_window", "the deploy window admits times it did not")]
    return []


def _prior_dropped(before: dict, after: dict) -> list[Weakening]:
    old, new = before.get("require_prior_environment"), after.get("require_prior_environment")
    if old and old != new:
        return [Weakening("require_prior_environment", f"no longer requires {old} first" + (f" (now {new})" if new else ""))]
    return []


def _is_production(slug) -> bool:
    return bool(slug) and Environment.objects.filter(slug=slug, tier=Environment.Tier.PRODUCTION).exists()


def policy_floors(after: dict) -> list[Reason]:
    """K4: a production deployment always has at least one independent human approval."""
    if not _is_production(after.get("environment")):
        return []
    return _production_policy_floors(after)


def _production_policy_floors(after: dict) -> list[Reason]:
    reasons = []
    if (after.get("min_approvals") or 0) < 1:
        reasons.append(Reason("control_floor", "A production policy requires at least one approval."))
    if (after.get("emergency_min_approvals") or 0) < 1:
        reasons.append(Reason("control_floor", "Emergency changes to production need at least one approval too."))
    if after.get("allow_auto_approve_standard"):
        reasons.append(Reason("control_floor", "Production changes are approved by a person; auto-approval is for "
                                               "lower tiers."))
    return reasons


def _production_tier_floor(after: dict) -> list[Reason]:
    """An environment raised to production keeps its policy: the policy must already meet
    production's floors (K4), or be raised first."""
    if after.get("tier") != Environment.Tier.PRODUCTION or not after.get("slug"):
        return []
    policy = ApprovalPolicy.objects.filter(environment__slug=after["slug"]).first()
    if policy is None:
        return []
    values = {**APPROVAL_POLICY.snapshot(policy), "environment": None}
    return [Reason(r.code, f"{r.message} Raise {possessive(after['slug'])} policy before its tier.")
            for r in _production_policy_floors(values)]


def default_policy_values(after: dict) -> dict:
    """An environment without a policy is held to the default one (one approval, nothing else)."""
    return {**APPROVAL_POLICY.snapshot(ApprovalPolicy(min_approvals=1)), "environment": after.get("environment")}


def _policy_rules(policy, deferred, at) -> None:
    errors = {}
    if policy.require_prior_environment_id and policy.require_prior_environment_id == policy.environment_id:
        errors["require_prior_environment"] = ["An environment cannot require itself first."]
    if (policy.deploy_window_start is None) != (policy.deploy_window_end is None):
        errors["deploy_window_end"] = ["Give both ends of the deploy window, or neither."]
    days = [d.strip() for d in (policy.deploy_weekdays or "").split(",") if d.strip()]
    if any(not d.isdigit() or not 1 <= int(d) <= 7 for d in days):
        errors["deploy_weekdays"] = ["Use ISO weekdays 1 (Monday) to 7 (Sunday), comma-separated."]
    if errors:
        raise ValidationError(errors)


APPROVAL_POLICY = register(ControlKind(
    key="releases.approvalpolicy",
    label="approval policy",
    model=ApprovalPolicy,
    fields=("environment", "min_approvals", "min_security_approvals", "high_risk_security_approvals",
            "team_reviewer_required", "approval_ttl_hours", "allow_auto_approve_standard",
            "require_prior_environment", "deploy_weekdays", "deploy_window_start", "deploy_window_end",
            "emergency_min_approvals", "pir_due_hours", "require_interactive_signoff", "review_sla_minutes"),
    scope=lambda before, after: _environments(before, after),
    weakens=all_of(
        changed("environment", "environment it governs"),
        fewer("min_approvals", "approvals required"),
        fewer("min_security_approvals", "security approvals required"),
        fewer("high_risk_security_approvals", "security approvals for high-risk changes"),
        fewer("emergency_min_approvals", "approvals for emergency changes"),
        switched_off("team_reviewer_required", "a reviewer from the change's team"),
        switched_off("require_interactive_signoff", "sign-off in the portal with re-authentication"),
        switched_on("allow_auto_approve_standard", "auto-approval of standard changes"),
        more("approval_ttl_hours", "hours an approval counts", none_is_infinite=True),
        more("pir_due_hours", "hours until a post-implementation review is due"),
        more("review_sla_minutes", "minutes before stalled approvals escalate"),
        _prior_dropped,
        _window_widened,
    ),
    floors=policy_floors,
    baseline=default_policy_values,
    clean=_policy_rules,
    describe=lambda policy: policy.environment.slug if policy.environment_id else "(new)",
))


def _ends_after_start(window, deferred, at) -> None:
    if window.starts_at is not None and window.ends_at is not None and window.ends_at <= window.starts_at:
        raise ValidationError({"ends_at": ["A freeze window ends after it starts."]})
    if "environments" in deferred and not deferred["environments"]:
        raise ValidationError({"environments": ["Choose the environments it freezes."]})


def _freeze_shrunk(before: dict, after: dict) -> list[Weakening]:
    found = []
    start_was, start_now = _instant(before.get("starts_at")), _instant(after.get("starts_at"))
    end_was, end_now = _instant(before.get("ends_at")), _instant(after.get("ends_at"))
    if start_was and start_now and start_now > start_was:
        found.append(Weakening("starts_at", f"starts later ({start_now:%Y-%m-%d %H:%M} instead of {start_was:%Y-%m-%d %H:%M})"))
    if end_was and end_now and end_now < end_was:
        found.append(Weakening("ends_at", f"ends earlier ({end_now:%Y-%m-%d %H:%M} instead of {end_was:%Y-%m-%d %H:%M})"))
    return found


def _instant(value) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _set_creator(window, actor) -> None:
    if window.pk is None and window.created_by_id is None:
        window.created_by = actor


FREEZE_WINDOW = register(ControlKind(
    key="releases.freezewindow",
    label="freeze window",
    model=FreezeWindow,
    fields=("name", "environments", "starts_at", "ends_at", "reason"),
    scope=lambda before, after: _environments(before, after, name="environments"),
    weakens=all_of(removed_items("environments", "environments frozen"), _freeze_shrunk),
    clean=_ends_after_start,
    initialise=_set_creator,
    describe=lambda window: window.name,
))


# --- The catalogue of standard changes (C9) --------------------------------------------------------

TEMPLATE_MAX_LIFETIME = timedelta(days=366)
_WILDCARDS = "*?["


def _template_rules(template, deferred, at) -> None:
    """A pattern starts with a fixed prefix naming the image or package; an active template expires
    within a year."""
    errors = {}
    pattern = template.artifact_pattern or ""
    fixed = pattern[: min((pattern.find(c) for c in _WILDCARDS if c in pattern), default=len(pattern))]
    if not any(separator in fixed for separator in "/:@"):
        errors["artifact_pattern"] = [
            "Start with a fixed prefix naming the image or package (up to a '/', ':' or '@') before any wildcard."
        ]
    if template.active and template.expires_at is not None:
        if template.expires_at <= at:
            errors["expires_at"] = ["An active template expires in the future."]
        elif template.expires_at > at + TEMPLATE_MAX_LIFETIME:
            errors["expires_at"] = [f"A template lasts at most {TEMPLATE_MAX_LIFETIME.days} days; renew it then."]
    if errors:
        raise ValidationError(errors)


def _risk_raised(before: dict, after: dict) -> list[Weakening]:
    old, new = before.get("max_risk"), after.get("max_risk")
    if old in RISK_ORDER and new in RISK_ORDER and RISK_ORDER[new] > RISK_ORDER[old]:
        return [Weakening("max_risk", f"covers {new}-risk changes (was {old})")]
    return []


def _template_weakens(before: dict | None, after: dict | None) -> list[Weakening]:
    """Every new template lowers the bar for what it matches (RULES.md K3), unless it starts off."""
    if after is None:
        return []
    if before is None:
        return [Weakening("", "a new standard-change template: what it matches may skip review")] if after.get(
            "active") else []
    return all_of(
        switched_on("active", "the template"),
        changed("environment", "environment"),
        changed("artifact_pattern", "artifact pattern"),
        _risk_raised,
        _later_end,
    )(before, after)


def _later_end(before: dict, after: dict) -> list[Weakening]:
    old, new = _instant(before.get("expires_at")), _instant(after.get("expires_at"))
    if old and new and new > old:
        return [Weakening("expires_at", f"expires later ({new:%Y-%m-%d} instead of {old:%Y-%m-%d})")]
    return []


STANDARD_CHANGE_TEMPLATE = register(ControlKind(
    key="releases.standardchangetemplate",
    label="standard-change template",
    model=StandardChangeTemplate,
    fields=("name", "description", "environment", "max_risk", "artifact_pattern", "expires_at", "active"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=_template_weakens,
    clean=_template_rules,
    initialise=_set_creator,
    describe=lambda template: template.name,
))

# An environment is governance's control; what its tier asks of its policy is ours.
add_floor("governance.environment", _production_tier_floor)
