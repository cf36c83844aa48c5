"""The verifier accepts a bundle only if its bytes are exactly the signed members (issue 14,
class 6): nothing before the first member, between the members and the directory, or after the
end record; no archive comment; no duplicate or aliased names; sizes bounded before anything is
decompressed. Every crafted archive below is one Python's zipfile reads without complaint, and
(except the bombs) whose directory lists only genuine members: a central-directory reader sees
the genuine bundle while a streaming reader sees the forgery."""
import json
import subprocess
import sys
import zipfile

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit import signing
from compliance import bundle_verify
from tests.evidence import zipcraft
from tests.evidence.conftest import build_export, deploy_in

SCRIPT = str(settings.BASE_DIR / "compliance" / "bundle_verify.py")
FORGED = zipcraft.Entry.of("production_deployments.csv", b"id,title\r\n1,nothing to see\r\n")


@pytest.fixture
def bundle(demo, period, bundle_of):
    deploy_in(demo, demo.production, period.middle)
    return bundle_of(build_export(demo, "sox", period))


@pytest.fixture
def entries(bundle):
    return zipcraft.entries_of(bundle.path)


@pytest.fixture
def public_key(tmp_path):
    path = tmp_path / "countersign.pub"
    path.write_bytes(signing.public_key_pem().encode())
    return path


def _write(tmp_path, data: bytes, name="crafted.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path, public_key, match: str) -> str:
    with zipfile.ZipFile(path) as lenient:  # the forgery is an archive every lenient reader opens
        assert lenient.namelist()
    with pytest.raises(bundle_verify.BundleError, match=match) as refusal:
        bundle_verify.verify(path, public_key.read_bytes())
    return str(refusal.value)


def test_a_genuine_bundle_verifies_as_built_and_as_recrafted(bundle, entries, public_key, tmp_path):
    """The builder's own ZIP (ZIP64 local headers) and the same members laid out by zipcraft both
    pass, so each refusal below is the injected bytes' doing, not the crafting's."""
    assert bundle_verify.verify(bundle.path, public_key.read_bytes()).checked
    recrafted = _write(tmp_path, zipcraft.archive(entries))
    assert set(bundle_verify.verify(recrafted, public_key.read_bytes()).checked) == set(bundle.manifest["files"])
    call_command("evidence_verify", str(recrafted), "--public-key", str(public_key))


def test_a_bundle_in_zip64_records_throughout_verifies(bundle, public_key, tmp_path, monkeypatch):
    """A bundle past 4 GiB has ZIP64 sizes and offsets in its directory and a ZIP64 end record:
    zipfile writes them for anything past its limit, lowered here so a small bundle gets them."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 64)
    path = tmp_path / "zip64.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in bundle.members.items():
            zf.writestr(name, data)
    monkeypatch.undo()
    assert b"PK\x06\x06" in path.read_bytes()[-200:]  # the ZIP64 end record is there
    assert set(bundle_verify.verify(path, public_key.read_bytes()).checked) == set(bundle.manifest["files"])
    with pytest.raises(bundle_verify.BundleError, match="bytes after the end of the archive"):
        bundle_verify.verify(_write(tmp_path, path.read_bytes() + b"x", "zip64-trailing.zip"), public_key.read_bytes())


def test_an_entry_prepended_before_the_first_member_is_refused(entries, public_key, tmp_path):
    path = _write(tmp_path, zipcraft.archive(entries, before=FORGED.local_record()))
    message = _refused(path, public_key, "bytes before it that no directory entry accounts for")
    assert message.startswith(entries[0].name)


def test_an_entry_between_the_members_and_the_directory_is_refused(entries, public_key, tmp_path):
    path = _write(tmp_path, zipcraft.archive(entries, between=FORGED.local_record()))
    _refused(path, public_key, "the archive: .* bytes between the last member and the central directory")
    with pytest.raises(CommandError, match="between the last member and the central directory"):
        call_command("evidence_verify", str(path), "--public-key", str(public_key))


def test_an_entry_between_two_members_is_refused(entries, public_key, tmp_path):
    """Hidden between the first and the second member: the second one's directory offset skips it."""
    data = zipcraft.archive(entries[:1] + [FORGED.local_record()] + entries[1:])
    message = _refused(_write(tmp_path, data), public_key, "bytes before it that no directory entry accounts for")
    assert message.startswith(entries[1].name)


def test_trailing_bytes_after_the_end_record_are_refused(entries, public_key, tmp_path):
    path = _write(tmp_path, zipcraft.archive(entries, after=FORGED.local_record()))
    _refused(path, public_key, r"the archive: \d+ bytes after the end of the archive")


def test_an_archive_comment_is_refused(entries, public_key, tmp_path):
    path = _write(tmp_path, zipcraft.archive(entries, comment=b"Approved by the CFO, see the attached."))
    _refused(path, public_key, "the archive: carries an archive comment")


def test_a_duplicate_name_is_refused(entries, public_key, tmp_path):
    duplicate = zipcraft.Entry.of("report.html", b"<p>All controls passed.</p>")
    path = _write(tmp_path, zipcraft.archive(entries + [duplicate]))
    _refused(path, public_key, "report.html: appears more than once")


@pytest.mark.parametrize("alias, problem", [
    ("REPORT.html", "an alias of report.html"),
    ("Manifest.json", "an alias of manifest.json"),
    ("./report.html", "not a plain relative file name"),
    ("reports/../report.html", "not a plain relative file name"),
    ("/report.html", "not a plain relative file name"),
    ("report.html\\", "not a plain relative file name"),
    ("report.html\x00.txt", "not a plain relative file name"),
])
def test_a_name_alias_is_refused(entries, public_key, tmp_path, alias, problem):
    """Names an extractor would write onto (or next to) a genuine member: a case variant on a
    case-insensitive disk, a path that normalises to it, a name cut at a NUL byte."""
    path = _write(tmp_path, zipcraft.archive(entries + [zipcraft.Entry.of(alias, b"<p>forged</p>")]))
    with pytest.raises(bundle_verify.BundleError, match=problem):
        bundle_verify.verify(path, public_key.read_bytes())


def test_a_unicode_normalisation_alias_is_refused(tmp_path, public_key):
    composed, decomposed = "r\u00e9sum\u00e9.csv", "re\u0301sume\u0301.csv"
    members = [zipcraft.Entry.of(composed, b"a"), zipcraft.Entry.of(decomposed, b"b")]
    with pytest.raises(bundle_verify.BundleError, match=f"an alias of {composed}"):
        bundle_verify.verify(_write(tmp_path, zipcraft.archive(members)), public_key.read_bytes())


def test_a_local_header_naming_another_file_is_refused(entries, public_key, tmp_path):
    """A streaming reader takes names from local headers, the directory reader from the directory."""
    renamed = [zipcraft.Entry(**{**vars(e), "local_name": "payload.exe"}) if e.name == "report.html" else e
               for e in entries]
    path = _write(tmp_path, zipcraft.archive(renamed))
    with pytest.raises(bundle_verify.BundleError, match="report.html: its local header disagrees"):
        bundle_verify.verify(path, public_key.read_bytes())


# --- Bombs: refused on declared sizes, and reads bounded when the sizes lie -----------------------


def _verify_in_a_subprocess(path, public_key) -> tuple[int, str, int]:
    """(exit status, stderr, peak resident memory in MB) of the standalone verifier on ``path``.

    The peak is the process's own high-water mark (``VmHWM``) read at its end. Not
    ``getrusage(...).ru_maxrss``: Linux carries a process's maximum across ``execve``, so a child
    forked from this test process would report the test process's size, not the verifier's."""
    probe = (
        "import re, runpy, sys\n"
        "code = 0\n"
        "try:\n"
        f"    runpy.run_path({SCRIPT!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "with open('/proc/self/status') as status:\n"
        "    peak_kb = re.search(r'VmHWM:\\s+(\\d+) kB', status.read()).group(1)\n"
        "print(code, peak_kb)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(path), "--public-key", str(public_key)],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    code, peak_kb = done.stdout.split()[-2:]
    return int(code), done.stderr, int(peak_kb) // 1024


@pytest.mark.parametrize("member, declared, problem", [
    ("manifest.json", None, "manifest.json: declares 1073741824 bytes, more than the 16777216"),
    ("manifest.json", 4000, "manifest.json"),  # headers that lie: the read stops at what they declare
    ("report.html", None, "report.html: declares 1073741824 bytes, the manifest says"),
    ("report.html", 4000, "report.html"),
])
def test_a_zip_bomb_is_refused_in_little_memory(entries, public_key, tmp_path, member, declared, problem):
    """One GiB of spaces deflated to 1 MB. Before the fix the verifier inflated the whole manifest
    into memory (over a GiB); now it refuses on the declared size, or stops reading at it."""
    bomb = zipcraft.deflate_bomb(member, megabytes=1024, declared_size=declared)
    path = _write(tmp_path, zipcraft.archive([bomb if e.name == member else e for e in entries]))
    assert path.stat().st_size < 4 * 1024 * 1024
    code, stderr, peak_mb = _verify_in_a_subprocess(path, public_key)
    assert code == 1, stderr
    assert problem in stderr
    assert peak_mb < 100, f"the verifier peaked at {peak_mb} MB"


def test_the_manifest_of_a_genuine_bundle_is_far_below_the_cap(bundle):
    assert len(bundle.members["manifest.json"]) < bundle_verify.MAX_MANIFEST_BYTES // 100
    assert len(json.loads(bundle.members["manifest.json"])["files"]) + 2 < bundle_verify.MAX_MEMBERS

