"""What the identity provider tells us about people and groups (SCIM), and how its groups map to roles."""
from django.conf import settings
from django.db import models
from django.utils import timezone

User = settings.AUTH_USER_MODEL


class Person(models.Model):
    """The provider's side of an account: its SCIM id and externalId, its OIDC subject, its manager
    (who inherits its open review items when it leaves), and when the provider deactivated it."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="person")
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    display_name = models.CharField(max_length=255, blank=True)
    email_type = models.CharField(max_length=32, blank=True, help_text="The e-mail's SCIM type (work, home, ...).")
    oidc_issuer = models.CharField(max_length=255, blank=True)
    oidc_subject = models.CharField(max_length=255, blank=True)
    manager = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    provisioned = models.BooleanField(default=False, help_text="Created or updated by the provider (SCIM).")
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_by = models.CharField(max_length=32, blank=True, help_text="scim or admin.")
    scim_deleted = models.BooleanField(default=False, help_text="The provider sent DELETE: disabled, and gone from SCIM.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["oidc_issuer", "oidc_subject"], condition=~models.Q(oidc_subject=""),
                                    name="person_one_account_per_subject"),
        ]

    def __str__(self):
        return f"person {self.user_id}"


class ScimGroup(models.Model):
    display_name = models.CharField(max_length=255, unique=True)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(User, blank=True, related_name="scim_groups")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.display_name


class GroupRoleMapping(models.Model):
    """Membership of ``group`` (by its display name, as the provider pushes it) means ``role`` in
    ``team`` (and ``environment``), granted through the grant service like any other grant.

    A control (identity.controls): added, changed or switched on only with a second person's
    approval, because it hands out a role; switched off (``is_active``) at once. Never deleted:
    the grants it made point at it."""

    group_name = models.CharField(max_length=255, db_index=True)
    role = models.ForeignKey("governance.Role", on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("governance.Team", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("governance.Environment", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    is_active = models.BooleanField(default=True, help_text="Off: the group's members are no longer granted the role.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group_name", "role", "team", "environment"],
                                               name="group_mapping_once")]

    def __str__(self):
        where = f" in {self.environment.slug}" if self.environment_id else ""
        return f"{self.group_name} -> {self.role.slug} in {self.team.slug}{where}"


class GroupGrant(models.Model):
    """A grant made because of a group push: removed from the group, the grant is revoked."""

    mapping = models.ForeignKey(GroupRoleMapping, on_delete=models.PROTECT, related_name="grants")
    assignment = models.OneToOneField("governance.RoleAssignment", on_delete=models.PROTECT, related_name="+")

    def __str__(self):
        return f"grant {self.assignment_id} from {self.mapping.group_name}"


class ProvisioningCredential(models.Model):
    """The SCIM bearer token: an API key (governance.ApiToken: hashed, expiring, revocable, audited)
    of a service account, marked here as allowed to provision."""

    name = models.CharField(max_length=100, unique=True)
    token = models.OneToOneField("governance.ApiToken", on_delete=models.PROTECT, related_name="provisioning")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name
