"""Every write to releases: change requests, approvals, deployments (ARCHITECTURE.md principle 1).

Each service locks the change request it transitions, re-evaluates the policy inside the
transaction, changes state through ``releases.states``, records one audit event and marks the
grant whose duty was exercised as used.
"""
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.http import Http404
from django.utils import timezone

import audit
from audit.alerts import raise_alert
from audit.models import Alert
from governance import duties
from governance import services as governance_services
from core.errors import Denied, InvalidState, Reason
from governance.models import Environment, Team
from governance.selectors import has_duty, is_member
from governance.services import lock_user
from releases import anomalies, decisions, policy, reads, signals, states
from releases.models import Approval, ChangeRequest, Deployment, RevisionContributor
from releases.selectors import (
    change_request_for_decision,
    change_requests_visible_to,
    decision_facts,
    decision_read,
    ever_contributor_ids,
    policy_context,
)

S = ChangeRequest.State
# What a reviewer reads: changing any of it on a change under review is a new revision (C3).
# The change form (ServiceNow's fields): plans, risk and impact, affected service, ticket, PR/commits.
FORM_TEXT_FIELDS = ("implementation_plan", "backout_plan", "risk_impact", "affected_service", "source_url")
WINDOW_FIELDS = ("planned_start", "planned_end")  # the planned window, instants
TEXT_FIELDS = ("title", "description", "artifact", "ticket_url", "emergency_reason", *FORM_TEXT_FIELDS)
MULTILINE_FIELDS = ("description", "implementation_plan", "backout_plan", "risk_impact")  # kept as typed
EDITABLE_FIELDS = (*TEXT_FIELDS, "contributors", *WINDOW_FIELDS)
# Whom the author asks to review (issue 18): not what a reviewer reads, no new revision, no rule.
REQUEST_FIELDS = ("requested_reviewers",)
REVIEW_DUTIES = (duties.APPROVE, duties.SECURITY_APPROVE)
HUMAN_CHANNELS = (Approval.Via.PORTAL, Approval.Via.API)


def _record(action: str, cr: ChangeRequest, *, actor, at, from_state: str, **data) -> None:
    audit.record(
        action,
        actor=actor,
        target=cr,
        environment=cr.environment.slug,
        team=cr.team.slug,
        data={
            "change_request": cr.pk,
            "revision": cr.revision,
            "artifact": cr.artifact,
            "from_state": from_state,
            "to_state": cr.state,
            **data,
        },
        at=at,
    )


def _set(instance, **fields) -> None:
    """Change fields through ``save`` so simple-history records the transition."""
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.save(update_fields=list(fields))


def _raise_if_refused(decision: policy.Decision) -> None:
    if decision.allowed:
        return
    if "invalid_state" in decision.codes:
        state_reason = next(r for r in decision.reasons if r.code == "invalid_state")
        raise InvalidState(state_reason.message)
    raise Denied(list(decision.reasons))


def _require_transition(action: str, cr: ChangeRequest) -> None:
    if not states.allows(action, cr.state):
        raise InvalidState(
            f"{policy.article(cr.state).capitalize()} change request does not allow {action.replace('_', ' ')}."
        )


_http_url = URLValidator(schemes=["http", "https"])


def _validate_url(field: str, value: str) -> None:
    """Links shown to reviewers and auditors: http(s) only, never javascript: or data:."""
    if value:
        try:
            _http_url(value)
        except ValidationError:
            raise ValidationError({field: ["Enter an http:// or https:// address."]}) from None


def _resolve_contributors(usernames, team: Team) -> list:
    """The users a change of ``team`` may list as contributors: active members of the team. A
    username nobody has and one the caller may not name get the same answer, so the field tells
    nothing about which accounts exist."""
    usernames = list(dict.fromkeys(usernames or []))
    users = list(
        get_user_model().objects.filter(username__in=usernames, is_active=True, memberships__team=team).distinct()
    )
    refused = sorted(set(usernames) - {u.username for u in users})
    if refused:
        raise ValidationError(
            {"contributors": [f"Not an active member of team {team.slug}: {', '.join(refused)}."]}
        )
    return users


def _resolve_requested_reviewers(usernames, *, environment: Environment, author_id: int,
                                 contributor_ids, at: datetime) -> list:
    """The people the author asks to review: active holders of approve or security approve for the
    environment, never the author nor anyone listed as a contributor of any revision. Asking gives
    no power (C2 decides who may approve); a username nobody has and one who may not review get
    the same answer, so the field tells nothing about which accounts exist."""
    usernames = list(dict.fromkeys(usernames or []))
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames, is_active=True)}
    messages, chosen = [], []
    if any(u.pk == author_id for u in users.values()):
        messages.append("You cannot ask yourself to review your own change.")
    contributors = sorted(name for name, u in users.items() if u.pk in contributor_ids and u.pk != author_id)
    if contributors:
        messages.append(f"A contributor cannot review this change: {', '.join(contributors)}.")
    ineligible = []
    for name in usernames:
        user = users.get(name)
        if user is not None and (user.pk == author_id or user.pk in contributor_ids):
            continue
        if user is not None and any(has_duty(user, duty, environment=environment, at=at) for duty in REVIEW_DUTIES):
            chosen.append(user)
        else:
            ineligible.append(name)
    if ineligible:
        messages.append(f"Not a reviewer for {environment.slug}: {', '.join(sorted(ineligible))}.")
    if messages:
        raise ValidationError({"requested_reviewers": messages})
    return chosen


def _record_contributors(cr: ChangeRequest, users, at: datetime) -> None:
    """Add ``users`` to the contributor history of the change's current revision (kept forever)."""
    RevisionContributor.objects.bulk_create(
        [RevisionContributor(change_request=cr, revision=cr.revision, user=u, listed_at=at) for u in users],
        ignore_conflicts=True,
    )


@transaction.atomic
def contributors_learnt(*, change_request: ChangeRequest, users, source: str, at: datetime | None = None) -> list:
    """Contributors the source control reports (integrations: commit authors, committers,
    co-authors, pushers, PR authors) join the change's contributor history for its current
    revision and are barred like declared ones (C2, C5), whoever they are; nothing removes them.
    Returns the users newly added; one audit event names them."""
    at = at or timezone.now()
    cr = change_request_for_decision(change_request.pk, lock=True, details=False)
    known = set(RevisionContributor.objects.filter(change_request=cr).values_list("user_id", flat=True))
    new = [u for u in dict.fromkeys(users) if u.pk not in known and u.pk != cr.author_id]
    if not new:
        return []
    _record_contributors(cr, new, at)
    _record("change_request.contributors_learnt", cr, actor=None, at=at, from_state=cr.state,
            contributors=sorted(u.username for u in new), source=source)
    return new


def _validate_window(planned_start, planned_end) -> None:
    if planned_start and planned_end and planned_end <= planned_start:
        raise ValidationError({"planned_end": ["The planned window must end after it starts."]})


def _validate_fields(title, artifact, change_type, risk, emergency_reason) -> None:
    errors = {}
    if not (title or "").strip():
        errors["title"] = ["A title is required."]
    if not (artifact or "").strip():
        errors["artifact"] = ["Name the artifact to deploy (image digest, commit or version)."]
    if change_type not in ChangeRequest.ChangeType.values:
        errors["change_type"] = [f"Choose one of {', '.join(ChangeRequest.ChangeType.values)}."]
    elif change_type == ChangeRequest.ChangeType.EMERGENCY and not (emergency_reason or "").strip():
        errors["emergency_reason"] = ["Say why this change cannot wait for the normal review."]
    if risk not in ChangeRequest.Risk.values:
        errors["risk"] = [f"Choose one of {', '.join(ChangeRequest.Risk.values)}."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def change_request_create(
    *,
    actor,
    team: Team,
    environment: Environment,
    title: str,
    artifact: str,
    description: str = "",
    change_type: str = ChangeRequest.ChangeType.NORMAL,
    risk: str = ChangeRequest.Risk.MEDIUM,
    contributors=(),
    ticket_url: str = "",
    emergency_reason: str = "",
    implementation_plan: str = "",
    backout_plan: str = "",
    risk_impact: str = "",
    affected_service: str = "",
    source_url: str = "",
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
    requested_reviewers=(),
    at: datetime | None = None,
) -> ChangeRequest:
    """C1: open a draft. The creator is the author; CI may list the commit authors (members of the
    team) as contributors. An emergency change states why it cannot wait (C10)."""
    at = at or timezone.now()
    reasons = []
    if not has_duty(actor, duties.SUBMIT, environment=environment, at=at):
        reasons.append(Reason("missing_duty", f"You do not hold submit for {environment.slug}."))
    if not is_member(actor, team):
        reasons.append(Reason("not_team_member", f"You are not a member of team {team.slug}."))
    if reasons:
        raise Denied(reasons)  # before any lookup, so refused callers learn nothing about usernames
    _validate_fields(title, artifact, change_type, risk, emergency_reason)
    _validate_url("ticket_url", ticket_url)
    _validate_url("source_url", source_url)
    _validate_window(planned_start, planned_end)
    contributor_users = [u for u in _resolve_contributors(contributors, team) if u.pk != actor.pk]
    asked = _resolve_requested_reviewers(requested_reviewers, environment=environment, author_id=actor.pk,
                                         contributor_ids={u.pk for u in contributor_users}, at=at)
    cr = ChangeRequest.objects.create(
        title=title.strip(),
        description=description or "",
        team=team,
        environment=environment,
        change_type=change_type,
        risk=risk,
        artifact=artifact.strip(),
        author=actor,
        ticket_url=ticket_url or "",
        emergency_reason=(emergency_reason or "").strip(),
        implementation_plan=implementation_plan or "",
        backout_plan=backout_plan or "",
        risk_impact=risk_impact or "",
        affected_service=(affected_service or "").strip(),
        source_url=(source_url or "").strip(),
        planned_start=planned_start,
        planned_end=planned_end,
        created_at=at,
    )
    cr.contributors.set(contributor_users)
    cr.requested_reviewers.set(asked)
    _record_contributors(cr, contributor_users, at)
    governance_services.duties_used(actor=actor, environment=environment, duty_codes=[duties.SUBMIT], at=at)
    _record(
        "change_request.created", cr, actor=actor, at=at, from_state="",
        title=cr.title, change_type=cr.change_type, risk=cr.risk,
        contributors=sorted(u.username for u in contributor_users),
        requested_reviewers=sorted(u.username for u in asked),
        **({"emergency_reason": cr.emergency_reason} if cr.is_emergency else {}),
    )
    return cr


def _settle_approvals(cr: ChangeRequest, actor, at: datetime, ctx: policy.PolicyContext | None = None) -> ChangeRequest:
    """Move a pending change to approved once its policy is met (C4), auto-approving where C9 allows.
    ``ctx``, when given, is the policy context of ``cr`` for ``actor`` as it stands now. Returns
    the change request as settled."""
    ctx = ctx or policy_context(cr, actor, at=at)
    template = policy.auto_approvable(ctx, at)
    if template is not None and not any(a.via == Approval.Via.AUTO for a in ctx.approvals if a.revision == cr.revision):
        Approval.objects.create(
            change_request=cr,
            reviewer=None,
            decision=Approval.Decision.APPROVED,
            revision=cr.revision,
            artifact=cr.artifact,
            comment=f"Approved by the policy of {cr.environment.slug}: standard, low-risk change "
            f"(standard-change template #{template.pk} {template.name!r}).",
            via=Approval.Via.AUTO,
            created_at=at,
        )
        cr = change_request_for_decision(cr.pk)
        ctx = policy_context(cr, actor, at=at)
    if policy.approval_status(ctx, at).met:
        _set(cr, state=S.APPROVED, approved_at=at)
        signals.change_request_approved.send(sender=ChangeRequest, change_request=cr, context=ctx, at=at)
    return cr


def start_revision(cr: ChangeRequest, at: datetime, **fields) -> None:
    """A new revision of ``cr``: every decision on the current one turns stale (C3), reviewers may
    decide afresh, and the revision keeps who it lists as contributors."""
    for approval in cr.approvals.all():
        if not approval.stale:
            _set(approval, stale=True)
    _set(cr, revision=cr.revision + 1, approved_at=None, **fields)
    _record_contributors(cr, list(cr.contributors.all()), at)


@transaction.atomic
def change_request_submit(*, actor, change_request: ChangeRequest, at: datetime | None = None) -> ChangeRequest:
    """C1: the author sends a draft for review; where the policy is already met it is approved.
    A change a reviewer sent back (``changes_requested``) is resubmitted the same way; unless the
    author revised it since, the resubmission is a new revision, so the old decisions go stale."""
    at = at or timezone.now()
    cr = change_request_for_decision(change_request.pk, lock=True)
    _require_transition("submit", cr)
    _raise_if_refused(policy.evaluate(policy_context(cr, actor, at=at), "submit", at))
    from_state = cr.state
    resubmitted = states.is_resubmission(from_state)
    if resubmitted and any(not a.stale and a.revision == cr.revision for a in cr.approvals.all()):
        start_revision(cr, at)
    _set(cr, state=S.PENDING, submitted_at=at, reminded_at=None, escalated_at=None)
    _settle_approvals(change_request_for_decision(cr.pk), actor, at)
    cr = change_request_for_decision(cr.pk)
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=[duties.SUBMIT], at=at)
    _record("change_request.submitted", cr, actor=actor, at=at, from_state=from_state,
            auto_approved=any(a.via == Approval.Via.AUTO and a.revision == cr.revision for a in cr.approvals.all()),
            **({"resubmitted": True} if resubmitted else {}))
    if states.is_approved(cr.state):  # the policy's own approval (C9) decided it
        signals.change_request_decided.send(sender=ChangeRequest, change_request=cr, decision="approved", at=at)
    return cr


def _reader_values(cr: ChangeRequest, contributors) -> dict:
    """What a reviewer reads of a change, as recorded before and after an edit."""
    return {
        **{name: getattr(cr, name) for name in TEXT_FIELDS},
        **{name: getattr(cr, name).isoformat() if getattr(cr, name) else None for name in WINDOW_FIELDS},
        "contributors": sorted(u.username for u in contributors),
    }


@transaction.atomic
def change_request_update(
    *, actor, change_request: ChangeRequest, changes: dict, at: datetime | None = None
) -> ChangeRequest:
    """Edit a draft, or a change under review. On a pending or approved change any edit of what a
    reviewer reads (title, description, ticket, artifact, contributors, emergency reason) is a new
    revision: earlier approvals turn stale and it returns to pending (C3). The audit event carries
    each changed value before and after."""
    at = at or timezone.now()
    unknown = set(changes) - set(EDITABLE_FIELDS) - set(REQUEST_FIELDS)
    if unknown:
        raise ValidationError({f: ["This field cannot be changed."] for f in sorted(unknown)})
    cr = change_request_for_decision(change_request.pk, lock=True)
    reasons = []
    if actor.pk != cr.author_id:
        reasons.append(Reason("not_author", "Only the author edits a change request."))
    if not has_duty(actor, duties.SUBMIT, environment=cr.environment, at=at):
        reasons.append(Reason("missing_duty", f"You do not hold submit for {cr.environment.slug}."))
    if reasons:
        raise Denied(reasons)
    fields = {
        name: (changes[name] or "") if name in MULTILINE_FIELDS else (changes[name] or "").strip()
        for name in TEXT_FIELDS if name in changes
    }
    fields.update({name: changes[name] or None for name in WINDOW_FIELDS if name in changes})
    fields = {name: value for name, value in fields.items() if value != getattr(cr, name)}
    current_contributors = list(cr.contributors.all())
    new_contributors = None
    if "contributors" in changes:
        listed = [u for u in _resolve_contributors(changes["contributors"], cr.team) if u.pk != cr.author_id]
        if {u.pk for u in listed} != {u.pk for u in current_contributors}:
            new_contributors = listed
    current_asked = list(cr.requested_reviewers.all())
    new_asked = None
    if "requested_reviewers" in changes:
        barred = ever_contributor_ids(cr) | {u.pk for u in (new_contributors or current_contributors)}
        asked = _resolve_requested_reviewers(changes["requested_reviewers"], environment=cr.environment,
                                             author_id=cr.author_id, contributor_ids=barred, at=at)
        if {u.pk for u in asked} != {u.pk for u in current_asked}:
            new_asked = asked
    edited = bool(fields) or new_contributors is not None
    new_revision = edited and states.allows("new_revision", cr.state)
    _require_transition("new_revision" if new_revision else "edit", cr)
    _validate_fields(
        fields.get("title", cr.title), fields.get("artifact", cr.artifact), cr.change_type, cr.risk,
        fields.get("emergency_reason", cr.emergency_reason),
    )
    for url_field in ("ticket_url", "source_url"):
        if url_field in fields:
            _validate_url(url_field, fields[url_field])
    _validate_window(fields.get("planned_start", cr.planned_start), fields.get("planned_end", cr.planned_end))
    from_state = cr.state
    before = _reader_values(cr, current_contributors)
    if new_revision:
        fields.update(revision=cr.revision + 1, state=states.after_revision(cr.state), approved_at=None)
        for approval in cr.approvals.all():
            if not approval.stale:
                _set(approval, stale=True)
    if fields:
        _set(cr, **fields)
    contributors = current_contributors if new_contributors is None else new_contributors
    if new_contributors is not None:
        cr.contributors.set(new_contributors)
    if new_asked is not None:
        cr.requested_reviewers.set(new_asked)
    if new_contributors is not None or new_revision:
        _record_contributors(cr, contributors, at)  # every revision keeps who it listed
    if new_revision and states.is_pending(cr.state):
        # The new revision meets the policy afresh: auto-approval (C9) or no approval needed at all.
        _settle_approvals(change_request_for_decision(cr.pk), actor, at)
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=[duties.SUBMIT], at=at)
    cr = change_request_for_decision(cr.pk)
    after = _reader_values(cr, contributors)
    changed = sorted(name for name in before if before[name] != after[name])
    _record(
        "change_request.revised" if new_revision else "change_request.updated",
        cr, actor=actor, at=at, from_state=from_state, changed=changed,
        changes={name: {"before": before[name], "after": after[name]} for name in changed},
        requested_reviewers=sorted(u.username for u in (current_asked if new_asked is None else new_asked)),
    )
    return cr


def _decision_read(actor, change_request: ChangeRequest, at: datetime,
                   check_visible: bool) -> tuple[ChangeRequest, policy.PolicyContext]:
    """The change under its lock with ``actor``'s policy context (``selectors.decision_read``).
    ``check_visible``: the caller has not checked that the actor may see the change (V1), and a
    change they may not see is a 404 (the API's decision endpoints: the read answers it in the
    statements it runs anyway, issue 21)."""
    read = decision_read(actor, change_request.pk, at=at, check_visible=check_visible)
    if read is None:
        raise Http404("No such change request.")
    return read


def _decide(actor, change_request, *, decision: str, comment: str, via: str, at: datetime,
            revision: int | None, step_up: dict | None = None, check_visible: bool = False) -> ChangeRequest:
    if via not in HUMAN_CHANNELS:
        # "auto" is the policy's own approval (C9); a person claiming it would pass for the system.
        raise ValidationError({"via": [f"Choose one of {', '.join(HUMAN_CHANNELS)}."]})
    lock_user(actor, shared=True)  # before the change and before reading the actor's grants: G5 for decisions in flight
    cr, ctx = _decision_read(actor, change_request, at, check_visible)
    if revision is not None and revision != cr.revision:
        raise revision_changed(revision, cr.revision)
    action = {Approval.Decision.APPROVED: "approve", Approval.Decision.REJECTED: "reject",
              Approval.Decision.CHANGES_REQUESTED: "request_changes"}[decision]
    _raise_if_refused(policy.evaluate(ctx, action, at, via=via))
    on_call, seen_from = cr.actor_on_call, cr.actor_seen_from
    approval = Approval.objects.create(
        change_request=cr,
        reviewer=actor,
        decision=decision,
        revision=cr.revision,
        artifact=cr.artifact,
        comment=comment or "",
        via=via,
        is_security=duties.SECURITY_APPROVE in ctx.actor_duties,
        is_team_member=ctx.actor_is_team_member,
        is_on_call=on_call,
        created_at=at,
    )
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=policy.APPROVE_DUTIES & ctx.actor_duties, at=at)
    if action == "reject":
        _set(cr, state=states.target("reject"), closed_at=at, close_reason=comment or "")
    elif action == "request_changes":
        _set(cr, state=states.target("request_changes"))
    else:
        # The context read under the lock, plus the approval just written: nothing else it holds
        # (grants, membership, freezes, contributors) changes inside this transaction.
        cr = _settle_approvals(cr, actor, at, replace(ctx, approvals=(*ctx.approvals, approval)))
    # Alerts and events come last, and the events are chained when the transaction ends
    # (audit.deferred): the chain head is locked only for the append, not for this whole service.
    if action != "request_changes":  # asking for changes quickly stamps nothing through
        anomalies.check_rubber_stamp(approval=approval, cr=cr)
    anomalies.check_privileged_action(actor=actor, action=action, cr=cr, at=at, seen_from=seen_from)
    if action == "reject":
        event = "change_request.rejected"
    elif action == "request_changes":
        event = "change_request.changes_requested"
    else:
        event = "change_request.approved" if states.is_approved(cr.state) else "change_request.approval_recorded"
    extra = {"step_up": step_up} if step_up else {}
    _record(event, cr, actor=actor, at=at, from_state=S.PENDING, via=via, comment=comment or "",
            security=duties.SECURITY_APPROVE in ctx.actor_duties, on_call=on_call, **extra)
    cr = reads.answer(cr)  # what the answer names, in one statement: not the whole change read again
    signals.change_request_decided.send(sender=ChangeRequest, change_request=cr, decision=decision, at=at)
    return cr


@audit.deferred()
def change_request_request_changes(
    *, actor, change_request: ChangeRequest, comment: str, via: str = Approval.Via.API,
    revision: int | None = None, at: datetime | None = None, step_up: dict | None = None,
    check_visible: bool = False,
) -> ChangeRequest:
    """A reviewer's non-final decision (the same duties and SoD as rejecting, C2): the change goes
    back to its author as ``changes_requested``, saying what to change. The author revises (a new
    revision: the old decisions go stale, C3) and resubmits."""
    if not (comment or "").strip():
        raise ValidationError({"comment": ["Say what the author should change."]})
    return _decide(actor, change_request, decision=Approval.Decision.CHANGES_REQUESTED, comment=comment.strip(),
                   via=via, at=at or timezone.now(), revision=revision, step_up=step_up, check_visible=check_visible)


def signoff_service(decision: str):
    """The service a portal sign-off form's ``decision`` calls (approve, reject, request changes)."""
    return {"approve": change_request_approve, "reject": change_request_reject, "request_changes": change_request_request_changes}[decision]


def revision_changed(seen: int, current: int) -> InvalidState:
    """C3: the reviewer decided on a revision the change has moved past (409 ``revision_changed``)."""
    return InvalidState(
        f"You reviewed revision {seen}, but the change is now at revision {current}; review it again.",
        code="revision_changed",
    )


@audit.deferred()
def change_request_approve(
    *, actor, change_request: ChangeRequest, comment: str = "", via: str = Approval.Via.API,
    revision: int | None = None, at: datetime | None = None, step_up: dict | None = None,
    check_visible: bool = False,
) -> ChangeRequest:
    """C2–C4, C11: approve ``revision``, which must still be the current one (the portal and the API
    always name it; without it, whatever is current when the lock is taken)."""
    return _decide(actor, change_request, decision=Approval.Decision.APPROVED, comment=comment, via=via,
                   at=at or timezone.now(), revision=revision, step_up=step_up, check_visible=check_visible)


@audit.deferred()
def change_request_reject(
    *, actor, change_request: ChangeRequest, comment: str = "", via: str = Approval.Via.API,
    revision: int | None = None, at: datetime | None = None, step_up: dict | None = None,
    check_visible: bool = False,
) -> ChangeRequest:
    """C2, C4: any rejection closes the request."""
    return _decide(actor, change_request, decision=Approval.Decision.REJECTED, comment=comment, via=via,
                   at=at or timezone.now(), revision=revision, step_up=step_up, check_visible=check_visible)


@transaction.atomic
def change_request_cancel(
    *, actor, change_request: ChangeRequest, reason: str, at: datetime | None = None
) -> ChangeRequest:
    """The author, or a manager of the team, withdraws a request that has not started deploying."""
    at = at or timezone.now()
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the change is cancelled."]})
    cr = change_request_for_decision(change_request.pk, lock=True)
    _require_transition("cancel", cr)
    if actor.pk != cr.author_id and not has_duty(actor, duties.MANAGE_ROLES, team=cr.team, at=at):
        raise Denied(Reason("not_author", "Only the author or a manager of the team cancels a change request."))
    from_state = cr.state
    _set(cr, state=states.target("cancel"), closed_at=at, close_reason=reason.strip())
    cr = change_request_for_decision(cr.pk)
    _record("change_request.cancelled", cr, actor=actor, at=at, from_state=from_state, reason=reason.strip())
    signals.change_request_decided.send(sender=ChangeRequest, change_request=cr, decision="cancelled", at=at)
    return cr


@transaction.atomic
def signoff_failed(*, actor, change_request: ChangeRequest, at: datetime | None = None, reasons=(),
                   step_up: dict | None = None) -> None:
    """A sign-off attempt whose password did not match, or whose step-up at the provider was not
    enough (``reasons``, ``step_up``: what the provider said): recorded, nothing else changes."""
    cr = change_request_for_decision(change_request.pk)
    extra = {"reasons": list(reasons), "step_up": step_up} if step_up or reasons else {}
    _record("change_request.signoff_failed", cr, actor=actor, at=at or timezone.now(), from_state=cr.state, **extra)


# --- Deployments ---------------------------------------------------------------------------------


@audit.deferred()
def deployment_start(
    *, actor, change_request: ChangeRequest, pipeline_url: str = "", at: datetime | None = None,
    check_visible: bool = False,
) -> Deployment:
    """C5–C8: start deploying an approved change; the request moves to deploying."""
    return _start(actor, change_request, pipeline_url, at or timezone.now(), "deploy", check_visible)


@audit.deferred()
def deployment_retry(
    *, actor, change_request: ChangeRequest, pipeline_url: str = "", at: datetime | None = None,
    check_visible: bool = False,
) -> Deployment:
    """A new attempt at deploying a change whose last deployment failed, by an operator, under
    every check of a first deployment (C5–C8: SoD, approvals still valid, freeze, window, prior
    environment). The failed attempt stays on record; the change moves to deploying again."""
    return _start(actor, change_request, pipeline_url, at or timezone.now(), "retry", check_visible)


def _start(actor, change_request: ChangeRequest, pipeline_url: str, at: datetime, action: str,
           check_visible: bool = False) -> Deployment:
    _validate_url("pipeline_url", pipeline_url)
    lock_user(actor, shared=True)  # lock order: the actor, then the change (docs/architecture.md)
    cr, ctx = _decision_read(actor, change_request, at, check_visible)
    from_state = cr.state
    decision = policy.evaluate(ctx, action, at)
    _raise_if_refused(decision)
    failed = cr.deployments.order_by("-started_at", "-id").first() if action == "retry" else None
    deployment = Deployment.objects.create(
        decision=decisions.record(ctx, decision, at, **decision_facts(ctx)),
        change_request=cr,
        environment=cr.environment,
        artifact=cr.artifact,
        revision=cr.revision,
        deployer=actor,
        pipeline_url=pipeline_url or "",
        started_at=at,
    )
    _set(cr, state=states.target(action), **({"closed_at": None} if action == "retry" else {}))
    signals.deployment_started.send(sender=Deployment, change_request=cr, deployment=deployment, context=ctx, at=at)
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=[duties.DEPLOY], at=at)
    # Last, as in _decide; the events are chained when the transaction ends (audit.deferred).
    anomalies.check_privileged_action(actor=actor, action="deploy", cr=cr, at=at, seen_from=cr.actor_seen_from)
    extra = {"retry_of": failed.pk if failed else None, "attempt": cr.deployments.count()} if failed else {}
    _record("deployment.started", cr, actor=actor, at=at, from_state=from_state,
            deployment=deployment.pk, pipeline_url=deployment.pipeline_url, **extra)
    return deployment


def _lock_deployment(deployment: Deployment) -> tuple[Deployment, ChangeRequest]:
    cr = change_request_for_decision(deployment.change_request_id, lock=True)
    locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
    return locked, cr


@transaction.atomic
def deployment_finish(
    *, actor, deployment: Deployment, outcome: str, notes: str = "", at: datetime | None = None
) -> Deployment:
    """The deployer reports the outcome. An emergency change that went out gets its review due date (C10)."""
    at = at or timezone.now()
    if outcome not in (Deployment.State.SUCCEEDED, Deployment.State.FAILED):
        raise ValidationError({"outcome": ["Choose succeeded or failed."]})
    deployment, cr = _lock_deployment(deployment)
    key = f"finish_{outcome}"
    to_state = states.deployment_target(key)
    if not (states.deployment_allows(key, deployment.state) and states.allows(key, cr.state)):
        raise InvalidState(f"Deployment #{deployment.pk} is {deployment.state}; it cannot be finished again.")
    if actor.pk != deployment.deployer_id:
        raise Denied(Reason("not_deployer", "Only the person who started a deployment reports its outcome."))
    _set(deployment, state=to_state, finished_at=at, notes=notes or "")
    fields = {"state": states.target(key)}
    if outcome == Deployment.State.SUCCEEDED:
        fields["deployed_at"] = at
        if cr.is_emergency:
            pir_hours = (cr.environment.approval_policy.pir_due_hours
                         if hasattr(cr.environment, "approval_policy") else 48)
            fields["pir_due_at"] = at + timedelta(hours=pir_hours)
    else:
        fields["closed_at"] = at
    _set(cr, **fields)
    cr = change_request_for_decision(cr.pk)
    _record(f"deployment.{outcome}", cr, actor=actor, at=at, from_state=S.DEPLOYING,
            deployment=deployment.pk, notes=notes or "")
    return deployment


@transaction.atomic
def deployment_rollback(*, actor, deployment: Deployment, reason: str, at: datetime | None = None) -> Deployment:
    """Roll back a successful deployment; needs deploy on the environment."""
    at = at or timezone.now()
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the deployment is rolled back."]})
    lock_user(actor, shared=True)
    deployment, cr = _lock_deployment(deployment)
    to_state = states.deployment_target("rollback")
    if not (states.deployment_allows("rollback", deployment.state) and states.allows("rollback", cr.state)):
        raise InvalidState(f"Deployment #{deployment.pk} is {deployment.state}; only a successful one rolls back.")
    if not has_duty(actor, duties.DEPLOY, environment=cr.environment, at=at):
        raise Denied(Reason("missing_duty", f"You do not hold deploy for {cr.environment.slug}."))
    _set(deployment, state=to_state, rolled_back_at=at, rollback_reason=reason.strip())
    _set(cr, state=states.target("rollback"))
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=[duties.DEPLOY], at=at)
    cr = change_request_for_decision(cr.pk)
    _record("deployment.rolled_back", cr, actor=actor, at=at, from_state=S.DEPLOYED,
            deployment=deployment.pk, reason=reason.strip())
    return deployment


@transaction.atomic
def change_request_review_pir(
    *, actor, change_request: ChangeRequest, notes: str, at: datetime | None = None
) -> ChangeRequest:
    """C10: the post-implementation review of an emergency change, by an approve-duty holder from
    outside the change: neither its author, nor anyone ever listed as its contributor, nor a
    deployer."""
    at = at or timezone.now()
    if not (notes or "").strip():
        raise ValidationError({"notes": ["Write what the review found."]})
    lock_user(actor, shared=True)
    cr = change_request_for_decision(change_request.pk, lock=True)
    if not cr.is_emergency or cr.pir_due_at is None or cr.pir_at is not None:
        raise InvalidState("Only a deployed emergency change awaiting its review can be reviewed.")
    _require_transition("review_pir", cr)
    deployer_ids = set(cr.deployments.values_list("deployer_id", flat=True))
    reasons = []
    held = {d for d in policy.APPROVE_DUTIES if has_duty(actor, d, environment=cr.environment, at=at)}
    if not held:
        reasons.append(Reason("missing_duty", f"You do not hold approve for {cr.environment.slug}."))
    if actor.pk == cr.author_id:
        reasons.append(Reason("author_cannot_review", "The author of a change may not review it."))
    if actor.pk in ever_contributor_ids(cr):
        reasons.append(Reason("contributor_cannot_review", "A contributor to a change may not review it."))
    if actor.pk in deployer_ids:
        reasons.append(Reason("deployer_cannot_review", "Whoever deployed a change may not review it."))
    if reasons:
        raise Denied(reasons)
    _set(cr, pir_by=actor, pir_at=at, pir_notes=notes.strip())
    governance_services.duties_used(actor=actor, environment=cr.environment, duty_codes=held, at=at)
    cr = change_request_for_decision(cr.pk)
    _record("change_request.pir_completed", cr, actor=actor, at=at, from_state=cr.state,
            overdue=at > cr.pir_due_at)
    return cr


REPORT_ALERT_WINDOW = timedelta(hours=1)


@transaction.atomic
def deployment_report(*, actor, environment: Environment, artifact: str, source: str = "",
                      at: datetime | None = None) -> dict:
    """E2: a deploy tool reports what it put on an environment; every report is recorded.

    The answer speaks only of change requests the reporter may see (V1): an artifact covered only
    by another team's approved change gets the same answer as one no change covers, a critical
    ``unregistered_deployment`` alert (whose details, for security's eyes, name that change). A
    reporter raises at most ``COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR`` such alerts in an
    hour; beyond that their reports are folded into one open ``deployment_report_flood`` alert."""
    at = at or timezone.now()
    if not has_duty(actor, duties.DEPLOY, environment=environment, at=at):
        raise Denied(Reason("missing_duty", f"Reporting deployments needs deploy for {environment.slug}."))
    artifact = (artifact or "").strip()
    if not artifact:
        raise ValidationError({"artifact": ["Name the artifact that was deployed."]})
    covering = ChangeRequest.objects.filter(environment=environment, artifact=artifact, state__in=states.COVERS_DEPLOYMENT)
    registered = change_requests_visible_to(actor, at=at).filter(pk__in=covering.values("pk")).order_by("-pk").first()
    out_of_view = None if registered else covering.order_by("-pk").first()
    alert = None
    if registered is None:
        alert = _unregistered_deployment_alert(actor=actor, environment=environment, artifact=artifact,
                                               source=source, out_of_view=out_of_view, at=at)
    audit.record(
        "deployment.reported", actor=actor, target=registered or out_of_view, environment=environment.slug,
        data={"artifact": artifact, "source": source, "registered": registered is not None,
              "out_of_view_change_request": out_of_view.pk if out_of_view else None,
              "alert": alert.pk if alert else None},
        at=at,
    )
    signals.deployment_reported.send(sender=ChangeRequest, actor=actor, environment=environment, artifact=artifact,
                                     source=source, change_request=registered, at=at)
    return {"registered": registered is not None, "change_request": registered.pk if registered else None,
            "alert": alert.pk if alert else None}


def _unregistered_deployment_alert(*, actor, environment: Environment, artifact: str, source: str,
                                   out_of_view: ChangeRequest | None, at: datetime) -> Alert:
    """The open alert about this artifact there, a new one, or, past the reporter's hourly limit,
    the reporter's one open flood alert. The reporter's user row is locked so that their
    concurrent reports are counted one after the other."""
    get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
    dedupe_key = f"unregistered_deployment:{environment.pk}:{artifact}"[:200]
    already_open = Alert.objects.filter(dedupe_key=dedupe_key, status=Alert.Status.OPEN).first()
    if already_open is not None:
        return already_open
    limit = settings.COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR
    raised = Alert.objects.filter(kind="unregistered_deployment", actor=actor,
                                  created_at__gt=at - REPORT_ALERT_WINDOW).count()
    if raised >= limit:
        alert, _ = raise_alert(
            "deployment_report_flood", severity="critical", actor=actor, environment=environment.slug,
            subject=f"{actor.username} reported more than {limit} unregistered deployments within an hour",
            details={"limit": limit, "first_folded_artifact": artifact, "source": source,
                     "reports": "every report is recorded as a deployment.reported audit event"},
            dedupe_key=f"deployment_report_flood:{actor.pk}", at=at,
        )
        return alert
    if out_of_view is None:
        subject = f"{artifact[:120]} reported on {environment.slug} without an approved change request"
    else:
        subject = (f"{artifact[:120]} reported on {environment.slug} by {actor.username}, who may not see "
                   f"its approved CR-{out_of_view.pk}")
    alert, _ = raise_alert(
        "unregistered_deployment", severity="critical", actor=actor, environment=environment.slug,
        subject=subject,
        details={"artifact": artifact, "source": source,
                 "out_of_view_change_request": out_of_view.pk if out_of_view else None},
        dedupe_key=dedupe_key, at=at,
    )
    return alert


# --- Leavers ---------------------------------------------------------------------------------------


def change_requests_withdraw_for_leaver(*, user, actor, reason: str, at: datetime) -> dict:
    """A leaver (identity.services.leavers): the changes they authored that have not started
    deploying are withdrawn (cancelled), and their approvals still counting towards a pending change
    are withdrawn (made stale), so nothing they began or vouched for goes ahead after they left.
    The caller holds the transaction; one event per change and per approval."""
    withdrawn, approvals = [], []
    authored = ChangeRequest.objects.filter(author_id=user.pk, state__in=states.TRANSITIONS["cancel"][0])
    for pk in authored.order_by("pk").values_list("pk", flat=True):
        cr = change_request_for_decision(pk, lock=True)
        from_state = cr.state
        _set(cr, state=S.CANCELLED, closed_at=at, close_reason=reason)
        _record("change_request.withdrawn", cr, actor=actor, at=at, from_state=from_state, reason=reason,
                author=user.username)
        withdrawn.append(cr)
    for approval in Approval.objects.select_for_update(of=("self",)).select_related(
        "change_request__environment", "change_request__team"
    ).filter(reviewer_id=user.pk, stale=False, change_request__state=S.PENDING).order_by("pk"):
        _set(approval, stale=True)
        cr = approval.change_request
        _record("change_request.approval_withdrawn", cr, actor=actor, at=at, from_state=cr.state, reason=reason,
                reviewer=user.username, approval=approval.pk, approval_revision=approval.revision)
        approvals.append(approval)
    return {"change_requests": withdrawn, "approvals": approvals}
