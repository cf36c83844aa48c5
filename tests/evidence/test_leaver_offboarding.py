"""The SOX bundle's leaver off-boarding dataset (issue 17, item 5): when the provider disabled the
person, when each grant and key ended, and any action after it (which must be none)."""
from datetime import timedelta

import pytest
from django.utils import timezone

import audit
from governance import services as governance
from identity.models import Person
from identity.services.leavers import person_deactivate
from tests.evidence.conftest import build_export

pytestmark = pytest.mark.django_db


class Today:
    """A period of the last two days up to today, so the demo's grants (made today) are in it."""

    def __init__(self):
        self.end = timezone.now().date()
        self.start = self.end - timedelta(days=1)


def test_a_scim_leaver_lost_everything_the_same_moment(demo, bundle_of):
    Person.objects.create(user=demo.dev, external_id="00u-dev", provisioned=True)
    for n in (1, 2):
        governance.api_token_create(actor=demo.dev, user=demo.dev, name=f"key {n}")
    person_deactivate(user=demo.dev, source="scim")

    bundle = bundle_of(build_export(demo, "sox", Today()))
    rows = [r for r in bundle.json_rows("leaver_offboarding") if r["user"] == "dev"]

    kinds = [r["kind"] for r in rows]
    assert kinds.count("deactivation") == 1 and kinds.count("grant") == 3 and kinds.count("api_key") == 2
    assert "action_after" not in kinds, [r for r in rows if r["kind"] == "action_after"]
    assert all(r["source"] == "scim" and r["findings"] == [] for r in rows)
    assert all(r["seconds_after"] == 0 for r in rows if r["kind"] in ("grant", "api_key"))
    assert bundle.manifest["row_counts"]["leaver_offboarding"] == len(bundle.csv_rows("leaver_offboarding"))
    assert "SOX ITGC-AC" in bundle.manifest["datasets"]["leaver_offboarding"]["controls"]


def test_open_access_and_actions_after_deactivation_are_findings(demo, bundle_of):
    """A deactivation written around the leaver service (a shell): the grants stay open, and the
    person still acted afterwards. Both are exceptions in the dataset."""
    from django.db import transaction

    with transaction.atomic():
        type(demo.idev).objects.filter(pk=demo.idev.pk).update(is_active=False)
        audit.record("account.deactivated", target=demo.idev, data={"user": "idev", "source": "admin"})
    with transaction.atomic():
        audit.record("change_request.viewed", actor=demo.idev, data={"note": "after leaving"},
                     at=timezone.now() + timedelta(seconds=1))

    bundle = bundle_of(build_export(demo, "sox", Today()))
    rows = [r for r in bundle.json_rows("leaver_offboarding") if r["user"] == "idev"]

    assert {tuple(r["findings"]) for r in rows if r["kind"] == "grant"} == {("access_not_ended",)}
    assert [r["findings"] for r in rows if r["kind"] == "action_after"] == [["acted_after_deactivation"]]
    exceptions = bundle.manifest["datasets"]["leaver_offboarding"]["exception_kinds"]
    assert exceptions["access_not_ended"] == 3 and exceptions["acted_after_deactivation"] == 1
