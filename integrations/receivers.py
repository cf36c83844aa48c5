"""Releases announces; integrations signs (releases never imports this app)."""
from django.dispatch import receiver

from integrations import attestations, deployments, gitlab, protection
from integrations.models import Attestation
from releases import signals


@receiver(signals.change_request_approved, dispatch_uid="integrations_attest_approval")
def attest_approval(sender, *, context, at, **kwargs):
    attestations.issue(context, kind=Attestation.Kind.APPROVAL, at=at)


@receiver(signals.deployment_started, dispatch_uid="integrations_attest_deployment")
def attest_deployment(sender, *, deployment, context, at, **kwargs):
    attestations.issue(context, kind=Attestation.Kind.DEPLOYMENT, at=at, deployment=deployment)


@receiver(signals.change_request_decided, dispatch_uid="integrations_answer_waiting_deployments")
def answer_waiting_deployments(sender, *, change_request, at, **kwargs):
    protection.change_decided(change_request, at)


@receiver(signals.deployment_reported, dispatch_uid="integrations_deployment_reported")
def deployment_reported(sender, *, actor, environment, artifact, source, at, **kwargs):
    deployments.reported(actor=actor, environment=environment, artifact=artifact, source=source, at=at)


@receiver(signals.change_request_decided, dispatch_uid="integrations_gitlab_change_decided")
def gitlab_change_decided(sender, *, change_request, **kwargs):
    gitlab.change_decided(change_request)
