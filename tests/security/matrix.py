"""The authorization matrix (issue 7, RULES.md section 4): every API endpoint, portal page and admin
page, and the status each persona gets there. ``tests/security/test_matrix.py`` runs every cell and
fails when the URL resolver serves a pattern no row covers, so a new endpoint is added here on
purpose, with the statuses its rules promise.

A row names its URL with ``{placeholders}`` that ``world()`` fills from the demo (plus the few
objects the demo lacks: an identity change request, a pending grant, a campaign, an alert, an
evidence export, a seal, a running deployment). Expected statuses are declared, never derived:
``expect(default, persona=status, ...)``; a status may name the reason code a refusal must carry,
``"403 missing_duty"``.

Who is who (README, RULES.md section 1): dev and dev2 develop in payments, rev and rev2 review
staging and production, sec holds security (approve, security_approve, view_audit) everywhere, ops
deploys to staging and production, mgr manages payments, auditor holds compliance (view_audit,
export_evidence), idev develops in identity only, admin is a superuser. sec, mgr and auditor are
staff; everyone but idev and admin is a member of payments.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

PERSONAS = ("anonymous", "dev", "dev2", "rev", "rev2", "sec", "ops", "mgr", "auditor", "idev", "admin")
# V1/V2: sees every change request and every grant (view_audit, security_approve, or superuser).
SEES_ALL = ("sec", "auditor", "admin")


def expect(default, **statuses) -> dict[str, object]:
    """Every persona's status: ``default`` unless named (``**each(group, status)`` names a group)."""
    unknown = set(statuses) - set(PERSONAS)
    assert not unknown, f"unknown personas {unknown}"
    return {persona: statuses.get(persona, default) for persona in PERSONAS}


def each(personas, status) -> dict[str, object]:
    return {persona: status for persona in personas}


@dataclass(frozen=True)
class Row:
    """One URL and one method. ``kind`` says how personas authenticate: ``api`` with their token,
    ``page`` and ``admin`` with a session. ``body`` is sent as JSON (api) or as a form."""

    name: str
    method: str
    url: str
    expect: dict = field(repr=False)
    kind: str = "api"
    body: dict | None = None

    def __post_init__(self):
        assert set(self.expect) == set(PERSONAS), f"{self.name}: every persona needs a status"


# --- API (/api/v1/): token per persona, anonymous sends none -------------------------------------------

ANON_401 = {"anonymous": 401}
EVERYONE = expect(200, **ANON_401)
SEES_PAYMENTS_CHANGE = expect(200, idev=404, **ANON_401)
SEES_IDENTITY_CHANGE = expect(404, idev=200, **each(SEES_ALL, 200), **ANON_401)
# A grant (V2): the grantee, managers of its team, security and audit viewers.
SEES_DEV_GRANT = expect(404, dev=200, mgr=200, **each(SEES_ALL, 200), **ANON_401)
SEES_IDEV_GRANT = expect(404, idev=200, **each(SEES_ALL, 200), **ANON_401)
# Alerts (V3): view_audit or security_approve reads them; the list says 403, a single alert 404.
ALERT_LIST = expect("403 missing_duty", **each(SEES_ALL, 200), **ANON_401)
ALERT_ONE = expect(404, **each(SEES_ALL, 200), **ANON_401)
# Evidence (V3): export_evidence only (auditor); superusers get no bypass (C12, V4).
EVIDENCE_LIST = expect("403 missing_duty", auditor=200, **ANON_401)
EVIDENCE_ONE = expect(404, auditor=200, **ANON_401)
# A campaign of payments and its items: the team's manager, security and audit viewers (A1, V2).
SEES_REVIEW = expect(404, mgr=200, **each(SEES_ALL, 200), **ANON_401)

# A control change (K3): every change is visible to those who see every grant (V2) and to its proposer.
SEES_ALL_CONTROL_CHANGE = expect(404, **each(SEES_ALL, 200), **ANON_401)

NEW_CHANGE = {"title": "Matrix change", "team": "payments", "environment": "staging", "artifact": "matrix:1"}
NEW_GRANT = {"user": "dev2", "role": "reviewer", "team": "payments", "environment": "staging",
             "justification": "Matrix."}

API_ROWS = [
    Row("api-root", "GET", "/api/v1/", EVERYONE),
    Row("api-schema", "GET", "/api/schema/", expect(200)),
    Row("api-docs", "GET", "/api/docs/", expect(200)),
    # Organisation: read-only, every signed-in user (API.md).
    Row("teams", "GET", "/api/v1/teams/", EVERYONE),
    Row("team", "GET", "/api/v1/teams/payments/", EVERYONE),
    Row("environments", "GET", "/api/v1/environments/", EVERYONE),
    Row("environment", "GET", "/api/v1/environments/production/", EVERYONE),
    Row("roles", "GET", "/api/v1/roles/", EVERYONE),
    Row("role", "GET", "/api/v1/roles/security/", EVERYONE),
    Row("teams-post", "POST", "/api/v1/teams/", expect(405, **ANON_401), body={"slug": "x", "name": "X"}),
    # Role assignments (V2, G1–G5).
    Row("grants", "GET", "/api/v1/role-assignments/", EVERYONE),
    Row("grant-payments", "GET", "/api/v1/role-assignments/{grant_dev}/", SEES_DEV_GRANT),
    Row("grant-identity", "GET", "/api/v1/role-assignments/{grant_idev}/", SEES_IDEV_GRANT),
    Row("grant-create", "POST", "/api/v1/role-assignments/",
        expect("403 missing_duty", mgr=201, admin=201, dev2="403 self_grant", **ANON_401), body=NEW_GRANT),
    # A pending privileged grant mgr asked for: a second person with manage_roles or
    # security_approve approves (G4); the requester may not (four_eyes_grant).
    Row("grant-approve", "POST", "/api/v1/role-assignments/{grant_pending}/approve/",
        expect(404, mgr="403 four_eyes_grant", sec=200, auditor="403 missing_duty", admin=200,
               dev2="403 four_eyes_grant", **ANON_401)),
    Row("grant-reject", "POST", "/api/v1/role-assignments/{grant_pending}/reject/",
        expect(404, mgr=200, sec=200, auditor="403 missing_duty", admin=200, dev2="403 four_eyes_grant",
               **ANON_401),
        body={"reason": "Matrix."}),
    Row("grant-revoke", "POST", "/api/v1/role-assignments/{grant_dev}/revoke/",
        expect(404, dev=200, mgr=200, sec=200, admin=200, auditor="403 missing_duty", **ANON_401),
        body={"reason": "Matrix."}),
    Row("grant-revoke-identity", "POST", "/api/v1/role-assignments/{grant_idev}/revoke/",
        expect(404, idev=200, sec=200, admin=200, auditor="403 missing_duty", **ANON_401),
        body={"reason": "Matrix."}),
    # Change requests (V1, C1–C12).
    Row("changes", "GET", "/api/v1/change-requests/", EVERYONE),
    Row("change-payments", "GET", "/api/v1/change-requests/{cr_prod_pending}/", SEES_PAYMENTS_CHANGE),
    Row("change-identity", "GET", "/api/v1/change-requests/{cr_identity}/", SEES_IDENTITY_CHANGE),
    Row("change-create", "POST", "/api/v1/change-requests/",
        expect("403 missing_duty", dev=201, dev2=201, idev="403 not_team_member", **ANON_401), body=NEW_CHANGE),
    Row("change-create-identity", "POST", "/api/v1/change-requests/",
        expect("403 missing_duty", idev=201, dev="403 not_team_member", dev2="403 not_team_member", **ANON_401),
        body={**NEW_CHANGE, "team": "identity"}),
    Row("change-update", "PATCH", "/api/v1/change-requests/{cr_draft}/",
        expect("403 not_author", dev2=200, idev=404, **ANON_401), body={"title": "Matrix title"}),
    Row("change-update-identity", "PATCH", "/api/v1/change-requests/{cr_identity}/",
        expect(404, idev=200, **each(SEES_ALL, "403 not_author"), **ANON_401), body={"title": "Matrix title"}),
    Row("change-submit", "POST", "/api/v1/change-requests/{cr_draft}/submit/",
        expect("403 missing_duty", dev="403 not_author", dev2=200, idev=404, **ANON_401)),
    Row("change-approve", "POST", "/api/v1/change-requests/{cr_staging_pending}/approve/",
        expect("403 missing_duty", dev="403 author_cannot_approve", rev=200, rev2=200, sec=200, idev=404,
               **ANON_401), body={"revision": 1, "comment": "Matrix."}),
    Row("change-approve-identity", "POST", "/api/v1/change-requests/{cr_identity}/approve/",
        expect(404, idev="409 invalid_state", **each(SEES_ALL, "409 invalid_state"), **ANON_401),
        body={"revision": 1, "comment": "Matrix."}),
    Row("change-reject", "POST", "/api/v1/change-requests/{cr_staging_pending}/reject/",
        expect("403 missing_duty", dev="403 author_cannot_approve", rev=200, rev2=200, sec=200, idev=404,
               **ANON_401), body={"revision": 1, "comment": "Matrix."}),
    # The ways back (issue 18): request changes (a reviewer, as for a rejection), withdraw (the author),
    # re-review (the author or a manager; 409 while the approvals still count), retry (as a deployment).
    Row("change-request-changes", "POST", "/api/v1/change-requests/{cr_staging_pending}/request-changes/",
        expect("403 missing_duty", dev="403 author_cannot_approve", rev=200, rev2=200, sec=200, idev=404,
               **ANON_401), body={"revision": 1, "comment": "Matrix: add a back-out plan."}),
    Row("change-withdraw", "POST", "/api/v1/change-requests/{cr_staging_pending}/withdraw/",
        expect("403 not_author", dev=200, idev=404, **ANON_401), body={"reason": "Matrix."}),
    Row("change-re-review", "POST", "/api/v1/change-requests/{cr_rotate_prod}/re-review/",
        expect("403 not_author", dev2="409 approvals_not_expired", mgr="409 approvals_not_expired", idev=404,
               **ANON_401), body={}),
    Row("change-retry", "POST", "/api/v1/change-requests/{cr_failed}/retry/",
        expect("403 missing_duty", ops=201, dev="403 author_cannot_deploy", rev="403 approver_cannot_deploy",
               idev=404, **ANON_401), body={}),
    Row("change-cancel", "POST", "/api/v1/change-requests/{cr_staging_pending}/cancel/",
        expect("403 not_author", dev=200, mgr=200, idev=404, **ANON_401), body={"reason": "Matrix."}),
    Row("change-gate", "GET", "/api/v1/change-requests/{cr_rotate_prod}/gate/?action=deploy", SEES_PAYMENTS_CHANGE),
    Row("change-gate-identity", "GET", "/api/v1/change-requests/{cr_identity}/gate/?action=approve",
        SEES_IDENTITY_CHANGE),
    Row("change-deploy", "POST", "/api/v1/change-requests/{cr_rotate_prod}/deployments/",
        expect("403 missing_duty", ops=201, dev2="403 author_cannot_deploy", rev="403 approver_cannot_deploy",
               rev2="403 approver_cannot_deploy", idev=404, **ANON_401), body={}),
    # Deployments.
    Row("deployments", "GET", "/api/v1/deployments/", EVERYONE),
    Row("deployment", "GET", "/api/v1/deployments/{dep_staged}/", SEES_PAYMENTS_CHANGE),
    Row("deployment-finish", "POST", "/api/v1/deployments/{dep_running}/finish/",
        expect("403 not_deployer", ops=200, idev=404, **ANON_401), body={"outcome": "succeeded"}),
    Row("deployment-rollback", "POST", "/api/v1/deployments/{dep_staged}/rollback/",
        expect("403 missing_duty", ops=200, idev=404, **ANON_401), body={"reason": "Matrix."}),
    # Integrations (issue 16): the attestation reads like its change; webhooks prove themselves with a
    # linked repository's secret, never with a token, so an unsigned delivery is 401 for everyone.
    Row("change-attestation", "GET", "/api/v1/change-requests/{cr_rotate_prod}/attestation/", SEES_PAYMENTS_CHANGE),
    Row("change-source-link", "POST", "/api/v1/change-requests/{cr_prod_pending}/source-links/",
        expect("403 not_author", dev=201, idev=404, **ANON_401), body={"url": "https://github.com/matrix/repo/pull/1"}),
    Row("change-source-contributors", "GET", "/api/v1/change-requests/{cr_prod_pending}/source-contributors/",
        SEES_PAYMENTS_CHANGE),
    Row("github-webhook", "POST", "/api/v1/integrations/github/webhook", expect(401), body={}),
    Row("gitlab-webhook", "POST", "/api/v1/integrations/gitlab/webhook", expect(401), body={}),
    Row("deployment-report", "POST", "/api/v1/deployment-reports/",
        expect("403 missing_duty", ops=201, **ANON_401), body={"environment": "staging", "artifact": "matrix:9"}),
    # Access reviews (A1–A3).
    Row("reviews", "GET", "/api/v1/access-reviews/", EVERYONE),
    Row("review", "GET", "/api/v1/access-reviews/{review}/", SEES_REVIEW),
    Row("review-items", "GET", "/api/v1/access-review-items/", EVERYONE),
    Row("review-item", "GET", "/api/v1/access-review-items/{review_item}/", SEES_REVIEW),
    Row("review-decide", "POST", "/api/v1/access-review-items/{review_item}/decide/",
        expect(404, mgr=200, **each(SEES_ALL, "403 missing_duty"), **ANON_401), body={"decision": "keep"}),
    # Alerts (V3, E2).
    # The trail (V3): view_audit (or security_approve, or a superuser) reads it; others are told so.
    Row("audit-events", "GET", "/api/v1/audit-events/", ALERT_LIST),
    Row("audit-events-verify", "GET", "/api/v1/audit-events/verify/?from=1&to=1", ALERT_LIST),
    Row("audit-event-proof", "GET", "/api/v1/audit-events/1/proof/?tree_size=2", ALERT_LIST),
    Row("audit-consistency", "GET", "/api/v1/audit/consistency/?from=1&to=2", ALERT_LIST),
    # Reconciliation (issue 16, item 5): view_audit or export_evidence (sec, auditor) or a superuser.
    Row("deployment-reconciliation", "GET", "/api/v1/deployment-reconciliation/", ALERT_LIST),
    # Checkpoints and cosignatures (witnesses): readers of the trail; a note that is none is a 400.
    Row("audit-checkpoints", "GET", "/api/v1/audit/checkpoints/", ALERT_LIST),
    Row("audit-checkpoint-latest", "GET", "/api/v1/audit/checkpoints/latest/", ALERT_LIST),
    Row("audit-checkpoint", "GET", "/api/v1/audit/checkpoints/{checkpoint_size}/", ALERT_LIST),
    Row("audit-cosignature-create", "POST", "/api/v1/audit/cosignatures/",
        expect("403 missing_duty", **each(SEES_ALL, 400), **ANON_401), body={"checkpoint": "Matrix."}),
    Row("alerts", "GET", "/api/v1/alerts/", ALERT_LIST),
    Row("alert", "GET", "/api/v1/alerts/{alert}/", ALERT_ONE),
    Row("alert-resolve", "POST", "/api/v1/alerts/{alert}/resolve/",
        expect(404, sec=200, auditor="403 missing_duty", admin="403 missing_duty", **ANON_401),
        body={"resolution": "Matrix."}),
    # Evidence exports (V3, L3).
    Row("evidence-exports", "GET", "/api/v1/evidence-exports/", EVIDENCE_LIST),
    Row("evidence-export-create", "POST", "/api/v1/evidence-exports/",
        expect("403 missing_duty", auditor=202, **ANON_401),
        body={"framework": "sox", "period_start": "{today}", "period_end": "{today}"}),
    Row("evidence-export", "GET", "/api/v1/evidence-exports/{evidence_export}/", EVIDENCE_ONE),
    Row("evidence-export-download", "GET", "/api/v1/evidence-exports/{evidence_export}/download/",
        expect(404, auditor="409 invalid_state", **ANON_401)),
    Row("evidence-export-retry", "POST", "/api/v1/evidence-exports/{evidence_export}/retry/",
        expect(404, auditor="409 invalid_state", **ANON_401)),
    # Control changes (RULES.md section 8): admin proposed lowering production's approvals (a weakening
    # change): security for production is the second person; the proposer may only withdraw it.
    Row("control-changes", "GET", "/api/v1/control-changes/", EVERYONE),
    Row("control-change", "GET", "/api/v1/control-changes/{control_change}/", SEES_ALL_CONTROL_CHANGE),
    Row("control-change-approve", "POST", "/api/v1/control-changes/{control_change}/approve/",
        expect(404, sec=200, auditor="403 missing_duty", admin="403 four_eyes_control", **ANON_401)),
    Row("control-change-reject", "POST", "/api/v1/control-changes/{control_change}/reject/",
        expect(404, sec=200, auditor="403 missing_duty", admin=200, **ANON_401), body={"comment": "Matrix."}),
]

# --- Portal pages (session; anonymous is sent to the login page) ------------------------------------

TO_LOGIN = 302
# A portal action that succeeds redirects back to the change page (302); a refusal renders it (403).
PORTAL_DEPLOY = expect(403, ops=302, idev=404, anonymous=TO_LOGIN)
PAGE_ROWS = [
    Row("healthz", "GET", "/healthz", expect(200), kind="page"),
    Row("login", "GET", "/accounts/login/", expect(200), kind="page"),
    # A one-time reset link (K5) opens for whoever holds it; a made-up one says it is used or expired.
    Row("reset-link", "GET", "/accounts/reset/MQ/made-up-token/", expect(200), kind="page"),
    Row("reset-link-done", "GET", "/accounts/reset/done/", expect(200), kind="page"),
    Row("logout", "POST", "/accounts/logout/", expect(302), kind="page"),
    Row("dashboard", "GET", "/", expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("change-page", "GET", "/changes/{cr_prod_pending}/", expect(200, idev=404, anonymous=TO_LOGIN), kind="page"),
    Row("change-page-identity", "GET", "/changes/{cr_identity}/",
        expect(404, idev=200, **each(SEES_ALL, 200), anonymous=TO_LOGIN), kind="page"),
    Row("signoff-page", "GET", "/changes/{cr_prod_pending}/signoff/",
        expect(200, idev=404, anonymous=TO_LOGIN), kind="page"),
    Row("review-page", "GET", "/changes/{cr_staging_pending}/review/",
        expect(200, idev=404, anonymous=TO_LOGIN), kind="page"),
    Row("deploy-start", "POST", "/changes/{cr_rotate_prod}/deployments/",
        PORTAL_DEPLOY, kind="page", body={}),
    Row("deploy-finish", "POST", "/deployments/{dep_running}/finish/",
        PORTAL_DEPLOY, kind="page", body={"outcome": "succeeded"}),
    Row("deploy-rollback", "POST", "/deployments/{dep_staged}/rollback/",
        PORTAL_DEPLOY, kind="page", body={"reason": "Matrix."}),
    # The developer's portal (issue 18): the list and the form for everyone signed in (the list shows
    # what V1 lets them see; the service decides a new change), the edit form for the author; the
    # panel's actions redirect on success and render the change page with the refusal otherwise.
    Row("inbox-page", "GET", "/inbox/", expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("changes-page", "GET", "/changes/", expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("changes-page-filtered", "GET", "/changes/?q=retry&state=pending&environment=production&team=payments",
        expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("change-new-page", "GET", "/changes/new/", expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("change-edit-page", "GET", "/changes/{cr_draft}/edit/",
        expect(403, dev2=200, idev=404, anonymous=TO_LOGIN), kind="page"),
    Row("change-submit-page", "POST", "/changes/{cr_draft}/submit/",
        expect(403, dev2=302, idev=404, anonymous=TO_LOGIN), kind="page", body={}),
    Row("change-withdraw-page", "POST", "/changes/{cr_staging_pending}/withdraw/",
        expect(403, dev=302, idev=404, anonymous=TO_LOGIN), kind="page", body={}),
    Row("change-re-review-page", "POST", "/changes/{cr_rotate_prod}/re-review/",
        expect(403, dev2=409, mgr=409, idev=404, anonymous=TO_LOGIN), kind="page", body={}),
    Row("change-retry-page", "POST", "/changes/{cr_failed}/retry/",
        expect(403, ops=302, idev=404, anonymous=TO_LOGIN), kind="page", body={}),
    Row("access-reviews-page", "GET", "/access-reviews/", expect(200, anonymous=TO_LOGIN), kind="page"),
    Row("access-review-decide", "POST", "/access-reviews/items/{review_item}/decide/",
        expect(404, mgr=302, **each(SEES_ALL, 403), anonymous=TO_LOGIN), kind="page", body={"decision": "keep"}),
    # Many items with one comment (issue 18): items out of sight are a field error (400); a revoke
    # first shows what would end (200, nothing written), the confirmed one is the service's to judge.
    Row("access-review-bulk", "POST", "/access-reviews/items/decide/",
        expect(400, mgr=302, **each(SEES_ALL, 403), anonymous=TO_LOGIN), kind="page",
        body={"items": "{review_item}", "decision": "keep"}),
    Row("access-review-bulk-confirm", "POST", "/access-reviews/items/decide/",
        expect(400, mgr=200, **each(SEES_ALL, 200), anonymous=TO_LOGIN), kind="page",
        body={"items": "{review_item}", "decision": "revoke", "comment": "Matrix."}),
    # The inbox's decisions (issue 18): as the API's approve and resolve (G4, E2), refusals render the
    # inbox (403, 409) and a decision made redirects back to it.
    Row("inbox-grant-decide", "POST", "/inbox/grants/{grant_pending}/decide/",
        expect(404, mgr=403, dev2=403, sec=302, auditor=403, admin=302, anonymous=TO_LOGIN), kind="page",
        body={"decision": "approve"}),
    Row("inbox-grant-reject", "POST", "/inbox/grants/{grant_pending}/decide/",
        expect(404, mgr=302, dev2=403, sec=302, auditor=403, admin=302, anonymous=TO_LOGIN), kind="page",
        body={"decision": "reject", "reason": "Matrix."}),
    Row("inbox-alert-resolve", "POST", "/inbox/alerts/{alert}/resolve/",
        expect(404, sec=302, auditor=403, admin=403, anonymous=TO_LOGIN), kind="page",
        body={"resolution": "Matrix."}),
    Row("evidence-page", "GET", "/evidence/", expect(404, auditor=200, anonymous=TO_LOGIN), kind="page"),
    Row("evidence-download", "GET", "/evidence/{evidence_export}/download/",
        expect(404, auditor=409, anonymous=TO_LOGIN), kind="page"),
]


# --- Admin pages: derived from admin.site._registry, statuses declared per model below ---------------

ADMIN_PAGES = ("changelist", "add", "change", "history", "delete", "object")
# Pages some ModelAdmins add: simple_history's past version, guardian's object permissions, the
# user's password form, the evidence bundle download.
ADMIN_EXTRA_PAGES = {
    "version": "{obj}/history/{version}/",
    "permissions": "{obj}/permissions/",
    "permissions-user": "{obj}/permissions/user-manage/{user_dev}/",
    "permissions-group": "{obj}/permissions/group-manage/{group}/",
    "password": "{obj}/password/",
    "download": "{obj}/download/",
}
ADMIN_PAGE_URLS = {
    "changelist": "", "add": "add/", "change": "{obj}/change/", "history": "{obj}/history/",
    "delete": "{obj}/delete/", "object": "{obj}/",
}

# Which demo object each model's object pages show (a key of world()["ids"]).
ADMIN_OBJECTS = {
    "governance.team": "team_payments",
    "governance.environment": "env_production",
    "governance.role": "role_developer",
    "governance.roleassignment": "grant_dev",
    "governance.conflictrule": "conflict_rule",
    "governance.sodexception": "sod_exception",
    "governance.apitoken": "token_dev",
    "governance.accessreview": "review",
    "governance.accessreviewitem": "review_item",
    "auth.user": "user_dev",
    "governance.controlchange": "control_change",
    "django_celery_beat.periodictask": "beat_task",
    "django_celery_beat.clockedschedule": "beat_clocked",
    "django_celery_beat.crontabschedule": "beat_crontab",
    "django_celery_beat.solarschedule": "beat_solar",
    "django_celery_beat.intervalschedule": "beat_interval",
    "releases.approvalpolicy": "policy_production",
    "releases.freezewindow": "freeze_window",
    "releases.standardchangetemplate": "standard_template",
    "releases.changerequest": "cr_prod_pending",
    "releases.deployment": "dep_staged",
    "audit.auditevent": "audit_event",
    "audit.auditseal": "seal",
    "audit.alert": "alert",
    "audit.notificationchannel": "channel",
    "audit.outboxmessage": "outbox_message",
    "audit.evidenceexport": "evidence_export",
    "integrations.linkedrepository": "linked_repository",
    "integrations.platformaccount": "platform_account",
    "integrations.webhookdelivery": "webhook_delivery",
    "integrations.learntcontributor": "learnt_contributor",
    "integrations.protectionrequest": "protection_request",
    "integrations.reporteddeployment": "reported_deployment",
    "identity.grouprolemapping": "group_mapping",
    "compliance.siemsink": "siem_sink",
    "audit.timestampauthority": "timestamp_authority",
    "compliance.witness": "witness",
}



def adm(sec, mgr, auditor, admin) -> dict:
    """An admin page: anonymous and non-staff users are sent to the admin's login (302); the staff
    (sec, mgr, auditor) and the superuser get what their duties allow (V4)."""
    return expect(302, sec=sec, mgr=mgr, auditor=auditor, admin=admin)


ALL_STAFF = adm(200, 200, 200, 200)
NO_STAFF = adm(403, 403, 403, 403)
SUPERUSER_ONLY = adm(403, 403, 403, 200)
# simple_history keeps no version of rows seeded in bulk (roles, conflict rules, review items): 404.
NO_VERSION = adm(404, 404, 404, 404)


def pages(view, add, delete=NO_STAFF, **extra) -> dict:
    """changelist, change, history (and a past version) read like ``view``; the bare object URL
    redirects to its change page; deleting goes through services, never the admin (NO_STAFF)."""
    return {"changelist": view, "change": view, "history": view, "add": add, "delete": delete,
            "object": expect(302), **extra}


SECURITY_AND_ADMIN = adm(200, 403, 403, 200)

ADMIN_EXPECT: dict[str, dict[str, dict]] = {
    # Accounts are the superuser's; nobody deletes one (K5), and the password page sends a reset link.
    "auth.user": pages(SUPERUSER_ONLY, SUPERUSER_ONLY, password=SUPERUSER_ONLY),
    # The detective controls' schedules (K1): superusers and security; schedule rows are add-only.
    "django_celery_beat.periodictask": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    **{f"django_celery_beat.{model}": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN)
       for model in ("clockedschedule", "crontabschedule", "solarschedule", "intervalschedule")},
    # Every control change, and the proposals waiting for a second person (K3).
    "governance.controlchange": pages(ALL_STAFF, NO_STAFF),
    # V3: the audit trail, seals and alerts need view_audit (sec, auditor); mgr holds none.
    "audit.auditevent": pages(adm(200, 403, 200, 200), NO_STAFF),
    "audit.auditseal": pages(adm(200, 403, 200, 200), NO_STAFF),
    "audit.alert": pages(adm(200, 403, 200, 200), NO_STAFF),
    # Delivery configuration and its queue: security's (E3).
    "audit.notificationchannel": pages(adm(200, 403, 403, 200), adm(200, 403, 403, 200)),
    "audit.outboxmessage": pages(adm(200, 403, 403, 200), NO_STAFF),
    # V3: evidence needs export_evidence (auditor); the superuser sees the list but may not export.
    "audit.evidenceexport": pages(adm(403, 403, 200, 200), adm(403, 403, 200, 403),
                                  download=adm(404, 404, 302, 302)),
    # V2: grants; managers request them in their team (G1).
    "governance.roleassignment": pages(ALL_STAFF, adm(403, 200, 403, 200), version=ALL_STAFF),
    # What spans every environment (K6): superusers and security for all environments propose it.
    "governance.team": pages(ALL_STAFF, SECURITY_AND_ADMIN, version=ALL_STAFF, permissions=ALL_STAFF,
                             **{"permissions-user": NO_STAFF, "permissions-group": NO_STAFF}),
    "governance.environment": pages(ALL_STAFF, SECURITY_AND_ADMIN, version=ALL_STAFF,
                                    permissions=adm(200, 403, 200, 200),
                                    **{"permissions-user": NO_STAFF, "permissions-group": NO_STAFF}),
    "governance.role": pages(ALL_STAFF, SECURITY_AND_ADMIN, version=NO_VERSION),
    "governance.conflictrule": pages(ALL_STAFF, adm(200, 403, 403, 200), version=NO_VERSION),
    "governance.sodexception": pages(ALL_STAFF, adm(200, 200, 403, 200), version=ALL_STAFF),
    # A key is its owner's: other staff are told dev's key does not exist (302 to the index).
    "governance.apitoken": {**pages(ALL_STAFF, NO_STAFF), "change": adm(302, 302, 302, 200),
                            "history": adm(302, 302, 302, 200)},
    "governance.accessreview": pages(ALL_STAFF, adm(200, 200, 403, 200), version=ALL_STAFF),
    "governance.accessreviewitem": pages(ALL_STAFF, NO_STAFF, version=NO_VERSION),
    "releases.approvalpolicy": pages(ALL_STAFF, adm(200, 403, 403, 200), version=ALL_STAFF),
    "releases.freezewindow": pages(ALL_STAFF, adm(200, 403, 403, 200), version=ALL_STAFF),
    # C9: the catalogue of standard changes is security's; a superuser without the duty only reads it.
    "releases.standardchangetemplate": pages(ALL_STAFF, SECURITY_AND_ADMIN, version=ALL_STAFF),
    "releases.changerequest": pages(ALL_STAFF, NO_STAFF, version=ALL_STAFF),
    "releases.deployment": pages(ALL_STAFF, NO_STAFF, version=ALL_STAFF),
    # Integrations (issue 16): linked repositories and platform accounts span every environment (K6);
    # deliveries and what was learnt from them are read-only records.
    "integrations.linkedrepository": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    "integrations.platformaccount": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    "integrations.webhookdelivery": pages(SUPERUSER_ONLY, NO_STAFF),
    "integrations.learntcontributor": pages(SUPERUSER_ONLY, NO_STAFF),
    "integrations.protectionrequest": pages(SUPERUSER_ONLY, NO_STAFF),
    "integrations.reporteddeployment": pages(SUPERUSER_ONLY, NO_STAFF),
    # Identity (issue 17): which provider group hands out which role spans every environment (K6).
    "identity.grouprolemapping": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    # SIEM sinks (issue 19): security's copy of the trail spans every environment (K6).
    "compliance.siemsink": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    # Timestamp authorities (issue 20): who countersigns every seal's time spans every environment (K6).
    # Removable through the control door (a removal waits for a second person).
    "audit.timestampauthority": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
    "compliance.witness": pages(SECURITY_AND_ADMIN, SECURITY_AND_ADMIN),
}


def admin_rows() -> list[Row]:
    from django.contrib import admin

    rows = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        obj = "{" + ADMIN_OBJECTS.get(label, "missing") + "}"
        declared = ADMIN_EXPECT.get(label, {})
        pages = dict(ADMIN_PAGE_URLS)
        pages.update({page: url for page, url in ADMIN_EXTRA_PAGES.items() if _serves(base + url)})
        for page, url in pages.items():
            url = url.replace("{obj}", obj).replace("{version}", "{v_" + label.replace(".", "_") + "}")
            # A model or page nobody declared fails every cell (None is no status).
            statuses = declared.get(page) or expect(None)
            rows.append(Row(f"admin-{label}-{page}", "GET", base + url, statuses, kind="admin"))
    return rows


def _serves(url_template: str) -> bool:
    """Does this model's admin serve the extra page? Its URL then resolves to a named view of its
    own rather than to the admin's catch-all redirect for ``<object_id>/``."""
    from django.urls import Resolver404, resolve

    url = url_template.format(**{key: 1 for key in ("obj", "version", "user_dev", "group")})
    try:
        name = resolve(url).url_name
    except Resolver404:
        return False
    return bool(name) and name.endswith(
        ("_simple_history", "_permissions", "_manage_user", "_manage_group", "_password_change", "_download"))


ADMIN_SITE_ROWS = [
    Row("admin-index", "GET", "/admin/", adm(200, 200, 200, 200), kind="admin"),
    Row("admin-login", "GET", "/admin/login/", expect(200, sec=302, mgr=302, auditor=302, admin=302), kind="admin"),
    Row("admin-logout", "POST", "/admin/logout/", expect(302), kind="admin"),
    Row("admin-password-change", "GET", "/admin/password_change/", adm(200, 200, 200, 200), kind="admin"),
    Row("admin-password-change-done", "GET", "/admin/password_change/done/", adm(200, 200, 200, 200), kind="admin"),
    Row("admin-autocomplete", "GET", "/admin/autocomplete/?app_label=governance&model_name=roleassignment"
        "&field_name=user", adm(403, 403, 403, 200), kind="admin"),
    Row("admin-jsi18n", "GET", "/admin/jsi18n/", adm(200, 200, 200, 200), kind="admin"),
    # Users have no public page: "view on site" has nowhere to go.
    Row("admin-view-on-site", "GET", "/admin/r/{ct_user}/{user_dev}/", adm(404, 404, 404, 404), kind="admin"),
    Row("admin-app-governance", "GET", "/admin/governance/", adm(200, 200, 200, 200), kind="admin"),
    Row("admin-catch-all", "GET", "/admin/no-such-page/", adm(404, 404, 404, 404), kind="admin"),
]


# --- Identity (issue 17): SCIM answers only a provisioning token (no persona's API key is one), the
# OIDC endpoints redirect (to the provider, or back after a failed answer), the sign-off step-up
# needs a session and a waiting sign-off.
SCIM_401 = expect(401)
IDENTITY_ROWS = [
    Row("scim-config", "GET", "/scim/v2/ServiceProviderConfig", SCIM_401),
    Row("scim-schemas", "GET", "/scim/v2/Schemas", SCIM_401),
    Row("scim-schema", "GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", SCIM_401),
    Row("scim-resource-types", "GET", "/scim/v2/ResourceTypes", SCIM_401),
    Row("scim-resource-type", "GET", "/scim/v2/ResourceTypes/User", SCIM_401),
    Row("scim-users", "GET", "/scim/v2/Users", SCIM_401),
    Row("scim-users-create", "POST", "/scim/v2/Users", SCIM_401, body={"userName": "intruder@example.com"}),
    Row("scim-users-search", "POST", "/scim/v2/Users/.search", SCIM_401, body={}),
    Row("scim-user", "GET", "/scim/v2/Users/{user_dev}", SCIM_401),
    Row("scim-user-deactivate", "PATCH", "/scim/v2/Users/{user_dev}", SCIM_401,
        body={"Operations": [{"op": "replace", "value": {"active": False}}]}),
    Row("scim-user-delete", "DELETE", "/scim/v2/Users/{user_dev}", SCIM_401),
    Row("scim-groups", "GET", "/scim/v2/Groups", SCIM_401),
    Row("scim-groups-search", "POST", "/scim/v2/Groups/.search", SCIM_401, body={}),
    Row("scim-group", "GET", "/scim/v2/Groups/1", SCIM_401),
    Row("scim-search-all", "POST", "/scim/v2/.search", SCIM_401, body={}),
    Row("scim-unknown", "GET", "/scim/v2/Nothing", expect(404)),
    Row("oidc-authenticate", "GET", "/oidc/authenticate/", expect(302), kind="page"),
    Row("oidc-callback", "GET", "/oidc/callback/", expect(302), kind="page"),
    Row("oidc-logout", "POST", "/oidc/logout/", expect(302), kind="page"),
    Row("sso-signoff-start", "POST", "/sso/signoff/{cr_prod_pending}/", expect(302), kind="page"),
    Row("sso-signoff-callback", "GET", "/sso/signoff/callback/", expect(400, anonymous=TO_LOGIN), kind="page"),
]


def all_rows() -> list[Row]:
    return API_ROWS + PAGE_ROWS + ADMIN_SITE_ROWS + admin_rows() + IDENTITY_ROWS


# --- The world ----------------------------------------------------------------------------------------


def build_world() -> dict:
    """Objects the rows name, beyond the demo: a change request of identity, a pending staging
    change, a pending privileged grant, a running deployment, an access-review campaign, an alert,
    an evidence export, a seal, a freeze window, an SoD exception. Then one API key and one
    session per persona. Runs inside the module's seeded transaction."""
    from datetime import date

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.test import Client
    from django.utils import timezone

    from audit import seals
    from audit.alerts import raise_alert
    from compliance.evidence import services as evidence
    from audit.models import AuditEvent, NotificationChannel, OutboxMessage
    from governance import services as governance
    from governance.controls.services import control_change
    from governance.models import ConflictRule, Environment, Role, RoleAssignment, Team
    from releases import services as releases
    from releases.models import ApprovalPolicy, ChangeRequest, Deployment, FreezeWindow, StandardChangeTemplate

    users = {u.username: u for u in get_user_model().objects.all()}
    teams = {t.slug: t for t in Team.objects.all()}
    envs = {e.slug: e for e in Environment.objects.all()}
    roles = {r.slug: r for r in Role.objects.all()}
    now = timezone.now()

    def change(title, env):
        return ChangeRequest.objects.get(title=title, environment__slug=env)

    def grant(user, role, env):
        return RoleAssignment.objects.get(user=users[user], role__slug=role, environment__slug=env,
                                          status=RoleAssignment.Status.ACTIVE)

    cr_identity = releases.change_request_create(
        actor=users["idev"], team=teams["identity"], environment=envs["staging"], title="Identity change",
        artifact="identity:1")
    cr_staging_pending = releases.change_request_create(
        actor=users["dev"], team=teams["payments"], environment=envs["staging"], title="Matrix pending",
        artifact="matrix:2", contributors=["dev2"])
    releases.change_request_submit(actor=users["dev"], change_request=cr_staging_pending)
    standard = change("Raise log level for payments-api", "staging")
    dep_running = releases.deployment_start(actor=users["ops"], change_request=standard)
    cr_failed = releases.change_request_create(
        actor=users["dev"], team=teams["payments"], environment=envs["staging"], title="Matrix failed",
        artifact="matrix:3")
    releases.change_request_submit(actor=users["dev"], change_request=cr_failed)
    releases.change_request_approve(actor=users["rev"], change_request=cr_failed, comment="Matrix.")
    releases.deployment_finish(actor=users["ops"], outcome="failed", deployment=releases.deployment_start(
        actor=users["ops"], change_request=cr_failed))
    grant_pending = governance.role_grant(
        actor=users["mgr"], user=users["dev2"], role=roles["reviewer"], team=teams["payments"],
        environment=envs["production"], justification="Matrix: pending.", expires_at=now + timedelta(days=30))
    review = governance.access_review_start(actor=users["mgr"], period="matrix", team=teams["payments"])
    review_item = review.items.get(assignment=grant("dev", "developer", "staging"))
    alert, _ = raise_alert("matrix", subject="Matrix alert")
    export = evidence.export_request(actor=users["auditor"], framework="sox", period_start=date(2025, 1, 1),
                                     period_end=date(2025, 1, 31))
    seal = seals.seal()
    freeze = FreezeWindow.objects.get(pk=control_change(
        actor=users["admin"], kind="releases.freezewindow",
        values={"name": "Matrix freeze", "starts_at": now + timedelta(days=30), "ends_at": now + timedelta(days=31),
                "reason": "Matrix.", "environments": [envs["production"]]}).target_id)
    proposal = control_change(actor=users["admin"], kind="releases.approvalpolicy",
                              target=ApprovalPolicy.objects.get(environment=envs["production"]),
                              values={"min_approvals": 1})
    sod = governance.sod_exception_request(
        actor=users["mgr"], user=users["dev"], duty_a="submit", duty_b="deploy", environment=envs["production"],
        justification="Matrix.", expires_at=now + timedelta(days=7))
    # Schedule definitions are add-only rows, not controls; the task using one and the channel are.
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule

    interval = IntervalSchedule.objects.create(every=1, period="days")
    beat = {
        "beat_interval": interval.pk,
        "beat_crontab": CrontabSchedule.objects.create().pk,
        "beat_clocked": ClockedSchedule.objects.create(clocked_time=now).pk,
        "beat_solar": SolarSchedule.objects.create(event="sunrise", latitude=0, longitude=0).pk,
        "beat_task": control_change(actor=users["admin"], kind="django_celery_beat.periodictask",
                                    values={"name": "matrix", "task": "matrix", "interval": interval}).target_id,
    }
    channel = NotificationChannel.objects.get(pk=control_change(
        actor=users["admin"], kind="audit.notificationchannel",
        values={"name": "Matrix", "kind": "email", "target": "ops@example.com"}).target_id)
    group = Group.objects.create(name="matrix")  # only for guardian's group page, which refuses everyone
    from integrations.models import (LearntContributor, LinkedRepository, PlatformAccount, ProtectionRequest,
                                     ReportedDeployment, WebhookDelivery)

    repository = LinkedRepository.objects.get(pk=control_change(
        actor=users["admin"], kind="integrations.linkedrepository",
        values={"platform": "github", "full_name": "matrix/repo", "team": teams["payments"],
                "webhook_secret": "matrix-secret", "is_active": True}).target_id)
    account = PlatformAccount.objects.get(pk=control_change(
        actor=users["admin"], kind="integrations.platformaccount",
        values={"user": users["dev2"], "platform": "github", "login": "matrix-dev2"}).target_id)
    from identity.models import GroupRoleMapping

    group_mapping = GroupRoleMapping.objects.create(group_name="matrix-group", role=roles["reviewer"],
                                                    team=teams["payments"])
    from compliance.siem.models import SiemSink

    siem_sink = SiemSink.objects.get(pk=control_change(
        actor=users["admin"], kind="compliance.siemsink",
        values={"name": "Matrix SIEM", "transport": "syslog_tls", "destination": "siem.example.com:6514"}).target_id)
    from audit.models import TimestampAuthority
    from tests.timestamps.tsa import make_authority

    timestamp_authority = TimestampAuthority.objects.get(pk=control_change(
        actor=users["admin"], kind="audit.timestampauthority",
        values={"name": "Matrix TSA", "url": "https://tsa.example.com/tsr", "certificate": make_authority()[0]}).target_id)

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.cosignature import vkey
    from compliance.witnesses.models import Witness

    witness = Witness.objects.get(pk=control_change(
        actor=users["admin"], kind="compliance.witness",
        values={"name": "witness.example/matrix", "public_key": vkey(
            "witness.example/matrix", Ed25519PrivateKey.generate().public_key())}).target_id)
    delivery = WebhookDelivery.objects.create(platform="github", delivery_id="matrix-1", event="push",
                                              repository=repository, payload={})
    learnt = LearntContributor.objects.create(
        change_request=change("Retry card authorisation on timeout", "production"), revision=1, source="pusher",
        login="matrix-someone", delivery=delivery)
    protection_request = ProtectionRequest.objects.create(
        delivery=WebhookDelivery.objects.create(platform="github", delivery_id="matrix-2",
                                                event="deployment_protection_rule", repository=repository, payload={}),
        repository=repository, environment_name="production", sha="f" * 40,
        callback_url="https://api.github.com/repos/o/r/actions/runs/1/deployment_protection_rule")
    reported = ReportedDeployment.objects.create(
        source="github", repository=repository, external_id="matrix-1", environment_name="production",
        environment=envs["production"], status="success", reported_at=timezone.now(), status_at=timezone.now(),
        delivery=delivery)
    outbox = OutboxMessage.objects.order_by("pk").first()

    tokens, sessions = {}, {}
    for name, user in users.items():
        _, tokens[name] = governance.api_token_create(actor=user, user=user, name="matrix")
        client = Client()
        client.force_login(user)
        sessions[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    from governance.models import ApiToken

    ids = {
        "today": (now - timedelta(days=1)).date().isoformat(),
        "cr_identity": cr_identity.pk,
        "cr_staging_pending": cr_staging_pending.pk,
        "cr_failed": cr_failed.pk,
        "cr_prod_pending": change("Retry card authorisation on timeout", "production").pk,
        "cr_draft": change("Upgrade TLS library", "development").pk,
        "cr_rotate_prod": change("Rotate webhook signing secret", "production").pk,
        "dep_staged": Deployment.objects.get(change_request=change("Retry card authorisation on timeout", "staging")).pk,
        "dep_running": dep_running.pk,
        "grant_dev": grant("dev", "developer", "staging").pk,
        "grant_idev": grant("idev", "developer", "staging").pk,
        "grant_pending": grant_pending.pk,
        "review": review.pk,
        "review_item": review_item.pk,
        "alert": alert.pk,
        "evidence_export": export.pk,
        "seal": seal.pk if seal else "999999",
        "team_payments": teams["payments"].pk,
        "env_production": envs["production"].pk,
        "role_developer": roles["developer"].pk,
        "conflict_rule": ConflictRule.objects.order_by("pk").first().pk,
        "sod_exception": sod.pk,
        **beat,
        "token_dev": ApiToken.objects.filter(user=users["dev"]).order_by("pk").first().pk,
        "user_dev": users["dev"].pk,
        "group": group.pk,
        "policy_production": ApprovalPolicy.objects.get(environment=envs["production"]).pk,
        "freeze_window": freeze.pk,
        "standard_template": StandardChangeTemplate.objects.order_by("pk").first().pk,
        "audit_event": AuditEvent.objects.order_by("pk").first().pk,
        "channel": channel.pk,
        "linked_repository": repository.pk,
        "platform_account": account.pk,
        "group_mapping": group_mapping.pk,
        "siem_sink": siem_sink.pk,
        "timestamp_authority": timestamp_authority.pk,
        "witness": witness.pk,
        "checkpoint_size": seal.tree_size if seal else "999999",
        "webhook_delivery": delivery.pk,
        "learnt_contributor": learnt.pk,
        "protection_request": protection_request.pk,
        "reported_deployment": reported.pk,
        "control_change": proposal.pk,
        "outbox_message": outbox.pk if outbox else "999999",
        "ct_user": ContentType.objects.get_for_model(get_user_model()).pk,
        "missing": "999999",
    }
    from django.apps import apps

    for label, key in ADMIN_OBJECTS.items():
        model = apps.get_model(label)
        history = getattr(model, "history", None)
        if history is not None and str(ids[key]).isdigit():
            version = history.filter(id=ids[key]).order_by("history_id").first()
            ids["v_" + label.replace(".", "_")] = version.history_id if version else "999999"
    return {"ids": ids, "tokens": tokens, "sessions": sessions}



# --- Calling the WSGI app inside a test's transaction -------------------------------------------------


@contextmanager
def wsgi_in_test_transaction():
    """Django closes a connection it finds inside a transaction at each request's start and end
    (``close_old_connections``); the test client switches that off, a plain WSGI call (schemathesis'
    transport) does not. Off here too, so requests run in the test's transaction (PostgreSQL would
    otherwise lose it; SQLite's in-memory test database never closes)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema():
    """The OpenAPI document, fetched from the app itself (``/api/schema/``)."""
    import schemathesis

    from config.wsgi import application

    with wsgi_in_test_transaction():
        return schemathesis.openapi.from_wsgi("/api/schema/", application)
