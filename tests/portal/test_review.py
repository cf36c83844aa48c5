"""C10: the post-implementation review of an emergency change, written in the portal."""
import pytest

from releases import services
from releases.models import Deployment


@pytest.fixture
def deployed_emergency(demo, client_as, submitted):
    """dev's emergency change in staging: approved by rev, deployed by ops through the portal."""
    cr = submitted(demo.dev, demo.staging, title="Hotfix: disable broken 3DS challenge", change_type="emergency",
                   risk="high")
    services.change_request_approve(actor=demo.rev, change_request=cr, comment="Incident INC-42.")
    ops = client_as(demo.ops)
    ops.post(f"/changes/{cr.pk}/deployments/", {})
    deployment = Deployment.objects.get(change_request=cr)
    ops.post(f"/deployments/{deployment.pk}/finish/", {"outcome": "succeeded"})
    cr.refresh_from_db()
    return cr


def test_an_independent_approver_writes_the_review(demo, deployed_emergency, client_as):
    rev2 = client_as(demo.rev2)
    cr = deployed_emergency

    dashboard = rev2.get("/")
    form = rev2.get(f"/changes/{cr.pk}/review/")
    empty = rev2.post(f"/changes/{cr.pk}/review/", {"notes": ""})
    response = rev2.post(f"/changes/{cr.pk}/review/", {"notes": "Justified; follow-up ticket PAY-120."})

    assert cr.pir_due_at is not None
    assert [c.pk for c in dashboard.context["pir_due"]] == [cr.pk]
    assert form.status_code == 200
    assert empty.status_code == 400
    assert response.status_code == 302
    cr.refresh_from_db()
    assert (cr.pir_by, cr.pir_notes) == (demo.rev2, "Justified; follow-up ticket PAY-120.")
    assert rev2.get("/").context["pir_due"] == []
    assert b"follow-up ticket PAY-120" in rev2.get(f"/changes/{cr.pk}/").content


def test_the_author_and_the_deployer_may_not_review(demo, deployed_emergency, client_as):
    cr = deployed_emergency

    by_author = client_as(demo.dev).post(f"/changes/{cr.pk}/review/", {"notes": "Fine by me."})
    by_deployer = client_as(demo.ops).post(f"/changes/{cr.pk}/review/", {"notes": "Fine by me."})

    assert by_author.status_code == by_deployer.status_code == 403
    assert [r.code for r in by_author.context["refusal"].reasons] == ["missing_duty", "author_cannot_review"]
    assert [r.code for r in by_deployer.context["refusal"].reasons] == ["missing_duty", "deployer_cannot_review"]
    cr.refresh_from_db()
    assert cr.pir_at is None


def test_a_normal_change_has_no_review_to_write(demo, changes, client_as):
    response = client_as(demo.rev2).post(f"/changes/{changes.retry_staging.pk}/review/", {"notes": "?"})

    assert response.status_code == 409
    assert [r.code for r in response.context["refusal"].reasons] == ["invalid_state"]
