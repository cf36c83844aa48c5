"""A local RFC 3161 timestamp authority (tests/timestamps/tsa.py: ``openssl ts -reply`` behind an
HTTP server on 127.0.0.1) configured as a control, with the evidence tests' fixtures (a private
bundle directory and signing key per test, a past period, bundles read back)."""
import pytest

from tests.evidence.conftest import bundle_of, evidence_settings, period  # noqa: F401 - fixtures reused
from tests.factories import set_control
from tests.timestamps import tsa as tsa_server


@pytest.fixture(scope="module")
def tsa():
    authority = tsa_server.start()
    yield authority
    authority.close()


@pytest.fixture
def authority(demo, tsa):
    """The local TSA as a control, added by an administrator (adding one applies at once)."""
    return set_control(by=demo.admin, control="audit.timestampauthority", name="Local TSA", url=tsa.url,
                       certificate=tsa.certificate, hash_algorithm="sha256", is_active=True)
