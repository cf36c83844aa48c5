"""``manage.py bench_seed --scale small|medium|large``: a deterministic organisation at benchmark size.

Why bulk rows and not the services: ``large`` holds millions of rows and the services write one
change, one audit event and one history row per call (about 2 ms each), so loading through them
would take days. The generator therefore writes the rows directly, in bulk (PostgreSQL ``COPY``,
``bulk_create`` elsewhere), but only rows the services could have produced: valid states,
approvals by people other than the author, deployers who neither wrote nor approved the change,
grants that respect the conflict rules and four eyes, and one audit event per service call,
hash-chained with ``audit.chain.compute_hash`` so ``manage.py audit_verify`` passes.

What each scale holds (the numbers in ``SCALES``; the bench organisation below comes on top):

============================ ======== ======== =========
                             small    medium   large
============================ ======== ======== =========
users                        100      1,000    10,000
teams                        5        50       500
environments (1/3 per tier)  6        15       30
role assignments (all)       1,000    10,000   100,000
change requests (history)    2,400    24,000   240,000
approvals (at least)         5,000    50,000   500,000
deployments                  2,000    20,000   200,000
audit events (at least)      20,000   200,000  2,000,000
queue: pending / approved    200/20   2,000/200 20,000/2,000
============================ ======== ======== =========

Measured: ``large`` loads in 8.5 minutes on PostgreSQL on this 2-core machine shared with other
work (load average 6-8; the seeding process itself used 105 s of CPU, 360 MB peak), making a
2.7 GB database. The command runs ``VACUUM (ANALYZE)`` afterwards on PostgreSQL.

The organisation: environments come in stacks of three (``development-NN``, ``staging-NN``,
``production-NN``); each team works on three stacks. In a team of about twenty: one manager
(manager role), one security officer (security, every environment), four reviewers, three
operators and the rest developers, each holding their duty on the team's nine environments.
At ``large`` about 80 % of the grants are in force (fewer at the small scales); the rest are expired predecessors of privileged grants
(privileged grants last at most 90 days, so the ones in force were granted in the last 80 days).
Policies: development needs 1 approval, staging 2, production 3 of which one security and one
team reviewer, with portal sign-off; no approval TTL, deploy windows, freezes or prior-environment
rules, no auto-approval and no emergency changes (so the history needs no PIRs).

Change requests span the two years before the anchor (``anchor``, default: now, to the hour),
on weekdays 08:00-18:00 UTC, so an evidence export for any period gets a slice. 200k of the
240k historical ones were deployed (93 % succeeded, 4 % failed, 3 % rolled back); the rest were
rejected or cancelled, and the most recent are still draft, pending or approved. Some went
through a second revision (their first-revision approvals are stale): that is how the approval
count reaches its floor. Authors' draft edits (``change_request.updated``) top the audit log up to
its floor. Every event carries a per-user IP, a user agent and a request id as the middleware
would have set them.

The bench organisation, which the benchmarks use (``bench_fixtures()`` returns the ids):

- team ``bench-team``, environment ``bench-prod`` (production tier; its policy needs one
  approval, through the API, no TTL, no window: so ``approve`` then ``deploy`` is a two-call path);
- personas, password ``countersign-bench``, each with an API token retrievable from
  ``bench_fixtures()["tokens"]`` (deterministic, valid one year from the anchor: bench data only,
  never in a real installation): ``bench-admin`` (superuser), ``bench-mgr`` (manager),
  ``bench-sec`` (security, every environment), ``bench-dev`` and ``bench-dev2`` (developer),
  ``bench-rev`` and ``bench-rev2`` (reviewer), ``bench-ops`` (operations), ``bench-auditor``
  (compliance, staff);
- ``queue_pending`` change requests by bench-dev/bench-dev2, submitted, with no approval yet: each
  approvable by bench-rev, bench-rev2 or bench-sec, after which bench-ops may deploy it;
- ``queue_approved`` change requests approved by bench-rev, waiting for bench-ops to deploy;
- one more approved change, ``gate_ready``, for ``GET gate/`` (leave it undeployed).
The privileged persona grants expire 89 days after the anchor: re-seed older bench databases.

What is skipped: simple-history rows (only the admin's History pages read them; a service call
on seeded rows writes its own history from then on), change request contributors, escalation
reminders, alerts, seals (``audit_seal`` seals the head on its next run) and access reviews.
Guardian object permissions and model permissions *are* written, exactly as
``governance.permissions.sync_permissions`` derives them, so the drift scan finds nothing.
The grants in force were made in the last 80 days while most history is older, so a report that
joins past actions to the grant held at that moment will not find one for older actions.

Seeding refuses to run twice (``BenchDataExists``): it checks for the bench team. It appends to
the audit chain after whatever is already there, holding the chain head's lock throughout.
"""
import base64
import hashlib
import heapq
import json
import random
import time
from datetime import datetime, timedelta, timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.chain import _lock_head, compute_hash, json_safe
from audit import merkle, tree
from audit.models import AuditEvent, ChainHead, MerkleNode
from governance import duties, seeds
from governance.models import ApiToken, ConflictRule, Environment, Membership, Role, RoleAssignment, RoleDuty, Team
from governance.permissions import _permissions
from releases import decisions
from releases.fields import CanonicalJSONField
from releases.models import Approval, ApprovalPolicy, ChangeRequest, Deployment

SEED = 20240611
PASSWORD = "countersign-bench"  # bench databases only, published in the docstring  # nosec B105
BENCH_TEAM = "bench-team"
BENCH_ENV = "bench-prod"
PERSONAS = [  # username, role slug (None: no grant), is_staff, is_superuser
    ("bench-admin", None, True, True),
    ("bench-mgr", "manager", True, False),
    ("bench-sec", "security", True, False),
    ("bench-dev", "developer", False, False),
    ("bench-dev2", "developer", False, False),
    ("bench-rev", "reviewer", False, False),
    ("bench-rev2", "reviewer", False, False),
    ("bench-ops", "operations", False, False),
    ("bench-auditor", "compliance", True, False),
]
GATE_READY_TITLE = "Bench: gate-ready change"

SCALES = {
    "small": {
        "users": 100, "teams": 5, "environments": 6, "role_assignments": 1_000, "change_requests": 2_400,
        "deployments": 2_000, "approvals": 5_000, "audit_events": 20_000, "queue_pending": 200, "queue_approved": 20,
    },
    "medium": {
        "users": 1_000, "teams": 50, "environments": 15, "role_assignments": 10_000, "change_requests": 24_000,
        "deployments": 20_000, "approvals": 50_000, "audit_events": 200_000, "queue_pending": 2_000,
        "queue_approved": 200,
    },
    "large": {
        "users": 10_000, "teams": 500, "environments": 30, "role_assignments": 100_000, "change_requests": 240_000,
        "deployments": 200_000, "approvals": 500_000, "audit_events": 2_000_000, "queue_pending": 20_000,
        "queue_approved": 2_000,
    },
}

US, MINUTE, HOUR, DAY = 1, 60_000_000, 3_600_000_000, 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
TIERS = [("development", "Development", 1), ("staging", "Staging", 2), ("production", "Production", 3)]
REQUIRED = {"development": 1, "staging": 2, "production": 3}
API_UA = "countersign-ci/2.3 (+https://ci.example.com)"
PORTAL_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
WORDS = ["payments", "ledger", "checkout", "search", "identity", "billing", "catalog", "webhooks", "reports",
         "gateway", "scheduler", "notifications", "pricing", "inventory", "fraud", "onboarding"]
VERBS = ["Upgrade", "Fix", "Tune", "Add", "Remove", "Refactor", "Patch", "Roll out", "Harden", "Migrate"]
OBJECTS = ["retry policy", "connection pool", "TLS library", "cache headers", "feature flag", "index",
           "rate limiter", "logging", "schema", "dependency", "timeout", "healthcheck"]
APPROVE_COMMENTS = ["Looks good.", "LGTM; rollback plan is clear.", "Reviewed the diff and the tests.", "Fine.", ""]
REJECT_COMMENTS = ["Needs a rollback plan first.", "Tests are missing.", "Split this into smaller changes."]


class BenchDataExists(Exception):
    """The database already holds bench data; seeding twice would duplicate it."""


def token_key(username: str) -> str:
    """The persona's API key: derived from the name, so benchmarks can recompute it (bench data only)."""
    digest = hashlib.sha256(f"countersign-bench-token:{username}".encode()).digest()
    return "cs_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _to_us(dt: datetime) -> int:
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _work(us: int) -> int:
    """``us`` moved forward into working hours (weekdays 08:00-18:00 UTC)."""
    day, rest = divmod(us, DAY)
    if rest < 8 * HOUR:
        rest += 8 * HOUR
    elif rest >= 18 * HOUR:
        day, rest = day + 1, 8 * HOUR + (rest - 18 * HOUR) % (2 * HOUR)
    while (day + 3) % 7 >= 5:  # 1970-01-01 was a Thursday; Monday = 0
        day += 1
    return day * DAY + rest


class _Event:
    """What ``audit.chain.canonical`` reads, without a model instance per event."""

    __slots__ = ("sequence", "created_at", "actor_id", "actor_username", "action", "target_type", "target_id",
                 "target_repr", "environment", "team", "ip", "user_agent", "request_id", "data")


class _Writer:
    """Appends rows to tables: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere. Rows are tuples
    in the order of the model's concrete fields (attnames)."""

    def __init__(self):
        self.pg = connection.vendor == "postgresql"

    @staticmethod
    def columns(model) -> list[str]:
        return [f.attname for f in model._meta.concrete_fields]

    def write(self, model, rows) -> None:
        if not rows:
            return
        fields = model._meta.concrete_fields
        if self.pg:
            # JSON values as the column stores them: jsonb text, or a CanonicalJSONField's canonical text.
            json_at = [(i, f.get_prep_value if isinstance(f, CanonicalJSONField) else json.dumps)
                       for i, f in enumerate(fields)
                       if f.get_internal_type() == "JSONField" or isinstance(f, CanonicalJSONField)]
            quote = connection.ops.quote_name
            cols = ", ".join(quote(f.column) for f in fields)
            with connection.cursor() as cursor:
                with cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        if json_at:
                            row = list(row)
                            for i, encode in json_at:
                                row[i] = encode(row[i])
                        copy.write_row(row)
        else:
            names = [f.attname for f in fields]
            model.objects.bulk_create([model(**dict(zip(names, row, strict=True))) for row in rows], batch_size=500)


_DEFAULTS: dict = {}


def _row(model, **values) -> tuple:
    """A full row for ``model`` (concrete fields in order): the given values, field defaults for the rest."""
    if model not in _DEFAULTS:
        _DEFAULTS[model] = [(f.attname, f.get_default()) for f in model._meta.concrete_fields]
    defaults = _DEFAULTS[model]
    unknown = values.keys() - {name for name, _ in defaults}
    if unknown:
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)}")
    return tuple(values.get(name, default) for name, default in defaults)


def _next_id(model) -> int:
    return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1


def _resolve(scale) -> dict:
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
        scale = SCALES[scale]
    spec = {**SCALES["small"], **scale}
    if spec["environments"] % 3 or spec["environments"] < 3:
        raise ValueError("environments must be a positive multiple of 3 (one per tier in each stack).")
    if spec["teams"] < 2 or spec["users"] < 10 * spec["teams"]:
        raise ValueError("Need at least 2 teams and 10 users per team.")
    if spec["deployments"] > spec["change_requests"]:
        raise ValueError("A change request is deployed at most once: deployments <= change_requests.")
    return spec


def bench_fixtures() -> dict:
    """Ids the benchmarks use: personas, their API keys and password, the bench team and
    environment, the change requests awaiting approval and deployment, and the gate-ready change."""
    users = dict(get_user_model().objects.filter(username__in=[p[0] for p in PERSONAS]).values_list("username", "pk"))
    team = Team.objects.get(slug=BENCH_TEAM)
    env = Environment.objects.get(slug=BENCH_ENV)
    gate_ready = ChangeRequest.objects.get(environment=env, title=GATE_READY_TITLE).pk
    open_changes = ChangeRequest.objects.filter(environment=env).exclude(pk=gate_ready).order_by("pk")
    return {
        "users": users,
        "password": PASSWORD,
        "tokens": {name: token_key(name) for name in users},
        "team": team.pk,
        "environment": env.pk,
        "pending": list(open_changes.filter(state=ChangeRequest.State.PENDING).values_list("pk", flat=True)),
        "approved": list(open_changes.filter(state=ChangeRequest.State.APPROVED).values_list("pk", flat=True)),
        "gate_ready": gate_ready,
    }


def seed(scale: str | dict, *, stdout=None, anchor: datetime | None = None) -> dict:
    """Load ``scale`` (a name in ``SCALES`` or a dict overriding ``small``) in one transaction and
    return the number of rows written per table. Same scale and anchor: same rows, same hashes."""
    spec = _resolve(scale)
    anchor = (anchor or timezone.now()).astimezone(dt_timezone.utc).replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        if Team.objects.filter(slug=BENCH_TEAM).exists():
            raise BenchDataExists("This database already holds bench data (team bench-team); seed a fresh database.")
        head = _lock_head()
        return _Seeder(spec, anchor, head, stdout).run()


class _Seeder:
    def __init__(self, spec, anchor, head, stdout):
        self.spec, self.head, self.stdout = spec, head, stdout
        self.rng = random.Random(SEED)  # deterministic test data, not secrets  # nosec B311
        self.anchor = _to_us(anchor)
        self.start = self.anchor - 760 * DAY
        self.writer = _Writer()
        self.counts: dict[str, int] = {}
        self.buffers: dict = {}
        self.events: list = []  # heap of (time, order, builder, argument)
        self.order = 0
        self.sequence, self.prev_hash = head.sequence, head.hash
        if not tree.in_step(head):
            raise RuntimeError("The chain head's Merkle tree is out of step: run audit.tree.rebuild() first")
        self.compact = merkle.CompactRange(head.tree_size, [bytes.fromhex(h) for h in head.compact_range])
        self.last_use: dict = {}
        self.started = time.perf_counter()

    # --- plumbing -------------------------------------------------------------------------------

    def say(self, message):
        if self.stdout is not None:
            self.stdout.write(f"[{time.perf_counter() - self.started:7.1f}s] {message}\n")

    def add(self, model, row, flush_at=20_000):
        rows = self.buffers.setdefault(model, [])
        rows.append(row)
        if len(rows) >= flush_at:
            self.flush(model)

    def flush(self, model=None):
        for m in [model] if model else list(self.buffers):
            rows = self.buffers.get(m) or []
            self.writer.write(m, rows)
            self.counts[m._meta.label] = self.counts.get(m._meta.label, 0) + len(rows)
            self.buffers[m] = []

    def event(self, at, action, actor, target_type, target_id, target_repr, env="", team="", data=None,
              ua=API_UA, lazy=None):
        """Queue one audit event for time ``at``; events are chained in time order."""
        self.order += 1
        fields = lazy or (action, actor, target_type, target_id, target_repr, env, team, data, ua)
        heapq.heappush(self.events, (at, self.order, fields))

    def emit_until(self, until):
        while self.events and self.events[0][0] <= until:
            at, _, fields = heapq.heappop(self.events)
            if callable(fields[0]):
                fields = fields[0](*fields[1:])
            action, actor, target_type, target_id, target_repr, env, team, data, ua = fields
            self.sequence += 1
            e = _Event()
            created = _to_dt(at)
            e.sequence, e.created_at = self.sequence, created.isoformat(timespec="microseconds")
            e.actor_id, e.actor_username = (actor[0], actor[1]) if actor else (None, "")
            e.action, e.target_type, e.target_id, e.target_repr = action, target_type, str(target_id), target_repr[:255]
            e.environment, e.team, e.data = env, team, data or {}
            if actor and ua:
                e.ip, e.user_agent, e.request_id = self.ips[actor[0]], ua, f"{self.rng.getrandbits(128):032x}"
            else:
                e.ip, e.user_agent, e.request_id = None, "", ""
            digest = compute_hash(e, self.prev_hash)
            self.add(AuditEvent, (self.audit_id, self.sequence, created, e.actor_id, e.actor_username, action,
                                  e.target_type, e.target_id, e.target_repr, env, team, e.ip, e.user_agent,
                                  e.request_id, e.data, self.prev_hash, digest), flush_at=50_000)
            self.audit_id += 1
            self.prev_hash = digest
            for (level, index), node in self.compact.append(merkle.event_leaf(digest)):
                self.add(MerkleNode, (MerkleNode.position_of(level, index), node.hex()), flush_at=50_000)

    def when(self, lo, hi):
        return _work(self.rng.randrange(lo, hi))

    def after(self, at, lo_minutes, hi_minutes):
        return _work(at + self.rng.randrange(lo_minutes * MINUTE, hi_minutes * MINUTE) + self.rng.randrange(MINUTE))

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> dict:
        if _Writer.columns(AuditEvent)[0] != "id" or len(_Writer.columns(AuditEvent)) != 17:
            raise RuntimeError("AuditEvent's columns changed: update the bench generator's audit rows")
        self.audit_id = _next_id(AuditEvent)
        self.organisation()
        self.say("organisation planned")
        self.grants()
        self.say("grants planned")
        self.changes()
        self.emit_until(float("inf"))
        self.flush()
        self.say("changes and audit events written")
        self.write_grants_and_permissions()
        ChainHead.objects.update_or_create(pk=1, defaults={
            "sequence": self.sequence, "hash": self.prev_hash, "tree_size": self.compact.size,
            "compact_range": [h.hex() for h in self.compact.hashes]})
        models = [get_user_model(), Team, Membership, Environment, ApprovalPolicy, RoleAssignment, ChangeRequest,
                  Approval, Deployment, AuditEvent, ApiToken, UserObjectPermission, get_user_model().user_permissions.through]
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
        self.say("done")
        result = {label.split(".")[-1]: n for label, n in sorted(self.counts.items())}
        result["chain_head"] = self.prev_hash
        result["seconds"] = round(time.perf_counter() - self.started, 1)
        return result

    def organisation(self):
        spec, rng, User = self.spec, self.rng, get_user_model()
        t0 = _work(self.start)
        user_id, team_id, env_id = _next_id(User), _next_id(Team), _next_id(Environment)
        membership_id, policy_id = _next_id(Membership), _next_id(ApprovalPolicy)
        self.users = {}  # id -> username
        self.policies = {}  # environment id -> (policy id, values as a decision record shows them, knobs)
        self.ips = {}
        self.joined = {}
        persona_password = make_password(PASSWORD)

        def user(username, joined, *, staff=False, superuser=False, password=None):
            nonlocal user_id
            pk = user_id
            user_id += 1
            self.users[pk] = username
            self.joined[pk] = joined
            # Personas act from the benchmark's client, so their first request raises no new-IP alert.
            self.ips[pk] = "127.0.0.1" if password else f"10.{(pk >> 16) & 255}.{(pk >> 8) & 255}.{pk & 255}"
            login = self.anchor - rng.randrange(HOUR, 7 * DAY)
            self.add(User, _row(User, id=pk, password=password or f"!bench{pk}", last_login=_to_dt(login),
                                is_superuser=superuser, username=username, email=f"{username}@example.com",
                                is_staff=staff, is_active=True, date_joined=_to_dt(joined)))
            self.event(joined, "user.provisioned", None, "auth.user", pk, username, data={
                "username": username, "is_staff": staff, "is_superuser": superuser, "source": "bench_seed"})
            return pk

        self.personas = {}
        for username, _, staff, superuser in PERSONAS[:1]:
            self.personas[username] = user(username, t0, staff=staff, superuser=superuser, password=persona_password)
        admin = (self.personas["bench-admin"], "bench-admin")

        # Environments in stacks of three, then the bench environment.
        self.envs = []  # (id, slug, tier)
        stacks = spec["environments"] // 3
        for s in range(stacks):
            for tier, label, order in TIERS:
                self.envs.append((env_id, f"{tier}-{s + 1:02d}", tier, f"{label} {s + 1:02d}", order * 100 + s))
                self.add(Environment, _row(Environment, id=env_id, name=f"{label} {s + 1:02d}",
                                           slug=f"{tier}-{s + 1:02d}", tier=tier, order=order * 100 + s))
                env_id += 1
        self.bench_env = (env_id, BENCH_ENV, "production", "Bench production", 999)
        self.add(Environment, _row(Environment, id=env_id, name="Bench production", slug=BENCH_ENV,
                                   tier="production", order=999))
        at = t0
        for pk, slug, tier, name, order in self.envs + [self.bench_env]:
            at += MINUTE
            self.event(at, "environment.created", admin, "governance.environment", pk, name, env=slug, data={
                "name": name, "slug": slug, "tier": tier, "order": order, "time_zone": "UTC"})
            knobs = ({"min_approvals": 1} if slug == BENCH_ENV else
                     {"min_approvals": 3, "min_security_approvals": 1, "team_reviewer_required": True,
                      "require_interactive_signoff": True} if tier == "production" else
                     {"min_approvals": REQUIRED[tier]})
            policy = ApprovalPolicy(id=policy_id, environment_id=pk, **knobs)
            self.policies[pk] = (policy_id, decisions.policy_values(policy, None), knobs)
            self.add(ApprovalPolicy, tuple(getattr(policy, c) for c in _Writer.columns(ApprovalPolicy)))
            self.event(at + 1, "approval_policy.created", admin, "releases.approvalpolicy", policy_id,
                       f"Policy for {slug}", env=slug, data=json_safe(
                           {f.name: getattr(policy, f.attname) for f in policy._meta.concrete_fields if f.name != "id"}))
            policy_id += 1

        # Teams of about twenty: manager, security, four reviewers, three operators, developers.
        self.teams = []  # dict per team
        n_teams = spec["teams"]
        base, extra = divmod(spec["users"], n_teams)
        n = 0
        for t in range(n_teams + 1):
            bench = t == n_teams
            slug, name = (BENCH_TEAM, "Bench team") if bench else (f"squad-{t + 1:03d}", f"Squad {t + 1:03d}")
            self.add(Team, _row(Team, id=team_id, name=name, slug=slug, time_zone="UTC"))
            self.event(t0 + HOUR + t, "team.created", admin, "governance.team", team_id, name, team=slug,
                       data={"name": name, "slug": slug, "time_zone": "UTC"})
            team = {"id": team_id, "slug": slug, "members": []}
            if bench:
                joined = self.anchor - 30 * DAY
                for username, _, staff, superuser in PERSONAS[1:]:
                    self.personas[username] = user(username, joined, staff=staff, superuser=superuser,
                                                   password=persona_password)
                    joined += MINUTE
                team["members"] = [self.personas[p[0]] for p in PERSONAS[1:]]
                self.bench_team = team
            else:
                stack0 = t % stacks
                team["envs"] = [self.envs[((stack0 + k) % stacks) * 3 + i] for k in range(min(3, stacks)) for i in range(3)]
                size = base + (1 if t < extra else 0)
                joined = self.when(self.start + 2 * DAY, self.start + 30 * DAY)
                for i in range(size):
                    n += 1
                    team["members"].append(user(f"eng{n:05d}", joined + i * MINUTE))
                self.teams.append(team)
            for i, member in enumerate(team["members"]):
                manager = i == 0
                joined_at = _to_dt(self.joined[member] + 5 * MINUTE)
                self.add(Membership, _row(Membership, id=membership_id, user_id=member, team_id=team_id,
                                          is_manager=manager, joined_at=joined_at))
                self.event(_to_us(joined_at), "team.member_added", admin, "governance.membership", membership_id,
                           f"{self.users[member]} in {slug}", team=slug,
                           data={"user": self.users[member], "is_manager": manager})
                membership_id += 1
            team_id += 1
        for team in self.teams:
            m = team["members"]
            team.update(manager=m[0], security=m[1], reviewers=m[2:6], operators=m[6:9], developers=m[9:])
        self.flush()

    # --- grants ---------------------------------------------------------------------------------

    def grants(self):
        rng, spec = self.rng, self.spec
        # The standard roles come from a migration, but a flushed database (transactional tests)
        # has none: make sure they are there, as seed_demo does.
        seeds.ensure(Role, RoleDuty, ConflictRule)
        roles = {r.slug: r for r in Role.objects.prefetch_related("duties")}
        self.role_duties = {r.slug: {d.duty for d in r.duties.all()} for r in roles.values()}
        self.role_ids = {slug: r.pk for slug, r in roles.items()}
        self.grant_rows = []  # dicts, ids assigned after sorting by created_at
        admin = self.personas["bench-admin"]

        def grant(user, role, team, env, requester, approver, created):
            privileged = role in ("security", "manager") or (env is not None and env[2] == "production")
            g = {"user": user, "role": role, "team": team, "env": env, "requester": requester, "approver": approver,
                 "privileged": privileged, "created": created, "status": "active"}
            if privileged:
                g["approved"] = created + rng.randrange(10 * MINUTE, 4 * HOUR)
                g["expires"] = created + 90 * DAY
            else:
                g["approved"], g["expires"] = created, None
            self.grant_rows.append(g)
            return g

        recent = lambda: self.when(self.anchor - 80 * DAY, self.anchor - 20 * DAY)  # noqa: E731
        teams = self.teams
        for t, team in enumerate(teams):
            next_security = teams[(t + 1) % len(teams)]["security"]
            early = self.when(self.start + 31 * DAY, self.start + 60 * DAY)
            for who, role, duty_envs in (
                [(team["manager"], "manager", [None]), (team["security"], "security", [None])]
                + [(u, "reviewer", team["envs"]) for u in team["reviewers"]]
                + [(u, "operations", team["envs"]) for u in team["operators"]]
                + [(u, "developer", team["envs"]) for u in team["developers"]]
            ):
                for env in duty_envs:
                    requester = admin if role == "manager" else team["manager"]
                    approver = next_security if role == "security" else team["security"]
                    privileged = role in ("security", "manager") or env[2] == "production"
                    grant(who, role, team, env, requester, approver,
                          recent() if privileged else _work(early + rng.randrange(DAY)))
        # The bench organisation: everything in force, granted a day before the anchor.
        p, bench = self.personas, self.bench_team
        at = self.anchor - DAY
        for username, role, _, _ in PERSONAS[1:]:
            env = None if role in ("manager", "security", "compliance") else self.bench_env
            requester = admin if role == "manager" else p["bench-mgr"]
            approver = admin if role == "security" else p["bench-sec"]
            grant(p[username], role, bench, env, requester, approver, at)
            at += 5 * MINUTE
        active = len(self.grant_rows)
        ended = spec["role_assignments"] + len(PERSONAS) - 1 - active
        if ended < 0:
            raise ValueError(f"role_assignments must be at least {active - len(PERSONAS) + 1} at this size.")
        # Expired predecessors of the privileged grants, newest first, until the count is reached.
        chain = [g for g in self.grant_rows if g["privileged"] and g["team"] is not bench]
        rng.shuffle(chain)
        while ended > 0 and chain:
            following = []
            for g in chain:
                if ended == 0:
                    break
                created = _work(g["created"] - 93 * DAY - rng.randrange(HOUR, 48 * HOUR))
                if created < self.start + 31 * DAY:
                    continue
                pred = grant(g["user"], g["role"], g["team"], g["env"], g["requester"], g["approver"], created)
                pred.update(status="expired", expires=created + 90 * DAY,
                            ended=created + 90 * DAY + rng.randrange(MINUTE, 30 * MINUTE))
                following.append(pred)
                ended -= 1
            chain = following
        if ended:
            raise ValueError("role_assignments too large for two years of expired predecessors at this size.")
        self.grant_rows.sort(key=lambda g: (g["created"], g["user"]))
        self.plan_tokens()
        first = _next_id(RoleAssignment)
        for i, g in enumerate(self.grant_rows):
            g["id"] = first + i
            for action, at, actor, status in self.grant_events(g):
                self.event(at, "", None, "", "", "", lazy=(self.grant_event, g, action, actor, status))

    def plan_tokens(self):
        """API tokens for the personas (rows written with the grants, events queued now)."""
        self.tokens = []
        pk, at = _next_id(ApiToken), self.anchor - DAY + HOUR
        admin = self.personas["bench-admin"]
        for username, user in self.personas.items():
            key = token_key(username)
            expires = _to_dt(self.anchor + 365 * DAY)
            self.tokens.append(_row(ApiToken, id=pk, user_id=user, name="bench", prefix=key[:10],
                                    key_hash=hashlib.sha256(key.encode()).hexdigest(), created_at=_to_dt(at),
                                    expires_at=expires))
            self.event(at, "api_token.created", (admin, "bench-admin"), "governance.apitoken", pk,
                       f"{key[:10]}\u2026 (bench)", data=json_safe({"user": username, "expires_at": expires}))
            pk, at = pk + 1, at + MINUTE

    def grant_events(self, g):
        if not g["privileged"]:
            yield "role.granted", g["created"], g["requester"], "active"
            return
        yield "role.grant_requested", g["created"], g["requester"], "pending"
        yield "role.grant_approved", g["approved"], g["approver"], "active"
        if g["status"] == "expired":
            yield "role.expired", g["ended"], None, "expired"

    def grant_event(self, g, action, actor, status):
        env = g["env"][1] if g["env"] else ""
        username = self.users[g["user"]]
        data = {"assignment": g["id"], "user": username, "role": g["role"], "team": g["team"]["slug"],
                "environment": env or None, "expires_at": _to_dt(g["expires"]) if g["expires"] else None,
                "status": status}
        if action in ("role.granted", "role.grant_requested"):
            data.update(justification=self._justification(g), privileged=g["privileged"], sod_exception=None)
        repr_ = f"#{g['id']} {username}: {g['role']} in {g['team']['slug']} ({env or 'all environments'})"
        return (action, (actor, self.users[actor]) if actor else None, "governance.roleassignment", g["id"], repr_,
                env, g["team"]["slug"], json_safe(data), PORTAL_UA)

    @staticmethod
    def _justification(g):
        return f"Works as {g['role']} in {g['team']['slug']}."

    def write_grants_and_permissions(self):
        expected_objects, expected_global = set(), set()
        all_envs = [env[0] for env in self.envs] + [self.bench_env[0]]
        for g in self.grant_rows:
            env_id = g["env"][0] if g["env"] else None
            last = self.last_use.get((g["user"], env_id)) if g["status"] == "active" else None
            expired = g["status"] == "expired"
            self.add(RoleAssignment, _row(
                RoleAssignment, id=g["id"], user_id=g["user"], role_id=self.role_ids[g["role"]],
                team_id=g["team"]["id"], environment_id=env_id, justification=self._justification(g),
                status=g["status"], requested_by_id=g["requester"],
                approved_by_id=g["approver"] if g["privileged"] else None, created_at=_to_dt(g["created"]),
                approved_at=_to_dt(g["approved"]), expires_at=_to_dt(g["expires"]) if g["expires"] else None,
                ended_at=_to_dt(g["ended"]) if expired else None, end_reason="expired" if expired else "",
                last_used_at=_to_dt(last) if last and last > g["created"] else None))
            if g["status"] != "active":
                continue
            for duty in self.role_duties[g["role"]]:
                code = duties.codename(duty)
                if duty in duties.ENVIRONMENT_DUTIES:
                    for pk in ([env_id] if env_id else all_envs):
                        expected_objects.add((g["user"], code, pk, Environment))
                elif duty in duties.TEAM_DUTIES:
                    expected_objects.add((g["user"], code, g["team"]["id"], Team))
                else:
                    expected_global.add((g["user"], code))
        self.flush()
        perms = _permissions()
        types = {m: ContentType.objects.get_for_model(m).pk for m in (Environment, Team)}
        pk = _next_id(UserObjectPermission)
        for user, code, object_pk, model in sorted(expected_objects, key=lambda r: (r[0], r[1], r[2])):
            self.add(UserObjectPermission, _row(UserObjectPermission, id=pk, object_pk=str(object_pk),
                                                content_type_id=types[model], permission_id=perms[code].pk, user_id=user))
            pk += 1
        through = get_user_model().user_permissions.through
        pk = _next_id(through)
        for user, code in sorted(expected_global):
            self.add(through, _row(through, id=pk, user_id=user, permission_id=perms[code].pk))
            pk += 1
        for row in self.tokens:
            self.add(ApiToken, row)
        self.emit_until(float("inf"))
        self.flush()

    # --- change requests ------------------------------------------------------------------------

    def changes(self):
        rng, spec = self.rng, self.spec
        history = spec["change_requests"]
        deployed = spec["deployments"]
        others = history - deployed
        n_open = others // 4
        n_closed = others - n_open
        # Closed: spread over the two years; open: the last two weeks; bench queue: the last two days.
        closed_times = sorted(self.when(self.start + 60 * DAY, self.anchor - 20 * DAY) for _ in range(deployed + n_closed))
        open_times = sorted(self.when(self.anchor - 16 * DAY, self.anchor - 7 * DAY) for _ in range(n_open))
        kinds = ["deployed"] * deployed + ["rejected"] * (n_closed * 3 // 5) + ["cancelled"] * (n_closed - n_closed * 3 // 5)
        rng.shuffle(kinds)
        open_kinds = [("pending", "approved", "draft")[i % 3] for i in range(n_open)]
        rng.shuffle(open_kinds)
        plans = []
        for created, kind in zip(closed_times + open_times, kinds + open_kinds, strict=True):
            team = self.teams[rng.randrange(len(self.teams))]
            env = team["envs"][rng.randrange(len(team["envs"]))]
            required = REQUIRED[env[2]]
            if kind == "deployed":
                kind = rng.choices(["deployed", "failed", "rolled_back"], [93, 4, 3])[0]
            plans.append({"created": created, "kind": kind, "team": team, "env": env, "required": required,
                          "stale": 0, "edits": 0, "prior": rng.randrange(required), "from_draft": rng.random() < 0.5})
        # Approvals: what the policies need, then stale first-revision approvals up to the floor.
        natural = sum(self._approvals_needed(p) for p in plans) + spec["queue_approved"] + 1
        eligible = [p for p in plans if p["required"] >= 2 and p["kind"] in ("deployed", "failed", "rolled_back", "approved")]
        rng.shuffle(eligible)
        for p in eligible[: max(0, spec["approvals"] - natural)]:
            p["stale"] = 1
        # Audit events: what happened, then the authors' draft edits up to the floor.
        events = self._planned_events(plans)
        missing = max(0, spec["audit_events"] - events)
        for i, p in enumerate(plans):
            p["edits"] = missing // len(plans) + (1 if i < missing % len(plans) else 0)
        self.say(f"{len(plans)} change requests planned")
        self.cr_id, self.approval_id, self.deployment_id = _next_id(ChangeRequest), _next_id(Approval), _next_id(Deployment)
        for i, p in enumerate(plans):
            self.emit_until(p["created"])
            self.change(p)
            if i % 50_000 == 49_999:
                self.say(f"{i + 1} change requests")
        self.bench_queue()

    def _approvals_needed(self, p):
        return {"deployed": p["required"], "failed": p["required"], "rolled_back": p["required"],
                "approved": p["required"], "pending": 0 if p["required"] == 1 else 1,
                "rejected": 1 + p["prior"], "cancelled": 0, "draft": 0}[p["kind"]]

    def _planned_events(self, plans) -> int:
        """Audit events already written plus those queued plus those the plans will produce."""
        per_kind = {"deployed": 4, "failed": 4, "rolled_back": 5, "approved": 2, "pending": 2, "rejected": 2,
                    "draft": 1}  # created, submitted, deployment events (approval events apart)
        total = self.sequence - self.head.sequence + len(self.events)
        for p in plans:
            kind = per_kind.get(p["kind"]) or (2 if p["from_draft"] else 3)
            total += kind + self._approvals_needed(p) + 2 * p["stale"]
        queue = self.spec["queue_pending"] + self.spec["queue_approved"] + 1
        return total + 2 * queue + self.spec["queue_approved"] + 1

    def _cr_event(self, at, action, cr, actor, from_state, to_state, ua=API_UA, **extra):
        data = {"change_request": cr["id"], "revision": cr["revision"], "artifact": cr["artifact"],
                "from_state": from_state, "to_state": to_state, **extra}
        self.event(at, action, (actor, self.users[actor]), "releases.changerequest", cr["id"],
                   f"CR-{cr['id']}: {cr['title']}", env=cr["env"][1], team=cr["team"]["slug"], data=data, ua=ua)

    def _use(self, user, env_id, at):
        key = (user, env_id)
        if self.last_use.get(key, 0) < at:
            self.last_use[key] = at

    def _artifact(self, team):
        return f"registry.example.com/{team['slug']}/{self.rng.choice(WORDS)}@sha256:{self.rng.getrandbits(256):064x}"

    def change(self, p):
        rng = self.rng
        team, env, kind = p["team"], p["env"], p["kind"]
        author = rng.choice(team["developers"])
        cr = {"id": self.cr_id, "team": team, "env": env, "revision": 1, "artifact": self._artifact(team),
              "title": f"{rng.choice(VERBS)} {rng.choice(WORDS)} {rng.choice(OBJECTS)}"[:200]}
        self.cr_id += 1
        change_type = "standard" if rng.random() < 0.2 else "normal"
        risk = rng.choices(["low", "medium", "high"], [40, 45, 15])[0]
        at = p["created"]
        fields = {"created_at": at, "submitted_at": None, "approved_at": None, "deployed_at": None,
                  "closed_at": None, "close_reason": ""}
        self._cr_event(at, "change_request.created", cr, author, "", "draft", title=cr["title"],
                       change_type=change_type, risk=risk, contributors=[])
        self._use(author, env[0], at)
        for _ in range(p["edits"]):
            at = self.after(at, 3, 40)
            self._cr_event(at, "change_request.updated", cr, author, "draft", "draft", changed=["description"])
        state = "draft"
        if kind == "cancelled" and p["from_draft"]:
            at = self.after(at, 60, 2000)
            reason = "Superseded by a later change."
            self._cr_event(at, "change_request.cancelled", cr, author, "draft", "cancelled", reason=reason)
            fields.update(closed_at=at, close_reason=reason)
            return self._write_change(cr, author, change_type, risk, "cancelled", fields, p)
        if kind != "draft":
            at = self.after(at, 5, 60)
            fields["submitted_at"] = at
            state = "pending"
            self._cr_event(at, "change_request.submitted", cr, author, "draft", "pending", auto_approved=False)
            self._use(author, env[0], at)
        # Who may approve: the team's reviewers and its security officer; production wants security.
        pool = team["reviewers"] + [team["security"]]
        required = p["required"]
        if env[2] == "production":
            approvers = [team["security"]] + rng.sample(team["reviewers"], required - 1)
            rng.shuffle(approvers)
        else:
            approvers = rng.sample(pool, required)
        via = "portal" if env[2] == "production" else rng.choice(["api", "portal"])
        if p["stale"]:
            reviewer = rng.choice(pool)
            at = self.after(at, 15, 300)
            self._approval(cr, reviewer, "approved", at, via, stale=True)
            self._cr_event(at, "change_request.approval_recorded", cr, reviewer, "pending", "pending",
                           ua=PORTAL_UA if via == "portal" else API_UA, via=via, comment="",
                           security=reviewer == team["security"])
            at = self.after(at, 30, 300)
            cr["revision"], cr["artifact"] = 2, self._artifact(team)
            self._cr_event(at, "change_request.revised", cr, author, "pending", "pending", changed=["artifact"])
        n_approvals = {"pending": self._approvals_needed(p), "rejected": p["prior"], "draft": 0,
                       "cancelled": 0}.get(kind, required)
        for k, reviewer in enumerate(approvers[:n_approvals]):
            at = self.after(at, 15, 300)
            done = k == required - 1
            self._approval(cr, reviewer, "approved", at, via)
            comment = rng.choice(APPROVE_COMMENTS)
            self._cr_event(at, "change_request.approved" if done else "change_request.approval_recorded", cr,
                           reviewer, "pending", "approved" if done else "pending",
                           ua=PORTAL_UA if via == "portal" else API_UA, via=via, comment=comment,
                           security=reviewer == team["security"])
            self._use(reviewer, None if reviewer == team["security"] else env[0], at)
            if done:
                state, fields["approved_at"] = "approved", at
        if kind == "rejected":
            reviewer = rng.choice([u for u in pool if u not in approvers[:n_approvals]])
            at = self.after(at, 15, 300)
            comment = rng.choice(REJECT_COMMENTS)
            self._approval(cr, reviewer, "rejected", at, via, comment=comment)
            self._cr_event(at, "change_request.rejected", cr, reviewer, "pending", "rejected",
                           ua=PORTAL_UA if via == "portal" else API_UA, via=via, comment=comment,
                           security=reviewer == team["security"])
            state = "rejected"
            fields.update(closed_at=at, close_reason=comment)
        elif kind == "cancelled":
            at = self.after(at, 60, 2000)
            reason = "No longer needed."
            self._cr_event(at, "change_request.cancelled", cr, author, "pending", "cancelled", reason=reason)
            state = "cancelled"
            fields.update(closed_at=at, close_reason=reason)
        elif kind in ("deployed", "failed", "rolled_back"):
            cr["author"], cr["change_type"], cr["risk"] = author, change_type, risk
            state = self._deploy(cr, rng.choice(team["operators"]), at, kind, fields)
        return self._write_change(cr, author, change_type, risk, state, fields, p)

    def _deploy(self, cr, deployer, at, kind, fields):
        deployment = self.deployment_id
        self.deployment_id += 1
        started = self.after(at, 30, 600)
        url = f"https://ci.example.com/{cr['team']['slug']}/pipelines/{deployment}"
        self._cr_event(started, "deployment.started", cr, deployer, "approved", "deploying",
                       deployment=deployment, pipeline_url=url)
        finished = self.after(started, 5, 45)
        outcome = "failed" if kind == "failed" else "succeeded"
        notes = "Rollout finished." if outcome == "succeeded" else "Health checks failed; traffic kept on the old version."
        self._cr_event(finished, f"deployment.{outcome}", cr, deployer, "deploying",
                       "deployed" if outcome == "succeeded" else "failed", deployment=deployment, notes=notes)
        self._use(deployer, cr["env"][0], started)
        dep_state, cr_state, rolled_at, reason = outcome, ("deployed" if outcome == "succeeded" else "failed"), None, ""
        if outcome == "succeeded":
            fields["deployed_at"] = finished
        else:
            fields["closed_at"] = finished
        if kind == "rolled_back":
            rolled_at = self.after(finished, 20, 300)
            reason = "Error rate rose after the rollout."
            self._cr_event(rolled_at, "deployment.rolled_back", cr, deployer, "deployed", "rolled_back",
                           deployment=deployment, reason=reason)
            self._use(deployer, cr["env"][0], rolled_at)
            dep_state = cr_state = "rolled_back"
        self.add(Deployment, _row(Deployment, id=deployment, change_request_id=cr["id"], environment_id=cr["env"][0],
                                  artifact=cr["artifact"], revision=cr["revision"], deployer_id=deployer,
                                  state=dep_state, pipeline_url=url, started_at=_to_dt(started),
                                  finished_at=_to_dt(finished), notes=notes,
                                  rolled_back_at=_to_dt(rolled_at) if rolled_at else None, rollback_reason=reason,
                                  decision=self._decision(cr, deployer, started)))
        return cr_state

    def _decision(self, cr, deployer, started) -> dict:
        """The decision record ``deployment_start`` would have stored (releases.decisions): every
        requirement met, the approvals of the deployed revision counted."""
        env_id, slug, tier = cr["env"][0], cr["env"][1], cr["env"][2]
        policy_id, values, knobs = self.policies[env_id]
        counted = cr.get("approved", [])
        security = sum(1 for a in counted if a[4])
        iso = decisions.iso

        def person(pk):
            return {"id": pk, "username": self.users.get(pk), "sod_exceptions": []}

        return {
            "format": decisions.FORMAT, "decided_at": iso(_to_dt(started)), "action": "deploy", "allowed": True,
            "reasons": [],
            "environment": {"id": env_id, "slug": slug, "tier": tier},
            "change_request": {"id": cr["id"], "revision": cr["revision"], "artifact": cr["artifact"],
                               "change_type": cr.get("change_type"), "risk": cr.get("risk")},
            "policy": {"id": policy_id, "version": None, "default": False, "values": values},
            "controls": {"freeze_windows": [], "standard_template": None, "prior_environment": None},
            "requirements": [
                {"name": "approvals", "required": knobs["min_approvals"], "actual": len(counted), "met": True,
                 "expired": 0},
                {"name": "security_approvals", "required": knobs.get("min_security_approvals", 0),
                 "actual": security, "met": True},
                {"name": "team_reviewer", "required": knobs.get("team_reviewer_required", False), "actual": True,
                 "met": True},
                {"name": "independent_approval", "required": tier == "production", "actual": len(counted),
                 "met": True},
                {"name": "freeze_windows", "required": [], "actual": False, "met": True},
                {"name": "deploy_window", "required": True, "actual": True, "met": True},
                {"name": "prior_environment", "required": None, "actual": None, "met": True},
            ],
            "approvers": [
                {**person(reviewer), "approval_id": approval_id, "role": "security_approve" if is_security else "approve",
                 "revision": cr["revision"], "via": via, "at": iso(_to_dt(at)), "security": is_security,
                 "team_member": True, "on_call": False, "independent": True}
                for approval_id, reviewer, at, via, is_security in counted
            ],
            "expired_approvals": [],
            "author": person(cr.get("author")),
            "contributors": [],
            "deployer": person(deployer),
            "sod": {"verdict": "pass", "findings": []},
        }

    def _approval(self, cr, reviewer, decision, at, via, *, stale=False, comment=""):
        team = cr["team"]
        if decision == "approved" and not stale:
            cr.setdefault("approved", []).append((self.approval_id, reviewer, at, via, reviewer == team.get("security")))
        self.add(Approval, _row(Approval, id=self.approval_id, change_request_id=cr["id"], reviewer_id=reviewer,
                                decision=decision, revision=1 if stale else cr["revision"], artifact=cr["artifact"],
                                comment=comment, via=via, is_security=reviewer == team.get("security"),
                                is_team_member=True, stale=stale, created_at=_to_dt(at)))
        self.approval_id += 1

    def _write_change(self, cr, author, change_type, risk, state, fields, p):
        dt = {k: _to_dt(v) if isinstance(v, int) else v for k, v in fields.items()}
        self.add(ChangeRequest, _row(
            ChangeRequest, id=cr["id"], title=cr["title"],
            description=f"Rollout notes for {cr['title'].lower()}." if p.get("edits") else "",
            team_id=cr["team"]["id"], environment_id=cr["env"][0], change_type=change_type, risk=risk,
            artifact=cr["artifact"], revision=cr["revision"], state=state, author_id=author,
            ticket_url=f"https://tickets.example.com/{cr['team']['slug'].upper()}-{cr['id']}", **dt))

    def bench_queue(self):
        """Work for the write-path benchmark, and the gate-ready change, in the last two days."""
        rng, spec, p = self.rng, self.spec, self.personas
        team = dict(self.bench_team, security=p["bench-sec"])
        n_pending, n_approved = spec["queue_pending"], spec["queue_approved"]
        times = sorted(rng.randrange(self.anchor - 2 * DAY, self.anchor - 2 * HOUR) for _ in range(n_pending + n_approved + 1))
        kinds = ["pending"] * n_pending + ["approved"] * n_approved
        rng.shuffle(kinds)
        kinds.append("gate")
        for at, kind in zip(times, kinds, strict=True):
            self.emit_until(at)
            author = p["bench-dev"] if rng.random() < 0.5 else p["bench-dev2"]
            title = GATE_READY_TITLE if kind == "gate" else f"Bench: {rng.choice(VERBS).lower()} {rng.choice(OBJECTS)}"
            cr = {"id": self.cr_id, "team": team, "env": self.bench_env, "revision": 1, "title": title,
                  "artifact": self._artifact(team)}
            self.cr_id += 1
            fields = {"created_at": at, "submitted_at": at + 2 * MINUTE, "approved_at": None, "deployed_at": None,
                      "closed_at": None, "close_reason": ""}
            self._cr_event(at, "change_request.created", cr, author, "", "draft", title=title,
                           change_type="normal", risk="medium", contributors=[])
            self._cr_event(at + 2 * MINUTE, "change_request.submitted", cr, author, "draft", "pending", auto_approved=False)
            state = "pending"
            if kind != "pending":
                reviewer = p["bench-rev2"] if kind == "gate" else p["bench-rev"]
                fields["approved_at"] = at + 12 * MINUTE
                self._approval(cr, reviewer, "approved", fields["approved_at"], "api")
                self._cr_event(fields["approved_at"], "change_request.approved", cr, reviewer, "pending", "approved",
                               via="api", comment="", security=False)
                state = "approved"
            self._write_change(cr, author, "normal", "medium", state, fields, {})
