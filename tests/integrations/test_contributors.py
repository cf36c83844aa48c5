"""Issue 16, item 1: contributors learnt from the source join the change's contributor set, over
all revisions, and nothing launders them: a co-author who reviews is barred, a force-push that
drops the commit does not un-bar, a pusher who is not the author is a contributor. Identities no
account matches are kept and shown."""
import pytest
from django.test import Client

from audit import outbox
from audit.models import OutboxMessage
from core.errors import Denied
from integrations import sources
from integrations.models import LearntContributor, LinkedRepository, PlatformAccount, SourceLink
from integrations.webhooks import TOPIC
from releases import services
from releases.selectors import ever_contributor_ids
from tests.integrations.github import SECRET, example, gitlab_example, post_github, post_gitlab, push_with_commits
from tests.releases import stories

PR_URL = "https://github.com/Codertocat/Hello-World/pull/2"  # octokit's "pull_request opened" example is #2


def work_off() -> None:
    """What the worker does: deliver every queued webhook message."""
    for pk in OutboxMessage.objects.filter(topic=TOPIC, delivered_at__isnull=True).values_list("pk", flat=True):
        assert outbox.deliver(pk) == "delivered"


@pytest.fixture
def repository(demo):
    return LinkedRepository.objects.create(platform="github", full_name="Codertocat/Hello-World",
                                           team=demo.payments, webhook_secret=SECRET)


@pytest.fixture
def change(demo, now, repository):
    """A production change by dev, pending, linked to the octokit example's pull request #2, whose
    "opened" event told Countersign its branch (``changes``). Its author, Codertocat, matches nobody."""
    cr = stories.pending_in_production(demo, now)
    sources.link_source(actor=demo.dev, change_request=cr, url=PR_URL)
    post_github(Client(), "pull_request", example("pull_request", action="opened"))
    work_off()
    assert SourceLink.objects.get(change_request=cr).head_ref == "changes"
    return cr


def barred(cr) -> frozenset[int]:
    return ever_contributor_ids(stories.reload(cr))


def pushed_to_the_pr(commit_message_suffix: str = "", *, author=None, forced=False, commit_id=None) -> dict:
    """octokit's push example with one commit, pushed to the PR's branch (``changes``), its message
    given a trailer where the story needs one."""
    payload = push_with_commits()
    payload["ref"] = "refs/heads/changes"
    payload["forced"] = forced
    commit = payload["commits"][0]
    commit["message"] += commit_message_suffix
    if author is not None:
        commit["author"] = author
        commit["committer"] = author
    if commit_id is not None:
        commit["id"] = commit_id
    return payload


def test_a_commit_co_authored_by_a_reviewer_bars_that_reviewer(demo, now, change):
    assert post_github(Client(), "push", pushed_to_the_pr("\n\nCo-authored-by: Rev <rev@example.com>")).status_code == 202
    work_off()
    assert demo.rev.pk in barred(change)
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=change, via="portal", at=now)
    assert "contributor_cannot_approve" in refused.value.codes
    learnt = LearntContributor.objects.get(change_request=change, source="co_author")
    assert (learnt.user, learnt.email) == (demo.rev, "rev@example.com")


def test_a_force_push_that_drops_the_commit_does_not_un_bar(demo, now, change):
    post_github(Client(), "push", pushed_to_the_pr("\n\nCo-authored-by: Rev <rev@example.com>"))
    work_off()
    rewritten = pushed_to_the_pr(forced=True, commit_id="f" * 40,
                                 author={"name": "Dev", "email": "dev@example.com", "username": "dev"})
    assert post_github(Client(), "push", rewritten).status_code == 202
    work_off()
    cr = services.change_request_update(actor=demo.dev, change_request=change, changes={"title": "Rewritten"}, at=now)
    assert cr.revision == 2
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    assert "contributor_cannot_approve" in refused.value.codes


def test_a_pusher_who_is_not_the_author_is_a_contributor(demo, now, change):
    PlatformAccount.objects.create(user=demo.rev2, platform="github", login="Codertocat")  # the example's pusher
    payload = pushed_to_the_pr(author={"name": "Dev", "email": "dev@example.com", "username": "dev"})
    post_github(Client(), "push", payload)
    work_off()
    assert demo.rev2.pk in barred(change)
    pusher = LearntContributor.objects.get(change_request=change, source="pusher")
    assert (pusher.user, pusher.login) == (demo.rev2, "Codertocat")
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev2, change_request=change, via="portal", at=now)
    assert "contributor_cannot_approve" in refused.value.codes


def test_the_pr_author_learnt_before_the_link_is_barred_when_the_change_links_it(demo, now, repository):
    PlatformAccount.objects.create(user=demo.rev, platform="github", login="Codertocat")
    post_github(Client(), "pull_request", example("pull_request", action="opened"))
    work_off()
    cr = stories.pending_in_production(demo, now)
    link = sources.link_source(actor=demo.dev, change_request=cr, url=PR_URL)
    assert link.head_ref == "changes"
    assert demo.rev.pk in barred(cr)


def test_identities_no_account_matches_are_kept_and_shown(demo, now):
    LinkedRepository.objects.create(platform="gitlab", full_name="mike/diaspora", team=demo.payments,
                                    webhook_secret=SECRET)
    cr = stories.pending_in_production(demo, now)
    repository = LinkedRepository.objects.get(platform="gitlab")
    sources.link_source(actor=demo.dev, change_request=cr, sha="b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                        repository=repository)
    assert post_gitlab(Client(), "Push Hook", gitlab_example("push_hook.json")).status_code == 202
    work_off()
    learnt = {(c.source, c.name, c.user_id) for c in LearntContributor.objects.filter(change_request=cr)}
    assert ("commit_author", "Jordi Mallach", None) in learnt
    assert ("pusher", "John Smith", None) in learnt
    assert barred(cr) == frozenset()  # nobody matched: nobody barred, everybody shown


def test_only_the_author_links_a_change_and_only_to_its_teams_repositories(demo, now, repository):
    cr = stories.pending_in_production(demo, now)
    with pytest.raises(Denied):
        sources.link_source(actor=demo.rev, change_request=cr, url=PR_URL)
    LinkedRepository.objects.filter(pk=repository.pk).update(team=demo.identity)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        sources.link_source(actor=demo.dev, change_request=cr, url=PR_URL)
    assert not SourceLink.objects.exists()


def test_an_approval_by_someone_later_learnt_as_a_contributor_stops_counting(demo, now, change):
    cr = services.change_request_approve(actor=demo.rev, change_request=change, via="portal", at=now)
    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, via="portal", at=now)
    assert cr.state == "approved"
    post_github(Client(), "push", pushed_to_the_pr("\n\nCo-authored-by: Rev <rev@example.com>"))
    work_off()
    with pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    assert "approvals_insufficient" in refused.value.codes


def test_the_api_links_a_change_and_shows_every_identity_learnt(demo, now, repository, api_as):
    PlatformAccount.objects.create(user=demo.rev, platform="github", login="Codertocat")
    post_github(Client(), "pull_request", example("pull_request", action="opened"))
    work_off()
    cr = stories.pending_in_production(demo, now)
    client = api_as(demo.dev)
    assert client.post(f"/api/v1/change-requests/{cr.pk}/source-links/", {"url": PR_URL, "x": 1},
                       format="json").status_code == 400
    response = client.post(f"/api/v1/change-requests/{cr.pk}/source-links/", {"url": PR_URL}, format="json")
    assert response.status_code == 201 and response.json()["pull_request"] == 2
    assert api_as(demo.rev).post(f"/api/v1/change-requests/{cr.pk}/source-links/", {"url": PR_URL},
                                 format="json").status_code == 403
    listed = client.get(f"/api/v1/change-requests/{cr.pk}/source-contributors/").json()
    assert [(c["source"], c["login"], c["user"]) for c in listed] == [("pr_author", "Codertocat", "rev")]
    assert api_as(demo.idev).get(f"/api/v1/change-requests/{cr.pk}/source-contributors/").status_code == 404


def test_linking_reads_the_backlog_in_the_same_statements_however_much_else_the_repository_sent(demo, now, repository):
    """A change linked to a commit learns from the push that carried it, in as many statements
    after 20 unrelated deliveries more (the link is a request of the API: not one query each)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sha = "ab" * 20

    def unrelated(count: int) -> None:
        for number in range(count):
            post_github(Client(), "push", pushed_to_the_pr(commit_id=f"{number:040x}"))

    def link() -> int:
        cr = stories.pending_in_production(demo, now)
        with CaptureQueriesContext(connection) as queries:
            sources.link_source(actor=demo.dev, change_request=cr, sha=sha, repository=repository)
        assert demo.rev.pk in barred(cr)
        return len(queries.captured_queries)

    unrelated(2)
    post_github(Client(), "push", pushed_to_the_pr("\n\nCo-authored-by: Rev <rev@example.com>", commit_id=sha))
    first = link()
    unrelated(20)
    assert link() == first
