"""Factories for the few rows tests build beyond the demo personas. Grants go through services."""
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from governance import services
from governance.models import Environment, Membership, Role, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "countersign-demo")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team{n}")
    name = factory.LazyAttribute(lambda t: t.slug.title())


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"env{n}")
    name = factory.LazyAttribute(lambda e: e.slug.title())
    tier = Environment.Tier.STAGING
    order = factory.Sequence(lambda n: n)


def member(user, team, *, is_manager=False) -> Membership:
    membership, _ = Membership.objects.get_or_create(user=user, team=team, defaults={"is_manager": is_manager})
    return membership


def bootstrap_grant(user, role_slug: str, team, environment=None, *, days: int = 30):
    """Give ``user`` a role in force now, through the audited bootstrap service (setup only)."""
    member(user, team)
    return services.role_assignment_bootstrap(
        user=user,
        role=Role.objects.get(slug=role_slug),
        team=team,
        environment=environment,
        justification="test setup",
        expires_at=timezone.now() + timedelta(days=days),
        source="tests",
    )


def set_control(target=None, *, by, second=None, control: str | None = None, **values):
    """Change a control as a story's setup, through the control door (RULES.md section 8): ``by``
    proposes it; a weakening change needs ``second``, who approves it. ``control`` names the kind
    when there is no ``target`` yet (``"releases.freezewindow"``). Returns the control as it is now."""
    from governance.controls import registry
    from governance.controls.services import control_change, control_change_approve
    from governance.models import ControlChange

    kind = control or registry.for_model(type(target)).key
    change = control_change(actor=by, kind=kind, target=target, values=values)
    if change is not None and change.status == ControlChange.Status.PENDING:
        assert second is not None, f"this change weakens the control ({change.weakening}): name second="
        change = control_change_approve(actor=second, change=change)
    model = registry.get(kind).model
    if change is None:
        return model.objects.get(pk=target.pk)
    return model.objects.filter(pk=change.target_id).first()
