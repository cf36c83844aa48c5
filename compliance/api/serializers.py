"""Alerts on the wire (API.md). Rendering and shape checks only: the views decide who may read and
resolve, ``compliance.alerts.alert_resolve`` does the resolving."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import Alert
from core.api import StrictSerializer


@extend_schema_field({"type": "string", "description": f"One of: {', '.join(Alert.Status.values)}."})
class AlertStatusField(serializers.CharField):
    """Described without an ``enum``: the schema's ``StatusEnum`` component names the grant
    statuses, and a second choice set under ``status`` would make drf-spectacular rename it."""


class AlertSerializer(serializers.ModelSerializer):
    status = AlertStatusField(read_only=True)
    actor = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username", help_text="The user the signal is about, if any."
    )
    resolved_by = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username", help_text="Who resolved it; null while open."
    )

    class Meta:
        model = Alert
        fields = [
            "id", "kind", "severity", "subject", "details", "actor", "environment", "team", "status", "created_at",
            "resolution", "resolved_by", "resolved_at",
        ]
        read_only_fields = fields


class AlertResolveSerializer(StrictSerializer):
    # Blank is the service's to refuse, so the rule is worded in one place.
    resolution = serializers.CharField(
        allow_blank=True, max_length=8000, help_text="What was found and what was done (required)."
    )
