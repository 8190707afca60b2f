"""Every service has the anatomy the README's layout section describes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
PLATFORM = {"groundwork_cli", "groundwork_operator", "groundwork_shared"}
PACKAGES = sorted(p for p in SERVICES.glob("groundwork_*") if p.is_dir() and p.name not in PLATFORM)
WITH_DATABASE = [p for p in PACKAGES if (p / "migrations").is_dir()]
SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")


def test_the_services_are_found() -> None:
    names = {p.name.removeprefix("groundwork_") for p in PACKAGES}
    assert {"booking", "catalog", "identity", "payments", "ticketing"} <= {
        p.name.removeprefix("groundwork_") for p in WITH_DATABASE
    }
    assert {"ratelimit", "realtime", "waitingroom"} <= names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_each_service_has_its_entrypoint_and_servicer(package: Path) -> None:
    assert (package / "__main__.py").is_file()
    assert (package / "service.py").is_file()


@pytest.mark.parametrize("package", WITH_DATABASE, ids=lambda p: p.name)
def test_a_database_service_keeps_rules_in_domain_and_sql_in_its_repository(
    package: Path,
) -> None:
    assert (package / "domain.py").is_file()
    tree = ast.parse((package / "repository.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            # Records only: state and methods would make it a second shape.
            assert not _has_methods(node), (package.name, node.name)
        if isinstance(node, ast.AsyncFunctionDef) and not node.name.startswith("_"):
            first = node.args.args[0] if node.args.args else None
            assert first is not None and first.arg == "conn", (package.name, node.name)
    for module in ("service.py", "workers.py", "domain.py", "__main__.py"):
        path = package / module
        if path.is_file():
            strings = [
                n.value
                for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            # Docstrings may speak of SQL; no other string may be a statement.
            sql = [s for s in strings if SQL.match(s)]
            assert not sql, (f"{package.name}/{module}", sql)


def _has_methods(node: ast.ClassDef) -> bool:
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in node.body)
