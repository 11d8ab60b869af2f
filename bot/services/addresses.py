"""Addresses as the household register keeps them for matching (地址匹配).

A typed address names a registered one when, both normalised (:func:`normalize_address`), one
holds the other and no number is cut in two (:func:`names_same_place`: 3栋 is not 13栋).
Comparing a typed address with every household of a street in Python cost 0.35 s of CPU a
report at 50,000 households, so each household keeps its **address key**
(:func:`address_key`, ``household.address_key``): its normalised address with every run of
digits put in brackets, "幸福路12号5单元" → "幸福路(12)号(5)单元". The brackets never survive
normalisation, so a bracket in a key only ever opens or closes a whole number, and "no number
cut in two" becomes plain containment of one key in the other, which the database answers
(:func:`keys_match` is the same test in Python). The typed text is keyed the same way and
passed as a bound value, never as a pattern: ``%``, ``_`` and ``\\`` are plain characters.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, func, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

MIN_TYPED = 3  # characters of the shorter normalised address worth comparing
KEY_LENGTH = 400  # a longer key (an address that normalisation blew up) is not kept
OPEN, CLOSE = "(", ")"  # around each number in a key: normalisation removes both

# "3号楼", "3#楼", "3#", "3幢", "3栋", "3座" all name building 3
_BUILDING = re.compile(r"([0-9]+)(?:号楼|#楼|#|幢|栋|座)")
_ROOM = re.compile(r"([0-9]+)(?:室|号房)")
_UNITS = re.compile(r"[0-9]|栋|单元|号|室|楼|层")  # what is left is the name of a place
_NOISE = re.compile(r"[\s\-_,.;:/\\()\[\]{}'\"`~!?、，。；：（）【】《》“”‘’·—…]+")


def normalize_address(text: str) -> str:
    """An address reduced to what tells it apart: full-width folded, spaces and punctuation
    gone, and the usual ways of writing a building (3号楼 / 3幢 / 3#楼 / 3座 → 3栋) and a flat
    (501室 → 501) made one. Chinese numerals are left as they are (三号楼 is not 3栋)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    folded = _BUILDING.sub(r"\1栋", folded)
    folded = _ROOM.sub(r"\1", folded)
    return _NOISE.sub("", folded)


def names_a_place(normalised: str) -> bool:
    """Whether a normalised typed address holds the name of a place: "5号楼2单元" alone names
    none (building 5 of which compound?), and a text shorter than :data:`MIN_TYPED` tells
    nothing apart."""
    return len(normalised) >= MIN_TYPED and len(_UNITS.sub("", normalised)) >= 2


def names_same_place(typed: str, registered: str) -> bool:
    """Whether a typed address (normalised) names the registered one (normalised): one holds
    the other, and a number is never cut in two (3栋 is not 13栋, 10 is not 101)."""
    short, long = (typed, registered) if len(typed) <= len(registered) else (registered, typed)
    if len(short) < MIN_TYPED:
        return False
    start = long.find(short)
    while start != -1:
        end = start + len(short)
        before_ok = start == 0 or not (short[0].isdigit() and long[start - 1].isdigit())
        after_ok = end == len(long) or not (short[-1].isdigit() and long[end].isdigit())
        if before_ok and after_ok:
            return True
        start = long.find(short, start + 1)
    return False


def match_key(normalised: str) -> str:
    """A normalised address with each run of digits in brackets: 3栋101 → (3)栋(101)."""
    return "".join(
        f"{OPEN}{''.join(run)}{CLOSE}" if digits else "".join(run)
        for digits, run in itertools.groupby(normalised, str.isdigit)
    )


def address_key(address: str) -> str:
    """What ``household.address_key`` holds for ``address``: its :func:`match_key`, or ``""``
    (never matched) when normalisation made it longer than :data:`KEY_LENGTH`."""
    key = match_key(normalize_address(address))
    return key if len(key) <= KEY_LENGTH else ""


def key_length(key: str) -> int:
    """The length of the normalised address behind a key."""
    return len(key) - key.count(OPEN) - key.count(CLOSE)


def keys_match(typed: str, registered: str) -> bool:
    """:func:`names_same_place` on keys — what :func:`matching` asks the database."""
    return bool(registered) and (
        (typed in registered and key_length(typed) >= MIN_TYPED)
        or (registered in typed and key_length(registered) >= MIN_TYPED)
    )


class _Position(FunctionElement[int]):
    """Where ``needle`` first occurs in ``haystack`` (1-based, 0 if nowhere), both plain text:
    ``instr`` on SQLite, ``strpos`` on PostgreSQL — no pattern, so nothing to escape."""

    type = Integer()
    name = "position_of"
    inherit_cache = True


@compiles(_Position)
def _instr(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Position, "postgresql")
def _strpos(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def matching(stored: ColumnElement[str] | Mapped[str], typed_key: str) -> ColumnElement[bool]:
    """SQL for :func:`keys_match` of a typed key against a stored key column."""
    typed = literal(typed_key, String())
    stored_length = func.length(func.replace(func.replace(stored, OPEN, ""), CLOSE, ""))
    held = _Position(stored, typed) > 0  # the typed address is a part of the registered one
    holds = (_Position(typed, stored) > 0) & (stored_length >= MIN_TYPED)  # or the other way
    clauses = [holds] if key_length(typed_key) < MIN_TYPED else [held, holds]
    return (stored != "") & or_(*clauses)
