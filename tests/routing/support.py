"""Helpers for the routing tests: local Shanghai instants and policy variants."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.routing.policy import DEFAULT_POLICY_PATH, Policy, parse_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time, as the aware UTC instant the code works with."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def default_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return loaded


def policy_with(change: Callable[[dict[str, Any]], None]) -> Policy:
    """The default policy with ``change`` applied to a copy of its JSON."""
    body = copy.deepcopy(default_json())
    change(body)
    return parse_policy(body)
