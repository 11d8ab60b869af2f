"""Logging: one line per event, as text or JSON (``LOG_FORMAT=json``), with nothing personal.

Every record — GridBot's, aiogram's, aiohttp's, APScheduler's — goes through structlog's
``ProcessorFormatter`` on the root logger: a timestamp, the level, the logger's name, the
message, and the traceback when there is one. Before a line is written, :func:`redact` masks
what must never reach a log (个人信息保护法): a bot token (it sits in every Bot API URL an
error may quote), mainland mobile numbers (``138****5678``) and resident ID numbers.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["text", "json"]

TOKEN = re.compile(r"(?<![0-9])[0-9]{5,15}:[A-Za-z0-9_-]{30,60}")
# a mainland mobile, with or without +86 / 86, written whole or grouped 3-4-4
MOBILE = re.compile(
    r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])"
)
RESIDENT_ID = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{9}[0-9Xx](?![0-9A-Za-z])")


def redact(text: str) -> str:
    """``text`` with tokens, mobile numbers and ID numbers masked."""
    text = TOKEN.sub("<token>", text)
    text = RESIDENT_ID.sub("<id-number>", text)
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def _redact_event(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
        elif not isinstance(value, int | float | bool | type(None)):
            event[key] = redact(str(value))
    return event


def configure_logging(
    *, level: int = logging.INFO, fmt: LogFormat = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (standard error) in ``fmt``; returns the handler
    (tests remove it again)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [
        h for h in root.handlers if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    ]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
