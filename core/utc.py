"""UTC time values: the one place a time without a zone becomes UTC, and a time in any
zone is converted to UTC.

Convention: a value without an offset (a naive `datetime`, `"2015-06-01"`,
`"2015-06-01 10:00"`) is taken as UTC, not as local or exchange time; a value with one is
converted. Bar-specific rules (session dates, New York day bounds) are in `core.bars`;
clocks refuse naive times outright (`require_aware`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias, overload

import pandas as pd

from core.errors import DataValidationError

TimeLike: TypeAlias = str | datetime | pd.Timestamp


def utc_now() -> datetime:
    """The machine's time, tz-aware UTC (for wall-clock stamps; engines use a `Clock`)."""
    return datetime.now(UTC)


@overload
def utc_timestamp(value: None) -> None: ...


@overload
def utc_timestamp(value: TimeLike) -> pd.Timestamp: ...


def utc_timestamp(value: TimeLike | None) -> pd.Timestamp | None:
    """`value` as a tz-aware UTC `pd.Timestamp` (naive means UTC); None stays None."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@overload
def utc_datetime(value: None) -> None: ...


@overload
def utc_datetime(value: TimeLike) -> datetime: ...


def utc_datetime(value: TimeLike | None) -> datetime | None:
    """`value` as a tz-aware UTC `datetime` (naive means UTC); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):  # a pd.Timestamp stays one
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc_timestamp(value).to_pydatetime()


def require_aware(moment: datetime, *, where: str) -> None:
    """Refuse a naive time where guessing its zone would be a silent error."""
    if moment.tzinfo is None:
        raise DataValidationError(
            f"timestamp {moment.isoformat()} has no time zone; Tradewind needs tz-aware UTC",
            where=where,
        )
