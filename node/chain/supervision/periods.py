"""Periods of block time: UTC calendar months, quarters or years, and the whole chain."""

from __future__ import annotations

import datetime as dt

GRANULARITIES = ("month", "quarter", "year", "all")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
UTC = dt.UTC


def _utc(time_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_ms / 1000, UTC)


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_time(time_ms: int) -> str:
    return _utc(time_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def period_bounds(time_ms: int, granularity: str) -> tuple[str, int, int]:
    """(label, start ms, end ms exclusive) of the period holding `time_ms`."""
    moment = _utc(time_ms)
    if granularity == "all":
        return "all", 0, 2**63
    if granularity == "year":
        first, months, label = 1, 12, f"{moment.year}"
    elif granularity == "quarter":
        quarter = (moment.month - 1) // 3
        first, months, label = quarter * 3 + 1, 3, f"{moment.year}-Q{quarter + 1}"
    elif granularity == "month":
        first, months, label = moment.month, 1, f"{moment.year}-{moment.month:02d}"
    else:
        raise ValueError(f"unknown period {granularity!r}")
    start = dt.datetime(moment.year, first, 1, tzinfo=UTC)
    year, month = divmod(first - 1 + months, 12)
    end = dt.datetime(moment.year + year, month + 1, 1, tzinfo=UTC)
    return label, _ms(start), _ms(end)


def parse_date(text: str) -> int:
    """A date (YYYY-MM-DD) or ISO 8601 time; without a zone it is UTC. -> ms."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _ms(moment)
