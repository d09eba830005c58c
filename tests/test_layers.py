"""The import rules of the layers (node/__init__.py), checked on every module's syntax tree.

Each layer has an allowlist of `almoner` packages it may import (compared on the full
dotted path) and, for the pure layers, a denylist of outside modules. Imports inside
functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import almoner

ROOT = Path(almoner.__file__).parent


@dataclass(frozen=True)
class Layer:
    prefix: str
    may_import: tuple[str, ...]
    forbidden_outside: frozenset[str] = frozenset()


NETWORK = frozenset({"asyncio", "fastapi", "starlette", "uvicorn", "httpx", "anyio"})
IMPURE = NETWORK | {"time", "random", "socket", "threading", "plyvel", "secrets", "os"}
CORE = ("almoner.consensus", "almoner.node.errors", "almoner.node.chain")

LAYERS = (
    Layer("almoner.consensus", ("almoner.consensus",), frozenset(IMPURE)),
    Layer("almoner.node.errors", ()),
    Layer("almoner.node.chain", CORE, NETWORK),
    Layer("almoner.node.server", (*CORE, "almoner.node.server")),
    Layer("almoner.node.audit", (*CORE, "almoner.node.audit")),
    Layer(
        "almoner.node.devnet",
        (*CORE, "almoner.node.server", "almoner.node.audit", "almoner.node.devnet"),
    ),
    Layer("almoner.node", ("almoner.node",)),
    Layer("almoner.cli", ("almoner",)),
    Layer("almoner", ()),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every module an import statement names, relative imports resolved."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for item in ast.walk(ast.parse(source)):
        if isinstance(item, ast.Import):
            found.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            if item.level:
                base = package.split(".")
                base = base[: len(base) - (item.level - 1)]
                target = ".".join([*base, item.module] if item.module else base)
            else:
                target = item.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in item.names)
        elif isinstance(item, ast.Call) and getattr(item.func, "id", "") == "__import__":
            found.add("__import__")
    return found


def layer_of(module: str) -> Layer:
    for layer in LAYERS:
        if module == layer.prefix or module.startswith(layer.prefix + "."):
            return layer
    raise LookupError(f"{module} belongs to no layer")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    layer = layer_of(module)
    found = []
    for name in sorted(imports_of(source, module, is_package)):
        if name == "__import__":
            found.append(f"{module} calls __import__")
        elif _within(name, "almoner"):
            # `from almoner.node.chain import codec` names both the package and the module;
            # a package's own __init__ (not a layer) is allowed where a module in it is.
            if name in ("almoner", "almoner.node"):
                continue
            if not any(_within(name, allowed) for allowed in layer.may_import):
                found.append(f"{module} imports {name}")
        elif name.split(".")[0] in layer.forbidden_outside:
            found.append(f"{module} imports {name}")
    return found


def all_modules() -> list[Path]:
    # In a checkout the subpackages are links (see almoner/__init__.py): follow them.
    return sorted(
        Path(folder, name)
        for folder, _, names in os.walk(ROOT, followlinks=True)
        if "__pycache__" not in folder
        for name in names
        if name.endswith(".py")
    )


def test_every_module_keeps_its_layer_rules() -> None:
    modules = all_modules()
    assert len(modules) > 60, "the walk must see the whole package"
    problems = [
        problem
        for path in modules
        for problem in violations(
            path.read_text(), module_name(path), is_package=path.name == "__init__.py"
        )
    ]
    assert problems == []


def test_every_module_belongs_to_a_layer() -> None:
    for path in all_modules():
        layer_of(module_name(path))


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("almoner.node.chain.codec", "import asyncio\n"),
        ("almoner.node.chain.ledger", "from almoner.node.server import driver\n"),
        ("almoner.node.chain.store", "def f():\n    import httpx\n"),
        ("almoner.node.audit.verify", "from almoner.node.server.catchup import fetch_blocks\n"),
        ("almoner.node.server.api", "from almoner.node.audit.client import Client\n"),
        ("almoner.node.server.app", "from ..devnet import network\n"),
        ("almoner.node.audit.client", "from almoner.cli.main import main\n"),
        ("almoner.consensus.machine", "from almoner.node.chain import codec\n"),
        ("almoner.consensus.machine", "import time\n"),
        ("almoner.node.errors", "from almoner.node.chain import codec\n"),
    ],
)
def test_a_planted_violation_is_caught(module: str, source: str) -> None:
    assert violations(source, module) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("almoner.node.chain.ledger", "from almoner.consensus import Certificate\n"),
        ("almoner.node.server.driver", "from almoner.node.chain.certified import SyncError\n"),
        ("almoner.node.devnet.demo", "from ..audit.client import Client\n"),
        ("almoner.cli.node_cmd", "from almoner.node.server.app import run\n"),
    ],
)
def test_an_allowed_import_passes(module: str, source: str) -> None:
    assert violations(source, module) == []
