"""The audit trail keeps the indexes its readers use (issue 21, docs/performance.md): no
``varchar_pattern_ops`` twins for ``hash``, ``action`` and ``environment`` (nothing asks them for
``LIKE 'prefix%'``), no index of ``actor`` alone (``audit_actor_time`` starts with it).

SQLite alters a column by copying the table, which drops its triggers: the append-only ones of
0002 are created again after the copies, either way.
"""
from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TRIGGERS = import_module("audit.migrations.0002_append_only_triggers")


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in TRIGGERS.SQLITE_DOWN + TRIGGERS.SQLITE_UP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0011_timestamps'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Backwards, this one runs last: after the copies that undo the rest.
        migrations.RunPython(migrations.RunPython.noop, restore_sqlite_triggers),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='actor',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='environment',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action'], name='audit_action'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['environment'], name='audit_environment'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('hash',), name='audit_event_hash_unique'),
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
    ]
