"""Audit events as OCSF 1.5.0 events (https://schema.ocsf.io/1.5.0; docs/siem.md has the table).

Each action maps to the class that fits it: sign-ins and step-ups to Authentication (3002),
accounts and API keys to Account Change (3001), grants and SoD exceptions to User Access Management
(3005), team and directory-group membership to Group Management (3006), deployments to Application
Lifecycle (6002), evidence exports to Web Resources Activity (6001), alerts to Detection Finding
(2004), and every other action (change requests, control changes, access reviews, seals) to API
Activity (6003). Every event carries its place in the trail (``metadata.sequence`` and
``metadata.uid``: the de-duplication id) and the event as hashed under ``unmapped.countersign``, so
nothing is lost in the mapping and a receiver can recompute the event's hash.

Built from plain values only: whatever an event's ``data`` holds, the result has the schema's types
(tests/siem/test_ocsf.py validates every class against the published schema).
"""
from datetime import datetime, timezone as dt_timezone

VERSION = "1.5.0"
PRODUCT = {"name": "Countersign", "vendor_name": "Countersign"}

# class uid: (class name, category uid, category name)
CLASSES = {
    2004: ("Detection Finding", 2, "Findings"),
    3001: ("Account Change", 3, "Identity & Access Management"),
    3002: ("Authentication", 3, "Identity & Access Management"),
    3005: ("User Access Management", 3, "Identity & Access Management"),
    3006: ("Group Management", 3, "Identity & Access Management"),
    6001: ("Web Resources Activity", 6, "Application Activity"),
    6002: ("Application Lifecycle", 6, "Application Activity"),
    6003: ("API Activity", 6, "Application Activity"),
}
# The schema's captions of the activities used here (per class: activity_name must match).
ACTIVITIES = {
    2004: {1: "Create", 3: "Close"},
    3001: {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 12: "Unlock"},
    3002: {1: "Logon", 2: "Logoff"},
    3005: {1: "Assign Privileges", 2: "Revoke Privileges"},
    3006: {3: "Add User", 4: "Remove User", 5: "Delete", 6: "Create"},
    6001: {1: "Create", 2: "Read", 7: "Export"},
    6002: {8: "Update"},
    6003: {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
}
OTHER = 99
SUCCESS, FAILURE = 1, 2
FINDING_NEW, FINDING_RESOLVED = 1, 4

# action: (class uid, activity id, status id or None). Activity 99 is "Other", named by the action.
ACTIONS = {
    "account.sso_login": (3002, 1, SUCCESS),
    "account.break_glass_login": (3002, 1, SUCCESS),
    "session.ended": (3002, 2, SUCCESS),
    "auth.locked_out": (3002, 1, FAILURE),
    "change_request.signoff_failed": (3002, OTHER, FAILURE),  # the portal's step-up sign-off
    "account.provisioned": (3001, 1, None),
    "user.provisioned": (3001, 1, None),
    "account.activated_by_provider": (3001, 2, None),
    "account.deactivated": (3001, 5, None),
    "account.deprovisioned": (3001, 5, None),
    "account.password_set": (3001, 3, None),
    "account.password_reset_issued": (3001, 4, None),
    "account.lockout_reset": (3001, 12, None),
    "account.updated_by_provider": (3001, OTHER, None),
    "account.changed_outside_service": (3001, OTHER, None),
    "account.sso_linked": (3001, OTHER, None),
    "api_token.created": (3001, OTHER, None),
    "api_token.revoked": (3001, OTHER, None),
    "role.granted": (3005, 1, None),
    "role.grant_approved": (3005, 1, None),
    "role.bootstrapped": (3005, 1, None),
    "role.revoked": (3005, 2, None),
    "role.expired": (3005, 2, None),
    "role.grant_requested": (3005, OTHER, None),
    "role.grant_rejected": (3005, OTHER, None),
    "role.grant_withdrawn": (3005, OTHER, None),
    "sod_exception.approved": (3005, 1, None),
    "sod_exception.revoked": (3005, 2, None),
    "sod_exception.requested": (3005, OTHER, None),
    "team.member_added": (3006, 3, None),
    "team.member_removed": (3006, 4, None),
    "team.member_changed": (3006, OTHER, None),
    "scim.group_created": (3006, 6, None),
    "scim.group_deleted": (3006, 5, None),
    "scim.group_member_added": (3006, 3, None),
    "scim.group_member_removed": (3006, 4, None),
    "scim.group_renamed": (3006, OTHER, None),
    "scim.group_member_refused": (3006, OTHER, FAILURE),
    "deployment.started": (6002, 8, None),
    "deployment.succeeded": (6002, 8, SUCCESS),
    "deployment.failed": (6002, 8, FAILURE),
    "deployment.rolled_back": (6002, OTHER, None),
    "deployment.reported": (6002, 8, None),
    "evidence.export_requested": (6001, 7, None),
    "evidence.export_retried": (6001, 7, None),
    "evidence.export_built": (6001, 1, SUCCESS),
    "evidence.export_failed": (6001, 1, FAILURE),
    "evidence.downloaded": (6001, 2, SUCCESS),
    "alert.raised": (2004, 1, FINDING_NEW),
    "alert.resolved": (2004, 3, FINDING_RESOLVED),
}
# API Activity for everything else: the verb at the end of the action, or "Other".
VERBS = {"created": 1, "updated": 3, "revised": 3, "changed": 3, "approved": 3, "decided": 3, "cancelled": 4,
         "deleted": 4, "closed": 3, "opened": 1, "started": 1}
SEVERITIES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ALERT_SEVERITY = {"low": 2, "medium": 3, "high": 4, "critical": 5}
STATUSES = {SUCCESS: "Success", FAILURE: "Failure"}
FINDING_STATUSES = {FINDING_NEW: "New", FINDING_RESOLVED: "Resolved"}


def classify(action: str, data: dict) -> tuple[int, int, int | None]:
    if action in ACTIONS:
        return ACTIONS[action]
    if action == "control.changed" or action == "control.approved":
        return 6003, {"create": 1, "delete": 4}.get(str(data.get("operation")), 3), SUCCESS
    return 6003, VERBS.get(action.rsplit(".", 1)[-1], OTHER), None


def _text(value) -> str | None:
    """A value as the schema's string, or None when there is none."""
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return str(value)


def _millis(created_at) -> int:
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at)
    return int(created_at.astimezone(dt_timezone.utc).timestamp() * 1000)


def _actor(record: dict) -> dict:
    if record["actor_username"]:
        user = {"name": record["actor_username"]}
        if record["actor_id"] is not None:
            user["uid"] = str(record["actor_id"])
        return {"user": user}
    return {"app_name": "Countersign"}


def _endpoint(record: dict) -> dict:
    return {"ip": record["ip"]} if record["ip"] else {"svc_name": "countersign"}


def _user(record: dict, *keys: str) -> dict:
    data = record["data"]
    for key in keys:
        name = _text(data.get(key))
        if name:
            return {"name": name}
    return {"name": record["target_repr"] or record["actor_username"] or "unknown"}


def _people(event: dict, record: dict, user_keys=("user",)) -> None:
    """actor, src_endpoint, user and http_request of the identity classes."""
    event["actor"] = _actor(record)
    event["src_endpoint"] = _endpoint(record)
    event["user"] = _user(record, *user_keys)
    if record["user_agent"]:
        event["http_request"] = {"user_agent": record["user_agent"]}


def _authentication(event: dict, record: dict) -> None:
    _people(event, record, ("user", "username"))
    if record["action"] in ("account.sso_login", "account.break_glass_login", "change_request.signoff_failed"):
        event["user"] = {"name": record["actor_username"] or event["user"]["name"]}
    event["service"] = {"name": "Countersign"}
    if record["action"] == "change_request.signoff_failed":
        event["status_detail"] = "; ".join(str(r) for r in record["data"].get("reasons") or []) or None
        event["is_mfa"] = True


def _account_change(event: dict, record: dict) -> None:
    _people(event, record, ("user", "username"))


def _user_access(event: dict, record: dict) -> None:
    _people(event, record)
    data = record["data"]
    if record["action"].startswith("sod_exception."):
        privileges = [f"{_text(data.get('duty_a')) or '?'}+{_text(data.get('duty_b')) or '?'} (SoD exception)"]
    else:
        privileges = [_text(data.get("role")) or record["target_repr"] or "unknown"]
    event["privileges"] = privileges
    scope = [p for p in (_text(data.get("team")) or record["team"], _text(data.get("environment"))) if p]
    if scope:
        event["resources"] = [{"type": "team/environment", "name": "/".join(scope)}]


def _group_management(event: dict, record: dict) -> None:
    event["actor"] = _actor(record)
    event["src_endpoint"] = _endpoint(record)
    data = record["data"]
    event["group"] = {"name": _text(data.get("group")) or record["team"] or record["target_repr"] or "unknown"}
    user = _text(data.get("user"))
    if user:
        event["user"] = {"name": user}


def _application_lifecycle(event: dict, record: dict) -> None:
    data = record["data"]
    app = {"name": _text(data.get("artifact")) or record["target_repr"] or "unknown"}
    if _text(data.get("deployment")):
        app["uid"] = _text(data.get("deployment"))
    event["app"] = app


def _web_resources(event: dict, record: dict) -> None:
    resource = {"type": "evidence export", "name": record["target_repr"] or record["action"]}
    if record["target_id"]:
        resource["uid"] = record["target_id"]
    event["web_resources"] = [resource]
    event["src_endpoint"] = _endpoint(record)
    if record["user_agent"]:
        event["http_request"] = {"user_agent": record["user_agent"]}


def _detection_finding(event: dict, record: dict) -> None:
    data = record["data"]
    event["finding_info"] = {
        "uid": record["target_id"] or str(record["sequence"]),
        "title": _text(data.get("subject")) or record["target_repr"] or record["action"],
        "types": [_text(data.get("kind")) or "alert"],
    }
    event["is_alert"] = True
    severity = ALERT_SEVERITY.get(str(data.get("severity")))
    if severity:
        event["severity_id"], event["severity"] = severity, SEVERITIES[severity]
    if record["action"] == "alert.resolved":
        event["comment"] = _text(data.get("resolution"))


def _api_activity(event: dict, record: dict) -> None:
    event["actor"] = _actor(record)
    event["src_endpoint"] = _endpoint(record)
    event["api"] = {"operation": record["action"], "service": {"name": "Countersign"}}
    if record["target_type"] or record["target_id"]:
        resource = {"type": record["target_type"] or "object", "name": record["target_repr"] or record["target_id"]}
        if record["target_id"]:
            resource["uid"] = record["target_id"]
        event["resources"] = [resource]
    if record["user_agent"]:
        event["http_request"] = {"user_agent": record["user_agent"]}


BUILDERS = {
    2004: _detection_finding, 3001: _account_change, 3002: _authentication, 3005: _user_access,
    3006: _group_management, 6001: _web_resources, 6002: _application_lifecycle, 6003: _api_activity,
}


def event(record: dict) -> dict:
    """The OCSF event of one audit event, given as its Countersign record (``formats.countersign``)."""
    class_uid, activity_id, status_id = classify(record["action"], record["data"] or {})
    class_name, category_uid, category_name = CLASSES[class_uid]
    activity_name = ACTIVITIES[class_uid].get(activity_id) if activity_id != OTHER else record["action"]
    result = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "time": _millis(record["created_at"]),
        "severity_id": 1,
        "severity": SEVERITIES[1],
        "message": f"{record['action']}: {record['target_repr']}" if record["target_repr"] else record["action"],
        "metadata": {
            "version": VERSION,
            "product": PRODUCT,
            "uid": str(record["sequence"]),
            "sequence": record["sequence"],
            "event_code": record["action"],
            "log_name": "audit",
            **({"correlation_uid": record["request_id"]} if record["request_id"] else {}),
        },
        "unmapped": {"countersign": record},
    }
    if status_id is not None:
        result["status_id"] = status_id
        result["status"] = (FINDING_STATUSES if class_uid == 2004 else STATUSES)[status_id]
    BUILDERS[class_uid](result, record)
    return {name: value for name, value in result.items() if value is not None}
