"""Typed callback data: short prefixes, enum actions, integer ids, far below 64 bytes."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from models import Rating


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


class TicketAction(StrEnum):
    OPEN = "o"
    ACCEPT = "a"
    NOTE = "n"
    ASK = "q"
    RESOLVE = "r"
    ESCALATE = "e"
    TRANSFER = "t"
    DUPLICATE = "d"
    REJECT = "x"
    HISTORY = "h"
    ANSWER = "w"  # the reporter answers a question


class TicketCb(CallbackData, prefix="tk"):
    """An action on a ticket's card (the service re-checks who may do it)."""

    action: TicketAction
    id: int


class TransferCb(CallbackData, prefix="tt"):
    """Transfer a ticket to one department."""

    id: int
    department: int


class RateCb(CallbackData, prefix="rt"):
    """The reporter's rating of a resolved ticket."""

    id: int
    rating: Rating


class CancelCb(CallbackData, prefix="cx"):
    """Leave whatever the bot is waiting for."""


class ReturnVisitOutcome(StrEnum):
    SATISFIED = "s"
    BASICALLY = "b"
    UNSATISFIED = "u"
    UNREACHABLE = "x"


class ReturnVisitCb(CallbackData, prefix="rv"):
    """What the reporter said when the worker called back (回访)."""

    id: int
    outcome: ReturnVisitOutcome
