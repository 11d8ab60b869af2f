"""Catalogs complete in all three languages; locale resolution."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.catalog_tools import check
from bot.i18n import gettext_for, resolve_locale
from bot.settings import LOCALES


def test_every_message_is_translated_in_every_catalog() -> None:
    problems = check()
    assert problems.missing == {}, "run: python scripts/i18n.py update, then translate"
    assert problems.untranslated == {}
    assert problems.unused == {}, "run: python scripts/i18n.py update"
    assert problems.placeholders == {}


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
