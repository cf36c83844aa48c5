"""Deployments the platforms report (issue 16, item 5), run in the worker: GitHub's ``deployment``
and ``deployment_status`` events and GitLab's ``Deployment Hook`` become ``ReportedDeployment``
rows, one per platform deployment, its status the latest reported. ``deployment-reports/`` calls
arrive through ``releases.signals.deployment_reported`` (``integrations.receivers``).

The time of a deployment is the platform's own (GitHub's ``created_at``, GitLab's
``status_changed_at``), falling back to when the delivery arrived; the environment is the
Countersign environment whose slug the platform's environment name is (case-insensitive).
"""
import re
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from governance.models import Environment
from integrations import payloads
from integrations.models import ReportedDeployment, WebhookDelivery
from integrations.webhooks import GITHUB

GITHUB_EVENTS = ("deployment", "deployment_status")
# Statuses that say the deployment ran (or is running): GitLab's and GitHub's.
RAN = frozenset({"running", "success", "failed", "in_progress", "failure", "error", "inactive"})
GITLAB_EVENT = "Deployment Hook"
COMMIT_URL = re.compile(r"/commit/(?P<sha>[0-9a-f]{7,64})/?$")
# GitLab writes ``2021-04-28 21:50:00 +0200`` (its documented example); GitHub ISO 8601.
GITLAB_TIME = "%Y-%m-%d %H:%M:%S %z"


def platform_time(value, fallback: datetime) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.strptime(value, GITLAB_TIME)
        except ValueError:
            parsed = parse_datetime(value.replace("Z", "+00:00")) if "T" in value else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return fallback


def environment_named(name: str) -> Environment | None:
    return Environment.objects.filter(slug__iexact=name.strip()).first() if name.strip() else None


def _github(delivery: WebhookDelivery) -> dict | None:
    payload = delivery.payload
    deployment = payloads.obj(payload.get("deployment"))
    if not isinstance(deployment.get("id"), int):
        return None
    status = payloads.obj(payload.get("deployment_status"))
    sent = payloads.obj(deployment.get("payload"))  # free-form, set by the workflow: may name the artifact
    facts = {
        "external_id": str(deployment["id"]),
        "environment_name": payloads.text(deployment.get("environment"), 255),
        "platform_production": deployment.get("production_environment") is True,
        "commit_sha": payloads.text(deployment.get("sha"), 64).lower(),
        "artifact": payloads.text(sent.get("artifact"), 255),
        "deployer_login": payloads.text(payloads.obj(deployment.get("creator")).get("login"), 255),
        "url": payloads.text(deployment.get("url"), 500),
        "reported_at": platform_time(deployment.get("created_at"), delivery.received_at),
    }
    if delivery.event == "deployment_status" and status:
        facts["status"] = payloads.text(status.get("state"), 32)
        facts["status_at"] = platform_time(status.get("created_at"), delivery.received_at)
        facts["url"] = payloads.text(status.get("target_url") or status.get("log_url"), 500) or facts["url"]
    else:
        facts["status"] = "created"
        facts["status_at"] = facts["reported_at"]
    return facts


def _gitlab(delivery: WebhookDelivery) -> dict | None:
    payload = delivery.payload
    if not isinstance(payload.get("deployment_id"), int):
        return None
    found = COMMIT_URL.search(payloads.text(payload.get("commit_url"), 1000))
    at = platform_time(payload.get("status_changed_at"), delivery.received_at)
    return {
        "external_id": str(payload["deployment_id"]),
        "environment_name": payloads.text(payload.get("environment"), 255),
        "platform_production": payload.get("environment_tier") == "production",
        "commit_sha": found["sha"] if found else payloads.text(payload.get("short_sha"), 64).lower(),
        "artifact": "",
        "deployer_login": payloads.text(payloads.obj(payload.get("user")).get("username"), 255),
        "url": payloads.text(payload.get("deployable_url"), 500),
        "reported_at": at,
        "status": payloads.text(payload.get("status"), 32),
        "status_at": at,
    }


def record(delivery: WebhookDelivery) -> ReportedDeployment | None:
    """The deployment a delivery reports, created or brought up to date; None for other events.
    A status older than the one stored does not overwrite it (deliveries may arrive out of order)."""
    if delivery.platform == GITHUB:
        facts = _github(delivery) if delivery.event in GITHUB_EVENTS else None
    else:
        facts = _gitlab(delivery) if delivery.event == GITLAB_EVENT else None
    if facts is None or not facts["environment_name"]:
        return None
    found = ReportedDeployment.objects.select_for_update().filter(
        source=delivery.platform, repository=delivery.repository, external_id=facts["external_id"]).first()
    ran_at = facts["status_at"] if facts["status"] in RAN else None
    if found is None:
        return ReportedDeployment.objects.create(
            source=delivery.platform, repository=delivery.repository, delivery=delivery, ran_at=ran_at,
            environment=environment_named(facts["environment_name"]), **facts)
    updates = {"reported_at": min(found.reported_at, facts["reported_at"])}
    if ran_at is not None and (found.ran_at is None or ran_at < found.ran_at):
        updates["ran_at"] = ran_at
    if facts["status_at"] >= found.status_at and not (delivery.event == "deployment" and found.status != "created"):
        updates.update(status=facts["status"], status_at=facts["status_at"], delivery=delivery)
        if facts["url"]:
            updates["url"] = facts["url"]
    for name in ("artifact", "commit_sha", "deployer_login"):
        if facts[name] and not getattr(found, name):
            updates[name] = facts[name]
    updates["platform_production"] = found.platform_production or facts["platform_production"]
    for name, value in updates.items():
        setattr(found, name, value)
    found.save(update_fields=list(updates))
    return found


def reported(*, actor, environment, artifact: str, source: str, at: datetime) -> ReportedDeployment:
    """A ``deployment-reports/`` call (E2), as the reconciliation reads it."""
    return ReportedDeployment.objects.create(
        source=ReportedDeployment.Source.REPORT, environment_name=environment.slug, environment=environment,
        artifact=artifact[:255], status="reported", deployer_login=actor.username[:255], url=source[:500],
        reported_at=at, status_at=at or timezone.now(), ran_at=at,
    )
