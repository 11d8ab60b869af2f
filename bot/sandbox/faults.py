"""Faults on demand: errors, latency, dropped connections and 429 storms.

Decisions come from a seeded :class:`random.Random`, so a test that sets ``seed`` sees the same
sequence of faults on every run.  Only requests for the chosen methods draw from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

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
    most 1); ``latency`` is added before every affected request; ``methods`` limits all of it
    to the named Bot API methods (case-insensitive), ``None`` meaning every method.
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


@dataclass
class FaultInjector:
    """The current :class:`Faults`, the RNG and the 429 storm, if one is raging."""

    monotonic: MonotonicClock
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    storm: Storm | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def configure(self, faults: Faults, *, seed: int | None = None) -> None:
        self.faults = faults
        if seed is not None:
            self.seed = seed
            self._rng = random.Random(seed)

    def clear(self) -> None:
        self.faults = Faults()
        self.storm = None

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
