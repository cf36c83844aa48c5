"""The portal: server-rendered pages for reviewers and operators.

Every read goes through ``releases.selectors`` (a change the user may not see is a 404), every
write through ``releases.services``, and every refusal is rendered with all its reason codes:
403 for a policy denial, 409 for a state that does not allow the action, 400 for bad input.
No page needs JavaScript.
"""
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.models import AuditEvent
from config import lockout
from core.errors import Reason, Refused
from releases import selectors, services, states
from releases.forms import (
    APPROVE,
    REQUEST_CHANGES,
    DeploymentFinishForm,
    DeploymentRollbackForm,
    DeploymentStartForm,
    PostImplementationReviewForm,
    SignoffForm,
)
from releases.models import Approval, ChangeRequest, Deployment
from governance import duties
from governance.selectors import has_duty
from releases.policy import Decision, approval_status, evaluate

DASHBOARD_ROWS = 25
RECENT_ROWS = 15
STATE_LABELS = {**dict(ChangeRequest.State.choices), **dict(Deployment.State.choices)}
HISTORY_LABELS = {
    "change_request.created": "Created",
    "change_request.submitted": "Submitted for review",
    "change_request.updated": "Edited",
    "change_request.revised": "New revision",
    "change_request.approval_recorded": "Approval recorded",
    "change_request.approved": "Approved: policy met",
    "change_request.rejected": "Rejected",
    "change_request.changes_requested": "Changes requested",
    "change_request.withdrawn": "Withdrawn from review",
    "change_request.re_review_requested": "Sent back for review: approvals expired",
    "change_request.cancelled": "Cancelled",
    "change_request.signoff_failed": "Sign-off refused: wrong password",
    "change_request.pir_completed": "Post-implementation review written",
    "deployment.started": "Deployment started",
    "deployment.succeeded": "Deployment succeeded",
    "deployment.failed": "Deployment failed",
    "deployment.rolled_back": "Rolled back",
}


@dataclass(frozen=True)
class Refusal:
    """What the service said no to, shown above the page that asked."""

    title: str
    reasons: list[Reason]
    status: int


@dataclass(frozen=True)
class Check:
    """One line of the policy checklist; ``met`` None is a fact of the policy, not a condition."""

    label: str
    met: bool | None
    detail: str
    reason: Reason | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One audit event about the change, in words; ``event`` keeps the row for audit viewers."""

    at: datetime
    actor: str
    label: str
    action: str
    change: str
    detail: str
    event: AuditEvent


def _visible_or_404(user, pk: int, at) -> ChangeRequest:
    try:
        return selectors.visible_change_request(user, pk, at=at)
    except ChangeRequest.DoesNotExist:
        raise Http404("No change request found.") from None


def _deployment_or_404(user, pk: int, at) -> Deployment:
    try:
        return selectors.deployments_visible_to(user, at=at).get(pk=pk)
    except Deployment.DoesNotExist:
        raise Http404("No deployment found.") from None


def _refusal(title: str, refused: Refused) -> Refusal:
    return Refusal(title, refused.reasons, refused.status_code)


def _web_link(url: str) -> str | None:
    """Only http(s) addresses become links: a stored ``javascript:`` URL stays inert text."""
    return url if url.lower().startswith(("https://", "http://")) else None


def _head(queryset, rows: int) -> tuple[list, bool]:
    """The first ``rows`` items and whether there are more, in one query."""
    items = list(queryset[: rows + 1])
    return items[:rows], len(items) > rows


# --- Dashboard -----------------------------------------------------------------------------------


@login_required
def dashboard(request):
    user, at = request.user, timezone.now()
    awaiting, awaiting_more = _head(selectors.change_requests_awaiting_review(user, at=at), DASHBOARD_ROWS)
    mine, mine_more = _head(selectors.change_requests_opened_by(user, at=at), DASHBOARD_ROWS)
    queue = selectors.deploy_queue(user, at=at)
    context = {
        "awaiting_review": awaiting,
        "awaiting_review_more": awaiting_more,
        "ready_to_deploy": [cr for cr, decision in queue if decision.allowed],
        "held_back": [(cr, decision) for cr, decision in queue if not decision.allowed],
        "my_requests": mine,
        "my_requests_more": mine_more,
        "pir_due": list(selectors.change_requests_awaiting_pir(user, at=at)[:DASHBOARD_ROWS]),
        "recent": list(selectors.recent_change_requests(user, at=at)[:RECENT_ROWS]),
        "grants": list(selectors.grants_in_force(user, at=at)),
        "now": at,
    }
    return render(request, "releases/dashboard.html", context)


# --- Change request page -------------------------------------------------------------------------


def _checklist(cr: ChangeRequest, deploy: Decision) -> list[Check]:
    """The policy's requirements as lines a reviewer can read, each with the deploy refusal it causes."""
    requirements = deploy.requirements
    reasons = {r.code: r for r in deploy.reasons}
    approvals, security = requirements["approvals"], requirements["security_approvals"]
    expired = f"; {approvals['expired']} expired" if approvals["expired"] else ""
    checks = [
        Check(
            f"Approvals of revision {cr.revision}",
            approvals["valid"] >= approvals["required"],
            f"{approvals['valid']} of {approvals['required']} required{expired}",
            reasons.get("approvals_expired") or reasons.get("not_approved"),
        )
    ]
    if security["required"]:
        checks.append(
            Check("Security approvals", security["valid"] >= security["required"],
                  f"{security['valid']} of {security['required']} required")
        )
    if requirements["team_reviewer"]["required"]:
        present = requirements["team_reviewer"]["present"]
        checks.append(
            Check(f"A reviewer from team {cr.team.name}", present, "present" if present else "not yet")
        )
    if requirements["independent_approval"]["required"]:
        present = requirements["independent_approval"]["present"]
        checks.append(
            Check("An approval by someone outside the change", present,
                  "present" if present else "not yet: needed in production whatever the policy says",
                  reasons.get("control_floor"))
        )
    if cr.change_type == ChangeRequest.ChangeType.STANDARD:
        template = requirements["standard_template"]
        checks.append(
            Check("A standard-change template covers it", template is not None,
                  template or "none in force: reviewed like a normal change")
        )
    freezes, frozen = requirements["freeze_windows"], reasons.get("freeze_window_active")
    if not freezes:
        freeze_detail = "none in force"
    elif frozen:
        freeze_detail = "frozen: " + ", ".join(freezes)
    else:
        freeze_detail = f"{', '.join(freezes)} in force; this emergency change has a security approval"
    checks.append(Check("No freeze window in force", frozen is None, freeze_detail, frozen))
    in_window = requirements["in_deploy_window"]
    checks.append(
        Check("Inside the deploy window", in_window, "yes" if in_window else "not now",
              reasons.get("outside_deploy_window"))
    )
    prior = requirements["prior_environment"]
    if prior:
        checks.append(
            Check(
                f"Deployed to {prior['environment']} first",
                prior["deployed"],
                "the same artifact went out successfully" if prior["deployed"] else "not yet",
                reasons.get("prior_environment_required"),
            )
        )
    if requirements["approval_ttl_hours"]:
        checks.append(Check("Approvals stay valid", None, f"for {requirements['approval_ttl_hours']} hours"))
    if requirements["interactive_signoff_required"]:
        checks.append(Check("Sign-off", None, "only in this portal, with the password re-entered"))
    return checks


def _history(events) -> list[HistoryEntry]:
    entries = []
    for event in events:
        data = event.data or {}
        before, after = data.get("from_state", ""), data.get("to_state", "")
        change = ""
        if after and before != after:
            change = f"{STATE_LABELS.get(before, before) or 'new'} → {STATE_LABELS.get(after, after)}"
        detail = data.get("comment") or data.get("notes") or data.get("reason") or ""
        if data.get("via"):
            detail = f"via {data['via']}" + (f": {detail}" if detail else "")
        entries.append(
            HistoryEntry(
                at=event.created_at,
                actor=event.actor_username or "system",
                label=HISTORY_LABELS.get(event.action, event.action),
                action=event.action,
                change=change,
                detail=detail,
                event=event,
            )
        )
    return entries


@dataclass(frozen=True)
class AuthorPart:
    """What the author (or, for a re-review, a manager of the team) may do with the change now."""

    edit: bool
    submit: Decision | None  # the policy's answer to submitting (or resubmitting), when the state allows it
    resubmit: bool
    withdraw: bool
    re_review: bool

    @property
    def any(self) -> bool:
        return self.edit or self.submit is not None or self.withdraw or self.re_review


def _author_part(cr: ChangeRequest, user, ctx, deploy: Decision, at) -> AuthorPart:
    """``deploy``: the policy's answer to deploying the change (to retrying it, once it failed)."""
    author = user.pk == cr.author_id
    approvals_lapsed = bool({"approvals_expired", "approvals_insufficient"} & set(deploy.codes))
    return AuthorPart(
        edit=author and states.allows("edit", cr.state),
        submit=evaluate(ctx, "submit", at) if author and states.allows("submit", cr.state) else None,
        resubmit=states.is_resubmission(cr.state),
        withdraw=author and states.allows("withdraw", cr.state),
        re_review=states.allows("re_review", cr.state) and approvals_lapsed
        and (author or has_duty(user, duties.MANAGE_ROLES, team=cr.team, at=at)),
    )


def _change_page(request, cr: ChangeRequest, at, *, refusal: Refusal | None = None, status: int = 200,
                 start_form=None, finish_form=None, rollback_form=None, retry_form=None):
    user = request.user
    ctx = selectors.policy_context(cr, user, at=at)
    approve = evaluate(ctx, "approve", at, via=Approval.Via.PORTAL)
    deploy = evaluate(ctx, "deploy", at)
    retry = evaluate(ctx, "retry", at) if states.allows("retry", cr.state) else None
    deployments = list(selectors.change_request_deployments(cr))
    for deployment in deployments:
        deployment.pipeline_link = _web_link(deployment.pipeline_url)
    running = next((d for d in deployments if states.deployment_allows("finish_succeeded", d.state)), None)
    succeeded = next((d for d in deployments if states.deployment_allows("rollback", d.state)), None)
    holds_deploy = "deploy" in ctx.actor_duties
    approvals = sorted(cr.approvals.all(), key=lambda a: (-a.revision, a.created_at, a.pk))
    context = {
        "cr": cr,
        "ticket_link": _web_link(cr.ticket_url),
        "source_link": _web_link(cr.source_url),
        "refusal": refusal,
        "checklist": _checklist(cr, deploy),
        "approve_decision": approve,
        "deploy_decision": deploy,
        "decisions_apply": cr.state in states.DECISIONS_APPLY,
        "signoff_open": states.allows("approve", cr.state),
        "changes_decision": evaluate(ctx, "request_changes", at, via=Approval.Via.PORTAL),
        "author_part": _author_part(cr, user, ctx, retry or deploy, at),
        "retry_decision": retry if retry is not None and (retry.allowed or "deploy" in ctx.actor_duties) else None,
        "retry_form": retry_form or DeploymentStartForm(prefix="retry"),
        "approvals": approvals,
        "expired_approval_ids": _expired_approval_ids(ctx, at),
        "deployments": deployments,
        "start_form": (start_form or DeploymentStartForm()) if deploy.allowed else None,
        "running": running,
        "finish_form": (finish_form or DeploymentFinishForm()) if running and running.deployer_id == user.pk else None,
        "rollback_target": succeeded if states.allows("rollback", cr.state) and holds_deploy else None,
        "rollback_form": rollback_form or DeploymentRollbackForm(),
        "pir_open": cr.is_emergency and cr.pir_due_at is not None and cr.pir_at is None,
        "history": _history(selectors.change_request_history(cr, user, at=at)),
        "audit_viewer": selectors.sees_all_changes(user, at=at),
        "now": at,
    }
    return render(request, "releases/change_request.html", context, status=status)


def _expired_approval_ids(ctx, at) -> set[int]:
    return {a.pk for a in approval_status(ctx, at).expired}


@login_required
def change_request_detail(request, pk: int):
    at = timezone.now()
    return _change_page(request, _visible_or_404(request.user, pk, at), at)


# --- Sign-off (C2, C11) --------------------------------------------------------------------------


def _signoff_page(request, cr: ChangeRequest, at, form: SignoffForm, *, refusal=None, status=200):
    ctx = selectors.policy_context(cr, request.user, at=at)
    decision = evaluate(ctx, "approve", at, via=Approval.Via.PORTAL)
    deploy = evaluate(ctx, "deploy", at)
    context = {
        "cr": cr,
        "ticket_link": _web_link(cr.ticket_url),
        "form": form,
        "refusal": refusal,
        "decision": decision,
        "checklist": _checklist(cr, deploy),
    }
    return render(request, "releases/signoff.html", context, status=status)


@login_required
def change_request_signoff(request, pk: int):
    """GET: what is being signed, the checklist and the form. POST: re-check the password, then
    approve or reject through the service with ``via="portal"``."""
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    if request.method != "POST":
        initial = {"revision": cr.revision}
        if request.GET.get("decision") in dict(SignoffForm.base_fields["decision"].choices):
            initial["decision"] = request.GET["decision"]  # the change page's "Request changes" button
        return _signoff_page(request, cr, at, SignoffForm(initial=initial, password=not settings.OIDC_ENABLED))
    if settings.OIDC_ENABLED:  # the form posts to the provider's step-up (identity.sso), never here
        form = SignoffForm(request.POST, password=False)
        form.is_valid()
        form.add_error(None, "With single sign-on, a decision is signed by signing in again at the provider.")
        return _signoff_page(request, cr, at, form, status=400)
    if not lockout.signoff_allowed(request, user):  # too many wrong passwords: not even checked
        return lockout.lockout_response(request)
    form = SignoffForm(request.POST)
    if not form.is_valid():
        return _signoff_page(request, cr, at, form, status=400)
    if not user.check_password(form.cleaned_data["password"]):
        services.signoff_failed(actor=user, change_request=cr, at=at)
        if lockout.signoff_password_failed(request, user):  # counted like a failed login
            return lockout.lockout_response(request)
        form.add_error("password", "That is not your password. Nothing was signed; the attempt is recorded.")
        return _signoff_page(request, cr, at, form, status=400)
    chosen = form.cleaned_data["decision"]
    approving = chosen == APPROVE
    service = services.signoff_service(chosen)
    try:
        # The revision the page showed: the service compares it under the change's row lock, so a
        # revision pushed while the password was checked is never signed in the reviewer's name.
        updated = service(actor=user, change_request=cr, comment=form.cleaned_data["comment"].strip(),
                          via=Approval.Via.PORTAL, revision=form.cleaned_data["revision"], at=at)
    except Refused as refused:
        if "revision_changed" in refused.codes:
            return _moved_on(request, pk, form, refused)
        title = "Sign-off refused" if refused.status_code == 403 else "This change cannot be decided now"
        return _signoff_page(request, cr, at, form, refusal=_refusal(title, refused), status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _signoff_page(request, cr, at, form, status=400)
    if chosen == REQUEST_CHANGES:
        messages.success(request, f"You asked for changes to CR-{cr.pk}; it is back with {cr.author.username}.")
    elif not approving:
        messages.success(request, f"You rejected CR-{cr.pk}.")
    elif states.is_approved(updated.state):
        messages.success(request, f"You signed off CR-{cr.pk}; its policy is met and it is approved.")
    else:
        messages.success(request, f"You signed off CR-{cr.pk}; it still needs further approvals.")
    return redirect("releases:change_request", pk=cr.pk)


def _moved_on(request, pk: int, form: SignoffForm, refused: Refused):
    """The change has a newer revision than the one signed: show the new one, nothing signed."""
    at = timezone.now()
    cr = _visible_or_404(request.user, pk, at)
    refusal = Refusal(
        "The change moved on while you were reviewing it",
        [Reason("revision_changed", f"You reviewed revision {form.cleaned_data['revision']}; the change is now at "
                                    f"revision {cr.revision}. Review the new revision and sign again.")],
        refused.status_code,
    )
    fresh = SignoffForm(initial={"revision": cr.revision, "comment": form.cleaned_data["comment"]})
    return _signoff_page(request, cr, at, fresh, refusal=refusal, status=refused.status_code)


# --- Deployments (C5–C8) -------------------------------------------------------------------------


@login_required
@require_POST
def deployment_start(request, pk: int):
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    form = DeploymentStartForm(request.POST)
    if not form.is_valid():
        return _change_page(request, cr, at, start_form=form, status=400)
    try:
        deployment = services.deployment_start(
            actor=user, change_request=cr, pipeline_url=form.cleaned_data["pipeline_url"], at=at
        )
    except Refused as refused:
        return _change_page(request, cr, at, refusal=_refusal("Deployment refused", refused),
                            status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _change_page(request, cr, at, start_form=form, status=400)
    messages.success(request, f"Deployment #{deployment.pk} of CR-{cr.pk} started. Report its outcome below.")
    return redirect("releases:change_request", pk=cr.pk)


@login_required
@require_POST
def deployment_finish(request, pk: int):
    user, at = request.user, timezone.now()
    deployment = _deployment_or_404(user, pk, at)
    form = DeploymentFinishForm(request.POST)
    if form.is_valid():
        try:
            services.deployment_finish(actor=user, deployment=deployment, outcome=form.cleaned_data["outcome"],
                                       notes=form.cleaned_data["notes"].strip(), at=at)
        except Refused as refused:
            cr = _visible_or_404(user, deployment.change_request_id, at)
            return _change_page(request, cr, at, refusal=_refusal("Outcome not recorded", refused),
                                status=refused.status_code)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            outcome = STATE_LABELS[form.cleaned_data["outcome"]].lower()
            messages.success(request, f"Deployment #{deployment.pk} recorded as {outcome}.")
            return redirect("releases:change_request", pk=deployment.change_request_id)
    cr = _visible_or_404(user, deployment.change_request_id, at)
    return _change_page(request, cr, at, finish_form=form, status=400)


@login_required
@require_POST
def deployment_rollback(request, pk: int):
    user, at = request.user, timezone.now()
    deployment = _deployment_or_404(user, pk, at)
    form = DeploymentRollbackForm(request.POST)
    if form.is_valid():
        try:
            services.deployment_rollback(actor=user, deployment=deployment, reason=form.cleaned_data["reason"], at=at)
        except Refused as refused:
            cr = _visible_or_404(user, deployment.change_request_id, at)
            return _change_page(request, cr, at, refusal=_refusal("Rollback refused", refused),
                                status=refused.status_code)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Deployment #{deployment.pk} rolled back.")
            return redirect("releases:change_request", pk=deployment.change_request_id)
    cr = _visible_or_404(user, deployment.change_request_id, at)
    return _change_page(request, cr, at, rollback_form=form, status=400)


# --- Post-implementation review (C10) ------------------------------------------------------------


def _review_page(request, cr, form, *, refusal=None, status=200):
    context = {"cr": cr, "form": form, "refusal": refusal, "now": timezone.now()}
    return render(request, "releases/review.html", context, status=status)


@login_required
def change_request_review(request, pk: int):
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    if request.method != "POST":
        return _review_page(request, cr, PostImplementationReviewForm())
    form = PostImplementationReviewForm(request.POST)
    if not form.is_valid():
        return _review_page(request, cr, form, status=400)
    try:
        services.change_request_review_pir(actor=user, change_request=cr, notes=form.cleaned_data["notes"], at=at)
    except Refused as refused:
        return _review_page(request, cr, form, refusal=_refusal("Review refused", refused),
                            status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _review_page(request, cr, form, status=400)
    messages.success(request, f"Post-implementation review of CR-{cr.pk} recorded.")
    return redirect("releases:change_request", pk=cr.pk)
