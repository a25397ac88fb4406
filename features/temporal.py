"""Temporal features on the exchange calendar (`exchange_calendars`, XNYS by default),
in exchange time: time-of-day bucket, day of week, session (pre/regular/post), minutes
since the open and to the close, trading sessions to the month end and since its start.

Conventions: an intraday bar is stamped at its start (Alpaca's convention), so a bar at
the open is regular and a bar at the close is post-market. A daily bar stands for its
whole session and is known at the close: it is `regular`, in the last bucket, with
`minutes_since_open` equal to the session's length. Daily bars are placed on their UTC
date (sources stamp a session at 00:00, 04:00/05:00 or at the close, all that date).
Holidays and early closes come from the exchange calendar (`core.calendar`), built for
whole years so a truncated history sees the same sessions ahead (no accidental lookahead)."""

from __future__ import annotations

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.calendar import calendar_for_years
from features.catalogue import feature_names

TEMPORAL_COLUMNS: tuple[str, ...] = tuple(feature_names("temporal"))
EXTENDED_HOURS_START = pd.Timedelta(hours=4)  # 04:00 exchange time
EXTENDED_HOURS_END = pd.Timedelta(hours=20)  # 20:00 exchange time


def _calendar_for(timestamps: pd.Series, name: str) -> xcals.ExchangeCalendar:
    first = int(timestamps.min().year) - 1
    last = int(timestamps.max().year) + 1
    return calendar_for_years(name, first, last)


def session_dates(timestamps: pd.Series, *, daily: bool, tz: str) -> pd.Series:
    """Tz-naive date (midnight) of the session each bar belongs to."""
    if daily:
        return timestamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return timestamps.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def decision_times(
    timestamps: pd.Series, *, daily: bool, calendar: str = "XNYS"
) -> pd.Series:
    """When a bar's features are known: its close for daily bars (the session close from
    the calendar, end of the UTC day when the date is not a session), the bar's own time
    for intraday bars."""
    if not daily or len(timestamps) == 0:
        return timestamps
    cal = _calendar_for(timestamps, calendar)
    unique = pd.Series(timestamps.unique()).astype("datetime64[ns, UTC]")
    dates = session_dates(unique, daily=True, tz=str(cal.tz))
    closes = cal.schedule["close"].reindex(dates.to_numpy())
    fallback = unique.dt.floor("D") + pd.Timedelta(hours=23, minutes=59)
    close_values = closes.to_numpy(dtype="datetime64[ns]")
    fallback_values = fallback.to_numpy(dtype="datetime64[ns]")
    chosen = np.where(np.isnat(close_values), fallback_values, close_values)
    known = pd.Series(chosen, index=pd.DatetimeIndex(unique))
    values = known.reindex(pd.DatetimeIndex(timestamps)).to_numpy()
    return pd.Series(values, index=timestamps.index).dt.tz_localize("UTC")


def _unique_temporal(stamps: pd.Series, daily: bool, calendar: str) -> pd.DataFrame:
    cal = _calendar_for(stamps, calendar)
    tz = str(cal.tz)
    dates = session_dates(stamps, daily=daily, tz=tz)
    schedule = cal.schedule
    sessions = schedule.index.to_numpy(dtype="datetime64[ns]")
    date_values = dates.to_numpy(dtype="datetime64[ns]")
    is_session = np.isin(date_values, sessions)
    opens = schedule["open"].reindex(date_values)
    closes = schedule["close"].reindex(date_values)
    open_ns = opens.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    close_ns = closes.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    minute = 60_000_000_000
    if daily:
        since_open = np.where(is_session, (close_ns - open_ns) / minute, np.nan)
        to_close = np.where(is_session, 0.0, np.nan)
        session = np.where(is_session, 1, -1)
    else:
        stamp_ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        since_open = np.where(is_session, (stamp_ns - open_ns) / minute, np.nan)
        to_close = np.where(is_session, (close_ns - stamp_ns) / minute, np.nan)
        local = stamps.dt.tz_convert(tz).dt.tz_localize(None)
        clock = (local - local.dt.normalize()).to_numpy()
        extended = (clock >= EXTENDED_HOURS_START.to_timedelta64()) & (
            clock < EXTENDED_HOURS_END.to_timedelta64()
        )
        regular = is_session & (stamp_ns >= open_ns) & (stamp_ns < close_ns)
        pre = is_session & extended & (stamp_ns < open_ns)
        post = is_session & extended & (stamp_ns >= close_ns)
        session = np.select([regular, pre, post], [1, 0, 2], default=-1)
        since_open = np.where(session >= 0, since_open, np.nan)
        to_close = np.where(session >= 0, to_close, np.nan)
    with np.errstate(invalid="ignore"):
        bucket = np.select(
            [
                session == 0,
                session == 2,
                session == -1,
                to_close <= 30,
                since_open < 30,
                since_open < 120,
                since_open < 270,
            ],
            [0, 6, -1, 5, 1, 2, 3],
            default=4,
        )
    month_start = dates.dt.to_period("M").dt.start_time.to_numpy(dtype="datetime64[ns]")
    next_month = (dates.dt.to_period("M") + 1).dt.start_time.to_numpy(dtype="datetime64[ns]")
    at_or_before = np.searchsorted(sessions, date_values, side="right")
    before = np.searchsorted(sessions, date_values, side="left")
    to_month_end = np.searchsorted(sessions, next_month, side="left") - at_or_before
    since_month_start = before - np.searchsorted(sessions, month_start, side="left")
    return pd.DataFrame(
        {
            "tod_bucket": bucket.astype(np.float64),
            "dow": dates.dt.dayofweek.to_numpy(dtype=np.float64),
            "session_code": session.astype(np.float64),
            "session_is_regular": (session == 1).astype(np.float64),
            "minutes_since_open": since_open.astype(np.float64),
            "minutes_to_close": to_close.astype(np.float64),
            "days_to_month_end": to_month_end.astype(np.float64),
            "days_since_month_start": since_month_start.astype(np.float64),
        },
        index=stamps.index,
    )


def temporal_features(
    timestamps: pd.Series, *, daily: bool, calendar: str = "XNYS"
) -> pd.DataFrame:
    """Temporal columns for each timestamp (same index as the input). Computed once per
    distinct timestamp."""
    if len(timestamps) == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in TEMPORAL_COLUMNS})
    stamps = timestamps
    if stamps.dtype != "datetime64[ns, UTC]":  # times already need no parsing
        stamps = pd.to_datetime(timestamps, utc=True).astype("datetime64[ns, UTC]")
    codes, distinct = pd.factorize(stamps, sort=False)
    if (codes < 0).any():  # a missing time: the reindex gives its row NaN
        unique = pd.Series(stamps.unique()).astype("datetime64[ns, UTC]")
        table = _unique_temporal(unique, daily, calendar)
        table.index = pd.DatetimeIndex(unique)
        out = table.reindex(pd.DatetimeIndex(stamps))
        out.index = timestamps.index
        return out.loc[:, list(TEMPORAL_COLUMNS)]
    # Each row takes its time's row of the table (what a reindex on the times does).
    table = _unique_temporal(pd.Series(distinct).astype("datetime64[ns, UTC]"), daily, calendar)
    return pd.DataFrame(
        {name: table[name].to_numpy()[codes] for name in TEMPORAL_COLUMNS},
        index=timestamps.index,
    )
