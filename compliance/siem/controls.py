"""SIEM sinks are controls (RULES.md K1, docs/rules.md section 8): security's copy of the audit
trail. What takes that copy away from security is weakening and waits for a second person (K3):
switching a sink off, pointing it elsewhere (destination, transport, the TLS trust anchor), changing
its credentials or signing key, changing its format (the SIEM's parsers and detections read it)
or narrowing the actions it streams. Adding a sink, switching one on, widening its actions and its
batch size apply at once: they stream more, and the ``control.changed`` event that records them
is itself streamed to every sink already there."""
import ipaddress
from urllib.parse import urlsplit

from cryptography import x509
from django.core.exceptions import ValidationError

from compliance.siem.models import SiemSink
from governance.controls.registry import (
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    Weakening,
    all_of,
    changed,
    register,
    switched_off,
    text_changed,
)

LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_and_port(destination: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of a syslog destination; ValueError when it is not one."""
    host, sep, port = destination.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/ @"):
        raise ValueError(destination)
    return host, int(port)


def _check_destination(sink: SiemSink) -> None:
    if sink.is_http:
        parts = urlsplit(sink.destination)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValidationError({"destination": ["An HTTPS URL, e.g. https://splunk.example.com:8088/services/collector/event."]})
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValidationError({"destination": ["The audit trail leaves only over HTTPS (plain HTTP only to this machine)."]})
        if parts.username or parts.password:
            raise ValidationError({"destination": ["Put the credential in the token field, not in the URL."]})
        return
    try:
        host_and_port(sink.destination)
    except ValueError:
        raise ValidationError({"destination": ["host:port, e.g. siem.example.com:6514."]}) from None
    if sink.transport == SiemSink.Transport.SYSLOG_TCP and not _is_loopback(host_and_port(sink.destination)[0]):
        raise ValidationError({"transport": ["Syslog leaves this machine only over TLS (syslog_tls)."]})


def _check_certificates(sink: SiemSink) -> None:
    if not sink.ca_certificate.strip():
        return
    try:
        certificates = x509.load_pem_x509_certificates(sink.ca_certificate.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ValidationError({"ca_certificate": ["One or more PEM certificates (-----BEGIN CERTIFICATE-----)."]})


def _clean(sink: SiemSink, deferred: dict, at) -> None:
    _check_destination(sink)
    _check_certificates(sink)
    if sink.transport == SiemSink.Transport.HEC and not sink.token:
        raise ValidationError({"token": ["A Splunk HTTP Event Collector needs its token."]})


def _patterns(values: dict) -> set[str]:
    return {p.strip() for p in (values.get("actions") or "").split(",") if p.strip()}


def _narrowed_actions(before: dict, after: dict) -> list[Weakening]:
    """Empty streams every action: any pattern list is narrower than that, and dropping a pattern
    narrows a list (a new pattern that covers the dropped one is still read as a change: weakening)."""
    old, new = _patterns(before), _patterns(after)
    if new and (not old or old - new):
        return [Weakening("actions", f"actions streamed narrowed from {sorted(old) or 'all'} to {sorted(new)}")]
    return []


SIEM_SINK = register(ControlKind(
    key="compliance.siemsink",
    label="SIEM sink",
    model=SiemSink,
    fields=("name", "transport", "destination", "format", "token", "secret", "ca_certificate", "actions",
            "batch_size", "is_active"),
    secret_fields=("token", "secret"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=all_of(
        switched_off("is_active", "the sink (security's copy of the audit trail stops)"),
        changed("destination", "destination"),
        changed("transport", "transport"),
        changed("format", "format (the SIEM's parsers and detections read it)"),
        changed("token", "collector token"),
        changed("secret", "batch signing secret"),
        text_changed("ca_certificate", "the CA certificates the receiver is checked against"),
        _narrowed_actions,
    ),
    clean=_clean,
    describe=lambda sink: sink.name,
))
