"""bench/integrations.py (``make bench``'s GitHub lines, issue 21): the lines say MISSED when a
figure is off target or the work was not all done, the floor endpoint does the one thing it claims,
and the benchmark's core runs for real at a tiny size."""
import json

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from bench import integrations

WEBHOOKS = {"events": 1000, "deliveries": 1005, "changes": 100, "people": 50, "queued": 1000,
            "accept_seconds": 4.0, "accept_p95_ms": 6.0, "floor_seconds": 2.0, "floor_p95_ms": 3.0,
            "work_seconds": 20.0, "processed": 1000, "learnt": 3015, "changes_applied": 100, "contributors": 2010,
            "worker_statements": [37, 37]}
PROTECTION = {"events": 200, "p50_ms": 60.0, "p95_ms": 90.0, "floor_p50_ms": 8.0, "floor_p95_ms": 10.0,
              "approved": 206, "expected": 206, "fake_errors": [], "statements": [47, 47]}
RESULT = {"vendor": "postgresql", "min_accepted_ratio": 0.25, "max_applied_ratio": 25.0, "max_protection_ratio": 15.0,
          "webhooks": WEBHOOKS, "protection": PROTECTION}


def oks(**changes) -> list[bool]:
    result = {**RESULT, **{part: {**RESULT[part], **values} for part, values in changes.items()}}
    return [ok for _, ok in integrations.lines(result)]


def test_the_lines_are_ok_on_target():
    lines = integrations.lines(RESULT)
    assert [ok for _, ok in lines] == [True, True, True]
    assert "accepted 250/s" in lines[0][0] and "floor (bench/webhook/" in lines[0][0] and "ratio 0.50" in lines[0][0]
    assert "applied in 24.0 s" in lines[1][0] and "ratio 12.0" in lines[1][0]
    assert "p95 90.0 ms" in lines[2][0] and "ratio 9.0" in lines[2][0] and lines[2][0].endswith("| OK")


@pytest.mark.parametrize("changes, expected", [
    ({"webhooks": {"accept_seconds": 9.0}}, [False, True, True]),  # 111/s against a floor of 500/s
    ({"webhooks": {"work_seconds": 50.0}}, [True, False, True]),  # 27 x the floor
    ({"webhooks": {"processed": 999}}, [True, False, True]),
    ({"webhooks": {"changes_applied": 99}}, [True, False, True]),
    ({"webhooks": {"contributors": 2009}}, [True, False, True]),
    ({"webhooks": {"worker_statements": [37, 38]}}, [True, False, True]),  # grows with the deliveries before
    ({"protection": {"p95_ms": 160.0}}, [True, True, False]),
    ({"protection": {"approved": 205}}, [True, True, False]),
    ({"protection": {"fake_errors": ["POST /x: 404"]}}, [True, True, False]),
    ({"protection": {"statements": [47, 48]}}, [True, True, False]),
])
def test_a_figure_off_target_or_work_left_undone_misses(changes, expected):
    assert oks(**changes) == expected


def test_a_part_not_run_has_no_line():
    result = {k: v for k, v in RESULT.items() if k != "protection"}
    assert len(integrations.lines(result)) == 2


def test_too_few_people_for_new_contributors_on_every_push_is_refused():
    with pytest.raises(SystemExit):
        integrations.push_deliveries(10, [(1, "a" * 40)], [(1, "a@example.com")] * 5)


@pytest.mark.urls("tests.performance.bench_urls")
@pytest.mark.django_db
def test_the_webhook_floor_stores_the_body_as_it_came_and_answers_as_the_endpoint_does():
    body = json.dumps({"ref": "refs/heads/main", "commits": []}).encode()
    client = Client()
    answer = client.generic("POST", integrations.FLOOR_URL, body, content_type="application/json",
                            HTTP_X_GITHUB_DELIVERY="d-1")
    assert (answer.status_code, answer.json()) == (202, {"delivery": "d-1", "duplicate": False})
    assert Session.objects.get(session_key__startswith="bench").session_data == body.decode()
    assert client.generic("POST", integrations.FLOOR_URL, b"[]", content_type="application/json").status_code == 400


@pytest.mark.urls("tests.performance.bench_urls")
@pytest.mark.django_db(transaction=True)  # the outbox hands messages over on commit
def test_pushes_and_protection_rule_round_trips_for_real(monkeypatch):
    for name, value in {"BENCH_WEBHOOK_EVENTS": "12", "BENCH_WEBHOOK_CHANGES": "3", "BENCH_WEBHOOK_PEOPLE": "12",
                        "BENCH_PROTECTION_EVENTS": "3"}.items():
        monkeypatch.setenv(name, value)
    result = integrations.run()
    w, p = result["webhooks"], result["protection"]
    # Every push processed, each bringing its change two people (author and pusher, committer) it lacked.
    assert (w["events"], w["queued"], w["processed"]) == (12, 12, 12)
    assert (w["changes_applied"], w["contributors"]) == (3, 2 * w["deliveries"])
    assert len(w["worker_statements"]) == 2 and len(set(w["worker_statements"])) == 1
    # Every event answered "approved" at the fake, which found nothing GitHub's description refuses.
    assert (p["approved"], p["expected"], p["fake_errors"]) == (p["expected"], integrations.WARM_UP + 4, [])
    assert len(p["statements"]) == 2 and len(set(p["statements"])) == 1
    floors = w["deliveries"] + integrations.WARM_UP + p["events"] + 1
    assert Session.objects.filter(session_key__startswith="bench").count() == floors
    assert len(integrations.lines(result)) == 3
