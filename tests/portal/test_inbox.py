"""The inbox ("waiting on you", issue 18): each persona sees what only they, or someone with their
duties, can move on; the top bar counts it."""
from datetime import timedelta

from django.utils import timezone

from audit.alerts import raise_alert
from governance import services as governance
from releases import services
from releases.inbox import waiting_on


def test_each_persona_sees_what_waits_on_them(demo, changes, client_as, submitted):
    pending = submitted(demo.dev, demo.staging)
    sent_back = submitted(demo.dev, demo.staging, title="Send me back")
    services.change_request_request_changes(actor=demo.rev2, change_request=sent_back, comment="Add a plan.")
    grant = governance.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                                  environment=demo.production, justification="Cover rev in production.",
                                  expires_at=timezone.now() + timedelta(days=30))
    alert, _ = raise_alert("inbox_test", subject="Something odd", team="payments")

    rev = waiting_on(demo.rev)
    assert pending in rev.reviews and sent_back not in rev.reviews
    dev = waiting_on(demo.dev)
    assert sent_back in dev.mine and pending not in dev.reviews
    assert changes.rotate_production in waiting_on(demo.ops).deployments
    sec = waiting_on(demo.sec)
    assert grant in sec.grants and alert in sec.alerts
    mgr = waiting_on(demo.mgr)
    assert grant not in mgr.grants  # mgr asked for it: a second person approves (G4)
    assert alert not in dev.alerts and grant not in dev.grants


def test_the_page_and_the_count_in_the_top_bar(demo, client_as, submitted):
    submitted(demo.dev, demo.staging)
    client = client_as(demo.rev)

    page = client.get("/inbox/")

    assert page.status_code == 200
    count = page.context["inbox"].count
    assert count >= 1
    assert f'aria-label="{count} waiting"'.encode() in page.content
    assert b"Reviews to do" in page.content
    assert f'aria-label="{count} waiting"'.encode() in client.get("/").content


def test_a_failed_deployment_waits_on_the_operators(demo, client_as, approved_in_staging):
    cr = approved_in_staging()
    deployment = services.deployment_start(actor=demo.ops, change_request=cr)
    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="failed")

    assert cr in waiting_on(demo.ops).retries
    assert cr not in waiting_on(demo.rev).retries
