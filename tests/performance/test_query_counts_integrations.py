"""Queries per request do not grow with data (issue 21), integrations: the reconciliation, a
change's contributors and attestation, the webhooks and deployment reports the platforms post,
and the admin lists of linked repositories, accounts, deliveries, contributors, protection
requests, reported deployments, SIEM sinks and domain webhooks (notification channels), at SMALL
and LARGE rows."""
import itertools
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import NotificationChannel
from compliance.siem.models import SiemCursor, SiemSink
from integrations.models import (Attestation, LearntContributor, LinkedRepository, PlatformAccount,
                                 ProtectionRequest, ReportedDeployment, WebhookDelivery)
from releases.models import ChangeRequest
from tests.factories import UserFactory
from tests.integrations.github import SECRET, gitlab_example, post_github, post_gitlab, push_with_commits
from tests.performance.counting import LARGE, assert_same_at_two_sizes

ADMIN_LISTS = ("integrations_linkedrepository", "integrations_platformaccount", "integrations_webhookdelivery",
               "integrations_learntcontributor", "integrations_protectionrequest",
               "integrations_reporteddeployment", "compliance_siemsink", "audit_notificationchannel")


@pytest.fixture
def platform(demo):
    """``platform.grow(n)``: n more of every row the integrations keep, each with its related rows
    (a repository, an account's user, a delivery, a change, a deployer); ``platform.change`` is the
    approved production change the contributors and attestations are of."""
    numbers = itertools.count(1)
    change = ChangeRequest.objects.filter(state="approved", environment=demo.production).first()
    github = LinkedRepository.objects.create(platform="github", full_name="Codertocat/Hello-World",
                                             team=demo.payments, webhook_secret=SECRET)
    LinkedRepository.objects.create(platform="gitlab", full_name="mike/diaspora", team=demo.payments,
                                    webhook_secret=SECRET)

    def grow(n):
        now = timezone.now()
        for _ in range(n):
            k = next(numbers)
            user = UserFactory(username=f"contributor{k}")
            repository = LinkedRepository.objects.create(platform="github", full_name=f"acme/repo{k}",
                                                         team=demo.payments, webhook_secret=SECRET)
            PlatformAccount.objects.create(user=user, platform="github", login=f"octo{k}")
            delivery = WebhookDelivery.objects.create(platform="github", delivery_id=f"stored-{k}", event="push",
                                                      repository=repository, payload={})
            LearntContributor.objects.create(change_request=change, revision=change.revision, source="pusher",
                                             login=f"octo{k}", user=user, delivery=delivery)
            ProtectionRequest.objects.create(delivery=delivery, repository=repository, environment_name="production",
                                             environment=demo.production, callback_url="https://api.github.com/x",
                                             deployer=user, change_request=change)
            ReportedDeployment.objects.create(source="github", repository=repository, external_id=str(k),
                                              environment_name="production", environment=demo.production,
                                              platform_production=True, commit_sha=f"{k:040x}", reported_at=now,
                                              status_at=now, delivery=delivery)
            Attestation.objects.create(change_request=change, kind="approval", revision=change.revision,
                                       subject_digest="0" * 64, envelope={}, expires_at=now)
            sink = SiemSink.objects.create(name=f"sink {k}", transport="https_json",
                                           destination="https://siem.example.org/")
            SiemCursor.objects.get_or_create(sink=sink)
            NotificationChannel.objects.create(name=f"hook {k}", kind="webhook", team=demo.payments.slug,
                                               target="https://hooks.example.org/x")

    return SimpleNamespace(grow=grow, change=change, github=github)


def test_integration_pages_and_admin_lists_cost_the_same_at_two_sizes(demo, api_as, client_as, platform):
    def requests():
        api, admin, cr = api_as(demo.auditor), client_as(demo.admin), platform.change.pk
        calls = {
            "api deployment-reconciliation/": lambda: api.get("/api/v1/deployment-reconciliation/"),
            "api change-requests/{id}/source-contributors/": lambda: api.get(
                f"/api/v1/change-requests/{cr}/source-contributors/"),
            "api change-requests/{id}/attestation/": lambda: api.get(f"/api/v1/change-requests/{cr}/attestation/"),
        }
        for label in ADMIN_LISTS:
            calls[f"admin {label}"] = lambda label=label: admin.get(reverse(f"admin:{label}_changelist"))
        return calls

    assert_same_at_two_sizes(platform.grow, requests)
    shown = api_as(demo.auditor).get("/api/v1/deployment-reconciliation/").json()
    assert shown["count"] == LARGE, shown  # what was counted lists every reported deployment


def test_webhooks_and_deployment_reports_cost_the_same_with_more_stored(demo, api_as, platform):
    """Each post is a new delivery (or report); what grows is what is stored already."""
    deliveries, ops = itertools.count(1), api_as(demo.ops)

    def requests():
        def github():
            return post_github(Client(), "push", push_with_commits(), delivery=f"gh-{next(deliveries)}")

        def gitlab():
            return post_gitlab(Client(), "Push Hook", gitlab_example("push_hook.json"), delivery=f"gl-{next(deliveries)}")

        report = {"environment": "production", "artifact": platform.change.artifact, "source": "argo"}
        return {
            "api POST integrations/github/webhook": github,
            "api POST integrations/gitlab/webhook": gitlab,
            "api POST deployment-reports/": lambda: ops.post("/api/v1/deployment-reports/", report, format="json"),
        }

    assert_same_at_two_sizes(platform.grow, requests)
