"""The beat schedule, declared in code. ``manage.py sync_schedules`` writes it into
django-celery-beat's tables (creating what is missing, keeping what admins changed since)."""

SCHEDULE = {
    "audit: hand over pending outbox messages": {"task": "audit.tasks.sweep_outbox", "every": 60},
    "audit: verify the hash chain": {"task": "audit.tasks.verify_chain", "every": 3600},
    # Hourly seals (RULES.md L2): an idle hour adds none; a tampered hour is detected within the next.
    "audit: seal the chain head": {"task": "audit.tasks.seal_chain", "every": 3600},
    "governance: expire grants": {"task": "governance.tasks.expire_grants", "every": 300},
    # Weakening control changes wait 72 h for their second person (RULES.md K3), then expire.
    "governance: expire control proposals": {"task": "governance.tasks.expire_control_proposals", "every": 300},
    "governance: permission-creep scan": {"task": "governance.tasks.creep_scan", "crontab": "15 3 * * *"},
    "governance: quarterly access review": {
        "task": "governance.tasks.start_access_review",
        "crontab": "0 6 1 1,4,7,10 *",
    },
    "governance: access review reminders and escalation": {
        "task": "governance.tasks.escalate_access_reviews",
        "every": 3600,
    },
    "governance: close overdue access reviews": {
        "task": "governance.tasks.close_overdue_access_reviews",
        "crontab": "30 6 * * *",
    },
    "releases: escalate stalled approvals": {"task": "releases.tasks.escalate_stalled", "every": 300},
    "releases: overdue post-implementation reviews": {"task": "releases.tasks.pir_overdue_scan", "every": 3600},
    # The audit trail to the SIEM sinks (docs/siem.md): each run sends what is past each cursor.
    "compliance: stream the audit trail to SIEM sinks": {"task": "compliance.tasks.stream_to_siems", "every": 10},
    "releases: reciprocal approval scan": {"task": "releases.tasks.reciprocal_scan", "crontab": "45 3 * * *"},
}
