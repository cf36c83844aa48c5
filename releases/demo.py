"""The releases half of the demo: approval policies as API.md describes them and a few change
requests in different states, so the portal has something to show on first run. Idempotent.

The changes happen on a working-hours timeline (the latest weekday morning at least two hours
ago, reviews tens of minutes after submission), so the demo itself trips no off-hours or
rubber-stamp alert."""
from datetime import datetime, time, timedelta, timezone as dt_timezone

from django.utils import timezone

from governance.controls.services import control_change, control_change_approve
from governance.demo import seed_governance
from governance.models import ControlChange
from releases import services
from releases.models import ApprovalPolicy, ChangeRequest, StandardChangeTemplate

POLICIES = {
    "development": {"min_approvals": 0},
    "staging": {"min_approvals": 1, "allow_auto_approve_standard": True, "approval_ttl_hours": 168},
    "production": {
        "min_approvals": 2,
        "high_risk_security_approvals": 1,
        "team_reviewer_required": True,
        "approval_ttl_hours": 72,
        "require_interactive_signoff": True,
    },
}
# The catalogue of standard changes (C9): staging auto-approves low-risk changes of payments-api.
TEMPLATE = {
    "name": "payments-api routine change (staging)",
    "description": "Configuration and dependency updates of payments-api that need no reviewer in staging.",
    "max_risk": ChangeRequest.Risk.LOW,
    "artifact_pattern": "registry.example.com/payments-api*",
}
MARKER = "Retry card authorisation on timeout"
ARTIFACT_1 = "registry.example.com/payments-api@sha256:" + "3f1c" * 16
ARTIFACT_2 = "registry.example.com/payments-webhooks@sha256:" + "9ab2" * 16
ARTIFACT_0 = "registry.example.com/payments-api@sha256:" + "07d4" * 16


def working_morning(now: datetime) -> datetime:
    """09:00 UTC on the latest weekday at least two hours before ``now``."""
    day = now.date()
    while True:
        start = datetime.combine(day, time(9, 0), tzinfo=dt_timezone.utc)
        if day.isoweekday() <= 5 and start <= now - timedelta(hours=2):
            return start
        day -= timedelta(days=1)


def seed_demo() -> None:
    org = seed_governance()
    admin, people, teams, envs = org["admin"], org["people"], org["teams"], org["environments"]
    for slug, knobs in POLICIES.items():
        if not ApprovalPolicy.objects.filter(environment=envs[slug]).exists():
            extra = {"require_prior_environment": envs["staging"]} if slug == "production" else {}
            # The administrator proposes; where a policy asks less than the default one (no approval in
            # development, auto-approval in staging), security is the second person (RULES.md K3).
            change = control_change(actor=admin, kind="releases.approvalpolicy",
                                    values={"environment": envs[slug], **knobs, **extra})
            if change.status == ControlChange.Status.PENDING:
                control_change_approve(actor=people["sec"], change=change, comment="Demo policy.")
    if not StandardChangeTemplate.objects.filter(name=TEMPLATE["name"]).exists():
        # A new template lowers the bar for what it matches: the administrator proposes it, security approves.
        change = control_change(actor=admin, kind="releases.standardchangetemplate", values={
            "environment": envs["staging"], "expires_at": timezone.now() + timedelta(days=365), **TEMPLATE})
        control_change_approve(actor=people["sec"], change=change, comment="Demo catalogue.")
    if ChangeRequest.objects.filter(title=MARKER).exists():
        return
    dev, dev2, rev, rev2, ops = (people[u] for u in ("dev", "dev2", "rev", "rev2", "ops"))
    payments = teams["payments"]
    clock = [working_morning(timezone.now())]

    def tick(minutes=7):
        clock[0] += timedelta(minutes=minutes)
        return clock[0]

    def create(author, env, title, artifact, **extra):
        return services.change_request_create(
            actor=author, team=payments, environment=envs[env], title=title, artifact=artifact, at=tick(), **extra
        )

    def submit(author, cr):
        return services.change_request_submit(actor=author, change_request=cr, at=tick())

    def approve(reviewer, cr, **extra):
        return services.change_request_approve(actor=reviewer, change_request=cr, at=tick(25), **extra)

    def deploy(cr):
        deployment = services.deployment_start(actor=ops, change_request=cr, at=tick(10),
                                               pipeline_url="https://ci.example.com/run/1")
        services.deployment_finish(actor=ops, deployment=deployment, outcome="succeeded", notes="Demo rollout.",
                                   at=tick(12))

    # 0. A release two weeks ago, all the way to production: what an auditor's SOX bundle shows.
    clock[0] = working_morning(timezone.now() - timedelta(days=14))
    upgrade_stage = create(dev2, "staging", "Upgrade payments-api HTTP client", ARTIFACT_0, risk="low",
                           ticket_url="https://tickets.example.com/PAY-97")
    submit(dev2, upgrade_stage)
    approve(rev, upgrade_stage, comment="Changelog reviewed.")
    deploy(upgrade_stage)
    upgrade_prod = create(dev2, "production", "Upgrade payments-api HTTP client", ARTIFACT_0, risk="low",
                          ticket_url="https://tickets.example.com/PAY-97")
    submit(dev2, upgrade_prod)
    for reviewer in (rev, rev2):
        approve(reviewer, upgrade_prod, via="portal", comment="Signed off in the portal (demo data).")
    deploy(upgrade_prod)
    clock[0] = working_morning(timezone.now())

    # 1. Went through staging: approved over the API by rev, deployed by ops.
    staged = create(dev, "staging", MARKER, ARTIFACT_1, contributors=["dev2"], ticket_url="https://tickets.example.com/PAY-101",
                    description="Retries idempotent card authorisations once after a gateway timeout.")
    submit(dev, staged)
    approve(rev, staged, comment="Looks good; retry is idempotent.")
    deploy(staged)
    # 2. The same artifact bound for production: waiting for two portal sign-offs.
    prod = create(dev, "production", MARKER, ARTIFACT_1, contributors=["dev2"], ticket_url="https://tickets.example.com/PAY-101",
                  description="Production rollout of the retry, already live in staging.")
    submit(dev, prod)
    # 3. Webhook secret rotation: staged, then signed off twice for production; waits for ops.
    rotate_stage = create(dev2, "staging", "Rotate webhook signing secret", ARTIFACT_2, risk="low")
    submit(dev2, rotate_stage)
    approve(rev2, rotate_stage, comment="Fine.")
    deploy(rotate_stage)
    rotate_prod = create(dev2, "production", "Rotate webhook signing secret", ARTIFACT_2, risk="low")
    submit(dev2, rotate_prod)
    for reviewer in (rev, rev2):
        approve(reviewer, rotate_prod, via="portal", comment="Signed off in the portal (demo data).")
    # 4. A draft, a rejection and an auto-approved standard change.
    create(dev2, "development", "Upgrade TLS library", "payments-api:2.14.0-rc1")
    rejected = create(dev2, "staging", "Experimental fraud rule", "fraud-rules:0.9.0", risk="high")
    submit(dev2, rejected)
    services.change_request_reject(actor=rev2, change_request=rejected, at=tick(25),
                                   comment="Needs a rollback plan first.")
    standard = create(dev, "staging", "Raise log level for payments-api", "registry.example.com/payments-api:2.13.1",
                      change_type="standard", risk="low")
    submit(dev, standard)
