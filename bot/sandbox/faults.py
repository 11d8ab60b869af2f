"""Faults on demand: errors, latency, dropped connections and 429 storms.

Decisions come from a seeded :class:`random.Random`, so a test that sets ``seed`` sees the same
sequence of faults on every run.  Only requests for the chosen methods draw from it.

While faults or a storm are set, every request in their scope is written to the fault log
(:attr:`FaultInjector.log`): what was injected, whether the sandbox carried the request out
(``acted``) and whether the client got an answer. A 5xx, a dropped request and a 429 leave
nothing done; a lost answer comes after the work. :func:`duplicates` reads the log and tells,
for every message that arrived more than once, what the sender knew when it sent it again.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.sandbox.clock import MonotonicClock


class FaultKind(Enum):
    NONE = "none"
    ERROR = "error"  # answer 500 or 502; the request has no effect
    DROP = "drop"  # close the connection without an answer; the request has no effect
    LOST_RESPONSE = "lost_response"  # do the work, then close the connection unanswered


@dataclass(frozen=True)
class Faults:
    """What to inject into Bot API requests.

    ``error_rate``, ``drop_rate`` and ``lost_response_rate`` are probabilities (their sum at
    most 1); ``latency`` is added to every affected request between its arrival and its work
    (a client that stops waiting meanwhile leaves it done but unanswered: ``abandoned`` in the
    log); ``methods`` limits all of it to the named Bot API methods (case-insensitive),
    ``None`` meaning every method.
    """

    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (500, 502)
    latency: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    methods: frozenset[str] | None = None

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.drop_rate, self.lost_response_rate)
        if any(rate < 0 for rate in rates) or sum(rates) > 1 + 1e-9:
            raise ValueError("fault rates must be non-negative and sum to at most 1")
        if self.latency < 0:
            raise ValueError("latency must be non-negative")
        if not self.error_codes or any(code not in (500, 502) for code in self.error_codes):
            raise ValueError("error_codes must be a non-empty subset of (500, 502)")
        if self.methods is not None:
            object.__setattr__(self, "methods", frozenset(m.lower() for m in self.methods))


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    error_code: int = 0
    latency: float = 0.0


@dataclass
class Storm:
    until: float
    retry_after: int


LOG_SIZE = 100_000  # fault-log entries kept (the oldest go first)


@dataclass(frozen=True)
class FaultRecord:
    """One request in the faults' scope, as the sandbox handled it.

    ``seq`` orders the requests by arrival and ``done`` by when they were answered (or their
    connection closed), on one counter. ``outcome`` is ``ok``, ``error_500``, ``error_502``,
    ``drop``, ``lost_response``, ``abandoned`` (done, but the client had stopped waiting: a
    timeout), ``429`` (a storm or a flood limit) or ``refused`` (any other Bot API error);
    ``acted`` says whether the request took effect, ``answered`` whether the client got an
    answer. ``text`` is the message's text or caption, ``message_ids`` the
    messages it sent or edited.
    """

    seq: int
    done: int
    method: str
    chat_id: int | None
    text: str | None
    outcome: str
    acted: bool
    answered: bool
    message_ids: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[str, int | None, str | None]:
        """What makes two requests the same message: method, chat and text."""
        return self.method.lower(), self.chat_id, self.text


@dataclass(frozen=True)
class Duplicate:
    """A request that took effect although an earlier one of the same message already had.

    ``earlier`` are those that had; ``before`` is the last request of the message that ended
    before this one arrived — the fault the sender saw just before it sent again, if any."""

    again: FaultRecord
    earlier: tuple[FaultRecord, ...]
    before: FaultRecord | None

    @property
    def avoidable(self) -> bool:
        """The sender had been told the message arrived, and sent it again all the same. The
        unavoidable ones follow an answer that never reached it (lost, or it stopped waiting):
        Telegram has no idempotency key."""
        return any(e.answered for e in self.earlier)

    @property
    def cause(self) -> str:
        """``answered`` (avoidable), else the outcome of the earlier request whose answer the
        sender never got (``lost_response``, ``abandoned``)."""
        if self.avoidable:
            return "answered"
        return self.earlier[-1].outcome

    @property
    def after(self) -> str:
        """The outcome of ``before`` (``in_flight`` when no request of the message had ended)."""
        return self.before.outcome if self.before is not None else "in_flight"


def duplicates(
    log: Iterable[FaultRecord], methods: Iterable[str] | None = None
) -> list[Duplicate]:
    """Every request that took effect after another with the same method, chat and text had
    (so a test gives each message to a chat a text of its own), with what the sender knew.
    ``methods`` limits it to those methods (default: every one logged)."""
    wanted = None if methods is None else {m.lower() for m in methods}
    records = sorted((r for r in log if wanted is None or r.key[0] in wanted), key=lambda r: r.seq)
    by_key: dict[tuple[str, int | None, str | None], list[FaultRecord]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    found: list[Duplicate] = []
    for same in by_key.values():
        for index, record in enumerate(same):
            earlier = tuple(e for e in same[:index] if e.acted)
            if not record.acted or not earlier:
                continue
            ended = [e for e in same[:index] if e.done < record.seq]
            before = max(ended, key=lambda e: e.done) if ended else None
            found.append(Duplicate(record, earlier, before))
    return sorted(found, key=lambda d: d.again.seq)


@dataclass
class FaultInjector:
    """The current :class:`Faults`, the RNG, the 429 storm, if one is raging, and the log."""

    monotonic: MonotonicClock
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    storm: Storm | None = None
    log: deque[FaultRecord] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._seq = itertools.count(1)

    @property
    def active(self) -> bool:
        """Faults or a storm are set: requests in scope are logged."""
        return self.faults != Faults() or self.storm is not None

    def in_scope(self, method: str) -> bool:
        return self.faults.methods is None or method.lower() in self.faults.methods

    def arrived(self) -> int:
        """The ordinal of a request that just arrived (its :attr:`FaultRecord.seq`)."""
        return next(self._seq)

    def record(
        self,
        seq: int,
        method: str,
        params: dict[str, Any],
        outcome: str,
        *,
        acted: bool,
        answered: bool,
        result: Any = None,
    ) -> FaultRecord | None:
        """Log one request in scope (while faults or a storm are set) as it ends: ``seq`` from
        :meth:`arrived`, ``params`` its raw parameters, ``result`` what it returned."""
        if not self.active or not self.in_scope(method):
            return None
        entry = FaultRecord(
            seq,
            next(self._seq),
            method,
            _int_or_none(params.get("chat_id")),
            _text_of(params),
            outcome,
            acted,
            answered,
            _message_ids(result) if acted else (),
        )
        self.log.append(entry)
        return entry

    def configure(self, faults: Faults, *, seed: int | None = None) -> None:
        self.faults = faults
        if seed is not None:
            self.seed = seed
            self._rng = random.Random(seed)

    def clear(self) -> None:
        """No faults, no storm; the log is kept (see :meth:`clear_log`)."""
        self.faults = Faults()
        self.storm = None

    def clear_log(self) -> None:
        self.log.clear()

    def start_storm(self, duration: float, retry_after: int) -> None:
        """Answer every send with 429 ``retry_after`` for ``duration`` monotonic seconds."""
        if duration <= 0 or retry_after < 1:
            raise ValueError("duration must be positive and retry_after at least 1")
        self.storm = Storm(self.monotonic() + duration, retry_after)

    def storm_retry_after(self) -> int | None:
        if self.storm is None:
            return None
        if self.monotonic() >= self.storm.until:
            self.storm = None
            return None
        return self.storm.retry_after

    def decide(self, method: str) -> FaultDecision:
        faults = self.faults
        if faults.methods is not None and method.lower() not in faults.methods:
            return FaultDecision(FaultKind.NONE)
        kind = FaultKind.NONE
        code = 0
        if faults.error_rate or faults.drop_rate or faults.lost_response_rate:
            draw = self._rng.random()
            if draw < faults.drop_rate:
                kind = FaultKind.DROP
            elif draw < faults.drop_rate + faults.error_rate:
                kind = FaultKind.ERROR
                code = self._rng.choice(faults.error_codes)
            elif draw < faults.drop_rate + faults.error_rate + faults.lost_response_rate:
                kind = FaultKind.LOST_RESPONSE
        return FaultDecision(kind, code, faults.latency)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text_of(params: dict[str, Any]) -> str | None:
    for name in ("text", "caption"):
        value = params.get(name)
        if isinstance(value, str):
            return value
    return None


def _message_ids(result: Any) -> tuple[int, ...]:
    results = result if isinstance(result, list) else [result]
    return tuple(r["message_id"] for r in results if isinstance(r, dict) and "message_id" in r)
