"""V1 on the decision endpoints (approve, reject, request changes, deployments, retry): they no
longer read the change before the service; its locked read answers 404 for a caller who may not
see the change. A change the caller may not see stays a 404 whatever the body, malformed or with
an unknown field; the same body on a change they may see is a 400. Nothing is written either way."""
import pytest

from releases import services
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import approved, change_url, pending
from tests.factories import UserFactory, bootstrap_grant

VERBS = ["approve", "reject", "request-changes", "deployments", "retry"]


@pytest.fixture
def changes(demo):
    """A payments change per verb, in the state that verb acts on."""
    failed = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    deployment = services.deployment_start(actor=demo.ops, change_request=failed)
    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="failed")
    assert ChangeRequest.objects.get(pk=failed.pk).state == ChangeRequest.State.FAILED
    return {
        "approve": pending(demo, demo.dev, demo.staging),
        "reject": pending(demo, demo.dev, demo.staging),
        "request-changes": pending(demo, demo.dev, demo.staging),
        "deployments": approved(demo, demo.dev, demo.staging, reviewers=[demo.rev]),
        "retry": failed,
    }


def valid_body(verb: str) -> dict:
    if verb in ("deployments", "retry"):
        return {"pipeline_url": "https://ci.example.com/run/9"}
    return {"revision": 1, "comment": "Say what to change."}


def who_acts(demo, verb: str):
    """A team member who holds the duty the verb needs."""
    return demo.ops if verb in ("deployments", "retry") else demo.rev


@pytest.mark.parametrize("verb", VERBS)
def test_a_valid_decision_on_an_invisible_change_is_a_404_and_writes_nothing(demo, api_as, nothing_written,
                                                                               changes, verb):
    change, client = changes[verb], api_as(demo.idev)
    with nothing_written():
        response = client.post(change_url(change, verb), valid_body(verb), format="json")
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("verb", VERBS)
def test_the_same_decision_by_a_team_member_is_answered(demo, api_as, changes, verb):
    """The counterpart of the 404s above: the bodies are good, the changes in the right state."""
    response = api_as(who_acts(demo, verb)).post(change_url(changes[verb], verb), valid_body(verb), format="json")
    assert response.status_code == (201 if verb in ("deployments", "retry") else 200), response.json()


def malformed(client, url):
    return client.post(url, data='{"revision": 1, "comment": ', content_type="application/json")


def unknown_field(verb):
    return {**valid_body(verb), "approve_anyway": True}


BAD_BODIES = {
    "malformed JSON": lambda client, url, verb: malformed(client, url),
    "unknown field": lambda client, url, verb: client.post(url, unknown_field(verb), format="json"),
}


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("verb", VERBS)
def test_a_bad_body_on_an_invisible_change_is_a_404(demo, api_as, nothing_written, changes, verb, body):
    url = change_url(changes[verb], verb)
    outsider, member = api_as(demo.idev), api_as(who_acts(demo, verb))
    with nothing_written():
        hidden = BAD_BODIES[body](outsider, url, verb)
        shown = BAD_BODIES[body](member, url, verb)
    assert hidden.status_code == 404, hidden.content
    assert set(hidden.json()) == {"detail"}
    assert shown.status_code == 400, shown.content
    if body == "unknown field":
        assert "approve_anyway" in shown.json()


@pytest.mark.parametrize("verb", VERBS)
def test_a_bad_body_on_a_missing_change_is_a_404(demo, api_as, nothing_written, verb):
    missing = ChangeRequest.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    client = api_as(demo.rev)
    with nothing_written():
        response = client.post(change_url(missing, verb), unknown_field(verb), format="json")
        valid = client.post(change_url(missing, verb), valid_body(verb), format="json")
    assert response.status_code == valid.status_code == 404


@pytest.mark.parametrize("verb", VERBS)
def test_an_audit_viewer_outside_the_team_sees_the_change_it_may_not_decide(demo, api_as, nothing_written,
                                                                             changes, verb):
    """view_audit makes the change visible (V1): the decision is refused by the policy (403), not
    hidden (404), and a bad body is a 400."""
    outsider = UserFactory(username="external-auditor")
    bootstrap_grant(outsider, "compliance", demo.identity)
    client = api_as(outsider)
    url = change_url(changes[verb], verb)
    with nothing_written():
        refused = client.post(url, valid_body(verb), format="json")
        bad = client.post(url, unknown_field(verb), format="json")
    assert refused.status_code == 403, refused.content
    assert bad.status_code == 400, bad.content
