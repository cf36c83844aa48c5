"""Fixtures of the identity stories: a leaver with everything a leaver can hold."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance import services
from governance.models import AccessReview, AccessReviewItem, RoleAssignment
from identity.models import Person
from releases.models import ChangeRequest
from tests.releases.stories import pending


@pytest.fixture
def leaver(demo):
    """dev, as the acceptance describes the leaver: developer grants in three environments, two API
    keys, a change awaiting approval, two undecided access-review items, a browser session, and mgr
    as manager (from the provider's enterprise ``manager``)."""
    now = timezone.now()
    dev = demo.dev
    person = Person.objects.create(user=dev, external_id="00u-dev", manager=demo.mgr, provisioned=True)
    grants = list(RoleAssignment.objects.in_force(now).filter(user=dev))
    assert {g.environment.slug for g in grants} == {"development", "staging", "production"}
    keys = [services.api_token_create(actor=dev, user=dev, name=f"laptop {n}")[1] for n in (1, 2)]
    change = pending(demo, now)
    review = AccessReview.objects.create(name="Q4 review", period="2026-Q4", status=AccessReview.Status.OPEN,
                                         due_at=now + timedelta(days=14))
    items = [AccessReviewItem.objects.create(review=review, assignment=a, reviewer=dev, due_at=review.due_at)
             for a in RoleAssignment.objects.in_force(now).filter(user=demo.dev2)[:2]]
    open_changes = list(ChangeRequest.objects.filter(author=dev, state__in=["draft", "pending", "approved"]))
    browser = Client()
    browser.force_login(dev)
    return SimpleNamespace(user=dev, person=person, grants=grants, keys=keys, change=change, open_changes=open_changes, items=items,
                           browser=browser, since=now)


def api_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
