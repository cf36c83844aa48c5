"""Verifying a Countersign attestation (a DSSE envelope around an in-toto Statement v1) with no
Django, so it runs wherever ``cryptography`` is installed. The server's own copy of the rules an
admission controller applies: signature, statement type, subject digest, expiry."""
import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from audit import keys

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://countersign.dev/attestation/change-approval/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Verdict:
    status: str  # valid | expired | bad_signature | malformed | wrong_subject
    message: str
    statement: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"


def verify(envelope: dict, public_key_pem: bytes, *, now: datetime | None = None,
           digest: str | None = None) -> Verdict:
    """Check ``envelope`` against the public key; ``digest`` (hex, or ``sha256:hex``) is the
    artifact it must be about, when given."""
    now = now or datetime.now(timezone.utc)
    try:
        key = keys.load_public_key(public_key_pem)
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = envelope["payloadType"]
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError) as exc:
        return Verdict("malformed", f"not a DSSE envelope: {exc}")
    if payload_type != PAYLOAD_TYPE:
        return Verdict("malformed", f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE}")
    message = pae(payload_type, payload)
    if not any(isinstance(s, dict) and keys.is_valid(key, str(s.get("sig", "")), message) for s in signatures):
        return Verdict("bad_signature", "no signature verifies with this key")
    try:
        statement = json.loads(payload)
        if statement["_type"] != STATEMENT_TYPE or statement["predicateType"] != PREDICATE_TYPE:
            return Verdict("malformed", "not a Countersign change-approval statement", statement)
        expires = datetime.fromisoformat(statement["predicate"]["expiresAt"].replace("Z", "+00:00"))
        subjects = [s["digest"]["sha256"] for s in statement["subject"]]
    except (KeyError, TypeError, ValueError) as exc:
        return Verdict("malformed", f"statement unreadable: {exc}")
    if digest is not None and digest.removeprefix("sha256:") not in subjects:
        return Verdict("wrong_subject", f"the attestation is about {', '.join(subjects)}, not {digest}", statement)
    if now >= expires:
        return Verdict("expired", f"expired at {statement['predicate']['expiresAt']}", statement)
    return Verdict("valid", f"valid until {statement['predicate']['expiresAt']}", statement)
