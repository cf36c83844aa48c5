"""The fuzz of tests/security/test_fuzz.py for the second half of its personas, in a file of its own
so that pytest-xdist (``--dist loadfile``) runs the two halves on two workers."""
import pytest

from tests.security.test_fuzz import SECOND_HALF, fuzz_persona
from tests.security.test_fuzz import same_connection, schema, stats, world  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.filterwarnings("ignore:No directory at:UserWarning"), pytest.mark.sweep]


@pytest.mark.parametrize("persona", SECOND_HALF)
def test_fuzz(world, db, same_connection, schema, stats, persona):
    fuzz_persona(world, schema, stats, persona)
