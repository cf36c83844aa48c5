"""Every change to a control, through one door (RULES.md section 8).

``control_change`` is what the admin, the API and the commands call to create, change or delete a
control. It checks who may decide for the control's scope (K6) and what no configuration may cross
(K4), then either applies the change at once (strengthening or neutral) or, when the change weakens
the control, keeps it as a *proposal* that only a second person can apply (K3). Either way the
change has a ``ControlChange`` row and an audit event carrying its values before and after (K2).
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from governance import duties
from governance.controls import registry
from governance.controls.registry import ACCOUNTS, ADMINISTRATORS, ControlKind, Scope
from core.errors import Denied, InvalidState, Reason
from governance.models import ControlChange
from governance.selectors import has_duty, has_duty_everywhere

Status = ControlChange.Status
Operation = ControlChange.Operation


def proposal_lifetime() -> timedelta:
    return timedelta(hours=settings.COUNTERSIGN_CONTROL_PROPOSAL_HOURS)


# --- Who decides (K6) -------------------------------------------------------------------------------


def holds_scope(actor, scope: Scope, *, at: datetime) -> bool:
    """Security for every environment the change concerns (or a grant for all of them when it spans
    all); for a team's own controls, a manager of that team or security for all environments."""
    if actor is None or not actor.is_active:
        return False
    if has_duty_everywhere(actor, duties.SECURITY_APPROVE, at=at):
        return True
    if scope.team:
        from governance.models import Team

        team = Team.objects.filter(slug=scope.team).first()
        return team is not None and has_duty(actor, duties.MANAGE_ROLES, team=team, at=at)
    if scope.everywhere or not scope.environments:
        return False
    from governance.models import Environment

    environments = list(Environment.objects.filter(slug__in=scope.environments))
    return len(environments) == len(set(scope.environments)) and all(
        has_duty(actor, duties.SECURITY_APPROVE, environment=env, at=at) for env in environments
    )


def may_propose(actor, kind: ControlKind, scope: Scope, *, at: datetime) -> bool:
    """Superusers may propose any control change (a weakening one still needs a second person);
    accounts are administered by superusers only; everything else by the duty for its scope."""
    if actor is None or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    return kind.authority != ACCOUNTS and holds_scope(actor, scope, at=at)


def may_approve(actor, kind: ControlKind, scope: Scope, *, at: datetime) -> bool:
    """The second person: the duty for the scope, or, for what administrators keep (accounts,
    roles, rules, environments, schedules, channels), another superuser."""
    if actor is None or not actor.is_active:
        return False
    if kind.authority in (ADMINISTRATORS, ACCOUNTS) and actor.is_superuser:
        return True
    return holds_scope(actor, scope, at=at)


def _who_decides(kind: ControlKind, scope: Scope) -> str:
    if kind.authority == ACCOUNTS:
        return "an administrator (approved by another administrator or security for all environments)"
    if kind.authority == ADMINISTRATORS:
        return "an administrator, or security for all environments"
    if scope.team:
        return f"manage_roles in team {scope.team}, or security for all environments"
    return f"security_approve for {scope.describe()}"


# --- Reading the target -----------------------------------------------------------------------------


def _lock(kind: ControlKind, target):
    return kind.model._default_manager.select_for_update().get(pk=target.pk)


def _validate(kind: ControlKind, obj, m2m: dict, at: datetime) -> None:
    exclude = [f.name for f in kind.model._meta.many_to_many] + list(kind.exclude_from_clean)
    obj.full_clean(exclude=exclude, validate_constraints=True)
    if kind.clean is not None:
        kind.clean(obj, m2m, at)


def _data(change: ControlChange, **extra) -> dict:
    return {
        "control_change": change.pk,
        "kind": change.kind,
        "operation": change.operation,
        "target": change.target_id,
        "before": change.before,
        "after": change.after,
        "changed": change.changed,
        "weakening": change.weakening,
        "scope": change.scope,
        **extra,
    }


def _record(action: str, change: ControlChange, *, actor, at, target=None, **extra) -> None:
    """One event per step. Its target is the control itself where the row exists (so the trail of a
    policy lists its changes), the proposal otherwise (a creation not yet applied, a deletion)."""
    scope = Scope.from_dict(change.scope)
    if target is None and change.target_id and change.operation != Operation.DELETE:
        target = registry.get(change.kind).model._default_manager.filter(pk=change.target_id).first()
    audit.record(
        action,
        actor=actor,
        target=target if target is not None and target.pk is not None else change,
        environment=scope.environments[0] if len(scope.environments) == 1 else "",
        team=scope.team or "",
        data=_data(change, **extra),
        at=at,
    )


def _refuse_if_pending(kind: ControlKind, target_id: str) -> None:
    if not target_id:
        return
    pending = ControlChange.objects.filter(kind=kind.key, target_id=target_id, status=Status.PENDING).first()
    if pending is not None:
        raise InvalidState(
            f"Control change #{pending.pk} to this {kind.label} waits for a second person; approve, reject or "
            "withdraw it first.",
            code="control_proposal_pending",
        )


def _floors(kind: ControlKind, after: dict) -> None:
    reasons = registry.floors(kind, after)
    if reasons:
        raise Denied(reasons)


def _weakening(kind: ControlKind, operation: str, before: dict | None, after: dict | None) -> list[dict]:
    return [w.as_dict() for w in kind.weakening(before, None if operation == Operation.DELETE else after)]


def _apply(kind: ControlKind, obj, operation: str, m2m: dict, sealed: dict, *, before, after, at):
    """Write the row (simple-history records it) and its related rows; returns the row."""
    if operation == Operation.DELETE:
        obj.delete()
        return obj
    for name, value in sealed.items():
        setattr(obj, name, value)
    obj._countersign_control_change = True  # the accounts' safety net knows this save is recorded
    obj.save()
    for name, value in m2m.items():
        virtual = kind._virtual(name)
        if virtual is not None:
            virtual.write(obj, value)
        else:
            getattr(obj, name).set(value)
    if kind.after_apply is not None:
        kind.after_apply(obj, before, after, at)
    return obj


# --- The door ---------------------------------------------------------------------------------------


@transaction.atomic
def control_change(
    *,
    actor,
    kind: str,
    target=None,
    values: dict | None = None,
    operation: str | None = None,
    comment: str = "",
    source: str = "",
    at: datetime | None = None,
) -> ControlChange | None:
    """Create (no ``target``), change (``values`` for some control fields of ``target``) or delete
    (``operation="delete"``) a control. Returns its ``ControlChange``: ``applied``, or ``pending``
    when it weakens the control; ``None`` when nothing would change. Refusals: ``Denied``
    (``missing_duty``, ``control_floor``), ``InvalidState`` (``control_proposal_pending``),
    ``ValidationError`` (field errors); nothing is written when they are raised."""
    at = at or timezone.now()
    control = registry.get(kind)
    operation = operation or (Operation.UPDATE if target is not None else Operation.CREATE)
    values = dict(values or {})
    unknown = set(values) - set(control.all_fields)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    if operation == Operation.CREATE:
        obj, before = control.model(), None
        if control.initialise is not None:
            control.initialise(obj, actor)
    else:
        if target is None or target.pk is None:
            raise ValidationError({"target": ["Name the control to change."]})
        obj = _lock(control, target)
        before = control.snapshot(obj)
    sealed = {name: values[name] for name in control.secret_fields if name in values}
    m2m = control.assign(obj, {k: v for k, v in _as_values(control, values).items()})
    if operation == Operation.DELETE:
        after = None
        changed = list(control.all_fields)
        if not control.deletable:
            raise Denied(Reason("control_not_deletable", f"A {control.label} is never deleted; switch it off instead."))
    else:
        for name, value in sealed.items():
            setattr(obj, name, value)
        _validate(control, obj, m2m, at)
        after = control.snapshot(obj, m2m)
        changed = [name for name in control.all_fields if (before or {}).get(name) != after.get(name)]
        if before is not None and not changed:
            return None
    scope = _union(control.scope(before, after))
    reasons = []
    if actor is not None and not may_propose(actor, control, scope, at=at):
        reasons.append(Reason(
            "missing_duty", f"Changing this {control.label} needs {_who_decides(control, scope)}."))
    if reasons:
        raise Denied(reasons)
    if after is not None:
        _floors(control, after)
    target_id = str(obj.pk) if obj.pk else ""
    _refuse_if_pending(control, target_id)
    weakening = _weakening(control, operation, before, after)
    if weakening and actor is None:
        raise Denied(Reason(
            "four_eyes_control", f"This change weakens the {control.label}; a person proposes it in the admin and a "
            "second person approves it."))
    subject = control.subject(obj if operation != Operation.CREATE else None, after or {}) if control.subject else None
    change = ControlChange(
        kind=control.key, operation=operation, target_id=target_id, target_repr=control.target_repr(obj),
        scope=scope.as_dict(), subject=subject if getattr(subject, "pk", None) else None,
        before=before, after=after, changed=changed, weakening=weakening,
        sealed_after=sealed, proposed_by=actor, proposed_at=at, comment=(comment or "").strip(),
    )
    if weakening:
        change.status = Status.PENDING
        change.expires_at = at + proposal_lifetime()
        change.save()
        _record("control.proposed", change, actor=actor, at=at, source=source)
        return change
    applied = _apply(control, obj, operation, m2m, {}, before=before, after=after, at=at)
    change.status = Status.APPLIED
    change.applied_at = at
    change.target_id = str(applied.pk) if applied.pk is not None else target_id
    change.target_repr = control.target_repr(applied)
    change.sealed_after = {}
    change.save()
    _record("control.changed", change, actor=actor, at=at, source=source)
    return change


def _as_values(control: ControlKind, values: dict) -> dict:
    """Form and service values (rows, querysets, times) as stored values, minus secrets."""
    stored = {}
    for name, value in values.items():
        if name in control.secret_fields:
            continue
        if control._virtual(name) is not None:
            stored[name] = registry._plain(value)
            continue
        model_field = control.model_field(name)
        if model_field.many_to_many:
            stored[name] = sorted(registry.natural_key(row) for row in value)
        elif model_field.is_relation:
            stored[name] = registry.natural_key(value)
        else:
            stored[name] = registry._plain(value)
    return stored


def _union(scope: Scope) -> Scope:
    return Scope(tuple(sorted(set(scope.environments))), scope.everywhere, scope.team)


# --- The second person -------------------------------------------------------------------------------


def _lock_change(change: ControlChange) -> ControlChange:
    return ControlChange.objects.select_for_update().get(pk=change.pk)


def _decider_reasons(actor, change: ControlChange, control: ControlKind, *, at) -> list[Reason]:
    reasons = []
    if actor.pk == change.proposed_by_id:
        reasons.append(Reason("four_eyes_control", "A control change is approved by someone other than its proposer."))
    if change.subject_id is not None and actor.pk == change.subject_id:
        reasons.append(Reason("four_eyes_control", "Nobody approves a change to their own account."))
    scope = Scope.from_dict(change.scope)
    if not may_approve(actor, control, scope, at=at):
        reasons.append(Reason("missing_duty", f"Deciding this change needs {_who_decides(control, scope)}."))
    return reasons


def may_decide(actor, change: ControlChange, *, at=None) -> bool:
    """Whether ``actor`` is a second person who may decide this proposal (K3), for the portal's inbox."""
    return not _decider_reasons(actor, change, registry.get(change.kind), at=at or timezone.now())


@transaction.atomic
def control_change_approve(*, actor, change: ControlChange, comment: str = "", at: datetime | None = None):
    """K3: a second person with the duty for the change's scope applies a pending proposal, as long as
    the control still reads what the proposal saw."""
    at = at or timezone.now()
    change = _lock_change(change)
    if change.status != Status.PENDING:
        raise InvalidState(f"Only pending control changes can be approved; this one is {change.status}.")
    if change.expires_at is not None and change.expires_at <= at:
        raise InvalidState("This proposal has expired; propose the change again.", code="control_proposal_expired")
    control = registry.get(change.kind)
    reasons = _decider_reasons(actor, change, control, at=at)
    if reasons:
        raise Denied(reasons)
    if change.operation == Operation.CREATE:
        obj = control.model()
        if control.initialise is not None:
            control.initialise(obj, change.proposed_by)
    else:
        current = control.model._default_manager.select_for_update().filter(pk=change.target_id).first()
        if current is None or control.snapshot(current) != change.before:
            raise InvalidState(
                f"The {control.label} has changed since this proposal was made; propose the change again.",
                code="control_proposal_stale",
            )
        obj = current
    m2m = {}
    if change.after is not None:
        _floors(control, change.after)
        m2m = control.assign(obj, {k: v for k, v in change.after.items() if k not in control.secret_fields})
        for name, value in change.sealed_after.items():
            setattr(obj, name, value)
        _validate(control, obj, m2m, at)
    applied = _apply(control, obj, change.operation, m2m, change.sealed_after, before=change.before,
                     after=change.after, at=at)
    change.status = Status.APPLIED
    change.decided_by = actor
    change.decided_at = at
    change.applied_at = at
    change.sealed_after = {}
    if applied.pk is not None:
        change.target_id = str(applied.pk)
        change.target_repr = control.target_repr(applied)
    change.save()
    _record("control.approved", change, actor=actor, at=at, comment=(comment or "").strip(),
            proposed_by=change.proposed_by.get_username() if change.proposed_by_id else None)
    return change


@transaction.atomic
def control_change_reject(*, actor, change: ControlChange, comment: str = "", at: datetime | None = None):
    """Turn a proposal down (the second person), or withdraw it (its proposer)."""
    at = at or timezone.now()
    change = _lock_change(change)
    if change.status != Status.PENDING:
        raise InvalidState(f"Only pending control changes can be rejected; this one is {change.status}.")
    control = registry.get(change.kind)
    withdrawn = actor.pk == change.proposed_by_id
    if not withdrawn:
        reasons = [r for r in _decider_reasons(actor, change, control, at=at) if r.code != "four_eyes_control"]
        if reasons:
            raise Denied(reasons)
    change.status = Status.WITHDRAWN if withdrawn else Status.REJECTED
    change.decided_by = actor
    change.decided_at = at
    change.comment = (comment or change.comment).strip()
    change.sealed_after = {}
    change.save()
    _record("control.withdrawn" if withdrawn else "control.rejected", change, actor=actor, at=at,
            comment=(comment or "").strip())
    return change


def control_changes_expire_due(*, at: datetime | None = None) -> int:
    """Mark pending proposals past their expiry as expired (the scheduled task; safe to run twice)."""
    at = at or timezone.now()
    expired = 0
    for pk in ControlChange.objects.filter(status=Status.PENDING, expires_at__lte=at).values_list("pk", flat=True):
        with transaction.atomic():
            change = ControlChange.objects.select_for_update().get(pk=pk)
            if change.status != Status.PENDING:
                continue
            change.status = Status.EXPIRED
            change.sealed_after = {}
            change.save(update_fields=["status", "sealed_after"])
            _record("control.expired", change, actor=None, at=at)
            expired += 1
    return expired


def pending_for(actor, *, at: datetime | None = None) -> list[ControlChange]:
    """The proposals ``actor`` could approve now (the admin's and the inbox's "waiting on you")."""
    at = at or timezone.now()
    waiting = ControlChange.objects.filter(status=Status.PENDING, expires_at__gt=at).select_related("proposed_by")
    return [
        change for change in waiting
        if change.proposed_by_id != actor.pk and change.subject_id != actor.pk
        and may_approve(actor, registry.get(change.kind), Scope.from_dict(change.scope), at=at)
    ]
