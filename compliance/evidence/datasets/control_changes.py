"""Control changes: who changed the rules, and who approved (RULES.md K7)."""
import json

from django.db.models import Q, QuerySet

from compliance.evidence.datasets.base import Context, Dataset
from compliance.evidence.writer import iso
from governance.controls.registry import Scope
from governance.models import ControlChange


CONTROL_CHANGE_FIELDS = (
    "pk", "kind", "operation", "target_id", "target_repr", "scope", "subject_id", "subject__username", "status",
    "changed", "weakening", "before", "after", "proposed_by_id", "proposed_by__username", "proposed_at",
    "expires_at", "decided_by_id", "decided_by__username", "decided_at", "applied_at", "comment",
)


def _control_change_queryset(ctx: Context) -> QuerySet:
    expired = Q(status=ControlChange.Status.EXPIRED) & ctx.in_period("expires_at")
    return (
        ControlChange.objects.filter(
            ctx.in_period("proposed_at") | ctx.in_period("decided_at") | ctx.in_period("applied_at") | expired
        )
        .order_by("proposed_at", "pk")
        .values_list(*CONTROL_CHANGE_FIELDS)
    )


APPLIED = ControlChange.Status.APPLIED
EXPIRED = ControlChange.Status.EXPIRED


def control_change_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    start, end = ctx.start, ctx.end
    for (
        pk, kind, operation, target_id, target_repr, scope, subject_id, subject, status, changed, weakening,
        before, after, proposed_by_id, proposed_by, proposed_at, expires_at, decided_by_id, decided_by,
        decided_at, applied_at, comment,
    ) in batch:
        activity = [
            name for name, at in (("proposed", proposed_at), ("decided", decided_at), ("applied", applied_at),
                                  ("expired", expires_at if status == EXPIRED else None))
            if at is not None and start <= at < end
        ]
        findings = []
        if status == APPLIED and weakening:
            findings.append("weakened_control")
            # The control door applies a weakening change only on a second person's approval (K3):
            # one without, or approved by its proposer or by the account it concerns, was written
            # around it.
            if decided_by_id is None:
                findings.append("unapproved_weakening (applied with no second person)")
            elif decided_by_id == proposed_by_id:
                findings.append("unapproved_weakening (approved by its proposer)")
            elif decided_by_id == subject_id:
                findings.append("unapproved_weakening (approved by the account it concerns)")
        rows.append({
            "control_change_id": pk,
            "kind": kind,
            "control": target_repr,
            "target_id": target_id,
            "operation": operation,
            "scope": Scope.from_dict(scope or {}).describe(),
            "subject": subject,
            "status": status,
            "changed": list(changed or []),
            "weakening": [{"field": w.get("field", ""), "message": w.get("message", "")} for w in weakening or []],
            "before": before,
            "after": after,
            "proposed_by": proposed_by,
            "proposed_at": iso(proposed_at),
            "expires_at": iso(expires_at),
            "decided_by": decided_by,
            "decided_at": iso(decided_at),
            "applied_at": iso(applied_at),
            "comment": comment,
            "activity_in_period": activity,
            "findings": findings,
        })
    return rows


CONTROL_CHANGES = Dataset(
    name="control_changes",
    title="Control changes (who changed the rules, and who approved)",
    population="Every change to a control (RULES.md section 8: approval policies, freeze windows, environments, "
               "teams, roles and their duties, conflict rules, accounts, notification channels, the schedules "
               "of the detective controls) proposed (proposed_at), decided (decided_at), applied (applied_at) or "
               "expired undecided (expires_at) in the period, whatever became of it. Changes to the control "
               "configuration are changes in scope: a weakening one takes effect only when a second person with "
               "the duty for its scope approves it (K3), so each row names its proposer and its approver. "
               "The chain carries the same values in its control.* events.",
    columns=(
        ("control_change_id", "Control change number (the control.* audit events name it)."),
        ("kind", "The kind of control, e.g. releases.approvalpolicy, governance.role, auth.user."),
        ("control", "The control, as named when it changed (e.g. approval policy production)."),
        ("target_id", "Its id (empty: a proposed creation never applied)."),
        ("operation", "create, update or delete."),
        ("scope", "Whose duty decides it: the environments it concerns, all environments, or a team."),
        ("subject", "The account the change concerns (who may not approve it)."),
        ("status", "applied, pending, rejected, withdrawn or expired (at export time)."),
        ("changed", "The fields whose values differ."),
        ("weakening", "Why the change weakens the control, so that a second person had to approve it: field, "
                      "message. Empty: a strengthening or neutral change, applied at once."),
        ("before", "The control's values before (JSON; empty for a creation). Secrets appear as fingerprints."),
        ("after", "Its values after (JSON; empty for a deletion)."),
        ("proposed_by", "Who made or proposed the change (empty: a command such as sync_schedules)."),
        ("proposed_at", "When."),
        ("expires_at", "When a proposal lapses undecided."),
        ("decided_by", "Who decided a proposal: the second person who approved (status applied) or rejected "
                       "it, or its proposer who withdrew it. Empty for a change applied at once."),
        ("decided_at", "When."),
        ("applied_at", "When the change took effect (empty: it never did)."),
        ("comment", "The proposer's or the decider's comment."),
        ("activity_in_period", "Which of proposed / decided / applied / expired happened in the period."),
        ("findings", "weakened_control: a weakening change took effect; unapproved_weakening: one took effect "
                     "with no second person, or approved by its proposer or by the account it concerns (the "
                     "control door never does this: a change written around it)."),
    ),
    queryset=_control_change_queryset,
    rows=control_change_rows,
    json_columns=("before", "after"),
    exceptions={
        "weakened_control": lambda r: "weakened_control" in r["findings"],
        "unapproved_weakening": lambda r: any(f.startswith("unapproved_weakening") for f in r["findings"]),
    },
)


def control_changes_for_report(ctx: Context, limit: int) -> tuple[list[dict], int]:
    """The period's control changes as the report lists them: weakening ones first, then in the
    order they were proposed; at most ``limit`` of them, and how many there are in all."""
    rows = control_change_rows(ctx, list(_control_change_queryset(ctx)))
    rows.sort(key=lambda r: not r["weakening"])  # stable: proposal order within each group
    for row in rows:
        row["values"] = [
            {"field": name, "before": _report_value(row["before"], name), "after": _report_value(row["after"], name)}
            for name in row["changed"]
        ]
    return rows[:limit], len(rows)


def _report_value(values: dict | None, name: str) -> str:
    if values is None or name not in values:
        return "—"
    value = values[name]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

