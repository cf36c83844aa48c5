"""Issue 16, item 1: the webhooks check the platform's signature, store each delivery once and
queue the work. Driven by every push, pull_request and pull_request_review example of
@octokit/webhooks-examples, signed as GitHub signs, and GitLab's documented push example."""
import pytest
from django.test import Client

from audit.models import OutboxMessage
from integrations.models import LinkedRepository, WebhookDelivery
from integrations.webhooks import TOPIC
from tests.integrations.github import SECRET, examples, gitlab_example, post_github, post_gitlab, push_with_commits


@pytest.fixture
def repositories(demo):
    return {
        "github": LinkedRepository.objects.create(platform="github", full_name="Codertocat/Hello-World",
                                                  team=demo.payments, webhook_secret=SECRET),
        "gitlab": LinkedRepository.objects.create(platform="gitlab", full_name="mike/diaspora",
                                                  team=demo.payments, webhook_secret=SECRET),
    }


def stored() -> tuple[int, int]:
    return WebhookDelivery.objects.count(), OutboxMessage.objects.filter(topic=TOPIC).count()


@pytest.mark.parametrize("event", ["push", "pull_request", "pull_request_review"])
def test_every_octokit_example_signed_as_github_signs_is_accepted_and_stored_once(repositories, event):
    client, payloads = Client(), examples(event)
    assert payloads
    for number, payload in enumerate(payloads):
        delivery = f"{event}-{number}"
        first = post_github(client, event, payload, delivery=delivery)
        assert first.status_code == 202, first.content
        assert first.json() == {"delivery": delivery, "duplicate": False}
        replay = post_github(client, event, payload, delivery=delivery)
        assert replay.status_code == 202 and replay.json()["duplicate"] is True
    assert stored() == (len(payloads), len(payloads))
    assert set(WebhookDelivery.objects.values_list("event", flat=True)) == {event}


@pytest.mark.parametrize("how", ["wrong secret", "no signature", "signature of another body"])
def test_a_wrong_signature_is_401_and_nothing_is_stored(repositories, how):
    payload = push_with_commits()
    kwargs = {
        "wrong secret": {"secret": "not the secret"},
        "no signature": {"signature": ""},
        "signature of another body": {"signature": "sha256=" + "0" * 64},
    }[how]
    response = post_github(Client(), "push", payload, **kwargs)
    assert response.status_code == 401
    assert stored() == (0, 0)


def test_a_repository_nobody_linked_or_switched_off_is_401(repositories):
    payload = push_with_commits()
    payload["repository"]["full_name"] = "Codertocat/Elsewhere"
    assert post_github(Client(), "push", payload).status_code == 401
    LinkedRepository.objects.filter(pk=repositories["github"].pk).update(is_active=False)
    assert post_github(Client(), "push", push_with_commits()).status_code == 401
    assert stored() == (0, 0)


def test_a_body_that_is_not_json_or_lacks_headers_is_400(repositories):
    client = Client()
    assert client.generic("POST", "/api/v1/integrations/github/webhook", b"not json",
                          content_type="application/json").status_code == 400
    response = post_github(client, "", push_with_commits())
    assert response.status_code == 400
    assert stored() == (0, 0)


def test_gitlab_documented_push_with_its_token_is_stored_once(repositories):
    client, payload = Client(), gitlab_example("push_hook.json")
    first = post_gitlab(client, "Push Hook", payload, delivery="gl-1")
    assert first.status_code == 202
    assert post_gitlab(client, "Push Hook", payload, delivery="gl-1").json()["duplicate"] is True
    assert stored() == (1, 1)


def test_gitlab_wrong_token_is_401_and_nothing_is_stored(repositories):
    response = post_gitlab(Client(), "Push Hook", gitlab_example("push_hook.json"), token="guess")
    assert response.status_code == 401
    assert stored() == (0, 0)
