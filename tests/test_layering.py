"""The layers import only what they may (STYLE.md rules 1, 2 and 6)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def test_services_routing_and_models_never_import_aiogram() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "aiogram"
        )
        for path in python_files("bot/services", "bot/routing", "models")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_services_do_not_reach_up_into_the_telegram_layer_or_handlers() -> None:
    forbidden = ("bot.telegram", "handlers", "scheduler")
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith(forbidden)
        )
        for path in python_files("bot/services", "bot/routing", "models")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


WALL_CLOCK = re.compile(r"datetime\.(now|utcnow|today)\(|time\.time\(\)|date\.today\(")


def test_only_the_clock_reads_wall_time() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files("bot", "handlers", "models", "scheduler")
        if path.name != "clock.py" and WALL_CLOCK.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


PROJECT = ("bot", "handlers", "models", "scheduler", "migrations")


def private_names_of_others(path: Path) -> list[str]:
    """``obj._name`` on anything but ``self``/``cls``, and ``_name`` imported from a library."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] not in PROJECT
        ):
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_of_a_library_is_used() -> None:
    """Stock drivers and public APIs (DESIGN.md): a private name of aiogram, SQLAlchemy or
    aiosqlite changes without notice in a minor release."""
    offenders = [
        found
        for path in python_files("bot", "handlers", "scheduler")
        for found in private_names_of_others(path)
    ]
    assert offenders == []
