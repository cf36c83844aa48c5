"""Verify a Countersign evidence bundle offline, with nothing but the server's public key.

Usage (no Django, no database; needs Python 3.11+ and the ``cryptography`` package)::

    python audit/bundle_verify.py BUNDLE.zip --public-key countersign.pub
    python -m audit.bundle_verify BUNDLE.zip --public-key countersign.pub

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

Exit status: 0 when everything checks, 1 on any mismatch (the message names the file), 2 when the
bundle or the key cannot be read at all.
"""
import argparse
import base64
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``audit`` importable from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from audit import keys  # noqa: E402  (Django-free: cryptography only)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


class BundleError(Exception):
    """The bundle fails a check; ``name`` is the member at fault."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass
class Result:
    manifest: dict
    checked: list[str] = field(default_factory=list)


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


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise BundleError(name, "missing from the bundle") from None
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


def verify(bundle, public_key_pem: bytes) -> Result:
    """Check ``bundle`` (a path or a binary file) against the PEM public key; raise BundleError
    naming the first bad file, or return the verified manifest."""
    public_key = keys.load_public_key(public_key_pem)
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise BundleError(duplicates[0], "appears more than once in the bundle")
        manifest_bytes = _read(zf, MANIFEST)
        signature = _signature_text(_read(zf, SIGNATURE))
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
        present = set(names)
        for name in sorted(files):
            if name not in present:
                raise BundleError(name, "listed in the manifest but missing from the bundle")
        extra = sorted(present - set(files) - {MANIFEST, SIGNATURE})
        if extra:
            raise BundleError(extra[0], "in the bundle but not in the manifest")
        for name in sorted(files):
            expected = files[name]
            sha256, size = _digest(zf, name)
            if size != expected.get("size"):
                raise BundleError(name, f"size {size} bytes, the manifest says {expected.get('size')}")
            if sha256 != expected.get("sha256"):
                raise BundleError(name, f"SHA-256 {sha256} does not match the manifest's {expected.get('sha256')}")
            result.checked.append(name)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Countersign evidence bundle offline.")
    parser.add_argument("bundle", help="the bundle (.zip)")
    parser.add_argument("--public-key", required=True, help="PEM file of the server's Ed25519 public key")
    args = parser.parse_args(argv)
    try:
        pem = Path(args.public_key).read_bytes()
        result = verify(args.bundle, pem)
    except BundleError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"ERROR: cannot read the bundle or the key: {exc}", file=sys.stderr)
        return 2
    manifest = result.manifest
    print(
        f"OK: {len(result.checked)} files match the signed manifest "
        f"({manifest.get('framework')} {manifest.get('period', {}).get('start')}..{manifest.get('period', {}).get('end')}, "
        f"chain head #{manifest.get('audit_chain_head', {}).get('sequence')})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
