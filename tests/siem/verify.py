"""A receiver's checks, with ``hmac`` and ``cryptography`` only (nothing of Countersign's signing)."""
import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import serialization


def fields(header: str) -> dict:
    return dict(part.split("=", 1) for part in header.split(","))


def hmac_ok(secret: str, timestamp: str, v1: str, body: bytes) -> bool:
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1)


def ed25519_ok(public_pem: str, fingerprint: str, timestamp: str, signature_b64: str, body: bytes) -> bool:
    key = serialization.load_pem_public_key(public_pem.encode())
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if hashlib.sha256(raw).hexdigest() != fingerprint:
        return False
    try:
        key.verify(base64.b64decode(signature_b64), timestamp.encode() + b"." + body)
    except Exception:  # noqa: BLE001 - InvalidSignature or a malformed value: not verified
        return False
    return True


def http_batch_ok(headers: dict, body: bytes, *, secret: str | None, public_pem: str) -> bool:
    ed = fields(headers["x-countersign-signature-ed25519"])
    ok = ed25519_ok(public_pem, ed["key"], ed["t"], ed["sig"], body)
    if secret is not None:
        mac = fields(headers["x-countersign-signature"])
        ok = ok and mac["t"] == ed["t"] and hmac_ok(secret, mac["t"], mac["v1"], body)
    return ok


def hec_sequences(body: bytes) -> list[int]:
    return [int(json.loads(line)["fields"]["countersign_sequence"]) for line in body.decode().splitlines()]
