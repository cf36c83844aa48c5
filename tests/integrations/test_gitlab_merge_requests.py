"""Issue 16, item 1: GitLab's documented merge request event example (tests/fixtures/gitlab,
see SOURCE.md there), delivered as GitLab delivers it, with the linked repository's token.

The example is MR !1 of ``gitlabhq/gitlab-test`` (``project.path_with_namespace``), branch
``ms-viewport``, opened by ``root`` (Administrator, admin@example.com: the demo's admin by e-mail);
its last commit da15608 is by "GitLab dev user" <gitlabdev@dv6700.(none)>, whom nobody is."""
import pytest
from django.test import Client

from audit.models import OutboxMessage
from core.errors import Denied
from integrations import sources
from integrations.models import LearntContributor, LinkedRepository, PlatformAccount, SourceLink, WebhookDelivery
from integrations.webhooks import TOPIC
from releases import services
from tests.integrations.github import SECRET, gitlab_example, post_gitlab
from tests.integrations.test_contributors import barred, work_off
from tests.releases import stories

EVENT = "Merge Request Hook"
MR_URL = "https://example.com/gitlabhq/gitlab-test/-/merge_requests/1"  # the example's project and iid
LAST_COMMIT = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


def documented() -> dict:
    return gitlab_example("merge_request_hook.json")


@pytest.fixture
def repository(demo):
    return LinkedRepository.objects.create(platform="gitlab", full_name="gitlabhq/gitlab-test", team=demo.payments,
                                           webhook_secret=SECRET)


@pytest.fixture
def change(demo, now, repository):
    cr = stories.pending_in_production(demo, now)
    sources.link_source(actor=demo.dev, change_request=cr, url=MR_URL)
    return cr


def stored() -> tuple[int, int]:
    return WebhookDelivery.objects.count(), OutboxMessage.objects.filter(topic=TOPIC).count()


def learnt(cr) -> set[tuple]:
    return {(c.source, c.name, c.email, c.login, c.commit_sha, c.user_id)
            for c in LearntContributor.objects.filter(change_request=cr)}


def test_the_documented_example_is_unchanged_as_vendored():
    payload = documented()
    assert (payload["object_kind"], payload["object_attributes"]["action"]) == ("merge_request", "open")
    assert payload["project"]["path_with_namespace"] == "gitlabhq/gitlab-test"
    assert payload["object_attributes"]["last_commit"]["id"] == LAST_COMMIT


def test_with_its_token_it_is_stored_once_and_a_replay_stores_nothing_new(demo, repository):
    client = Client()
    first = post_gitlab(client, EVENT, documented(), delivery="mr-1")
    assert first.status_code == 202, first.content
    assert first.json() == {"delivery": "mr-1", "duplicate": False}
    replay = post_gitlab(client, EVENT, documented(), delivery="mr-1")
    assert replay.status_code == 202 and replay.json()["duplicate"] is True
    assert stored() == (1, 1)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.platform, delivery.event, delivery.repository) == ("gitlab", EVENT, repository)


def test_a_wrong_token_is_401_and_nothing_is_stored(demo, change):
    response = post_gitlab(Client(), EVENT, documented(), token="guess")
    assert response.status_code == 401
    assert stored() == (0, 0)
    assert not LearntContributor.objects.exists()


def test_the_mr_author_and_the_last_commits_author_are_learnt_matched_or_kept(demo, change):
    assert post_gitlab(Client(), EVENT, documented()).status_code == 202
    work_off()
    assert learnt(change) == {
        ("pr_author", "Administrator", "admin@example.com", "root", "", demo.admin.pk),  # by e-mail
        ("commit_author", "GitLab dev user", "gitlabdev@dv6700.(none)", "", LAST_COMMIT, None),  # nobody: kept
    }
    assert barred(change) == frozenset({demo.admin.pk})
    assert SourceLink.objects.get(change_request=change).head_ref == "ms-viewport"
    delivery = WebhookDelivery.objects.get()
    assert delivery.processed_at is not None and delivery.outcome == "2 identities learnt"


def test_a_linked_gitlab_account_matches_the_mr_author_who_is_then_barred(demo, now, change):
    PlatformAccount.objects.create(user=demo.rev, platform="gitlab", login="root")  # the example's user.username
    post_gitlab(Client(), EVENT, documented())
    work_off()
    author = LearntContributor.objects.get(change_request=change, source="pr_author")
    assert (author.user, author.login) == (demo.rev, "root")
    assert demo.rev.pk in barred(change)
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=change, via="portal", at=now)
    assert "contributor_cannot_approve" in refused.value.codes


def test_the_api_shows_the_unknown_identity_with_no_account(demo, change, api_as):
    post_gitlab(Client(), EVENT, documented())
    work_off()
    listed = api_as(demo.dev).get(f"/api/v1/change-requests/{change.pk}/source-contributors/").json()
    shown = {(c["source"], c["email"], c["user"]) for c in listed}
    assert shown == {("pr_author", "admin@example.com", "admin"), ("commit_author", "gitlabdev@dv6700.(none)", None)}


def test_a_replay_and_a_redelivery_teach_each_identity_once(demo, change):
    client = Client()
    for delivery in ("mr-1", "mr-1", "mr-2"):  # a replay (same id), then GitLab re-sending (a new id)
        post_gitlab(client, EVENT, documented(), delivery=delivery)
    work_off()
    assert stored() == (2, 2)
    assert LearntContributor.objects.filter(change_request=change).count() == 2


def test_the_mr_sent_before_the_link_is_learnt_when_the_change_links_it(demo, now, repository):
    post_gitlab(Client(), EVENT, documented())
    work_off()
    cr = stories.pending_in_production(demo, now)
    link = sources.link_source(actor=demo.dev, change_request=cr, url=MR_URL)
    assert (link.pull_request, link.head_ref) == (1, "ms-viewport")
    assert demo.admin.pk in barred(cr)


def test_a_change_linked_to_the_last_commit_learns_from_the_mr(demo, now, repository):
    cr = stories.pending_in_production(demo, now)
    sources.link_source(actor=demo.dev, change_request=cr, sha=LAST_COMMIT, repository=repository)
    post_gitlab(Client(), EVENT, documented())
    work_off()
    assert ("commit_author", "GitLab dev user", "gitlabdev@dv6700.(none)", "", LAST_COMMIT, None) in learnt(cr)
    assert demo.admin.pk in barred(cr)


def test_an_mr_of_another_iid_teaches_this_change_nothing(demo, change):
    payload = documented()
    payload["object_attributes"]["iid"] = 2  # changed in memory: another MR
    payload["object_attributes"]["last_commit"]["id"] = "e" * 40
    post_gitlab(Client(), EVENT, payload)
    work_off()
    assert learnt(change) == set()


@pytest.mark.parametrize("action", ["approved", "approval"])
def test_an_approval_event_is_stored_and_teaches_nobody_that_the_approver_contributed(demo, change, action):
    """Changed in memory: the action, and the user (who approves, not who wrote)."""
    payload = documented()
    payload["object_attributes"]["action"] = action
    payload["user"] = {"id": 7, "name": "Rev", "username": "rev", "email": "rev@example.com"}
    PlatformAccount.objects.create(user=demo.rev, platform="gitlab", login="rev")
    assert post_gitlab(Client(), EVENT, payload).status_code == 202
    work_off()
    delivery = WebhookDelivery.objects.get()
    assert delivery.processed_at is not None and delivery.outcome == "1 identities learnt"
    assert {c[0] for c in learnt(change)} == {"commit_author"}
    assert demo.rev.pk not in barred(change)
