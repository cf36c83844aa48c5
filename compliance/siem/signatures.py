"""Batch signatures (docs/siem.md "Signatures"): every batch is signed over ``t.body`` (the Unix
time, a dot, the exact bytes sent), with the server's Ed25519 audit key (``audit.signing``, whose
public key and fingerprint the admin and ``manage.py signing_key --public`` publish) and, when the
sink has a secret, with HMAC-SHA256 in the webhooks' scheme (``X-Countersign-Signature:
t=<unix>,v1=<hex>``, ``audit.notifications.signature_header``). The time is signed, so a receiver
can refuse a batch replayed later; the sequences inside are what it de-duplicates on."""
from audit import signing
from audit.notifications import signature_header
from compliance.siem.models import SiemSink


def signed_message(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def params(sink: SiemSink, body: bytes, timestamp: int) -> dict:
    """The signature values of one batch: ``t``, ``v1`` (HMAC, with a secret), ``key`` (the Ed25519
    key's fingerprint, SHA-256 of the raw public key) and ``ed25519`` (base64)."""
    message = signed_message(timestamp, body)
    values = {"t": timestamp}
    if sink.secret:
        values["v1"] = signature_header(sink.secret, body, timestamp).rsplit("v1=", 1)[1]
    values["key"] = signing.fingerprint()
    values["ed25519"] = signing.sign(message)
    return values


def http_headers(sink: SiemSink, body: bytes, timestamp: int) -> dict:
    values = params(sink, body, timestamp)
    headers = {"X-Countersign-Signature-Ed25519": f"t={timestamp},key={values['key']},sig={values['ed25519']}"}
    if "v1" in values:
        headers["X-Countersign-Signature"] = f"t={timestamp},v1={values['v1']}"
    return headers
