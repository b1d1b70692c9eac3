"""FHIR date, dateTime and instant values as ranges of UTC epoch microseconds.

Every FHIR date value is implicitly a range at its precision: "2024" is the whole year, "2024-03"
the month, "2024-03-05T10:00:00+01:00" one second. Search compares ranges (R4 3.1.1.4.2), so
index rows and query values are both stored as [low, high] inclusive, in microseconds since
1970-01-01T00:00:00Z. Dates without a time zone are read as UTC.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MIN_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253402300799 * 1_000_000 + 999_999  # 9999-12-31T23:59:59.999999Z

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DateError(ValueError):
    pass


def _us(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _plus(dt: datetime, delta: timedelta) -> datetime | None:
    """The end of a range, None past 9999-12-31 (the range then ends at MAX_US)."""
    try:
        return dt + delta
    except OverflowError:
        return None


@functools.lru_cache(maxsize=4096)
def date_range(value: str) -> tuple[int, int]:
    """[low, high] in epoch microseconds for a FHIR date/dateTime/instant string. Cached: the
    resources of one encounter index the same dates."""
    m = _DATE.match(value)
    if not m:
        raise DateError(f"'{value}' is not a FHIR date, dateTime or instant")
    y = int(m["y"])
    try:
        if m["m"] is None:
            low = datetime(y, 1, 1, tzinfo=UTC)
            high = datetime(y + 1, 1, 1, tzinfo=UTC) if y < 9999 else None
        elif m["d"] is None:
            mo = int(m["m"])
            low = datetime(y, mo, 1, tzinfo=UTC)
            high = _plus(low, timedelta(days=calendar.monthrange(y, mo)[1]))
        elif m["H"] is None:
            low = datetime(y, int(m["m"]), int(m["d"]), tzinfo=UTC)
            high = _plus(low, timedelta(days=1))
        else:
            tz = m["tz"]
            offset = timedelta(0)
            if tz and tz != "Z":
                sign = 1 if tz[0] == "+" else -1
                offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
            sec = int(m["S"]) if m["S"] is not None else 0
            sec = min(sec, 59)  # leap second 60
            frac = m["f"]
            micro = int((frac + "000000")[:6]) if frac else 0
            low = datetime(y, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), sec, micro,
                           tzinfo=UTC) - offset
            if frac:
                step = timedelta(microseconds=max(1, 10 ** (6 - min(len(frac), 6))))
            elif m["S"] is not None:
                step = timedelta(seconds=1)
            else:
                step = timedelta(minutes=1)
            high = _plus(low, step)
    except (ValueError, OverflowError) as exc:
        raise DateError(f"'{value}' is not a valid date: {exc}") from None
    return _us(low), (_us(high) - 1 if high is not None else MAX_US)


@functools.lru_cache(maxsize=256)
def to_instant(us: int) -> str:
    """Epoch microseconds -> FHIR instant with millisecond precision, in UTC. Cached: every
    resource of a transaction, and its response entry, carries the same instant."""
    dt = _EPOCH + timedelta(microseconds=us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_us() -> int:
    """The current instant, truncated to milliseconds (the precision of meta.lastUpdated)."""
    return _us(datetime.now(UTC)) // 1000 * 1000


def http_date(us: int) -> str:
    dt = _EPOCH + timedelta(microseconds=us)
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


def http_instant(value: str) -> int | None:
    """An HTTP date (If-Modified-Since) as epoch microseconds; None when unreadable."""
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _us(dt)
