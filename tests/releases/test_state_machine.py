"""Random stories: personas take random actions in random order while roles are granted and
revoked and time passes, and after every step the separation of duties still holds:

- no deployment was started by the change's author, a contributor or an approver;
- no change was deployed with fewer valid approvals than its policy asked at that moment (checked
  against the approval rows themselves, not through the engine);
- every state change of a change request wrote exactly one audit event naming it, and a refused
  action wrote nothing; the events of a change chain up to its current state, in step with its
  simple-history rows;
- every move follows the state table (``releases.states``, docs/rules.md section 3): an action from
  a state the table does not list is refused (``invalid_state``, or ``not_approved`` for a
  deployment of a change not yet approved), and one it lists leads where the table says — with the
  ways back drawn too: request changes, resubmit, withdraw, re-review (approvals expired, sent back
  for review) and retry (a failed deployment, a new attempt);
- nobody decided a change they wrote or contributed to, nobody decided one revision twice, and
  every decision on a revision older than the change's current one is stale (and only those): a
  new revision's approvals are never the old ones; withdraw, re-review and resubmission each start
  a new revision;
- a deployment (a retry too) starts only from a change approved at the deployment's revision.
"""
import re
from pathlib import Path

from datetime import timedelta

import pytest
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
from releases import services, services_flow, states
from releases.models import Approval, ChangeRequest, Deployment, RevisionContributor
from releases.policy import evaluate
from releases.selectors import change_for_gate, change_request_for_decision, change_requests_visible_to, policy_context
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
S = ChangeRequest.State
RULES_MD = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
# Where the policy may be met at once (C4, C9: no approval needed, or a standard change's own), so
# the action may end in approved rather than where the table's row points.
SETTLES = {"submit", "approve", "re_review"}
# A deployment of a change that may yet be approved is refused as not_approved (releases.states.
# NOT_YET_APPROVED); an edit checks who edits before the state. Every other action from a state the
# table does not list is refused with invalid_state.
REFUSED_OTHERWISE = {"deploy", "retry", "edit"}


def table_starts(action: str) -> frozenset:
    """The states the state table lets ``action`` start from (the machine's actions by the table's names)."""
    if action == "edit":  # an edit of what reviewers read is a new revision, from more states than a draft's edit
        return states.starts("edit") | states.starts("new_revision")
    if action == "finish":
        return states.starts("finish_succeeded") | states.starts("finish_failed")
    return states.starts(action)


def table_leads_to(action: str, before: str) -> set:
    """Where the state table says ``action`` from ``before`` may lead."""
    if action == "edit":
        if before == S.DRAFT:
            return {S.DRAFT}
        after = states.after_revision(before)
        return {after} if after == S.CHANGES_REQUESTED else {after, S.APPROVED}
    if action == "finish":
        return {states.target("finish_succeeded"), states.target("finish_failed")}
    target = states.target(action)
    return {target or S.PENDING} | ({S.APPROVED} if action in SETTLES else set())
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
    """What the environment's policy asked when the deployment started, recomputed from the rows
    (decisions for changes never count: only ``approved`` ones of the deployment's revision)."""
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

        def act(self, cr_pk, action, call):
            """Run ``call``, the state table's ``action``; a refusal writes nothing, a success exactly
            one event about the change naming the move (and maybe security alerts, RULES.md E2: the
            machine acts at any hour and approves seconds after submission). From a state the
            table does not list for ``action`` the call must be refused; from one it lists, a
            success leads where the table says."""
            before_state, before_revision = ChangeRequest.objects.values_list("state", "revision").get(pk=cr_pk)
            before_events = AuditEvent.objects.count()
            before_history = ChangeRequest.history.filter(id=cr_pk).count()
            listed = before_state in table_starts(action)
            try:
                result = call()
            except REFUSALS as refused:
                assert AuditEvent.objects.count() == before_events, "a refused action wrote an audit event"
                assert ChangeRequest.objects.values_list("state", flat=True).get(pk=cr_pk) == before_state
                assert ChangeRequest.history.filter(id=cr_pk).count() == before_history
                if not listed and action not in REFUSED_OTHERWISE:
                    assert isinstance(refused, InvalidState), f"{action} from {before_state}: {refused!r}"
                if not listed and action in ("deploy", "retry") and not isinstance(refused, InvalidState):
                    assert before_state in states.NOT_YET_APPROVED and "not_approved" in refused.codes, refused
                self.last_refusal = refused
                return None
            assert listed, f"{action} succeeded from {before_state}, which the state table does not list"
            after_state, after_revision = ChangeRequest.objects.values_list("state", "revision").get(pk=cr_pk)
            assert after_state in table_leads_to(action, before_state), (action, before_state, after_state)
            if action in ("withdraw", "re_review") or (action == "submit" and states.is_resubmission(before_state)):
                # A new revision (a resubmission unless the author revised it since the request for changes).
                assert after_revision == before_revision + (
                    0 if action == "submit" and not Approval.objects.filter(
                        change_request_id=cr_pk, revision=before_revision).exists() else 1), (action, before_revision,
                                                                                            after_revision)
            if action in ("deploy", "retry"):
                self.deployed_from_an_approved_revision(cr_pk, result)
            written = list(AuditEvent.objects.order_by("sequence")[before_events:])
            about_it = [e for e in written if (e.target_type, e.target_id) == ("releases.changerequest", str(cr_pk))]
            assert {e.action for e in written if e not in about_it} <= {"alert.raised"}
            [move] = about_it
            assert (move.data["from_state"], move.data["to_state"]) == (before_state, after_state)
            self.check_trail(cr_pk)
            return result

        def deployed_from_an_approved_revision(self, cr_pk, deployment):
            """The change was approved at the deployment's revision (a retry's too), and at that
            moment its valid approvals of that revision sufficed."""
            assert AuditEvent.objects.filter(
                target_type="releases.changerequest", target_id=str(cr_pk), data__to_state=S.APPROVED,
                data__revision=deployment.revision).exists(), f"deployment #{deployment.pk} of an unapproved revision"
            assert deployment.revision == ChangeRequest.objects.values_list("revision", flat=True).get(pk=cr_pk)
            assert not Approval.objects.filter(change_request_id=cr_pk, revision=deployment.revision,
                                               stale=True).exists(), "deployed on stale approvals"

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
            sent_back_by=st.sampled_from(["rev", "rev2", "sec"]),
        )
        def approved_changes_waiting(self, artifact, risk, contributor, staging_reviewer, sent_back_by):
            """Every story starts with an artifact already shipped to staging, another change for it
            approved for staging (with a contributor and an approver who may well hold deploy
            there) and one approved for production, so that deploying (too late, by the wrong
            person) is tried from the first steps; and with the ways back open from the first
            steps too: a staging change whose deployment failed (to retry, or send back for review
            once its approval expired) and one a reviewer sent back for changes (to revise,
            resubmit or withdraw), and one waiting for production's two sign-offs."""
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
            failed = services.change_request_create(
                actor=demo.dev2, team=demo.payments, environment=environments["staging"], title="Failed once",
                artifact=artifact, risk=risk, at=self.now)
            failed = services.change_request_submit(actor=demo.dev2, change_request=failed, at=self.now)
            failed = services.change_request_approve(actor=people[staging_reviewer], change_request=failed, at=self.now)
            deployment = services.deployment_start(actor=people["ops2"], change_request=failed, at=self.now)
            services.deployment_finish(actor=people["ops2"], deployment=deployment, outcome="failed", at=self.now)
            self.changes.append(failed.pk)
            self.deployments.append(deployment.pk)
            sent_back = services.change_request_create(
                actor=demo.dev, team=demo.payments, environment=environments["staging"], title="Sent back",
                artifact=artifact, risk=risk, at=self.now)
            sent_back = services.change_request_submit(actor=demo.dev, change_request=sent_back, at=self.now)
            services.change_request_request_changes(actor=people[sent_back_by], change_request=sent_back,
                                                    comment="Add a back-out plan.", at=self.now)
            self.changes.append(sent_back.pk)
            waiting = services.change_request_create(
                actor=demo.dev2, team=demo.payments, environment=environments["production"], title="Waiting",
                artifact=artifact, risk=risk, at=self.now)
            self.changes.append(services.change_request_submit(actor=demo.dev2, change_request=waiting, at=self.now).pk)

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
                self.act(cr.pk, "submit", lambda: services.change_request_submit(
                    actor=people[author], change_request=cr, at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE))
        def submit(self, index, fitting, actor):
            """Submit a draft, or resubmit a change a reviewer sent back."""
            pk = self.target(index, fitting, ["draft", "changes_requested"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, "submit", lambda: services.change_request_submit(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk), at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE),
              artifact=st.sampled_from(ARTIFACTS))
        def new_artifact(self, index, fitting, actor, artifact):
            pk = self.target(index, fitting, ["pending", "approved", "changes_requested", "draft"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, "edit", lambda: services.change_request_update(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk),
                changes={"artifact": artifact}, at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(REVIEWERS),
              decision=st.sampled_from(["approve", "approve", "approve", "reject", "request_changes"]),
              via=st.sampled_from(["portal", "portal", "api"]))
        def decide(self, index, fitting, actor, decision, via):
            """Approve, reject, or ask the author for changes (non-final)."""
            pk = self.target(index, fitting, ["pending"])
            service = services.signoff_service(decision)
            self.act(pk, decision, lambda: service(
                actor=people[actor], change_request=ChangeRequest(pk=pk), via=via, comment="Looked at it.",
                at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(OPERATORS))
        def deploy(self, index, fitting, actor):
            pk = self.target(index, fitting, ["approved"])
            deployment = self.act(pk, "deploy", lambda: services.deployment_start(
                actor=people[actor], change_request=ChangeRequest(pk=pk), at=self.now))
            if deployment is not None:
                assert has_duty(people[actor], duties.DEPLOY, environment=deployment.environment, at=self.now)
                self.deployments.append(deployment.pk)

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(OPERATORS))
        def retry(self, index, fitting, actor):
            """A new attempt at a change whose deployment failed, under the checks of a first one."""
            pk = self.target(index, fitting, ["failed"])
            deployment = self.act(pk, "retry", lambda: services.deployment_retry(
                actor=people[actor], change_request=ChangeRequest(pk=pk), at=self.now))
            if deployment is not None:
                assert has_duty(people[actor], duties.DEPLOY, environment=deployment.environment, at=self.now)
                assert Deployment.objects.filter(change_request_id=pk, state=Deployment.State.FAILED).exists()
                self.deployments.append(deployment.pk)

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE))
        def withdraw(self, index, fitting, actor):
            """The author takes a change out of review: a draft again, at a new revision."""
            pk = self.target(index, fitting, ["pending", "changes_requested"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, "withdraw", lambda: services_flow.change_request_withdraw(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk), at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), fitting=MOSTLY, actor=st.sampled_from(AUTHOR_OR_ANYONE + ["mgr"] * 3),
              later=st.sampled_from([0, 0, 73, 169]))
        def re_review(self, index, fitting, actor, later):
            """The author or a manager, coming back after a while (past production's or staging's
            approval lifetime, or not), sends a change whose approvals lapsed back for review
            (refused, ``approvals_not_expired``, while they still count)."""
            self.now += timedelta(hours=later)
            pk = self.target(index, fitting, ["approved", "failed"])
            author = ChangeRequest.objects.get(pk=pk).author.username
            self.act(pk, "re_review", lambda: services_flow.change_request_re_review(
                actor=self.person(actor, natural=author), change_request=ChangeRequest(pk=pk), at=self.now))

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0), who=st.integers(min_value=0, max_value=7))
        def proceed(self, index, who):
            """Take an open change one step along its way: the author submits (or resubmits), someone
            signs off in the portal (or now and then asks for changes), someone deploys (or retries
            a failed deployment), the deployer reports the outcome (a third fail). "Someone" is a
            reviewer or an operator as often as one of the people the rules keep out: the author,
            a contributor, an approver (rev2, ops and dev also deploy in staging). The services
            decide; the invariants watch what they let through."""
            pk = self.target(index, True, ["draft", "changes_requested", "pending", "approved", "deploying", "failed"])
            cr = ChangeRequest.objects.select_related("author").prefetch_related(
                "contributors", "approvals__reviewer"
            ).get(pk=pk)
            approvers = [a.reviewer for a in cr.approvals.all() if a.reviewer]
            involved = [cr.author, *cr.contributors.all(), *approvers]
            if cr.state in ("draft", "changes_requested"):
                self.act(cr.pk, "submit", lambda: services.change_request_submit(
                    actor=cr.author, change_request=cr, at=self.now))
            elif cr.state == "pending":
                candidates = [people[n] for n in ("rev", "rev2", "sec", "ops")] + involved
                reviewer = candidates[who % len(candidates)]
                decision = "request_changes" if who == 7 else "approve"  # now and then: not yet
                self.act(cr.pk, decision, lambda: services.signoff_service(decision)(
                    actor=reviewer, change_request=cr, via="portal", comment="Looked at it.", at=self.now))
            elif cr.state in ("approved", "failed"):
                candidates = [people[n] for n in ("ops2", "ops", "rev2", "dev")] + involved
                operator = candidates[who % len(candidates)]
                action = "deploy" if cr.state == "approved" else "retry"
                service = services.deployment_start if action == "deploy" else services.deployment_retry
                deployment = self.act(cr.pk, action, lambda: service(actor=operator, change_request=cr, at=self.now))
                if deployment is not None:
                    self.deployments.append(deployment.pk)
            elif cr.state == "deploying":
                deployment = cr.deployments.select_related("deployer").get(state="running")
                outcome = "failed" if who % 3 == 0 else "succeeded"  # a third of the rollouts fail
                self.act(cr.pk, "finish", lambda: services.deployment_finish(
                    actor=deployment.deployer, deployment=deployment, outcome=outcome, at=self.now))

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
            self.act(deployment.change_request_id, "rollback" if outcome == "rolled_back" else "finish", call)

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

        @precondition(lambda self: self.changes)
        @rule(index=st.integers(min_value=0))
        def ask_the_gate(self, index):
            """The gate's read (statements built once, releases.reads) and the services' read reach
            the same decision for everyone, on any change, at any point of the story (issue 21)."""
            cr_pk = self.pick(self.changes, index)
            service_cr = change_request_for_decision(cr_pk)
            for name in EVERYONE:
                # A fresh user object: the gate keeps the caller's grants for the request's instant on it.
                person = type(people[name]).objects.get(pk=people[name].pk)
                gate_cr = change_for_gate(person, cr_pk, at=self.now)
                visible = change_requests_visible_to(person, at=self.now).filter(pk=cr_pk).exists()
                assert (gate_cr is not None) == visible, (name, cr_pk)
                for action in ("approve", "deploy") if visible else ():
                    gate = evaluate(policy_context(gate_cr, person, at=self.now, reuse=True), action, self.now)
                    service = evaluate(policy_context(service_cr, person, at=self.now), action, self.now)
                    assert (gate.allowed, gate.codes, gate.requirements) == (
                        service.allowed, service.codes, service.requirements), (name, cr_pk, action)

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
        def decisions_are_by_outsiders_once_per_revision_and_stale_exactly_when_old(self):
            """C2, C3: no decision by the author; none counting by a contributor of any revision;
            one per person per revision; stale exactly when the change has moved past its revision."""
            rows = Approval.objects.filter(change_request_id__in=self.changes).values_list(
                "change_request_id", "change_request__author_id", "change_request__revision", "reviewer_id",
                "revision", "stale", "via")
            contributors = set(RevisionContributor.objects.filter(change_request_id__in=self.changes).values_list(
                "change_request_id", "user_id"))
            decided = set()
            for cr, author, current, reviewer, revision, stale, via in rows:
                assert stale == (revision < current), f"CR-{cr}: a decision on revision {revision} of {current}"
                if reviewer is None:
                    assert via == Approval.Via.AUTO
                    continue
                assert reviewer != author, f"CR-{cr}: its author decided it"
                assert stale or (cr, reviewer) not in contributors, f"CR-{cr}: a contributor's decision counts"
                assert (cr, reviewer, revision) not in decided, f"CR-{cr}: one person decided revision {revision} twice"
                decided.add((cr, reviewer, revision))

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


@pytest.mark.sweep  # random stories: run once in CI, in the PostgreSQL pass (pyproject.toml)
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
            # 20 stories (25 before the ways back were drawn: each story now goes deeper), about the
            # same time as before.
            max_examples=20, stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_state_table_of_docs_rules_md_is_the_one_the_services_check():
    """docs/rules.md section 3's table says what ``releases.states`` holds: for each action, the
    states it starts from and where it leads (the machine above checks the services against it)."""
    rows = {}
    for line in RULES_MD.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[a-z_]+", cells[0]):
            rows[cells[0]] = [re.findall(r"`([a-z_]+)`", cell) for cell in cells[1:3]]
    table = {"finish" if name.startswith("finish_") else name: value for name, value in states.TRANSITIONS.items()
             if name not in ("new_revision", "review_pir")}
    assert sorted(rows) == sorted(table)
    for action, (written_from, written_to) in rows.items():
        assert set(written_from) == set(table_starts(action) if action == "finish" else states.starts(action)), action
        leads = table_leads_to(action, next(iter(states.starts(action if action != "finish" else "finish_failed"))))
        if action != "edit":
            assert set(written_to) <= leads | {S.APPROVED} and set(written_to) & leads, (action, written_to, leads)
