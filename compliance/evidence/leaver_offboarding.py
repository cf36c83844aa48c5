"""The SOX bundle's leavers off-boarding dataset (issue 17, item 5): "did leavers lose access on
their last day?", answered from the deactivation events the identity provider (SCIM) or an
administrator caused (``account.deactivated``, identity.services.leavers).

One row per thing: the deactivation itself (when the provider disabled the person), each grant and
API key they held then and when it ended, and every action they took after it (which must be none).
"""
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from compliance.evidence.datasets import Context, Dataset
from compliance.evidence.writer import iso
from governance.models import ApiToken, RoleAssignment

# Access must end the day the person leaves.
SAME_DAY = timedelta(days=1)
OPEN = (RoleAssignment.Status.ACTIVE, RoleAssignment.Status.PENDING)


def _lag(deactivated_at, ended_at) -> int | None:
    return None if ended_at is None else max(int((ended_at - deactivated_at).total_seconds()), 0)


def _ending_findings(deactivated_at, ended_at, still_open: bool) -> list[str]:
    if still_open:
        return ["access_not_ended"]
    if ended_at is not None and ended_at - deactivated_at > SAME_DAY:
        return ["ended_late"]
    return []


def offboarding_rows(ctx: Context) -> list[dict]:
    now = timezone.now()
    rows = []
    deactivations = (AuditEvent.objects.filter(action="account.deactivated", created_at__gte=ctx.start,
                                               created_at__lt=ctx.end)
                     .order_by("sequence").values_list("target_id", "created_at", "data"))
    for target_id, deactivated_at, data in deactivations:
        user, user_id = data.get("user"), int(target_id) if str(target_id).isdigit() else None
        base = {"user": user, "deactivated_at": iso(deactivated_at), "source": data.get("source", "")}
        rows.append({**base, "kind": "deactivation", "item": f"account {user} disabled ({data.get('source', '')})",
                     "ended_at": iso(deactivated_at), "seconds_after": 0, "findings": []})
        grants = (RoleAssignment.objects.filter(user_id=user_id, created_at__lte=deactivated_at)
                  .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=deactivated_at))
                  .select_related("role", "environment", "team").order_by("pk"))
        for grant in grants:
            still_open = grant.status in OPEN and grant.ended_at is None
            where = grant.environment.slug if grant.environment_id else "all"
            rows.append({**base, "kind": "grant",
                         "item": f"grant #{grant.pk} {grant.role.slug} in {where} (team {grant.team.slug}), {grant.status}",
                         "ended_at": iso(grant.ended_at), "seconds_after": _lag(deactivated_at, grant.ended_at),
                         "findings": _ending_findings(deactivated_at, grant.ended_at, still_open)})
        keys = (ApiToken.objects.filter(user_id=user_id, created_at__lte=deactivated_at)
                .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gte=deactivated_at))
                .exclude(revoked_at__isnull=True, expires_at__lte=deactivated_at).order_by("pk"))
        for key in keys:
            ended = key.revoked_at or (key.expires_at if key.expires_at and key.expires_at <= now else None)
            still_open = ended is None
            rows.append({**base, "kind": "api_key", "item": f"API key {key.prefix}… ({key.name or 'unnamed'})",
                         "ended_at": iso(ended), "seconds_after": _lag(deactivated_at, ended),
                         "findings": _ending_findings(deactivated_at, ended, still_open)})
        after = (AuditEvent.objects.filter(actor_id=user_id, created_at__gt=deactivated_at)
                 .order_by("sequence").values_list("sequence", "action", "created_at"))
        for sequence, action, created_at in after:
            rows.append({**base, "kind": "action_after", "item": f"event #{sequence} {action}",
                         "ended_at": iso(created_at), "seconds_after": _lag(deactivated_at, created_at),
                         "findings": ["acted_after_deactivation"]})
    return rows


LEAVER_OFFBOARDING = Dataset(
    name="leaver_offboarding",
    title="Leavers' off-boarding: when the identity provider disabled them, when each grant and key ended, "
          "and what they did after",
    population="Every account.deactivated event in the period (SCIM active=false or DELETE from the identity "
               "provider, or a deactivation in the admin), and for each: the grants (in force or pending) and API "
               "keys the person held at that moment and when each ended, and every audit event the person caused "
               "after it. Read from the audit chain and the grant and key records; one row per thing.",
    columns=(
        ("user", "The leaver."),
        ("deactivated_at", "When the account was disabled (the provider's deactivation as Countersign received it)."),
        ("source", "scim (the identity provider) or admin."),
        ("kind", "deactivation, grant, api_key, or action_after (something the person did after it)."),
        ("item", "What the row is about."),
        ("ended_at", "When it ended (for action_after: when the person acted). Empty: it has not ended."),
        ("seconds_after", "Seconds between the deactivation and ended_at."),
        ("findings", "access_not_ended: a grant or key still open; ended_late: ended more than a day after the "
                     "deactivation; acted_after_deactivation: the person acted after being disabled."),
    ),
    queryset=None,
    rows=lambda ctx, batch: batch,
    computed=offboarding_rows,
    exceptions={
        "access_not_ended": lambda r: "access_not_ended" in r["findings"],
        "ended_late": lambda r: "ended_late" in r["findings"],
        "acted_after_deactivation": lambda r: "acted_after_deactivation" in r["findings"],
    },
)
