"""Backtest reports: the metrics of a run (trades, win rate, profit factor, Sharpe, max
drawdown, exposure, total return; each figure defined once in `core.performance`), a
JSON file with those keys plus the equity curve, and an HTML page with the equity and
drawdown plots (PNG embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.performance import (
    drawdowns,
    equity_returns,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    win_rate,
)
from core.strict_json import dumps_strict

METRIC_KEYS: tuple[str, ...] = (
    "trades",
    "win_rate",
    "profit_factor",
    "sharpe",
    "max_drawdown",
    "exposure",
    "total_return",
)


def compute_metrics(
    equity: pd.DataFrame,
    trades: pd.DataFrame,
    *,
    starting_equity: float,
    bars_per_year: float = 252.0,
) -> dict[str, Any]:
    """Metrics of one run, by the conventions of `core.performance`. `equity` has
    timestamp, equity, positions_value; `trades` has pnl. Sharpe is annualized from
    per-timestamp returns of the curve that starts at `starting_equity`; max drawdown is a
    positive fraction; exposure is the mean share of equity held in positions; profit
    factor is None (JSON has no infinity) when there is no losing trade."""
    count = len(trades)
    pnl = trades["pnl"].to_numpy(dtype=float) if count else np.array([])
    values = equity["equity"].to_numpy(dtype=float) if len(equity) else np.array([])
    curve = np.concatenate(([starting_equity], values))
    factor = profit_factor(pnl)
    exposure = (
        float(np.mean(equity["positions_value"].abs().to_numpy() / values)) if len(values) else 0.0
    )
    return {
        "trades": int(count),
        "win_rate": win_rate(pnl),
        "profit_factor": factor if math.isfinite(factor) else None,
        "sharpe": sharpe_ratio(equity_returns(curve), bars_per_year),
        "max_drawdown": max_drawdown(curve),
        "exposure": exposure,
        "total_return": float(curve[-1] / starting_equity - 1.0),
        "final_equity": float(curve[-1]),
        "net_pnl": float(pnl.sum()),
        "average_trade_return": float(trades["return_pct"].mean()) if count else 0.0,
        "exit_reasons": (
            {str(k): int(v) for k, v in trades["exit_reason"].value_counts().sort_index().items()}
            if count
            else {}
        ),
    }


def drawdown_series(equity: pd.DataFrame) -> pd.Series:
    """The equity curve's drawdown at each point (positive fractions, `core.performance`)."""
    values = equity["equity"].astype(float)
    return pd.Series(drawdowns(values.to_numpy()), index=values.index, name="drawdown")


def write_json(path: Path, metrics: dict[str, Any], equity: pd.DataFrame) -> Path:
    """Metrics plus the equity curve (timestamp, equity, drawdown)."""
    drawdown = drawdown_series(equity) if len(equity) else pd.Series(dtype=float)
    payload = dict(metrics)
    payload["equity_curve"] = [
        {"timestamp": ts.isoformat(), "equity": float(value), "drawdown": float(dd)}
        for ts, value, dd in zip(equity["timestamp"], equity["equity"], drawdown, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_strict(payload, indent=2))
    return path


def write_html(
    path: Path, metrics: dict[str, Any], equity: pd.DataFrame, trades: pd.DataFrame, title: str
) -> Path:
    """A self-contained page: metrics table, equity and drawdown plots, recent trades."""
    image = _plot(equity, title)
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(_format(metrics.get(key)))}</td></tr>"
        for key in (*METRIC_KEYS, "final_equity", "bars", "symbols", "start", "end", "strategy")
        if key in metrics
    )
    recent = trades.tail(50)
    trade_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_format(row[c]))}</td>"
            for c in ("symbol", "side", "entry_time", "exit_time", "pnl", "exit_reason", "strategy")
        )
        + "</tr>"
        for _, row in recent.iterrows()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table>{rows}</table>
<h2>Equity and drawdown</h2>
<img alt="equity curve and drawdown" src="data:image/png;base64,{image}">
<h2>Last {len(recent)} trades</h2>
<table><tr><th>symbol</th><th>side</th><th>entry</th><th>exit</th><th>pnl</th>
<th>exit reason</th><th>strategy</th></tr>{trade_rows}</table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def _plot(equity: pd.DataFrame, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if len(equity):
        times = equity["timestamp"].dt.tz_convert(None)
        top.plot(times, equity["equity"], color="tab:blue", linewidth=1)
        bottom.fill_between(times, -drawdown_series(equity) * 100, 0, color="tab:red", alpha=0.5)
    top.set_title(title)
    top.set_ylabel("equity")
    bottom.set_ylabel("drawdown %")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)



def pooled_metrics(accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of independent accounts taken together (a replay in symbol shards
    trades one account per shard): closed trades summed, the win rate weighted by them,
    each account's own figures under `shards`. One account's figures stay as they are."""
    if len(accounts) == 1:
        return accounts[0]
    trades = sum(int(figures.get("trades") or 0) for figures in accounts)
    wins = sum(float(figures.get("win_rate") or 0.0) * int(figures.get("trades") or 0)
               for figures in accounts)
    return {"trades": trades, "win_rate": wins / trades if trades else 0.0, "shards": accounts}
