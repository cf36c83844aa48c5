"""Issue 16, item 3: Countersign as GitLab's deployment approver, against a fake GitLab API on
127.0.0.1 that checks every request against GitLab's documented approval API
(tests/integrations/fake_gitlab.py). Driven by GitLab's documented Deployment Hook example, moved
in memory to production and to the status ``blocked`` (waiting for approval)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit import outbox
from audit.models import AuditEvent, OutboxMessage
from integrations import gitlab, reconciliation, sources
from integrations.models import GitLabDeploymentApproval, LinkedRepository, PlatformAccount
from integrations.webhooks import TOPIC as WEBHOOK_TOPIC
from releases import services
from tests.integrations.fake_gitlab import FakeGitLab
from tests.integrations.github import SECRET, gitlab_example, post_gitlab
from tests.releases import stories

TOKEN = "glpat-countersign-service-account"
SHA = "279484c09fbe69ededfced8c1bb6e6d24616b468"  # the example's commit_url
APPROVAL_PATH = "/api/v4/projects/30/deployments/15/approval"  # the example's project.id and deployment_id


@pytest.fixture
def fake(settings):
    server = FakeGitLab(token=TOKEN).start()
    settings.COUNTERSIGN_GITLAB_API_URL = server.url
    settings.COUNTERSIGN_GITLAB_TOKEN = TOKEN
    yield server
    server.stop()


@pytest.fixture
def at():
    return timezone.now() - timedelta(minutes=5)


@pytest.fixture
def repository(demo):
    return LinkedRepository.objects.create(platform="gitlab", full_name="root/test-deployment-webhooks",
                                           team=demo.payments, webhook_secret=SECRET)


@pytest.fixture
def ops_is_root(demo):
    """The example's pipeline user is GitLab's ``root``: here, ops (who deploys to production)."""
    return PlatformAccount.objects.create(user=demo.ops, platform="gitlab", login="root")


@pytest.fixture
def change(demo, at, repository):
    cr = stories.pending_in_production(demo, at)
    sources.link_source(actor=demo.dev, change_request=cr, sha=SHA, repository=repository)
    return cr


def work_off() -> list[str]:
    """What the worker does: deliver the queued webhook and GitLab messages, in order."""
    outcomes, tried = [], set()
    while True:
        due = OutboxMessage.objects.filter(topic__in=(WEBHOOK_TOPIC, gitlab.TOPIC), delivered_at__isnull=True,
                                           failed_at__isnull=True).exclude(pk__in=tried).order_by("pk").first()
        if due is None:
            return outcomes
        tried.add(due.pk)
        outcomes.append(outbox.deliver(due.pk))


def blocked(status="blocked", at=None) -> dict:
    """The example moved to production, the status given, at ``at`` (its own time is of 2021)."""
    payload = gitlab_example("deployment_hook.json")
    assert (payload["project"]["id"], payload["deployment_id"]) == (30, 15)
    payload.update(environment="production", environment_tier="production", status=status,
                   status_changed_at=(at or timezone.now()).strftime("%Y-%m-%d %H:%M:%S +0000"))
    return payload


def test_a_waiting_deployment_is_rejected_with_reasons_then_approved_once_two_reviewers_sign_off(
        demo, at, fake, change, ops_is_root):
    assert post_gitlab(Client(), "Deployment Hook", blocked(at=at)).status_code == 202
    assert work_off() == ["delivered", "delivered"]
    (first,) = fake.calls
    assert (first.path, first.body["status"]) == (APPROVAL_PATH, "rejected")
    assert "not_approved" in first.body["comment"] and f"/changes/{change.pk}/" in first.body["comment"]

    services.change_request_approve(actor=demo.rev, change_request=change, via="portal", at=at)
    assert work_off() == ["delivered"]  # evaluated again: still one approval short, nothing new said
    assert len(fake.calls) == 1

    services.change_request_approve(actor=demo.rev2, change_request=change, via="portal", at=at)
    assert work_off() == ["delivered"]
    assert [c.body["status"] for c in fake.calls] == ["rejected", "approved"]
    comment = fake.calls[1].body["comment"]
    assert f"CR-{change.pk}" in comment and "rev (" in comment and "rev2 (" in comment
    assert fake.violations == []

    approval = GitLabDeploymentApproval.objects.get()
    assert (approval.status, approval.waiting, approval.change_request_id) == ("approved", False, change.pk)
    answered = AuditEvent.objects.filter(action="deployment.platform_answered").order_by("sequence")
    assert [e.data["status"] for e in answered] == ["rejected", "approved"]

    # GitLab then runs it: the reconciliation counts Countersign's own approval on GitLab.
    post_gitlab(Client(), "Deployment Hook", blocked("success"))
    work_off()
    (row,) = reconciliation.rows(list(reconciliation.tuples(reconciliation.production())))
    assert (row["change_id"], row["countersigned_by"], row["findings"]) == (
        f"CR-{change.pk}", "platform approval", [])


def test_a_deployer_nobody_knows_is_rejected(demo, at, fake, change):
    payload = blocked()
    payload["user"].update(username="stranger", email="stranger@example.invalid")  # the example's is admin's
    post_gitlab(Client(), "Deployment Hook", payload)
    work_off()
    (call,) = fake.calls
    assert call.body["status"] == "rejected" and "unknown_deployer" in call.body["comment"]


def test_a_commit_no_change_names_is_rejected(demo, at, fake, repository, ops_is_root):
    post_gitlab(Client(), "Deployment Hook", blocked())
    work_off()
    (call,) = fake.calls
    assert call.body["status"] == "rejected" and "no_change_request" in call.body["comment"]
    assert GitLabDeploymentApproval.objects.get().reasons == ["no_change_request"]


def test_the_author_deploying_their_own_change_is_rejected(demo, at, fake, change):
    PlatformAccount.objects.create(user=demo.dev, platform="gitlab", login="root")
    for reviewer in (demo.rev, demo.rev2):
        services.change_request_approve(actor=reviewer, change_request=change, via="portal", at=at)
    post_gitlab(Client(), "Deployment Hook", blocked())
    work_off()
    assert fake.calls[-1].body["status"] == "rejected"
    assert "author_cannot_deploy" in fake.calls[-1].body["comment"] or "missing_duty" in fake.calls[-1].body["comment"]


def test_a_wrong_token_is_retried_and_nothing_is_recorded_as_answered(demo, at, fake, change, ops_is_root, settings):
    settings.COUNTERSIGN_GITLAB_TOKEN = "glpat-wrong"
    post_gitlab(Client(), "Deployment Hook", blocked())
    assert work_off() == ["delivered", "retrying"]
    assert fake.calls == [] and any("PRIVATE-TOKEN" in v for v in fake.violations)
    approval = GitLabDeploymentApproval.objects.get()
    assert (approval.status, approval.answered_at, approval.waiting) == ("pending", None, True)
    assert not AuditEvent.objects.filter(action="deployment.platform_answered").exists()


def test_other_statuses_and_github_deliveries_ask_gitlab_nothing(demo, at, fake, change, ops_is_root):
    post_gitlab(Client(), "Deployment Hook", blocked("running"))
    work_off()
    assert fake.calls == [] and not GitLabDeploymentApproval.objects.exists()
