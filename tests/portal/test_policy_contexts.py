"""``selectors.policy_contexts`` (the dashboard's batch) decides exactly as ``policy_context`` does."""
from datetime import timedelta

from django.utils import timezone

from releases import policy, selectors
from releases.models import ChangeRequest
from tests.factories import set_control


def decisions(contexts, at):
    return {
        pk: (policy.evaluate(ctx, "approve", at, via="portal").codes, policy.evaluate(ctx, "deploy", at).codes,
             policy.requirements(ctx, at), ctx.actor_is_team_member)
        for pk, ctx in contexts.items()
    }


def test_the_batch_agrees_with_one_by_one_for_every_persona(demo, changes):
    at = timezone.now()
    set_control(by=demo.sec, control="releases.freezewindow", name="Release freeze", starts_at=at - timedelta(hours=1), ends_at=at + timedelta(hours=5), environments=[demo.staging])
    crs = list(
        selectors.with_details(ChangeRequest.objects.all()).select_related(
            "environment__approval_policy__require_prior_environment"
        )
    )
    for persona in ("dev", "dev2", "rev", "rev2", "sec", "ops", "auditor", "idev", "admin"):
        user = getattr(demo, persona)
        one_by_one = {cr.pk: selectors.policy_context(cr, user, at=at) for cr in crs}

        assert decisions(selectors.policy_contexts(crs, user, at=at), at) == decisions(one_by_one, at), persona
