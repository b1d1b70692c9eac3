"""Measurement periods: parsing `periodStart`/`periodEnd` (or `--period 2025`) and shifting."""

from __future__ import annotations

import calendar
from datetime import date

from app.fhir.errors import FhirError


def _parse(value: str, end: bool) -> date:
    try:
        parts = [int(p) for p in value[:10].split("-")]
    except ValueError:
        raise FhirError.of(400, "invalid", f"'{value}' is not a date") from None
    try:
        if len(parts) == 1:
            return date(parts[0], 12, 31) if end else date(parts[0], 1, 1)
        if len(parts) == 2:
            last = calendar.monthrange(parts[0], parts[1])[1]
            return date(parts[0], parts[1], last if end else 1)
        return date(parts[0], parts[1], parts[2])
    except ValueError as exc:
        raise FhirError.of(400, "invalid", f"'{value}' is not a date: {exc}") from None


def measurement_period(start: str | None, end: str | None) -> tuple[str, str]:
    """(periodStart, periodEnd) as ISO dates; both are required, start <= end."""
    if not start or not end:
        raise FhirError.of(400, "required", "periodStart and periodEnd are required")
    s, e = _parse(start, False), _parse(end, True)
    if s > e:
        raise FhirError.of(400, "invalid", "periodStart is after periodEnd")
    return s.isoformat(), e.isoformat()


def shift(iso: str, amount: int, unit: str) -> str:
    d = date.fromisoformat(iso)
    if unit == "days":
        return date.fromordinal(d.toordinal() + amount).isoformat()
    if unit == "weeks":
        return date.fromordinal(d.toordinal() + 7 * amount).isoformat()
    months = amount * 12 if unit == "years" else amount
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return date(year, month, day).isoformat()
