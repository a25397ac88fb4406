"""The bar schema and its validation: the one gate every bar passes before Tradewind
stores or computes on it.

A bar frame has the columns of `core.types.BAR_COLUMNS`: `symbol` (str), `timestamp`
(datetime64[ns, UTC]), `open, high, low, close, volume` (float64), sorted by
(symbol, timestamp) and unique on that pair.

Conventions decided here, once, for every source:

- Timestamps are tz-aware UTC. A value without an offset is *naive* and rejected, except
  a date-only value (no time of day, or exactly 00:00): that is a session date, the
  usual shape of daily CSV/Yahoo/Kaggle exports.
- Daily (`1Day`) bars are stamped like Alpaca stamps them: the session date at midnight
  New York time, converted to UTC (04:00Z in summer, 05:00Z in winter). A daily
  timestamp at exactly 00:00 UTC is read as that UTC date; any other daily timestamp
  is read as its New York calendar date (`daily_bar_timestamps`).
- Row numbers in messages are 0-based positions in the frame as given.
- Order is judged within a symbol only: the order of the symbols' blocks (files often
  list AAPL before AAP) is not a problem; the result is always sorted.
- Extra columns (such as `adj_close`) are dropped.
- open/close may exceed [low, high] by a relative 1e-9 (float noise of adjusted
  exports) before it counts as a bad bar.
- Time bounds (`time_bound`) are inclusive; a bare date means the whole New York day.

`validate_bars(frame, where=..., repair=False)` raises `BarValidationError` (a
`DataValidationError`) naming every kind of problem with its column, symbol,
timestamp and row (the first few of each kind, plus counts; `.problems` holds them
all). With `repair=True` it drops or fixes the bad rows instead and returns one
`BarRepair` per row touched, saying what was done and why:

| problem | repair |
|---|---|
| missing symbol, unparseable or missing timestamp | row dropped |
| naive timestamp (time of day without offset) | assumed UTC |
| open/high/low missing while close is known | filled from open/close (a flat bar) |
| close missing, unparseable number | row dropped |
| volume missing | set to 0 |
| price <= 0, high < low, open/close outside [low, high], volume < 0 | row dropped |
| duplicate (symbol, timestamp) | the last occurrence is kept |
| timestamps out of order within a symbol | rows sorted |

Bars that are internally consistent are never dropped for their level: a one-bar move
beyond `jump_threshold` (default 40%, symmetric in log terms) only raises a `BarWarning`
(`kind="spike"` when the next bar returns to the old level, the signature of a bad
print; `kind="jump"` otherwise, e.g. a spin-off), so genuine jumps survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from core.errors import DataValidationError
from core.types import BAR_COLUMNS, Bar
from core.utc import utc_timestamp

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
TIMEFRAMES: tuple[str, ...] = ("1Min", "5Min", "15Min", "1Hour", "1Day")
DAILY = "1Day"
MARKET_TIMEZONE = "America/New_York"
EXAMPLES_PER_KIND = 3
_TOLERANCE = 1e-9  # relative: float noise of adjusted exports is not a bad bar
_OFFSET_PATTERN = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$"


@dataclass(frozen=True, slots=True)
class BarProblem:
    """One bad cell or row found by validation."""

    kind: str
    column: str
    row: int
    symbol: str | None
    timestamp: str | None
    detail: str = ""

    def __str__(self) -> str:
        place = f"row {self.row}"
        if self.symbol:
            place += f" {self.symbol}"
        if self.timestamp:
            place += f" {self.timestamp}"
        return f"{place}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class BarRepair:
    """What `repair=True` did to one input row, and why."""

    row: int
    symbol: str | None
    timestamp: str | None
    action: str  # dropped | filled | assumed_utc | deduplicated | sorted
    reason: str

    def __str__(self) -> str:
        who = " ".join(part for part in (self.symbol, self.timestamp) if part)
        return f"row {self.row} {who}: {self.action} — {self.reason}"


@dataclass(frozen=True, slots=True)
class BarWarning:
    """Something suspicious that was kept (validation never drops a consistent bar)."""

    kind: str  # spike | jump
    symbol: str
    timestamp: str
    detail: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.timestamp}: {self.kind} — {self.detail}"


@dataclass(frozen=True)
class BarCheck:
    """A clean bar frame plus what repair touched and what looks suspicious."""

    bars: pd.DataFrame
    repairs: list[BarRepair] = field(default_factory=list)
    warnings: list[BarWarning] = field(default_factory=list)

    def select(
        self,
        symbols: list[str],
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> BarCheck:
        """The bars of `symbols` between inclusive bounds (`time_bound`), with the
        repairs and warnings that concern those symbols and that window."""
        bars = self.bars
        keep = bars["symbol"].isin(symbols).to_numpy()
        lower, upper = time_bound(start), time_bound(end, end=True)
        if lower is not None:
            keep &= (bars["timestamp"] >= lower).to_numpy()
        if upper is not None:
            keep &= (bars["timestamp"] <= upper).to_numpy()
        chosen = set(symbols)

        def inside(stamp: str | None) -> bool:
            """A row without a readable time stays listed: nothing says it is outside."""
            if stamp is None:
                return True
            try:
                moment = pd.Timestamp(stamp)
            except ValueError:
                return True
            if moment.tzinfo is None:
                moment = moment.tz_localize("UTC")
            return (lower is None or moment >= lower) and (upper is None or moment <= upper)

        return BarCheck(
            bars=bars[keep].reset_index(drop=True),
            repairs=[r for r in self.repairs if r.symbol in chosen and inside(r.timestamp)],
            warnings=[w for w in self.warnings if w.symbol in chosen and inside(w.timestamp)],
        )


class BarValidationError(DataValidationError):
    """Bars failed validation; `problems` lists every one of them."""

    def __init__(self, message: str, *, where: str | None, problems: list[BarProblem]) -> None:
        super().__init__(message, where=where)
        self.problems = problems


BarInput: TypeAlias = Bar | pd.Series | pd.DataFrame | Mapping[str, Any]


def as_bar_frame(bars: BarInput) -> pd.DataFrame:
    """A bar frame from a frame (as is), a `Bar`, a row or a mapping."""
    if isinstance(bars, pd.DataFrame):
        return bars
    if isinstance(bars, Bar):
        return pd.DataFrame([{c: getattr(bars, c) for c in BAR_COLUMNS}])
    if isinstance(bars, pd.Series):
        return bars.to_frame().T
    return pd.DataFrame([dict(bars)])


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows and the right dtypes."""
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=object),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{name: pd.Series([], dtype="float64") for name in VALUE_COLUMNS},
        }
    )


def timeframe_step(timeframe: str) -> timedelta:
    """The spacing of a timeframe's bars (1Day: one day; sessions skip weekends)."""
    check_timeframe(timeframe)
    if timeframe == DAILY:
        return timedelta(days=1)
    if timeframe == "1Hour":
        return timedelta(hours=1)
    return timedelta(minutes=int(timeframe.removesuffix("Min")))


def timeframe_of(timestamps: pd.Series) -> str:
    """The timeframe whose step is the median spacing of `timestamps` (1Day when the
    spacing is a day or more, or unknown)."""
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):  # already times: nothing to parse
        timestamps = pd.to_datetime(timestamps, utc=True)
    unique = pd.Series(timestamps.unique()).sort_values()
    spacing = unique.diff().median() if len(unique) > 1 else pd.NaT
    if pd.isna(spacing) or spacing >= pd.Timedelta(hours=20):
        return DAILY
    for timeframe in TIMEFRAMES:
        if timeframe != DAILY and spacing <= pd.Timedelta(timeframe_step(timeframe)):
            return timeframe
    return "1Hour"


def bars_at_timeframe(bars: pd.DataFrame, timeframe: str, *, where: str = "bars") -> pd.DataFrame:
    """`bars` as bars of `timeframe`: as they are when that is their own spacing
    (`timeframe_of`), aggregated when it is a coarser intraday one (5Min from 1Min: each
    bar stamped with its start, first open, highest high, lowest low, last close, summed
    volume); finer bars, or daily from intraday, cannot be made and are refused."""
    check_timeframe(timeframe)
    if bars.empty:
        return bars
    native = timeframe_of(bars["timestamp"])
    if native == timeframe:
        return bars
    step, native_step = timeframe_step(timeframe), timeframe_step(native)
    if timeframe == DAILY or native == DAILY or step < native_step or step % native_step:
        raise DataValidationError(
            f"the bars are {native} bars; {timeframe} bars cannot be made from them "
            f"(only coarser intraday ones, e.g. 5Min or 15Min from 1Min)",
            where=where,
        )
    return aggregate_bars(bars, pd.Timedelta(step))


def aggregate_bars(bars: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """Bars of `step` from finer ones, per symbol, each stamped with its start (Alpaca's
    way): first open, highest high, lowest low, last close, summed volume."""
    if bars.empty:
        return bars
    bucket = bars["timestamp"].dt.floor(step)
    grouped = bars.groupby([bars["symbol"], bucket.rename("bucket")], sort=True)
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    ).reset_index()
    return out.rename(columns={"bucket": "timestamp"})[list(BAR_COLUMNS)]


def check_timeframe(timeframe: str) -> str:
    if timeframe not in TIMEFRAMES:
        raise DataValidationError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}",
            where="timeframe",
        )
    return timeframe


def daily_bar_timestamps(timestamps: pd.Series) -> pd.Series:
    """Stamp daily bars with their session date at midnight New York, in UTC (Alpaca's
    convention). 00:00 UTC means "this UTC date"; anything else is read in New York."""
    utc = pd.to_datetime(timestamps, utc=True)
    naive_utc = utc.dt.tz_localize(None)
    utc_dates = naive_utc.dt.normalize()
    new_york_dates = utc.dt.tz_convert(MARKET_TIMEZONE).dt.tz_localize(None).dt.normalize()
    dates = utc_dates.where(naive_utc == utc_dates, new_york_dates)
    return dates.dt.tz_localize(MARKET_TIMEZONE).dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def time_bound(value: datetime | date | str | None, *, end: bool = False) -> pd.Timestamp | None:
    """A time bound in UTC. A bare date (`date`, or a string without a time) means the
    whole New York calendar day: from its midnight, or up to its last nanosecond."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"cannot read {value!r} as a time", where="time bound") from exc
    is_date = (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value) is not None
    )
    if is_date:
        day = stamp.tz_localize(None).normalize() + pd.Timedelta(days=int(end))
        edge = day.tz_localize(MARKET_TIMEZONE).tz_convert("UTC")
        return edge - pd.Timedelta(1, "ns") if end else edge
    return utc_timestamp(stamp)


def _to_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = pd.to_datetime(values, utc=True)
    else:
        try:
            stamps = pd.to_datetime(values, utc=True, format="ISO8601")
        except ValueError:
            stamps = pd.to_datetime(values, utc=True, format="mixed")
    return stamps.astype("datetime64[ns, UTC]")


def normalize_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce to the bar schema (dtypes, UTC, sort order) without judging the values.
    Naive timestamps are taken as UTC; use `validate_bars` to have them refused."""
    missing = [name for name in BAR_COLUMNS if name not in frame.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}", where="bars")
    out = pd.DataFrame(
        {
            "symbol": frame["symbol"].astype(str).to_numpy(dtype=object),
            "timestamp": _to_utc(frame["timestamp"]).array,
            **{name: frame[name].to_numpy(dtype="float64") for name in VALUE_COLUMNS},
        }
    )
    return out.sort_values(["symbol", "timestamp"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- validation


@dataclass
class _Finding:
    kind: str
    column: str
    mask: np.ndarray
    detail: Callable[[int], str]
    action: str  # how repair handles it: drop | fill | assume_utc


@dataclass
class _Context:
    symbols: np.ndarray  # str, "" when missing
    stamps: pd.Series  # datetime64[ns, UTC], NaT when unparseable
    values: dict[str, np.ndarray]  # float64 per value column, NaN when missing
    raw: pd.DataFrame

    def symbol(self, row: int) -> str | None:
        return str(self.symbols[row]) or None

    def stamp(self, row: int) -> str | None:
        value = self.stamps.iloc[row]
        return None if pd.isna(value) else value.isoformat()


def validate_bars(
    frame: pd.DataFrame,
    *,
    where: str,
    repair: bool = False,
    timeframe: str | None = None,
    jump_threshold: float = 0.40,
) -> BarCheck:
    """Check a frame against the bar schema; see the module docstring for every rule.
    `timeframe="1Day"` also stamps daily bars by their session (`daily_bar_timestamps`)
    before duplicates and order are judged."""
    missing = [name for name in BAR_COLUMNS if name not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {', '.join(missing)}; the columns found are "
            f"{', '.join(map(str, frame.columns)) or 'none'}; expected {', '.join(BAR_COLUMNS)}",
            where=where,
        )
    raw = frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)
    context, findings = _cell_findings(raw, timeframe)
    if repair:
        return _repair(context, findings, jump_threshold)
    findings += _order_findings(context, ~_any(findings, len(raw)))
    problems = [
        _problem(finding, int(row), context)
        for finding in findings
        for row in np.flatnonzero(finding.mask)
    ]
    if problems:
        raise BarValidationError(_describe(findings, context), where=where, problems=problems)
    bars = _assemble(context, np.ones(len(raw), dtype=bool))
    return BarCheck(bars=bars, repairs=[], warnings=find_jumps(bars, jump_threshold))


def _any(findings: list[_Finding], rows: int, actions: tuple[str, ...] | None = None) -> np.ndarray:
    mask = np.zeros(rows, dtype=bool)
    for finding in findings:
        if actions is None or finding.action in actions:
            mask |= finding.mask
    return mask


def _parse_timestamps(column: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(UTC timestamps with NaT, unparseable mask, naive mask)."""
    present = column.notna().to_numpy()
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        stamps = column.dt.tz_convert("UTC")
        naive = np.zeros(len(column), dtype=bool)
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        naive = (present & (column != column.dt.normalize())).to_numpy()
        stamps = column.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        # Bare numbers have no unit and no zone: refuse rather than guess.
        stamps = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
        return stamps, present, np.zeros(len(column), dtype=bool)
    else:
        text = column.astype("string").str.strip()
        stamps = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = stamps.isna() & text.notna()
        if retry.any():
            stamps.loc[retry] = pd.to_datetime(
                text[retry].astype(object), utc=True, errors="coerce", format="mixed"
            )
        has_offset = text.str.contains(_OFFSET_PATTERN, regex=True, na=False).to_numpy(bool)
        parsed = stamps.notna().to_numpy()
        at_midnight = (stamps == stamps.dt.normalize()).to_numpy(bool)
        naive = parsed & ~has_offset & ~at_midnight
    stamps = stamps.astype("datetime64[ns, UTC]")
    unparseable = present & stamps.isna().to_numpy()
    return stamps, unparseable, naive


def _cell_findings(raw: pd.DataFrame, timeframe: str | None) -> tuple[_Context, list[_Finding]]:
    symbol_column = raw["symbol"]
    # Clean the few distinct names, not every row.
    codes, names = pd.factorize(symbol_column, use_na_sentinel=True)
    cleaned = np.array([str(name).strip() for name in names] + [""], dtype=object)
    symbols = cleaned[codes]  # code -1 (missing) picks the trailing ""
    symbol_missing = symbols == ""

    stamps, unparseable, naive = _parse_timestamps(raw["timestamp"])
    stamp_missing = raw["timestamp"].isna().to_numpy()
    if timeframe == DAILY:
        stamps = daily_bar_timestamps(stamps)

    values: dict[str, np.ndarray] = {}
    findings: list[_Finding] = [
        _Finding("missing symbol", "symbol", symbol_missing, lambda _: "", "drop"),
        _Finding("missing timestamp", "timestamp", stamp_missing, lambda _: "", "drop"),
        _Finding(
            "unparseable timestamp",
            "timestamp",
            unparseable,
            _show_value(raw["timestamp"]),
            "drop",
        ),
        _Finding(
            "naive timestamp (no UTC offset)",
            "timestamp",
            naive,
            _show_value(raw["timestamp"]),
            "assume_utc",
        ),
    ]
    context = _Context(symbols=symbols, stamps=stamps, values=values, raw=raw)
    for name in VALUE_COLUMNS:
        original = raw[name]
        numbers = pd.to_numeric(original, errors="coerce").astype("float64").to_numpy()
        bad_number = original.notna().to_numpy() & np.isnan(numbers)
        infinite = np.isinf(numbers)
        numbers[infinite] = np.nan
        values[name] = numbers
        findings.append(
            _Finding(
                "unparseable number",
                name,
                bad_number | infinite,
                _show_value(raw[name]),
                "drop",
            )
        )
        action = "drop" if name == "close" else "fill"
        findings.append(
            _Finding("missing value (NaN)", name, original.isna().to_numpy(), lambda _: "", action)
        )
    findings += _value_findings(values)
    return context, findings


def _show_value(column: pd.Series) -> Callable[[int], str]:
    return lambda row: f"value {column.iloc[row]!r}"


def _show_number(name: str, numbers: np.ndarray) -> Callable[[int], str]:
    return lambda row: f"{name}={numbers[row]:g}"


def _show_range(
    name: str, price: np.ndarray, low: np.ndarray, high: np.ndarray
) -> Callable[[int], str]:
    return lambda row: f"{name}={price[row]:g} low={low[row]:g} high={high[row]:g}"


def _value_findings(values: dict[str, np.ndarray]) -> list[_Finding]:
    """Checks on the numbers themselves; NaN compares False, so gaps are not double-counted."""
    o, h, lo, c, v = (values[name] for name in VALUE_COLUMNS)
    findings = [
        _Finding(
            "non-positive price",
            name,
            values[name] <= 0,
            _show_number(name, values[name]),
            "drop",
        )
        for name in PRICE_COLUMNS
    ]
    findings.append(
        _Finding("high below low", "high", h < lo, lambda r: f"high={h[r]:g} low={lo[r]:g}", "drop")
    )
    for name, price in (("open", o), ("close", c)):
        findings.append(
            _Finding(
                "price outside [low, high]",
                name,
                (price < lo - _TOLERANCE * np.abs(lo)) | (price > h + _TOLERANCE * np.abs(h)),
                _show_range(name, price, lo, h),
                "drop",
            )
        )
    findings.append(
        _Finding("negative volume", "volume", v < 0, lambda r: f"volume={v[r]:g}", "drop")
    )
    return findings


def _order_findings(context: _Context, usable: np.ndarray) -> list[_Finding]:
    """Duplicates and out-of-order rows among the rows that have a symbol and a time."""
    usable = usable & context.stamps.notna().to_numpy() & (context.symbols != "")
    rows = np.flatnonzero(usable)
    keys = pd.DataFrame(
        {
            "symbol": context.symbols[rows],
            "ts": _nanoseconds(context.stamps)[rows],
            "row": rows,
        }
    )
    duplicate = np.zeros(len(context.symbols), dtype=bool)
    unsorted = np.zeros(len(context.symbols), dtype=bool)
    kept_row = np.full(len(context.symbols), -1)
    if len(keys):
        later = keys.duplicated(["symbol", "ts"], keep="last").to_numpy()
        last = keys.groupby(["symbol", "ts"], sort=False)["row"].transform("last").to_numpy()
        duplicate[rows[later]] = True
        kept_row[rows] = last
        previous_max = keys.groupby("symbol", sort=False)["ts"].cummax()
        previous_max = previous_max.groupby(keys["symbol"], sort=False).shift()
        unsorted[rows[(keys["ts"] < previous_max).to_numpy()]] = True
    return [
        _Finding(
            "duplicate (symbol, timestamp)",
            "timestamp",
            duplicate,
            lambda r: f"row {kept_row[r]} has the same key",
            "deduplicate",
        ),
        _Finding(
            "timestamp out of order",
            "timestamp",
            unsorted,
            lambda _: "earlier than a previous row",
            "sort",
        ),
    ]


def _nanoseconds(stamps: pd.Series) -> np.ndarray:
    # Through the int64 view: converting tz-aware values to numpy makes one object per row.
    return np.asarray(stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")).view("int64")


def _problem(finding: _Finding, row: int, context: _Context) -> BarProblem:
    return BarProblem(
        finding.kind,
        finding.column,
        row,
        context.symbol(row),
        context.stamp(row),
        finding.detail(row),
    )


def _describe(findings: list[_Finding], context: _Context) -> str:
    bad_rows = int(_any(findings, len(context.symbols)).sum())
    total = sum(int(f.mask.sum()) for f in findings)
    lines = [f"{total} problem(s) in {bad_rows} of {len(context.symbols)} row(s)"]
    for finding in findings:
        hits = np.flatnonzero(finding.mask)
        if not len(hits):
            continue
        examples = "; ".join(
            str(_problem(finding, int(row), context)) for row in hits[:EXAMPLES_PER_KIND]
        )
        more = f" and {len(hits) - EXAMPLES_PER_KIND} more" if len(hits) > EXAMPLES_PER_KIND else ""
        lines.append(f"  {finding.kind} in column {finding.column}: {len(hits)} — {examples}{more}")
    return "\n".join(lines)


def _assemble(context: _Context, keep: np.ndarray) -> pd.DataFrame:
    bars = pd.DataFrame(
        {
            "symbol": context.symbols[keep],
            "timestamp": context.stamps.array[keep],
            **{name: context.values[name][keep] for name in VALUE_COLUMNS},
        }
    )
    bars["timestamp"] = bars["timestamp"].astype("datetime64[ns, UTC]")
    return bars.sort_values(["symbol", "timestamp"], kind="stable", ignore_index=True)


def _repair(context: _Context, findings: list[_Finding], jump_threshold: float) -> BarCheck:
    rows = len(context.symbols)
    reasons: dict[int, list[str]] = {}
    actions: dict[int, str] = {}

    def touch(row: int, action: str, reason: str) -> None:
        if actions.get(row) == "dropped" and action != "dropped":
            return
        if action == "dropped" and actions.get(row) != "dropped":
            reasons[row] = []
        actions[row] = action
        reasons.setdefault(row, []).append(reason)

    def note(finding: _Finding, row: int) -> str:
        detail = finding.detail(row)
        return f"{finding.kind} in {finding.column}" + (f" ({detail})" if detail else "")

    # 1. Fill what can be filled: a missing open/high/low next to a known close is a flat bar.
    values = context.values
    o, h, lo, c, v = (values[name] for name in VALUE_COLUMNS)
    has_close = ~np.isnan(c)
    for finding in findings:
        if finding.action != "fill":
            continue
        fillable = finding.mask if finding.column == "volume" else finding.mask & has_close
        for row in np.flatnonzero(fillable):
            touch(int(row), "filled", f"missing {finding.column}")
    open_missing = np.isnan(o) & has_close
    o[open_missing] = c[open_missing]
    high_missing = np.isnan(h) & has_close
    h[high_missing] = np.fmax(o, c)[high_missing]
    low_missing = np.isnan(lo) & has_close
    lo[low_missing] = np.fmin(o, c)[low_missing]
    v[np.isnan(v)] = 0.0

    # 2. Naive timestamps are assumed to be UTC (they already parsed as such).
    for finding in findings:
        if finding.action == "assume_utc":
            for row in np.flatnonzero(finding.mask):
                touch(int(row), "assumed_utc", note(finding, int(row)))

    # 3. Re-judge the (filled) numbers and drop what is still wrong.
    # (The value checks are re-run on the filled numbers.)
    drop_findings = [f for f in findings if f.action == "drop" and f.kind not in _VALUE_KINDS]
    drop_findings += _value_findings(values)
    dropped = np.zeros(rows, dtype=bool)
    for finding in drop_findings:
        for row in np.flatnonzero(finding.mask):
            touch(int(row), "dropped", note(finding, int(row)))
        dropped |= finding.mask

    # 4. Duplicates (keep the last) and order, among the survivors.
    order = _order_findings(context, ~dropped)
    duplicate, unsorted = order[0], order[1]
    for row in np.flatnonzero(duplicate.mask):
        touch(int(row), "dropped", f"{note(duplicate, int(row))}; the last occurrence is kept")
    dropped |= duplicate.mask
    for row in np.flatnonzero(unsorted.mask & ~dropped):
        touch(int(row), "sorted", "timestamp earlier than a previous row of the same symbol")

    repairs = [
        BarRepair(
            row, context.symbol(row), context.stamp(row), actions[row], "; ".join(reasons[row])
        )
        for row in sorted(actions)
    ]
    bars = _assemble(context, ~dropped)
    return BarCheck(bars=bars, repairs=repairs, warnings=find_jumps(bars, jump_threshold))


_VALUE_KINDS = frozenset(
    {"non-positive price", "high below low", "price outside [low, high]", "negative volume"}
)


def find_jumps(bars: pd.DataFrame, threshold: float = 0.40) -> list[BarWarning]:
    """One-bar close moves beyond `threshold` (up more than +threshold, or down more than
    the same distance in log terms). A move the next bar undoes is a `spike`; one that
    stays is a `jump`. Warnings only: nothing is dropped."""
    if len(bars) < 2 or threshold <= 0:
        return []
    limit = float(np.log1p(threshold))
    log_close = np.log(bars["close"].to_numpy(dtype="float64"))
    same_symbol = bars["symbol"].to_numpy()[1:] == bars["symbol"].to_numpy()[:-1]
    move = np.full(len(bars), np.nan)
    move[1:] = np.where(same_symbol, log_close[1:] - log_close[:-1], np.nan)
    following = np.append(move[1:], np.nan)
    warnings = []
    spike_row = -2  # the bar after a spike only undoes it: no second warning
    for row in np.flatnonzero(np.abs(np.nan_to_num(move)) > limit):
        if row == spike_row + 1:
            continue
        undone = abs(following[row]) > limit and np.sign(following[row]) != np.sign(move[row])
        undone = undone and abs(move[row] + following[row]) <= limit
        change = float(np.expm1(move[row]))
        kind = "spike" if undone else "jump"
        if undone:
            spike_row = int(row)
        detail = f"close moved {change:+.1%} in one bar"
        if undone:
            detail += " and the next bar undid it (a bad print?)"
        warnings.append(
            BarWarning(
                kind=kind,
                symbol=str(bars["symbol"].iloc[row]),
                timestamp=bars["timestamp"].iloc[row].isoformat(),
                detail=detail,
            )
        )
    return warnings
