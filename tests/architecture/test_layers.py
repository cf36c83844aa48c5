"""The layers of docs/architecture.md hold by structure: ``core`` ← ``audit`` ← ``governance`` ←
``releases`` ← ``compliance``, each importing only the ones below it (import-linter's layers
contract in pyproject.toml, which reads function-level imports too), and the two lowest import no
other app even lazily, inside a function."""
import ast
from pathlib import Path

from django.conf import settings
from importlinter.cli import lint_imports

APPS = ("core", "audit", "governance", "releases", "identity", "integrations", "compliance", "config", "bench")


def test_no_layer_imports_one_above_it():
    assert lint_imports(config_filename=str(settings.BASE_DIR / "pyproject.toml")) == 0


def _local_imports_of_other_apps(package: str) -> list[str]:
    found = []
    for path in sorted((settings.BASE_DIR / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in APPS and top != package:
                        found.append(f"{Path(path).relative_to(settings.BASE_DIR)}:{node.lineno} imports {name}")
    return found


def test_core_and_audit_import_no_other_app_even_inside_a_function():
    assert _local_imports_of_other_apps("core") + _local_imports_of_other_apps("audit") == []
