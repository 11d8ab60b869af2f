"""Extract, update and check the gettext catalogs (used by ``scripts/i18n.py`` and the tests).

Babel extracts the calls of the functions named in :data:`KEYWORDS`. A message written any
other way — a literal handed to a helper that wraps gettext but is not a keyword, or an
f-string handed to gettext — is never extracted, so it stays English in every language;
:func:`unextracted` finds those calls and :func:`check` reports them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR, po_path
from bot.settings import LOCALES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "handlers", "scheduler")
# Every way GridBot writes a message: aiogram's ``_`` (gettext), ``N_`` (marked, translated
# later), ``gettext_for``/``ngettext_for`` (a given locale), and the local helpers ``t`` and
# ``_t`` that translate and fill ``{placeholders}``; the standard gettext names besides.
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "N_": None,
    "_t": None,
    "t": None,
    "gettext": None,
    "lazy_gettext": None,
    "ngettext": (1, 2),
    "gettext_for": (2,),
    "ngettext_for": (2, 3),
}
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def extract() -> Catalog:
    """Every message marked in the source, with where it is used."""
    catalog = Catalog(domain=DOMAIN, project="GridBot", charset="utf-8")
    for directory in SOURCES:
        base = ROOT / directory
        for filename, lineno, message, comments, context in extract_from_dir(
            base,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",),
        ):
            if "sandbox" in Path(filename).parts:
                continue
            catalog.add(
                message,
                locations=[(f"{directory}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def load(locale: str) -> Catalog:
    with po_path(locale).open("rb") as source:
        return read_po(source, locale=_babel_locale(locale))


def save(catalog: Catalog, locale: str) -> None:
    path = po_path(locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as target:
        write_po(target, catalog, width=99, sort_output=True, omit_header=False)


def _babel_locale(locale: str) -> str:
    return {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW"}.get(locale, locale)


def update() -> None:
    """Merge the extracted messages into each catalog, dropping the unused ones."""
    template = extract()
    with (LOCALES_DIR / f"{DOMAIN}.pot").open("wb") as target:
        write_po(target, template, width=99, sort_output=True, omit_header=True)
    for locale in LOCALES:
        if po_path(locale).exists():
            catalog = load(locale)
        else:
            catalog = Catalog(locale=_babel_locale(locale), domain=DOMAIN, project="GridBot")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        save(catalog, locale)


# --- messages Babel cannot see ------------------------------------------------------------

# gettext's own functions, which an import may rename (``from … import gettext as __``)
GETTEXT_FUNCTIONS: dict[str, tuple[int, ...]] = {
    "gettext": (1,),
    "lazy_gettext": (1,),
    "ngettext": (1, 2),
    "lazy_ngettext": (1, 2),
}
_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(frozen=True)
class Unextracted:
    """A message handed to a translating function in a way extraction does not see."""

    where: str  # "handlers/visits.py:461"
    helper: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.helper}({self.message!r}) is not extracted"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for directory in SOURCES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "sandbox" in relative.parts:
                continue
            yield str(relative), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _functions(module: ast.Module) -> Iterator[tuple[str | None, _Function]]:
    """Every function with the name it is called by (``name = lambda …`` and
    ``f(name=lambda …)`` included; None for a lambda with no name)."""
    named: dict[int, str] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    named[id(node.value)] = target.id
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg and isinstance(keyword.value, ast.Lambda):
                    named[id(keyword.value)] = keyword.arg
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node
        elif isinstance(node, ast.Lambda):
            yield named.get(id(node)), node


def _parameters(function: _Function) -> list[str]:
    """The positional parameters as a caller fills them (``self``/``cls`` left out)."""
    names = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
    if names and names[0] in {"self", "cls"} and not isinstance(function, ast.Lambda):
        return names[1:]
    return names


def _annotation(node: ast.expr | None) -> str:
    return ast.unparse(node) if node is not None else ""


def translators(modules: list[tuple[str, ast.Module]]) -> dict[str, set[int]]:
    """Every name that translates what it is given, with the argument positions (from 1) of
    the messages: the keywords, gettext imported under another name, parameters typed as a
    ``Translate`` callable, and any function that hands one of its own parameters to one of
    these as the message (a wrapper), found again and again until nothing new turns up."""
    known: dict[str, set[int]] = {name: set(spec or (1,)) for name, spec in KEYWORDS.items()}
    functions = [item for _, module in modules for item in _functions(module)]
    for _, module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in GETTEXT_FUNCTIONS:
                        positions = GETTEXT_FUNCTIONS[alias.name]
                        known.setdefault(alias.asname or alias.name, set()).update(positions)
    for _, function in functions:
        for arg in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs):
            if _annotation(arg.annotation).endswith("Translate"):
                known.setdefault(arg.arg, set()).add(1)
    changed = True
    while changed:
        changed = False
        for name, function in functions:
            if name is None:
                continue
            parameters = _parameters(function)
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                for position in known.get(_callee(call) or "", set()).copy():
                    if position > len(call.args):
                        continue
                    given = call.args[position - 1]
                    if isinstance(given, ast.Name) and given.id in parameters:
                        wraps = parameters.index(given.id) + 1
                        if wraps not in known.setdefault(name, set()):
                            known[name].add(wraps)
                            changed = True
    return known


def _written(arg: ast.expr) -> str | None:
    """The text of a message written in place: a literal, an f-string, a sum with a literal."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        return ast.unparse(arg)
    if isinstance(arg, ast.BinOp) and any(
        isinstance(side, ast.Constant | ast.JoinedStr) for side in (arg.left, arg.right)
    ):
        return ast.unparse(arg)
    return None


def unextracted(modules: list[tuple[str, ast.Module]] | None = None) -> list[Unextracted]:
    """Messages written in the code (``modules``: GridBot's sources) that Babel does not
    extract, so nobody translates them."""
    modules = list(_modules()) if modules is None else modules
    known = translators(modules)
    found: list[Unextracted] = []
    for filename, module in modules:
        for call in ast.walk(module):
            if not isinstance(call, ast.Call) or (name := _callee(call)) not in known:
                continue
            extracted = set(KEYWORDS[name] or (1,)) if name in KEYWORDS else set()
            for position in sorted(known[name]):
                if position > len(call.args):
                    continue
                arg = call.args[position - 1]
                text = _written(arg)
                if text is None:
                    continue
                if position not in extracted or not isinstance(arg, ast.Constant):
                    found.append(Unextracted(f"{filename}:{call.lineno}", name, text))
    return found


@dataclass
class Problems:
    missing: dict[str, list[str]] = field(default_factory=dict)
    untranslated: dict[str, list[str]] = field(default_factory=dict)
    unused: dict[str, list[str]] = field(default_factory=dict)
    placeholders: dict[str, list[str]] = field(default_factory=dict)
    unextracted: list[Unextracted] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.missing, self.untranslated, self.unused, self.placeholders, self.unextracted)
        )


def _ids(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def check() -> Problems:
    """What is missing, untranslated, fuzzy, unused or has mismatched ``{placeholders}``, and
    which messages the extraction cannot see."""
    problems = Problems(unextracted=unextracted())
    wanted = {_ids(m.id) for m in extract() if m.id}
    for locale in LOCALES:
        catalog = load(locale)
        present = {_ids(m.id): m for m in catalog if m.id}
        if missing := sorted(wanted - present.keys()):
            problems.missing[locale] = missing
        if unused := sorted(present.keys() - wanted):
            problems.unused[locale] = unused
        bad: list[str] = []
        mismatched: list[str] = []
        for key, message in present.items():
            raw = message.string
            strings = tuple(raw) if isinstance(raw, (tuple, list)) else (raw or "",)
            if message.fuzzy or not all(strings):
                bad.append(key)
                continue
            expected = set(PLACEHOLDER.findall(key))
            if any(set(PLACEHOLDER.findall(s)) != expected for s in strings):
                mismatched.append(key)
        if bad:
            problems.untranslated[locale] = sorted(bad)
        if mismatched:
            problems.placeholders[locale] = sorted(mismatched)
    return problems


def fill(translations: dict[str, dict[str, str | list[str]]]) -> None:
    """Write the given translations into the catalogs (messages must already be extracted)."""
    for locale in LOCALES:
        catalog = load(locale)
        for message in catalog:
            if not message.id:
                continue
            wanted = translations.get(_ids(message.id), {}).get(locale)
            if wanted is None:
                continue
            message.string = tuple(wanted) if isinstance(wanted, list) else wanted
            message.flags.discard("fuzzy")
        save(catalog, locale)
