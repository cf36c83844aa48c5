"""Read queries for releases: visibility (RULES.md V1), the policy context, the dashboard."""
from collections import defaultdict
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit import context
from audit.models import AuditEvent
from core.memo import per_request
from core.shapes import Shape, any_of
from governance import duties
from governance.models import Membership, RoleAssignment
from releases import states
from releases.models import (
    Approval,
    ApprovalPolicy,
    ChangeRequest,
    Deployment,
    FreezeWindow,
    RevisionContributor,
    StandardChangeTemplate,
)
from releases import decisions, reads
from releases.policy import APPROVE_DUTIES, Decision, PolicyContext, evaluate



def _per_request(user, name: str, at, compute, *, reuse: bool = True):
    """``core.memo.per_request`` on the user object for the instant ``at``. A portal page asks the
    same question once per list it shows, all at the same ``at``, and ``request.user`` lives for
    one request: the dashboard then reads each fact once (issue 6). Without ``at``, or with
    ``reuse=False``: always afresh (a service deciding under a lock reads what is true now)."""
    if at is None or not reuse:
        return compute()
    return per_request(user, name, compute, at=at)


# The grants-in-force query of every gate call and every decision, compiled once (core.shapes).
_DUTIES_IN_FORCE = Shape(
    lambda user_id, at: RoleAssignment.objects.in_force(at).filter(user_id=user_id, role__duties__duty__isnull=False)
    .order_by().values_list("environment_id", "role__duties__duty").distinct(),
    user_id=int, at=datetime,
)


def _duties_in_force(user, at, *, reuse: bool = True) -> frozenset[tuple[int | None, str]]:
    """(environment id, or None for every environment; duty) for each grant of ``user`` in force at
    ``at``: one query, read once per request at ``at``, answering both whether the user sees every
    change (view_audit) and which duties they hold on a change's environment."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()

    def read():
        return frozenset(_DUTIES_IN_FORCE.rows(user_id=user.pk, at=at or timezone.now()))

    return _per_request(user, "duties_in_force", at, read, reuse=reuse)


def sees_all_changes(user, *, at=None) -> bool:
    """Superuser or view_audit holder at ``at`` (a grant of it in any environment)."""
    if user.is_superuser:
        return True
    return any(duty == duties.VIEW_AUDIT for _, duty in _duties_in_force(user, at))


def change_requests_visible_to(user, *, at=None) -> QuerySet[ChangeRequest]:
    """V1: members of the change's team and holders of view_audit; everyone else gets 404.

    A role assignment is held in a team and needs membership of it, so holders of a duty on the
    environment through the change's team are members already; a grant held in another team does
    not open this team's changes (API.md: idev sees none of payments' changes).

    The user's teams are read first and given to the database as a list, not as a subquery: with
    literal team ids PostgreSQL walks the (team, state, submitted) and (team, created) indexes in
    page order and stops at the page; behind a semi-join it read every change of the team and
    sorted them (issue 6: 20,000 pending changes in one team, 93 ms -> 0.4 ms)."""
    if not user.is_authenticated:
        return ChangeRequest.objects.none()
    # Read whether or not the user sees everything, so a request costs the same queries whatever
    # the caller's roles.
    team_ids = _per_request(
        user, "team_ids", at, lambda: list(Membership.objects.filter(user_id=user.pk).values_list("team_id", flat=True))
    )
    if sees_all_changes(user, at=at):
        return ChangeRequest.objects.all()
    return ChangeRequest.objects.filter(team_id__in=team_ids)


def deployments_visible_to(user, *, at=None) -> QuerySet[Deployment]:
    return Deployment.objects.filter(change_request__in=change_requests_visible_to(user, at=at))


def _contributor_history() -> Prefetch:
    """Who was ever listed as a contributor (ids only): what the policy bars (C2, C5, C10, K4)."""
    return Prefetch("contributor_history", queryset=RevisionContributor.objects.only("change_request_id", "user_id"))


def with_details(queryset: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    """What a change request's representation and the policy need, in a fixed number of queries."""
    people = get_user_model().objects.order_by("pk")  # one order for every reader (reads.answer too)
    return queryset.select_related("team", "environment", "author", "pir_by").prefetch_related(
        Prefetch("contributors", queryset=people),
        Prefetch("requested_reviewers", queryset=people),
        _contributor_history(),
        Prefetch("approvals", queryset=Approval.objects.select_related("reviewer")),
    )


def ever_contributor_ids(change_request: ChangeRequest) -> frozenset[int]:
    """Everyone listed as a contributor of any revision of the change (prefetched by the readers
    of this module)."""
    return frozenset(record.user_id for record in change_request.contributor_history.all())


# Everyone a decision on a change names: the actor, the author, every contributor of any revision
# and every reviewer, with their usernames; compiled once (core.shapes, issue 21).
def _participant_ids(change_request_id, actor_id) -> QuerySet:
    """The actor, the author, the contributors and the reviewers of the change (ids, maybe repeated)."""
    return any_of(
        get_user_model().objects.filter(pk=actor_id).values("pk"),
        ChangeRequest.objects.filter(pk=change_request_id).values("author_id"),
        RevisionContributor.objects.filter(change_request_id=change_request_id).values("user_id"),
        Approval.objects.filter(change_request_id=change_request_id).values("reviewer_id"),
    )


_PARTICIPANTS = Shape(lambda change_request_id, actor_id: get_user_model().objects.filter(
    pk__in=_participant_ids(change_request_id, actor_id)).values_list("pk", "username"),
    change_request_id=int, actor_id=int)
# The grants they held under an SoD exception (any state: the record says which were in force).
_EXCEPTION_GRANTS = Shape(
    lambda change_request_id, actor_id: RoleAssignment.objects.filter(
        user_id__in=_participant_ids(change_request_id, actor_id), sod_exception__isnull=False,
    ).order_by("pk").values_list("user_id", "environment_id", "sod_exception_id", "approved_at", "expires_at",
                                 "ended_at"),
    change_request_id=int, actor_id=int,
)


def decision_facts(ctx: PolicyContext) -> dict:
    """What ``releases.decisions.record`` needs beyond the policy context: the usernames of everyone
    the decision names (as the database holds the change's approvals and contributors in this
    transaction: what ``ctx`` was read from), the version of the policy in force (its latest
    recorded history row, read with the change by ``decision_read``, else a query), and the grants
    the participants held under an SoD exception."""
    cr = ctx.change_request
    usernames = dict(_PARTICIPANTS.rows(change_request_id=cr.pk, actor_id=ctx.actor.pk))
    version = None
    if ctx.policy is not None:
        latest = policy_history(ctx.policy)
        if latest is not None:
            version = {"history_id": latest[0], "saved_at": decisions.iso(latest[1])}
    grants = _EXCEPTION_GRANTS.rows(change_request_id=cr.pk, actor_id=ctx.actor.pk)
    return {"usernames": usernames, "policy_version": version, "exception_grants": grants}


def policy_history(approval_policy: ApprovalPolicy) -> tuple[int, datetime] | None:
    """The latest history row of ``approval_policy`` as ``(history_id, history_date)``, the newest
    save first: what a decision records as the policy version. Read with the change's locked row
    where ``decision_read`` read it (``reads.change(decision=True)``), else one query."""
    if hasattr(approval_policy, "latest_version"):
        return approval_policy.latest_version
    return (ApprovalPolicy.history.filter(id=approval_policy.pk).order_by("-history_date", "-history_id")
            .values_list("history_id", "history_date").first())


def templates_in_force(environment_ids, *, at: datetime) -> dict[int, tuple[StandardChangeTemplate, ...]]:
    """The standard-change templates active and unexpired at ``at``, by environment (one query)."""
    found: dict[int, list[StandardChangeTemplate]] = defaultdict(list)
    for template in StandardChangeTemplate.objects.filter(
        environment_id__in=set(environment_ids), active=True, expires_at__gt=at
    ).order_by("name", "pk"):
        found[template.environment_id].append(template)
    return {environment_id: tuple(templates) for environment_id, templates in found.items()}


def change_for_gate(user, pk: int, *, at: datetime) -> ChangeRequest | None:
    """The change request ``pk`` if ``user`` may see it (V1), with what ``releases.policy.evaluate``
    reads of it and of ``user`` at ``at``: its environment and policy, its approvals and
    contributor history, whether the user is in its team and whether a freeze window is in force on
    its environment. After the caller's grants (read once per request, also answering "sees every
    change"), two statements built once (``releases.reads``, issue 21); a third where the policy
    names a prior environment (issue 6) and a fourth for a standard change's templates.

    V1 as ``change_requests_visible_to`` states it, for one change: a member of its team, or a
    holder of view_audit."""
    if not user.is_authenticated:
        return None
    sees_all = sees_all_changes(user, at=at)
    cr = reads.change(pk, actor=user, at=at)
    if cr is None or not (sees_all or cr.actor_in_team):
        return None
    return cr


def actor_duties(user, environment, *, at: datetime, reuse: bool = False, grants=None) -> frozenset[str]:
    """The duties ``user`` holds for ``environment`` at ``at``: its own grants and the ones for
    every environment (one query; with ``reuse``, the one ``sees_all_changes`` read for this
    request at the same instant; with ``grants``, those, as ``_duties_in_force`` read them)."""
    if grants is None:
        grants = _duties_in_force(user, at, reuse=reuse)
    return frozenset(duty for env_id, duty in grants if env_id is None or env_id == environment.pk)


def decision_read(actor, pk: int, *, at: datetime, check_visible: bool = False) -> tuple[ChangeRequest, PolicyContext] | None:
    """The change ``pk`` under its row lock with the policy context of ``actor`` deciding on it at
    ``at``, or None if it does not exist, or if ``check_visible`` and ``actor`` may not see it (V1:
    the API's decision endpoints leave that check to this read and answer 404). For the services
    that decide (approve, reject, request changes, deploy, retry), after ``lock_user``.

    The change, its environment, policy and team, the actor's membership of the team and on-call
    duty, whether a freeze is in force, the policy's version and the new-IP check's facts (the
    request's address) in one statement, its approvals and contributor
    history in a second (``releases.reads``), the actor's grants in a third: they answer both V1
    (view_audit) and the actor's duties."""
    cr = reads.change(pk, actor=actor, at=at, lock=True, with_team=True, decision=True, ip=context.current().ip)
    if cr is None:
        return None
    grants = _duties_in_force(actor, at, reuse=False)
    sees_all = actor.is_superuser or any(duty == duties.VIEW_AUDIT for _, duty in grants)
    if check_visible and not (sees_all or cr.actor_in_team):
        return None
    return cr, policy_context(cr, actor, at=at, grants=grants)


def policy_context(
    change_request: ChangeRequest, actor, *, at: datetime | None = None, reuse: bool = False, grants=None
) -> PolicyContext:
    """Load everything ``releases.policy.evaluate`` needs for one change and one actor.

    The change request comes from ``with_details`` (services, pages) or ``change_for_gate``, whose
    annotations answer the actor's questions in the change's own query; the count of queries does
    not grow with approvals, grants or other requests. ``reuse``: the actor's grants as already
    read for this request at ``at`` (the visibility check read them), for a read-only answer such
    as the gate; services read them afresh under their lock."""
    at = at or timezone.now()
    cr = change_request
    environment = cr.environment
    policy = getattr(environment, "approval_policy", None)
    gate_read = hasattr(cr, "actor_in_team")  # change_for_gate's facts, for this actor at ``at``
    prior_slug, prior_ok = None, True
    if policy is not None and policy.require_prior_environment_id:
        prior_slug = policy.require_prior_environment.slug
        prior_ok = Deployment.objects.filter(
            environment_id=policy.require_prior_environment_id,
            artifact=cr.artifact,
            state__in=states.PRIOR_DEPLOYMENT,
        ).exists()
    freezes = ()
    if not gate_read or cr.in_freeze:  # the gate reads the windows only when one is in force
        freezes = tuple(
            FreezeWindow.objects.filter(environments=environment, starts_at__lte=at, ends_at__gt=at).order_by("starts_at")
        )
    if gate_read:
        is_member = cr.actor_in_team
    else:
        is_member = Membership.objects.filter(user_id=actor.pk, team_id=cr.team_id).exists()
    templates = ()
    if cr.change_type == ChangeRequest.ChangeType.STANDARD:
        templates = templates_in_force([cr.environment_id], at=at).get(cr.environment_id, ())
    return PolicyContext(
        change_request=cr,
        policy=policy,
        contributor_ids=ever_contributor_ids(cr),
        approvals=tuple(cr.approvals.all()),
        actor=actor,
        actor_duties=actor_duties(actor, environment, at=at, reuse=reuse, grants=grants),
        actor_is_team_member=is_member,
        active_freezes=freezes,
        prior_environment_slug=prior_slug,
        prior_environment_deployed=prior_ok,
        standard_templates=templates,
    )


def change_request_for_decision(pk: int, *, lock: bool = False, details: bool = True) -> ChangeRequest:
    """A change request with everything the policy needs. ``lock`` takes the row lock a transition
    needs in the same statement (on PostgreSQL; SQLite's write transaction serialises already).
    ``details=False``: only what the policy and the audit event read (team, environment, policy,
    the ids of everyone ever listed as a contributor, approvals without their reviewers), for a
    service that answers with another read or another object: the statements of
    ``releases.reads``, built once (issue 21)."""
    if not details:
        cr = reads.change(pk, lock=lock, with_team=True)
        if cr is None:
            raise ChangeRequest.DoesNotExist(f"No change request {pk}.")
        return cr
    queryset = with_details(ChangeRequest.objects.filter(pk=pk)).select_related(
        "environment__approval_policy__require_prior_environment")
    if lock:
        # Locks the change's own row only (its team, environment and policy are read, not locked);
        # the prefetches run after the lock is held, so they see every decision committed before.
        queryset = queryset.select_for_update(of=("self",))
    return queryset.get()


# --- The portal's dashboard and change page --------------------------------------------------------
# Appended below the functions the services share; each answers one portal question in a fixed
# number of queries, however many change requests, approvals or grants there are.

# Events that say more about a person than about the change: only view_audit holders see them (V3).
SENSITIVE_HISTORY_ACTIONS = ("change_request.signoff_failed",)


def _holds_for_change_environment(user, duty_codes, at: datetime) -> Exists:
    """EXISTS a grant in force of one of ``duty_codes`` for the outer change's environment (or all)."""
    return Exists(
        RoleAssignment.objects.in_force(at).filter(
            Q(environment_id=OuterRef("environment_id")) | Q(environment__isnull=True),
            user_id=user.pk,
            role__duties__duty__in=list(duty_codes),
        )
    )


def _contributed_by(user) -> Exists:
    """The outer change listed ``user`` as a contributor in any revision."""
    return Exists(RevisionContributor.objects.filter(change_request_id=OuterRef("pk"), user_id=user.pk))


def change_requests_awaiting_review(user, *, at: datetime | None = None) -> QuerySet[ChangeRequest]:
    """Pending changes ``user`` may decide now (C2): approve or security_approve for the
    environment, neither author nor contributor, and no decision of theirs on this revision yet.
    Oldest submission first; ``approvals_so_far`` counts the approvals the revision already has."""
    at = at or timezone.now()
    if not user.is_authenticated or not user.is_active:
        return ChangeRequest.objects.none()
    decided = Approval.objects.filter(
        change_request_id=OuterRef("pk"), reviewer_id=user.pk, revision=OuterRef("revision"), stale=False
    )
    # A correlated count, not a GROUP BY: the database can then walk pending changes in
    # submission order (index cr_state_submitted) and stop at the page, instead of aggregating
    # every pending change first (issue 6: 20,000 pending took 300 ms).
    current_approvals = (
        Approval.objects.filter(
            change_request_id=OuterRef("pk"), revision=OuterRef("revision"), stale=False,
            decision=Approval.Decision.APPROVED,
        )
        .order_by()
        .values("change_request_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        change_requests_visible_to(user, at=at)
        .filter(_holds_for_change_environment(user, APPROVE_DUTIES, at), state__in=states.starts("approve"))
        .exclude(author_id=user.pk)
        .exclude(_contributed_by(user))
        .exclude(Exists(decided))
        .select_related("team", "environment", "author")
        .annotate(approvals_so_far=Coalesce(Subquery(current_approvals), 0))
        .order_by("submitted_at", "pk")
    )


def policy_contexts(change_requests, actor, *, at: datetime | None = None) -> dict[int, PolicyContext]:
    """``policy_context`` for many change requests and one actor, keyed by change request id, in a
    fixed number of queries. The change requests must come from ``with_details`` with
    ``environment__approval_policy__require_prior_environment`` selected."""
    at = at or timezone.now()
    crs = list(change_requests)
    if not crs:
        return {}
    environment_ids = {cr.environment_id for cr in crs}
    duties_by_environment: dict[int | None, set[str]] = defaultdict(set)
    for environment_id, duty in _duties_in_force(actor, at):
        duties_by_environment[environment_id].add(duty)
    member_of = set(
        Membership.objects.filter(user_id=actor.pk, team_id__in={cr.team_id for cr in crs}).values_list(
            "team_id", flat=True
        )
    )
    freezes_by_environment: dict[int, list[FreezeWindow]] = defaultdict(list)
    links = (
        FreezeWindow.environments.through.objects.filter(
            environment_id__in=environment_ids, freezewindow__starts_at__lte=at, freezewindow__ends_at__gt=at
        )
        .select_related("freezewindow")
        .order_by("freezewindow__starts_at", "freezewindow_id")
    )
    for link in links:
        freezes_by_environment[link.environment_id].append(link.freezewindow)
    standard_environments = {cr.environment_id for cr in crs if cr.change_type == ChangeRequest.ChangeType.STANDARD}
    templates = templates_in_force(standard_environments, at=at) if standard_environments else {}
    policies = {cr.pk: getattr(cr.environment, "approval_policy", None) for cr in crs}
    needs_prior = {
        cr.pk: policies[cr.pk].require_prior_environment_id
        for cr in crs
        if policies[cr.pk] is not None and policies[cr.pk].require_prior_environment_id
    }
    deployed = set()
    if needs_prior:
        deployed = set(
            Deployment.objects.filter(
                environment_id__in=set(needs_prior.values()),
                artifact__in={cr.artifact for cr in crs if cr.pk in needs_prior},
                state__in=states.PRIOR_DEPLOYMENT,
            )
            .values_list("environment_id", "artifact")
            .distinct()
        )
    contexts = {}
    for cr in crs:
        prior_id = needs_prior.get(cr.pk)
        contexts[cr.pk] = PolicyContext(
            change_request=cr,
            policy=policies[cr.pk],
            contributor_ids=ever_contributor_ids(cr),
            approvals=tuple(cr.approvals.all()),
            actor=actor,
            actor_duties=frozenset(duties_by_environment[cr.environment_id] | duties_by_environment[None]),
            actor_is_team_member=cr.team_id in member_of,
            active_freezes=tuple(freezes_by_environment[cr.environment_id]),
            prior_environment_slug=policies[cr.pk].require_prior_environment.slug if prior_id else None,
            prior_environment_deployed=(prior_id, cr.artifact) in deployed if prior_id else True,
            standard_templates=templates.get(cr.environment_id, ()),
        )
    return contexts


def deploy_queue(user, *, at: datetime | None = None, limit: int = 100) -> list[tuple[ChangeRequest, Decision]]:
    """Approved changes ``user`` could deploy, each with the policy's deploy decision for them.

    SQL keeps the candidates the policy would refuse in any case (C5: deploy held for the
    environment, neither author, contributor nor approver); the policy then decides each of them,
    so a freeze, the deploy window or a missing prior deployment shows as a refusal with reasons.
    Oldest approval first."""
    at = at or timezone.now()
    if not user.is_authenticated or not user.is_active:
        return []
    approved_by_user = Approval.objects.filter(
        change_request_id=OuterRef("pk"), reviewer_id=user.pk, decision=Approval.Decision.APPROVED
    )
    candidates = list(
        with_details(
            change_requests_visible_to(user, at=at)
            .filter(_holds_for_change_environment(user, [duties.DEPLOY], at), state__in=states.starts("deploy"))
            .exclude(author_id=user.pk)
            .exclude(_contributed_by(user))
            .exclude(Exists(approved_by_user))
        )
        .select_related("environment__approval_policy__require_prior_environment")
        .order_by("approved_at", "pk")[:limit]
    )
    contexts = policy_contexts(candidates, user, at=at)
    return [(cr, evaluate(contexts[cr.pk], "deploy", at)) for cr in candidates]


def change_requests_opened_by(user, *, at: datetime | None = None) -> QuerySet[ChangeRequest]:
    """The user's own requests that are still on their way: draft, pending, approved or deploying."""
    return (
        change_requests_visible_to(user, at=at)
        .filter(author_id=user.pk, state__in=states.OPEN)
        .select_related("team", "environment")
        .order_by("-created_at", "-pk")
    )


def change_requests_awaiting_pir(user, *, at: datetime | None = None) -> QuerySet[ChangeRequest]:
    """Deployed emergency changes whose post-implementation review ``user`` may write (C10):
    approve-duty holder for the environment, neither author, contributor nor deployer. Earliest
    due first."""
    at = at or timezone.now()
    if not user.is_authenticated or not user.is_active:
        return ChangeRequest.objects.none()
    return (
        change_requests_visible_to(user, at=at)
        .filter(
            _holds_for_change_environment(user, APPROVE_DUTIES, at),
            change_type=ChangeRequest.ChangeType.EMERGENCY,
            state__in=states.starts("review_pir"),
            pir_due_at__isnull=False,
            pir_at__isnull=True,
        )
        .exclude(author_id=user.pk)
        .exclude(_contributed_by(user))
        .exclude(Exists(Deployment.objects.filter(change_request_id=OuterRef("pk"), deployer_id=user.pk)))
        .select_related("team", "environment", "author")
        .order_by("pir_due_at", "pk")
    )


def recent_change_requests(user, *, at: datetime | None = None) -> QuerySet[ChangeRequest]:
    """Everything the user may see, newest first."""
    return change_requests_visible_to(user, at=at).select_related("team", "environment", "author")


def grants_in_force(user, *, at: datetime | None = None) -> QuerySet[RoleAssignment]:
    """The user's own role assignments in force, with their duties (two queries)."""
    at = at or timezone.now()
    return (
        RoleAssignment.objects.in_force(at).filter(user_id=user.pk)
        .select_related("role", "team", "environment")
        .prefetch_related("role__duties")
        .order_by("role__name", "environment__order", "team__name")
    )


def visible_change_request(user, pk: int, *, at: datetime | None = None) -> ChangeRequest:
    """One change request with everything its page and the policy need; ``DoesNotExist`` when it
    does not exist or ``user`` may not see it (V1: forbidden looks like missing)."""
    return (
        with_details(change_requests_visible_to(user, at=at))
        .select_related("environment__approval_policy__require_prior_environment")
        .get(pk=pk)
    )


def change_request_deployments(change_request: ChangeRequest) -> QuerySet[Deployment]:
    return change_request.deployments.select_related("deployer").order_by("started_at", "pk")


def change_request_history(change_request: ChangeRequest, user, *, at: datetime | None = None) -> QuerySet:
    """The audit events about one change, oldest first. Whoever may see the change sees what
    happened to it; events about a person (a failed sign-off) only view_audit holders see."""
    events = AuditEvent.objects.filter(
        target_type=ChangeRequest._meta.label_lower, target_id=str(change_request.pk)
    ).order_by("sequence")
    if not sees_all_changes(user, at=at):
        events = events.exclude(action__in=SENSITIVE_HISTORY_ACTIONS)
    return events
