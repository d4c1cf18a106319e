"""The direction of imports is the architecture: these tests keep it true.

``domain`` imports nothing of ours and no library that does I/O; ``services``
imports the domain only; under ``api/`` only the composition root
(``api/bootstrap.py``) knows which adapters exist.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVERS = (
    "sqlalchemy", "litestar", "dramatiq", "httpx", "openai", "redis", "asyncpg", "aiosqlite", "alembic", "pydantic",
)

# Modules under api/ besides bootstrap.py allowed to import adapters. Keep it short; each needs a reason.
API_ADAPTER_ALLOWLIST: frozenset[str] = frozenset()


def modules_under(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_names(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports, at any depth (functions too), as dotted names.
    ``source`` stands in for the file's text (to test the scanner itself)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                base = ".".join(package + ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imports_any(path: Path, packages: tuple[str, ...]) -> list[str]:
    return sorted(n for n in imported_names(path) if n.split(".")[0] in packages)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_importing_every_domain_module_loads_no_driver_framework_or_broker():
    script = f"""
import importlib, json, pkgutil, sys
import domain
for module in pkgutil.walk_packages(domain.__path__, "domain."):
    importlib.import_module(module.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({list(DRIVERS)!r}))
ours = sorted({{name.split(".")[0] for name in sys.modules}} & {{"adapters", "services", "api"}})
print(json.dumps({{"modules": sorted(m for m in sys.modules if m.startswith("domain")), "loaded": loaded, "ours": ours}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert len(found["modules"]) >= len(modules_under("domain"))  # every module really was imported
    assert found["loaded"] == []
    assert found["ours"] == []


@pytest.mark.parametrize("path", modules_under("domain"), ids=relative)
def test_a_domain_module_imports_none_of_our_outer_layers_nor_any_driver(path):
    assert imports_any(path, ("adapters", "services", "api", *DRIVERS)) == []


@pytest.mark.parametrize("path", modules_under("services"), ids=relative)
def test_a_service_module_imports_neither_adapters_nor_api(path):
    assert imports_any(path, ("adapters", "api")) == []


@pytest.mark.parametrize(
    "path",
    [p for p in modules_under("api") if relative(p) != "api/bootstrap.py" and relative(p) not in API_ADAPTER_ALLOWLIST],
    ids=relative,
)
def test_only_the_composition_root_under_api_imports_adapters(path):
    assert imports_any(path, ("adapters",)) == []


def test_the_import_scanner_sees_imports_inside_functions_and_relative_ones():
    # Guards the checks above against passing vacuously.
    source = "def f():\n    from adapters.memory import MemoryStore\n    import api.bootstrap\nfrom . import jobs\n"
    names = imported_names(ROOT / "services" / "example.py", source)
    assert {"adapters.memory", "api.bootstrap", "services", "services.jobs"} <= names
    assert sorted(n for n in names if n.split(".")[0] in ("adapters", "api")) == [
        "adapters.memory", "adapters.memory.MemoryStore", "api.bootstrap",
    ]
