"""Timestamp authorities are controls (RULES.md K1, docs/rules.md section 8): the outside party whose
tokens pin each seal's checkpoint to a time nobody here can move (``audit.timestamps``). What takes
that away is weakening and waits for a second person (K3): switching an authority off or removing
it, pointing it at another URL or another certificate (an authority the operator runs could then
backdate tokens), or a weaker digest. Adding an authority, switching one on and a stronger digest
apply at once: they add outside evidence."""
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from audit import timestamp_token
from audit.models import TimestampAuthority
from governance.controls.registry import (
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    all_of,
    changed,
    fewer,
    register,
    switched_off,
    text_changed,
)

STRENGTH = {TimestampAuthority.HashAlgorithm.SHA256: 0, TimestampAuthority.HashAlgorithm.SHA512: 1}


def _clean(authority: TimestampAuthority, deferred: dict, at) -> None:
    parts = urlsplit(authority.url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError({"url": ["The authority's RFC 3161 URL, e.g. https://tsa.example.com/tsr (tokens are "
                                       "signed, so plain HTTP is allowed)."]})
    if parts.username or parts.password:
        raise ValidationError({"url": ["No credentials in the URL."]})
    try:
        timestamp_token.certificates(authority.certificate)
    except timestamp_token.TokenError:
        raise ValidationError({"certificate": ["The authority's CA certificate (and its TSA certificate), PEM "
                                               "(-----BEGIN CERTIFICATE-----)."]}) from None


TIMESTAMP_AUTHORITY = register(ControlKind(
    key="audit.timestampauthority",
    label="timestamp authority",
    model=TimestampAuthority,
    fields=("name", "url", "certificate", "hash_algorithm", "is_active"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    deletable=True,
    weakens=all_of(
        switched_off("is_active", "the authority (seals are no longer timestamped by it)"),
        changed("url", "URL"),
        text_changed("certificate", "the certificates tokens are checked against"),
        fewer("hash_algorithm", "digest weakened", rank=STRENGTH),
    ),
    clean=_clean,
    describe=lambda authority: authority.name,
))
