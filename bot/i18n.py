"""Message catalogs (gettext), loaded straight from the ``.po`` files.

Simplified Chinese (``zh_Hans``) is the default; Traditional Chinese (``zh_Hant``) and English
(``en``) are kept complete. This module imports no aiogram, so services can translate the
messages they put in the outbox; the aiogram side wraps the same catalogs.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterable
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.settings import LOCALES

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "gridbot"


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _compile(locale: str) -> gettext.GNUTranslations:
    with po_path(locale).open("rb") as source:
        catalog = read_po(source, locale=locale.replace("_Hans", "").replace("_Hant", ""))
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def translations() -> dict[str, gettext.GNUTranslations]:
    """Every catalog, compiled in memory once (no ``.mo`` build step)."""
    return {locale: _compile(locale) for locale in LOCALES if po_path(locale).exists()}


def gettext_for(locale: str, message: str, **params: Any) -> str:
    """Translate ``message`` into ``locale`` and fill ``{named}`` placeholders."""
    catalog = translations().get(locale)
    text = catalog.gettext(message) if catalog is not None else message
    return text.format(**params) if params else text


def ngettext_for(locale: str, singular: str, plural: str, n: int, **params: Any) -> str:
    catalog = translations().get(locale)
    text = catalog.ngettext(singular, plural, n) if catalog else (singular if n == 1 else plural)
    return text.format(n=n, **params)


def in_every_locale(message: str) -> frozenset[str]:
    """A button's label in each language: a keyboard shown before a language change still works."""
    return frozenset(gettext_for(locale, message) for locale in LOCALES)


def resolve_locale(chosen: str | None, language_code: str | None, default: str) -> str:
    """The person's choice, else Telegram's ``language_code``, else the default.

    ``zh-TW``, ``zh-HK``, ``zh-MO`` and ``zh-Hant`` map to Traditional Chinese, any other ``zh``
    to Simplified; any other language to English.
    """
    if chosen in LOCALES:
        assert chosen is not None
        return chosen
    if not language_code:
        return default
    code = language_code.strip().lower().replace("_", "-")
    if code == "zh" or code.startswith("zh-"):
        parts = set(code.split("-")[1:])
        if parts & {"tw", "hk", "mo", "hant"}:
            return "zh_Hant"
        return "zh_Hans"
    return "en"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a message for extraction without translating it here."""
    return message


# Punctuation that differs between the languages — Chinese writes 、 ； （） ： where English
# writes , ; () : — kept as messages, so each catalog says how its language writes them.
# Translate them like any message (``_(LIST_SEPARATOR)``, ``t(ASIDE, text=…, aside=…)``).
# TRANSLATORS: between the items of a list, as in "A, B, C" (Chinese: 、)
LIST_SEPARATOR = N_(", ")
# TRANSLATORS: between two parts of one line, as in "3 households; head: Li" (Chinese: ；)
CLAUSE_SEPARATOR = N_("; ")
# TRANSLATORS: a remark after a name or title, as in "Wang (grid worker)" (Chinese: （）)
ASIDE = N_("{text} ({aside})")
# TRANSLATORS: a label and what it labels, as in "Wang: the lamp is fixed" (Chinese: ：)
LABELLED = N_("{label}: {text}")


def join_list(translate: Callable[[str], str], items: Iterable[str]) -> str:
    """``items`` as a list in the language of ``translate``: "A, B, C" / "A、B、C"."""
    return translate(LIST_SEPARATOR).join(items)


def join_clauses(translate: Callable[[str], str], items: Iterable[str]) -> str:
    """``items`` as parts of one line: "A; B" / "A；B"."""
    return translate(CLAUSE_SEPARATOR).join(items)
