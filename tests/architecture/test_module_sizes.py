"""Issue 15: no module of governance/, audit/ or compliance/ is over 450 lines (migrations aside),
so that each file stays one topic a reader can hold."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 450
PACKAGES = ("governance", "audit", "compliance")


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_the_limit(package):
    modules = _modules(package)
    assert modules, f"{package}/ has no modules: wrong root?"
    too_long = {str(p.relative_to(ROOT)): n for p in modules if (n := len(p.read_text().splitlines())) > LIMIT}
    assert too_long == {}, f"over {LIMIT} lines: {too_long}"
