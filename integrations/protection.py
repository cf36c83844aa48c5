"""Countersign as a GitHub custom deployment protection rule (issue 16, item 2), run in the worker.

GitHub holds a job that deploys to an environment protected by the Countersign App and sends a
``deployment_protection_rule`` event (through ``integrations.webhooks``: signed, stored once). The
request is stored (``ProtectionRequest``) and answered from the outbox:

1. the change request: one of the linked repository's team, for the environment of that name
   (slug or name), still on its way, linked to the commit (a ``SourceLink`` by sha, the event's
   pull requests, a commit learnt from the PR's pushes, or the sha inside the artifact);
2. the deployer: the workflow's actor (the event's ``sender``) through a linked platform account;
3. ``releases.policy.evaluate(..., "deploy")`` for that person now — the gate's own answer.

Allowed: ``approved``. Refused only for want of approvals (``not_approved``,
``approvals_insufficient``, ``approvals_expired``, ``control_floor``): a status comment that lists
what is missing and keeps the job waiting; it is answered again whenever the change is decided
(``releases.signals.change_request_decided``). Any other reason (the deployer wrote, contributed
to or approved the change, lacks the deploy duty, a freeze, the window, the prior environment, an
unpinned artifact, a rejected change, an unknown environment, change or deployer): ``rejected``.
Every answer lists the reasons with their codes and links to the change, and is an audit event.

GitHub unreachable (or refusing our credentials): the answer is tried again with backoff
(``outbox.backoff``); after ``COUNTERSIGN_GITHUB_ALERT_AFTER_FAILURES`` failures in a row an alert
is raised, after ``COUNTERSIGN_GITHUB_MAX_ATTEMPTS`` the request is given up (left waiting).
"""
import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import audit
from audit import outbox
from audit.alerts import raise_alert
from core.errors import Reason
from core.shapes import Shape
from governance.models import Environment
from integrations import github_app, payloads
from integrations.models import LearntContributor, PlatformAccount, ProtectionRequest, SourceLink, WebhookDelivery
from releases import policy, states
from releases.models import ChangeRequest
from releases.selectors import change_request_for_decision, policy_context

TOPIC = "integrations.github_protection"
EVENT = "deployment_protection_rule"
WAITABLE = frozenset({"not_approved", "approvals_insufficient", "approvals_expired", "control_floor"})
P = ProtectionRequest.State


def _now():
    """The instant an answer is decided at (the tests move it into a deploy window)."""
    return timezone.now()


def requested(delivery: WebhookDelivery) -> ProtectionRequest | None:
    """Store what a ``deployment_protection_rule`` delivery asks and queue its answer (once per
    delivery). None for another action, or for a delivery that names no callback."""
    payload = delivery.payload
    if payload.get("action") != "requested" or not isinstance(payload.get("deployment_callback_url"), str):
        return None
    existing = ProtectionRequest.objects.filter(delivery=delivery).first()
    if existing is not None:
        return existing
    name = payloads.text(payload.get("environment"), 255)
    installation = payloads.obj(payload.get("installation"))
    sender = payloads.obj(payload.get("sender"))
    at = timezone.now()
    request = ProtectionRequest.objects.create(
        delivery=delivery, repository=delivery.repository, environment_name=name,
        environment=Environment.objects.filter(Q(slug__iexact=name) | Q(name__iexact=name)).first() if name else None,
        sha=payloads.text(payload.get("sha"), 64).lower(), ref=payloads.text(payload.get("ref"), 255),
        callback_url=payload["deployment_callback_url"][:1000],
        installation_id=installation.get("id") if isinstance(installation.get("id"), int) else None,
        actor_login=payloads.text(sender.get("login"), 100), created_at=at, updated_at=at,
    )
    outbox.enqueue(TOPIC, {"request": request.pk}, at=at)
    return request


def _pull_requests(payload: dict) -> list[int]:
    pulls = payload.get("pull_requests") if isinstance(payload.get("pull_requests"), list) else []
    return [p["number"] for p in pulls if isinstance(p, dict) and isinstance(p.get("number"), int)]


def find_change(request: ProtectionRequest) -> ChangeRequest | None:
    """The change request the job deploys (module docstring, 1): an approved one first, then the newest."""
    if request.change_request_id is not None:  # found for an earlier answer: the same change, whatever became of it
        return request.change_request
    if request.environment is None or not request.sha:
        return None
    candidates = ChangeRequest.objects.filter(team_id=request.repository.team_id, environment=request.environment,
                                              state__in=states.OPEN)
    links = SourceLink.objects.filter(repository=request.repository, change_request__in=candidates)
    ids = {cr for cr, sha in links.exclude(commit_sha="").values_list("change_request", "commit_sha")
           if request.sha.startswith(sha.lower())}
    pulls = _pull_requests(request.delivery.payload)
    if pulls:
        ids |= set(links.filter(pull_request__in=pulls).values_list("change_request", flat=True))
    ids |= set(LearntContributor.objects.filter(change_request__in=candidates, commit_sha__iexact=request.sha)
               .values_list("change_request", flat=True))
    if len(request.sha) == 40:  # the commit named in the artifact as a whole, not inside a longer hex string
        whole = re.compile(rf"(?<![0-9a-f]){re.escape(request.sha)}(?![0-9a-f])", re.I)
        ids |= {pk for pk, artifact in candidates.filter(artifact__icontains=request.sha).values_list("pk", "artifact")
                if whole.search(artifact)}
    found = list(candidates.filter(pk__in=ids).order_by("-pk"))
    approved = [cr for cr in found if states.is_approved(cr.state)]
    return (approved or found or [None])[0]


def deployer(request: ProtectionRequest):
    if not request.actor_login:
        return None
    account = PlatformAccount.objects.filter(platform=request.repository.platform,
                                             login__iexact=request.actor_login).select_related("user").first()
    return account.user if account is not None and account.user.is_active else None


@dataclass(frozen=True)
class Verdict:
    state: str  # approved, rejected, or waiting (a status comment only)
    reasons: tuple[Reason, ...]
    change_request: ChangeRequest | None
    deployer: object
    requirements: dict | None = None


def decide(request: ProtectionRequest, at) -> Verdict:
    """What to answer now (module docstring): the policy's own decision for the deployer."""
    person, cr = deployer(request), find_change(request)
    if request.environment is None:
        return Verdict(P.REJECTED, (Reason("environment_unknown", f"No Countersign environment is called "
                                           f"{request.environment_name!r}."),), None, person)
    refusals = []
    if cr is None:
        refusals.append(Reason("no_change_request", f"No change request of {request.repository.team.name} for "
                               f"{request.environment.slug} is linked to commit {request.sha[:12] or '(none)'} "
                               f"of {request.repository.full_name}."))
    if person is None:
        refusals.append(Reason("deployer_unknown", f"The workflow's actor {request.actor_login or '(none)'} is not "
                               "linked to an active Countersign account (admin: platform accounts)."))
    if refusals:
        return Verdict(P.REJECTED, tuple(refusals), cr, person)
    cr = change_request_for_decision(cr.pk)
    decision = policy.evaluate(policy_context(cr, person, at=at), "deploy", at)
    if decision.allowed:
        return Verdict(P.APPROVED, (), cr, person, decision.requirements)
    state = P.WAITING if set(decision.codes) <= WAITABLE and cr.state in states.OPEN else P.REJECTED
    return Verdict(state, decision.reasons, cr, person, decision.requirements)


def comment(request: ProtectionRequest, verdict: Verdict) -> str:
    heading = {P.APPROVED: "Approved", P.REJECTED: "Rejected",
               P.WAITING: "Waiting for approvals"}[verdict.state]
    lines = [f"Countersign: {heading}."]
    cr = verdict.change_request
    if cr is not None:
        lines.append(f"CR-{cr.pk} {cr.title[:120]!r}, revision {cr.revision}, {cr.state}, to {cr.environment.slug}.")
    if verdict.deployer is not None:
        lines.append(f"Deployer: {request.actor_login} ({verdict.deployer.get_username()}).")
    if verdict.requirements:
        approvals, security = verdict.requirements["approvals"], verdict.requirements["security_approvals"]
        lines.append(f"Approvals: {approvals['valid']} of {approvals['required']} valid"
                     + (f", security {security['valid']} of {security['required']}" if security["required"] else "")
                     + ".")
    lines += [f"- {r.code}: {r.message}" for r in verdict.reasons]
    if cr is not None:
        lines.append(settings.COUNTERSIGN_BASE_URL.rstrip("/") + reverse("releases:change_request", args=[cr.pk]))
    return "\n".join(lines)[:4000]


def _record(request: ProtectionRequest, verdict: Verdict, outcome: str, at, **data) -> None:
    cr = verdict.change_request
    audit.record(
        "deployment.protection_answered", actor=None, target=request,
        environment=request.environment.slug if request.environment else "", team=request.repository.team.slug,
        data={"outcome": outcome, "state": verdict.state, "reasons": [r.code for r in verdict.reasons],
              "repository": request.repository.full_name, "environment_name": request.environment_name,
              "sha": request.sha, "ref": request.ref, "actor_login": request.actor_login,
              "deployer": getattr(verdict.deployer, "username", None), "change_request": cr.pk if cr else None,
              "delivery": request.delivery.delivery_id, **data},
        at=at,
    )


def _failed(request: ProtectionRequest, verdict: Verdict, error: str, at) -> None:
    request.failures += 1
    request.last_error = error[:2000]
    request.updated_at = at
    request.save(update_fields=["failures", "last_error", "updated_at"])
    if request.failures == settings.COUNTERSIGN_GITHUB_ALERT_AFTER_FAILURES:
        raise_alert(
            "github_protection_unanswered", severity="high", environment=request.environment_name[:64],
            team=request.repository.team.slug,
            subject=f"GitHub has not taken Countersign's answer for {request.repository.full_name} "
                    f"({request.environment_name}) after {request.failures} attempts",
            details={"protection_request": request.pk, "error": request.last_error,
                     "callback_url": request.callback_url},
            dedupe_key=f"github_protection_unanswered:{request.pk}", at=at,
        )
    if request.failures < settings.COUNTERSIGN_GITHUB_MAX_ATTEMPTS:
        outbox.enqueue(TOPIC, {"request": request.pk}, delay=outbox.backoff(request.failures))
    else:
        _record(request, verdict, "given_up", at, error=request.last_error)


def answer(request_id: int) -> str:
    """Decide and tell GitHub, under the request's lock. Returns what happened."""
    request = (ProtectionRequest.objects.select_for_update(of=("self",)).select_related("repository__team", "environment",
                                                                               "delivery").filter(pk=request_id).first())
    if request is None or request.state != P.WAITING:
        return "decided"
    at = _now()
    verdict = decide(request, at)
    text = comment(request, verdict)
    if verdict.state == P.WAITING and request.answered_at is not None and text == request.last_comment:
        return "unchanged"
    try:
        config = github_app.app()
        github_app.review(config, installation_id=request.installation_id or 0, callback_url=request.callback_url,
                          repository=request.repository.full_name, environment_name=request.environment_name,
                          comment=text, state=None if verdict.state == P.WAITING else verdict.state)
    except (github_app.Unavailable, github_app.NotConfigured) as exc:
        _failed(request, verdict, str(exc), at)
        return "retrying"
    except (github_app.UntrustedUrl, github_app.Refused) as exc:
        # Nothing to try again: GitHub will not take it (or must not be sent it). Left waiting, on record.
        request.last_error, request.updated_at = str(exc)[:2000], at
        request.save(update_fields=["last_error", "updated_at"])
        _record(request, verdict, "not_taken", at, error=request.last_error)
        return "not_taken"
    request.state = verdict.state
    request.reasons = [r.code for r in verdict.reasons]
    request.last_comment, request.answered_at, request.updated_at = text, at, at
    request.failures, request.last_error = 0, ""
    request.change_request, request.deployer = verdict.change_request, verdict.deployer
    if verdict.state != P.WAITING:
        request.decided_at = at
    request.save()
    _record(request, verdict, "answered", at)
    return verdict.state


@outbox.handler(TOPIC)
def deliver(payload: dict, message) -> None:
    answer(payload["request"])


# The jobs waiting on a change: asked at every decision, compiled once (core.shapes, issue 21).
_WAITING = Shape(lambda change_request_id: ProtectionRequest.objects.filter(
    change_request_id=change_request_id, state=P.WAITING).values_list("pk"), change_request_id=int)


def change_decided(change_request: ChangeRequest, at) -> int:
    """Queue a new answer for every job waiting on ``change_request``. Returns how many."""
    waiting = [pk for (pk,) in _WAITING.rows(change_request_id=change_request.pk)]
    for pk in waiting:
        outbox.enqueue(TOPIC, {"request": pk})  # due now (``at`` is the decision's instant, maybe not the clock's)
    return len(waiting)
