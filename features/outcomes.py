"""Outcome labels of closed trades: win/loss, return %, holding time, maximum favourable
and adverse excursion (in price per share and in ATRs at entry) and the trade's own
maximum drawdown. Pure: a trades frame (and optionally the bars the trade lived
through) in, labels out.

Excursions and drawdown come from the bars between entry and exit when bars are given
(highs and lows, so they are the extremes the trade could have seen); otherwise from the
trade's own `max_favorable_excursion` / `max_adverse_excursion` columns (per share, as
`core.types.Trade` carries them), and the drawdown is NaN rather than a guess."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import DataValidationError

REQUIRED_TRADE_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "symbol",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
)
OUTCOME_COLUMNS: tuple[str, ...] = (
    "win",
    "return_pct",
    "holding_seconds",
    "mfe_price",
    "mae_price",
    "mfe_atr",
    "mae_atr",
    "max_drawdown_pct",
)


def _side_sign(side: pd.Series) -> np.ndarray:
    text = side.astype(str).str.lower().str.replace("side.", "", regex=False)
    unknown = ~text.isin(["buy", "sell", "long", "short"])
    if unknown.any():
        raise DataValidationError(
            f"trade side must be buy/sell (or long/short), got {side[unknown].iloc[0]!r}",
            where="features.outcomes",
        )
    return np.where(text.isin(["buy", "long"]), 1.0, -1.0)


def check_trades(trades: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_TRADE_COLUMNS if c not in trades.columns]
    if missing:
        raise DataValidationError(
            f"trades frame lacks column(s) {', '.join(missing)}; needs "
            f"{', '.join(REQUIRED_TRADE_COLUMNS)}",
            where="features.outcomes",
        )
    if trades["trade_id"].isna().any():
        raise DataValidationError("a trade has no trade_id", where="features.outcomes")
    prices = trades[["entry_price", "exit_price", "qty"]].astype(float)
    if (prices <= 0).any().any() or prices.isna().any().any():
        row = int(np.flatnonzero(((prices <= 0) | prices.isna()).any(axis=1).to_numpy())[0])
        raise DataValidationError(
            f"trade {trades['trade_id'].iloc[row]}: entry/exit price and qty must be positive",
            where="features.outcomes",
        )


def _path_excursions(
    trades: pd.DataFrame, sign: np.ndarray, bars: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MFE, MAE (price per share, positive) and max drawdown (fraction of entry price)
    from the bars the trade lived through (entry bar to exit bar)."""
    n = len(trades)
    mfe, mae, drawdown = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    by_symbol = {str(s): g for s, g in bars.groupby("symbol", sort=False)}
    entry_times = pd.to_datetime(trades["entry_time"], utc=True)
    exit_times = pd.to_datetime(trades["exit_time"], utc=True)
    for i in range(n):
        group = by_symbol.get(str(trades["symbol"].iloc[i]))
        entry = float(trades["entry_price"].iloc[i])
        exit_ = float(trades["exit_price"].iloc[i])
        if group is None:
            continue
        ordered = group.sort_values("timestamp")
        stamps = pd.to_datetime(ordered["timestamp"], utc=True)
        # A bar covers [its stamp, the next bar's stamp): keep every bar that overlaps the
        # trade, including the one the entry happened in (a daily bar stamped 00:00 covers
        # the session the trade entered at the open).
        ends = stamps.shift(-1).fillna(pd.Timestamp.max.tz_localize("UTC"))
        inside = ordered.loc[(stamps <= exit_times.iloc[i]) & (ends > entry_times.iloc[i])]
        highs = np.append(inside["high"].to_numpy(dtype=float), [entry, exit_])
        lows = np.append(inside["low"].to_numpy(dtype=float), [entry, exit_])
        if sign[i] > 0:
            favourable, adverse = highs - entry, entry - lows
            best_so_far = np.maximum.accumulate(np.append(entry, inside["high"].to_numpy(float)))
            worst_after = np.append(entry, inside["low"].to_numpy(float))
            dd = (best_so_far - worst_after).max()
        else:
            favourable, adverse = entry - lows, highs - entry
            best_so_far = np.minimum.accumulate(np.append(entry, inside["low"].to_numpy(float)))
            worst_after = np.append(entry, inside["high"].to_numpy(float))
            dd = (worst_after - best_so_far).max()
        mfe[i] = max(float(favourable.max()), 0.0)
        mae[i] = max(float(adverse.max()), 0.0)
        drawdown[i] = max(float(dd), 0.0) / entry
    return mfe, mae, drawdown


def trade_outcomes(trades: pd.DataFrame, bars: pd.DataFrame | None = None) -> pd.DataFrame:
    """`trade_id` + the outcome labels, one row per trade, in the input's order. The ATR at
    entry comes from an `atr_14` column of the trades frame when present."""
    check_trades(trades)
    sign = _side_sign(trades["side"])
    entry = trades["entry_price"].to_numpy(dtype=float)
    exit_ = trades["exit_price"].to_numpy(dtype=float)
    qty = trades["qty"].to_numpy(dtype=float)
    commission = (
        trades["commission"].fillna(0.0).to_numpy(dtype=float)
        if "commission" in trades
        else np.zeros(len(trades))
    )
    returns = sign * (exit_ - entry) / entry - commission / (entry * qty)
    held = pd.to_datetime(trades["exit_time"], utc=True) - pd.to_datetime(
        trades["entry_time"], utc=True
    )
    if bars is not None:
        mfe, mae, drawdown = _path_excursions(trades.reset_index(drop=True), sign, bars)
    else:
        mfe = (
            trades["max_favorable_excursion"].to_numpy(dtype=float)
            if "max_favorable_excursion" in trades
            else np.full(len(trades), np.nan)
        )
        mae = (
            trades["max_adverse_excursion"].to_numpy(dtype=float)
            if "max_adverse_excursion" in trades
            else np.full(len(trades), np.nan)
        )
        drawdown = np.full(len(trades), np.nan)
    atr = trades["atr_14"].to_numpy(dtype=float) if "atr_14" in trades else np.full(
        len(trades), np.nan
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mfe_atr = np.where(atr > 0, mfe / atr, np.nan)
        mae_atr = np.where(atr > 0, mae / atr, np.nan)
    return pd.DataFrame(
        {
            "trade_id": trades["trade_id"].astype(str).to_numpy(),
            "win": (returns > 0).astype(np.float64),
            "return_pct": returns,
            "holding_seconds": held.dt.total_seconds().to_numpy(dtype=float),
            "mfe_price": mfe,
            "mae_price": mae,
            "mfe_atr": mfe_atr,
            "mae_atr": mae_atr,
            "max_drawdown_pct": drawdown,
        }
    )
