"""What the API and the page read: the journal's tables (trades, decisions, equity,
per-strategy and per-day performance, the A/B arms' live P&L) with small SQL queries
(never a whole table for one page), and the live state of the engine held by the
runner. Figures come from `core.performance` (one profit factor, one win rate)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from core.performance import profit_factor, win_rate
from core.strict_json import json_safe
from trading.control.reasons import reason_category
from trading.journal import decisions, equity_curve, trades

TRADE_FIELDS = (
    "trade_id", "symbol", "side", "qty", "entry_time", "entry_price", "exit_time",
    "exit_price", "strategy", "exit_reason", "commission", "pnl", "return_pct",
    "decision_id",
)  # fmt: skip


class JournalReads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        with self._engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings().all()]

    # ------------------------------------------------------------------ trades
    def trades(self, *, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        query = select(trades).order_by(trades.c.exit_time.desc()).limit(limit)
        if since is not None:
            query = query.where(trades.c.exit_time >= since)
        return [_trade(row) for row in self._rows(query)]

    def trades_csv(self, *, since: datetime | None = None, limit: int = 100_000) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(TRADE_FIELDS), extrasaction="ignore")
        writer.writeheader()
        for row in reversed(self.trades(since=since, limit=limit)):
            writer.writerow(row)
        return buffer.getvalue()

    def closed_trade_count(self) -> int:
        from sqlalchemy import func

        with self._engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(trades)).scalar_one()
            )

    def performance(self) -> dict[str, Any]:
        """Per strategy and per exit day: trades, win rate, profit factor, P&L."""
        frame = pd.DataFrame(self._rows(select(trades.c.strategy, trades.c.exit_time,
                                                 trades.c.pnl)))  # fmt: skip
        if frame.empty:
            return {"by_strategy": [], "by_day": [], "total": _figures(pd.Series(dtype=float))}
        frame["day"] = pd.to_datetime(frame["exit_time"], utc=True).dt.strftime("%Y-%m-%d")
        by_strategy = [
            {"strategy": name, **_figures(group["pnl"])}
            for name, group in frame.groupby("strategy", sort=True)
        ]
        by_day = [
            {"day": day, **_figures(group["pnl"])}
            for day, group in frame.groupby("day", sort=True)
        ]
        return json_safe(
            {"by_strategy": by_strategy, "by_day": by_day[::-1], "total": _figures(frame["pnl"])}
        )

    # ------------------------------------------------------------------ decisions
    def decisions(
        self, *, since: datetime | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        query = select(decisions).order_by(decisions.c.decided_at.desc()).limit(limit)
        if since is not None:
            query = query.where(decisions.c.decided_at > since)
        return [_decision(row) for row in self._rows(query)]

    def day_decisions(self, session_start: datetime) -> tuple[int, int]:
        """(entries, refusals) decided on bars from `session_start` on."""
        query = select(decisions.c.action).where(decisions.c.signal_time >= session_start)
        actions = [row["action"] for row in self._rows(query)]
        entries = sum(1 for action in actions if action == "entered")
        return entries, len(actions) - entries

    # ------------------------------------------------------------------ equity
    def equity(self, *, limit: int = 2_000) -> list[dict[str, Any]]:
        query = (
            select(equity_curve.c.timestamp, equity_curve.c.equity, equity_curve.c.halted)
            .order_by(equity_curve.c.timestamp.desc())
            .limit(limit)
        )
        return [
            {
                "timestamp": _iso(row["timestamp"]),
                "equity": float(row["equity"]),
                "halted": bool(row["halted"]),
            }
            for row in reversed(self._rows(query))
        ]

    # ------------------------------------------------------------------ A/B
    def ab(self) -> list[dict[str, Any]]:
        """Per arm (the decision's variant): decisions, entries, closed trades and their
        P&L, and the model versions the arm decided with most recently."""
        rows = self._rows(
            select(
                decisions.c.decision_id,
                decisions.c.variant,
                decisions.c.action,
                decisions.c.model_versions,
                decisions.c.decided_at,
            )
        )
        if not rows:
            return []
        frame = pd.DataFrame(rows)
        closed = pd.DataFrame(self._rows(select(trades.c.decision_id, trades.c.pnl)))
        arms = []
        for variant, group in frame.groupby("variant", sort=True):
            latest = group.sort_values("decided_at").iloc[-1]
            pnl = (
                closed[closed["decision_id"].isin(set(group["decision_id"]))]["pnl"]
                if not closed.empty
                else pd.Series(dtype=float)
            )
            arms.append(
                {
                    "arm": variant,
                    "decisions": len(group),
                    "entries": int((group["action"] == "entered").sum()),
                    "model_versions": json.loads(latest["model_versions"] or "{}"),
                    **_figures(pnl),
                }
            )
        return json_safe(arms)


def _figures(pnl: pd.Series) -> dict[str, Any]:
    values = pnl.to_numpy(dtype=float)
    return {
        "trades": len(values),
        "win_rate": win_rate(values),
        "profit_factor": profit_factor(values),
        "pnl": float(values.sum()),
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return pd.Timestamp(value).tz_localize("UTC").isoformat() if pd.Timestamp(
        value
    ).tzinfo is None else pd.Timestamp(value).isoformat()


def _trade(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in TRADE_FIELDS}
    out["entry_time"] = _iso(row["entry_time"])
    out["exit_time"] = _iso(row["exit_time"])
    return json_safe(out)


def _decision(row: dict[str, Any]) -> dict[str, Any]:
    action = str(row["action"])
    detail = str(row.get("reason") or "")
    return json_safe(
        {
            "decision_id": row["decision_id"],
            "decided_at": _iso(row["decided_at"]),
            "signal_time": _iso(row["signal_time"]),
            "symbol": row["symbol"],
            "side": row["side"],
            "strategy": row["strategy"],
            "action": action,
            "reason": reason_category(action, detail, row.get("category")),
            "detail": detail,
            "win_probability": row.get("win_probability"),
            "arm": row.get("variant"),
            "source": row.get("source"),
            "model_versions": json.loads(row.get("model_versions") or "{}"),
            "qty": row.get("qty"),
        }
    )
