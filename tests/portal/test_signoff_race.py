"""Issue 14 class 1, raced for real: an artifact pushed while the reviewer's password is being
checked (about 0.2 s) must never be signed off in the reviewer's name, in the portal or over the
API. PostgreSQL, one connection per thread, committed data; the push is put exactly inside the
reviewer's window, so the story is the same every run."""
import threading

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from governance import services as governance_services
from releases import services
from releases.api.serializers import DecisionSerializer
from releases.models import Approval, ChangeRequest
from tests.releases.racing import in_threads
from tests.releases.stories import new_artifact

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "countersign-demo"


def paused_after(cls, name, monkeypatch):
    """Make ``cls.name`` signal ``reached`` when it returns, then wait for ``resume``."""
    reached, resume = threading.Event(), threading.Event()
    original = getattr(cls, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        reached.set()
        assert resume.wait(timeout=20), "the push never came"
        return result

    monkeypatch.setattr(cls, name, wrapped)
    return reached, resume


def push_when(reached, resume, demo, cr, artifact):
    def push():
        assert reached.wait(timeout=20), "the reviewer never reached the window"
        try:
            return services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": artifact})
        finally:
            resume.set()
    return push


def test_an_artifact_pushed_during_the_password_check_is_not_signed(demo, monkeypatch):
    cr = ChangeRequest.objects.get(title="Retry card authorisation on timeout", environment=demo.production)
    assert (cr.state, cr.revision) == ("pending", 1)
    reached, resume = paused_after(get_user_model(), "check_password", monkeypatch)
    rebuilt = new_artifact()
    reviewer = Client()
    reviewer.force_login(demo.rev)

    def sign_off():
        return reviewer.post(f"/changes/{cr.pk}/signoff/", {
            "decision": "approve", "comment": "Reviewed revision 1.", "password": PASSWORD, "revision": 1})

    response, pushed = in_threads(sign_off, push_when(reached, resume, demo, cr, rebuilt))

    assert pushed.revision == 2
    assert response.status_code == 409, response.status_code
    assert [r.code for r in response.context["refusal"].reasons] == ["revision_changed"]
    assert response.context["form"]["revision"].value() == 2  # what the reviewer sees now
    assert not Approval.objects.filter(change_request=cr, reviewer=demo.rev).exists()
    assert ChangeRequest.objects.get(pk=cr.pk).artifact == rebuilt


def test_an_artifact_pushed_while_an_api_approval_is_read_is_not_approved(demo, monkeypatch):
    """Staging takes API approvals: rev read revision 1 and approves it; dev's push commits after
    the API read the change and before the service locks it."""
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Tune the pool", artifact=new_artifact())
    cr = services.change_request_submit(actor=demo.dev, change_request=cr)
    reached, resume = paused_after(DecisionSerializer, "validate", monkeypatch)
    _, key = governance_services.api_token_create(actor=demo.rev, user=demo.rev, name="race")
    reviewer = APIClient()
    reviewer.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def approve():
        return reviewer.post(f"/api/v1/change-requests/{cr.pk}/approve/", {"revision": 1, "comment": "r1"},
                             format="json")

    response, pushed = in_threads(approve, push_when(reached, resume, demo, cr, new_artifact()))

    assert pushed.revision == 2
    assert response.status_code == 409, response.content
    assert [r["code"] for r in response.json()["reasons"]] == ["revision_changed"]
    assert not Approval.objects.filter(change_request=cr).exists()
