from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.errors import Refused
from governance.controls.services import control_change
from governance.models import ControlChange, Environment, Role, Team
from identity.models import GroupRoleMapping


class Command(BaseCommand):
    help = ("Map a provider group (SCIM displayName) to a role in a team (and environment): members pushed "
            "into the group are granted it through the grant service. A mapping is a control: adding one (or "
            "switching it back on) is proposed by --by and waits for a second person's approval; --remove "
            "switches it off at once. Every change is on the audit chain with its values before and after.")

    def add_arguments(self, parser):
        parser.add_argument("group")
        parser.add_argument("role")
        parser.add_argument("team")
        parser.add_argument("environment", nargs="?", default=None)
        parser.add_argument("--remove", action="store_true",
                            help="Switch the mapping off (grants already made stay).")
        parser.add_argument("--by", default=None,
                            help="Username of the administrator proposing the change (needed to add a mapping).")
        parser.add_argument("--comment", default="")

    def handle(self, *args, group, role, team, environment, remove, by, comment, **options):
        try:
            values = {"group_name": group, "role": Role.objects.get(slug=role), "team": Team.objects.get(slug=team),
                      "environment": Environment.objects.get(slug=environment) if environment else None}
        except (Role.DoesNotExist, Team.DoesNotExist, Environment.DoesNotExist) as missing:
            raise CommandError(str(missing)) from None
        actor = None
        if by:
            try:
                actor = get_user_model().objects.get(username=by)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {by!r}.") from None
        mapping = GroupRoleMapping.objects.filter(**values).first()
        label = f"{group} -> {role} in {team} {environment or ''}".rstrip()
        if remove:
            if mapping is None or not mapping.is_active:
                self.stdout.write(f"not mapped: {label}")
                return
            change = self._change(actor=actor, target=mapping, values={"is_active": False}, comment=comment)
        elif mapping is not None and mapping.is_active:
            self.stdout.write(f"exists: {label}")
            return
        else:
            if actor is None:
                raise CommandError("Adding a mapping hands out a role: name the administrator proposing it with --by; "
                                   "a second person approves it.")
            change = self._change(actor=actor, target=mapping, comment=comment,
                                  values={**values, "is_active": True} if mapping is None else {"is_active": True})
        if change.status == ControlChange.Status.PENDING:
            self.stdout.write(f"proposed (control change {change.pk}): {label}. It waits for a second person's "
                              "approval under pending control changes; nothing is granted until then.")
        else:
            self.stdout.write(f"{'removed' if remove else 'added'}: {label}")

    def _change(self, *, actor, target, values, comment):
        try:
            return control_change(actor=actor, kind="identity.grouprolemapping", target=target, values=values,
                                  comment=comment, source="map_group")
        except Refused as refusal:
            raise CommandError("; ".join(f"{r.code}: {r.message}" for r in refusal.reasons)) from refusal
        except ValidationError as invalid:
            raise CommandError("; ".join(invalid.messages)) from invalid
