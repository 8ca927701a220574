"""How connector/ hangs together: no import cycles, and the service runs without the test kit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, write_setup

PACKAGE = Path(__file__).resolve().parents[1] / "connector"
#: makes ``import pytest`` fail, as in an install without the ``testing`` extra
NO_PYTEST = "import sys; sys.modules['pytest'] = None; "


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every connector module ``name`` imports, wherever the import sits (TYPE_CHECKING, functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            subs = [f"{base}.{a.name}" for a in node.names]
            # `from pkg import submodule` runs only the package's __init__, which every submodule does anyway
            names = subs if all(s in modules for s in subs) else [base, *subs]
        else:
            continue
        for imported in names:
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                out.add(imported)
    return out


def test_no_module_in_connector_imports_itself_round_a_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = []

    def visit(name: str, trail: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[name]):
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, [*trail, nxt], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], done)
    assert cycles == []


def test_the_test_kit_names_its_extra_when_pytest_is_missing() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_PYTEST + "import connector.testing.plain"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ImportError: connector.testing needs the 'testing' extra" in result.stderr
    assert "pip install 'plain-crm-sync[testing]'" in result.stderr


def test_send_and_the_service_need_no_test_kit(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    event = tmp_path / "event.json"
    event.write_text('{"id": "pEv_1", "type": "customer.customer_created"}')
    url = f"http://127.0.0.1:{free_port()}/webhooks/plain"  # nothing listens: send gets as far as the POST
    script = (
        NO_PYTEST
        + "import connector.service, connector.app\n"
        + "from connector.cli import main\n"
        + f"code = main(['send', '--config', {str(config)!r}, {str(event)!r}, '--url', {url!r}])\n"
        + "assert not [m for m in sys.modules if m.startswith('connector.testing')], 'test kit imported'\n"
        + "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"cannot reach {url}:")
