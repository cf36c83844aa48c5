"""bench/attestations.py (``make bench``'s attestation lines): issue within its time and verify
within its ratio of a bare Ed25519 verify, every envelope valid and signed as the bare signature
is; a tiny run for real."""
import pytest

from bench import attestations
from integrations.models import Attestation

RESULT = {"vendor": "postgresql", "target_issue_ms": 20.0, "target_verify_ratio": 0.5, "operations": 1000,
          "median_us": {"issue": 8000.0, "sign": 50.0, "verify": 400.0, "bare_verify": 300.0}, "valid": 1000,
          "payload_bytes": 1239, "stored": 1001}


def test_the_lines_are_ok_within_the_targets():
    (issue, issue_ok), (verify, verify_ok) = attestations.lines(RESULT)
    assert issue_ok and verify_ok
    assert "125/s = 8.00 ms" in issue and "20,000/s" in issue
    assert "2,500/s" in verify and "3,333/s" in verify and "ratio 0.75" in verify


@pytest.mark.parametrize("change, missed", [
    ({"median_us": {**RESULT["median_us"], "issue": 21000.0}}, [0]),  # 21 ms an issue
    ({"median_us": {**RESULT["median_us"], "verify": 700.0}}, [1]),  # 0.43 x the bare verify
    ({"valid": 999}, [0, 1]),
    ({"stored": 1000}, [0, 1]),
])
def test_a_slow_or_unsound_run_misses(change, missed):
    assert [i for i, (_, ok) in enumerate(attestations.lines({**RESULT, **change})) if not ok] == missed


@pytest.mark.django_db
def test_a_tiny_run_issues_and_verifies_for_real():
    result = attestations.measure(3)
    assert (result["valid"], result["stored"]) == (3, 4)
    assert Attestation.objects.filter(subject_digest=attestations.ARTIFACT.split("@sha256:")[1]).count() == 4
    assert result["payload_bytes"] > 500
    assert all(us > 0 for us in result["median_us"].values())
