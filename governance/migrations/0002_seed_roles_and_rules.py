"""The seeded roles (RULES.md section 1) and conflict rules (G3); the data is in governance/seeds.py."""
from django.db import migrations

from governance import seeds


def seed(apps, schema_editor):
    seeds.ensure(apps.get_model("governance", "Role"), apps.get_model("governance", "RoleDuty"),
                 apps.get_model("governance", "ConflictRule"))


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
