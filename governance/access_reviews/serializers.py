"""Access reviews on the wire (API.md): campaigns, their items, and the decide request. Rendering
and shape checks only; ``services.access_review_item_decide`` decides who may decide what."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import StrictSerializer
from governance.models import AccessReview, AccessReviewItem, RoleAssignment


class ReviewedGrantSerializer(serializers.ModelSerializer):
    """The grant an item asks about, named as clients name things (usernames and slugs)."""

    user = serializers.SlugRelatedField(read_only=True, slug_field="username")
    role = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    team = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    environment = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="slug",
        help_text="Null means every environment, where the role allows it.",
    )

    class Meta:
        model = RoleAssignment
        fields = ["id", "user", "role", "team", "environment", "status", "expires_at", "last_used_at"]
        read_only_fields = fields


class RecommendationSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="RULES.md A2: unused, no_expiry, inactive_user, sod_exception or outlier (more may come)."
    )
    message = serializers.CharField()


class AccessReviewItemSerializer(serializers.ModelSerializer):
    assignment = ReviewedGrantSerializer(read_only=True)
    reviewer = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username",
        help_text="Who is asked to decide; null when nobody could be.",
    )
    recommendations = RecommendationSerializer(many=True, read_only=True)
    decision = serializers.SerializerMethodField()
    decided_by = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username")

    class Meta:
        model = AccessReviewItem
        fields = [
            "id", "review", "assignment", "reviewer", "reviewer_is_security", "due_at", "recommendations",
            "decision", "decided_by", "decided_at", "comment", "reminded_at", "escalated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True, "description": "keep or revoke; null while undecided."})
    def get_decision(self, item) -> str | None:
        return item.decision or None


# ``status`` and ``decision`` are described without an ``enum``: the schema's ``StatusEnum`` and
# ``DecisionEnum`` components already name the grant statuses and approval decisions, and a second
# choice set under either name would make drf-spectacular rename the existing component.


@extend_schema_field({"type": "string", "description": f"One of: {', '.join(AccessReview.Status.values)}."})
class CampaignStatusField(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "description": "keep or revoke."})
class ReviewDecisionField(serializers.ChoiceField):
    pass


class AccessReviewSerializer(serializers.ModelSerializer):
    status = CampaignStatusField(read_only=True, help_text="building (items being created), open or closed.")
    team = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="slug", help_text="Null: every team."
    )
    started_by = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username", help_text="Null when the schedule started it."
    )
    items_count = serializers.IntegerField(read_only=True, help_text="Items the caller sees.")
    undecided_count = serializers.IntegerField(read_only=True, help_text="Of those, the undecided ones.")

    class Meta:
        model = AccessReview
        fields = [
            "id", "name", "period", "team", "status", "undecided_policy", "started_by", "created_at", "due_at",
            "closed_at", "items_count", "undecided_count",
        ]
        read_only_fields = fields


class AccessReviewDetailSerializer(AccessReviewSerializer):
    items = AccessReviewItemSerializer(
        many=True, read_only=True, source="visible_items",
        help_text="The campaign's items the caller sees (all of them for security and audit viewers).",
    )

    class Meta(AccessReviewSerializer.Meta):
        fields = [*AccessReviewSerializer.Meta.fields, "items"]
        read_only_fields = fields


class AccessReviewItemDecideSerializer(StrictSerializer):
    decision = ReviewDecisionField(choices=AccessReviewItem.Decision.choices)
    # Blank is the service's to refuse for a revoke, so the rule (A3) is worded in one place.
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=4000,
        help_text="Required when revoking: why the grant goes.",
    )
