"""The releases half of the demo: approval policies as API.md describes them and a few change
requests in different states, so the portal has something to show on first run. Idempotent."""
from governance.demo import seed_governance
from releases import services
from releases.models import ApprovalPolicy, ChangeRequest

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
MARKER = "Retry card authorisation on timeout"
ARTIFACT_1 = "registry.example.com/payments-api@sha256:" + "3f1c" * 16
ARTIFACT_2 = "registry.example.com/payments-webhooks@sha256:" + "9ab2" * 16


def seed_demo() -> None:
    org = seed_governance()
    admin, people, teams, envs = org["admin"], org["people"], org["teams"], org["environments"]
    for slug, knobs in POLICIES.items():
        if not ApprovalPolicy.objects.filter(environment=envs[slug]).exists():
            extra = {"require_prior_environment": envs["staging"]} if slug == "production" else {}
            services.approval_policy_save(
                actor=admin, policy_obj=ApprovalPolicy(environment=envs[slug], **knobs, **extra)
            )
    if ChangeRequest.objects.filter(title=MARKER).exists():
        return
    dev, dev2, rev, rev2, ops = (people[u] for u in ("dev", "dev2", "rev", "rev2", "ops"))
    payments = teams["payments"]

    def create(author, env, title, artifact, **extra):
        return services.change_request_create(
            actor=author, team=payments, environment=envs[env], title=title, artifact=artifact, **extra
        )

    def deploy(cr):
        deployment = services.deployment_start(actor=ops, change_request=cr, pipeline_url="https://ci.example.com/run/1")
        services.deployment_finish(actor=ops, deployment=deployment, outcome="succeeded", notes="Demo rollout.")

    # 1. Went through staging: approved over the API by rev, deployed by ops.
    staged = create(dev, "staging", MARKER, ARTIFACT_1, contributors=["dev2"], ticket_url="https://tickets.example.com/PAY-101",
                    description="Retries idempotent card authorisations once after a gateway timeout.")
    services.change_request_submit(actor=dev, change_request=staged)
    services.change_request_approve(actor=rev, change_request=staged, comment="Looks good; retry is idempotent.")
    deploy(staged)
    # 2. The same artifact bound for production: waiting for two portal sign-offs.
    prod = create(dev, "production", MARKER, ARTIFACT_1, contributors=["dev2"], ticket_url="https://tickets.example.com/PAY-101",
                  description="Production rollout of the retry, already live in staging.")
    services.change_request_submit(actor=dev, change_request=prod)
    # 3. Webhook secret rotation: staged, then signed off twice for production; waits for ops.
    rotate_stage = create(dev2, "staging", "Rotate webhook signing secret", ARTIFACT_2, risk="low")
    services.change_request_submit(actor=dev2, change_request=rotate_stage)
    services.change_request_approve(actor=rev2, change_request=rotate_stage, comment="Fine.")
    deploy(rotate_stage)
    rotate_prod = create(dev2, "production", "Rotate webhook signing secret", ARTIFACT_2, risk="low")
    services.change_request_submit(actor=dev2, change_request=rotate_prod)
    for reviewer in (rev, rev2):
        services.change_request_approve(actor=reviewer, change_request=rotate_prod, via="portal",
                                         comment="Signed off in the portal (demo data).")
    # 4. A draft, a rejection and an auto-approved standard change.
    create(dev2, "development", "Upgrade TLS library", "payments-api:2.14.0-rc1")
    rejected = create(dev2, "staging", "Experimental fraud rule", "fraud-rules:0.9.0", risk="high")
    services.change_request_submit(actor=dev2, change_request=rejected)
    services.change_request_reject(actor=rev2, change_request=rejected, comment="Needs a rollback plan first.")
    standard = create(dev, "staging", "Raise log level for payments-api", "payments-api:2.13.1",
                      change_type="standard", risk="low")
    services.change_request_submit(actor=dev, change_request=standard)
