"""Choose or request reviewers (issue 18): the author names holders of approve or security approve
for the environment on the change form; they see the change first in their inbox ("asked of you")
and the change page says whom it was asked of. A request, not a rule: no new revision, no power."""
import pytest

from audit.models import AuditEvent
from core.errors import Denied
from releases import services
from releases.models import ChangeRequest
from tests.portal.test_developer import form
from tests.releases.conftest import nothing_written  # noqa: F401 (fixture)

S = ChangeRequest.State


def asked(cr) -> list[str]:
    return sorted(u.username for u in ChangeRequest.objects.get(pk=cr.pk).requested_reviewers.all())


def test_the_author_requests_reviewers_on_the_new_change_form(demo, client_as):
    client = client_as(demo.dev)
    page = client.get("/changes/new/")
    assert b'<label for="id_requested_reviewers"' in page.content

    response = client.post("/changes/new/", form(demo, requested_reviewers="rev2, sec"))

    cr = ChangeRequest.objects.get(title="Tune the connection pool")
    assert response.status_code == 302
    assert asked(cr) == ["rev2", "sec"]
    event = AuditEvent.objects.get(action="change_request.created", target_id=str(cr.pk))
    assert event.data["requested_reviewers"] == ["rev2", "sec"]
    page = client.get(f"/changes/{cr.pk}/")
    assert b"Review requested from" in page.content
    assert b'<dd id="requested-reviewers">rev2, sec</dd>' in page.content


@pytest.mark.parametrize(("named", "message"), [
    ("dev", "You cannot ask yourself to review your own change."),
    ("dev2", "A contributor cannot review this change: dev2."),
    ("ops", "Not a reviewer for staging: ops."),
    ("nobody-at-all", "Not a reviewer for staging: nobody-at-all."),
])
def test_the_form_refuses_the_author_a_contributor_and_the_ineligible(demo, client_as, nothing_written, named,
                                                                     message):
    with nothing_written():
        response = client_as(demo.dev).post("/changes/new/", form(demo, requested_reviewers=f"rev, {named}"))
    assert response.status_code == 400
    assert response.context["form"].errors["requested_reviewers"] == [message]
    assert message.encode() in response.content.replace(b"&#x27;", b"'")


def test_a_reviewer_of_another_environment_is_not_eligible(demo, client_as, nothing_written):
    """rev approves in staging and production, not in development."""
    with nothing_written():
        response = client_as(demo.dev).post("/changes/new/", form(demo, environment=demo.development.pk,
                                                                  requested_reviewers="rev"))
    assert response.context["form"].errors["requested_reviewers"] == ["Not a reviewer for development: rev."]


def test_editing_the_request_under_review_starts_no_new_revision(demo, client_as, submitted):
    cr = submitted(demo.dev, demo.staging, requested_reviewers=["rev"])
    client = client_as(demo.dev)
    page = client.get(f"/changes/{cr.pk}/edit/")
    assert page.context["form"].initial["requested_reviewers"] == "rev"
    data = {name: value for name, value in page.context["form"].initial.items() if value is not None}

    response = client.post(f"/changes/{cr.pk}/edit/", {**data, "requested_reviewers": "rev2"})

    assert response.status_code == 302
    cr.refresh_from_db()
    assert (cr.state, cr.revision, asked(cr)) == (S.PENDING, 1, ["rev2"])
    event = AuditEvent.objects.filter(action="change_request.updated", target_id=str(cr.pk)).latest("pk")
    assert (event.data["changed"], event.data["requested_reviewers"]) == ([], ["rev2"])

    refused = client.post(f"/changes/{cr.pk}/edit/", {**data, "requested_reviewers": "rev2, dev"})
    assert refused.status_code == 400
    assert refused.context["form"].errors["requested_reviewers"] == ["You cannot ask yourself to review your own "
                                                                     "change."]
    assert asked(cr) == ["rev2"]


def test_a_requested_review_comes_first_in_the_inbox(demo, client_as, submitted):
    first = submitted(demo.dev, demo.staging, title="Submitted first")
    second = submitted(demo.dev, demo.staging, title="Asked of rev", requested_reviewers=["rev"])

    def reviews(user):
        return [cr.pk for cr in client_as(user).get("/inbox/").context["inbox"].reviews if cr.pk in (first.pk,
                                                                                                    second.pk)]

    assert reviews(demo.rev) == [second.pk, first.pk]
    assert reviews(demo.rev2) == [first.pk, second.pk]  # not asked of rev2: submission order
    page = client_as(demo.rev).get("/inbox/").content.decode()
    assert page.count("Asked of you") == 1
    assert page.index("Asked of rev") < page.index("Submitted first")


def test_asking_gives_no_power(demo, submitted):
    """An unrequested eligible reviewer's approval counts; a requested one who later turns out to be a
    contributor cannot approve (C2)."""
    cr = submitted(demo.dev, demo.staging, requested_reviewers=["rev"])
    approved = services.change_request_approve(actor=demo.rev2, change_request=cr, comment="Fine.")
    assert approved.state == S.APPROVED

    other = submitted(demo.dev, demo.staging, title="Another", requested_reviewers=["rev"])
    services.contributors_learnt(change_request=other, users=[demo.rev], source="test")
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=other, comment="Fine.")
    assert "contributor_cannot_approve" in {r.code for r in refused.value.reasons}
    other.refresh_from_db()
    assert (other.state, other.approvals.count()) == (S.PENDING, 0)
    assert asked(other) == ["rev"]  # still asked, still barred
