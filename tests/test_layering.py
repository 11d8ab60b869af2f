"""The layers import only what they may (STYLE.md rules 1, 2 and 6)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved (``from .x import y`` in
    ``bot/services/a.py`` is ``bot.services.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(imported_from(path, node))
    return found


def imported_from(path: Path, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, made absolute."""
    if node.level == 0:
        return node.module or ""
    package = list(path.relative_to(ROOT).with_suffix("").parts)
    base = package[: len(package) - node.level]
    return ".".join(base + ([node.module] if node.module else []))


def within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


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


def test_routing_imports_nothing_above_it() -> None:
    """``bot/routing`` is pure (docs/routing.md): of the project it uses only itself and the
    neutral modules under every layer — the domain errors, the catalogs' ``N_``, the models'
    enums. Nothing from ``bot/services`` (whose errors moved to ``bot/errors.py`` for this)."""
    allowed = ("bot.routing", "bot.errors", "bot.i18n", "models")
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if within(m, *PROJECT) and not within(m, *allowed)
        )
        for path in python_files("bot/routing")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_errors_module_stays_neutral() -> None:
    """``bot/errors.py`` is imported by every layer, ``bot/routing`` too: it may import only
    the catalogs and the models."""
    project = {m for m in imported_modules(ROOT / "bot" / "errors.py") if within(m, *PROJECT)}
    assert {m for m in project if not within(m, "bot.i18n", "models")} == set()


def test_no_module_imports_another_modules_private_names() -> None:
    """A ``_name`` is its module's own: a helper others need is public (the ticket kernel's
    are, in ``bot/services/tickets/kernel.py``)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} {imported_from(path, node)}.{alias.name}"
        for path in python_files("bot", "handlers", "scheduler", "models")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and within(imported_from(path, node), *PROJECT)
        for alias in node.names
        if _private(alias.name)
    ]
    assert offenders == []


# Handlers (and their helpers that take the update) thin enough to read at a glance; each
# exception says why it is one.
MANY_PARAMETERS_ALLOWED = {
    # Seven explicit arguments of one question (the press, where to write, the state to wait
    # in, the choice to remember, the question and its buttons): none of them is injected.
    ("tickets.py", "_ask_for_reason"),
}
# What the update's Actor carries; a handler takes ``actor`` rather than these one by one.
ACTOR_PARTS = {"session", "now", "person", "roles", "notifier", "locale"}


def handler_functions() -> list[tuple[str, ast.AsyncFunctionDef | ast.FunctionDef]]:
    """Functions in ``handlers/`` whose first parameter is the update's message or query."""
    found = []
    for path in sorted((ROOT / "handlers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.AsyncFunctionDef, ast.FunctionDef)):
                first = (node.args.posonlyargs + node.args.args)[:1]
                if first and first[0].arg in {"message", "query", "callback"}:
                    found.append((path.name, node))
    return found


def parameters(node: ast.AsyncFunctionDef | ast.FunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]


def test_handlers_take_at_most_six_parameters() -> None:
    found = handler_functions()
    assert len(found) > 50  # the walk finds the handlers
    crowded = {
        (name, node.name): len(parameters(node))
        for name, node in found
        if len(parameters(node)) > 6 and (name, node.name) not in MANY_PARAMETERS_ALLOWED
    }
    assert crowded == {}


def test_handlers_take_the_actor_not_its_parts() -> None:
    separate = {
        (name, node.name): sorted(ACTOR_PARTS & set(parameters(node)))
        for name, node in handler_functions()
        if ACTOR_PARTS & set(parameters(node))
    }
    assert separate == {}


def test_no_long_running_code_waits_with_asyncio_wait_for() -> None:
    """On Python 3.11 ``asyncio.wait_for`` returns instead of raising when it is cancelled just
    as what it waits for comes (fixed in 3.12): the sender, woken as it was stopped, once ran
    on after its stop. ``async with asyncio.timeout(…)`` keeps the cancellation."""
    waiting = [
        str(path.relative_to(ROOT))
        for path in python_files("bot", "scheduler")
        if "wait_for(" in path.read_text(encoding="utf-8")
    ]
    assert waiting == []
