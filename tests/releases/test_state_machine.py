"""Random stories: personas take random actions in random order while roles are granted and
revoked and time passes, and after every step the separation of duties still holds:

- no deployment was started by the change's author, a contributor or an approver;
- no change was deployed with fewer valid approvals than its policy asked at that moment (checked
  against the approval rows themselves, not through the engine);
- every state change of a change request wrote exactly one audit event naming it, and a refused
  action wrote nothing; the events of a change chain up to its current state, in step with its
  simple-history rows.
"""
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from audit.chain import verify
from audit.models import AuditEvent
from governance import duties
from governance import services as governance
from core.errors import Denied, InvalidState
from governance.models import Environment, Role, RoleAssignment
from governance.selectors import has_duty
from releases import services
from releases.models import Approval, ChangeRequest, Deployment
from tests.factories import set_control, UserFactory, bootstrap_grant

REFUSALS = (Denied, InvalidState, ValidationError)
ARTIFACTS = [f"registry.example.com/payments-api@sha256:{n:064x}" for n in (10, 11, 20)]
# Who tries what: mostly the people whose job it is, sometimes anyone at all.
NATURAL = "the natural actor"  # the change's author for submit and edits, the deployer for outcomes
AUTHORS = ["dev", "dev", "dev2", "dev2", "idev", "ops"]
EVERYONE = ["dev", "dev2", "rev", "rev2", "sec", "ops", "ops2", "mgr", "idev", "admin"]
AUTHOR_OR_ANYONE = [NATURAL] * 10 + EVERYONE
DEPLOYER_OR_ANYONE = [NATURAL] * 10 + EVERYONE
REVIEWERS = ["rev", "rev2", "sec", "ops"] * 3 + EVERYONE
OPERATORS = ["ops", "ops2"] * 3 + ["rev2", "dev"] * 2 + EVERYONE
MOSTLY = st.sampled_from([True, True, True, False])
# (verb, user, role, environment): mgr grants, sec approves what is privileged. Some grants are
# refused as conflicts (approve × deploy in production); some open new ways to break the rules
# (an approver or author who may also deploy in staging); revocations take duties away mid-story.
ROLE_CHANGES = [
    ("grant", "ops", "reviewer", "staging"),
    ("grant", "rev2", "operations", "staging"),
    ("grant", "dev", "operations", "staging"),
    ("grant", "dev2", "operations", "staging"),
    ("grant", "dev2", "reviewer", "staging"),
    ("grant", "ops2", "reviewer", "staging"),
    ("grant", "dev2", "reviewer", "production"),
    ("grant", "rev", "operations", "production"),
    ("revoke", "rev", "reviewer", "production"),
    ("revoke", "rev2", "reviewer", "staging"),
    ("revoke", "ops", "operations", "staging"),
    ("revoke", "ops2", "operations", "production"),
    ("revoke", "ops", "reviewer", "staging"),
    ("revoke", "dev", "operations", "staging"),
    ("revoke", "rev2", "operations", "staging"),
]


def approvals_sufficed(deployment: Deployment) -> bool:
    """What the environment's policy asked when the deployment started, recomputed from the rows."""
    cr = deployment.change_request
    policy = cr.environment.approval_policy
    at = deployment.started_at
    ttl = timedelta(hours=policy.approval_ttl_hours) if policy.approval_ttl_hours else None
    counted = [
        a for a in cr.approvals.all()
        if a.revision == deployment.revision and a.decision == Approval.Decision.APPROVED and a.created_at <= at
        and (ttl is None or a.created_at > at - ttl)
    ]
    if any(a.via == Approval.Via.AUTO for a in counted):
        return policy.allow_auto_approve_standard and (cr.change_type, cr.risk) == ("standard", "low")
    required = policy.emergency_min_approvals if cr.change_type == "emergency" else policy.min_approvals
    high_risk = policy.high_risk_security_approvals if cr.risk == "high" else 0
    required_security = max(policy.min_security_approvals, high_risk)
    team_reviewer = not policy.team_reviewer_required or required == 0 or any(a.is_team_member for a in counted)
    return (
        len({a.reviewer_id for a in counted}) >= required
        and sum(a.is_security for a in counted) >= required_security
        and team_reviewer
    )


def collapse(states):
    out = []
    for state in states:
        if not out or out[-1] != state:
            out.append(state)
    return out


def is_subsequence(short, long) -> bool:
    remaining = iter(long)
    return all(any(item == candidate for candidate in remaining) for item in short)


def releases_machine(demo, start, **extra_people):
    people = {name: extra_people.get(name) or getattr(demo, name) for name in EVERYONE}
    environments = {e.slug: e for e in Environment.objects.all()}
    roles = {r.slug: r for r in Role.objects.all()}

    class ReleaseStories(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            # Each example runs in a savepoint rolled back at teardown: examples do not leak.
            self.savepoint = transaction.atomic()
            self.savepoint.__enter__()
            self.now = start
            self.changes: list[int] = []
            self.deployments: list[int] = []

        def teardown(self):
            try:
                assert verify()[1] is None
            finally:
                transaction.set_rollback(True)
                self.savepoint.__exit__(None, None, None)

        # --- bookkeeping around every release action ------------------------------------------

        def act(self, cr_pk, call):
            """Run ``call``; a refusal writes nothing, a success exactly one event about the change
            naming the move (and maybe security alerts, RULES.md E2: the machine acts at any hour
            and approves seconds after submission)."""
            before_state = ChangeRequest.objects.values_list("state", flat=True).get(pk=cr_pk)
            before_events = AuditEvent.objects.count()
            before_history = ChangeRequest.history.filter(id=cr_pk).count()
            try:
                result = call()
            except REFUSALS:
                assert AuditEvent.objects.count() == before_events, "a refused action wrote an audit event"
                assert ChangeRequest.objects.values_list("state", flat=True).get(pk=cr_pk) == before_state
                assert ChangeRequest.history.filter(id=cr_pk).count() == before_history
                return None
            after_state = ChangeRequest.objects.values_list("state", flat=True).get(pk=cr_pk)
            written = list(AuditEvent.objects.order_by("sequence")[before_events:])
            about_it = [e for e in written if (e.target_type, e.target_id) == ("releases.changerequest", str(cr_pk))]
            assert {e.action for e in written if e not in about_it} <= {"alert.raised"}
            [move] = about_it
            assert (move.data["from_state"], move.data["to_state"]) == (before_state, after_state)
            self.check_trail(cr_pk)
            return result

        def check_trail(self, cr_pk):
            cr = ChangeRequest.objects.get(pk=cr_pk)
            events = AuditEvent.objects.filter(target_type="releases.changerequest", target_id=str(cr_pk))
            moves = [(e.data["from_state"], e.data["to_state"]) for e in events.order_by("sequence")]
            assert moves[0] == ("", "draft")
            assert all(earlier[1] == later[0] for earlier, later in zip(moves, moves[1:], strict=False)), moves
            assert moves[-1][1] == cr.state
            history = collapse(cr.history.order_by("history_date", "history_id").values_list("state", flat=True))
            told = collapse(["draft"] + [to for _, to in moves])
            assert history[-1] == cr.state
            assert is_subsequence(told, history), (told, history)

        def pick(self, pks, index):
            return pks[index % len(pks)]

        def target(self, index, fitting, states):
            """A change of the machine's: with ``fitting``, one in a state the action may start
            from (when there is one), so stories get deep; otherwise any, so wrong states are tried too."""
            if fitting:
                candidates = list(
                    ChangeRequest.objects.filter(pk__in=self.changes, state__in=states).order_by("pk").values_list(
                        "pk", flat=True
                    )
                )
                if candidates:
                    return self.pick(candidates, index)
            return self.pick(self.changes, index)

        def person(self, name, *, natural):
            return people[natural if name == NATURAL else name]

        # --- the rules ------------------------------------------------------------------------------

        @initialize(
            artifact=st.sampled_from(ARTIFACTS),
            risk=st.sampled_from(["low", "high"]),
            contributor=st.sampled_from(["ops", "ops2", "rev2", "dev2"]),
            staging_reviewer=st.sampled_from(["rev", "rev2", "ops"]),
        )
        def approved_changes_waiting(self, artifact, risk, contributor, staging_reviewer):
            """Every story starts with an artifact already shipped to staging, another change for it
            approved for staging (with a contributor and an approver who may well hold deploy
            there) and one approved for production, so that deploying (too late, by the wrong
            person) is tried from the first steps."""
            if staging_reviewer == contributor:
                staging_reviewer = "rev"
            shipped = services.change_request_create(
                actor=demo.dev2, team=demo.payments, environment=environments["staging"], title="Shipped",
                artifact=artifact, at=self.now,
            )
            shipped = services.change_request_submit(actor=demo.dev2, change_request=shipped, at=self.now)
            shipped = services.change_request_approve(actor=demo.rev, change_request=shipped, at=self.now)
            deployment = services.deployment_start(actor=people["ops2"], change_request=shipped, at=self.now)
            services.deployment_finish(actor=people["ops2"], deployment=deployment, outcome="succeeded", at=self.now)
            for author, environment, contributors, reviewers in (
                (demo.dev, "staging", [contributor], [(people[staging_reviewer], "api")]),
                (demo.dev2, "production", [], [(demo.rev, "portal"), (demo.rev2, "portal"), (demo.sec, "portal")]),
            ):
                cr = services.change_request_create(
                    actor=author, team=demo.payments, environment=environments[environment], title="Prepared",
                    artifact=artifact, risk=risk, contributors=contributors, at=self.now,
                )
                cr = services.change_request_submit(actor=author, change_request=cr, at=self.now)
                for reviewer, via in reviewers:
                    if cr.state == "pending":
                        cr = services.change_request_approve(actor=reviewer, change_request=cr, via=via, at=self.now)
                assert cr.state == "approved"
                self.changes.append(cr.pk)

        @rule(
            author=st.sampled_from(AUTHORS),
            environment=st.sampled_from(["staging", "staging", "production", "development"]),
            change_type=st.sampled_from(["normal", "normal", "standard", "emergency"]),
            risk=st.sampled_from(["low", "medium", "high"]),
            artifact=st.sampled_from(ARTIFACTS),
            contributors=st.lists(st.sampled_from(["ops", "ops2", "rev2", "rev"] + EVERYONE), max_size=2),
            submit=st.booleans(),
        )
        def create(self, author, environment, change_type, risk, artifact, contributors, submit):
            """Open a draft, and half the time submit it straight away (as CI does)."""
            before_events = AuditEvent.objects.count()
            try:
                cr = services.change_request_create(
                    actor=people[author], team=demo.payments, environment=environments[environment],
                    title="Random story", artifact=artifact, change_type=change_type, risk=risk,
                    contributors=contributors, at=self.now,
                )
            except REFUSALS:
                assert AuditEvent.objects.count() == before_events
                return
            assert AuditEvent.objects.count() == before_events + 1
            self.changes.append(cr.pk)
            self.check_trail(cr.pk)
            if submit:
                self.act(cr.pk, lambda: services.change_request_submit(
                    actor=people[author], change_request=cr, at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE))
        def submit(self, index, fitting, actor):
            pk = self.target(index, fitting, ["draft"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, lambda: services.change_request_submit(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk), at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE),
              artifact=st.sampled_from(ARTIFACTS))
        def new_artifact(self, index, fitting, actor, artifact):
            pk = self.target(index, fitting, ["pending", "approved"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, lambda: services.change_request_update(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk),
                changes={"artifact": artifact}, at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(REVIEWERS),
              decision=st.sampled_from(["approve", "approve", "approve", "reject"]),
              via=st.sampled_from(["portal", "portal", "api"]))
        def decide(self, index, fitting, actor, decision, via):
            pk = self.target(index, fitting, ["pending"])
            service = services.change_request_approve if decision == "approve" else services.change_request_reject
            self.act(pk, lambda: service(
                actor=people[actor], change_request=ChangeRequest(pk=pk), via=via, comment="Looked at it.",
                at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(OPERATORS))
        def deploy(self, index, fitting, actor):
            pk = self.target(index, fitting, ["approved"])
            deployment = self.act(pk, lambda: services.deployment_start(
                actor=people[actor], change_request=ChangeRequest(pk=pk), at=self.now))
            if deployment is not None:
                assert has_duty(people[actor], duties.DEPLOY, environment=deployment.environment, at=self.now)
                self.deployments.append(deployment.pk)

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), who=st.integers(min_value=0, max_value=7))
        def proceed(self, index, who):
            """Take an open change one step along its happy path: the author submits, someone signs
            off in the portal, someone deploys, the deployer reports success. "Someone" is a
            reviewer or an operator as often as one of the people the rules keep out: the author,
            a contributor, an approver (rev2, ops and dev also deploy in staging). The services
            decide; the invariants watch what they let through."""
            pk = self.target(index, True, ["draft", "pending", "approved", "deploying"])
            cr = ChangeRequest.objects.select_related("author").prefetch_related(
                "contributors", "approvals__reviewer"
            ).get(pk=pk)
            approvers = [a.reviewer for a in cr.approvals.all() if a.reviewer]
            involved = [cr.author, *cr.contributors.all(), *approvers]
            if cr.state == "draft":
                self.act(cr.pk, lambda: services.change_request_submit(
                    actor=cr.author, change_request=cr, at=self.now))
            elif cr.state == "pending":
                candidates = [people[n] for n in ("rev", "rev2", "sec", "ops")] + involved
                reviewer = candidates[who % len(candidates)]
                self.act(cr.pk, lambda: services.change_request_approve(
                    actor=reviewer, change_request=cr, via="portal", at=self.now))
            elif cr.state == "approved":
                candidates = [people[n] for n in ("ops2", "ops", "rev2", "dev")] + involved
                operator = candidates[who % len(candidates)]
                deployment = self.act(cr.pk, lambda: services.deployment_start(
                    actor=operator, change_request=cr, at=self.now))
                if deployment is not None:
                    self.deployments.append(deployment.pk)
            elif cr.state == "deploying":
                deployment = cr.deployments.select_related("deployer").get(state="running")
                self.act(cr.pk, lambda: services.deployment_finish(
                    actor=deployment.deployer, deployment=deployment, outcome="succeeded", at=self.now))

        @precondition(lambda self: self.deployments)
        @rule(index=st.integers(min_value=0), actor=st.sampled_from(DEPLOYER_OR_ANYONE),
              outcome=st.sampled_from(["succeeded", "succeeded", "failed", "rolled_back"]))
        def report(self, index, actor, outcome):
            """Report how a deployment went (the deployer, mostly), or roll a successful one back."""
            deployment = Deployment.objects.select_related("deployer").get(pk=self.pick(self.deployments, index))
            person = self.person(actor, natural=deployment.deployer.username)
            if outcome == "rolled_back":
                call = lambda: services.deployment_rollback(  # noqa: E731
                    actor=person, deployment=deployment, reason="Errors rose.", at=self.now)
            else:
                call = lambda: services.deployment_finish(  # noqa: E731
                    actor=person, deployment=deployment, outcome=outcome, at=self.now)
            self.act(deployment.change_request_id, call)

        @rule(change=st.sampled_from(ROLE_CHANGES))
        def roles_change(self, change):
            """mgr grants (sec approving what is privileged) or revokes one of a few roles."""
            verb, username, role, environment = change
            user, environment = people[username], environments[environment]
            try:
                if verb == "grant":
                    assignment = governance.role_grant(
                        actor=demo.mgr, user=user, role=roles[role], team=demo.payments, environment=environment,
                        justification="Random story cover", expires_at=self.now + timedelta(days=30), at=self.now,
                    )
                    if assignment.status == RoleAssignment.Status.PENDING:
                        governance.role_assignment_approve(actor=demo.sec, assignment=assignment, at=self.now)
                else:
                    for assignment in RoleAssignment.objects.filter(
                        user=user, role__slug=role, environment=environment, status=RoleAssignment.Status.ACTIVE
                    ):
                        governance.role_assignment_revoke(actor=demo.mgr, assignment=assignment, reason="Rota",
                                                          at=self.now)
            except REFUSALS:
                pass

        # Hours, a day, and just past production's (72 h) and staging's (168 h) approval lifetimes.
        @rule(hours=st.sampled_from([1, 24, 73, 169]), freeze_hours=st.sampled_from([0, 0, 0, 0, 0, 12, 48]))
        def time_passes(self, hours, freeze_hours):
            """Hours go by (approvals expire); now and then sec freezes production from that moment."""
            self.now += timedelta(hours=hours)
            if freeze_hours:
                set_control(by=demo.sec, control="releases.freezewindow", name="Random freeze", starts_at=self.now, ends_at=self.now + timedelta(hours=freeze_hours), environments=[environments["production"]])

        # --- what must hold after every step ------------------------------------------------------

        @invariant()
        def nobody_deployed_their_own_or_approved_change(self):
            for deployment in Deployment.objects.filter(change_request_id__in=self.changes).select_related(
                "change_request"
            ).prefetch_related("change_request__contributors", "change_request__approvals"):
                cr = deployment.change_request
                assert deployment.deployer_id != cr.author_id, "the author deployed"
                assert deployment.deployer_id not in {u.pk for u in cr.contributors.all()}, "a contributor deployed"
                approvers = {a.reviewer_id for a in cr.approvals.all() if a.decision == Approval.Decision.APPROVED}
                assert deployment.deployer_id not in approvers, "an approver deployed"

        @invariant()
        def nothing_deployed_without_the_approvals_it_needed(self):
            for deployment in Deployment.objects.filter(change_request_id__in=self.changes).select_related(
                "change_request__environment__approval_policy"
            ).prefetch_related("change_request__approvals"):
                assert approvals_sufficed(deployment), f"deployment #{deployment.pk} lacked approvals"

        @invariant()
        def a_deploying_change_has_exactly_one_running_deployment(self):
            deploying = set(
                ChangeRequest.objects.filter(pk__in=self.changes, state=ChangeRequest.State.DEPLOYING).values_list(
                    "pk", flat=True
                )
            )
            running = list(
                Deployment.objects.filter(change_request_id__in=self.changes, state=Deployment.State.RUNNING)
                .values_list("change_request_id", flat=True)
            )
            assert sorted(running) == sorted(deploying)

    return ReleaseStories


def test_random_stories_never_break_separation_of_duties(demo, now):
    """Staging is where the temptation lies: there the conflict rules allow one person to review or
    write and also deploy, so only C5 stands between rev2, ops and dev and their own changes."""
    ops2 = UserFactory(username="ops2")
    bootstrap_grant(ops2, "operations", demo.payments, demo.staging)
    bootstrap_grant(ops2, "operations", demo.payments, demo.production)
    for user, role in ((demo.rev2, "operations"), (demo.dev, "operations"), (demo.ops, "reviewer")):
        governance.role_grant(actor=demo.mgr, user=user, role=demo.roles[role], team=demo.payments,
                              environment=demo.staging, justification="Covers the staging rota", at=now)

    run_state_machine_as_test(
        releases_machine(demo, now, ops2=ops2),
        settings=settings(
            max_examples=25, stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
