"""Input serializers check the shape of a request; output serializers render. The rules live in
``releases.services`` and ``releases.policy``: nothing here decides who may do what."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import StrictSerializer, ReasonSerializer
from governance.api.serializers import NameField
from governance.models import Environment, Team
from releases.models import Approval, ChangeRequest, Deployment

# --- Output --------------------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "string", "format": "uri"}, {"type": "string", "maxLength": 0}]})
class OptionalLinkField(serializers.CharField):
    """A link the client may leave out: an http(s) URL or the empty string. Described as such, so a
    response with no link still matches the schema (a plain ``format: uri`` refuses "")."""


class ApprovalSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username",
        help_text="Null for an automatic approval by the policy (C9).",
    )

    class Meta:
        model = Approval
        fields = ["id", "reviewer", "decision", "revision", "artifact", "comment", "via", "is_security", "is_on_call",
                  "stale", "created_at"]
        read_only_fields = fields


CHANGE_FORM_FIELDS = ("implementation_plan", "backout_plan", "risk_impact", "planned_start", "planned_end",
                      "affected_service", "source_url")


class ChangeFormFields(StrictSerializer):
    """The rest of a change form (ServiceNow's): plans, risk and impact, planned window, affected
    service, the pull request or commits. Optional; editing any under review is a new revision (C3)."""

    implementation_plan = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    backout_plan = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    risk_impact = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                        help_text="What could break, for whom, and how badly.")
    planned_start = serializers.DateTimeField(required=False, allow_null=True, help_text="Planned window: start.")
    planned_end = serializers.DateTimeField(required=False, allow_null=True, help_text="Planned window: end.")
    affected_service = serializers.CharField(required=False, allow_blank=True, max_length=200)
    source_url = serializers.URLField(required=False, allow_blank=True, max_length=500,
                                      help_text="The pull request or the commits.")


class ChangeRequestSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    environment = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    author = serializers.SlugRelatedField(read_only=True, slug_field="username")
    contributors = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")
    requested_reviewers = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="username",
        help_text="Whom the author asked to review: a request, not a rule; anyone eligible may approve.",
    )
    approvals = ApprovalSerializer(many=True, read_only=True, help_text="Every decision, stale ones included.")
    pir_by = serializers.SlugRelatedField(
        read_only=True, allow_null=True, slug_field="username", help_text="Null until the review is done (C10)."
    )
    ticket_url = OptionalLinkField(read_only=True)
    source_url = OptionalLinkField(read_only=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id", "title", "description", "team", "environment", "change_type", "risk", "emergency_reason", "artifact",
            "revision", "state", "author", "contributors", "requested_reviewers", "ticket_url", *CHANGE_FORM_FIELDS, "approvals",
            "created_at", "submitted_at",
            "approved_at", "deployed_at", "closed_at", "close_reason", "pir_due_at", "pir_by", "pir_at",
        ]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(read_only=True, slug_field="slug")
    deployer = serializers.SlugRelatedField(read_only=True, slug_field="username")
    pipeline_url = OptionalLinkField(read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id", "change_request", "environment", "artifact", "revision", "state", "deployer", "pipeline_url",
            "started_at", "finished_at", "notes", "rolled_back_at", "rollback_reason",
        ]
        read_only_fields = fields


class ApprovalCountSerializer(serializers.Serializer):
    required = serializers.IntegerField()
    valid = serializers.IntegerField(help_text="Approvals of the current revision that still count.")
    expired = serializers.IntegerField(help_text="Approvals of the current revision older than the TTL.")


class SecurityApprovalCountSerializer(serializers.Serializer):
    required = serializers.IntegerField()
    valid = serializers.IntegerField()


class TeamReviewerSerializer(serializers.Serializer):
    required = serializers.BooleanField()
    present = serializers.BooleanField()


class IndependentApprovalSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Production: always (RULES.md K4), whatever the policy says.")
    present = serializers.BooleanField(
        help_text="A valid approval by a person who neither wrote nor ever contributed to the change."
    )


class PriorEnvironmentSerializer(serializers.Serializer):
    environment = serializers.CharField(help_text="Slug of the environment the artifact must reach first.")
    deployed = serializers.BooleanField()


class RequirementsSerializer(serializers.Serializer):
    approvals = ApprovalCountSerializer()
    security_approvals = SecurityApprovalCountSerializer()
    team_reviewer = TeamReviewerSerializer()
    independent_approval = IndependentApprovalSerializer()
    standard_template = serializers.CharField(
        allow_null=True, help_text="The standard-change template that makes this change standard now (C9), if any."
    )
    approval_ttl_hours = serializers.IntegerField(allow_null=True)
    approvals_met = serializers.BooleanField()
    interactive_signoff_required = serializers.BooleanField()
    freeze_windows = serializers.ListField(child=serializers.CharField(), help_text="Names of active freezes.")
    in_deploy_window = serializers.BooleanField()
    prior_environment = PriorEnvironmentSerializer(allow_null=True)


class GateSerializer(serializers.Serializer):
    """The policy's answer for the caller (RULES.md section 3): every reason that applies."""

    allowed = serializers.BooleanField()
    action = serializers.CharField()
    reasons = ReasonSerializer(many=True)
    requirements = RequirementsSerializer()


# --- Input ---------------------------------------------------------------------------------------


class Usernames(serializers.ListField):
    child = serializers.CharField(max_length=150)

    def run_child_validation(self, data):
        # API.md's 400 body is {field: [message, …]}: flatten DRF's {index: [message]} for list items.
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(
                [f"Item {index}: {message}" for index, messages in exc.detail.items() for message in messages]
            ) from None


REQUESTED_REVIEWERS_HELP = (
    "Usernames of the people asked to review: holders of approve or security_approve for the environment, "
    "neither the author nor a contributor of any revision. A request, not a rule: it starts no new revision "
    "and anyone eligible may still approve."
)


class ChangeRequestCreateSerializer(ChangeFormFields):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    team = NameField(
        slug_field="slug", queryset=Team.objects.all(), help_text="Team slug.",
        error_messages={"does_not_exist": "No team has the slug {value}."},
    )
    environment = NameField(
        slug_field="slug", queryset=Environment.objects.all(), help_text="Environment slug.",
        error_messages={"does_not_exist": "No environment has the slug {value}."},
    )
    change_type = serializers.ChoiceField(choices=ChangeRequest.ChangeType.choices, default="normal")
    risk = serializers.ChoiceField(choices=ChangeRequest.Risk.choices, default="medium")
    artifact = serializers.CharField(
        max_length=255, help_text="What is deployed: an image digest, a commit, a version."
    )
    contributors = Usernames(
        required=False, default=list,
        help_text="Usernames of the commit authors, active members of the team; none of them may approve (C2).",
    )
    requested_reviewers = Usernames(
        required=False, default=list, help_text=REQUESTED_REVIEWERS_HELP,
    )
    ticket_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=500)
    emergency_reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required for an emergency change: why it cannot wait."
    )


class ChangeRequestUpdateSerializer(ChangeFormFields):
    """Any change to these on a pending or approved request is a new revision (C3)."""

    title = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    artifact = serializers.CharField(required=False, max_length=255)
    contributors = Usernames(required=False)
    requested_reviewers = Usernames(required=False, help_text=REQUESTED_REVIEWERS_HELP)
    ticket_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    emergency_reason = serializers.CharField(required=False, allow_blank=True)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs:
            raise serializers.ValidationError(f"Send at least one of {', '.join(self.fields)}.")
        return attrs


class DecisionSerializer(StrictSerializer):
    revision = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1,
        help_text="The revision you reviewed; a change that has moved on since answers 409 `revision_changed`.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RequestChangesSerializer(DecisionSerializer):
    comment = serializers.CharField(help_text="What the author should change.")


class WithdrawSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Why the change is taken out of review.")


class ReReviewSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class CancelSerializer(StrictSerializer):
    reason = serializers.CharField(help_text="Why the change is withdrawn.")


class GateQuerySerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "deploy"])


class DeploymentStartSerializer(StrictSerializer):
    pipeline_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=500, help_text="The CI run doing the deployment."
    )


class DeploymentFinishSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=[Deployment.State.SUCCEEDED, Deployment.State.FAILED])
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class RollbackSerializer(StrictSerializer):
    reason = serializers.CharField(help_text="Why the deployment is rolled back.")


class DeploymentReportSerializer(StrictSerializer):
    environment = NameField(
        slug_field="slug", queryset=Environment.objects.all(), help_text="Environment slug.",
        error_messages={"does_not_exist": "No environment has the slug {value}."},
    )
    artifact = serializers.CharField(max_length=255, help_text="The artifact the deploy tool put there.")
    source = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                   help_text="Which tool or pipeline reports it.")


class DeploymentReportResultSerializer(serializers.Serializer):
    registered = serializers.BooleanField(help_text="An approved change request covers this artifact there.")
    change_request = serializers.IntegerField(allow_null=True)
    alert = serializers.IntegerField(allow_null=True, help_text="The unregistered_deployment alert raised, if any.")
