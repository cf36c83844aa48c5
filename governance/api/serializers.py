"""Input serializers check the shape of a request; output serializers render. The rules live in
``governance.services``: nothing here decides who may do what."""
from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.api import StrictSerializer
from governance.models import Environment, Role, RoleAssignment, Team


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["slug", "name", "time_zone"]


class EnvironmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ["slug", "name", "tier", "order", "time_zone"]


class RoleSerializer(serializers.ModelSerializer):
    duties = serializers.SlugRelatedField(many=True, read_only=True, slug_field="duty")

    class Meta:
        model = Role
        fields = ["slug", "name", "description", "scope", "is_privileged", "duties"]


class RoleAssignmentSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(read_only=True, slug_field="username")
    role = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    team = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    # allow_null only describes the field as nullable in the schema; rendering gives null either way.
    environment = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="slug",
        help_text="Null means every environment, where the role allows it.",
    )
    requested_by = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username", help_text="Null for a bootstrapped grant."
    )
    approved_by = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username")
    ended_by = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username")

    class Meta:
        model = RoleAssignment
        fields = [
            "id", "user", "role", "team", "environment", "justification", "status", "requested_by",
            "approved_by", "created_at", "approved_at", "expires_at", "ended_at", "ended_by", "end_reason",
            "last_used_at", "sod_exception",
        ]
        read_only_fields = fields


class NameField(serializers.SlugRelatedField):
    """An object named by its username or slug. Only a string is a name, and a NUL character never
    reaches the database (PostgreSQL refuses it with an error, not a miss)."""

    default_error_messages = {"invalid": "Give the name as a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class RoleAssignmentCreateSerializer(StrictSerializer):
    user = NameField(
        slug_field="username", queryset=get_user_model().objects.all(), help_text="Grantee's username.",
        error_messages={"does_not_exist": "No user is named {value}."},
    )
    role = NameField(
        slug_field="slug", queryset=Role.objects.all(), help_text="Role slug.",
        error_messages={"does_not_exist": "No role has the slug {value}."},
    )
    team = NameField(
        slug_field="slug", queryset=Team.objects.all(), help_text="Slug of the team the grant is held in.",
        error_messages={"does_not_exist": "No team has the slug {value}."},
    )
    environment = NameField(
        slug_field="slug",
        queryset=Environment.objects.all(),
        required=False,
        allow_null=True,
        help_text="Environment slug; omit or null for every environment where the role allows it.",
        error_messages={"does_not_exist": "No environment has the slug {value}."},
    )
    # Blank is the service's to refuse, so the rule (G2) is worded in one place.
    justification = serializers.CharField(allow_blank=True, help_text="Why the grant is needed (required).")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Required for privileged grants; at most the configured maximum."
    )


class RoleAssignmentRejectSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RoleAssignmentRevokeSerializer(StrictSerializer):
    reason = serializers.CharField(help_text="Why the grant is revoked.")



