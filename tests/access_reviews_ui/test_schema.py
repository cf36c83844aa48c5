"""The OpenAPI document describes the access-review and alert endpoints with their error responses,
and still generates without a warning."""
import yaml
from django.core.management import call_command


def test_the_schema_describes_access_reviews_and_alerts(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]

    assert {
        "/api/v1/access-reviews/", "/api/v1/access-reviews/{id}/", "/api/v1/access-review-items/",
        "/api/v1/access-review-items/{id}/", "/api/v1/access-review-items/{id}/decide/", "/api/v1/alerts/",
        "/api/v1/alerts/{id}/", "/api/v1/alerts/{id}/resolve/",
    } <= set(paths)
    shared = {"401", "403", "404", "409", "429", "503"}  # every operation's (core/openapi.py); 415 with a body
    decide = paths["/api/v1/access-review-items/{id}/decide/"]["post"]["responses"]
    assert set(decide) == {"200", "400", "415"} | shared
    assert "self_review" in decide["403"]["description"], "the operation's own words about its 403 stay"
    assert set(paths["/api/v1/alerts/{id}/resolve/"]["post"]["responses"]) == {"200", "400", "415"} | shared
    assert set(paths["/api/v1/alerts/"]["get"]["responses"]) == {"200", "400"} | shared
