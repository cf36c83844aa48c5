"""Any input gets a 4xx of the documented shape, never a 500, and nothing is written."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.shortcuts import ASSIGNMENTS, assignment_url, grant_of


@pytest.mark.parametrize("body", ['{"user": "dev2", ', '{"user": NaN}', "\ufeff"])
def test_malformed_json_is_400_in_the_field_errors_shape(demo, api_as, nothing_written, body):
    client = api_as(demo.mgr)
    with nothing_written():
        response = client.post(ASSIGNMENTS, body, content_type="application/json")
    assert response.status_code == 400
    [message] = response.json()["non_field_errors"]
    assert "JSON parse error" in message


@pytest.mark.parametrize("body", ["[]", '"dev2"', "null", "42"])
def test_a_body_that_is_not_an_object_is_400(demo, api_as, nothing_written, body):
    client = api_as(demo.mgr)
    with nothing_written():
        response = client.post(ASSIGNMENTS, body, content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_an_unsupported_media_type_is_415(demo, api_as):
    response = api_as(demo.mgr).post(ASSIGNMENTS, "user=dev2", content_type="text/plain")
    assert response.status_code == 415
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    "path", ["abc", "0", "-1", "99999999999999999999999999", "1.5", "%00", "%E2%98%83"],
)
def test_an_id_that_cannot_exist_is_404(demo, api_as, path):
    client = api_as(demo.sec)
    for response in [client.get(f"{ASSIGNMENTS}{path}/"), client.post(f"{ASSIGNMENTS}{path}/approve/")]:
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    "query", ["offset=99999999999999999999999", "limit=99999999999999999999999", "limit=-5", "offset=x"],
)
def test_absurd_paging_is_not_an_error(demo, api_as, query):
    response = api_as(demo.sec).get(f"{ASSIGNMENTS}?{query}")
    assert response.status_code == 200
    assert len(response.json()["results"]) <= 1000


def test_an_action_on_the_list_is_404_and_an_unknown_method_405(demo, api_as):
    client = api_as(demo.sec)
    assert client.post(f"{ASSIGNMENTS}approve/").status_code in (404, 405)
    response = client.delete(assignment_url(grant_of(demo.dev, "developer", demo.staging)))
    assert response.status_code == 405
    assert set(response.json()) == {"detail"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
names = st.sampled_from(["dev2", "dev", "idev", "payments", "identity", "reviewer", "manager", "production",
                         "staging", "", "nobody"])
grant_bodies = st.fixed_dictionaries(
    {},
    optional={
        "user": names | json_values,
        "role": names | json_values,
        "team": names | json_values,
        "environment": names | json_values,
        "justification": st.text(max_size=30) | json_values,
        "expires_at": st.sampled_from(["2000-01-01T00:00:00Z", "2999-01-01", "soon", ""]) | json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=grant_bodies)
def test_any_grant_request_is_answered_without_a_server_error(demo, api_as, body):
    response = api_as(demo.mgr).post(ASSIGNMENTS, json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400, 403), (body, response.status_code)
    data = response.json()
    if response.status_code == 400:
        assert all(isinstance(messages, list) for messages in data.values()), data
    if response.status_code == 403:
        assert data["reasons"] and all(set(reason) == {"code", "message"} for reason in data["reasons"])
