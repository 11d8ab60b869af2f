"""Typed callback data: short prefixes, enum actions, integer ids, far below 64 bytes."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class LanguageCode(StrEnum):
    ZH_HANS = "zh_Hans"
    ZH_HANT = "zh_Hant"
    EN = "en"


class LanguageCb(CallbackData, prefix="lg"):
    code: LanguageCode


class GridPageCb(CallbackData, prefix="gp"):
    """A page of the grid tree under ``root``."""

    root: int
    page: int


class PeoplePageCb(CallbackData, prefix="pp"):
    page: int


class HouseholdCb(CallbackData, prefix="hh"):
    """Open one household's card."""

    id: int


class HouseholdPageCb(CallbackData, prefix="hp"):
    page: int
