"""Offline checks of the RFC 3161 timestamp tokens an evidence bundle carries (docs/architecture.md
"Outside timestamps"; the manifest's ``transparency.timestamps``, compliance/evidence/transparency.py).

No Django, no database: the server's public key, the timestamp authority's certificate (PEM: its CA,
and its TSA certificate if it likes) and ``rfc3161-client``. Every token must verify against that
certificate and cover exactly the SHA-256 (or SHA-512) of the signed checkpoint it is listed with,
and that checkpoint must be signed by the server's key. A genuine token for another digest means
the checkpoint of that tree size is not the one the authority stamped: the history was rewritten
after it, in the events after the last checkpoint that still matches its token, which the message
names. ``TimestampError`` says what failed.
"""
import base64
import binascii

from audit import timestamp_token
from compliance import continuity


class TimestampError(ValueError):
    pass


def _entry(entry, public_key):
    try:
        note, authority = entry["checkpoint"], str(entry.get("authority") or "the authority")
        token = base64.b64decode(entry["token"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise TimestampError("a malformed timestamp entry") from None
    try:
        return note, authority, token, continuity.signed_checkpoint(note, public_key)
    except continuity.ContinuityError as exc:
        raise TimestampError(f"the checkpoint {authority}'s token is listed with: {exc}") from None


def check_timestamps(section: dict, public_key, certificate_pem: bytes | str) -> list[dict]:
    """Check every token of a bundle's ``transparency`` section; returns what each one says
    (tree size, authority, time), oldest first. A bundle with no token fails: the auditor asked for one."""
    entries = section.get("timestamps") if isinstance(section, dict) else None
    if not isinstance(entries, list):
        raise TimestampError("the bundle carries no timestamps section (built before timestamps, or stripped)")
    if not entries:
        raise TimestampError("the bundle carries no timestamp token (no authority had stamped a seal)")
    try:
        bundle_size, bundle_root = int(section["tree_size"]), bytes.fromhex(section["root_hash"])
    except (KeyError, TypeError, ValueError):
        raise TimestampError("malformed transparency section") from None
    checked, matched_up_to = [], 0
    for note, authority, token, signed in sorted((_entry(e, public_key) for e in entries), key=lambda e: e[3].tree_size):
        if signed.tree_size > bundle_size or (signed.tree_size == bundle_size and signed.root_hash != bundle_root):
            raise TimestampError(f"{authority}'s token is listed with a checkpoint of tree size {signed.tree_size} "
                                 f"that is not of this bundle's tree ({bundle_size} events)")
        try:
            stamp = timestamp_token.check(token, note.encode("utf-8"), certificate_pem)
        except timestamp_token.DigestMismatch as exc:
            raise TimestampError(
                f"the checkpoint of tree size {signed.tree_size} is not the one {authority} timestamped at "
                f"{exc.stamp.gen_time.isoformat()} ({exc}): the history was rewritten after it was stamped, in "
                f"events #{matched_up_to + 1}..#{signed.tree_size}"
                + (f" (the checkpoint of tree size {matched_up_to} still matches its token)" if matched_up_to else "")
            ) from None
        except timestamp_token.TokenError as exc:
            raise TimestampError(f"{authority}'s token for the checkpoint of tree size {signed.tree_size}: {exc}") from None
        matched_up_to = max(matched_up_to, signed.tree_size)
        checked.append({"tree_size": signed.tree_size, "authority": authority, "gen_time": stamp.gen_time.isoformat()})
    return checked
