"""The controls governance keeps (RULES.md K1): environments, teams, roles and their duties, conflict
rules, user accounts, notification channels of security alerts and the schedules of the detective
controls. Each kind says what would weaken it (K3); docs/rules.md section 8 lists them."""
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from audit.models import NotificationChannel
from governance import duties
from governance.controls.registry import (
    ACCOUNTS,
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    Scope,
    VirtualField,
    Weakening,
    added_items,
    all_of,
    changed,
    fewer,
    register,
    switched_off,
    switched_on,
)
from governance.signals import account_deactivated
from governance.models import ConflictRule, Environment, Membership, Role, RoleAssignment, RoleDuty, Team

TIER_RANK = {Environment.Tier.DEVELOPMENT: 0, Environment.Tier.STAGING: 1, Environment.Tier.PRODUCTION: 2}


def _everywhere(before, after) -> Scope:
    return EVERYWHERE


def _valid_time_zone(obj, field: str = "time_zone") -> None:
    try:
        ZoneInfo(getattr(obj, field) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError({field: [f"Unknown time zone {getattr(obj, field)!r}; use an IANA name such as Europe/London."]}) from None


def _resync_all_environment_holders(environment, before, after, at) -> None:
    """A new environment: holders of every-environment grants gain its permissions."""
    if before is None:
        from governance.permissions import sync_permissions

        holders = RoleAssignment.objects.in_force(at).filter(environment__isnull=True).values("user_id")
        for user in get_user_model().objects.filter(pk__in=holders):
            sync_permissions(user, at=at)


ENVIRONMENT = register(ControlKind(
    key="governance.environment",
    label="environment",
    model=Environment,
    fields=("name", "slug", "tier", "order", "time_zone"),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    weakens=all_of(fewer("tier", "tier lowered", rank=TIER_RANK), changed("time_zone", "time zone (deploy windows move with it)")),
    clean=lambda env, deferred, at: _valid_time_zone(env),
    after_apply=_resync_all_environment_holders,
    describe=lambda env: env.slug,
))


def _on_call_are_members(team, deferred, at) -> None:
    _valid_time_zone(team)
    reviewers = deferred.get("on_call_reviewers")
    if reviewers and team.pk:
        members = set(Membership.objects.filter(team_id=team.pk).values_list("user_id", flat=True))
        outsiders = sorted(u.get_username() for u in reviewers if u.pk not in members)
        if outsiders:
            raise ValidationError({"on_call_reviewers": [f"Not members of {team.slug}: {', '.join(outsiders)}."]})


TEAM = register(ControlKind(
    key="governance.team",
    label="team",
    model=Team,
    fields=("name", "slug", "time_zone", "on_call_reviewers"),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    weakens=all_of(
        changed("time_zone", "time zone (off-hours alerts move with it)"),
        added_items("on_call_reviewers", "on-call reviewers (who confirm emergency changes)"),
    ),
    clean=_on_call_are_members,
    describe=lambda team: team.slug,
))


def _read_duties(role) -> list[str]:
    return sorted(role.duties.values_list("duty", flat=True))


def _write_duties(role, codes) -> None:
    role.duties.exclude(duty__in=codes).delete()
    existing = set(role.duties.values_list("duty", flat=True))
    RoleDuty.objects.bulk_create([RoleDuty(role=role, duty=d) for d in codes if d not in existing])


def _known_duties(role, deferred, at) -> None:
    unknown = sorted(set(deferred.get("duties") or []) - set(duties.ALL))
    if unknown:
        raise ValidationError({"duties": [f"Unknown duties: {', '.join(unknown)}."]})


def _resync_role_holders(role, before, after, at) -> None:
    from governance.permissions import sync_permissions

    holders = RoleAssignment.objects.filter(role=role, status=RoleAssignment.Status.ACTIVE).values("user_id")
    for user in get_user_model().objects.filter(pk__in=holders):
        sync_permissions(user, at=at)


ROLE = register(ControlKind(
    key="governance.role",
    label="role",
    model=Role,
    fields=("name", "slug", "description", "scope", "is_privileged"),
    virtual=(VirtualField("duties", _read_duties, _write_duties, default=[], normalise=lambda codes: sorted(set(codes))),),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    weakens=all_of(
        added_items("duties", "duties"),
        switched_off("is_privileged", "four-eyes and expiry for its grants (privileged)"),
        changed("scope", "scope"),
    ),
    clean=_known_duties,
    after_apply=_resync_role_holders,
    describe=lambda role: role.slug,
))


def _tier_narrowed(before: dict, after: dict) -> list[Weakening]:
    old, new = before.get("tier"), after.get("tier")
    if old != new and new:  # every tier ("") to one tier, or one tier to another
        return [Weakening("tier", f"applies to {new or 'every tier'} instead of {old or 'every tier'}")]
    return []


def _two_duties(rule, deferred, at) -> None:
    if rule.duty_a == rule.duty_b:
        raise ValidationError({"duty_b": ["A conflict rule pairs two different duties."]})


CONFLICT_RULE = register(ControlKind(
    key="governance.conflictrule",
    label="conflict rule",
    model=ConflictRule,
    fields=("duty_a", "duty_b", "tier", "description", "is_active"),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    weakens=all_of(
        switched_off("is_active", "the rule"),
        _tier_narrowed,
        changed("duty_a", "first duty"),
        changed("duty_b", "second duty"),
    ),
    clean=_two_duties,
    describe=lambda rule: str(rule),
))


# --- Accounts (K5) ------------------------------------------------------------------------------------


def _account_weakens(before: dict | None, after: dict | None) -> list[Weakening]:
    if after is None:
        return []
    if before is None:  # a new account: only staff and superuser accounts need a second person
        return [Weakening(name, f"a new account with {what}") for name, what in
                (("is_staff", "admin access (staff)"), ("is_superuser", "superuser status")) if after.get(name)]
    return all_of(
        switched_on("is_staff", "admin access (staff)"),
        switched_on("is_superuser", "superuser status"),
        switched_on("is_active", "the account (reactivated)"),
        changed("username", "username"),
        changed("email", "e-mail address (where reset links go)"),
    )(before, after)


def _after_account_change(user, before, after, at) -> None:
    """A new account gets no password from anyone: its owner sets one through a one-time link. A
    disabled account is a leaver: the layers above end everything it held (identity's leaver
    service, through ``governance.signals.account_deactivated``) in this same transaction."""
    if before is not None and before.get("is_active") and after is not None and not after.get("is_active"):
        account_deactivated.send(sender=type(user), user=user, actor=None, source="admin", at=at)
    if before is None:
        from governance.services.accounts import password_reset_issue

        user.set_unusable_password()
        user.save(update_fields=["password"])
        password_reset_issue(actor=None, user=user, reason="new account", at=at)


ACCOUNT = register(ControlKind(
    key="auth.user",
    label="account",
    model=get_user_model(),
    fields=("username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser"),
    scope=_everywhere,
    authority=ACCOUNTS,
    weakens=_account_weakens,
    after_apply=_after_account_change,
    subject=lambda user, after: user,
    exclude_from_clean=("password",),
    describe=lambda user: user.get_username(),
))


# --- Where security alerts go (E3) ----------------------------------------------------------------


def _narrowed_topics(before: dict, after: dict) -> list[Weakening]:
    old = {t.strip() for t in (before.get("topics") or "").split(",") if t.strip()}
    new = {t.strip() for t in (after.get("topics") or "").split(",") if t.strip()}
    if new and (not old or old - new):
        return [Weakening("topics", f"topics narrowed from {sorted(old) or 'all'} to {sorted(new)}")]
    return []


def _unsubscribed_events(before: dict, after: dict) -> list[Weakening]:
    """Domain webhook subscriptions (audit.webhooks): dropping a pattern stops what it pushed."""
    old = {t.strip() for t in (before.get("events") or "").split(",") if t.strip()}
    new = {t.strip() for t in (after.get("events") or "").split(",") if t.strip()}
    if old - new:
        return [Weakening("events", f"webhook events {sorted(old - new)} no longer pushed")]
    return []


def _narrowed_team(before: dict, after: dict) -> list[Weakening]:
    old, new = before.get("team") or "", after.get("team") or ""
    if new and new != old:
        return [Weakening("team", f"team narrowed from {old or 'every team'} to {new}")]
    return []


NOTIFICATION_CHANNEL = register(ControlKind(
    key="audit.notificationchannel",
    label="notification channel",
    model=NotificationChannel,
    fields=("name", "kind", "team", "target", "secret", "topics", "events", "is_active"),
    secret_fields=("secret",),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    weakens=all_of(
        switched_off("is_active", "the channel"),
        changed("kind", "kind"),
        changed("target", "target"),
        changed("secret", "signing secret"),
        _narrowed_topics,
        _unsubscribed_events,
        _narrowed_team,
    ),
    describe=lambda channel: channel.name,
))


# --- The schedules of the detective controls (K1) ---------------------------------------------------


def _interval_seconds(pk) -> float | None:
    interval = IntervalSchedule.objects.filter(pk=pk).first()
    if interval is None:
        return None
    return interval.every * {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 1e-6}[interval.period]


def _crontab_sets(pk):
    crontab = CrontabSchedule.objects.filter(pk=pk).first()
    if crontab is None:
        return None
    schedule = crontab.schedule
    return (schedule.minute, schedule.hour, schedule.day_of_week, schedule.day_of_month, schedule.month_of_year,
            str(crontab.timezone))


def _slowed(before: dict, after: dict) -> list[Weakening]:
    """A schedule runs no less often only if it stays an interval no longer than before, or a
    crontab that fires at least whenever the old one did; anything else counts as slowed."""
    kinds = ("interval", "crontab", "solar", "clocked")
    old = {k: before.get(k) for k in kinds}
    new = {k: after.get(k) for k in kinds}
    if old == new:
        return []
    if old["interval"] and new["interval"] and not any(old[k] or new[k] for k in kinds[1:]):
        was, now = _interval_seconds(old["interval"]), _interval_seconds(new["interval"])
        if was is not None and now is not None and now <= was:
            return []
    if old["crontab"] and new["crontab"] and not any(old[k] or new[k] for k in ("interval", "solar", "clocked")):
        was, now = _crontab_sets(old["crontab"]), _crontab_sets(new["crontab"])
        if was and now and was[5] == now[5] and all(set(n) >= set(o) for o, n in zip(was[:5], now[:5], strict=True)):
            return []
    return [Weakening("schedule", f"schedule changed from {_describe_schedule(old)} to {_describe_schedule(new)}")]


def _describe_schedule(values: dict) -> str:
    for name, model in (("interval", IntervalSchedule), ("crontab", CrontabSchedule)):
        if values.get(name):
            row = model.objects.filter(pk=values[name]).first()
            return str(row) if row else f"{name} #{values[name]}"
    return next((f"{k} #{v}" for k, v in values.items() if v), "no schedule")


def _later(name: str, what: str):
    def check(before: dict, after: dict) -> list[Weakening]:
        old, new = before.get(name), after.get(name)
        if new is not None and (old is None or new > old):
            return [Weakening(name, f"{what} from {old or 'never'} to {new}")]
        return []

    return check


def _sooner(name: str, what: str):
    def check(before: dict, after: dict) -> list[Weakening]:
        old, new = before.get(name), after.get(name)
        if new is not None and (old is None or new < old):
            return [Weakening(name, f"{what} from {old or 'never'} to {new}")]
        return []

    return check


def _one_schedule(task, deferred, at) -> None:
    chosen = [name for name in ("interval", "crontab", "solar", "clocked") if getattr(task, f"{name}_id")]
    if len(chosen) != 1:
        raise ValidationError({"interval": ["Choose exactly one schedule: an interval, a crontab, a solar event or a clocked time."]})


PERIODIC_TASK = register(ControlKind(
    key="django_celery_beat.periodictask",
    label="scheduled task",
    model=PeriodicTask,
    fields=("name", "task", "enabled", "interval", "crontab", "solar", "clocked", "one_off", "start_time", "expires",
            "expire_seconds", "queue", "exchange", "routing_key", "priority", "args", "kwargs", "headers",
            "description"),
    scope=_everywhere,
    authority=ADMINISTRATORS,
    deletable=True,
    weakens=all_of(
        switched_off("enabled", "the task"),
        changed("task", "task it runs"),
        switched_on("one_off", "run once only"),
        _slowed,
        _later("start_time", "first run"),
        _sooner("expires", "expiry"),
        _sooner("expire_seconds", "seconds a run may wait"),
        changed("queue", "queue"),
        changed("exchange", "exchange"),
        changed("routing_key", "routing key"),
        changed("args", "arguments"),
        changed("kwargs", "keyword arguments"),
        changed("headers", "headers"),
    ),
    clean=_one_schedule,
    exclude_from_clean=("last_run_at", "total_run_count", "date_changed"),
    describe=lambda task: task.name,
))
