"""Labels: what happened AFTER each signal (trade outcome) and after each index bar
(market regime). Declared apart from the features, each with its horizon in its name.

Trade labels (triple barrier, the engine's own exit rules):
- Entry at the open of the bar after the signal, plus slippage (`slippage_bps`, against
  us). Stop at `stop_loss_atr` × ATR(14) and target at `take_profit_atr` × ATR(14) from
  the entry fill, ATR taken at the signal bar. Walking the bars after entry: when a bar's
  range reaches the stop it exits there (at the bar's open if it gapped through); when it
  reaches the target it exits there (at the open if it gapped through); when both are
  reached in one bar the stop wins (we cannot know the order inside a bar — the
  pessimistic choice, as the matching engine does). Otherwise it exits at the close of
  the `max_holding_bars`-th bar (time limit). Exits pay slippage too; commission is
  `commission_per_share` on entry and exit. `won_<H>` is 1 when the return net of all
  of that is > 0. Events without `max_holding_bars` bars after entry are not labelled.
- `max_favorable_excursion_atr_<H>` / `max_adverse_excursion_atr_<H>`: best and worst
  move from the entry fill over the whole horizon (stops ignored), in ATR.
- Optimal exits, from the path over the horizon: `take_profit_atr_opt_<H>` is the MFE
  (the best price reachable within the time limit); `stop_loss_atr_opt_<H>` is the
  adverse excursion suffered BEFORE that best price was reached, plus a 0.25 ATR buffer —
  the tightest stop that would have survived to the best point. Both clipped to the
  bounds in `models.schema`.
- `max_adverse_excursion_pct_<H>`: the worst move against the position within the
  horizon as a fraction of the entry price (0.02 = 2%): the drawdown target.

Regime labels (per index bar, next `K` bars): `fwd_vol_<K>` is the annualized standard
deviation of the next K daily log returns; `fwd_trend_<K>` is |log return over the next
K bars| / (daily σ × √K), a signal-to-noise ratio of the move. K is 10 by default
(`REGIME_HORIZON`). `RegimeThresholds` is fitted on the training window only: volatile
when fwd_vol ≥ its `volatile_quantile` (70%); else trending when fwd_trend ≥ its
`trending_quantile` (60%); else calm when fwd_vol ≤ its `calm_quantile` (30%); else
ranging. All four classes occur by construction (about 30/25/30/15% in-window).

Sample weights (`uniqueness_<H>`): a trade's average uniqueness over the bars it is held
(entry to exit), 1 / the number of labelled trades of the same symbol held on each bar,
so overlapping trades of one symbol do not count as independent evidence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DataValidationError
from core.settings import Settings
from models.schema import REGIME_COLUMNS, STOP_LOSS_ATR_RANGE, TAKE_PROFIT_ATR_RANGE

STOP_BUFFER_ATR = 0.25
REGIME_HORIZON = 10  # index bars the regime label looks ahead


class TripleBarrier(BaseModel):
    """The exit rules and costs trade labels are simulated with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stop_loss_atr: float = Field(2.0, gt=0)
    take_profit_atr: float = Field(3.0, gt=0)
    max_holding_bars: int = Field(20, ge=1)
    commission_per_share: float = Field(0.0, ge=0)
    slippage_bps: float = Field(2.0, ge=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> TripleBarrier:
        """The exits and costs the engine trades with (the `risk` and `broker` settings)."""
        return cls(
            stop_loss_atr=settings.risk.stop_loss_atr,
            take_profit_atr=settings.risk.take_profit_atr,
            max_holding_bars=settings.risk.max_holding_bars,
            commission_per_share=settings.broker.commission_per_share,
            slippage_bps=settings.broker.slippage_bps,
        )

    @property
    def horizon(self) -> int:
        return self.max_holding_bars

    def describe(self) -> str:
        return (
            f"triple barrier: entry next open, stop {self.stop_loss_atr}xATR14, target "
            f"{self.take_profit_atr}xATR14, time limit {self.max_holding_bars} bars, stop "
            f"first on same-bar ties; slippage {self.slippage_bps} bps per fill, commission "
            f"{self.commission_per_share}/share per fill; win = net return > 0"
        )


def trade_label_names(horizon: int) -> dict[str, str]:
    """Label columns of the trade labels for a horizon (role → column name)."""
    return {
        "won": f"won_{horizon}",
        "net_return": f"net_return_{horizon}",
        "stop_opt": f"stop_loss_atr_opt_{horizon}",
        "target_opt": f"take_profit_atr_opt_{horizon}",
        "mfe_atr": f"max_favorable_excursion_atr_{horizon}",
        "mae_atr": f"max_adverse_excursion_atr_{horizon}",
        "drawdown": f"max_adverse_excursion_pct_{horizon}",
        "exit_time": f"exit_time_{horizon}",
        "weight": f"uniqueness_{horizon}",
    }


@dataclass(frozen=True)
class ForwardPaths:
    """The bars after each event's signal: row i, column j is bar j after entry (j = 0
    is the entry bar). Aligned with the labelled events, kept so exits can be
    re-simulated with other stop/target distances (exit-model evaluation)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    sign: np.ndarray  # +1 long, -1 short

    def take(self, rows: np.ndarray) -> ForwardPaths:
        return ForwardPaths(
            self.open[rows], self.high[rows], self.low[rows], self.close[rows],
            self.atr[rows], self.sign[rows],
        )

    def __len__(self) -> int:
        return len(self.sign)


@dataclass(frozen=True)
class SimulatedTrades:
    entry_price: np.ndarray
    exit_price: np.ndarray
    exit_bar: np.ndarray
    exit_reason: np.ndarray  # "stop", "target", "time"
    net_return: np.ndarray


def simulate_exits(
    paths: ForwardPaths,
    stop_loss_atr: np.ndarray | float,
    take_profit_atr: np.ndarray | float,
    config: TripleBarrier,
) -> SimulatedTrades:
    """Run the triple barrier on every path at once (vectorized over events and bars)."""
    n, horizon = paths.open.shape
    slip = config.slippage_bps / 10_000
    sign = paths.sign
    entry = paths.open[:, 0] * (1 + sign * slip)
    stop_dist = np.broadcast_to(np.asarray(stop_loss_atr, dtype=float), (n,)) * paths.atr
    target_dist = np.broadcast_to(np.asarray(take_profit_atr, dtype=float), (n,)) * paths.atr
    stop_level = (entry - sign * stop_dist)[:, None]
    target_level = (entry + sign * target_dist)[:, None]
    long = (sign > 0)[:, None]
    stop_hit = np.where(long, paths.low <= stop_level, paths.high >= stop_level)
    target_hit = np.where(long, paths.high >= target_level, paths.low <= target_level)
    never = horizon
    first_stop = np.where(stop_hit.any(axis=1), stop_hit.argmax(axis=1), never)
    first_target = np.where(target_hit.any(axis=1), target_hit.argmax(axis=1), never)
    rows = np.arange(n)
    by_stop = (first_stop <= first_target) & (first_stop < never)  # ties → stop
    by_target = ~by_stop & (first_target < never)
    exit_bar = np.where(by_stop, first_stop, np.where(by_target, first_target, horizon - 1))
    bar_open = paths.open[rows, exit_bar]
    stop_fill = np.where(sign > 0, np.minimum(bar_open, stop_level[:, 0]),
                         np.maximum(bar_open, stop_level[:, 0]))
    target_fill = np.where(sign > 0, np.maximum(bar_open, target_level[:, 0]),
                           np.minimum(bar_open, target_level[:, 0]))
    time_fill = paths.close[rows, horizon - 1]
    raw_exit = np.where(by_stop, stop_fill, np.where(by_target, target_fill, time_fill))
    exit_price = raw_exit * (1 - sign * slip)
    commission = 2 * config.commission_per_share / entry
    net_return = sign * (exit_price - entry) / entry - commission
    reason = np.where(by_stop, "stop", np.where(by_target, "target", "time"))
    return SimulatedTrades(entry, exit_price, exit_bar, reason, net_return)


@dataclass(frozen=True)
class PathIndex:
    """Where each kept event's forward path sits in the symbol-sorted bars: `grid[i, j]`
    is the row of bar j after entry, `timestamps` the bars' timestamps."""

    grid: np.ndarray
    timestamps: np.ndarray


def forward_paths(
    bars: pd.DataFrame, events: pd.DataFrame, horizon: int
) -> tuple[ForwardPaths, np.ndarray, pd.Series]:
    """The `horizon` bars after each event's signal bar, for events that have them.

    `events` needs symbol, timestamp (the signal bar), side and `atr_14`. Returns the
    paths, the positions of the kept events, and the timestamp of each kept event's last
    horizon bar (when its label is known: used for purging)."""
    paths, kept, label_end, _ = _forward_paths(bars, events, horizon)
    return paths, kept, label_end


def _forward_paths(
    bars: pd.DataFrame, events: pd.DataFrame, horizon: int
) -> tuple[ForwardPaths, np.ndarray, pd.Series, PathIndex]:
    missing = [c for c in ("symbol", "timestamp", "side", "atr_14") if c not in events]
    if missing:
        raise DataValidationError(f"events lack columns {missing}", where="labels")
    ordered = bars.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    position = pd.Series(np.arange(len(ordered)), index=pd.MultiIndex.from_frame(
        ordered[["symbol", "timestamp"]]))
    keys = pd.MultiIndex.from_frame(events[["symbol", "timestamp"]])
    signal_row = position.reindex(keys).to_numpy(dtype=float)
    symbols = ordered["symbol"].to_numpy()
    last_row_of_symbol = ordered.groupby("symbol", sort=False).cumcount(ascending=False)
    remaining = last_row_of_symbol.to_numpy()
    atr = events["atr_14"].to_numpy(dtype=float)
    found = np.isfinite(signal_row)
    safe_row = np.where(found, signal_row, 0).astype(int)
    complete = found & (remaining[safe_row] >= horizon) & np.isfinite(atr) & (atr > 0)
    kept = np.flatnonzero(complete)
    start = safe_row[kept] + 1
    grid = start[:, None] + np.arange(horizon)[None, :]
    same_symbol = symbols[grid] == symbols[start][:, None]
    if not same_symbol.all():  # cannot happen when `remaining` is right; guard anyway
        raise DataValidationError("forward path crosses symbols", where="labels")
    values = {c: ordered[c].to_numpy(dtype=float)[grid] for c in ("open", "high", "low", "close")}
    finite = np.isfinite(np.stack(list(values.values()))).all(axis=(0, 2))
    kept, grid = kept[finite], grid[finite]
    values = {c: v[finite] for c, v in values.items()}
    sign = np.where(events["side"].to_numpy()[kept] == "sell", -1.0, 1.0)
    label_end = pd.Series(ordered["timestamp"].to_numpy()[grid[:, -1]], index=kept)
    paths = ForwardPaths(values["open"], values["high"], values["low"], values["close"],
                         atr[kept], sign)
    return paths, kept, label_end, PathIndex(grid, ordered["timestamp"].to_numpy())


def trade_labels(
    bars: pd.DataFrame, events: pd.DataFrame, config: TripleBarrier
) -> tuple[pd.DataFrame, ForwardPaths]:
    """Label every event that has `max_holding_bars` bars after entry.

    Returns (labels, paths): labels has the events' own columns plus `entry_time`,
    `label_end` (last bar of the horizon), `exit_reason_<H>` and the label columns of
    `trade_label_names(H)`; paths are row-aligned with it."""
    horizon = config.max_holding_bars
    names = trade_label_names(horizon)
    paths, kept, label_end, index = _forward_paths(bars, events, horizon)
    trades = simulate_exits(paths, config.stop_loss_atr, config.take_profit_atr, config)
    entry, sign, atr = trades.entry_price, paths.sign, paths.atr
    favorable = np.where(sign[:, None] > 0, paths.high - entry[:, None],
                         entry[:, None] - paths.low)
    adverse = np.where(sign[:, None] > 0, entry[:, None] - paths.low,
                       paths.high - entry[:, None])
    mfe = np.maximum(favorable.max(axis=1), 0.0)
    mae = np.maximum(adverse.max(axis=1), 0.0)
    peak_bar = favorable.argmax(axis=1)
    before_peak = np.where(np.arange(horizon)[None, :] <= peak_bar[:, None], adverse, 0.0)
    mae_before_peak = np.maximum(before_peak.max(axis=1), 0.0)
    labels = events.iloc[kept].reset_index(drop=True).copy()
    labels["entry_time"] = labels["timestamp"]  # refined below: the bar after the signal
    labels["label_end"] = pd.to_datetime(label_end.to_numpy(), utc=True)
    labels[f"exit_reason_{horizon}"] = trades.exit_reason
    labels[names["net_return"]] = trades.net_return
    labels[names["won"]] = (trades.net_return > 0).astype(int)
    labels[names["mfe_atr"]] = mfe / atr
    labels[names["mae_atr"]] = mae / atr
    labels[names["target_opt"]] = np.clip(mfe / atr, *TAKE_PROFIT_ATR_RANGE)
    labels[names["stop_opt"]] = np.clip(mae_before_peak / atr + STOP_BUFFER_ATR,
                                        *STOP_LOSS_ATR_RANGE)
    labels[names["drawdown"]] = mae / entry
    exit_rows = index.grid[np.arange(len(kept)), trades.exit_bar]
    labels[names["exit_time"]] = pd.to_datetime(index.timestamps[exit_rows], utc=True)
    labels[names["weight"]] = uniqueness(index.grid[:, 0], exit_rows)
    labels = labels.drop(columns=["entry_time"])
    return labels, paths


def uniqueness(entry_rows: np.ndarray, exit_rows: np.ndarray) -> np.ndarray:
    """Average uniqueness of each trade over its bars [entry, exit] (rows of the
    symbol-sorted bars, so trades of different symbols never share a row): the mean of
    1 / (trades held on that bar)."""
    if len(entry_rows) == 0:
        return np.empty(0)
    size = int(exit_rows.max()) + 2
    held = np.zeros(size)
    np.add.at(held, entry_rows, 1.0)
    np.add.at(held, exit_rows + 1, -1.0)
    held = np.cumsum(held)
    inverse = np.where(held > 0, 1.0 / np.maximum(held, 1.0), 0.0)
    prefix = np.concatenate([[0.0], np.cumsum(inverse)])
    return (prefix[exit_rows + 1] - prefix[entry_rows]) / (exit_rows - entry_rows + 1)


# -- regime ------------------------------------------------------------------------------


def regime_measure_names(horizon: int) -> tuple[str, str]:
    return f"fwd_vol_{horizon}", f"fwd_trend_{horizon}"


def forward_regime_measures(index_bars: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Per index bar: `timestamp`, `fwd_vol_<K>`, `fwd_trend_<K>` and `label_end` over the
    next K bars (NaN where fewer than K bars follow). One index symbol expected."""
    if len(index_bars["symbol"].unique()) != 1:
        raise DataValidationError(
            f"expected one index series, got {sorted(index_bars['symbol'].unique())}",
            where="labels.regime",
        )
    ordered = index_bars.sort_values("timestamp").reset_index(drop=True)
    close = ordered["close"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(np.where(close > 0, close, np.nan))
    returns = np.diff(log_close, prepend=np.nan)
    n = len(ordered)
    vol = np.full(n, np.nan)
    trend = np.full(n, np.nan)
    label_end = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    timestamps = ordered["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    if n > horizon:
        windows = np.lib.stride_tricks.sliding_window_view(returns[1:], horizon)
        # window starting at return i+1 covers the K bars after bar i
        daily_sigma = windows.std(axis=1, ddof=1)
        move = log_close[horizon:] - log_close[:-horizon]
        count = len(windows)
        vol[:count] = daily_sigma * np.sqrt(252)
        with np.errstate(divide="ignore", invalid="ignore"):
            trend[:count] = np.abs(move[:count]) / (daily_sigma * np.sqrt(horizon))
        label_end[:count] = timestamps[horizon : horizon + count]
    vol_name, trend_name = regime_measure_names(horizon)
    return pd.DataFrame(
        {
            "timestamp": ordered["timestamp"],
            vol_name: vol,
            trend_name: trend,
            "label_end": pd.to_datetime(label_end).tz_localize("UTC"),
        }
    )


class RegimeThresholds:
    """Realized-volatility and realized-trend cut-offs, fitted on training rows only."""

    def __init__(
        self,
        horizon: int = REGIME_HORIZON,
        *,
        volatile_quantile: float = 0.70,
        trending_quantile: float = 0.60,
        calm_quantile: float = 0.30,
    ) -> None:
        self.horizon = horizon
        self.volatile_quantile = volatile_quantile
        self.trending_quantile = trending_quantile
        self.calm_quantile = calm_quantile

    def fit(self, measures: pd.DataFrame) -> RegimeThresholds:
        vol_name, trend_name = regime_measure_names(self.horizon)
        vol = measures[vol_name].dropna()
        trend = measures[trend_name].dropna()
        if len(vol) < 20:
            raise DataValidationError(
                f"need at least 20 labelled index bars to fit regime thresholds, got {len(vol)}",
                where="labels.regime",
            )
        self.volatile_vol_ = float(vol.quantile(self.volatile_quantile))
        self.calm_vol_ = float(vol.quantile(self.calm_quantile))
        self.trending_strength_ = float(trend.quantile(self.trending_quantile))
        return self

    def classify(self, measures: pd.DataFrame) -> np.ndarray:
        """Class index per row into `REGIME_COLUMNS` (-1 where the measures are NaN)."""
        vol_name, trend_name = regime_measure_names(self.horizon)
        vol = measures[vol_name].to_numpy(dtype=float)
        trend = measures[trend_name].to_numpy(dtype=float)
        trending, ranging, volatile, calm = range(len(REGIME_COLUMNS))
        label = np.where(
            vol >= self.volatile_vol_,
            volatile,
            np.where(trend >= self.trending_strength_, trending,
                     np.where(vol <= self.calm_vol_, calm, ranging)),
        )
        return np.where(np.isfinite(vol) & np.isfinite(trend), label, -1)

    def as_dict(self) -> dict[str, float]:
        return {
            "volatile_vol": self.volatile_vol_,
            "calm_vol": self.calm_vol_,
            "trending_strength": self.trending_strength_,
        }

    def describe(self) -> str:
        return (
            f"regime over the next {self.horizon} index bars: volatile if annualized "
            f"realized vol >= training q{self.volatile_quantile:.2f}; else trending if "
            f"|log return|/(sigma*sqrt(K)) >= training q{self.trending_quantile:.2f}; else "
            f"calm if vol <= training q{self.calm_quantile:.2f}; else ranging"
        )
