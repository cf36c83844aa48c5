from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

import audit
from governance.models import Environment, Role, Team
from identity.models import GroupRoleMapping


class Command(BaseCommand):
    help = ("Map a provider group (SCIM displayName) to a role in a team (and environment): members pushed "
            "into the group are granted it through the grant service. Recorded on the audit chain.")

    def add_arguments(self, parser):
        parser.add_argument("group")
        parser.add_argument("role")
        parser.add_argument("team")
        parser.add_argument("environment", nargs="?", default=None)
        parser.add_argument("--remove", action="store_true", help="Remove the mapping (grants already made stay).")

    @transaction.atomic
    def handle(self, *args, group, role, team, environment, remove, **options):
        try:
            values = {"group_name": group, "role": Role.objects.get(slug=role), "team": Team.objects.get(slug=team),
                      "environment": Environment.objects.get(slug=environment) if environment else None}
        except (Role.DoesNotExist, Team.DoesNotExist, Environment.DoesNotExist) as missing:
            raise CommandError(str(missing)) from None
        data = {"group": group, "role": role, "team": team, "environment": environment, "source": "map_group"}
        if remove:
            deleted, _ = GroupRoleMapping.objects.filter(**values).delete()
            if deleted:
                audit.record("identity.group_mapping_removed", data=data)
            self.stdout.write(f"removed {deleted}")
            return
        mapping, created = GroupRoleMapping.objects.get_or_create(**values)
        if created:
            audit.record("identity.group_mapping_added", target=mapping, data=data)
        self.stdout.write(f"{'added' if created else 'exists'}: {group} -> {role} in {team} {environment or ''}")
