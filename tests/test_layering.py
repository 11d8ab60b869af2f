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
