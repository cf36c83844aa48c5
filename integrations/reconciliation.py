"""Reconciliation (issue 16, item 5; docs/rules.md L5): every deployment the platforms
report, matched to the approved change request that covers it, or an exception.

One home for the rule: the ``deployment_reconciliation`` dataset of the SOX bundle and the
``deployment-reconciliation/`` list both ask ``rows``. It reads, never writes, and asks a fixed
number of queries per batch of reported deployments whatever their number.

A reported deployment (``ReportedDeployment``) at time *t* (when it was first reported running or
done, else when it was reported) in environment *E* is matched to a
change request of *E* that names the same thing deployed:

- the same commit: the change links that commit (``SourceLink.commit_sha``) or a commit of its
  linked pull/merge request was learnt from the repository (``LearntContributor.commit_sha``), in
  the reporting repository; a short sha (at least 7 hex) matches the full one it begins;
- or the same artifact: equal, or both pinned by ``sha256:`` and the digests equal.

Of the matching changes, the one approved at *t* (approved at or before *t*, and not rejected or
cancelled by then) counts, the latest approved first. Then the exceptions:

- ``unknown_environment``: the platform calls the environment production, no Countersign
  environment has its name;
- ``no_change_request``: no change request of the environment names what was deployed;
- ``not_approved``: one does, but none was approved at *t*;
- ``deployed_outside_countersign``: the approved change was not deployed through Countersign
  around *t* (no ``Deployment`` of it started within ``COUNTERSIGN_RECONCILIATION_WINDOW_MINUTES``
  of *t*) and Countersign did not approve this very platform deployment (GitLab's deployment
  approval, ``integrations.gitlab``);
- ``outside_planned_window``: the change has a planned window and *t* is outside it.

A deployment whose latest status says it never ran (``blocked``, ``canceled``, ``skipped``) is
listed with result ``did_not_run`` and no exception.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from integrations.models import GitLabDeploymentApproval, LearntContributor, ReportedDeployment, SourceLink
from releases.models import ChangeRequest, Deployment
from releases.policy import pinned_digest
from releases.states import COVERS_DEPLOYMENT

S = ChangeRequest.State
NEVER_RAN = frozenset({"blocked", "canceled", "cancelled", "skipped"})
# States a change reaches only through an approval; cancelled and rejected end it (at closed_at).
PASSED_APPROVAL = frozenset({S.APPROVED, S.DEPLOYING, S.DEPLOYED, S.FAILED, S.ROLLED_BACK})
ENDED = frozenset({S.CANCELLED, S.REJECTED})
MIN_SHA = 7

EXCEPTIONS = ("unknown_environment", "no_change_request", "not_approved", "deployed_outside_countersign",
              "outside_planned_window")

FIELDS = (
    "pk", "source", "repository_id", "repository__full_name", "external_id", "environment_name", "environment_id",
    "environment__slug", "environment__tier", "platform_production", "commit_sha", "artifact", "status",
    "deployer_login", "url", "reported_at", "status_at", "ran_at",
)


def window() -> timedelta:
    return timedelta(minutes=settings.COUNTERSIGN_RECONCILIATION_WINDOW_MINUTES)


def production(queryset: QuerySet | None = None) -> QuerySet:
    """Reported deployments to production: a production-tier environment, or one the platform
    itself calls production (whether or not Countersign knows it)."""
    queryset = ReportedDeployment.objects.all() if queryset is None else queryset
    return queryset.filter(Q(environment__tier="production") | Q(platform_production=True))


def tuples(queryset: QuerySet) -> QuerySet:
    return queryset.order_by("reported_at", "pk").values_list(*FIELDS)


@dataclass(frozen=True)
class Change:
    pk: int
    environment_id: int
    state: str
    approved_at: datetime | None
    closed_at: datetime | None
    planned_start: datetime | None
    planned_end: datetime | None

    def approved_at_time(self, at: datetime) -> bool:
        if self.approved_at is None or self.approved_at > at:
            return False
        if self.state in ENDED:
            return self.closed_at is not None and self.closed_at > at
        return self.state in PASSED_APPROVAL


def _sha_match(reported: str, known: str) -> bool:
    if len(reported) < MIN_SHA or len(known) < MIN_SHA:
        return False
    return reported.startswith(known) or known.startswith(reported)


def _candidates(batch: list[tuple]) -> tuple[dict, dict, dict, dict]:
    """For the batch, in a fixed number of queries: (repository id -> [(sha, change id)]),
    (environment id -> [(artifact, digest, change id)]), change id -> Change, change id ->
    [(deployment id, started_at)]."""
    environments = {r[6] for r in batch if r[6] is not None}
    repositories = {r[2] for r in batch if r[2] is not None}
    shas: dict[int, list] = {}
    if repositories:
        linked = (SourceLink.objects.filter(repository_id__in=repositories, change_request__environment_id__in=environments)
                  .exclude(commit_sha="").values_list("repository_id", "commit_sha", "change_request_id"))
        learnt = (LearntContributor.objects.filter(change_request__source_links__repository_id__in=repositories,
                                                   change_request__environment_id__in=environments)
                  .exclude(commit_sha="")
                  .values_list("change_request__source_links__repository_id", "commit_sha", "change_request_id")
                  .distinct())
        for repository_id, sha, change_id in [*linked, *learnt]:
            shas.setdefault(repository_id, []).append((sha.lower(), change_id))
    artifacts = {r[11] for r in batch if r[11]}
    by_artifact = Q(artifact__in=artifacts)
    for digest in sorted({d for a in artifacts if (d := pinned_digest(a)) is not None}, key=str):
        by_artifact |= Q(artifact__endswith=f"sha256:{digest[1]}")
    artifact_changes: dict[int, list] = {}
    if artifacts and environments:
        for pk, environment_id, artifact in ChangeRequest.objects.filter(
                by_artifact, environment_id__in=environments).values_list("pk", "environment_id", "artifact"):
            pinned = pinned_digest(artifact)
            artifact_changes.setdefault(environment_id, []).append((artifact, pinned[1] if pinned else None, pk))
    ids = {c for found in shas.values() for _, c in found} | {c for f in artifact_changes.values() for *_, c in f}
    changes = {row[0]: Change(*row) for row in ChangeRequest.objects.filter(pk__in=ids).values_list(
        "pk", "environment_id", "state", "approved_at", "closed_at", "planned_start", "planned_end")}
    deployed: dict[int, list] = {}
    for change_id, pk, started_at in Deployment.objects.filter(change_request_id__in=ids).values_list(
            "change_request_id", "pk", "started_at"):
        deployed.setdefault(change_id, []).append((pk, started_at))
    return shas, artifact_changes, changes, deployed


def _approved_by_countersign(batch: list[tuple]) -> dict[int, tuple[int, datetime]]:
    """Reported deployment id -> (change id, when) of Countersign's approval on the platform."""
    approved = GitLabDeploymentApproval.objects.filter(
        reported_deployment_id__in=[r[0] for r in batch], status=GitLabDeploymentApproval.Status.APPROVED)
    return {rd: (change_id, at) for rd, change_id, at in approved.values_list(
        "reported_deployment_id", "change_request_id", "answered_at")}


def _matching(shas, artifact_changes, changes, repository_id, environment_id, commit_sha, artifact) -> set[int]:
    """The ids of the changes of the environment that name the commit or the artifact deployed."""
    if environment_id is None:
        return set()
    matching = {c for known, c in shas.get(repository_id, ()) if commit_sha and _sha_match(commit_sha, known)
                and changes[c].environment_id == environment_id}
    digest = pinned_digest(artifact) if artifact else None
    matching |= {c for their_artifact, their_digest, c in artifact_changes.get(environment_id, ())
                 if artifact and (their_artifact == artifact or (digest and their_digest == digest[1]))}
    return matching


def change_for(reported: ReportedDeployment) -> ChangeRequest | None:
    """The change request a deployment waiting now is for (GitLab's deployment approvals): of the
    changes that name what it deploys, one approved now (the latest approved), else the latest."""
    row = tuples(ReportedDeployment.objects.filter(pk=reported.pk)).get()
    shas, artifact_changes, changes, _ = _candidates([row])
    matching = _matching(shas, artifact_changes, changes, row[2], row[6], row[10], row[11])
    if not matching:
        return None
    approved = [c for c in matching if changes[c].state in COVERS_DEPLOYMENT]
    return ChangeRequest.objects.get(pk=max(approved or matching))


def rows(batch: list[tuple], *, iso=lambda v: v.isoformat() if v is not None else None) -> list[dict]:
    shas, artifact_changes, changes, deployed = _candidates(batch)
    platform_approved = _approved_by_countersign(batch)
    span = window()
    out = []
    for (pk, source, repository_id, repository, external_id, environment_name, environment_id, slug, tier,
         _platform_production, commit_sha, artifact, status, deployer, url, reported_at, status_at, ran_at) in batch:
        at = ran_at or reported_at  # when it ran; a deployment blocked for approval ran only once approved
        matching = _matching(shas, artifact_changes, changes, repository_id, environment_id, commit_sha, artifact)
        approved = sorted((changes[c] for c in matching if changes[c].approved_at_time(at)),
                          key=lambda c: (c.approved_at, c.pk), reverse=True)
        change = approved[0] if approved else (changes[max(matching)] if matching else None)
        through = ""
        findings = []
        if environment_id is None:
            findings.append("unknown_environment")
        elif change is None:
            findings.append("no_change_request")
        elif not approved:
            findings.append("not_approved")
        else:
            near = [d for d, started in deployed.get(change.pk, ()) if abs(started - at) <= span]
            answered = platform_approved.get(pk)
            if near:
                through = f"deployment #{near[0]}"
            elif answered and answered[0] == change.pk:
                through = "platform approval"
            else:
                findings.append("deployed_outside_countersign")
            if change.planned_start and change.planned_end and not (
                    change.planned_start <= at <= change.planned_end):
                findings.append("outside_planned_window")
        ran = status not in NEVER_RAN
        out.append({
            "reported_deployment_id": pk,
            "source": source,
            "repository": repository or "",
            "external_id": external_id,
            "platform_environment": environment_name,
            "environment": slug or "",
            "environment_tier": tier or "",
            "commit_sha": commit_sha,
            "artifact": artifact,
            "status": status,
            "deployer": deployer,
            "url": url,
            "reported_at": iso(reported_at),
            "status_at": iso(status_at),
            "ran_at": iso(ran_at),
            "change_id": f"CR-{change.pk}" if change else "",
            "change_state": change.state if change else "",
            "change_approved_at": iso(change.approved_at) if change else None,
            "countersigned_by": through,
            "result": ("matched" if not findings else "exception") if ran else "did_not_run",
            "findings": findings if ran else [],
        })
    return out


COLUMNS = (
    ("reported_deployment_id", "Countersign's number for the reported deployment."),
    ("source", "github, gitlab (their deployment events) or report (deployment-reports/)."),
    ("repository", "The linked repository that reported it (empty for deployment-reports/)."),
    ("external_id", "The platform's deployment id."),
    ("platform_environment", "The environment as the platform names it."),
    ("environment", "The Countersign environment of that name (empty: none)."),
    ("environment_tier", "Its tier at export time."),
    ("commit_sha", "The commit the platform deployed."),
    ("artifact", "The artifact reported (deployment-reports/, or the GitHub deployment's payload.artifact)."),
    ("status", "The platform's latest status (report: reported)."),
    ("deployer", "Who the platform says deployed (login), or the reporter."),
    ("url", "The platform's deployment, job or run; for a report, its source."),
    ("reported_at", "When the platform says the deployment was created (this places the row in the period)."),
    ("status_at", "When its latest status was reported."),
    ("ran_at", "When it was first reported running or done: the time it is judged at (empty: reported_at)."),
    ("change_id", "The matched change request (the approved one, else the latest that names what was deployed)."),
    ("change_state", "Its state at export time."),
    ("change_approved_at", "When it was approved."),
    ("countersigned_by", "deployment #<id>: deployed through Countersign within the window; platform approval: "
                         "Countersign approved this platform deployment itself."),
    ("result", "matched, exception, or did_not_run (the platform's latest status says it never ran)."),
    ("findings", "unknown_environment, no_change_request, not_approved, deployed_outside_countersign, "
                 "outside_planned_window (docs/rules.md L5)."),
)
