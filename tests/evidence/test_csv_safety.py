"""Excel-safe CSV (OWASP CSV injection): strings that a spreadsheet would run as a formula arrive
with a leading quote in CSV and untouched in JSON; numbers stay numbers."""
import csv
import io
import json
from datetime import datetime, timezone as dt_timezone

import pytest

from compliance.evidence.writer import csv_value, neutralise
from tests.evidence.conftest import build_export, deploy_in

FORMULA = '=HYPERLINK("http://x","y")'


def test_a_formula_title_is_neutralised_in_csv_and_raw_in_json(demo, period, bundle_of):
    _, deployment = deploy_in(demo, demo.production, period.middle, title=FORMULA)
    bundle = bundle_of(build_export(demo, "sox", period))

    (csv_row,) = [r for r in bundle.csv_rows("production_deployments") if r["deployment_id"] == str(deployment.pk)]
    assert csv_row["change_title"] == "'" + FORMULA
    (json_row,) = [r for r in bundle.json_rows("production_deployments") if r["deployment_id"] == deployment.pk]
    assert json_row["change_title"] == FORMULA
    # The raw CSV bytes: the quote is inside the cell, the formula's own quotes are CSV-escaped.
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in bundle.members["production_deployments.csv"]

    hipaa = bundle_of(build_export(demo, "hipaa", period))
    created = [json.loads(r["data"]) for r in hipaa.csv_rows("audit_events") if r["action"] == "change_request.created"]
    # The event data is one JSON object per cell (starting with {, nothing to neutralise) that
    # carries the raw title.
    assert FORMULA in [data["title"] for data in created]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "-5", "=cmd|' /C calc'!A0"])
def test_every_dangerous_prefix_is_neutralised(text):
    assert csv_value(text) == "'" + text
    assert neutralise(text).startswith("'")


@pytest.mark.parametrize("text", ["plain", "5", "a=b", " =x", "'already", ""])
def test_harmless_strings_are_left_alone(text):
    assert csv_value(text) == text


def test_numbers_stay_numbers_and_other_values_are_flattened():
    assert csv_value(-5) == -5
    assert csv_value(3.5) == 3.5
    assert csv_value(True) == "true"
    assert csv_value(None) == ""
    assert csv_value(["a", "-b"]) == "a; -b"  # the joined string starts with a, so it is safe as is
    assert csv_value(["-a", "b"]) == "'-a; b"
    assert csv_value(datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc)) == "2026-01-02T03:04:05Z"
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_value(-5), csv_value("-5")])
    assert buffer.getvalue() == "-5,'-5\r\n"
