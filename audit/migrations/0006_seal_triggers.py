"""Database triggers that refuse UPDATE and DELETE on audit seals, as 0002 does for events.

Same rules as events: PostgreSQL also refuses TRUNCATE unless the session sets
``countersign.audit_purge = on`` (test settings only); SQLite's DELETE trigger asks
``countersign_audit_purge_allowed()`` (see audit/db.py). The PostgreSQL function is a separate one
so that its refusal names seals, not events.

Defence in depth only: a database owner can still disable triggers, which is why
``audit.seals.verify_seals`` detects a missing seal from the ``audit.sealed`` events.
"""
from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION countersign_audit_seal_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('countersign.audit_purge', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit seals are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_auditseal
    FOR EACH ROW EXECUTE FUNCTION countersign_audit_seal_append_only();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON audit_auditseal
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_audit_seal_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS audit_seal_append_only ON audit_auditseal;
DROP TRIGGER IF EXISTS audit_seal_no_truncate ON audit_auditseal;
DROP FUNCTION IF EXISTS countersign_audit_seal_append_only();
"""
SQLITE_UP = [
    """CREATE TRIGGER audit_seal_no_update BEFORE UPDATE ON audit_auditseal
       BEGIN SELECT RAISE(ABORT, 'audit seals are append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER audit_seal_no_delete BEFORE DELETE ON audit_auditseal
       WHEN countersign_audit_purge_allowed() = 0
       BEGIN SELECT RAISE(ABORT, 'audit seals are append-only (DELETE refused)'); END""",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_seal_no_update", "DROP TRIGGER IF EXISTS audit_seal_no_delete"]


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the function body's "%" is PL/pgSQL's, not a query placeholder.
        schema_editor.execute(POSTGRES_UP, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_seals_and_evidence_exports")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
