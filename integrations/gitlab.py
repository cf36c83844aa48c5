"""Countersign as GitLab's deployment approver (issue 16, item 3).

A protected environment that requires approval holds its deployment job ``blocked`` and sends a
``Deployment Hook`` with that status. Countersign finds the change request for that environment
and commit (``integrations.reconciliation.change_for``), evaluates the policy for deploying it
(the deployer is the GitLab user who ran the pipeline, mapped to a person by platform account or
e-mail, ``integrations.sources.match``), and answers through GitLab's deployment approval API as
its service account:

    POST {COUNTERSIGN_GITLAB_API_URL}/projects/:id/deployments/:deployment_id/approval
    PRIVATE-TOKEN: {COUNTERSIGN_GITLAB_TOKEN}
    {"status": "approved" | "rejected", "comment": "..."}

(https://docs.gitlab.com/api/deployments/#approve-or-reject-a-blocked-deployment). The comment
names the human approvers, or every reason, and links to the change. When the change request is
decided later (``releases.signals.change_request_decided``), every deployment still waiting on it
is evaluated again; an answer is sent only when it differs from the last one sent. The call is
made in the worker through the outbox, so a GitLab outage is retried with backoff.
"""
import requests
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from audit import outbox
from core.errors import Reason
from core.shapes import Shape
from integrations import payloads, reconciliation, sources
from integrations.models import GitLabDeploymentApproval, ReportedDeployment, WebhookDelivery
from releases import policy, selectors
from releases.models import ChangeRequest

TOPIC = "integrations.gitlab_approval"
BLOCKED = "blocked"
A = GitLabDeploymentApproval.Status
TIMEOUT = 10


def waiting(reported: ReportedDeployment, delivery: WebhookDelivery) -> GitLabDeploymentApproval | None:
    """A blocked GitLab deployment: remember it and queue its evaluation (in the delivery's
    transaction). Other statuses end the wait."""
    if reported.source != ReportedDeployment.Source.GITLAB:
        return None
    if reported.status != BLOCKED:
        GitLabDeploymentApproval.objects.filter(reported_deployment=reported, waiting=True).update(waiting=False)
        return None
    project = payloads.obj(delivery.payload.get("project")).get("id")
    if not isinstance(project, int):
        return None
    user = payloads.obj(delivery.payload.get("user"))
    approval, _ = GitLabDeploymentApproval.objects.update_or_create(
        reported_deployment=reported,
        defaults={"project_id": project, "deployment_id": int(reported.external_id), "waiting": True,
                  "deployer_username": str(user.get("username") or "")[:255],
                  "deployer_email": str(user.get("email") or "")[:255]},
    )
    outbox.enqueue(TOPIC, {"approval": approval.pk})
    return approval


# The deployments waiting in an environment: asked at every decision, compiled once (core.shapes).
_WAITING = Shape(lambda environment_id: GitLabDeploymentApproval.objects.filter(
    waiting=True, reported_deployment__environment_id=environment_id).values_list("pk"), environment_id=int)


def change_decided(change_request: ChangeRequest) -> int:
    """Queue a fresh evaluation of every GitLab deployment still waiting in the change's
    environment (it may be the one they wait for). Returns how many."""
    pks = [pk for (pk,) in _WAITING.rows(environment_id=change_request.environment_id)]
    for pk in pks:
        outbox.enqueue(TOPIC, {"approval": pk})
    return len(pks)


def _link(cr: ChangeRequest) -> str:
    return settings.COUNTERSIGN_BASE_URL.rstrip("/") + reverse("releases:change_request", args=[cr.pk])


def decide(approval: GitLabDeploymentApproval, at) -> tuple[str, str, ChangeRequest | None, list[str]]:
    """(status, comment, change, reason codes) for a waiting deployment, at ``at``."""
    reported = approval.reported_deployment
    cr = reconciliation.change_for(reported)
    if cr is None:
        reason = Reason("no_change_request", f"No change request of {reported.environment_name} names commit "
                        f"{reported.commit_sha[:12] or '(none)'}: link the change to its commit or merge request.")
        return A.REJECTED, f"Countersign refused this deployment:\n- {reason.code}: {reason.message}", None, [reason.code]
    cr = selectors.change_request_for_decision(cr.pk)
    deployer = sources.match("gitlab", sources.Identity("pusher", "", approval.deployer_email,
                                                          approval.deployer_username))
    if deployer is None:
        reasons = [Reason("unknown_deployer", f"GitLab user {approval.deployer_username or '(unknown)'} is nobody "
                          "Countersign knows: link their platform account.")]
    else:
        decision = policy.evaluate(selectors.policy_context(cr, deployer, at=at), "deploy", at)
        reasons = [] if decision.allowed else list(decision.reasons)
    if reasons:
        lines = "\n".join(f"- {r.code}: {r.message}" for r in reasons)
        return (A.REJECTED, f"Countersign refused CR-{cr.pk} (revision {cr.revision}):\n{lines}\n{_link(cr)}",
                cr, [r.code for r in reasons])
    approvers = [a for a in cr.approvals.all() if a.decision == "approved" and not a.stale and a.revision == cr.revision]
    names = ", ".join(f"{a.reviewer.username if a.reviewer_id else 'policy (auto)'} "
                      f"({'security' if a.is_security else 'approve'}, {a.created_at.isoformat()})" for a in approvers)
    return (A.APPROVED, f"Countersign approved CR-{cr.pk} (revision {cr.revision}) for {deployer.username}. "
            f"Approved by: {names or 'nobody'}.\n{_link(cr)}", cr, [])


def answer(approval: GitLabDeploymentApproval, status: str, comment: str) -> None:
    base, token = settings.COUNTERSIGN_GITLAB_API_URL.rstrip("/"), settings.COUNTERSIGN_GITLAB_TOKEN
    if not token:
        raise RuntimeError("COUNTERSIGN_GITLAB_TOKEN is not set: cannot answer GitLab")
    response = requests.post(
        f"{base}/projects/{approval.project_id}/deployments/{approval.deployment_id}/approval",
        headers={"PRIVATE-TOKEN": token}, json={"status": status, "comment": comment[:10000]}, timeout=TIMEOUT,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"GitLab answered {response.status_code}: {response.text[:500]}")


@outbox.handler(TOPIC)
def evaluate(payload: dict, message) -> None:
    at = timezone.now()
    approval = (GitLabDeploymentApproval.objects.select_for_update().select_related("reported_deployment")
                .filter(pk=payload["approval"]).first())
    if approval is None or not approval.waiting:
        return
    status, comment, cr, codes = decide(approval, at)
    approval.evaluated_at = at
    if status == approval.status:  # said already: GitLab keeps the answer
        approval.save(update_fields=["evaluated_at"])
        return
    answer(approval, status, comment)  # raises: the outbox retries, nothing below is written
    with transaction.atomic():
        approval.status, approval.comment, approval.change_request, approval.reasons = status, comment, cr, codes
        approval.answered_at = at
        approval.waiting = status != A.APPROVED
        approval.save()
        reported = approval.reported_deployment
        audit.record("deployment.platform_answered", target=cr, environment=reported.environment_name[:64],
                     team=cr.team.slug if cr else "",
                     data={"platform": "gitlab", "project": approval.project_id, "deployment": approval.deployment_id,
                           "status": status, "reasons": codes, "change_request": cr.pk if cr else None,
                           "commit_sha": reported.commit_sha}, at=at)
