"""The Ed25519 key that signs audit seals and evidence manifests (RULES.md L2, L3).

The private key lives in ``settings.SIGNING_KEY_FILE`` (PKCS#8 PEM). In development it is
generated there on first use; with DEBUG off a missing key is a configuration error, never a
silently new key (a new key would make every earlier seal unverifiable).

Only this module touches the private key. Verification lives in ``audit.keys`` (no Django), shared by
``audit_verify`` and the offline bundle verifier.
"""
import base64
import os
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import keys


def _generate(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written aside, then linked into place: link() fails if the key exists, so two processes
    # starting at once never each write a different key, and no reader sees a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


@lru_cache(maxsize=4)
def _load_private(path: str) -> Ed25519PrivateKey:
    with open(path, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{path} does not hold an Ed25519 private key.")
    return key


def private_key() -> Ed25519PrivateKey:
    path = settings.SIGNING_KEY_FILE
    if not path.exists():
        if not settings.SIGNING_KEY_AUTOGENERATE:
            raise ImproperlyConfigured(f"SIGNING_KEY_FILE {path} does not exist.")
        _generate(path)
    return _load_private(str(path))


def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def public_key_pem() -> str:
    return keys.public_key_pem(public_key())


def fingerprint() -> str:
    return keys.fingerprint(public_key())


def sign(message: bytes) -> str:
    """Base64 signature of ``message`` with the server's key."""
    return base64.b64encode(private_key().sign(message)).decode("ascii")


def sign_raw(message: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of ``message`` (for signed notes, ``audit.checkpoint``)."""
    return private_key().sign(message)
