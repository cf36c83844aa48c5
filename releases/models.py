from fnmatch import fnmatchcase

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from governance.models import Environment, Team
from releases.fields import CanonicalJSONField

User = settings.AUTH_USER_MODEL


class ApprovalPolicy(models.Model):
    """What an environment asks of a change before it may be deployed there (RULES.md section 3)."""

    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="approval_policy")
    min_approvals = models.PositiveSmallIntegerField(default=1)
    min_security_approvals = models.PositiveSmallIntegerField(
        default=0, help_text="Security approvals every change needs."
    )
    high_risk_security_approvals = models.PositiveSmallIntegerField(
        default=0, help_text="Security approvals a high-risk change needs (the larger of the two applies)."
    )
    team_reviewer_required = models.BooleanField(
        default=False, help_text="At least one approver must be a member of the change's team."
    )
    approval_ttl_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Approvals older than this no longer count. Empty: they do not expire."
    )
    allow_auto_approve_standard = models.BooleanField(
        default=False, help_text="Standard, low-risk changes are approved by the system on submit."
    )
    require_prior_environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The same artifact must have been deployed successfully there first.",
    )
    deploy_weekdays = models.CharField(
        max_length=20, blank=True, help_text="Comma-separated ISO weekdays (1=Monday … 7=Sunday). Empty: any day."
    )
    deploy_window_start = models.TimeField(null=True, blank=True, help_text="Local time in the environment's zone.")
    deploy_window_end = models.TimeField(null=True, blank=True)
    emergency_min_approvals = models.PositiveSmallIntegerField(default=1)
    pir_due_hours = models.PositiveIntegerField(default=48)
    require_interactive_signoff = models.BooleanField(
        default=False, help_text="Approvals only from the portal's sign-off form, with the password re-entered."
    )
    review_sla_minutes = models.PositiveIntegerField(default=240)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "approval policies"

    def __str__(self):
        return f"Policy for {self.environment.slug}"

    def weekdays(self) -> set[int]:
        return {int(d) for d in self.deploy_weekdays.split(",") if d.strip().isdigit()}


class FreezeWindow(models.Model):
    """A period in which deployments to its environments are blocked (C6)."""

    name = models.CharField(max_length=100)
    environments = models.ManyToManyField(Environment, related_name="freeze_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="freeze_span")]

    def __str__(self):
        return self.name

    def is_active(self, at) -> bool:
        return self.starts_at <= at < self.ends_at


class ChangeRequest(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft"
        PENDING = "pending"
        CHANGES_REQUESTED = "changes_requested"
        APPROVED = "approved"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        DEPLOYING = "deploying"
        DEPLOYED = "deployed"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    class ChangeType(models.TextChoices):
        STANDARD = "standard"
        NORMAL = "normal"
        EMERGENCY = "emergency"

    class Risk(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="change_requests")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="change_requests")
    change_type = models.CharField(max_length=16, choices=ChangeType.choices, default=ChangeType.NORMAL)
    risk = models.CharField(max_length=8, choices=Risk.choices, default=Risk.MEDIUM)
    artifact = models.CharField(max_length=255, help_text="What is deployed: an image digest, a commit, a version.")
    revision = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT, db_index=True)
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="authored_changes")
    contributors = models.ManyToManyField(User, blank=True, related_name="contributed_changes")
    requested_reviewers = models.ManyToManyField(
        User, blank=True, related_name="review_requests",
        help_text="Whom the author asks to review (issue 18): a request, not a rule; anyone eligible may approve.",
    )
    ticket_url = models.URLField(blank=True, max_length=500)
    # The rest of a change form (ServiceNow's change request): what the reviewer reads besides the
    # description. Editing any of it under review is a new revision (C3).
    implementation_plan = models.TextField(blank=True, help_text="How the change is carried out, step by step.")
    backout_plan = models.TextField(blank=True, help_text="How the change is undone if it goes wrong.")
    risk_impact = models.TextField(blank=True, help_text="What could break, for whom, and how badly.")
    planned_start = models.DateTimeField(null=True, blank=True, help_text="Planned window: start (UTC).")
    planned_end = models.DateTimeField(null=True, blank=True, help_text="Planned window: end (UTC).")
    affected_service = models.CharField(max_length=200, blank=True, help_text="The service the change touches.")
    source_url = models.URLField(blank=True, max_length=500, help_text="The pull request or commits.")
    emergency_reason = models.TextField(
        blank=True, help_text="Why this cannot wait for the normal review (required of an emergency change, C10)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    pir_due_at = models.DateTimeField(null=True, blank=True)
    pir_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pir_at = models.DateTimeField(null=True, blank=True)
    pir_notes = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True, help_text="Reviewers reminded (E1: past the SLA).")
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="Managers alerted (E1: past twice the SLA).")
    pir_alerted_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "state"], name="cr_env_state"),
            models.Index(fields=["team", "state"], name="cr_team_state"),
            models.Index(fields=["author", "state"], name="cr_author_state"),
            models.Index(fields=["artifact", "environment"], name="cr_artifact_env"),
            # The portal's orders (issue 6, EXPLAIN at `large`): newest first (the default ordering:
            # "recent" on the dashboard, the API list), for everyone and within a team, and a team's
            # pending changes by submission (the review queue).
            models.Index(fields=["created_at", "id"], name="cr_created"),
            models.Index(fields=["team", "created_at", "id"], name="cr_team_created"),
            models.Index(fields=["team", "state", "submitted_at", "id"], name="cr_team_state_submitted"),
        ]

    def __str__(self):
        return f"CR-{self.pk}: {self.title}"

    @property
    def is_emergency(self) -> bool:
        return self.change_type == self.ChangeType.EMERGENCY


RISK_ORDER = {risk: rank for rank, risk in enumerate(ChangeRequest.Risk.values)}


class RevisionContributor(models.Model):
    """Someone listed as a contributor of a change while it was at ``revision``. Rows are never
    removed: whoever was ever listed stays barred from approving, deploying and reviewing the change
    (C2, C5, C10), whatever later revisions list."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="contributor_history")
    revision = models.PositiveIntegerField()
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    listed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["change_request", "revision", "id"]
        constraints = [
            models.UniqueConstraint(fields=["change_request", "revision", "user"], name="contributor_once_per_revision")
        ]
        indexes = [models.Index(fields=["user", "change_request"], name="contributor_user_change")]

    def __str__(self):
        return f"{self.user_id} contributed to r{self.revision} of CR-{self.change_request_id}"


class StandardChangeTemplate(models.Model):
    """A pre-approved kind of change (C9): a change is standard only while an active template of its
    environment, not yet expired, covers its risk and its artifact."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, help_text="What kind of change this is, and why it is safe.")
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="standard_change_templates"
    )
    max_risk = models.CharField(
        max_length=8, choices=ChangeRequest.Risk.choices, default=ChangeRequest.Risk.LOW,
        help_text="The highest risk a change it covers may declare.",
    )
    artifact_pattern = models.CharField(
        max_length=255,
        help_text="Shell-style pattern the artifact must match, starting with a fixed prefix "
        "(e.g. registry.example.com/payments-api@sha256:*).",
    )
    expires_at = models.DateTimeField(help_text="The template covers no change from this moment on.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["environment", "name"]
        indexes = [models.Index(fields=["environment", "active", "expires_at"], name="template_env_active")]

    def __str__(self):
        return self.name

    def in_force(self, at) -> bool:
        return self.active and at < self.expires_at

    def covers(self, change_request: ChangeRequest, at) -> bool:
        return (
            self.in_force(at)
            and self.environment_id == change_request.environment_id
            and RISK_ORDER[change_request.risk] <= RISK_ORDER[self.max_risk]
            and fnmatchcase(change_request.artifact, self.artifact_pattern)
        )


class Approval(models.Model):
    """One reviewer's decision on one revision of a change (C2, C3). System approvals have no reviewer."""

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        CHANGES_REQUESTED = "changes_requested"  # non-final: the author revises and resubmits

    class Via(models.TextChoices):
        PORTAL = "portal", "Portal sign-off (password re-entered)"
        API = "api", "API"
        AUTO = "auto", "Automatic (policy)"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    reviewer = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    revision = models.PositiveIntegerField()
    artifact = models.CharField(max_length=255)
    comment = models.TextField(blank=True)
    via = models.CharField(max_length=8, choices=Via.choices)
    is_security = models.BooleanField(default=False, help_text="The reviewer held security_approve when deciding.")
    is_team_member = models.BooleanField(default=False, help_text="The reviewer was in the change's team.")
    is_on_call = models.BooleanField(
        default=False, help_text="The reviewer was an on-call reviewer of the change's team (C10)."
    )
    stale = models.BooleanField(default=False, help_text="A newer revision dismissed this decision.")
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "revision", "reviewer"],
                condition=Q(reviewer__isnull=False),
                name="approval_once_per_revision",
            )
        ]

    def __str__(self):
        return f"{self.decision} r{self.revision} of CR-{self.change_request_id}"


class Deployment(models.Model):
    class State(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    artifact = models.CharField(max_length=255)
    revision = models.PositiveIntegerField()
    deployer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="deployments")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    pipeline_url = models.URLField(blank=True, max_length=500)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rollback_reason = models.TextField(blank=True)
    decision = CanonicalJSONField(
        null=True, blank=True, editable=False,
        help_text="The policy engine's decision when the deployment started (releases.decisions), stored as "
        "canonical JSON text. Empty: started before decisions were recorded, or written around the services.",
    )
    history = HistoricalRecords(excluded_fields=["decision"])  # written once, never changed

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request"], condition=Q(state="running"), name="one_running_deployment"
            )
        ]
        indexes = [models.Index(fields=["environment", "artifact", "state"], name="deploy_env_artifact")]

    def __str__(self):
        return f"Deployment #{self.pk} of CR-{self.change_request_id}"
