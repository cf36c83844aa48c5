"""RFC 3161 timestamp tokens over checkpoints, built and checked with ``rfc3161-client`` and
``cryptography`` only: no Django, so the offline verifier (``compliance/timestamp_check.py``) and the
stamping service (``audit.timestamps``) check a token the same way.

What is stamped is the exact UTF-8 bytes of a seal's signed checkpoint (``AuditSeal.checkpoint``,
the note text and its server signature line). The TimeStampReq carries their SHA-256 (or SHA-512)
digest, a nonce and certReq; what is stored and shipped is the authority's whole DER TimeStampResp
(its ``timeStampToken`` inside). A token is good for a checkpoint when its message imprint is that
checkpoint's digest, its CMS signature verifies with a certificate that chains to one of the
authority's PEM certificates, and that signer certificate carries the critical extendedKeyUsage
``timeStamping`` (RFC 3161 section 2.3).
"""
import hashlib
from dataclasses import dataclass
from datetime import datetime

import rfc3161_client as tsp
from cryptography import x509

ALGORITHMS = {"sha256": (tsp.HashAlgorithm.SHA256, hashlib.sha256), "sha512": (tsp.HashAlgorithm.SHA512, hashlib.sha512)}
OIDS = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.3": "sha512"}
MAX_RESPONSE_BYTES = 64 * 1024


class TokenError(ValueError):
    """A reply that is no good token for the checkpoint; the message says why."""


class DigestMismatch(TokenError):
    """A genuine token (it verifies against the authority's certificate) for another digest: what
    the authority stamped is not this checkpoint. ``stamp`` is what the token says."""

    def __init__(self, message: str, stamp: "Stamp"):
        super().__init__(message)
        self.stamp = stamp


@dataclass(frozen=True)
class Stamp:
    gen_time: datetime
    serial: int
    hash_algorithm: str
    digest: bytes
    authority: str  # the signer certificate's subject, as RFC 4514


def digest(message: bytes, algorithm: str = "sha256") -> bytes:
    return ALGORITHMS[algorithm][1](message).digest()


def request(message: bytes, algorithm: str = "sha256") -> tsp.TimeStampRequest:
    """A TimeStampReq over ``message`` (hashed here), with a nonce, asking for the signer's certificate."""
    return (tsp.TimestampRequestBuilder().data(message).hash_algorithm(ALGORITHMS[algorithm][0])
            .nonce(nonce=True).cert_request(cert_request=True).build())


def certificates(pem: str | bytes) -> list[x509.Certificate]:
    raw = pem.encode() if isinstance(pem, str) else pem
    try:
        found = x509.load_pem_x509_certificates(raw)
    except ValueError:
        found = []
    if not found:
        raise TokenError("no PEM certificate (-----BEGIN CERTIFICATE-----) to check tokens against")
    return found


def check(response_der: bytes, message: bytes, certificate_pem: str | bytes,
          sent: tsp.TimeStampRequest | None = None) -> Stamp:
    """The token in ``response_der`` if it covers ``message`` and verifies against the authority's
    certificates (and answers ``sent``: its nonce); ``TokenError`` otherwise."""
    trusted = certificates(certificate_pem)
    if len(response_der) > MAX_RESPONSE_BYTES:
        raise TokenError(f"a reply of {len(response_der)} bytes, more than a token has ({MAX_RESPONSE_BYTES})")
    try:
        response = tsp.decode_timestamp_response(response_der)
        info = response.tst_info
        imprint = info.message_imprint
    except Exception as exc:  # noqa: BLE001 - the Rust parser raises ValueError and others on bad DER
        raise TokenError(f"not an RFC 3161 TimeStampResp with a token ({exc.__class__.__name__})") from None
    algorithm = OIDS.get(imprint.hash_algorithm.dotted_string)
    if algorithm is None:
        raise TokenError(f"the token's hash algorithm {imprint.hash_algorithm.dotted_string} is not SHA-256 or SHA-512")
    builder = tsp.VerifierBuilder.from_request(sent) if sent is not None else tsp.VerifierBuilder()
    for certificate in trusted:
        builder = builder.add_root_certificate(certificate)
    try:  # the token itself first, over the digest it states: a forged or foreign token stops here
        builder.build().verify(response, imprint.message)
    except (tsp.VerificationError, ValueError) as exc:
        raise TokenError(f"the token does not verify against the authority's certificate: {exc}") from None
    signer = next((x509.load_der_x509_certificate(c) for c in response.signed_data.certificates), None)
    stamp = Stamp(gen_time=info.gen_time, serial=info.serial_number, hash_algorithm=algorithm, digest=imprint.message,
                  authority=signer.subject.rfc4514_string() if signer is not None else "")
    expected = digest(message, algorithm)
    if imprint.message != expected:
        raise DigestMismatch(f"the token is for another digest ({algorithm} {imprint.message.hex()}, stamped "
                             f"{stamp.gen_time.isoformat()}), not this checkpoint's ({expected.hex()})", stamp)
    return stamp
