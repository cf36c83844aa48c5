"""The decision record is stored as canonical JSON text and copied into the bundle as stored: the
same bytes on SQLite and PostgreSQL, verbatim in the JSON line (a JSON value, not a string) and in
the CSV cell (only CSV quoting), so the export neither decodes it for output nor encodes it again
(docs/performance.md, the SOX export on the decision records)."""
import csv
import io
import json

from django.core import serializers
from django.db import connection

from releases.fields import canonical_json
from releases.models import Deployment
from tests.evidence.conftest import build_export, deploy_in

# Pinned by digest (production refuses a tag, artifact_not_pinned); the name carries non-ASCII text.
ARTIFACT = "registry/café✓/payments@sha256:" + "ab" * 32


def _stored_text(deployment_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT decision FROM releases_deployment WHERE id = %s", [deployment_id])
        (text,) = cursor.fetchone()
    return text


def test_the_record_is_stored_as_canonical_json_text(demo, period):
    _, deployment = deploy_in(demo, demo.production, period.middle, artifact=ARTIFACT)
    text = _stored_text(deployment.pk)
    record = Deployment.objects.get(pk=deployment.pk).decision
    assert isinstance(text, str) and text == canonical_json(record)
    assert ", " not in text.replace('", "', "") and "café✓" in text  # compact, non-ASCII kept as UTF-8
    assert record["change_request"]["artifact"] == ARTIFACT
    (copy,) = serializers.deserialize("json", serializers.serialize("json", [Deployment.objects.get(pk=deployment.pk)]))
    assert copy.object.decision == record


def test_the_bundle_copies_the_stored_text_into_both_files(demo, period, bundle_of):
    _, deployment = deploy_in(demo, demo.production, period.middle, artifact=ARTIFACT)
    text = _stored_text(deployment.pk)
    bundle = bundle_of(build_export(demo, "sox", period))

    line = next(line for line in bundle.members["production_deployments.json"].decode("utf-8").splitlines()
                if line.startswith(f'{{"deployment_id": {deployment.pk},'))
    assert line.rstrip(",").endswith(f'"decision_record": {text}}}')
    assert json.loads(line.rstrip(","))["decision_record"] == json.loads(text)
    cells = list(csv.DictReader(io.StringIO(bundle.members["production_deployments.csv"].decode("utf-8-sig"),
                                            newline="")))
    (row,) = [r for r in cells if r["deployment_id"] == str(deployment.pk)]
    assert row["decision_record"] == text
    assert "min_approvals=2" in row["policy_at_deploy"].split(" ")  # the keys the row needs, read from it
