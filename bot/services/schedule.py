"""Local time, quiet hours and periods: pure functions of ``now`` and the settings."""

from __future__ import annotations

from datetime import datetime, time

from bot.settings import Settings


def local(now: datetime, settings: Settings) -> datetime:
    return now.astimezone(settings.tz)


def in_quiet_window(moment: time, start: time, end: time) -> bool:
    """Whether a local time of day falls in a window that may wrap past midnight."""
    if start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def in_quiet_hours(now: datetime, settings: Settings) -> bool:
    """Non-urgent messages wait while this is true (default 21:00–07:30 local)."""
    quiet = settings.quiet_hours
    return in_quiet_window(local(now, settings).time(), quiet.start, quiet.end)
