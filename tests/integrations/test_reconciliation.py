"""Issue 16, item 5: every production deployment the platforms report (GitHub deployment events,
GitLab deployment events, ``deployment-reports/``) is matched to an approved change request, or is
an exception (docs/rules.md L5). Driven by @octokit/webhooks-examples' ``deployment`` and
``deployment_status`` examples and GitLab's documented Deployment Hook example; copies of them are
changed in memory where a story needs it (the time, the environment), and each test says so."""
from datetime import timedelta

import pytest
from django.test import Client

from integrations import reconciliation, sources
from integrations.models import LinkedRepository, ReportedDeployment, WebhookDelivery
from tests.integrations.github import SECRET, example, examples, gitlab_example, post_github, post_gitlab
from tests.integrations.test_contributors import work_off
from releases import services
from tests.releases import stories

SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # the octokit deployment examples' commit
GITLAB_SHA = "279484c09fbe69ededfced8c1bb6e6d24616b468"  # GitLab's example's commit_url
URL = "/api/v1/deployment-reconciliation/"


@pytest.fixture
def repositories(demo):
    return {
        "github": LinkedRepository.objects.create(platform="github", full_name="Codertocat/Hello-World",
                                                  team=demo.payments, webhook_secret=SECRET),
        "gitlab": LinkedRepository.objects.create(platform="gitlab", full_name="root/test-deployment-webhooks",
                                                  team=demo.payments, webhook_secret=SECRET),
    }


def github_deployment(at, *, environment="production") -> tuple[dict, dict]:
    """octokit's production ``deployment created`` example and its ``deployment_status success``,
    their times moved to ``at`` (the examples are of 2019)."""
    created = example("deployment", action="created")
    status = examples("deployment_status")[0]
    assert created["deployment"]["environment"] == status["deployment"]["environment"] == "production"
    for payload in (created, status):
        payload["deployment"]["created_at"] = at.isoformat()
        payload["deployment"]["environment"] = environment
    status["deployment_status"]["created_at"] = (at + timedelta(minutes=2)).isoformat()
    return created, status


def gitlab_deployment(at, *, status="success") -> dict:
    """GitLab's documented example (a staging deployment), moved to production and to ``at``."""
    payload = gitlab_example("deployment_hook.json")
    assert payload["environment"] == "staging" and GITLAB_SHA in payload["commit_url"]
    payload.update(environment="production", environment_tier="production", environment_slug="production",
                   status=status, status_changed_at=at.strftime("%Y-%m-%d %H:%M:%S +0000"))
    return payload


def reconciled() -> dict[int, dict]:
    rows = reconciliation.rows(list(reconciliation.tuples(reconciliation.production())))
    return {r["reported_deployment_id"]: r for r in rows}


def linked_change(demo, now, repository, sha=SHA, *, approve=True):
    cr = (stories.approved_in_production if approve else stories.pending_in_production)(demo, now)
    sources.link_source(actor=demo.dev, change_request=cr, sha=sha, repository=repository)
    return cr


def test_github_deployment_events_become_one_reported_deployment_with_its_latest_status(demo, now, repositories):
    created, status = github_deployment(now)
    assert post_github(Client(), "deployment", created, delivery="d-1").status_code == 202
    assert post_github(Client(), "deployment_status", status, delivery="d-2").status_code == 202
    assert post_github(Client(), "deployment_status", status, delivery="d-2").json()["duplicate"] is True
    work_off()
    (reported,) = ReportedDeployment.objects.all()
    assert (reported.source, reported.external_id, reported.commit_sha) == ("github", "145988746", SHA)
    assert (reported.environment, reported.status, reported.reported_at) == (demo.production, "success", now)
    assert reported.repository == repositories["github"] and reported.deployer_login == "Codertocat"


def test_every_octokit_deployment_example_is_recorded(demo, repositories):
    for number, payload in enumerate(examples("deployment") + examples("deployment_status")):
        event = "deployment_status" if "deployment_status" in payload else "deployment"
        assert post_github(Client(), event, payload, delivery=f"x-{number}").status_code == 202
    work_off()
    # Every example names deployment 145988746 (the github-pages ones too): one platform deployment,
    # however often told, and every delivery says it recorded it.
    assert ReportedDeployment.objects.count() == 1
    outcomes = WebhookDelivery.objects.values_list("outcome", flat=True)
    assert all("deployment 145988746" in o for o in outcomes) and len(outcomes) == 8


def test_a_change_deployed_through_countersign_reconciles(demo, now, repositories):
    cr = linked_change(demo, now, repositories["github"])
    stories.deploy(demo, cr, now)
    for event, payload in zip(("deployment", "deployment_status"), github_deployment(now + timedelta(minutes=5)), strict=True):
        post_github(Client(), event, payload)
    work_off()
    (row,) = reconciled().values()
    assert (row["change_id"], row["result"], row["findings"]) == (f"CR-{cr.pk}", "matched", [])
    assert row["countersigned_by"].startswith("deployment #")


def test_an_approved_change_the_platform_deployed_without_countersign_is_an_exception(demo, now, repositories):
    cr = linked_change(demo, now, repositories["github"])
    created, _ = github_deployment(now + timedelta(minutes=5))
    post_github(Client(), "deployment", created)
    work_off()
    (row,) = reconciled().values()
    assert (row["change_id"], row["findings"]) == (f"CR-{cr.pk}", ["deployed_outside_countersign"])


def test_a_change_not_yet_approved_is_an_exception(demo, now, repositories):
    cr = linked_change(demo, now, repositories["github"], approve=False)
    post_github(Client(), "deployment", github_deployment(now)[0])
    work_off()
    (row,) = reconciled().values()
    assert (row["change_id"], row["change_state"], row["findings"]) == (f"CR-{cr.pk}", "pending", ["not_approved"])


def test_approved_only_after_the_deployment_is_not_approved_then(demo, now, repositories):
    cr = linked_change(demo, now, repositories["github"])
    post_github(Client(), "deployment", github_deployment(now - timedelta(hours=1))[0])
    work_off()
    (row,) = reconciled().values()
    assert (row["change_id"], row["findings"]) == (f"CR-{cr.pk}", ["not_approved"])


def test_a_commit_no_change_names_is_an_exception(demo, now, repositories):
    linked_change(demo, now, repositories["github"], sha="a" * 40)
    post_github(Client(), "deployment", github_deployment(now)[0])
    work_off()
    (row,) = reconciled().values()
    assert (row["change_id"], row["findings"]) == ("", ["no_change_request"])


def test_a_production_environment_countersign_does_not_know_is_an_exception(demo, now, repositories):
    payload = gitlab_deployment(now)
    payload["environment"] = "prod-eu"  # GitLab calls it production (environment_tier); we have no such slug
    assert post_gitlab(Client(), "Deployment Hook", payload).status_code == 202
    work_off()
    (row,) = reconciled().values()
    assert (row["platform_environment"], row["environment"], row["findings"]) == ("prod-eu", "", ["unknown_environment"])


def test_gitlab_deployment_hook_is_matched_by_the_commit_in_its_url(demo, now, repositories):
    cr = linked_change(demo, now, repositories["gitlab"], sha=GITLAB_SHA[:8])  # a short sha matches the full one
    stories.deploy(demo, cr, now)
    post_gitlab(Client(), "Deployment Hook", gitlab_deployment(now, status="running"))
    post_gitlab(Client(), "Deployment Hook", gitlab_deployment(now + timedelta(minutes=3)))
    work_off()
    (reported,) = ReportedDeployment.objects.all()
    assert (reported.commit_sha, reported.status, reported.external_id) == (GITLAB_SHA, "success", "15")
    (row,) = reconciled().values()
    assert (row["change_id"], row["result"]) == (f"CR-{cr.pk}", "matched")


def test_a_blocked_deployment_that_never_ran_is_listed_without_exception(demo, now, repositories):
    post_gitlab(Client(), "Deployment Hook", gitlab_deployment(now, status="blocked"))
    work_off()
    (row,) = reconciled().values()
    assert (row["result"], row["findings"]) == ("did_not_run", [])


def test_a_deployment_far_from_countersigns_own_is_outside_it(demo, now, repositories, settings):
    settings.COUNTERSIGN_RECONCILIATION_WINDOW_MINUTES = 30
    cr = linked_change(demo, now, repositories["github"])
    stories.deploy(demo, cr, now)
    post_github(Client(), "deployment", github_deployment(now + timedelta(minutes=31))[0])
    work_off()
    (row,) = reconciled().values()
    assert row["findings"] == ["deployed_outside_countersign"]


def test_deployment_reports_are_reconciled_by_artifact(demo, now):
    cr = stories.approved_in_production(demo, now)
    stories.deploy(demo, cr, now)
    later = now + timedelta(minutes=5)  # the story's now is next Tuesday: the reports come after it
    assert services.deployment_report(actor=demo.ops, environment=demo.production, artifact=cr.artifact,
                                      source="argo", at=later)["registered"] is True
    services.deployment_report(actor=demo.ops, environment=demo.production, artifact=stories.new_artifact(), at=later)
    rows = sorted(reconciled().values(), key=lambda r: r["reported_deployment_id"])
    assert [(r["source"], r["change_id"], r["findings"]) for r in rows] == [
        ("report", f"CR-{cr.pk}", []), ("report", "", ["no_change_request"])]


def test_the_list_needs_view_audit_or_export_evidence_and_filters(demo, now, repositories, api_as):
    post_github(Client(), "deployment", github_deployment(now)[0])
    post_gitlab(Client(), "Deployment Hook", gitlab_deployment(now + timedelta(days=1)))
    work_off()
    for persona in (demo.auditor, demo.sec):
        answer = api_as(persona).get(URL)
        assert answer.status_code == 200 and answer.json()["count"] == 2
    refused = api_as(demo.dev).get(URL)
    assert refused.status_code == 403 and refused.json()["reasons"][0]["code"] == "missing_duty"
    since = (now + timedelta(hours=1)).isoformat()
    only = api_as(demo.auditor).get(URL, {"since": since})
    assert [r["source"] for r in only.json()["results"]] == ["gitlab"]
    assert api_as(demo.auditor).get(URL, {"until": since}).json()["results"][0]["source"] == "github"
    assert api_as(demo.auditor).get(URL, {"environment": "staging"}).json()["count"] == 0
    assert api_as(demo.auditor).get(URL, {"since": "yesterday"}).status_code == 400
    assert api_as(demo.auditor).get(URL, {"since": "0001-01-01T00:00:00+01:00"}).status_code == 400
    assert api_as(demo.auditor).get(URL, {"bogus": "1"}).status_code == 400
