"""V1: a change request and its deployments are visible to members of its team and to view_audit
holders (and superusers); everyone else sees nothing of it."""
from django.contrib.auth.models import AnonymousUser

from governance.models import RoleAssignment
from releases.models import ChangeRequest
from releases.selectors import change_requests_visible_to, deployments_visible_to
from tests.releases.stories import draft, pending, staged


def test_a_developer_of_another_team_sees_none_of_payments_changes(demo, now):
    identity_change = draft(demo, now, author=demo.idev, team=demo.identity)

    assert list(change_requests_visible_to(demo.idev, at=now)) == [identity_change]
    assert not deployments_visible_to(demo.idev, at=now).exists()


def test_payments_members_see_payments_changes_only(demo, now):
    identity_change = draft(demo, now, author=demo.idev, team=demo.identity)
    payments_changes = set(ChangeRequest.objects.filter(team=demo.payments))

    for persona in (demo.dev, demo.dev2, demo.rev, demo.ops, demo.mgr):
        visible = set(change_requests_visible_to(persona, at=now))
        assert visible == payments_changes, persona.username
        assert identity_change not in visible


def test_audit_viewers_and_superusers_see_every_change(demo, now):
    draft(demo, now, author=demo.idev, team=demo.identity)
    everything = set(ChangeRequest.objects.all())

    for persona in (demo.auditor, demo.sec, demo.admin):
        assert set(change_requests_visible_to(persona, at=now)) == everything, persona.username


def test_a_deployment_is_visible_with_its_change(demo, now):
    cr = staged(demo, now, "registry.example.com/payments-api@sha256:" + "1" * 64)
    deployment = cr.deployments.get()

    assert deployment in deployments_visible_to(demo.dev2, at=now)
    assert deployment in deployments_visible_to(demo.auditor, at=now)
    assert deployment not in deployments_visible_to(demo.idev, at=now)


def test_an_audit_viewer_whose_grant_expired_sees_only_their_teams_changes(demo, now):
    identity_change = pending(demo, now, author=demo.idev, team=demo.identity)
    grant = RoleAssignment.objects.get(user=demo.sec, role__slug="security")

    assert identity_change in change_requests_visible_to(demo.sec, at=now)
    assert identity_change not in change_requests_visible_to(demo.sec, at=grant.expires_at)


def test_anonymous_visitors_see_nothing(demo, now):
    assert not change_requests_visible_to(AnonymousUser(), at=now).exists()
