"""Extract, update and check the gettext catalogs (used by ``scripts/i18n.py`` and the tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR, po_path
from bot.settings import LOCALES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "handlers", "scheduler")
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "N_": None,
    "__": None,
    "gettext": None,
    "lazy_gettext": None,
    "ngettext": (1, 2),
    "gettext_for": (2,),
    "t": None,
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


@dataclass
class Problems:
    missing: dict[str, list[str]] = field(default_factory=dict)
    untranslated: dict[str, list[str]] = field(default_factory=dict)
    unused: dict[str, list[str]] = field(default_factory=dict)
    placeholders: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any((self.missing, self.untranslated, self.unused, self.placeholders))


def _ids(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def check() -> Problems:
    """What is missing, untranslated, fuzzy, unused or has mismatched ``{placeholders}``."""
    problems = Problems()
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
