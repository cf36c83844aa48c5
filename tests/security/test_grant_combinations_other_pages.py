"""The other half of tests/security/test_grant_combinations.py's pages (every other page, from the
second), in a file of its own so that pytest-xdist (``--dist loadfile``) runs the halves on two
workers. Same grant sets, same number of examples, same assertion: no page answers 500."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.test_grant_combinations import EXAMPLES, GRANT_SETS, PERSONAS, render_without_a_crash
from tests.security.test_grant_combinations import world  # noqa: F401  (the module's fixture)

pytestmark = [pytest.mark.filterwarnings("ignore:No directory at:UserWarning"), pytest.mark.sweep]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(persona=st.sampled_from(PERSONAS), grants=GRANT_SETS, staff=st.booleans())
def test_no_page_crashes_for_any_grant_combination(world, db, persona, grants, staff):
    render_without_a_crash(world["pages"][1::2], persona, grants, staff)
