"""``make bench``'s GitHub lines (issue 21): push webhooks accepted per second and the time until
their contributors are applied, and the deployment protection rule's round trip, each beside a
floor measured in the same run, alternating request by request so load hits both alike.

In process, in a throwaway test database: the deliveries are made with Django's test ``Client``
(the whole middleware stack and the view, no socket) to the real endpoint
(``/api/v1/integrations/github/webhook``, signed ``X-Hub-Signature-256`` as GitHub signs) and to
the floor (``bench/webhook/``: the same JSON parsed and the raw body stored in one INSERT, the same
202 answer; no signature, repository, delivery row or outbox). Celery is what a deployment runs:
``outbox.dispatch`` stamps the message and hands its id to the broker, here a queue in this
process (``Broker``: the Redis round trip is left out), and the worker's task, ``outbox.deliver``,
is run from that queue in the order handed over. One process does both, one after the other.

- ``webhooks``: BENCH_WEBHOOK_EVENTS (default 1000) ``push`` deliveries, octokit's push example
  with distinct delivery ids, each carrying the commit linked to one of BENCH_WEBHOOK_CHANGES
  (default 100) pending change requests, authored and pushed by one of BENCH_WEBHOOK_PEOPLE
  (default 50) accounts matched by e-mail and committed by another. Accepted per second is the deliveries over the time
  the endpoint took; then the worker works the queue off, and "applied" is accepting plus working
  off: until every delivery was processed and its people joined the linked change.
- ``protection``: BENCH_PROTECTION_EVENTS (default 200) ``deployment_protection_rule`` events for
  an approved production change, each for its own waiting run of the fake GitHub
  (tests/integrations/fake_github.py, on 127.0.0.1, holding every call to GitHub's OpenAPI
  description): from delivering the signed event until the fake has the callback (its receipt
  time), through the endpoint, the webhook's message and the answer's message. The floor is the
  same delivery to ``bench/webhook/`` and then one POST of an answer to the fake's callback URL
  with the installation token. The decision is taken at a Tuesday 10:00 inside every deploy window
  (``protection._now``, as the tests do), so every answer is ``approved``.
"""
import contextlib
import io
import json
import math
import os
import sys
import time
import uuid
from collections import deque
from datetime import datetime, time as dt_time, timedelta, timezone as dt_timezone
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The documented targets (docs/performance.md).
MIN_ACCEPTED_RATIO = 0.25  # accepted/s at least this fraction of the floor's
MAX_APPLIED_RATIO = 25.0  # accepting and applying at most this multiple of the floor's time to store them
MAX_PROTECTION_RATIO = 15.0  # the round trip's p95 at most this multiple of the floor's p95

FLOOR_URL = "/bench/webhook/"
REPOSITORY = "Codertocat/Hello-World"  # the octokit examples' repository
SECRET = "the repository's webhook secret"  # nosec B105: a throwaway test database's
APP_ID, APP_SECRET, INSTALLATION = "424242", "the App's webhook secret", 1  # octokit's installation id
SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # the commit of octokit's deployment example
WARM_UP = 5  # deliveries of each kind made first and not timed


class Broker:
    """Celery's broker as the web process sees it: ``outbox.dispatch`` hands message ids over
    (``deliver_outbox.apply_async``); ``work`` is the worker, running each in the order given."""

    def __init__(self):
        self.queue = deque()

    def __enter__(self):
        from audit.tasks import deliver_outbox

        self._patch = mock.patch.object(deliver_outbox, "apply_async",
                                        lambda args, **options: self.queue.append(args[0]))
        self._patch.start()
        return self

    def __exit__(self, *exc):
        self._patch.stop()

    def work_one(self) -> str:
        from audit import outbox

        return outbox.deliver(self.queue.popleft())

    def work(self) -> list[str]:
        done = []
        while self.queue:
            done.append(self.work_one())
        return done


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def tuesday_morning() -> datetime:
    """Next Tuesday 10:00 in payments' zone, inside every deploy window (as tests/integrations)."""
    from governance.models import Team

    zone = ZoneInfo(Team.objects.get(slug="payments").time_zone)
    day = datetime.now(zone).date() + timedelta(days=1)
    while day.isoweekday() != 2:
        day += timedelta(days=1)
    return datetime.combine(day, dt_time(10), tzinfo=zone).astimezone(dt_timezone.utc)


def seed_repository():
    """The demo organisation and payments' linked repository."""
    from django.core.management import call_command

    from governance.models import Team
    from integrations.models import LinkedRepository

    call_command("seed_demo", stdout=io.StringIO())
    return LinkedRepository.objects.create(platform="github", full_name=REPOSITORY, webhook_secret=SECRET,
                                           team=Team.objects.get(slug="payments"))


def seed_pushes(repository, changes: int, people: int) -> dict:
    """``people`` accounts known by e-mail only, and ``changes`` pending staging changes by dev,
    each linked to a commit of its own."""
    from django.contrib.auth import get_user_model

    from governance.models import Environment
    from integrations.sources import link_source
    from releases import services

    User = get_user_model()
    dev, staging = User.objects.get(username="dev"), Environment.objects.get(slug="staging")
    accounts = [User.objects.create_user(f"bench-{k}", f"bench-{k}@example.com") for k in range(people)]
    linked = []
    for c in range(changes):
        cr = services.change_request_create(actor=dev, team=repository.team, environment=staging,
                                            title=f"Bench change {c}",
                                            artifact=f"registry.example.com/bench@sha256:{c:064x}")
        cr = services.change_request_submit(actor=dev, change_request=cr)
        sha = f"{c + 1:040x}"
        link_source(actor=dev, change_request=cr, sha=sha, repository=repository)
        linked.append((cr.pk, sha))
    return {"changes": linked, "people": [(u.pk, u.email) for u in accounts]}


def seed_protection(repository, at: datetime) -> int:
    """An approved production change linked to the commit deployed (staged first, two portal
    sign-offs), and ops, the workflow's actor, linked as ``octo-ops``. Returns the change's pk."""
    from django.contrib.auth import get_user_model

    from governance.models import Environment
    from integrations.models import PlatformAccount
    from integrations.sources import link_source
    from releases import services

    people = {u.username: u for u in get_user_model().objects.filter(username__in=("dev", "rev", "rev2", "ops"))}
    dev, ops = people["dev"], people["ops"]
    PlatformAccount.objects.create(platform="github", login="octo-ops", user=ops)
    artifact = "registry.example.com/payments-api@sha256:" + "be" * 32
    crs = {}
    for slug in ("staging", "production"):
        cr = services.change_request_create(actor=dev, team=repository.team, environment=Environment.objects.get(
            slug=slug), title=f"Bench protection rule ({slug})", artifact=artifact, at=at)
        crs[slug] = services.change_request_submit(actor=dev, change_request=cr, at=at)
    staged = services.change_request_approve(actor=people["rev"], change_request=crs["staging"], at=at)
    deployment = services.deployment_start(actor=ops, change_request=staged, at=at)
    services.deployment_finish(actor=ops, deployment=deployment, outcome="succeeded", at=at)
    cr = crs["production"]
    for reviewer in ("rev", "rev2"):
        cr = services.change_request_approve(actor=people[reviewer], change_request=cr, via="portal", at=at)
    link_source(actor=dev, change_request=cr, sha=SHA, repository=repository, at=at)
    return cr.pk


def _delivery(event: str, payload: dict, secret: str) -> tuple[bytes, dict]:
    """The body and headers GitHub sends (built before the clock starts: signing is GitHub's work)."""
    from tests.integrations.github import sign

    body = json.dumps(payload).encode()
    return body, {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": str(uuid.uuid4()),
                  "HTTP_X_HUB_SIGNATURE_256": sign(body, secret)}


def push_deliveries(count: int, changes: list[tuple[int, str]], people: list[tuple[int, str]]) -> list:
    """``count`` signed pushes of octokit's example. Delivery ``i`` carries the commit of change
    ``c = i mod changes``, its ``r = i div changes``-th push, authored and pushed by person
    ``c + 2r`` and committed by ``c + 2r + 1`` (mod people): every delivery brings its change people
    it did not have, so each does the same work (``people`` >= twice the pushes a change gets)."""
    from tests.integrations.github import push_with_commits

    if len(people) < 2 * math.ceil(count / len(changes)):
        raise SystemExit(f"BENCH_WEBHOOK_PEOPLE: {len(people)} people give {count} pushes to {len(changes)} changes "
                         "people they did not have only if there are twice as many people as pushes to a change")
    out = []
    for i in range(count):
        r, c = divmod(i, len(changes))
        payload = push_with_commits()
        sha, commit = changes[c][1], payload["commits"][0]
        author, committer = ({"name": f"Bench Person {pk}", "email": email, "username": email.split("@")[0]}
                             for pk, email in (people[(c + 2 * r + k) % len(people)] for k in (0, 1)))
        commit.update(id=sha, message=f"Bench commit {i}\n\nChange {c}.", url=commit["url"][:-40] + sha,
                      author=author, committer=committer)
        payload.update(after=sha, head_commit={**commit}, pusher={"name": author["username"], "email": author["email"]})
        payload["sender"]["login"] = author["username"]
        out.append(_delivery("push", payload, SECRET))
    return out


def _post(client, url: str, delivery: tuple[bytes, dict]) -> float:
    body, headers = delivery
    started = time.perf_counter()
    response = client.generic("POST", url, body, content_type="application/json", **headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    return elapsed


def webhooks(count: int, seeded: dict) -> dict:
    """The burst, alternating delivery by delivery between the endpoint and the floor, then the
    worker working the queue off. Also counts the worker's statements for the first and the last
    delivery (the same, however many came before)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from integrations.models import LearntContributor, WebhookDelivery
    from releases.models import RevisionContributor
    from tests.integrations.github import GITHUB_URL

    client, deliveries = Client(), push_deliveries(WARM_UP + count, seeded["changes"], seeded["people"])
    figure, floor = [], []
    with Broker() as broker:
        for delivery in deliveries[:WARM_UP]:  # not timed: the first requests load what later ones reuse
            _post(client, GITHUB_URL, delivery)
            _post(client, FLOOR_URL, delivery)
        broker.work()
        for delivery in deliveries[WARM_UP:]:
            figure.append(_post(client, GITHUB_URL, delivery))
            floor.append(_post(client, FLOOR_URL, delivery))
        queued, statements, outcomes = len(broker.queue), [], []
        started = time.perf_counter()
        while broker.queue:
            counted = not outcomes or len(broker.queue) == 1
            with CaptureQueriesContext(connection) if counted else contextlib.nullcontext() as queries:
                outcomes.append(broker.work_one())
            if counted:
                statements.append(len(queries.captured_queries))
        worked = time.perf_counter() - started
    if set(outcomes) != {"delivered"}:
        raise RuntimeError(f"the worker did not deliver every message: {sorted(set(outcomes))}")
    change_ids = [pk for pk, _ in seeded["changes"]]
    person_ids = {pk for pk, _ in seeded["people"]}
    barred = RevisionContributor.objects.filter(change_request_id__in=change_ids, user_id__in=person_ids)
    return {
        "events": count, "deliveries": len(deliveries), "changes": len(change_ids), "people": len(person_ids), "queued": queued,
        "accept_seconds": sum(figure), "accept_p95_ms": _p95(figure) * 1e3,
        "floor_seconds": sum(floor), "floor_p95_ms": _p95(floor) * 1e3, "work_seconds": worked,
        "processed": WebhookDelivery.objects.filter(event="push", processed_at__isnull=False).count() - WARM_UP,
        "learnt": LearntContributor.objects.filter(change_request_id__in=change_ids).count(),
        "changes_applied": barred.values("change_request_id").distinct().count(),
        "contributors": barred.count(), "worker_statements": statements,
    }


def fake_github(public_key: str):
    """tests/integrations/fake_github.py's GitHub, started, noting when each run's callback arrives
    (``fake.arrived[run_id]``, this process's ``perf_counter``: the fake serves from a thread)."""
    from tests.integrations.fake_github import FakeGitHub, Installation

    fake = FakeGitHub(app_id=APP_ID, public_key=public_key)
    fake.installations[INSTALLATION] = Installation(INSTALLATION, {REPOSITORY},
                                                    {"actions": "read", "deployments": "write", "metadata": "read"})
    fake.arrived = {}
    serve = fake.serve

    def timed(handler):
        path = handler.path.split("?", 1)[0]
        if path.endswith("/deployment_protection_rule"):
            fake.arrived[int(path.rsplit("/", 2)[-2])] = time.perf_counter()
        serve(handler)

    fake.serve = timed
    return fake.start()


def protection_event(callback_url: str) -> dict:
    """octokit's deployment example with an installation, as a ``deployment_protection_rule``
    event (as tests/integrations/test_github_protection.py builds it), ops's workflow."""
    from tests.integrations.github import examples

    base = next(e for e in examples("deployment") if e.get("installation")
                and e["deployment"]["environment"] == "production")
    base["sender"]["login"] = "octo-ops"
    return {"action": "requested", "environment": "production", "event": "push", "sha": SHA,
            "ref": "refs/heads/master", "deployment": base["deployment"], "pull_requests": [],
            "deployment_callback_url": callback_url, "repository": base["repository"],
            "installation": base["installation"], "sender": base["sender"]}


FLOOR_ANSWER = {"environment_name": "production", "state": "approved", "comment": "Countersign: Approved. " + "x" * 280}


def _floor_answer(fake, run_id: int, token: str) -> None:
    import requests

    from integrations import github_app

    response = requests.post(fake.callback_url(REPOSITORY, run_id), json=FLOOR_ANSWER, timeout=10, headers={
        "Accept": github_app.ACCEPT, "X-GitHub-Api-Version": github_app.API_VERSION,
        "User-Agent": github_app.USER_AGENT, "Authorization": f"Bearer {token}"})
    if response.status_code != 204:
        raise RuntimeError(f"the fake GitHub answered the floor's callback {response.status_code}")


def protection(count: int, repository) -> dict:
    """``count`` round trips and as many floors, alternating, after ``WARM_UP`` of each (the first
    fetches the installation token, which is then kept, as in a deployment). The statements of one
    round trip are counted in the last warm-up and once more after the measured ones."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from integrations import github_app
    from integrations import protection as rule
    from integrations.models import ProtectionRequest
    from tests.integrations.github import GITHUB_URL

    at = tuesday_morning()
    change = seed_protection(repository, at)
    from tests.integrations.fake_github import app_key_pair

    private, public = app_key_pair()
    fake, client = fake_github(public), Client()
    figure, floor, statements = [], [], []
    settings = {"COUNTERSIGN_GITHUB_APP_ID": APP_ID, "COUNTERSIGN_GITHUB_PRIVATE_KEY": private,
                "COUNTERSIGN_GITHUB_API_URL": fake.url, "COUNTERSIGN_GITHUB_WEBHOOK_SECRET": APP_SECRET}
    try:
        with override_settings(**settings), mock.patch.object(rule, "_now", lambda: at), Broker() as broker:
            github_app.forget_tokens()
            for i in range(WARM_UP + count + 1):
                run_id = 2 * i + 1
                delivery = _delivery("deployment_protection_rule",
                                     protection_event(fake.wait(REPOSITORY, run_id, "production")), APP_SECRET)
                counted = i in (WARM_UP - 1, WARM_UP + count)
                with CaptureQueriesContext(connection) if counted else contextlib.nullcontext() as queries:
                    started = time.perf_counter()
                    _post(client, GITHUB_URL, delivery)
                    broker.work()
                if counted:
                    statements.append(len(queries.captured_queries))
                elif i >= WARM_UP:
                    figure.append(fake.arrived[run_id] - started)
                token = github_app.installation_token(github_app.app(), INSTALLATION, REPOSITORY)  # kept: no call
                fake.wait(REPOSITORY, run_id + 1, "production")
                started = time.perf_counter()
                _post(client, FLOOR_URL, delivery)
                _floor_answer(fake, run_id + 1, token)
                if WARM_UP <= i < WARM_UP + count:
                    floor.append(fake.arrived[run_id + 1] - started)
    finally:
        fake.stop()
        github_app.forget_tokens()
    answered = ProtectionRequest.objects.filter(change_request_id=change, state="approved").count()
    return {"events": count, "p50_ms": sorted(figure)[len(figure) // 2] * 1e3, "p95_ms": _p95(figure) * 1e3,
            "floor_p50_ms": sorted(floor)[len(floor) // 2] * 1e3, "floor_p95_ms": _p95(floor) * 1e3,
            "approved": answered, "expected": WARM_UP + count + 1, "fake_errors": fake.errors[:5],
            "statements": statements}


def run(parts: tuple[str, ...] = ("webhooks", "protection")) -> dict:
    from django.db import connection

    result = {"vendor": connection.vendor, "min_accepted_ratio": MIN_ACCEPTED_RATIO,
              "max_applied_ratio": MAX_APPLIED_RATIO, "max_protection_ratio": MAX_PROTECTION_RATIO}
    repository = seed_repository()
    if "webhooks" in parts:
        seeded = seed_pushes(repository, int(os.environ.get("BENCH_WEBHOOK_CHANGES", "100")),
                             int(os.environ.get("BENCH_WEBHOOK_PEOPLE", "50")))
        result["webhooks"] = webhooks(int(os.environ.get("BENCH_WEBHOOK_EVENTS", "1000")), seeded)
    if "protection" in parts:
        result["protection"] = protection(int(os.environ.get("BENCH_PROTECTION_EVENTS", "200")), repository)
    return result


def _ok(flag: bool) -> str:
    return "OK" if flag else "MISSED"


def lines(r: dict) -> list[tuple[str, bool]]:
    out = []
    if "webhooks" in r:
        w = r["webhooks"]
        rate, floor_rate = w["events"] / w["accept_seconds"], w["events"] / w["floor_seconds"]
        applied_seconds = w["accept_seconds"] + w["work_seconds"]
        # Every delivery brings its change two people it did not have (push_deliveries).
        complete = (w["processed"] == w["events"] and w["changes_applied"] == min(w["changes"], w["deliveries"])
                    and w["contributors"] == 2 * w["deliveries"] and len(set(w["worker_statements"])) == 1)
        ok = rate >= r["min_accepted_ratio"] * floor_rate
        out.append((f"GitHub push webhooks, {w['events']:,} signed deliveries ({r['vendor']}, in process): accepted "
                    f"{rate:.0f}/s, p95 {w['accept_p95_ms']:.1f} ms | floor (bench/webhook/: the body parsed and "
                    f"stored): {floor_rate:.0f}/s, p95 {w['floor_p95_ms']:.1f} ms | ratio {rate / floor_rate:.2f} | "
                    f"target >= {r['min_accepted_ratio']} x floor | {_ok(ok)}", ok))
        ratio = applied_seconds / w["floor_seconds"]
        ok = complete and ratio <= r["max_applied_ratio"]
        out.append((f"GitHub push webhooks' contributors applied: {w['processed']:,} of {w['events']:,} deliveries "
                    f"accepted and applied in {applied_seconds:.1f} s (accepting {w['accept_seconds']:.1f} s, one "
                    f"worker {w['work_seconds']:.1f} s = {w['events'] / w['work_seconds']:.0f}/s, "
                    f"{w['worker_statements'][0]} -> {w['worker_statements'][-1]} statements a delivery), "
                    f"{w['contributors']} contributors on {w['changes_applied']} of {w['changes']} changes | floor "
                    f"(storing the bodies): {w['floor_seconds']:.1f} s | ratio {ratio:.1f} | target every "
                    f"delivery applied, the same statements first and last, <= {r['max_applied_ratio']:g} x floor "
                    f"| {_ok(ok)}", ok))
    if "protection" in r:
        p = r["protection"]
        ratio = p["p95_ms"] / p["floor_p95_ms"]
        ok = (ratio <= r["max_protection_ratio"] and p["approved"] == p["expected"] and not p["fake_errors"]
              and len(set(p["statements"])) == 1)
        out.append((f"deployment_protection_rule round trip, {p['events']} events ({r['vendor']}, in process, the "
                    f"fake GitHub on 127.0.0.1): event in to callback at the fake p50 {p['p50_ms']:.1f} ms, p95 "
                    f"{p['p95_ms']:.1f} ms, {p['statements'][-1]} statements, {p['approved']} of {p['expected']} "
                    f"approved | floor (the same delivery to bench/webhook/, then one POST to the callback): "
                    f"p50 {p['floor_p50_ms']:.1f} ms, p95 {p['floor_p95_ms']:.1f} ms | ratio {ratio:.1f} | target "
                    f"<= {r['max_protection_ratio']:g} x floor, every answer taken | {_ok(ok)}", ok))
    return out


if __name__ == "__main__":
    os.environ["COUNTERSIGN_BENCH_ENDPOINTS"] = "1"  # before the URLs load: this process only
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment(debug=False)  # the test client's host, DEBUG off (no query log), in-memory e-mail
    old = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        measured = run(tuple(sys.argv[1:]) or ("webhooks", "protection"))
    finally:
        connection.creation.destroy_test_db(old, verbosity=0)
    print(json.dumps(measured))
