"""One home per rule (issue 15): the shared ways of doing a thing are used, and the copies they
replaced do not come back. Each test names the one home and greps (or walks) the tree for the
others."""
import re
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.contrib import admin
from rest_framework import viewsets

from core.admin import ServiceOnlyAdmin
from core.viewsets import VisibleObjectViewSet
from core.memo import per_request

BASE = Path(settings.BASE_DIR)
PRODUCT = ("core", "audit", "governance", "releases", "identity", "integrations", "compliance")


def _sources(*packages, skip=()):
    for package in packages:
        for path in sorted((BASE / package).rglob("*.py")):
            if "migrations" in path.parts or any(path == s or s in path.parents for s in skip):
                continue
            yield path


def _matches(pattern: str, paths) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(BASE)}:{number}: {line.strip()}")
    return found


def test_grant_in_force_is_written_once_in_the_queryset():
    """``RoleAssignment.objects.in_force(at)`` (and ``standing``/``open``): nobody else spells
    "active and not expired" for a grant."""
    home = BASE / "governance" / "models.py"
    spelt = _matches(r"expires_at__gt\b|expires_at__isnull=True\)\s*\|", _sources(*PRODUCT, skip=(home,)))
    # Other models' expiries (templates, freeze windows, control changes, SoD exceptions) are theirs.
    spelt = [line for line in spelt if "RoleAssignment" in line or "status=RoleAssignment" in line
             or "Q(expires_at__isnull=True) | Q(expires_at__gt" in line]
    assert spelt == []


def test_change_and_deployment_states_are_asked_in_states_py():
    home = BASE / "releases" / "states.py"
    compared = _matches(
        r"\.state\s*(==|!=|in\b(?! states\.)|not in\b(?! states\.))"
        r"|(filter|exclude)\(.*\bstate=(S|ChangeRequest\.State|Deployment\.State)\.",
        _sources("releases", "governance", "compliance", skip=(home,)),
    )
    templates = _matches(r"\.state\s*(==|!=)", sorted((BASE / "templates").rglob("*.html")))
    assert compared + templates == []


def test_memoisation_per_request_is_core_memo():
    home = BASE / "core" / "memo.py"
    # The control admin hands the proposal from save_model to the response (not a memo).
    handoff = BASE / "governance" / "controls" / "admin.py"
    hand_made = _matches(r"hasattr\((self\.)?request, \"_|setattr\(request,|request\._countersign_\w+ =|"
                         r"hasattr\(self, \"_(?!choices)|@cached_property",
                         _sources(*PRODUCT, skip=(home, handoff)))
    assert hand_made == []


def test_per_request_computes_once_per_holder_name_and_instant():
    calls = []
    holder = SimpleNamespace()

    def compute():
        calls.append(1)
        return len(calls)

    assert per_request(holder, "x", compute) == per_request(holder, "x", compute) == 1
    assert per_request(holder, "y", compute, at=1) == per_request(holder, "y", compute, at=1) == 2
    assert per_request(holder, "y", compute, at=2) == 3  # another instant: afresh
    assert per_request(SimpleNamespace(), "x", compute) == 4  # another request: afresh


def test_every_admin_page_is_service_only():
    others = sorted(f"{type(a).__module__}.{type(a).__name__}" for a in admin.site._registry.values()
                    if not isinstance(a, ServiceOnlyAdmin))
    assert others == []


def _viewsets():
    from config import urls  # noqa: F401  (imports every app's API routes)

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    return {v for v in walk(viewsets.GenericViewSet) if v.__module__.split(".")[0] in PRODUCT}


def test_every_api_viewset_fetches_and_authorises_one_way():
    """Objects by id through ``core.viewsets.VisibleObjectViewSet``; the organisation's read-only
    lists (teams, environments, roles by slug, readable by everyone signed in) need no authorising."""
    found = _viewsets()
    assert len(found) >= 8
    others = sorted(v.__name__ for v in found if not issubclass(v, VisibleObjectViewSet))
    assert others == ["EnvironmentViewSet", "OrganisationViewSet", "RoleViewSet", "TeamViewSet"]
    # The one fetch, and the organisation's by slug (a slug that cannot exist never reaches the database).
    assert {m.split(":")[0] for m in _matches(r"def get_object\(", _sources(*PRODUCT))} == {
        "core/viewsets.py", "governance/api/views.py"}
