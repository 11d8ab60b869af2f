"""Catalogs complete in all three languages; locale resolution."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.catalog_tools import check, unextracted
from bot.i18n import gettext_for, resolve_locale
from bot.settings import LOCALES


def test_every_message_is_translated_in_every_catalog() -> None:
    problems = check()
    assert problems.missing == {}, "run: python scripts/i18n.py update, then translate"
    assert problems.untranslated == {}
    assert problems.unused == {}, "run: python scripts/i18n.py update"
    assert problems.placeholders == {}
    assert [str(call) for call in problems.unextracted] == [], "use _() or N_() for these"


WRAPPERS = textwrap.dedent(
    """
    from aiogram.utils.i18n import gettext as _, lazy_gettext as __

    def _say(message, **params):
        return _(message).format(**params) if params else _(message)

    def _shout(message):
        return _say(message).upper()

    class Notifier:
        def _in(self, person, message):
            return gettext_for(person.locale, message)

        def tell(self, person):
            return self._in(person, "Hello there")

    def render(translate: Translate) -> str:
        return translate("Shown as it is written")

    _say("Never translated")
    _shout("Nor this")
    __("Lazy and renamed")
    _(f"Hello {name}")
    _("Seen by Babel")
    _t("Seen too, {n}", n=1)
    gettext_for(locale, "Seen as well")
    gettext_for("Not the message", locale)
    """
)


def test_a_message_babel_cannot_see_is_reported_wherever_it_is_written() -> None:
    found = unextracted([("example.py", ast.parse(WRAPPERS))])
    assert sorted((call.helper, call.message) for call in found) == [
        ("_", "f'Hello {name}'"),
        ("__", "Lazy and renamed"),
        ("_in", "Hello there"),
        ("_say", "Never translated"),
        ("_shout", "Nor this"),
        ("translate", "Shown as it is written"),
    ]


@pytest.mark.parametrize(
    "chosen,code,expected",
    [
        ("en", "zh-hans", "en"),
        (None, "zh-TW", "zh_Hant"),
        (None, "zh-hk", "zh_Hant"),
        (None, "zh_MO", "zh_Hant"),
        (None, "zh-Hant-TW", "zh_Hant"),
        (None, "zh", "zh_Hans"),
        (None, "zh-CN", "zh_Hans"),
        (None, "zh-hans", "zh_Hans"),
        (None, "en-GB", "en"),
        (None, "ru", "en"),
        (None, None, "zh_Hans"),
        (None, "", "zh_Hans"),
        ("klingon", None, "zh_Hans"),
    ],
)
def test_locale_resolution(chosen: str | None, code: str | None, expected: str) -> None:
    assert resolve_locale(chosen, code, "zh_Hans") == expected


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_any_language_code_resolves_to_a_supported_locale(
    chosen: str | None, code: str | None
) -> None:
    assert resolve_locale(chosen, code, "zh_Hans") in LOCALES


def test_placeholders_are_filled_in_each_language() -> None:
    assert gettext_for("zh_Hant", "Language set to {language}.", language="English") == (
        "語言已設為 English。"
    )
    assert gettext_for("en", "Main menu") == "Main menu"
    assert gettext_for("zh_Hans", "Main menu") == "主菜单"
