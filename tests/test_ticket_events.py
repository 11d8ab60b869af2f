"""Every kind of ticket event reads as words in every language (办理记录), never as its key.

The kinds are :class:`models.TicketEventKind`; a walk over the code finds every kind the
services write, so a new kind cannot reach the history without a label.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.catalog_tools import load
from bot.i18n import gettext_for
from bot.settings import LOCALES
from bot.telegram.ticket_views import EVENT_LABELS, history_text
from models import Ticket, TicketCategory, TicketEvent, TicketEventKind, TicketState

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "handlers", "scheduler")
AT = datetime(2026, 12, 7, 10, 28, tzinfo=UTC)


@cache
def catalog(locale: str) -> dict[str, object]:
    """msgid → what the catalog of ``locale`` says (empty when untranslated)."""
    return {str(m.id): m.string for m in load(locale) if isinstance(m.id, str) and m.id}


def history_line(kind: str, locale: str) -> str:
    ticket = Ticket(
        id=1,
        number="3502110010010101-20261207-001",
        street_id=1,
        short_number=2048,
        category=TicketCategory.FACILITY,
        description="灯不亮",
        state=TicketState.REOPENED,
        grid_id=1,
        reporter_id=1,
        created_at=AT,
    )
    event = TicketEvent(ticket_id=1, at=AT, action=kind, note="灯还是不亮")
    text = history_text(
        ticket, [(event, "何文静")], lambda m, **p: gettext_for(locale, m, **p), ZoneInfo("UTC")
    )
    return text.splitlines()[-1]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", list(TicketEventKind))
def test_every_event_kind_reads_as_words_in_every_language(
    kind: TicketEventKind, locale: str
) -> None:
    assert kind in EVENT_LABELS, f"give {kind.value!r} a label in EVENT_LABELS"
    label = EVENT_LABELS[kind]
    assert catalog(locale).get(label), f"translate {label!r} into {locale}"
    line = history_line(kind.value, locale)
    assert gettext_for(locale, EVENT_LABELS[kind]) in line
    assert "何文静" in line and "灯还是不亮" in line
    if locale != "en":
        words = re.sub(r"<[^>]*>", "", line)  # the HTML around the time
        assert not re.search(r"[A-Za-z]", words), line


def test_an_event_of_an_unknown_kind_shows_no_key() -> None:
    assert "from_a_newer_version" not in history_line("from_a_newer_version", "zh_Hans")


# --- which kinds the code writes -------------------------------------------------------------


def _modules() -> list[ast.Module]:
    return [
        ast.parse(path.read_text(encoding="utf-8"))
        for directory in SOURCES
        for path in sorted((ROOT / directory).rglob("*.py"))
        if "sandbox" not in path.parts
    ]


def _constants(modules: list[ast.Module]) -> dict[str, str]:
    """Names bound to a text at the top of a module (``NOTICE_EVENT: Final = "…"``)."""
    found: dict[str, str] = {}
    for module in modules:
        for node in module.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            if not targets or not isinstance(value, ast.Constant):
                continue
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(value.value, str):
                    found[target.id] = value.value
    return found


def _action_argument(call: ast.Call, position: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "action":
            return keyword.value
    if position is not None and position < len(call.args):
        return call.args[position]
    return None


def written_kinds() -> set[str]:
    """Every ``TicketEvent.action`` the code writes: in ``TicketEvent(action=…)`` and through
    any function that passes one of its parameters on as the action to a writer (the ticket
    kernel's ``record_event``, and ``transition`` that calls it), however deep."""
    modules = _modules()
    constants = _constants(modules)
    writers: dict[str, int | None] = {"TicketEvent": None}  # callee → the action's position
    functions = [
        function
        for module in modules
        for function in ast.walk(module)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    grown = True
    while grown:  # until no function passes its parameter on to a writer not yet known
        grown = False
        for function in functions:
            if function.name in writers:
                continue
            parameters = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                if call.func.id not in writers:
                    continue
                given = _action_argument(call, writers[call.func.id])
                if isinstance(given, ast.Name) and given.id in parameters:
                    writers[function.name] = parameters.index(given.id)
                    grown = True
                    break
    kinds: set[str] = set()
    for module in modules:
        for call in ast.walk(module):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id not in writers:
                continue
            given = _action_argument(call, writers[call.func.id])
            if given is None:
                continue
            # ``A if approve else B`` writes either: both count
            choices = [given.body, given.orelse] if isinstance(given, ast.IfExp) else [given]
            for choice in choices:
                if isinstance(choice, ast.Name) and choice.id in constants:
                    kinds.add(constants[choice.id])
                elif isinstance(choice, ast.Constant) and isinstance(choice.value, str):
                    kinds.add(choice.value)
                elif (
                    isinstance(choice, ast.Attribute)
                    and choice.attr in TicketEventKind.__members__
                ):
                    kinds.add(TicketEventKind[choice.attr].value)
                elif not (isinstance(choice, ast.Name) and choice.id == "action"):
                    raise AssertionError(f"cannot tell the kind written by {ast.unparse(call)}")
    return kinds


def test_every_kind_the_code_writes_is_a_known_kind_and_every_known_kind_is_written() -> None:
    written = written_kinds()
    assert len(written) >= 15  # the walk found the writers
    assert written - {k.value for k in TicketEventKind} == set(), "add these to TicketEventKind"
    assert {k.value for k in TicketEventKind} - written == set(), "nothing writes these"
