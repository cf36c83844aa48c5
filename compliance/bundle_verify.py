"""Verify a Countersign evidence bundle offline, with nothing but the server's public key.

Usage (no Django, no database; needs Python 3.11+ and the ``cryptography`` package)::

    python audit/bundle_verify.py BUNDLE.zip --public-key countersign.pub
    python -m compliance.bundle_verify BUNDLE.zip --public-key countersign.pub

(``manage.py signing_key --public`` prints the key; ``manage.py evidence_verify BUNDLE.zip``
runs the same checks with the server's own key.)

What a bundle is and how it is checked:

1. ``manifest.sig`` holds the base64 Ed25519 signature of the *exact bytes* of ``manifest.json``
   (no canonicalisation to reproduce: the bytes in the ZIP are the signed message). The signature
   must verify with the given public key; so nobody without the server's private key can have
   written or edited the manifest.
2. ``manifest.json``'s ``files`` maps every other member to ``{sha256, size, rows}``. Each member is
   read, hashed (SHA-256 of its uncompressed content) and measured; any difference fails.
3. The ZIP must hold exactly those files plus ``manifest.json`` and ``manifest.sig``: a missing,
   extra or duplicated member fails.
4. The archive's bytes must be exactly those members and nothing else, checked before anything is
   decompressed. ZIP readers disagree about what a file holds: most read the central directory at
   the end, streaming readers (Java's ZipInputStream, ``unzip`` from a pipe) read local entries
   from the start. So the first member starts at offset 0, each member's local entry (header and
   data) follows the previous one with no gap, the central directory follows the last member and
   its end record closes the file: no prepended, interleaved or trailing bytes, no archive or
   member comment, every local header agreeing with its directory entry (name, method, CRC,
   sizes). Member names are plain relative paths (no ``/`` at the start, no ``\\``, ``.`` or
   ``..`` segments, no control characters), and no two names are equal after Unicode
   normalisation and case folding (an extractor onto a case-insensitive disk would merge them).
   Sizes are bounded before decompressing: the directory at most ``MAX_DIRECTORY_BYTES`` and
   ``MAX_MEMBERS`` entries, ``manifest.json`` at most ``MAX_MANIFEST_BYTES``, ``manifest.sig`` at
   most ``MAX_SIGNATURE_BYTES``, every other member exactly the size the signed manifest lists;
   reads never go past the declared size, so a lying header cannot inflate memory either.
5. When the manifest has a ``transparency`` section (bundles built at a sealed checkpoint), its
   signed checkpoint, subtrees, inclusion proofs and consistency proof from the previous bundle of
   the framework must verify (``compliance.continuity.check_bundle``). With ``--previous
   EARLIER.zip`` the earlier bundle is verified too and the later one must extend it: a log whose
   tree of the earlier size is not the earlier checkpoint's is refused, naming the first range of
   events where the histories diverge (``check_extends``).
6. Outside parties (``--witnessed CHECKPOINT.json --witness-key VKEY``: a checkpoint witnesses
   cosigned, as ``GET audit/checkpoints/{size}/`` answers it, with their own keys;
   ``--tsa-certificate AUTHORITY.pem``: the RFC 3161 tokens of ``transparency.timestamps``, which
   needs ``rfc3161-client`` too): the bundle's tree must agree with the witnessed checkpoint and
   every token must verify and cover the checkpoint it names; either refusal names the range of
   events rewritten (``check_against_witnessed``, ``compliance.timestamp_check``).

Exit status: 0 when everything checks, 1 on any mismatch (the message names the file), 2 when the
bundle or the key cannot be read at all.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import struct
import sys
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``audit`` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from audit import keys  # noqa: E402  (Django-free: cryptography only)
from compliance import continuity  # noqa: E402  (Django-free too)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ARCHIVE = "the archive"  # what a BundleError names when no single member is at fault

# Bounds checked before anything is decompressed. A bundle holds a few dozen members and a manifest
# of a few kilobytes; these leave room for growth while keeping the verifier's memory small.
MAX_MEMBERS = 1000
MAX_DIRECTORY_BYTES = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024


class BundleError(Exception):
    """The bundle fails a check; ``name`` is the member at fault."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass
class Result:
    manifest: dict
    checked: list[str] = field(default_factory=list)
    timestamps: list[dict] = field(default_factory=list)


# --- The archive's layout: every byte accounted for, before anything is decompressed ----------------

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_ZIP64_LOCATOR_SIG, _ZIP64_END_SIG = 0x07064B50, 0x06064B50
_ZIP64_EXTRA = 0x0001
_FLAG_UTF8 = 0x0800
# Deflate's speed hint and UTF-8 names; never encryption (0x0001) or a data descriptor (0x0008),
# whose sizes would follow the data instead of standing in the header.
_FLAGS_ALLOWED = 0x0006 | _FLAG_UTF8
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_SAFE_SEGMENT = re.compile(r"[^\x00-\x1f\x7f\\:]+")


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    size: int


def _read_at(handle, offset: int, length: int) -> bytes:
    handle.seek(offset)
    data = handle.read(length)
    if len(data) != length:
        raise BundleError(ARCHIVE, f"truncated: {length} bytes expected at offset {offset}")
    return data


def _extra_fields(extra: bytes, where: str) -> dict[int, bytes]:
    fields, index = {}, 0
    while index < len(extra):
        if index + 4 > len(extra):
            raise BundleError(where, "a malformed extra field")
        header_id, length = struct.unpack_from("<HH", extra, index)
        if index + 4 + length > len(extra) or header_id in fields:
            raise BundleError(where, "a malformed extra field")
        fields[header_id] = extra[index + 4:index + 4 + length]
        index += 4 + length
    return fields


def _widen(values: list[int], extra: bytes, where: str) -> list[int]:
    """Replace each 32-bit field saturated at 0xFFFFFFFF by the next value of the ZIP64 extra field
    (they appear there in the order of ``values``)."""
    wide = _extra_fields(extra, where).get(_ZIP64_EXTRA, b"")
    if len(wide) % 8:
        raise BundleError(where, "a malformed ZIP64 extra field")
    supplied = list(struct.unpack(f"<{len(wide) // 8}Q", wide))
    result = []
    for value in values:
        if value == 0xFFFFFFFF:
            if not supplied:
                raise BundleError(where, "a saturated size with no ZIP64 value")
            value = supplied.pop(0)
        result.append(value)
    return result


def _check_name(raw: bytes, flags: int, seen: dict[str, str]) -> str:
    try:
        name = raw.decode("utf-8") if flags & _FLAG_UTF8 else raw.decode("cp437")
    except UnicodeDecodeError:
        raise BundleError(ARCHIVE, f"a member name that is not valid UTF-8: {raw!r}") from None
    segments = name.split("/")
    if not name or not all(_SAFE_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        raise BundleError(name, "not a plain relative file name (absolute, empty, '.', '..', '\\', ':' or "
                                "control characters): extractors would place it elsewhere or merge it")
    key = unicodedata.normalize("NFC", name).casefold()
    if seen.get(key) == name:
        raise BundleError(name, "appears more than once in the bundle")
    if key in seen:
        raise BundleError(name, f"an alias of {seen[key]} (the same name but for case or Unicode "
                                "normalisation): extractors would write one over the other")
    seen[key] = name
    return name


def _directory_bounds(handle, file_size: int) -> tuple[int, int, int]:
    """(number of entries, offset, size) of the central directory, which must end exactly where
    its end record (or the ZIP64 end record) starts, the end record closing the file."""
    if file_size < _END.size:
        raise BundleError(ARCHIVE, "not a ZIP archive (too short)")
    tail_length = min(file_size, _END.size + 0xFFFF)
    tail = _read_at(handle, file_size - tail_length, tail_length)
    found = tail.rfind(struct.pack("<I", _END_SIG))
    if found < 0:
        raise BundleError(ARCHIVE, "not a ZIP archive (no end-of-central-directory record)")
    end_offset = file_size - tail_length + found
    (_, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment_length) = _END.unpack(
        tail[found:found + _END.size].ljust(_END.size, b"\0"))
    if end_offset + _END.size + comment_length == file_size and comment_length:
        raise BundleError(ARCHIVE, f"carries an archive comment ({comment_length} bytes): a bundle has none, "
                                   "and nothing signs it")
    if end_offset + _END.size != file_size or comment_length:
        raise BundleError(ARCHIVE, f"{file_size - end_offset - _END.size} bytes after the end of the archive")
    directory_end = end_offset
    locator_offset = end_offset - _ZIP64_LOCATOR.size
    if locator_offset >= 0 and _read_at(handle, locator_offset, 4) == struct.pack("<I", _ZIP64_LOCATOR_SIG):
        _, locator_disk, zip64_offset, disks = _ZIP64_LOCATOR.unpack(
            _read_at(handle, locator_offset, _ZIP64_LOCATOR.size))
        if zip64_offset + _ZIP64_END.size != locator_offset or locator_disk or disks != 1:
            raise BundleError(ARCHIVE, "a ZIP64 end record that does not sit right before its locator")
        (signature, record_size, _, _, disk, cd_disk, disk_entries, entries, cd_size,
         cd_offset) = _ZIP64_END.unpack(_read_at(handle, zip64_offset, _ZIP64_END.size))
        if signature != _ZIP64_END_SIG or record_size != _ZIP64_END.size - 12:
            raise BundleError(ARCHIVE, "a malformed ZIP64 end record")
        directory_end = zip64_offset
    if disk or cd_disk or disk_entries != entries:
        raise BundleError(ARCHIVE, "spans several disks")
    if entries > MAX_MEMBERS or cd_size > MAX_DIRECTORY_BYTES:
        raise BundleError(ARCHIVE, f"a directory of {entries} entries and {cd_size} bytes, more than a bundle "
                                   f"may have ({MAX_MEMBERS} entries, {MAX_DIRECTORY_BYTES} bytes)")
    if cd_offset + cd_size != directory_end:
        raise BundleError(ARCHIVE, f"{directory_end - cd_offset - cd_size} bytes between the central directory "
                                   "and its end record")
    return entries, cd_offset, cd_size


def _layout(handle) -> dict[str, Member]:
    """Check that the archive is exactly its members, in order, from offset 0 to the central
    directory, and return them by name. Reads headers only; decompresses nothing."""
    handle.seek(0, os.SEEK_END)
    entries, cd_offset, cd_size = _directory_bounds(handle, handle.tell())
    directory = _read_at(handle, cd_offset, cd_size)
    members: dict[str, Member] = {}
    seen: dict[str, str] = {}
    index, position = 0, 0
    for _ in range(entries):
        if index + _CENTRAL.size > len(directory):
            raise BundleError(ARCHIVE, "a truncated central directory")
        (signature, _, _, flags, method, _, _, crc, compressed, size, name_length, extra_length,
         comment_length, disk, _, _, local_offset) = _CENTRAL.unpack_from(directory, index)
        if signature != _CENTRAL_SIG:
            raise BundleError(ARCHIVE, "a malformed central directory")
        start = index + _CENTRAL.size
        raw_name = directory[start:start + name_length]
        extra = directory[start + name_length:start + name_length + extra_length]
        index = start + name_length + extra_length + comment_length
        if index > len(directory):
            raise BundleError(ARCHIVE, "a truncated central directory")
        name = _check_name(raw_name, flags, seen)
        if comment_length:
            raise BundleError(name, "carries a member comment: a bundle has none, and nothing signs it")
        if flags & ~_FLAGS_ALLOWED or method not in _METHODS or disk:
            raise BundleError(name, f"stored in a way a bundle never is (flags {flags:#06x}, method {method}): "
                                    "encrypted, with a data descriptor, or compressed other than by deflate")
        size, compressed, local_offset = _widen([size, compressed, local_offset], extra, name)
        if local_offset > position:
            raise BundleError(name, f"{local_offset - position} bytes before it that no directory entry accounts "
                                    "for (a hidden entry that streaming readers would see)")
        if local_offset < position:
            raise BundleError(name, "starts inside the member before it (overlapping entries)")
        header = _read_at(handle, local_offset, _LOCAL.size)
        (signature, _, local_flags, local_method, _, _, local_crc, local_compressed, local_size,
         local_name_length, local_extra_length) = _LOCAL.unpack(header)
        local_name = _read_at(handle, local_offset + _LOCAL.size, local_name_length)
        local_extra = _read_at(handle, local_offset + _LOCAL.size + local_name_length, local_extra_length)
        if signature != _LOCAL_SIG:
            raise BundleError(name, "no local header where the directory says it starts")
        local_size, local_compressed = _widen([local_size, local_compressed], local_extra, name)
        if (local_name, local_flags, local_method, local_crc, local_compressed, local_size) != (
                raw_name, flags, method, crc, compressed, size):
            raise BundleError(name, "its local header disagrees with the central directory (name, method, CRC or "
                                    "sizes): readers of the two would see different files")
        position = local_offset + _LOCAL.size + local_name_length + local_extra_length + compressed
        members[name] = Member(name=name, offset=local_offset, size=size)
    if index != len(directory):
        raise BundleError(ARCHIVE, "a central directory longer than its entries")
    if position < cd_offset:
        raise BundleError(ARCHIVE, f"{cd_offset - position} bytes between the last member and the central "
                                   "directory (a hidden entry that streaming readers would see)")
    if position > cd_offset:
        raise BundleError(ARCHIVE, "the last member runs into the central directory (overlapping entries)")
    return members


# --- Reading members, never past their declared size ------------------------------------------------


def _digest(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(name) as member:
            while chunk := member.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # e.g. a CRC mismatch in a tampered archive
        raise BundleError(name, f"unreadable ({exc})") from exc
    return digest.hexdigest(), size


def _read(zf: zipfile.ZipFile, members: dict[str, Member], name: str, limit: int) -> bytes:
    """The whole member, refused before decompressing when it declares more than ``limit`` bytes
    (the read itself stops at the declared size, which ``_layout`` matched in both headers)."""
    if name not in members:
        raise BundleError(name, "missing from the bundle")
    if members[name].size > limit:
        raise BundleError(name, f"declares {members[name].size} bytes, more than the {limit} it may have")
    try:
        with zf.open(name) as member:
            return member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(name, f"unreadable ({exc})") from exc


def _signature_text(raw: bytes) -> str:
    """The base64 text of manifest.sig, which must be canonical: exactly the encoding of a
    64-byte signature and one optional newline. (A lenient decoder ignores stray whitespace and
    the unused low bits of the last character, so a changed byte could otherwise go unnoticed.)"""
    text = raw[:-1] if raw.endswith(b"\n") else raw
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        raise BundleError(SIGNATURE, "not valid base64") from None
    if len(decoded) != 64 or base64.b64encode(decoded) != text:
        raise BundleError(SIGNATURE, "not a canonical base64 Ed25519 signature")
    return text.decode("ascii")


def verify(bundle, public_key_pem: bytes, previous=None, tsa_certificate: bytes | None = None,
           witnessed: dict | None = None, witness_keys: tuple[str, ...] = ()) -> Result:
    """Check ``bundle`` (a path or binary file) against the PEM public key and, each when given, the
    checks of 5 and 6 above; raise BundleError naming the first bad file, or return the manifest."""
    public_key = keys.load_public_key(public_key_pem)
    result = _verify_path(bundle, public_key)
    transparency = result.manifest.get("transparency")
    if tsa_certificate is not None:
        from compliance import timestamp_check  # only here: it needs rfc3161-client

        result.timestamps = _checked("timestamps", timestamp_check.TimestampError, lambda: timestamp_check.check_timestamps(
            transparency or {}, public_key, tsa_certificate))
    if witnessed is not None:
        if not transparency:
            raise BundleError(MANIFEST, "checking a witnessed checkpoint needs a bundle with a checkpoint (transparency)")
        _checked("contradicts the witnessed checkpoint", continuity.ContinuityError, lambda: continuity.check_against_witnessed(
            witnessed, transparency, public_key, continuity.witness_keys(witness_keys)))
    if previous is not None:
        earlier = _verify_path(previous, public_key).manifest.get("transparency")
        if not earlier or not transparency:
            raise BundleError(MANIFEST, "continuity needs both bundles to carry a checkpoint (transparency)")
        _checked("does not extend the previous bundle", continuity.ContinuityError,
                 lambda: continuity.check_extends(earlier, transparency, public_key))
    return result


def _verify_path(bundle, public_key) -> Result:
    if hasattr(bundle, "read"):
        return _verify_open(bundle, public_key)
    with open(bundle, "rb") as handle:
        return _verify_open(handle, public_key)


def _verify_open(handle, public_key) -> Result:
    members = _layout(handle)
    handle.seek(0)
    with zipfile.ZipFile(handle) as zf:
        # zipfile reads the same directory; it must place every member where the layout did (it
        # would silently shift offsets for bytes prepended to an archive, which _layout refuses).
        if [(i.filename, i.header_offset) for i in zf.infolist()] != [(m.name, m.offset) for m in members.values()]:
            raise BundleError(ARCHIVE, "read differently by Python's zipfile than its layout says")
        manifest_bytes = _read(zf, members, MANIFEST, MAX_MANIFEST_BYTES)
        signature = _signature_text(_read(zf, members, SIGNATURE, MAX_SIGNATURE_BYTES))
        if not keys.is_valid(public_key, signature, manifest_bytes):
            raise BundleError(
                f"{MANIFEST} / {SIGNATURE}",
                f"the signature in {SIGNATURE} does not verify {MANIFEST} with the public key "
                f"{keys.fingerprint(public_key)} (one of the two was altered, or it was signed by another key)",
            )
        try:
            manifest = json.loads(manifest_bytes)
            files = manifest["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(MANIFEST, f"not a bundle manifest ({exc})") from exc
        result = Result(manifest=manifest)
        present = set(members)
        for name in sorted(files):
            if name not in present:
                raise BundleError(name, "listed in the manifest but missing from the bundle")
        extra = sorted(present - set(files) - {MANIFEST, SIGNATURE})
        if extra:
            raise BundleError(extra[0], "in the bundle but not in the manifest")
        for name in sorted(files):
            expected = files[name]
            if not isinstance(expected, dict):
                raise BundleError(MANIFEST, f"not a bundle manifest (the entry of {name} is not an object)")
            if members[name].size != expected.get("size"):
                raise BundleError(name, f"declares {members[name].size} bytes, the manifest says {expected.get('size')}")
            sha256, size = _digest(zf, name)
            if size != expected.get("size"):
                raise BundleError(name, f"size {size} bytes, the manifest says {expected.get('size')}")
            if sha256 != expected.get("sha256"):
                raise BundleError(name, f"SHA-256 {sha256} does not match the manifest's {expected.get('sha256')}")
            result.checked.append(name)
    if manifest.get("transparency") is not None:
        _checked("transparency", continuity.ContinuityError,
                 lambda: continuity.check_bundle(manifest["transparency"], public_key))
    return result


def _checked(what: str, errors, check):
    """``check()``'s result; its ``errors`` become a BundleError on the manifest, prefixed ``what``."""
    try:
        return check()
    except errors as exc:
        raise BundleError(MANIFEST, f"{what}: {exc}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Countersign evidence bundle offline.")
    parser.add_argument("bundle", help="the bundle (.zip)")
    parser.add_argument("--public-key", required=True, help="PEM file of the server's Ed25519 public key")
    parser.add_argument("--previous", help="an earlier bundle (.zip) of the same log this one must extend")
    parser.add_argument("--tsa-certificate", help="PEM certificate of the RFC 3161 timestamp authority")
    parser.add_argument("--witnessed", help="a witnessed checkpoint (.json, from audit/checkpoints/) it must agree with")
    parser.add_argument("--witness-key", action="append", default=[], metavar="VKEY",
                        help="a witness's key (C2SP vkey, name+keyid+base64); repeat for several")
    args = parser.parse_args(argv)
    try:
        pem = Path(args.public_key).read_bytes()
        tsa = Path(args.tsa_certificate).read_bytes() if args.tsa_certificate else None
        witnessed = json.loads(Path(args.witnessed).read_text("utf-8")) if args.witnessed else None
        result = verify(args.bundle, pem, previous=args.previous, tsa_certificate=tsa, witnessed=witnessed,
                        witness_keys=tuple(args.witness_key))
    except BundleError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ImportError, zipfile.BadZipFile) as exc:
        print(f"ERROR: cannot read the bundle or the key: {exc}", file=sys.stderr)
        return 2
    manifest = result.manifest
    print(
        f"OK: {len(result.checked)} files match the signed manifest "
        f"({manifest.get('framework')} {manifest.get('period', {}).get('start')}..{manifest.get('period', {}).get('end')}, "
        f"chain head #{manifest.get('audit_chain_head', {}).get('sequence')})."
    )
    if args.previous:
        print(f"OK: extends {args.previous} (tree of {manifest['transparency']['tree_size']} events).")
    for stamp in result.timestamps:
        print(f"OK: {stamp['authority']} timestamped the checkpoint of tree size {stamp['tree_size']} at {stamp['gen_time']}.")
    if args.witnessed:
        print(f"OK: agrees with the witnessed checkpoint {args.witnessed}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
