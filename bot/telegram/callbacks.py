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
