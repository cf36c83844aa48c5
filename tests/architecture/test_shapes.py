"""``core.shapes``: a query compiled once with a sentinel per named value and re-bound per call must
answer, and an ``UpdateShape`` must write, exactly what the ORM's queryset built afresh does, for
every kind of value (ids, instants, text, IP addresses) and for two values of one kind."""
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import context
from audit.models import AuditEvent
from core.shapes import Shape, UpdateShape
from governance import services as governance
from governance.models import Environment, RoleAssignment
from releases import anomalies, reads, selectors, services
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import pending

pytestmark = pytest.mark.django_db


def pairs(demo):
    """Every (user, environment) pair, the environments' ids and a few that no environment has."""
    user_ids = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
    env_ids = list(Environment.objects.order_by("pk").values_list("pk", flat=True))
    return [(u, e) for u in user_ids for e in [*env_ids, max(env_ids) + 1]]


# --- Two values of one kind ------------------------------------------------------------------------


def test_two_int_values_are_bound_each_to_its_own_place(demo):
    shape = Shape(
        lambda user_id, environment_id: RoleAssignment.objects.filter(
            user_id=user_id, environment_id=environment_id).values_list("pk"),
        user_id=int, environment_id=int,
    )
    found = 0
    for user_id, environment_id in pairs(demo):
        orm = set(RoleAssignment.objects.filter(user_id=user_id, environment_id=environment_id).values_list("pk"))
        assert set(shape.rows(user_id=user_id, environment_id=environment_id)) == orm, (user_id, environment_id)
        found += len(orm)
    assert found >= 10  # enough grants that a swapped or shared binding would answer other rows


def test_two_int_values_in_the_other_order_of_the_query(demo):
    """The names are declared in one order and reach the SQL in the other."""
    shape = Shape(
        lambda environment_id, user_id: RoleAssignment.objects.filter(
            Q(user_id=user_id) & (Q(environment_id=environment_id) | Q(environment__isnull=True))
        ).values_list("pk"),
        environment_id=int, user_id=int,
    )
    for user_id, environment_id in pairs(demo):
        orm = set(RoleAssignment.objects.filter(
            Q(user_id=user_id) & (Q(environment_id=environment_id) | Q(environment__isnull=True))).values_list("pk"))
        assert set(shape.rows(environment_id=environment_id, user_id=user_id)) == orm, (user_id, environment_id)


def test_the_participants_of_a_decision_answer_as_the_orm(demo):
    """``selectors._PARTICIPANTS``: a change id and an actor id, both ints."""
    User = get_user_model()
    compared = 0
    for change_request in ChangeRequest.objects.all():
        for actor in User.objects.all():
            orm = set(User.objects.filter(
                Q(pk=actor.pk) | Q(pk=change_request.author_id)
                | Q(pk__in=change_request.contributor_history.values("user_id"))
                | Q(pk__in=change_request.approvals.values("reviewer_id"))
            ).values_list("pk", "username"))
            assert set(selectors._PARTICIPANTS.rows(change_request_id=change_request.pk, actor_id=actor.pk)) == orm
            compared += 1
    assert compared >= 50


def test_the_attestations_reads_answer_as_the_orm(demo):
    """``integrations.attestations``: ``_PEOPLE`` (one int), ``_ROLES`` (two ints and an instant)."""
    from integrations import attestations

    User = get_user_model()
    later = timezone.now() + timedelta(days=60)  # after the privileged grants' 30 to 90 days, some
    roles_seen = 0
    for cr in ChangeRequest.objects.all():
        reviewers = cr.approvals.filter(reviewer__isnull=False).values("reviewer_id")
        people = set(User.objects.filter(Q(pk=cr.author_id) | Q(pk__in=reviewers)).values_list("pk", "username", "email"))
        assert set(attestations._PEOPLE.rows(change_request_id=cr.pk)) == people
        for environment in Environment.objects.all():
            for at in (timezone.now(), later, timezone.now() + timedelta(days=400)):
                roles = set(RoleAssignment.objects.in_force(at).filter(
                    Q(environment_id=environment.pk) | Q(environment__isnull=True),
                    user_id__in=cr.approvals.values("reviewer_id"),
                ).values_list("user_id", "role__slug"))
                got = attestations._ROLES.rows(change_request_id=cr.pk, environment_id=environment.pk, at=at)
                assert set(got) == roles, (cr.pk, environment.slug, at)
                roles_seen += len(roles)
    assert roles_seen > 0


# --- UpdateShape -----------------------------------------------------------------------------------


def _grants() -> dict:
    return dict(RoleAssignment.objects.values_list("pk", "last_used_at"))


def _orm_update(user_id, environment_id, codes, at) -> tuple[int, dict]:
    """What ``.update()`` of the queryset ``duties_used`` compiles changes, then undone."""
    with transaction.atomic():
        count = RoleAssignment.objects.in_force(at).filter(
            Q(environment_id=environment_id) | Q(environment__isnull=True),
            user_id=user_id,
            role__duties__duty__in=list(codes),
        ).update(last_used_at=at)
        after = _grants()
        transaction.set_rollback(True)
    return count, after


def test_the_grants_update_writes_the_rows_the_orm_update_would(demo):
    """``governance.services.grants.duties_used``: an ``UpdateShape`` across relations (the ORM's
    ``pk IN (subquery)``) with two ints and an instant in its filter and its ``SET``."""
    from governance.services.grants import _grants_used

    User = get_user_model()
    base = timezone.now().replace(microsecond=123_456)
    changed = 0
    cases = 0
    for username in ("rev", "ops", "auditor", "sec", "mgr", "dev", "idev"):
        user = User.objects.get(username=username)
        for environment in Environment.objects.all():
            for codes in (("approve",), ("deploy",), ("approve", "security_approve"), ("view_audit",), ("submit",)):
                for at in (base + timedelta(minutes=cases), base + timedelta(days=120, minutes=cases)):
                    cases += 1
                    before = _grants()
                    count, orm_after = _orm_update(user.pk, environment.pk, codes, at)
                    assert _grants() == before  # the ORM's update was undone
                    with transaction.atomic():
                        shape_count = _grants_used(codes).execute(user_id=user.pk, environment_id=environment.pk, at=at)
                        shape_after = _grants()
                        transaction.set_rollback(True)
                    assert (shape_count, shape_after) == (count, orm_after), (username, environment.slug, codes, at)
                    changed += count
    assert changed >= 10


def test_duties_used_touches_the_actors_grants_for_that_environment_only(demo):
    """Through the service: ops deploys to staging; their production grant and everyone else's
    grants stay as they were."""
    at = timezone.now().replace(microsecond=654_321)
    before = _grants()
    governance.duties_used(actor=demo.ops, environment=demo.staging, duty_codes=["deploy"], at=at)
    after = _grants()
    touched = {pk for pk in after if after[pk] != before[pk]}
    expected = set(RoleAssignment.objects.in_force(at).filter(
        Q(environment=demo.staging) | Q(environment__isnull=True), user=demo.ops,
        role__duties__duty="deploy").values_list("pk", flat=True))
    assert touched == expected and len(touched) >= 1
    assert {after[pk] for pk in touched} == {at}


def test_an_update_shape_with_two_ints_updates_what_the_orm_would(demo):
    shape = UpdateShape(
        lambda user_id, environment_id, at: (
            RoleAssignment.objects.filter(user_id=user_id, environment_id=environment_id), {"last_used_at": at}),
        user_id=int, environment_id=int, at=datetime,
    )
    at = timezone.now().replace(microsecond=1)
    total = 0
    for user_id, environment_id in pairs(demo):
        with transaction.atomic():
            count = RoleAssignment.objects.filter(user_id=user_id, environment_id=environment_id).update(last_used_at=at)
            orm_after = _grants()
            transaction.set_rollback(True)
        with transaction.atomic():
            assert shape.execute(user_id=user_id, environment_id=environment_id, at=at) == count
            assert _grants() == orm_after, (user_id, environment_id)
            transaction.set_rollback(True)
        total += count
    assert total >= 10


# --- IP addresses and text -------------------------------------------------------------------------


def _act_from(demo, ip: str) -> None:
    """rev approves a fresh change from ``ip`` (the audit events carry it)."""
    token = context.bind(context.RequestContext(ip=ip))
    try:
        change = pending(demo, demo.dev, demo.staging)
        services.change_request_approve(actor=demo.rev, change_request=change, via="portal")
    finally:
        context.reset(token)


def _orm_seen_from(user_id, ip):
    return list(anomalies._seen_from(user_id, ip))


@pytest.mark.parametrize("recorded", ["203.0.113.7", "2001:db8::7"])
def test_seen_from_answers_as_the_orm_for_ipv4_ipv6_and_an_unknown_user(demo, recorded):
    _act_from(demo, recorded)
    assert AuditEvent.objects.filter(actor=demo.rev, ip__isnull=False).exists()
    User = get_user_model()
    unknown = User.objects.order_by("-pk").values_list("pk", flat=True).first() + 100
    asked = ["203.0.113.7", "203.0.113.8", "2001:db8::7", "2001:DB8:0:0::7", "2001:db8::8", "::ffff:203.0.113.7"]
    answers = {}
    for user_id in [*User.objects.values_list("pk", flat=True), unknown]:
        for ip in asked:
            orm = _orm_seen_from(user_id, ip)
            got = anomalies._SEEN_FROM.rows(user_id=user_id, ip=ip)
            assert [tuple(map(bool, row)) for row in got] == [tuple(map(bool, row)) for row in orm], (user_id, ip)
            answers[user_id, ip] = [tuple(map(bool, row)) for row in got]
    rev = demo.rev.pk
    ipv6 = ":" in recorded
    assert answers[rev, recorded] == [(True, True)]
    assert answers[rev, "2001:DB8:0:0::7"] == [(True, ipv6)]  # the field's own normal form
    assert answers[rev, "203.0.113.8"] == [(True, False)]
    assert answers[unknown, recorded] == []
    assert answers[demo.idev.pk, recorded] in ([(False, False)], [(True, False)])


@pytest.mark.parametrize("recorded", ["203.0.113.7", "2001:db8::7"])
def test_the_decision_read_answers_the_new_ip_check_as_the_shape_does(demo, recorded):
    """``reads.change(decision=True, ip=…)`` asks the new-IP check's questions in the change's locked
    read (issue 21); its answers are ``_SEEN_FROM``'s (held to the ORM above)."""
    _act_from(demo, recorded)
    change = pending(demo, demo.dev, demo.staging).pk
    now = timezone.now()
    asked = [None, "203.0.113.7", "203.0.113.8", "2001:db8::7", "2001:DB8:0:0::7", "::ffff:203.0.113.7"]
    for actor in (demo.rev, demo.rev2, demo.ops, demo.dev):
        for ip in asked:
            read = reads.change(change, actor=actor, at=now, lock=True, with_team=True, decision=True, ip=ip)
            shape = [tuple(map(bool, row)) for row in anomalies._SEEN_FROM.rows(user_id=actor.pk, ip=ip)] if ip else None
            assert read.actor_seen_from[0] == ip
            if ip is None:
                assert read.actor_seen_from[2] is False  # no address: never "seen here"
            else:
                assert [read.actor_seen_from[1:]] == shape, (actor.username, ip)
    assert reads.change(change, actor=demo.rev, at=now, decision=True, with_team=True,
                        ip=recorded).actor_seen_from == (recorded, True, True)


def test_a_str_value_is_bound_as_the_orm_binds_it(demo):
    shape = Shape(lambda username: get_user_model().objects.filter(username=username).values_list("pk"),
                  username=str)
    for username in ["rev", "rev2", "nobody", "", "o'brien", "x%_"]:
        orm = list(get_user_model().objects.filter(username=username).values_list("pk"))
        assert shape.rows(username=username) == orm, username
    assert shape.rows(username="rev") == [(demo.rev.pk,)]


# --- Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [int, str, datetime, AuditEvent._meta.get_field("ip")],
                         ids=["int", "str", "datetime", "ip"])
def test_a_value_that_does_not_reach_the_query_is_refused(demo, kind):
    shape = Shape(lambda user_id, unused: AuditEvent.objects.filter(actor_id=user_id).values_list("pk"),
                  user_id=int, unused=kind)
    with pytest.raises(ValueError, match="unused does not reach"):
        shape.rows(user_id=demo.rev.pk, unused=None)


def test_an_update_value_that_does_not_reach_the_statement_is_refused(demo):
    shape = UpdateShape(
        lambda user_id, at: (RoleAssignment.objects.filter(user_id=user_id), {"last_used_at": timezone.now()}),
        user_id=int, at=datetime,
    )
    before = _grants()
    with pytest.raises(ValueError, match="at does not reach"):
        shape.execute(user_id=demo.rev.pk, at=timezone.now())
    assert _grants() == before


def test_a_kind_shapes_cannot_bind_is_refused(demo):
    shape = Shape(lambda ratio: RoleAssignment.objects.filter(pk=ratio).values_list("pk"), ratio=float)
    with pytest.raises(TypeError):
        shape.rows(ratio=1.0)
