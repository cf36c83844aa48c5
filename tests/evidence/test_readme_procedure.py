"""README's by-hand verification of a bundle, taken from README.md itself and run with bash and
the standard tools it names (issue 14, class 6): a genuine bundle passes; an extra, duplicated or
hidden member, trailing bytes, a comment or a changed file stops it with a non-zero exit."""
import re
import shutil
import subprocess
import sys

import pytest
from django.conf import settings

from audit import signing
from tests.evidence import zipcraft
from tests.evidence.conftest import build_export, deploy_in

SECTION = "### How an auditor verifies a bundle on their own machine"
TOOLS = ("bash", "unzip", "openssl", "sha256sum", "base64", "diff", "sort")


def readme_procedure() -> tuple[str, str]:
    """(the shell block after "check it by hand" in the auditor section, the bundle file it names)."""
    readme = (settings.BASE_DIR / "README.md").read_text()
    section = readme[readme.index(SECTION):]
    section = section[:section.index("\n## ")]
    by_hand = section[section.index("by hand"):]
    script = re.search(r"```sh\n(.*?)```", by_hand, re.S).group(1)
    bundle_name = re.search(r"[\w.-]+\.zip", script).group(0)
    return script, bundle_name


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """The standard tools on PATH, with ``python3`` being this interpreter (standard library only)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"the README's procedure needs {missing} on this machine"
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "python3").symlink_to(sys.executable)
    return f"{bin_dir}:/usr/bin:/bin"


@pytest.fixture
def bundle(demo, period, bundle_of):
    deploy_in(demo, demo.production, period.middle)
    return bundle_of(build_export(demo, "sox", period))


def run_by_hand(archive: bytes, tmp_path, path_env) -> subprocess.CompletedProcess:
    script, bundle_name = readme_procedure()
    workdir = tmp_path / "auditor"
    workdir.mkdir()
    (workdir / bundle_name).write_bytes(archive)
    (workdir / "countersign.pub").write_bytes(signing.public_key_pem().encode())
    (workdir / "check.sh").write_text(script)
    return subprocess.run(["bash", "check.sh"], cwd=workdir, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={"PATH": path_env, "HOME": str(tmp_path), "LC_ALL": "C"})


def test_the_procedure_accepts_a_genuine_bundle(bundle, tmp_path, tools):
    done = run_by_hand(bundle.path.read_bytes(), tmp_path, tools)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature Verified Successfully" in done.stdout
    assert done.stdout.count(": OK") == len(bundle.manifest["files"])


def _extra(entries):
    return entries + [zipcraft.Entry.of("notes.txt", b"Approved by the CFO.")]


def _duplicate(entries):
    return entries + [zipcraft.Entry.of("report.html", b"<p>All controls passed.</p>")]


FORGED = zipcraft.Entry.of("production_deployments.csv", b"id,title\r\n1,nothing to see\r\n")


@pytest.mark.parametrize("forge, says", [
    (lambda e: zipcraft.archive(_extra(e)), "notes.txt"),
    (lambda e: zipcraft.archive(_duplicate(e)), "report.html"),
    (lambda e: zipcraft.archive(e, before=FORGED.local_record()), "bytes before it that no member accounts for"),
    (lambda e: zipcraft.archive(e, between=FORGED.local_record()), "bytes between the members and the directory"),
    (lambda e: zipcraft.archive(e, after=b"trailing"), "after the end record"),
    (lambda e: zipcraft.archive(e, comment=b"Approved."), "or a comment"),
    (lambda e: zipcraft.archive([zipcraft.Entry.of(x.name, b"changed") if x.name == "report.html" else x
                                 for x in e]), "report.html: FAILED"),
], ids=["extra-member", "duplicate-member", "prepended-entry", "entry-before-directory", "trailing-bytes",
        "comment", "changed-file"])
def test_the_procedure_refuses_a_forged_bundle(bundle, tmp_path, tools, forge, says):
    done = run_by_hand(forge(zipcraft.entries_of(bundle.path)), tmp_path, tools)
    assert done.returncode != 0, done.stdout + done.stderr
    assert says in done.stdout + done.stderr


def test_the_recrafted_genuine_bundle_passes_too(bundle, tmp_path, tools):
    """The refusals above are the forgeries' doing, not zipcraft's."""
    done = run_by_hand(zipcraft.archive(zipcraft.entries_of(bundle.path)), tmp_path, tools)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_procedure_compares_the_member_list_with_the_manifest():
    script, _ = readme_procedure()
    assert "unzip -Z1" in script and "diff - members.txt" in script
