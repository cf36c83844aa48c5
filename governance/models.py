from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from governance import duties

User = settings.AUTH_USER_MODEL


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    members = models.ManyToManyField(User, through="Membership", related_name="teams")
    on_call_reviewers = models.ManyToManyField(User, blank=True, related_name="on_call_for")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        permissions = [(duties.codename(d), f"Duty: {duties.LABELS[d]}") for d in duties.TEAM_DUTIES]

    def __str__(self):
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    is_manager = models.BooleanField(default=False)
    joined_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_unique")]

    def __str__(self):
        return f"{self.user.username} in {self.team.slug}"


class Environment(models.Model):
    class Tier(models.TextChoices):
        DEVELOPMENT = "development"
        STAGING = "staging"
        PRODUCTION = "production"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    order = models.PositiveSmallIntegerField(default=0)
    time_zone = models.CharField(max_length=64, default="UTC")
    history = HistoricalRecords()

    class Meta:
        ordering = ["order", "name"]
        permissions = [(duties.codename(d), f"Duty: {duties.LABELS[d]}") for d in duties.ENVIRONMENT_DUTIES]

    def __str__(self):
        return self.name

    @property
    def is_production(self) -> bool:
        return self.tier == self.Tier.PRODUCTION


class Role(models.Model):
    class Scope(models.TextChoices):
        ENVIRONMENT = "environment", "One environment"
        ENVIRONMENT_OR_ALL = "environment_or_all", "One environment, or all"
        TEAM = "team", "The team"
        GLOBAL = "global", "Global"

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    scope = models.CharField(max_length=24, choices=Scope.choices)
    is_privileged = models.BooleanField(
        default=False, help_text="Grants of this role need a second approver and an expiry (G2, G4)."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def takes_environment(self) -> bool:
        return self.scope in (self.Scope.ENVIRONMENT, self.Scope.ENVIRONMENT_OR_ALL)


class RoleDuty(models.Model):
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="duties")
    duty = models.CharField(max_length=32, choices=duties.CHOICES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "duty"], name="role_duty_unique")]
        indexes = [models.Index(fields=["duty", "role"], name="roleduty_duty_role")]

    def __str__(self):
        return f"{self.role_id}:{self.duty}"


class RoleAssignmentQuerySet(models.QuerySet):
    """"Grant in force", written once (docs/rules.md, "Grants in force"): every duty check,
    permission sync, holder list, portal page, API answer and the gate read ``in_force``."""

    def in_force(self, at=None):
        """Assignments in force at ``at``: active, unexpired, held by an active account. A disabled
        account's grants are in force nowhere, whatever the expiry task has done yet (G5)."""
        return self.standing(at).filter(user__is_active=True)

    def standing(self, at=None):
        """Active and unexpired, whatever the account: what would be in force were the account
        enabled. Access reviews review these (a disabled account's grant is recommended for
        revocation, ``inactive_user``) so that re-enabling an account brings back nothing unreviewed."""
        at = at or timezone.now()
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at), status=RoleAssignment.Status.ACTIVE)

    def open(self, at=None):
        """Active or pending, unexpired: what a new grant for the same person is checked against
        (a duplicate, a conflict, G3) and what leaving a team ends."""
        at = at or timezone.now()
        return self.filter(status__in=[RoleAssignment.Status.ACTIVE, RoleAssignment.Status.PENDING]).exclude(
            expires_at__lte=at)


class RoleAssignment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        REJECTED = "rejected"
        REVOKED = "revoked"
        EXPIRED = "expired"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="role_assignments")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="assignments")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="role_assignments")
    environment = models.ForeignKey(
        Environment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="role_assignments",
        help_text="Empty means every environment, where the role allows it.",
    )
    justification = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    end_reason = models.TextField(blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    sod_exception = models.ForeignKey(
        "SoDException", null=True, blank=True, on_delete=models.PROTECT, related_name="assignments"
    )
    history = HistoricalRecords()

    objects = RoleAssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "status"], name="assignment_user_status"),
            models.Index(fields=["team", "status"], name="assignment_team_status"),
            models.Index(fields=["status", "expires_at"], name="assignment_status_expiry"),
        ]

    def __str__(self):
        where = self.environment.slug if self.environment_id else "all environments"
        return f"#{self.pk} {self.user.username}: {self.role.slug} in {self.team.slug} ({where})"


class ConflictRule(models.Model):
    """Two duties one person may not hold for the same environment of a tier (G3)."""

    duty_a = models.CharField(max_length=32, choices=duties.CHOICES)
    duty_b = models.CharField(max_length=32, choices=duties.CHOICES)
    tier = models.CharField(
        max_length=16, choices=Environment.Tier.choices, blank=True, help_text="Empty means every tier."
    )
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["duty_a", "duty_b", "tier"], name="conflict_rule_unique")]

    def __str__(self):
        return f"{self.duty_a} × {self.duty_b} ({self.tier or 'all tiers'})"


class SoDExceptionQuerySet(models.QuerySet):
    def active(self, at=None):
        at = at or timezone.now()
        return self.filter(status=SoDException.Status.ACTIVE, expires_at__gt=at)


class SoDException(models.Model):
    """A documented, time-boxed permission to hold two conflicting duties (G3)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        REJECTED = "rejected"
        REVOKED = "revoked"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="sod_exceptions")
    duty_a = models.CharField(max_length=32, choices=duties.CHOICES)
    duty_b = models.CharField(max_length=32, choices=duties.CHOICES)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, help_text="Empty means every environment."
    )
    justification = models.TextField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    objects = SoDExceptionQuerySet.as_manager()

    class Meta:
        verbose_name = "SoD exception"
        ordering = ["-created_at"]

    def __str__(self):
        return f"SoD exception #{self.pk}: {self.duty_a} × {self.duty_b}"

    def covers(self, duty_a: str, duty_b: str, environment: Environment, at) -> bool:
        return (
            self.status == self.Status.ACTIVE
            and self.expires_at > at
            and {self.duty_a, self.duty_b} == {duty_a, duty_b}
            and (self.environment_id is None or self.environment_id == environment.pk)
        )


class ApiToken(models.Model):
    """An API key for scripts and CI. Only a SHA-256 of the key is stored; the key acts as its user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.name or 'token'})"

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class AccessReview(models.Model):
    """A campaign: every active grant (of one team, or all) reviewed by a manager (RULES.md A1–A3)."""

    class Status(models.TextChoices):
        BUILDING = "building", "Building items"
        OPEN = "open"
        CLOSED = "closed"

    class UndecidedPolicy(models.TextChoices):
        REVOKE = "revoke", "Revoke undecided grants at close"
        ESCALATE = "escalate", "Keep them open and alert security"

    name = models.CharField(max_length=150)
    period = models.CharField(max_length=32, help_text="The period it covers, e.g. 2026-Q4; one campaign per period and scope.")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="access_reviews")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    undecided_policy = models.CharField(max_length=10, choices=UndecidedPolicy.choices, default=UndecidedPolicy.REVOKE)
    started_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["period", "team"], name="review_once_per_period_team"),
            models.UniqueConstraint(
                fields=["period"], condition=Q(team__isnull=True), name="review_once_per_period_all"
            ),
        ]

    def __str__(self):
        return self.name


class AccessReviewItem(models.Model):
    class Decision(models.TextChoices):
        KEEP = "keep"
        REVOKE = "revoke"

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    assignment = models.ForeignKey(RoleAssignment, on_delete=models.PROTECT, related_name="review_items")
    reviewer = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="access_review_items")
    reviewer_is_security = models.BooleanField(
        default=False, help_text="No manager of the team could review it (they hold the grant), so security does."
    )
    due_at = models.DateTimeField()
    recommendations = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["review", "assignment"], name="review_item_once")]
        indexes = [models.Index(fields=["reviewer", "decision"], name="review_item_reviewer")]

    def __str__(self):
        return f"Review item #{self.pk}"


class ControlChange(models.Model):
    """One change to a control (RULES.md section 8): what it was, what it becomes, who proposed it
    and, for a weakening change, who approved it. Every control change has a row, applied at once
    (strengthening or neutral) or held ``pending`` until a second person decides (K3). Written only
    by ``governance.controls``; the chain carries the same values in its ``control.*`` events."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"

    class Operation(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"

    kind = models.CharField(max_length=64, help_text="The control's kind, e.g. releases.approvalpolicy.")
    operation = models.CharField(max_length=8, choices=Operation.choices)
    target_id = models.CharField(max_length=64, blank=True, help_text="Empty until a proposed creation is applied.")
    target_repr = models.CharField(max_length=255)
    scope = models.JSONField(default=dict, help_text="Environments (slugs), everywhere, team: whose duty decides.")
    subject = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The account the change concerns, who may not approve it.",
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    sealed_after = models.JSONField(
        default=dict, blank=True,
        help_text="Secret values the change applies (a channel's HMAC key): kept to apply, never shown or chained.",
    )
    changed = models.JSONField(default=list, help_text="The fields whose values differ.")
    weakening = models.JSONField(default=list, help_text="Why the change weakens the control: [{field, message}].")
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    proposed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        indexes = [models.Index(fields=["kind", "target_id", "status"], name="control_change_target")]

    def __str__(self):
        return f"Control change #{self.pk}: {self.operation} {self.target_repr}"

    @property
    def is_weakening(self) -> bool:
        return bool(self.weakening)
