"""The README's fingerprint command (issue 19 item 5): OpenSSL and sha256sum on the published public
key give the fingerprint the server prints and seals carry (SHA-256 of the raw 32-byte key)."""
import hashlib
import re
import shutil
import subprocess
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from audit import signing


def readme_command() -> str:
    readme = (settings.BASE_DIR / "README.md").read_text()
    section = readme[readme.index("compare its fingerprint"):]
    return re.search(r"```sh\n(openssl .*?)\n```", section, re.S).group(1)


@pytest.fixture
def key(settings, tmp_path):
    settings.SIGNING_KEY_FILE = tmp_path / "signing_key.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    (tmp_path / "countersign.pub").write_text(signing.public_key_pem())
    return tmp_path


def test_the_printed_procedure_gives_the_servers_fingerprint(key):
    for tool in ("bash", "openssl", "sha256sum", "tail", "cut"):
        assert shutil.which(tool), f"the README's command needs {tool}"
    out = StringIO()
    call_command("signing_key", "--fingerprint", stdout=out)

    done = subprocess.run(["bash", "-c", "set -o pipefail; " + readme_command()], cwd=key, capture_output=True,
                          text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == out.getvalue().strip() == signing.fingerprint()
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", "countersign.pub", "-outform", "DER"], cwd=key,
                         capture_output=True, timeout=30).stdout
    assert hashlib.sha256(der).hexdigest() != signing.fingerprint()  # why the README warns
