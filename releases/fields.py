"""A JSON value stored as its canonical text (``releases.decisions.encode``).

Django's ``JSONField`` is ``jsonb`` on PostgreSQL, which keeps no text of its own (it prints keys
in its own order with its own spacing) and ``text`` holding ``json.dumps`` output on SQLite, so the
same record has different bytes on the two databases, and reading it back means decoding it.
``CanonicalJSONField`` stores the canonical text on both (sorted keys, no spaces, UTF-8), reads
back as data like a ``JSONField``, and lets a reader that only copies the record (the evidence
bundle) take the stored text as it is (``compliance.evidence.datasets.deployments``). Its keys
can still be read in SQL by casting the column to ``JSONField``, which on PostgreSQL parses the
text once per key read (docs/performance.md)."""
import json

from django.db import models


def canonical_json(value) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces, non-ASCII kept as UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class CanonicalJSONField(models.TextField):
    description = "JSON data stored as canonical JSON text"

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        # A str here is stored (or serialised) text; anything else is already data.
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return None if value is None else canonical_json(value)

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else canonical_json(value)
