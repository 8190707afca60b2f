"""The CLI's imports point one way: commands -> session -> runtime, never back."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "services" / "groundwork_cli"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def test_the_runtime_imports_nothing_above_it() -> None:
    modules = sorted((CLI / "runtime").glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        above = {
            name
            for name in _imports(module)
            if name.startswith("groundwork_cli.") and not name.startswith("groundwork_cli.runtime")
        }
        assert not above, (module.name, sorted(above))


def test_only_the_entrypoint_imports_the_command_group() -> None:
    importers = sorted(
        p.relative_to(CLI).as_posix()
        for p in CLI.rglob("*.py")
        if any(
            n == "groundwork_cli.main" or n.startswith("groundwork_cli.main.") for n in _imports(p)
        )
    )
    assert importers == ["__main__.py"]
