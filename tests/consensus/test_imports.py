"""consensus/ must stay pure: the import rule of DESIGN.md, checked on the syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import consensus

FORBIDDEN = {"node", "asyncio", "time", "random", "plyvel", "fastapi", "socket", "threading"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            found.update(alias.name.split(".")[0] for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            found.add(item.module.split(".")[0])
        elif isinstance(item, ast.Call) and getattr(item.func, "id", "") == "__import__":
            found.add("__import__")
    return found


def test_consensus_imports_nothing_impure() -> None:
    root = Path(consensus.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) >= 5
    for path in modules:
        bad = _imports(path) & (FORBIDDEN | {"__import__"})
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import time\nfrom node.codec import encode\nfrom . import x\n")
    assert _imports(sample) & FORBIDDEN == {"time", "node"}
