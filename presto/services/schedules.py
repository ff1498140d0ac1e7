"""Item schedules: weekly windows in the restaurant's local time.

A window is `{"days": ["mon", ...], "start": "07:00", "end": "11:00"}`. It opens at
`start` on each of its days and closes at `end`, the same day when `end` is later, else
the next day (a window may cross midnight: `22:00` to `02:00`); `24:00` is the end of the
day. An item with no windows is offered whenever its `available` flag is set. Local times
become instants through `zoneinfo`, so a window keeps its wall-clock hours across a DST
change; a wall time that happens twice (clocks going back) means its first occurrence, and
one the clocks skip (going forward) the instant they jump past it.

The menu call is valid until the next instant some window opens or closes
(`next_boundary`): the warm path keeps a rendered menu until then and no longer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Most windows an item may have: enough for split shifts on every day of the week.
MAX_WINDOWS = 28
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\Z")
# Schedules repeat weekly: the next boundary, if any, lies within eight days.
_HORIZON_DAYS = 8


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of this name (`ZoneInfoNotFoundError`/`ValueError` if none)."""
    return _zone(name)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def timezone_error(name: str) -> str | None:
    """Why `name` is not an IANA time zone presto accepts, or None when it is one."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return "Must be an IANA time zone name such as Europe/Berlin."
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin."
    return None


def window_errors(window: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with one window, per key (empty when it is valid)."""
    errors: dict[str, list[str]] = {}
    days = window.get("days")
    if not isinstance(days, list) or not days:
        errors["days"] = [f"Must be a non-empty list of days: {', '.join(DAYS)}."]
    else:
        bad = [day for day in days if day not in DAYS]
        if bad:
            errors["days"] = [f"Unknown days {bad}; use {', '.join(DAYS)}."]
        elif len(set(days)) != len(days):
            errors["days"] = ["A day appears more than once."]
    start, end = window.get("start"), window.get("end")
    if not isinstance(start, str) or not _TIME.match(start):
        errors["start"] = ["Must be a local time HH:MM, 00:00 to 23:59."]
    if not isinstance(end, str) or not (_TIME.match(end) or end == "24:00"):
        errors["end"] = ["Must be a local time HH:MM, 00:00 to 24:00."]
    elif start == end:
        errors["end"] = ["Must differ from start."]
    return errors


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def in_schedule(schedule: Sequence[dict[str, Any]], moment: datetime, tz: ZoneInfo) -> bool:
    """Whether `moment` is inside one of the windows (always, when there are none).

    Decided on the same instants `next_boundary` yields, so the two always agree, on DST
    change nights too.
    """
    if not schedule:
        return True
    today = moment.astimezone(tz).date()
    for window in schedule:
        start, end = _minutes(window["start"]), _minutes(window["end"])
        # A window opened yesterday may still run (it crosses midnight, or DST moved it).
        for day in (today - timedelta(days=1), today):
            if DAYS[day.weekday()] in window["days"]:
                opens, closes = _occurrence(day, start, end, tz)
                if opens <= moment < closes:
                    return True
    return False


def _occurrence(day: date, start: int, end: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a window of local minutes `start` to `end` opens and closes on `day`."""
    return _instant(day, start, tz), _instant(day, end if start < end else end + 24 * 60, tz)


def _instant(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The instant the local clock first shows `minute` past midnight of `day`.

    A wall time that happens twice (clocks going back) is its first occurrence; one that
    the clocks skip going forward is the instant they jump past it.
    """
    wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # Skipped: search the gap, minute by minute in halves, for the first later wall time.
    low, high = wall.replace(tzinfo=tz, fold=1).astimezone(UTC), first
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) // 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _window_boundaries(window: dict[str, Any], around: date, tz: ZoneInfo) -> Iterable[datetime]:
    start, end = _minutes(window["start"]), _minutes(window["end"])
    for offset in range(-1, _HORIZON_DAYS):
        day = around + timedelta(days=offset)
        if DAYS[day.weekday()] in window["days"]:
            yield from _occurrence(day, start, end, tz)


def next_boundary(
    schedules: Iterable[Sequence[dict[str, Any]]], tz: ZoneInfo, now: datetime
) -> datetime | None:
    """The first instant after `now` at which any of the windows opens or closes, or None
    when there are no windows (nothing changes with time)."""
    windows = {
        (tuple(window["days"]), window["start"], window["end"])
        for schedule in schedules
        for window in schedule
    }
    today = now.astimezone(tz).date()
    found: datetime | None = None
    for days, start, end in windows:
        window = {"days": days, "start": start, "end": end}
        for instant in _window_boundaries(window, today, tz):
            if instant > now and (found is None or instant < found):
                found = instant
    return found
