"""``/changes/``: every change the user may see (V1), searched by title or number, filtered by state,
environment and team (django-filter), 25 a page, in the same number of queries at any size."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

from releases import services
from releases.models import ChangeRequest


def listed(response) -> list[str]:
    return [cr.title for cr in response.context["page"].object_list]


def test_the_list_shows_what_the_user_may_see(demo, client_as):
    dev = client_as(demo.dev).get("/changes/")
    idev = client_as(demo.idev).get("/changes/")
    auditor = client_as(demo.auditor).get("/changes/")

    assert dev.status_code == 200
    payments = ChangeRequest.objects.filter(team=demo.payments).count()
    assert dev.context["page"].paginator.count == payments
    assert idev.context["page"].paginator.count == ChangeRequest.objects.filter(team=demo.identity).count()
    assert auditor.context["page"].paginator.count == ChangeRequest.objects.count()
    assert b"Retry card authorisation on timeout" in dev.content
    assert b"Retry card authorisation on timeout" not in idev.content
    assert dev.context["can_create"] and not auditor.context["can_create"]


def test_search_by_title_or_number(demo, client_as, changes):
    client = client_as(demo.dev)

    assert set(listed(client.get("/changes/?q=rotate webhook"))) == {"Rotate webhook signing secret"}
    assert listed(client.get(f"/changes/?q=CR-{changes.draft.pk}")) == ["Upgrade TLS library"]
    assert listed(client.get(f"/changes/?q={changes.draft.pk}")) == ["Upgrade TLS library"]
    # A change of another team is not found by its number either (V1).
    other = services.change_request_create(actor=demo.idev, team=demo.identity, environment=demo.staging,
                                           title="Identity thing", artifact="identity:1")
    assert listed(client.get(f"/changes/?q={other.pk}")) == []


def test_filters_by_state_environment_and_team(demo, client_as):
    client = client_as(demo.sec)

    pending = client.get("/changes/?state=pending&environment=production")
    assert listed(pending) == ["Retry card authorisation on timeout"]
    assert set(listed(client.get("/changes/?team=identity"))) == set(
        ChangeRequest.objects.filter(team=demo.identity).values_list("title", flat=True))
    approved = client.get("/changes/?state=approved")
    assert {cr.state for cr in approved.context["page"].object_list} == {"approved"}
    bad = client.get("/changes/?state=sideways")
    assert bad.status_code == 400 and listed(bad) == []
    html = pending.content.decode()
    for name in ("q", "state", "environment", "team"):
        assert f'<label for="id_{name}"' in html


def grow(demo, n: int) -> None:
    for i in range(n):
        cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                            title=f"Bulk change {i}", artifact=f"payments-api:9.{i}")
        if i % 2:
            services.change_request_submit(actor=demo.dev, change_request=cr)


def list_queries(client, url="/changes/") -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_at_two_sizes_and_pages(demo, client_as):
    clients = {name: client_as(getattr(demo, name)) for name in ("dev", "auditor")}
    grow(demo, 2)
    small = {name: list_queries(client) for name, client in clients.items()}
    small_filtered = list_queries(clients["dev"], "/changes/?state=pending&q=bulk")

    grow(demo, 40)
    large = {name: list_queries(client) for name, client in clients.items()}

    assert large == small
    assert list_queries(clients["dev"], "/changes/?state=pending&q=bulk") == small_filtered
    first, second = clients["dev"].get("/changes/"), clients["dev"].get("/changes/?page=2")
    assert len(first.context["page"].object_list) == 25 and first.context["page"].has_next()
    assert not set(listed(first)) & set(listed(second))
    assert b'rel="next"' in first.content
    kept = clients["dev"].get("/changes/?state=draft&page=2")
    assert "state=draft" in kept.context["query"]
