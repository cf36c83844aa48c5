"""Issue 14 class 3: contributors cannot be laundered. Whoever was ever listed as a contributor of
any revision stays barred from approving (C2), deploying (C5) and writing the post-implementation
review (C10) of that change, however later revisions list them; the history is kept per revision."""
from datetime import timedelta

import pytest

from core.errors import Denied
from releases import selectors, services
from releases.escalation import eligible_reviewers
from releases.models import RevisionContributor
from tests.releases.stories import approved_in_staging, deploy, new_artifact, pending, reload

PASSWORD = "countersign-demo"


def listed(demo, now, contributor, **fields):
    return pending(demo, now, contributors=[contributor.username], **fields)


def laundered(demo, now, contributor, **fields):
    """``contributor`` is listed in revision 1, and a rebuild (revision 2) no longer lists them."""
    cr = listed(demo, now, contributor, **fields)
    return services.change_request_update(
        actor=demo.dev, change_request=cr, changes={"artifact": new_artifact(), "contributors": []}, at=now
    )


def test_every_revision_keeps_who_it_listed(demo, now):
    cr = laundered(demo, now, demo.rev)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"contributors": ["dev2"]},
                                        at=now)

    assert list(cr.contributors.values_list("username", flat=True)) == ["dev2"]
    assert sorted(RevisionContributor.objects.filter(change_request=cr).values_list("revision", "user__username")) == [
        (1, "rev"), (3, "dev2"),
    ]
    assert selectors.ever_contributor_ids(selectors.change_request_for_decision(cr.pk)) == {demo.rev.pk,
                                                                                            demo.dev2.pk}


@pytest.mark.parametrize("decide", [services.change_request_approve, services.change_request_reject])
def test_a_contributor_removed_in_a_later_revision_still_may_not_decide(demo, now, nothing_written, decide):
    cr = laundered(demo, now, demo.rev)

    with nothing_written(), pytest.raises(Denied) as refused:
        decide(actor=demo.rev, change_request=cr, comment="Fine.", revision=cr.revision, at=now)

    assert refused.value.codes == ["contributor_cannot_approve"]


def test_nor_over_the_api_nor_in_the_portal(demo, now, api_as, client_as):
    cr = laundered(demo, now, demo.rev)
    api = api_as(demo.rev)

    response = api.post(f"/api/v1/change-requests/{cr.pk}/approve/", {"revision": cr.revision}, format="json")
    signed = client_as(demo.rev).post(f"/changes/{cr.pk}/signoff/", {
        "decision": "approve", "comment": "Fine.", "password": PASSWORD, "revision": cr.revision})
    gate = api.get(f"/api/v1/change-requests/{cr.pk}/gate/", {"action": "approve"})

    assert response.status_code == 403
    assert [r["code"] for r in response.json()["reasons"]] == ["contributor_cannot_approve"]
    assert signed.status_code == 403
    assert [r.code for r in signed.context["refusal"].reasons] == ["contributor_cannot_approve"]
    assert [r["code"] for r in gate.json()["reasons"]] == ["contributor_cannot_approve"]
    assert not reload(cr).approvals.exists()
    assert cr.pk not in set(selectors.change_requests_awaiting_review(demo.rev, at=now).values_list("pk", flat=True))


def test_a_contributor_removed_in_a_later_revision_still_may_not_deploy(demo, now, nothing_written):
    cr = laundered(demo, now, demo.ops)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, revision=cr.revision, at=now)
    assert cr.state == "approved"

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    assert refused.value.codes == ["contributor_cannot_deploy"]
    assert cr.pk not in {c.pk for c, _ in selectors.deploy_queue(demo.ops, at=now)}


@pytest.mark.parametrize("removed", [False, True], ids=["listed", "listed-then-removed"])
def test_the_post_implementation_review_is_written_by_someone_outside_the_change(demo, now, nothing_written,
                                                                                   removed):
    """rev2 holds approve and contributed to the emergency fix: its review must come from
    someone else (C10), even after a revision dropped rev2 from the list."""
    cr = (laundered if removed else listed)(demo, now, demo.rev2, change_type="emergency")
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, revision=cr.revision, at=now)
    deploy(demo, cr, now)
    later = now + timedelta(hours=2)
    assert cr.pk not in set(selectors.change_requests_awaiting_pir(demo.rev2, at=later).values_list("pk", flat=True))

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_review_pir(actor=demo.rev2, change_request=cr, notes="All good.", at=later)

    assert refused.value.codes == ["contributor_cannot_review"]
    assert services.change_request_review_pir(actor=demo.rev, change_request=cr, notes="Fine.", at=later).pir_by \
        == demo.rev


def test_an_approval_given_before_becoming_a_contributor_goes_stale_and_stays_barred(demo, now):
    cr = approved_in_staging(demo, now)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"contributors": ["rev"]}, at=now)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"contributors": []}, at=now)

    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, revision=cr.revision, at=now)

    assert refused.value.codes == ["contributor_cannot_approve"]
    assert [(a.revision, a.stale) for a in cr.approvals.all()] == [(1, True)]


def test_former_contributors_are_neither_awaited_nor_reminded(demo, now, api_as):
    cr = laundered(demo, now, demo.rev)

    awaiting = api_as(demo.rev).get("/api/v1/change-requests/", {"awaiting_me": "true"}).json()["results"]
    assert cr.pk not in {c["id"] for c in awaiting}
    assert demo.rev not in eligible_reviewers(reload(cr), now)
    assert demo.rev2 in eligible_reviewers(reload(cr), now)


def test_the_portal_refuses_them_the_deployment_and_the_review(demo, now, client_as):
    deployable = laundered(demo, now, demo.ops)
    services.change_request_approve(actor=demo.rev, change_request=deployable, revision=deployable.revision, at=now)
    emergency = laundered(demo, now, demo.rev2, change_type="emergency")
    emergency = services.change_request_approve(actor=demo.sec, change_request=emergency,
                                                revision=emergency.revision, at=now)
    deploy(demo, emergency, now)

    started = client_as(demo.ops).post(f"/changes/{deployable.pk}/deployments/", {})
    reviewed = client_as(demo.rev2).post(f"/changes/{emergency.pk}/review/", {"notes": "All good."})

    assert started.status_code == 403
    assert [r.code for r in started.context["refusal"].reasons] == ["contributor_cannot_deploy"]
    assert reviewed.status_code == 403
    assert [r.code for r in reviewed.context["refusal"].reasons] == ["contributor_cannot_review"]
    assert (reload(deployable).state, reload(emergency).pir_at) == ("approved", None)


def test_the_admin_shows_every_revision_s_contributors(demo, now, client_as):
    cr = laundered(demo, now, demo.rev)

    page = client_as(demo.sec).get(f"/admin/releases/changerequest/{cr.pk}/change/")

    assert page.status_code == 200
    [history] = [f for f in page.context["inline_admin_formsets"] if f.opts.model is RevisionContributor]
    assert [(form.original.revision, form.original.user) for form in history] == [(1, demo.rev)]
