"""``evidence_verify`` (and the Django-free ``compliance/bundle_verify.py``) pass on a fresh bundle and
fail, naming the file, after any byte of any member changes, a member goes missing or appears, the
manifest is edited, or the bundle is checked with (or signed by) another key."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import CommandError, call_command

from audit import keys, signing
from compliance import bundle_verify
from tests.evidence.conftest import build_export, deploy_in

REPO = Path(settings.BASE_DIR)


@pytest.fixture
def bundle(demo, period, bundle_of):
    deploy_in(demo, demo.production, period.middle, title='=HYPERLINK("http://x","y")')
    return bundle_of(build_export(demo, "sox", period))


def _rezip(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _server_key() -> bytes:
    return signing.public_key_pem().encode()


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_a_fresh_bundle_verifies(bundle, capsys):
    result = bundle_verify.verify(bundle.path, _server_key())
    assert set(result.checked) == set(bundle.members) - {"manifest.json", "manifest.sig"}
    call_command("evidence_verify", str(bundle.path))
    assert "Bundle OK" in capsys.readouterr().out


def test_every_byte_of_every_member_is_covered(bundle, tmp_path):
    names = sorted(bundle.members)
    assert {"manifest.json", "manifest.sig", "report.html", "production_deployments.csv"} <= set(names)
    for name in names:
        data = bundle.members[name]
        for index in sorted({0, len(data) // 2, len(data) - 1}):
            tampered = _rezip({**bundle.members, name: _flip(data, index)}, tmp_path / f"t-{index}-{name}.zip")
            with pytest.raises(bundle_verify.BundleError) as failure:
                bundle_verify.verify(tampered, _server_key())
            assert name in str(failure.value), (name, index, str(failure.value))


def test_the_command_names_the_bad_file(bundle, tmp_path):
    data = bundle.members["role_grants.json"]
    tampered = _rezip({**bundle.members, "role_grants.json": data + b" "}, tmp_path / "t.zip")
    with pytest.raises(CommandError, match="role_grants.json"):
        call_command("evidence_verify", str(tampered))


def test_a_missing_or_extra_member_fails(bundle, tmp_path):
    missing = {n: d for n, d in bundle.members.items() if n != "leavers.csv"}
    with pytest.raises(bundle_verify.BundleError, match="leavers.csv: listed in the manifest but missing"):
        bundle_verify.verify(_rezip(missing, tmp_path / "missing.zip"), _server_key())
    extra = {**bundle.members, "notes.txt": b"trust me"}
    with pytest.raises(bundle_verify.BundleError, match="notes.txt: in the bundle but not in the manifest"):
        bundle_verify.verify(_rezip(extra, tmp_path / "extra.zip"), _server_key())
    no_sig = {n: d for n, d in bundle.members.items() if n != "manifest.sig"}
    with pytest.raises(bundle_verify.BundleError, match="manifest.sig: missing"):
        bundle_verify.verify(_rezip(no_sig, tmp_path / "nosig.zip"), _server_key())


def test_a_manifest_rewritten_to_match_a_tampered_file_fails_its_signature(bundle, tmp_path):
    """Editing a CSV and putting its new hash into the manifest needs the private key to re-sign."""
    import hashlib

    csv_bytes = bundle.members["production_deployments.csv"].replace(b"'=HYPERLINK", b"=HYPERLINK")
    manifest = json.loads(bundle.members["manifest.json"])
    manifest["files"]["production_deployments.csv"] = {
        "sha256": hashlib.sha256(csv_bytes).hexdigest(), "size": len(csv_bytes), "rows": 1,
    }
    members = {**bundle.members, "production_deployments.csv": csv_bytes,
               "manifest.json": json.dumps(manifest, indent=2).encode()}
    with pytest.raises(bundle_verify.BundleError, match="manifest.json"):
        bundle_verify.verify(_rezip(members, tmp_path / "t.zip"), _server_key())


def test_another_key_fails(bundle, tmp_path):
    other = Ed25519PrivateKey.generate()
    other_pem = keys.public_key_pem(other.public_key()).encode()
    with pytest.raises(bundle_verify.BundleError, match="signature"):
        bundle_verify.verify(bundle.path, other_pem)
    key_file = tmp_path / "other.pub"
    key_file.write_bytes(other_pem)
    with pytest.raises(CommandError, match="manifest.sig"):
        call_command("evidence_verify", str(bundle.path), "--public-key", str(key_file))

    # Re-signed by someone else's key: the server's key refuses it.
    import base64

    forged_sig = base64.b64encode(other.sign(bundle.members["manifest.json"])) + b"\n"
    forged = _rezip({**bundle.members, "manifest.sig": forged_sig}, tmp_path / "forged.zip")
    with pytest.raises(bundle_verify.BundleError, match="signature"):
        bundle_verify.verify(forged, _server_key())
    assert bundle_verify.verify(forged, other_pem).manifest["framework"] == "sox"  # consistent, but not ours


def test_the_standalone_script_needs_no_django(bundle, tmp_path):
    """Runs as an auditor would: a plain interpreter, no settings, only the public key file."""
    key_file = tmp_path / "countersign.pub"
    key_file.write_bytes(_server_key())
    env = {"PATH": "/usr/bin:/bin"}  # no DJANGO_SETTINGS_MODULE, no DATABASE_URL
    script = str(REPO / "compliance" / "bundle_verify.py")
    # Django made unimportable: the verifier must not need it.
    probe = f"import runpy, sys; sys.modules['django'] = None; sys.argv[0] = {script!r}; " \
            f"runpy.run_path({script!r}, run_name='__main__')"
    ok = subprocess.run([sys.executable, "-c", probe, str(bundle.path), "--public-key", str(key_file)],
                        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "OK:" in ok.stdout

    tampered = _rezip({**bundle.members, "report.html": bundle.members["report.html"] + b"<!-- -->"}, tmp_path / "t.zip")
    bad = subprocess.run([sys.executable, script, str(tampered), "--public-key", str(key_file)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 1
    assert "report.html" in bad.stderr

    unreadable = subprocess.run([sys.executable, script, str(tmp_path / "nope.zip"), "--public-key", str(key_file)],
                                capture_output=True, text=True, env=env, cwd=tmp_path)
    assert unreadable.returncode == 2
