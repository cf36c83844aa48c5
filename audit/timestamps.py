"""Outside timestamps of the seals' checkpoints (RFC 3161; docs/architecture.md "Outside timestamps").

The people who run Countersign hold the signing key, so a seal alone cannot show *when* its
checkpoint existed: an operator who rewrites history can re-sign every seal with any time line.
Each seal's checkpoint is therefore sent to the timestamp authorities configured as controls
(``audit.timestampauthority``): after the seal commits, ``audit.tasks.timestamp_seal`` POSTs a
TimeStampReq (``application/timestamp-query``) over the checkpoint's digest to every active
authority, checks the reply against the authority's certificate (``audit.timestamp_token``) and
stores it (``SealTimestamp``). A rewritten checkpoint no longer matches the digest an authority
signed, and nobody here can get a token dated in the past.

Sealing never waits for an authority: stamping runs after the seal's commit, and a failure (the
authority down, an HTTP error, a reply that does not verify) raises a ``timestamp_failed`` alert
and is retried by every hourly ``seal_chain`` run for the latest ``PENDING_WINDOW`` seals.
"""
import logging
from datetime import datetime
from urllib.parse import urlsplit

import requests
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import timestamp_token
from audit.models import Alert, AuditSeal, SealTimestamp, TimestampAuthority

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
PENDING_WINDOW = 48  # the latest seals whose missing tokens each run asks for again


class TimestampFailed(Exception):
    """The authority gave no usable token; the message says why."""


def message(seal: AuditSeal) -> bytes:
    """The bytes stamped: the seal's signed checkpoint as stored (module ``audit.timestamp_token``)."""
    return seal.checkpoint.encode("utf-8")


def _post(url: str, body: bytes) -> bytes:
    # Configured by an administrator through the control door; only web schemes.
    if urlsplit(url).scheme not in ("http", "https"):
        raise TimestampFailed(f"the authority's URL must be http or https, not {url!r}")
    try:
        with requests.post(url, data=body, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True,
                           headers={"Content-Type": "application/timestamp-query"}) as response:
            status, content = response.status_code, b""
            for chunk in response.iter_content(8192):
                content += chunk
                if len(content) > timestamp_token.MAX_RESPONSE_BYTES:
                    break
    except requests.RequestException as exc:
        raise TimestampFailed(f"could not reach {url}: {exc.__class__.__name__}") from None
    if status != 200:
        raise TimestampFailed(f"{url} answered HTTP {status}")
    return content


def stamp(seal: AuditSeal, authority: TimestampAuthority, *, at: datetime | None = None) -> SealTimestamp:
    """Ask ``authority`` for a token over ``seal``'s checkpoint, check it and store it."""
    sent = timestamp_token.request(message(seal), authority.hash_algorithm)
    reply = _post(authority.url, sent.as_bytes())
    try:
        token = timestamp_token.check(reply, message(seal), authority.certificate, sent=sent)
    except timestamp_token.TokenError as exc:
        raise TimestampFailed(f"the reply of {authority.name} is not a good token: {exc}") from None
    return SealTimestamp.objects.create(
        seal=seal, authority=authority, authority_name=authority.name, hash_algorithm=token.hash_algorithm,
        digest=token.digest.hex(), response=reply, gen_time=token.gen_time, serial=str(token.serial),
        created_at=at or timezone.now(),
    )


def _failed(seal: AuditSeal, authority: TimestampAuthority, problem: str, at: datetime) -> None:
    from audit.alerts import raise_alert

    log.warning("seal %s not timestamped by %s: %s", seal.number, authority.name, problem)
    raise_alert("timestamp_failed", severity=Alert.Severity.HIGH, at=at,
                subject=f"Seal #{seal.number} could not be timestamped by {authority.name}",
                details={"authority": authority.name, "seal": seal.number, "problem": problem},
                dedupe_key=f"timestamp_failed:{authority.name}")


def stamp_seals(seals, *, at: datetime | None = None) -> tuple[int, int]:
    """Stamp each of ``seals`` (with a checkpoint) by every active authority that has no token for it
    yet. An authority that fails is alerted once and not asked again in this run (one timeout per
    authority at most). Returns (tokens stored, failures)."""
    at = at or timezone.now()
    authorities = list(TimestampAuthority.objects.filter(is_active=True))
    stored, failed, given_up = 0, 0, set()
    for seal in seals:
        if not seal.checkpoint:
            continue
        have = set(seal.timestamps.values_list("authority_name", flat=True))
        for authority in authorities:
            if authority.name in have or authority.pk in given_up:
                continue
            try:
                with transaction.atomic():
                    stamp(seal, authority, at=at)
            except TimestampFailed as exc:
                failed += 1
                given_up.add(authority.pk)
                _failed(seal, authority, str(exc), at)
            except IntegrityError:
                continue  # a concurrent run stored this authority's token for the seal first
            else:
                stored += 1
    return stored, failed


def stamp_seal(number: int, *, at: datetime | None = None) -> tuple[int, int]:
    return stamp_seals(AuditSeal.objects.filter(number=number), at=at)


def stamp_pending(*, at: datetime | None = None) -> tuple[int, int]:
    """The latest ``PENDING_WINDOW`` seals, oldest first, for the tokens still missing."""
    latest = list(AuditSeal.objects.exclude(checkpoint="").order_by("-number")[:PENDING_WINDOW])
    return stamp_seals(reversed(latest), at=at)


def enqueue(number: int) -> None:
    """After a seal commits: hand its stamping to Celery (a broker outage leaves it to the next run)."""
    from audit.tasks import timestamp_seal

    try:
        timestamp_seal.apply_async(args=[number], retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the hourly run retries
        log.warning("seal %s not handed over for timestamping (%s); the next seal_chain run retries", number, exc)
