"""Closed trades joined to the decisions that opened them: which arm decided, with which
model versions, what win probability it gave and how long the service took. Pure frame
logic shared by the A/B and monitor flows (they read the frames; this joins them).

Join order, most precise first:
1. the trade's `decision_id` against the serving decision log (`serving/decision_log.py`);
2. the trade's `decision_id` → the journal's decision row → its `signal_id` against the
   decision log (the service's newest decision for that signal);
3. the journal's own decision row (variant, versions and win probability as the engine
   recorded them), for trades decided in-process without a service log.
A trade none of these explains keeps `variant = "unknown"` and is left out of A/B arms.

`served_in_window` and `served_win_probability` read the decision log alone: what the
service answered for signals of a window."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataValidationError

OUTCOME_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "symbol",
    "entry_time",
    "exit_time",
    "return_pct",
    "pnl",
    "won",
    "decision_id",
    "variant",
    "model_versions",
    "win_probability",
    "latency_ms",
    "joined_by",
)


def _versions(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str) and value:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return _versions(decoded)
    return {}


def _log_probability(outputs: Any) -> float:
    if isinstance(outputs, Mapping):
        value = outputs.get("win_probability")
        if value is not None:
            return float(value)
    return float("nan")


def join_outcomes(
    trades: pd.DataFrame,
    journal_decisions: pd.DataFrame | None = None,
    decision_log: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per closed trade with its arm, versions and win probability (see module)."""
    required = ("trade_id", "exit_time", "return_pct", "decision_id")
    missing = [column for column in required if column not in trades.columns]
    if missing:
        raise DataValidationError(f"trades lack column(s) {missing}", where="join_outcomes")
    out = pd.DataFrame(
        {
            "trade_id": trades["trade_id"].astype(str),
            "symbol": trades.get("symbol", pd.Series("", index=trades.index)),
            "entry_time": trades.get("entry_time", trades["exit_time"]),
            "exit_time": trades["exit_time"],
            "return_pct": trades["return_pct"].astype(float),
            "pnl": trades.get("pnl", trades["return_pct"]).astype(float),
            "decision_id": trades["decision_id"],
        }
    ).reset_index(drop=True)
    out["won"] = out["pnl"] > 0
    variant = np.full(len(out), "unknown", dtype=object)
    versions: list[dict[str, str]] = [{} for _ in range(len(out))]
    probability = np.full(len(out), np.nan)
    latency = np.full(len(out), np.nan)
    joined_by = np.full(len(out), "none", dtype=object)

    by_decision: dict[str, Any] = {}
    by_signal: dict[str, Any] = {}
    if decision_log is not None and not decision_log.empty:
        ordered = decision_log.sort_values("decided_at")
        for row in ordered.itertuples(index=False):
            by_decision[str(row.decision_id)] = row
            by_signal[str(row.signal_id)] = row  # newest decision per signal wins
    journal_rows: dict[str, Any] = {}
    if journal_decisions is not None and not journal_decisions.empty:
        for row in journal_decisions.itertuples(index=False):
            journal_rows[str(row.decision_id)] = row

    for i, decision_id in enumerate(out["decision_id"]):
        if decision_id is None or (isinstance(decision_id, float) and np.isnan(decision_id)):
            continue
        key = str(decision_id)
        logged = by_decision.get(key)
        how = "decision_log"
        journal_row = journal_rows.get(key)
        if logged is None and journal_row is not None:
            logged = by_signal.get(str(journal_row.signal_id))
            how = "decision_log_by_signal"
        if logged is not None:
            variant[i] = str(logged.variant)
            versions[i] = _versions(logged.model_versions)
            probability[i] = _log_probability(logged.outputs)
            latency[i] = float(logged.latency_ms)
            joined_by[i] = how
        elif journal_row is not None:
            variant[i] = str(journal_row.variant)
            versions[i] = _versions(journal_row.model_versions)
            value = journal_row.win_probability
            probability[i] = float(value) if value is not None else np.nan
            joined_by[i] = "journal"
    out["variant"] = variant
    out["model_versions"] = versions
    out["win_probability"] = probability
    out["latency_ms"] = latency
    out["joined_by"] = joined_by
    return out.sort_values(["exit_time", "trade_id"], ignore_index=True)[list(OUTCOME_COLUMNS)]


def matches_versions(decided: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """True when every model the decision names that also has a `wanted` version used it."""
    shared = set(decided) & set(wanted)
    return bool(shared) and all(str(decided[name]) == str(wanted[name]) for name in shared)


def arm_trades(outcomes: pd.DataFrame, variant: str, versions: Mapping[str, str]) -> pd.DataFrame:
    """The closed trades decided by `variant` with exactly these model versions."""
    if outcomes.empty or not versions:
        return outcomes.iloc[0:0]
    mask = (outcomes["variant"] == variant) & outcomes["model_versions"].map(
        lambda decided: matches_versions(decided, versions)
    )
    return outcomes[mask]


def served_in_window(
    decisions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The logged decisions whose signal falls in (start, end]."""
    if decisions.empty:
        return decisions
    stamps = decisions["signal_timestamp"]
    return decisions[(stamps > start) & (stamps <= end)]


def served_win_probability(decisions: pd.DataFrame) -> np.ndarray:
    """The win probability each logged decision served (NaN where none was given)."""
    return decisions["outputs"].map(
        lambda out: float(out.get("win_probability", np.nan)) if out else np.nan
    ).to_numpy()
