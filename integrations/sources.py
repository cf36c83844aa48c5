"""What the source says about who worked on a change (issue 16, item 1), run in the worker.

A change request links to pull/merge requests and commits (``SourceLink``). Every delivery of the
linked repository is read for people: the PR/MR author, each pushed commit's author and
committer, its ``Co-authored-by`` trailers, and the pusher. Each identity is kept as a
``LearntContributor`` (matched to an account or not, never dropped) and every matched account
joins the change's contributor history through ``releases.services.contributors_learnt``, so it
is barred from approving and deploying the change in every later revision. Nothing is ever
removed: a force-push that drops a commit launders nobody.
"""
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit import outbox
from core.errors import Denied, Reason
from integrations import deployments, gitlab, payloads, protection
from integrations.models import LearntContributor, LinkedRepository, PlatformAccount, SourceLink, WebhookDelivery
from integrations.webhooks import GITHUB, TOPIC
from releases import services as release_services

S = LearntContributor.Source
CO_AUTHORED_BY = re.compile(r"^\s*co-authored-by:\s*(?P<name>[^<\n]*?)\s*<(?P<email>[^>\n]+)>\s*$", re.I | re.M)
GITHUB_NOREPLY = re.compile(r"^(?:\d+\+)?(?P<login>[A-Za-z0-9-]+)@users\.noreply\.github\.com$", re.I)
OPEN_STATES = ("draft", "pending", "approved", "deploying")


@dataclass(frozen=True)
class Identity:
    source: str
    name: str = ""
    email: str = ""
    login: str = ""
    sha: str = ""


def co_authors(message: str) -> list[tuple[str, str]]:
    return [(m["name"].strip(), m["email"].strip()) for m in CO_AUTHORED_BY.finditer(message or "")]


def _github_commit(commit: dict) -> list[Identity]:
    sha, found = str(commit.get("id", ""))[:64], []
    author, committer = payloads.obj(commit.get("author")), payloads.obj(commit.get("committer"))
    found.append(Identity(S.COMMIT_AUTHOR, author.get("name", ""), author.get("email", ""), author.get("username", ""), sha))
    if committer:
        found.append(Identity(S.COMMITTER, committer.get("name", ""), committer.get("email", ""),
                              committer.get("username", ""), sha))
    found += [Identity(S.CO_AUTHOR, name, email, "", sha) for name, email in co_authors(commit.get("message", ""))]
    return found


def _gitlab_commit(commit: dict) -> list[Identity]:
    sha, author = str(commit.get("id", ""))[:64], payloads.obj(commit.get("author"))
    found = [Identity(S.COMMIT_AUTHOR, author.get("name", ""), author.get("email", ""), "", sha)]
    found += [Identity(S.CO_AUTHOR, name, email, "", sha) for name, email in co_authors(commit.get("message", ""))]
    return found


def _branch(ref) -> str:
    return ref.removeprefix("refs/heads/") if isinstance(ref, str) and ref.startswith("refs/heads/") else ""


@dataclass(frozen=True)
class Reading:
    """What one delivery says: people, the commits and branch it is about, and the PR it is about."""

    identities: tuple[Identity, ...] = ()
    shas: tuple[str, ...] = ()
    branch: str = ""
    pull_request: int | None = None
    head_ref: str = ""


def read(delivery: WebhookDelivery) -> Reading:
    payload, event = delivery.payload, delivery.event
    if delivery.platform == GITHUB:
        if event == "push":
            commits = [c for c in payload.get("commits") or [] if isinstance(c, dict)]
            pusher = payloads.obj(payload.get("pusher"))
            sender = payloads.obj(payload.get("sender"))
            people = [i for c in commits for i in _github_commit(c)]
            if commits:  # a push of nothing (a tag, a deleted branch) contributes no code
                people.append(Identity(S.PUSHER, pusher.get("name", ""), pusher.get("email") or "",
                                       sender.get("login", "") or pusher.get("name", "")))
            return Reading(tuple(people), tuple(str(c.get("id", "")) for c in commits), _branch(payload.get("ref")))
        if event == "pull_request":
            pr = payloads.obj(payload.get("pull_request"))
            user, head = payloads.obj(pr.get("user")), payloads.obj(pr.get("head"))
            number = pr.get("number") if isinstance(pr.get("number"), int) else None
            return Reading((Identity(S.PR_AUTHOR, "", "", user.get("login", "")),), (), "", number, head.get("ref", ""))
        return Reading()  # reviews and other events: stored, nobody learnt (a reviewer is not a contributor)
    if event == "Push Hook":
        commits = [c for c in payload.get("commits") or [] if isinstance(c, dict)]
        people = [i for c in commits for i in _gitlab_commit(c)]
        if commits:
            people.append(Identity(S.PUSHER, payload.get("user_name", ""), payload.get("user_email", "") or "",
                                   payload.get("user_username", "")))
        return Reading(tuple(people), tuple(str(c.get("id", "")) for c in commits), _branch(payload.get("ref")))
    if event == "Merge Request Hook":
        attributes, user = payloads.obj(payload.get("object_attributes")), payloads.obj(payload.get("user"))
        last = payloads.obj(attributes.get("last_commit"))
        iid = attributes.get("iid") if isinstance(attributes.get("iid"), int) else None
        people = []
        if attributes.get("action") == "open":
            people.append(Identity(S.PR_AUTHOR, user.get("name", ""), user.get("email", "") or "", user.get("username", "")))
        if last:
            people += _gitlab_commit(last)
        shas = (str(last["id"]),) if last.get("id") else ()  # a change linked to the MR's head commit
        return Reading(tuple(people), shas, "", iid, attributes.get("source_branch", ""))
    return Reading()


def match(platform: str, identity: Identity):
    """The account an identity is: a linked platform account (by login, or by the login in a GitHub
    no-reply address), else the one active account with that e-mail address. None: unknown."""
    logins = {identity.login.lower()} - {""}
    noreply = GITHUB_NOREPLY.match(identity.email or "")
    if platform == GITHUB and noreply:
        logins.add(noreply["login"].lower())
    if logins:
        by_login = Q(pk__in=[])
        for login in sorted(logins):  # logins are case-insensitive on both platforms
            by_login |= Q(login__iexact=login)
        account = PlatformAccount.objects.filter(by_login, platform=platform).select_related("user").first()
        if account is not None:
            return account.user
    if identity.email and not noreply:
        users = list(get_user_model().objects.filter(email__iexact=identity.email.strip(), is_active=True)[:2])
        if len(users) == 1:
            return users[0]
    return None


def _links(delivery: WebhookDelivery, reading: Reading, only_change=None):
    links = SourceLink.objects.filter(repository=delivery.repository,
                                      change_request__state__in=OPEN_STATES).select_related("change_request")
    if only_change is not None:
        links = links.filter(change_request=only_change)
    about = Q(pk__in=[])
    if reading.pull_request is not None:
        about |= Q(pull_request=reading.pull_request)
    if reading.shas:
        about |= Q(commit_sha__in=[s for s in reading.shas if s])
    if reading.branch:
        about |= Q(pull_request__isnull=False, head_ref=reading.branch)
    return list(links.filter(about))


def apply(delivery: WebhookDelivery, *, only_change=None) -> int:
    """Learn from one delivery for the changes it concerns. Returns the identities recorded."""
    reading, at = read(delivery), timezone.now()
    learnt = 0
    for link in _links(delivery, reading, only_change):
        if reading.pull_request is not None and reading.head_ref and link.pull_request == reading.pull_request \
                and link.head_ref != reading.head_ref:
            link.head_ref = reading.head_ref[:255]
            link.save(update_fields=["head_ref"])
        cr, users = link.change_request, []
        for identity in reading.identities:
            if not (identity.email or identity.login or identity.name):
                continue
            user = match(delivery.platform, identity)
            _, created = LearntContributor.objects.get_or_create(
                change_request=cr, source=identity.source, email=identity.email[:255], login=identity.login[:100],
                commit_sha=identity.sha[:64],
                defaults={"revision": cr.revision, "name": identity.name[:255], "user": user, "delivery": delivery,
                          "learnt_at": at},
            )
            learnt += created
            if user is not None:
                users.append(user)
        if users:
            release_services.contributors_learnt(change_request=cr, users=users, source=f"{delivery.platform} "
                                                 f"{delivery.event} {delivery.delivery_id}", at=at)
    return learnt


@outbox.handler(TOPIC)
def process(payload: dict, message) -> None:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=payload["delivery"])
    if delivery.processed_at is not None:
        return
    learnt = apply(delivery)
    deployment = deployments.record(delivery)
    if deployment is not None:
        gitlab.waiting(deployment, delivery)  # a GitLab deployment blocked for approval: evaluate, answer
    delivery.processed_at = timezone.now()
    delivery.outcome = f"{learnt} identities learnt" + (f"; {deployment}" if deployment is not None else "")
    if delivery.platform == GITHUB and delivery.event == protection.EVENT:
        request = protection.requested(delivery)
        delivery.outcome = f"protection request #{request.pk} queued" if request else "not a protection request"
    delivery.save(update_fields=["processed_at", "outcome"])


def _concerns(link: SourceLink, reading: Reading) -> bool:
    """Whether ``_links`` finds ``link`` for what a delivery says (its pull request, a commit, its branch)."""
    return ((reading.pull_request is not None and link.pull_request == reading.pull_request)
            or bool(link.commit_sha and link.commit_sha in reading.shas)
            or bool(reading.branch and link.pull_request is not None and link.head_ref == reading.branch))


def learn_backlog(link: SourceLink) -> int:
    """A new link reads what the repository already sent (the PR usually exists before its change).
    Every delivery is read here and only those about the link are applied: linking costs the same
    statements however much else the repository sent."""
    total = 0
    for delivery in WebhookDelivery.objects.filter(repository=link.repository).order_by("received_at", "id").iterator():
        reading = read(delivery)
        if _concerns(link, reading):
            total += apply(delivery, only_change=link.change_request)
            if reading.pull_request is not None:
                link.refresh_from_db(fields=["head_ref"])  # the PR's event may have told its branch
    return total


URL = re.compile(
    r"^https://(?P<host>[^/]+)/(?P<path>.+?)(?:/-)?/(?P<kind>pull|merge_requests|commit)/(?P<ref>[0-9a-f]{7,64}|\d+)/?$"
)


@transaction.atomic
def link_source(*, actor, change_request, url: str = "", sha: str = "", repository: LinkedRepository | None = None,
                at=None) -> SourceLink:
    """Link a change to its PR/MR or a commit, by URL or (with ``repository``) by sha; then learn
    from what the repository already sent. Only the change's author links it."""
    if actor.pk != change_request.author_id:
        raise Denied(Reason("not_author", "Only the author links a change request to its source."))
    pull, commit = None, (sha or "").strip().lower()
    if url:
        found = URL.match(url.strip())
        if found is None:
            raise ValidationError({"url": ["Give a pull request, merge request or commit URL."]})
        platform = GITHUB if found["kind"] in ("pull", "commit") and "/-/" not in url else LinkedRepository.Platform.GITLAB
        repository = LinkedRepository.objects.filter(platform=platform, full_name=found["path"],
                                                     team=change_request.team, is_active=True).first()
        if found["kind"] == "commit":
            commit = found["ref"]
        elif found["ref"].isdigit():
            pull = int(found["ref"])
    if repository is None or repository.team_id != change_request.team_id:
        raise ValidationError({"url": ["No repository of the change's team is linked for this address."]})
    if pull is None and not re.fullmatch(r"[0-9a-f]{7,64}", commit or ""):
        raise ValidationError({"sha": ["Give a commit sha (hex)."]})
    link = SourceLink.objects.create(change_request=change_request, repository=repository, pull_request=pull,
                                     commit_sha="" if pull is not None else commit, created_at=at or timezone.now())
    audit.record("change_request.source_linked", actor=actor, target=change_request,
                 environment=change_request.environment.slug, team=change_request.team.slug,
                 data={"change_request": change_request.pk, "repository": str(repository), "pull_request": pull,
                       "commit_sha": link.commit_sha}, at=link.created_at)
    learn_backlog(link)
    link.refresh_from_db()
    return link
