"""Every OCSF event Countersign emits validates against the published OCSF 1.5.0 schema.

The schema is the official export of schema.ocsf.io that the ``ocsf-json-schema`` package ships
(offline), turned by it into a JSON Schema (draft 2020-12) per class with its objects embedded, and
checked with ``jsonschema``: required attributes, types, enum values (activity, status, severity),
no attribute the class does not define, and the "at least one of" constraints. The schema's own
captions are checked besides: ``activity_name`` and ``class_name`` match the ids, ``type_uid`` is
``class_uid * 100 + activity_id`` and ``category_uid`` is the class's category."""
from datetime import datetime, timezone
from functools import lru_cache

import pytest
from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from audit.models import AuditEvent
from compliance.siem import formats, ocsf
from compliance.siem.models import SiemSink

RAW = get_ocsf_schema(ocsf.VERSION)
CATEGORY_UIDS = {name: value["uid"] for name, value in
                 {c["category"]: {"uid": c["uid"] // 1000} for c in RAW["classes"].values()}.items()}


@lru_cache(maxsize=None)
def validator(class_uid: int) -> Draft202012Validator:
    schema = OcsfJsonSchemaEmbedded(RAW)
    return Draft202012Validator(schema.get_class_schema(schema.lookup_class_name_from_uid(class_uid)))


def schema_class(class_uid: int) -> dict:
    return next(c for c in RAW["classes"].values() if c["uid"] == class_uid)


def problems(event: dict) -> list[str]:
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(event["class_uid"]).iter_errors(event)]
    cls = schema_class(event["class_uid"])
    activities = {int(k): v["caption"] for k, v in cls["attributes"]["activity_id"]["enum"].items()}
    if event["activity_id"] != 99 and event["activity_name"] != activities.get(event["activity_id"]):
        found.append(f"activity_name {event['activity_name']!r} is not {activities.get(event['activity_id'])!r}")
    if event["class_name"] != cls["caption"]:
        found.append(f"class_name {event['class_name']!r} is not {cls['caption']!r}")
    if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
        found.append("type_uid")
    if event["category_uid"] != CATEGORY_UIDS[cls["category"]]:
        found.append("category_uid")
    if "status_id" in event:
        statuses = {int(k): v["caption"] for k, v in cls["attributes"]["status_id"]["enum"].items()}
        if event["status"] != statuses[event["status_id"]]:
            found.append(f"status {event['status']!r} is not {statuses[event['status_id']]!r}")
    return found


SINK = SiemSink(format=SiemSink.Format.OCSF)
AT = datetime(2026, 12, 2, 6, 10, 11, 123456, tzinfo=timezone.utc)
DATA = {
    "user": "dev", "role": "reviewer", "team": "payments", "environment": "staging", "group": "cs-reviewers",
    "artifact": "registry.example.com/payments-api:1.4.2", "deployment": 7, "kind": "off_hours_deploy",
    "severity": "high", "subject": "Deploy at 03:00", "resolution": "Expected", "operation": "create",
    "duty_a": "submit", "duty_b": "deploy", "reasons": ["acr too low"],
}
OTHERS = ["control.changed", "control.approved", "control.proposed", "change_request.created",
          "change_request.approved", "access_review.item_decided", "audit.sealed", "signing_key.changed",
          "something.new"]


def fake(action: str, *, data=None, actor="sec", ip="10.0.0.5", user_agent="curl/8.5.0") -> AuditEvent:
    return AuditEvent(sequence=1042, created_at=AT, actor_id=7 if actor else None, actor_username=actor or "",
                      action=action, target_type="releases.changerequest", target_id="311",
                      target_repr="CR-311 Rotate keys", environment="staging", team="payments", ip=ip,
                      user_agent=user_agent, request_id="b1f0", data=DATA if data is None else data,
                      prev_hash="0" * 64, hash="a" * 64)


@pytest.mark.parametrize("action", [*ocsf.ACTIONS, *OTHERS])
def test_every_mapped_action_validates_against_its_class(action):
    event = formats.record(SINK, fake(action))
    assert problems(event) == []
    assert event["metadata"]["sequence"] == 1042 and event["metadata"]["uid"] == "1042"
    assert event["unmapped"]["countersign"]["hash"] == "a" * 64


@pytest.mark.parametrize("action", [*ocsf.ACTIONS, *OTHERS])
def test_a_system_event_with_odd_data_still_validates(action):
    """No actor, no IP, and data whose values are not what the mapping reads (lists, numbers)."""
    odd = {"user": ["x"], "role": 3, "group": {"a": 1}, "artifact": None, "severity": "weird", "operation": 5}
    assert problems(formats.record(SINK, fake(action, data=odd, actor=None, ip=None, user_agent=""))) == []


def test_every_class_of_the_mapping_is_used_and_named_as_the_schema_names_it():
    used = {ocsf.classify(action, {})[0] for action in ocsf.ACTIONS} | {6003}
    assert used == set(ocsf.CLASSES)
    for class_uid, (name, category_uid, category_name) in ocsf.CLASSES.items():
        assert schema_class(class_uid)["caption"] == name
        assert schema_class(class_uid)["category_name"] == category_name
        assert CATEGORY_UIDS[schema_class(class_uid)["category"]] == category_uid
        for activity_id, caption in ocsf.ACTIVITIES[class_uid].items():
            assert schema_class(class_uid)["attributes"]["activity_id"]["enum"][str(activity_id)]["caption"] == caption


def test_the_validator_catches_what_it_should():
    """The checks can fail: a wrong enum value, a missing required attribute, an unknown attribute."""
    good = formats.record(SINK, fake("role.granted"))
    assert problems({**good, "activity_id": 7, "type_uid": 300507}) != []
    assert problems({k: v for k, v in good.items() if k != "privileges"}) != []
    assert problems({**good, "countersign_extra": 1}) != []
    assert problems({**good, "time": "yesterday"}) != []


@pytest.mark.django_db
def test_every_event_of_the_demo_trail_validates(demo):
    events = list(AuditEvent.objects.order_by("sequence"))
    assert len(events) > 50
    classes = set()
    for event in events:
        record = formats.record(SINK, event)
        assert problems(record) == [], (event.action, problems(record))
        classes.add(record["class_uid"])
    assert {3005, 6003} <= classes
