from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.models import Environment, Team
from releases.models import ChangeRequest, Deployment

User = settings.AUTH_USER_MODEL


class Attestation(models.Model):
    """A signed in-toto Statement about one production change (issue 16, item 4): issued when the
    change is approved and again when its deployment starts. Never edited: a later event issues a
    new one, and ``GET change-requests/{id}/attestation/`` serves the newest."""

    class Kind(models.TextChoices):
        APPROVAL = "approval"
        DEPLOYMENT = "deployment"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="attestations")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    revision = models.PositiveIntegerField()
    subject_name = models.CharField(max_length=255, blank=True)
    subject_digest = models.CharField(max_length=64, help_text="SHA-256 of the artifact, hex.")
    envelope = models.JSONField(help_text="The DSSE envelope, exactly as served.")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["change_request", "issued_at"], name="attestation_change_issued")]

    def __str__(self):
        return f"{self.kind} attestation of CR-{self.change_request_id} r{self.revision}"


class LinkedRepository(models.Model):
    """A source repository whose webhooks Countersign accepts, linked to the team whose changes it
    holds (issue 16, item 1). A governed control (``integrations.controls``): who links a repository
    and its secret decides whose commits can bar whom."""

    class Platform(models.TextChoices):
        GITHUB = "github", "GitHub"
        GITLAB = "gitlab", "GitLab"

    platform = models.CharField(max_length=16, choices=Platform.choices)
    full_name = models.CharField(
        max_length=255, help_text="owner/name on GitHub, the project's path with namespace on GitLab."
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="linked_repositories")
    webhook_secret = models.CharField(
        max_length=255, help_text="GitHub's webhook secret (HMAC key), or GitLab's secret token."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "linked repositories"
        ordering = ["platform", "full_name"]
        constraints = [models.UniqueConstraint(fields=["platform", "full_name"], name="repository_once_per_platform")]

    def __str__(self):
        return f"{self.platform}:{self.full_name}"


class PlatformAccount(models.Model):
    """A person's account on a source platform: how commits and pull requests name them. A governed
    control: mapping a login to someone decides whom their code bars."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="platform_accounts")
    platform = models.CharField(max_length=16, choices=LinkedRepository.Platform.choices)
    login = models.CharField(max_length=100, help_text="The GitHub login or GitLab username.")

    class Meta:
        ordering = ["platform", "login"]
        constraints = [models.UniqueConstraint(fields=["platform", "login"], name="platform_login_once")]

    def __str__(self):
        return f"{self.platform}:{self.login}"


class WebhookDelivery(models.Model):
    """One delivery received from a platform, stored once (by its delivery id) and worked on in the
    worker through the outbox."""

    platform = models.CharField(max_length=16, choices=LinkedRepository.Platform.choices)
    delivery_id = models.CharField(max_length=100)
    event = models.CharField(max_length=64)
    repository = models.ForeignKey(LinkedRepository, on_delete=models.PROTECT, related_name="deliveries")
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["platform", "delivery_id"], name="delivery_once")]

    def __str__(self):
        return f"{self.platform} {self.event} {self.delivery_id}"


class SourceLink(models.Model):
    """A change request's pull/merge request or commit (by URL or by sha)."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="source_links")
    repository = models.ForeignKey(LinkedRepository, on_delete=models.PROTECT, related_name="links")
    pull_request = models.PositiveIntegerField(null=True, blank=True, help_text="PR number or MR iid.")
    commit_sha = models.CharField(max_length=64, blank=True)
    head_ref = models.CharField(max_length=255, blank=True, help_text="The PR's branch, learnt from its events.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["repository", "pull_request"], name="sourcelink_repo_pr"),
                   models.Index(fields=["repository", "commit_sha"], name="sourcelink_repo_sha")]

    def __str__(self):
        return f"CR-{self.change_request_id} -> {'#' + str(self.pull_request) if self.pull_request else self.commit_sha}"


class LearntContributor(models.Model):
    """Someone the source says worked on a change: a PR author, a commit's author or committer, a
    ``Co-authored-by`` trailer, a pusher. Never removed (a force-push launders nobody); ``user`` is
    empty for an identity no account matches, shown rather than dropped."""

    class Source(models.TextChoices):
        PR_AUTHOR = "pr_author"
        COMMIT_AUTHOR = "commit_author"
        COMMITTER = "committer"
        CO_AUTHOR = "co_author"
        PUSHER = "pusher"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="learnt_contributors")
    revision = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=Source.choices)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    login = models.CharField(max_length=100, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="contributors")
    learnt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["change_request", "learnt_at", "id"]
        constraints = [models.UniqueConstraint(
            fields=["change_request", "source", "email", "login", "commit_sha"], name="learnt_once")]

    def __str__(self):
        return f"{self.source} {self.login or self.email or self.name} of CR-{self.change_request_id}"


class ProtectionRequest(models.Model):
    """A GitHub deployment job waiting on an environment whose custom deployment protection rule is
    Countersign (issue 16, item 2): what GitHub asked (one ``deployment_protection_rule`` delivery),
    what Countersign found and what it answered. ``waiting`` until approved or rejected; a waiting
    request is answered again whenever its change request is decided."""

    class State(models.TextChoices):
        WAITING = "waiting"
        APPROVED = "approved"
        REJECTED = "rejected"

    delivery = models.OneToOneField(WebhookDelivery, on_delete=models.PROTECT, related_name="protection_request")
    repository = models.ForeignKey(LinkedRepository, on_delete=models.PROTECT, related_name="protection_requests")
    environment_name = models.CharField(max_length=255, help_text="The GitHub environment the job waits on.")
    environment = models.ForeignKey(Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sha = models.CharField(max_length=64, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    callback_url = models.CharField(max_length=1000, help_text="The event's deployment_callback_url.")
    installation_id = models.BigIntegerField(null=True, blank=True)
    actor_login = models.CharField(max_length=100, blank=True, help_text="The workflow's actor (the event's sender).")
    deployer = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    change_request = models.ForeignKey(ChangeRequest, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="protection_requests")
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    reasons = models.JSONField(default=list, blank=True, help_text="The reason codes of the last answer.")
    last_comment = models.TextField(blank=True, help_text="The comment last posted to GitHub.")
    answered_at = models.DateTimeField(null=True, blank=True, help_text="When GitHub last took an answer.")
    failures = models.PositiveIntegerField(default=0, help_text="Answers GitHub did not take, in a row.")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["change_request", "state"], name="protection_change_state")]

    def __str__(self):
        return f"{self.repository.full_name} {self.environment_name} {self.sha[:12]} ({self.state})"


class ReportedDeployment(models.Model):
    """A deployment a platform or a deploy tool says happened (issue 16, item 5): a GitHub
    ``deployment`` / ``deployment_status`` event, a GitLab ``Deployment Hook``, or a
    ``deployment-reports/`` call. One row per platform deployment, its status the latest reported.
    Which change request it belongs to is not stored: ``integrations.reconciliation`` matches it
    when asked, so a change linked later still reconciles."""

    class Source(models.TextChoices):
        GITHUB = "github", "GitHub"
        GITLAB = "gitlab", "GitLab"
        REPORT = "report", "deployment-reports/"

    source = models.CharField(max_length=16, choices=Source.choices)
    repository = models.ForeignKey(LinkedRepository, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="reported_deployments")
    external_id = models.CharField(max_length=100, blank=True, help_text="The platform's deployment id.")
    environment_name = models.CharField(max_length=255, help_text="The environment as the platform names it.")
    environment = models.ForeignKey(Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                    help_text="The Countersign environment of that slug, if any.")
    platform_production = models.BooleanField(
        default=False, help_text="The platform itself calls the environment production.")
    commit_sha = models.CharField(max_length=64, blank=True)
    artifact = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=32, blank=True, help_text="The platform's latest status.")
    deployer_login = models.CharField(max_length=255, blank=True)
    url = models.CharField(max_length=500, blank=True)
    reported_at = models.DateTimeField(help_text="When it was first reported (places it in a period).")
    status_at = models.DateTimeField()
    ran_at = models.DateTimeField(null=True, blank=True, help_text="When it was first reported running or done "
                                  "(the time reconciliation judges it at; empty: when it was reported).")
    delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["reported_at", "id"]
        indexes = [models.Index(fields=["reported_at", "id"], name="reported_deployment_at")]
        constraints = [models.UniqueConstraint(
            fields=["source", "repository", "external_id"], condition=~models.Q(external_id=""),
            name="reported_deployment_once")]

    def __str__(self):
        return f"{self.source} deployment {self.external_id or self.pk} to {self.environment_name}"


class GitLabDeploymentApproval(models.Model):
    """Countersign's answer to one GitLab deployment waiting for approval (issue 16, item 3): the
    last answer sent through GitLab's deployment approval API, with its reasons, and whether the
    deployment still waits (a later decision on the change evaluates it again)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    reported_deployment = models.OneToOneField(ReportedDeployment, on_delete=models.PROTECT,
                                               related_name="gitlab_approval")
    project_id = models.PositiveBigIntegerField(help_text="GitLab's project id.")
    deployment_id = models.PositiveBigIntegerField(help_text="GitLab's deployment id.")
    deployer_username = models.CharField(max_length=255, blank=True)
    deployer_email = models.CharField(max_length=255, blank=True)
    change_request = models.ForeignKey(ChangeRequest, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+", help_text="The change the last answer was about.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING,
                              help_text="The last answer sent to GitLab (pending: none yet).")
    comment = models.TextField(blank=True)
    reasons = models.JSONField(default=list, blank=True)
    waiting = models.BooleanField(default=True, help_text="GitLab still holds the deployment for an answer.")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["waiting"], name="gitlab_approval_waiting")]

    def __str__(self):
        return f"GitLab deployment {self.deployment_id}: {self.status}"
