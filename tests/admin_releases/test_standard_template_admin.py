"""The catalogue of standard changes in the admin (C9, issue 14 class 9a): a control (RULES.md
section 8). Security and administrators propose templates; a new one, or one that covers more, waits
for a second person; retiring one applies at once; every step on the chain with its values before
and after; a bad pattern is a form error; nobody else may add one."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance.models import ControlChange
from releases import demo as release_demo
from releases.models import StandardChangeTemplate
from tests.admin_releases.shortcuts import admin_url, last_event


def template_form(environment, *, name="payments-webhooks routine change", pattern="registry.example.com/webhooks*",
                  max_risk="low", expires_at=None, active=True) -> dict:
    expires_at = expires_at or (timezone.now() + timedelta(days=90)).replace(microsecond=0)
    form = {
        "name": name, "description": "Dependency bumps.", "environment": environment.pk, "max_risk": max_risk,
        "artifact_pattern": pattern, "expires_at_0": expires_at.strftime("%Y-%m-%d"),
        "expires_at_1": expires_at.strftime("%H:%M:%S"), "_save": "Save",
    }
    if active:
        form["active"] = "on"
    return form


def test_security_adds_a_template(demo, signed_in):
    response = signed_in(demo.sec).post(admin_url(StandardChangeTemplate, "add"), template_form(demo.staging))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not StandardChangeTemplate.objects.filter(name="payments-webhooks routine change").exists()
    proposal = ControlChange.objects.get(kind="releases.standardchangetemplate", status="pending")
    signed_in(demo.admin).post("/admin/governance/controlchange/",
                               {"action": "approve_selected", "_selected_action": [proposal.pk], "index": 0})
    template = StandardChangeTemplate.objects.get(name="payments-webhooks routine change")
    assert (template.environment, template.created_by, template.active) == (demo.staging, demo.sec, True)
    event = last_event("control.approved")
    assert (event.actor, event.data["proposed_by"], event.data["before"]) == (demo.admin, "sec", None)
    assert event.data["after"]["artifact_pattern"] == "registry.example.com/webhooks*"


def test_security_retires_a_template_and_the_event_says_what_changed(demo, signed_in):
    template = StandardChangeTemplate.objects.get(name=release_demo.TEMPLATE["name"])
    form = template_form(demo.staging, name=template.name, pattern=template.artifact_pattern,
                         expires_at=template.expires_at.replace(microsecond=0), active=False)

    response = signed_in(demo.sec).post(admin_url(StandardChangeTemplate, "change", template.pk), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    template.refresh_from_db()
    assert template.active is False
    event = last_event("control.changed")
    assert "active" in event.data["changed"]
    assert (event.data["before"]["active"], event.data["after"]["active"]) == (True, False)


def test_a_pattern_without_a_fixed_image_is_a_form_error(demo, signed_in):
    events = AuditEvent.objects.count()

    response = signed_in(demo.sec).post(admin_url(StandardChangeTemplate, "add"),
                                        template_form(demo.staging, pattern="*"))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["artifact_pattern"]
    assert not StandardChangeTemplate.objects.filter(name="payments-webhooks routine change").exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("persona", ["mgr", "auditor"])
def test_nobody_but_security_and_administrators_adds_a_template(demo, signed_in, persona):
    client = signed_in(getattr(demo, persona))

    assert client.get(admin_url(StandardChangeTemplate, "changelist")).status_code == 200
    response = client.post(admin_url(StandardChangeTemplate, "add"), template_form(demo.staging))

    assert response.status_code == 403
    assert not StandardChangeTemplate.objects.filter(name="payments-webhooks routine change").exists()
