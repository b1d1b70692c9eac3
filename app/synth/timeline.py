"""Days as integers, rendered as FHIR dates and Belgian local date-times.

The generator reasons in proleptic ordinals (``date.toordinal()``) and renders strings only when it
builds a resource; strings for the recent window are cached because most events fall there.
Local times carry the Europe/Brussels offset (+01:00, +02:00 in summer time).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache


@cache
def _summer_time(year: int) -> tuple[int, int]:
    """Ordinals of the last Sundays of March and October (EU summer time, by day)."""

    def last_sunday(month: int) -> int:
        d = date(year, month, 31)
        return (d - timedelta(days=(d.weekday() - 6) % 7)).toordinal()

    return last_sunday(3), last_sunday(10)


class Calendar:
    """The reference day ``today`` and a window of ``years`` before it."""

    __slots__ = ("today", "start", "_iso", "_offset")

    def __init__(self, today: date, years: int) -> None:
        self.today = today.toordinal()
        self.start = self.today - round(365.25 * years)
        self._iso: dict[int, str] = {}
        self._offset: dict[int, str] = {}

    def day(self, ordinal: int) -> str:
        """``YYYY-MM-DD`` for an ordinal."""
        s = self._iso.get(ordinal)
        if s is None:
            s = date.fromordinal(ordinal).isoformat()
            if ordinal >= self.start - 400:
                self._iso[ordinal] = s
        return s

    def offset(self, ordinal: int) -> str:
        """The Brussels UTC offset on that day."""
        s = self._offset.get(ordinal)
        if s is None:
            begin, end = _summer_time(date.fromordinal(ordinal).year)
            s = "+02:00" if begin <= ordinal < end else "+01:00"
            self._offset[ordinal] = s
        return s

    def instant(self, ordinal: int, minute: int) -> str:
        """A local date-time with offset, ``minute`` counted from midnight (0-1439)."""
        return f"{self.day(ordinal)}T{minute // 60:02d}:{minute % 60:02d}:00{self.offset(ordinal)}"


def weekday(ordinal: int) -> int:
    """Monday 0 ... Sunday 6, as ``date.weekday()``."""
    return (ordinal + 6) % 7
