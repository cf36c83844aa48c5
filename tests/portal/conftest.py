"""Portal stories: the demo's personas in a browser-less client, and the demo's change requests by name."""
from types import SimpleNamespace

import pytest

from releases import demo as release_demo
from releases import services
from releases.models import ChangeRequest


@pytest.fixture
def changes(demo):
    """The demo's change requests (releases/demo.py) under the names its stories give them."""

    def one(**filters):
        return ChangeRequest.objects.get(team=demo.payments, **filters)

    return SimpleNamespace(
        retry_staging=one(title=release_demo.MARKER, environment=demo.staging),
        retry_production=one(title=release_demo.MARKER, environment=demo.production),
        rotate_staging=one(title="Rotate webhook signing secret", environment=demo.staging),
        rotate_production=one(title="Rotate webhook signing secret", environment=demo.production),
        draft=one(title="Upgrade TLS library"),
        rejected=one(title="Experimental fraud rule"),
        standard=one(title="Raise log level for payments-api"),
    )


@pytest.fixture
def submitted(demo):
    """``submitted(author, environment, **fields)``: a pending change request of payments."""

    def make(author, environment, title="Tune connection pool", artifact="payments-api:2.15.0", **fields):
        if fields.get("change_type") == "emergency":
            fields.setdefault("emergency_reason", "3DS challenges fail for every card.")
        cr = services.change_request_create(
            actor=author, team=demo.payments, environment=environment, title=title, artifact=artifact, **fields
        )
        return services.change_request_submit(actor=author, change_request=cr)

    return make


@pytest.fixture
def approved_in_staging(demo, submitted):
    """``approved_in_staging(title)``: dev's staging change, approved over the API by rev."""

    def make(title="Tune connection pool", **fields):
        cr = submitted(demo.dev, demo.staging, title=title, **fields)
        return services.change_request_approve(actor=demo.rev, change_request=cr, comment="Fine.")

    return make
