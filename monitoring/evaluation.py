"""The yardstick of the decision policy: walk-forward by calendar year, the same engine over
the same held-out bars ungated and with the policy, judged together. On intraday bars the
folds are blocks of trading sessions on the same symbols (out of time only; see below).

What is here is pure (frames and arrays in, plain dicts out), so every rule is unit-tested
without training or replaying anything; `pipelines/flows/evaluate.py` does the wiring.

- Folds (`walk_forward_folds`): one test window per calendar year, from its first session
  to its last; the sessions after the last year join the last fold when they are fewer
  than `tail_join_sessions` (Jan–Feb 2018 join 2017). The models of a fold see bars up to
  `train_end` only: the embargo leaves `embargo_bars` sessions out before the test window,
  and purging keeps only training events whose label is complete by `train_end`
  (`purge_events`; labels need bars after the signal, so a cut of the bars alone does it,
  and the check proves it). Training uses development symbols only
  (`check_development_only`): the held-out symbols are what the folds trade.
- Per fold and arm: `trades`, `win_rate`, `profit_factor`, `sharpe`, `max_drawdown`,
  `total_return` (`core.performance`, on the journal's trades and daily equity), refusals
  by reason category, gate coverage; per fold the signal model's ROC AUC and Brier score
  on the held-out labelled events of the year and the out-of-distribution rate on its
  ordinary held-out bars (each is a false alarm: nothing in them is unusual by design).
- Pooled: profit-factor and drawdown ratios (policy / ungated) with 90% intervals from a
  paired block bootstrap over days (both arms resampled on the same days; seeded), the
  share of ungated trades the policy kept, and the worst fold (lowest profit-factor ratio;
  a fold where the policy did not trade at all counts as worst).

- Intraday folds (`session_folds`): blocks of `fold_sessions` consecutive trading sessions
  (exchange dates), the embargo and the purge counted in bars as above. No held-out
  symbol has minute history, so these folds trade the (development) symbols their models
  trained on, in later sessions: out of time, not out of sample in symbols
  (`OUT_OF_TIME_NOTE`, written into the report). Their equity is judged per session
  (`session_closes`), as the daily folds' is.

Conventions: the pooled profit factor is over every trade of every fold (dollar P&L; each
fold starts from the same capital); the pooled drawdown is the deepest fall of the folds'
daily returns chained in time order. A ratio is None when it is undefined (no ungated loss
or no ungated drawdown)."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from core.bars import MARKET_TIMEZONE
from core.errors import DataValidationError
from core.performance import (
    TRADING_DAYS_PER_YEAR,
    equity_returns,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    win_rate,
)
from core.types import REASONS
from core.universe import is_held_out, split_universe
from models.datasets import TrainingData
from models.template import LoadedModels
from models.tracker import TrackedRun, Tracker

# Why a signal was not traded: one category per refusal (`core.types.REASONS`).
REFUSAL_REASONS: tuple[str, ...] = REASONS
POLICY_REASONS: tuple[str, ...] = ("ev", "gate", "ood", "regime")
ARM_METRICS: tuple[str, ...] = (
    "trades", "win_rate", "profit_factor", "sharpe", "max_drawdown", "total_return",
)
FOLD_KEYS: tuple[str, ...] = ("start", "end", "auc", "brier", "ungated", "policy")
EVALUATION_KEYS: tuple[str, ...] = (
    "folds", "pf_ratio", "pf_ratio_ci", "dd_ratio", "dd_ratio_ci", "kept_ratio",
    "worst_fold", "refusals",
)
DEFAULT_YEARS: tuple[int, ...] = (2015, 2016, 2017)
EXPERIMENT = "evaluation"
# Intraday folds: sessions per fold, folds by default, sessions of history before the first.
FOLD_SESSIONS = 5
DEFAULT_SESSION_FOLDS = 3
MIN_TRAINING_SESSIONS = 5
# The bootstrap's blocks on intraday folds: a few weeks of sessions hold too few blocks of
# the daily folds' 20, and minute trades last minutes, so two sessions keep what pairs.
INTRADAY_BLOCK_SESSIONS = 2
OUT_OF_TIME_NOTE = (
    "out of time only, not held-out symbols: no held-out symbol has minute history, so "
    "each fold trades the same symbols its models trained on, in the sessions after "
    "their training window"
)

# The engine's journal actions before the policy recorded a category (and the fallbacks
# it still records): action → category; `rejected` is split by its rule below.
_LEGACY_ACTIONS: dict[str, str] = {
    "gated": "gate",
    "regime_mismatch": "regime",
    "model_unavailable": "model_unavailable",
    "model_error": "model_unavailable",
    "invalid_features": "model_unavailable",
    "no_features": "model_unavailable",
    "invalid_exits": "model_unavailable",
    "paused": "paused",
}
_OOD_MARK = "out of the training distribution"


# ============================================================================ folds
@dataclass(frozen=True)
class EvaluationFold:
    """One test year (or block of intraday sessions, named by its `label`, its first
    session): the models see bars up to `train_end`; both arms trade [`start`, `end`]
    (both inclusive, UTC bar timestamps)."""

    year: int
    start: pd.Timestamp
    end: pd.Timestamp
    train_end: pd.Timestamp
    label: str | None = None

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        last = self.end.year
        return str(self.year) if last == self.year else f"{self.year}-{last}"


def walk_forward_folds(
    sessions: Iterable[pd.Timestamp] | pd.DatetimeIndex,
    years: Sequence[int] = DEFAULT_YEARS,
    *,
    embargo_bars: int = 5,
    tail_join_sessions: int = 126,
) -> list[EvaluationFold]:
    """One fold per year in `years` over the data's `sessions` (bar timestamps, UTC).

    The last fold runs to the last session when fewer than `tail_join_sessions` sessions
    follow its year (a stub too short to judge alone). Raises DataValidationError for a
    year without sessions or without `embargo_bars` + 1 sessions of history before it."""
    stamps = pd.DatetimeIndex(pd.unique(pd.Series(list(sessions), dtype="datetime64[ns, UTC]")))
    stamps = stamps.sort_values()
    if stamps.empty:
        raise DataValidationError("no sessions to fold", where="evaluation folds")
    chosen = sorted(set(int(y) for y in years))
    if not chosen:
        raise DataValidationError("no test years given", where="evaluation folds")
    folds = []
    for number, year in enumerate(chosen):
        inside = np.flatnonzero(stamps.year == year)
        if inside.size == 0:
            raise DataValidationError(
                f"no sessions in {year} (data {stamps[0].date()}..{stamps[-1].date()})",
                where="evaluation folds",
            )
        first, last = int(inside[0]), int(inside[-1])
        if first - embargo_bars - 1 < 0:
            raise DataValidationError(
                f"no training history before {year} (data starts {stamps[0].date()})",
                where="evaluation folds",
            )
        tail = len(stamps) - 1 - last
        if number == len(chosen) - 1 and 0 < tail < tail_join_sessions:
            last = len(stamps) - 1
        folds.append(
            EvaluationFold(year, stamps[first], stamps[last], stamps[first - embargo_bars - 1])
        )
    return folds


def exchange_dates(stamps: pd.DatetimeIndex) -> np.ndarray:
    """The exchange (New York) date of each UTC bar timestamp: its trading session."""
    return np.asarray(stamps.tz_convert(MARKET_TIMEZONE).date)


def session_folds(
    timestamps: Iterable[pd.Timestamp] | pd.DatetimeIndex,
    *,
    fold_sessions: int = FOLD_SESSIONS,
    starts: Sequence[str] | None = None,
    count: int = DEFAULT_SESSION_FOLDS,
    embargo_bars: int = 5,
    min_training_sessions: int = MIN_TRAINING_SESSIONS,
) -> list[EvaluationFold]:
    """Intraday walk-forward folds over bar `timestamps` (UTC): each fold is
    `fold_sessions` consecutive sessions (exchange dates), from its first bar to its last;
    its models see bars up to `train_end`, `embargo_bars` bars before its first bar.

    `starts` (ISO dates, each a session of the data) name the folds' first sessions; by
    default the last `count` blocks of `fold_sessions` sessions. Raises
    DataValidationError when a start is not a session, folds overlap, a fold runs past
    the data, or fewer than `min_training_sessions` sessions precede the first fold."""
    stamps = pd.DatetimeIndex(pd.unique(pd.Series(list(timestamps), dtype="datetime64[ns, UTC]")))
    stamps = stamps.sort_values()
    if stamps.empty:
        raise DataValidationError("no sessions to fold", where="evaluation folds")
    if fold_sessions < 1:
        raise DataValidationError("a fold needs at least one session", where="evaluation folds")
    days = exchange_dates(stamps)
    sessions = sorted(set(days))
    span = f"{len(sessions)} sessions in the data, {sessions[0]}..{sessions[-1]}"
    if starts is None:
        first = len(sessions) - count * fold_sessions
        if count < 1 or first < min_training_sessions:
            raise DataValidationError(
                f"too few sessions for {count} folds of {fold_sessions} sessions after "
                f"{min_training_sessions} training sessions ({span})",
                where="evaluation folds")
        positions = [first + k * fold_sessions for k in range(count)]
    else:
        index = {day.isoformat(): number for number, day in enumerate(sessions)}
        missing = [day for day in starts if day not in index]
        if missing:
            raise DataValidationError(
                f"{', '.join(missing)}: not a session of the data ({span})",
                where="evaluation folds")
        positions = sorted(index[day] for day in starts)
    for before, after in itertools.pairwise(positions):
        if after - before < fold_sessions:
            raise DataValidationError(
                f"folds starting {sessions[before]} and {sessions[after]} overlap: each "
                f"takes {fold_sessions} sessions", where="evaluation folds")
    if positions[-1] + fold_sessions > len(sessions):
        raise DataValidationError(
            f"too few sessions for a fold of {fold_sessions} from {sessions[positions[-1]]} "
            f"({span})", where="evaluation folds")
    if positions[0] < min_training_sessions:
        raise DataValidationError(
            f"too few sessions of training history before {sessions[positions[0]]}: "
            f"{positions[0]}, need {min_training_sessions} ({span})", where="evaluation folds")
    folds = []
    for position in positions:
        block = sessions[position:position + fold_sessions]
        inside = np.flatnonzero((days >= block[0]) & (days <= block[-1]))
        first_bar, last_bar = int(inside[0]), int(inside[-1])
        if first_bar - embargo_bars - 1 < 0:
            raise DataValidationError(
                f"no training history before {block[0]} after an embargo of "
                f"{embargo_bars} bars", where="evaluation folds")
        folds.append(EvaluationFold(block[0].year, stamps[first_bar], stamps[last_bar],
                                    stamps[first_bar - embargo_bars - 1],
                                    label=block[0].isoformat()))
    return folds


def session_closes(equity: pd.DataFrame) -> pd.DataFrame:
    """An intraday equity curve (`timestamp`, `equity`, one or more marks per bar) as one
    mark per session: its last, stamped with the session's last bar time."""
    if equity.empty:
        return equity
    frame = equity.assign(timestamp=pd.to_datetime(equity["timestamp"], utc=True))
    frame = frame.sort_values("timestamp", kind="stable")
    days = exchange_dates(pd.DatetimeIndex(frame["timestamp"]))
    return frame.groupby(days, sort=True).tail(1).reset_index(drop=True)


def out_of_time_data_section(bars: pd.DataFrame, timeframe: str) -> dict[str, Any]:
    """What an intraday run used: its symbols (each trained on and traded, none held
    out), bars, sessions, first and last session, the timeframe."""
    stamps = pd.DatetimeIndex(pd.to_datetime(bars["timestamp"], utc=True))
    days = exchange_dates(stamps) if len(stamps) else np.array([])
    return {
        "symbols": int(bars["symbol"].nunique()),
        "held_out_symbols": 0,
        "bars": len(bars),
        "sessions": len(set(days)),
        "start": min(days).isoformat() if len(days) else None,
        "end": max(days).isoformat() if len(days) else None,
        "timeframe": timeframe,
    }


def purge_events(events: pd.DataFrame, fold: EvaluationFold) -> pd.DataFrame:
    """The training events a fold may learn from: signalled and fully labelled (its
    `label_end`) by the fold's `train_end`. Events are never after it when the bars were
    cut there; the rule is applied anyway so the guarantee does not rest on the caller."""
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    label_end = pd.to_datetime(events["label_end"], utc=True)
    keep = (stamps <= fold.train_end) & (label_end <= fold.train_end)
    return events.loc[keep.to_numpy()]


def check_purged(events: pd.DataFrame, fold: EvaluationFold) -> None:
    """Raise DataValidationError when a training event's label reaches past `train_end`."""
    late = pd.to_datetime(events["label_end"], utc=True) > fold.train_end
    if late.any():
        raise DataValidationError(
            f"{int(late.sum())} training labels end after {fold.train_end.date()} "
            f"(fold {fold.name} starts {fold.start.date()})",
            where="evaluation folds",
        )


def spread_sample(symbols: Sequence[str], count: int | None) -> list[str]:
    """`count` of the sorted `symbols`, evenly spread over them (not the first letters
    of the alphabet only); all of them when `count` is None or not smaller."""
    ordered = sorted(symbols)
    if count is None or count >= len(ordered):
        return ordered
    positions = np.unique(np.linspace(0, len(ordered) - 1, count).round().astype(int))
    return [ordered[p] for p in positions]


def split_for_evaluation(
    stocks: pd.DataFrame, max_training_symbols: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(development bars, held-out bars) of a universe; at most `max_training_symbols`
    development symbols (`spread_sample`). Raises DataValidationError without both."""
    development, held_out = split_universe(stocks["symbol"].unique())
    development = spread_sample(development, max_training_symbols)
    if not development or not held_out:
        raise DataValidationError(
            f"the evaluation needs development and held-out symbols; got {len(development)} "
            f"and {len(held_out)}",
            where="evaluation",
        )
    return (stocks.loc[stocks["symbol"].isin(development)],
            stocks.loc[stocks["symbol"].isin(held_out)])


def fold_training_data(data: TrainingData, fold: EvaluationFold) -> TrainingData:
    """A fold's training data as the models may see it: purged events, checked to end
    before the training end and to hold no held-out symbol."""
    events = purge_events(data.events, fold)
    check_purged(events, fold)
    check_development_only(events["symbol"].unique())
    return replace(data, events=events)


def year_events(data: TrainingData, fold: EvaluationFold) -> TrainingData:
    """The labelled events signalled inside a fold's test window (renumbered)."""
    return replace(data, events=_inside(data.events, fold).reset_index(drop=True))


def held_out_predictions(
    model_set: LoadedModels, data: TrainingData, fold: EvaluationFold
) -> tuple[np.ndarray, np.ndarray]:
    """(win probability, won) of the labelled events in a fold's test window, from the
    fold's signal model."""
    events = year_events(data, fold).events
    if events.empty:
        return np.array([]), np.array([])
    predicted = model_set.win_probability(events[list(data.signal_features)])
    return np.asarray(predicted, dtype=float), events[data.labels["won"]].to_numpy(dtype=float)


def ordinary_rows(frame: pd.DataFrame, fold: EvaluationFold,
                  bar_columns: Sequence[str]) -> pd.DataFrame:
    """The feature rows of every bar in a fold's test window (numeric columns only, bar
    prices and volume dropped): the ordinary bars an OOD test must not flag."""
    return _inside(frame, fold).drop(columns=list(bar_columns)).select_dtypes("number")


def _inside(frame: pd.DataFrame, fold: EvaluationFold) -> pd.DataFrame:
    stamps = frame["timestamp"]
    return frame.loc[(stamps >= fold.start) & (stamps <= fold.end)]


def check_development_only(symbols: Iterable[str]) -> None:
    """Raise DataValidationError naming every held-out symbol in a training set."""
    leaked = sorted({str(s) for s in symbols if is_held_out(str(s))})
    if leaked:
        raise DataValidationError(
            f"held-out symbols in a training set: {', '.join(leaked[:10])}"
            + (f" and {len(leaked) - 10} more" if len(leaked) > 10 else ""),
            where="evaluation",
        )


# ============================================================================ one fold
@dataclass(frozen=True)
class ArmRun:
    """What one replay produced: the journal's closed trades (`exit_time`, `pnl`), daily
    equity (`timestamp`, `equity`) and decisions (`action`, `reason`)."""

    trades: pd.DataFrame
    equity: pd.DataFrame
    decisions: pd.DataFrame
    starting_equity: float

    def curve(self) -> pd.Series:
        """Equity by timestamp, starting from the starting capital (one point per bar
        time; the last mark of a timestamp wins)."""
        if self.equity.empty:
            return pd.Series(dtype=float)
        stamps = pd.to_datetime(self.equity["timestamp"], utc=True)
        series = pd.Series(self.equity["equity"].to_numpy(dtype=float), index=stamps)
        return series[~series.index.duplicated(keep="last")].sort_index()

    def daily_returns(self) -> pd.Series:
        """Per-session returns, the first against the starting capital."""
        curve = self.curve()
        if curve.empty:
            return curve
        values = np.concatenate([[self.starting_equity], curve.to_numpy()])
        return pd.Series(equity_returns(values), index=curve.index)


def arm_metrics(run: ArmRun) -> dict[str, float | int]:
    """The six figures of one arm (`core.performance`)."""
    pnl = run.trades["pnl"].to_numpy(dtype=float) if len(run.trades) else np.array([])
    curve = run.curve().to_numpy()
    points = np.concatenate([[run.starting_equity], curve])
    return {
        "trades": len(pnl),
        "win_rate": win_rate(pnl),
        "profit_factor": profit_factor(pnl),
        "sharpe": sharpe_ratio(equity_returns(points), TRADING_DAYS_PER_YEAR),
        "max_drawdown": max_drawdown(points),
        "total_return": float(points[-1] / run.starting_equity - 1.0),
    }


def refusal_reason(action: str, reason: str, category: str = "") -> str | None:
    """The category of one journaled decision; None for an entry.

    The journal's `category` when it has one (the policy's engine records it); else the
    category the action or the reason names (`ev`, `gate: win probability 0.41 < 0.45`);
    else the engine's older actions: `gated` → gate, `regime_mismatch` → regime, a model
    failure → model_unavailable unless it was the out-of-distribution refusal (→ ood),
    `rejected` → sizing when its rule was sizing, else risk."""
    action, reason, category = str(action), str(reason), str(category or "")
    if action in ("entered", "enter"):
        return None
    if category in REFUSAL_REASONS:
        return category
    head = reason.split(":", 1)[0].strip()  # "ev: win probability 0.41 < 0.45" → ev
    if head in REFUSAL_REASONS and not (head == "model_unavailable" and _OOD_MARK in reason):
        return head
    if action in REFUSAL_REASONS:
        return "ood" if action == "model_unavailable" and _OOD_MARK in reason else action
    if action == "rejected":
        return "sizing" if reason.startswith("sizing") else "risk"
    category = _LEGACY_ACTIONS.get(action, "model_unavailable")
    return "ood" if _OOD_MARK in reason else category


def _categories(decisions: pd.DataFrame) -> list[str | None]:
    if decisions.empty:
        return []
    categories = decisions["category"] if "category" in decisions else [""] * len(decisions)
    return [refusal_reason(a, r, c) for a, r, c in
            zip(decisions["action"], decisions["reason"], categories, strict=True)]


def refusal_counts(decisions: pd.DataFrame) -> dict[str, int]:
    """Refused signals per category (every category present, zeros included)."""
    counts = dict.fromkeys(REFUSAL_REASONS, 0)
    for category in _categories(decisions):
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    return counts


def gate_coverage(decisions: pd.DataFrame) -> float | None:
    """Share of the signals the policy judged that it let through: entries / (entries +
    refusals of the policy's own categories). None when it judged none."""
    categories = _categories(decisions)
    entered = sum(1 for c in categories if c is None)
    refused = sum(1 for c in categories if c in POLICY_REASONS)
    return entered / (entered + refused) if entered + refused else None


def signal_scores(win_probability: np.ndarray, won: np.ndarray) -> dict[str, float]:
    """ROC AUC (NaN with one class) and Brier score of win probabilities."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    predicted = np.asarray(win_probability, dtype=float)
    actual = np.asarray(won, dtype=int)
    if predicted.size == 0:
        return {"auc": math.nan, "brier": math.nan, "events": 0}
    auc = roc_auc_score(actual, predicted) if len(np.unique(actual)) == 2 else math.nan
    return {"auc": float(auc), "brier": float(brier_score_loss(actual, predicted)),
            "events": int(predicted.size)}


def false_alarm_rate(flags: np.ndarray) -> float | None:
    """Share of ordinary bars flagged out of distribution (None without bars)."""
    values = np.asarray(flags, dtype=bool)
    return float(values.mean()) if values.size else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the quotient undefined
    (a zero or infinite denominator). An infinite numerator stays infinite."""
    if numerator is None or denominator is None:
        return None
    if not (math.isfinite(denominator) and denominator > 0) or math.isnan(numerator):
        return None
    return float(numerator / denominator)


@dataclass(frozen=True)
class FoldResult:
    """Everything measured on one fold."""

    fold: EvaluationFold
    ungated: ArmRun
    policy: ArmRun
    scores: Mapping[str, float]  # auc, brier, events
    ood_false_alarm_rate: float | None
    regime: Mapping[str, float]  # macro_f1, majority_macro_f1 (logged, out of time)

    def section(self) -> dict[str, Any]:
        """The fold's entry of the report (`FOLD_KEYS` and the fold's own figures)."""
        ungated, policy = arm_metrics(self.ungated), arm_metrics(self.policy)
        return {
            "start": self.fold.start.isoformat(),
            "end": self.fold.end.isoformat(),
            "auc": self.scores.get("auc"),
            "brier": self.scores.get("brier"),
            "ungated": ungated,
            "policy": policy,
            "year": self.fold.year,
            **({"label": self.fold.label} if self.fold.label else {}),
            "train_end": self.fold.train_end.isoformat(),
            "events": self.scores.get("events"),
            "pf_ratio": ratio(policy["profit_factor"], ungated["profit_factor"]),
            "dd_ratio": ratio(policy["max_drawdown"], ungated["max_drawdown"]),
            "kept_ratio": ratio(policy["trades"], ungated["trades"]),
            "coverage": gate_coverage(self.policy.decisions),
            "refusals": refusal_counts(self.policy.decisions),
            "ungated_refusals": refusal_counts(self.ungated.decisions),
            "ood_false_alarm_rate": self.ood_false_alarm_rate,
            "regime": dict(self.regime),
            "equity": {"ungated": _points(self.ungated.curve()),
                       "policy": _points(self.policy.curve())},
        }


def _points(curve: pd.Series) -> list[list[Any]]:
    return [[stamp.isoformat(), float(value)] for stamp, value in curve.items()]


# ============================================================================ pooling
@dataclass(frozen=True)
class PairedDays:
    """Both arms on the same sessions, folds chained in time: daily returns, and each
    trade's P&L on the session it closed (its index into the sessions)."""

    ungated_returns: np.ndarray
    policy_returns: np.ndarray
    ungated_trades: tuple[np.ndarray, np.ndarray]  # (session index, pnl)
    policy_trades: tuple[np.ndarray, np.ndarray]

    @property
    def sessions(self) -> int:
        return int(self.ungated_returns.size)

    @classmethod
    def from_folds(cls, results: Sequence[FoldResult]) -> PairedDays:
        ungated_returns: list[np.ndarray] = []
        policy_returns: list[np.ndarray] = []
        trades: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"ungated": [], "policy": []}
        offset = 0
        for result in sorted(results, key=lambda r: r.fold.start):
            both = pd.concat(
                {"ungated": result.ungated.daily_returns(),
                 "policy": result.policy.daily_returns()}, axis=1
            ).fillna(0.0).sort_index()
            ungated_returns.append(both["ungated"].to_numpy(dtype=float))
            policy_returns.append(both["policy"].to_numpy(dtype=float))
            for arm, run in (("ungated", result.ungated), ("policy", result.policy)):
                trades[arm].append(_trades_by_session(run.trades, both.index, offset))
            offset += len(both)

        def joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
            if not parts:
                return np.array([], dtype=int), np.array([], dtype=float)
            return (np.concatenate([p[0] for p in parts]).astype(int),
                    np.concatenate([p[1] for p in parts]).astype(float))

        return cls(
            np.concatenate(ungated_returns) if ungated_returns else np.array([]),
            np.concatenate(policy_returns) if policy_returns else np.array([]),
            joined(trades["ungated"]),
            joined(trades["policy"]),
        )


def _trades_by_session(
    trades: pd.DataFrame, sessions: pd.DatetimeIndex, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    if trades.empty or sessions.empty:
        return np.array([], dtype=int), np.array([], dtype=float)
    exits = pd.DatetimeIndex(pd.to_datetime(trades["exit_time"], utc=True))
    position = np.clip(sessions.searchsorted(exits, side="right") - 1, 0, len(sessions) - 1)
    return position + offset, trades["pnl"].to_numpy(dtype=float)


def pooled_ratios(days: PairedDays) -> dict[str, float | None]:
    """Profit-factor and drawdown ratios (policy / ungated) over all the folds."""
    return {
        "pf_ratio": ratio(profit_factor(days.policy_trades[1]),
                          profit_factor(days.ungated_trades[1])),
        "dd_ratio": ratio(_chained_drawdown(days.policy_returns),
                          _chained_drawdown(days.ungated_returns)),
    }


def _chained_drawdown(returns: np.ndarray) -> float:
    return max_drawdown(np.concatenate([[1.0], np.cumprod(1.0 + returns)]))


def block_bootstrap_intervals(
    days: PairedDays,
    *,
    resamples: int = 2_000,
    block_sessions: int = 20,
    level: float = 0.90,
    seed: int = 42,
) -> dict[str, tuple[float, float] | None]:
    """`level` intervals of the pooled profit-factor and drawdown ratios from a moving
    block bootstrap over sessions: blocks of `block_sessions` consecutive sessions drawn
    with replacement until the sample is as long as the original; both arms see the same
    sessions, so the ratio keeps their pairing. Same seed, same intervals. None when
    fewer than half the resamples give a defined ratio."""
    count = days.sessions
    if count == 0:
        return {"pf_ratio_ci": None, "dd_ratio_ci": None}
    block = max(1, min(block_sessions, count))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, count - block + 1, size=(resamples, math.ceil(count / block)))
    picks = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)
    picks = picks[:, :count]
    weights = np.zeros((resamples, count))
    np.add.at(weights, (np.arange(resamples)[:, None], picks), 1.0)

    def factor(trades: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        session, pnl = trades
        gains = np.bincount(session, weights=np.clip(pnl, 0, None), minlength=count)
        losses = np.bincount(session, weights=np.clip(-pnl, 0, None), minlength=count)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((weights @ gains) / (weights @ losses))

    def drawdown(returns: np.ndarray) -> np.ndarray:
        growth = np.cumprod(1.0 + returns[picks], axis=1)
        growth = np.concatenate([np.ones((resamples, 1)), growth], axis=1)
        return np.asarray((1.0 - growth / np.maximum.accumulate(growth, axis=1)).max(axis=1))

    with np.errstate(divide="ignore", invalid="ignore"):
        pf = factor(days.policy_trades) / factor(days.ungated_trades)
        dd = drawdown(days.policy_returns) / drawdown(days.ungated_returns)
    tail = (1.0 - level) / 2.0 * 100.0

    def interval(values: np.ndarray) -> tuple[float, float] | None:
        finite = values[np.isfinite(values)]
        if finite.size < resamples / 2:
            return None
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        return float(low), float(high)

    return {"pf_ratio_ci": interval(pf), "dd_ratio_ci": interval(dd)}


def worst_fold(sections: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The fold where the policy did worst against the ungated engine: the lowest
    profit-factor ratio, a fold with no defined ratio (the policy starved or the ungated
    engine never lost) first."""
    if not sections:
        return None

    def badness(section: Mapping[str, Any]) -> tuple[float, float]:
        pf = section.get("pf_ratio")
        sharpe_gap = section["policy"]["sharpe"] - section["ungated"]["sharpe"]
        return (-math.inf if pf is None else float(pf), float(sharpe_gap))

    worst = min(sections, key=badness)
    keys = ("year", "start", "end", "pf_ratio", "dd_ratio", "kept_ratio", "auc")
    return {key: worst.get(key) for key in keys} | (
        {"label": worst["label"]} if worst.get("label") else {})


def pooled_signal_scores(
    predictions: Sequence[np.ndarray], outcomes: Sequence[np.ndarray]
) -> dict[str, float]:
    """AUC and Brier over every fold's held-out events together (each scored by its own
    fold's model)."""
    if not predictions:
        return signal_scores(np.array([]), np.array([]))
    return signal_scores(np.concatenate(predictions), np.concatenate(outcomes))


def summarize(
    results: Sequence[FoldResult],
    *,
    pooled_scores: Mapping[str, float] | None = None,
    seed: int = 42,
    resamples: int = 2_000,
    block_sessions: int = 20,
) -> dict[str, Any]:
    """The report's `evaluation` section: the folds, the pooled ratios with their
    intervals, kept ratio, worst fold and refusals (the `EVALUATION_KEYS`), and the
    pooled signal scores, out-of-distribution and regime figures next to them."""
    sections = [r.section() for r in sorted(results, key=lambda r: r.fold.start)]
    days = PairedDays.from_folds(results)
    refusals = dict.fromkeys(REFUSAL_REASONS, 0)
    for section in sections:
        for reason, count in section["refusals"].items():
            refusals[reason] = refusals.get(reason, 0) + count
    ungated_trades = sum(s["ungated"]["trades"] for s in sections)
    policy_trades = sum(s["policy"]["trades"] for s in sections)
    alarms = [s["ood_false_alarm_rate"] for s in sections
              if s["ood_false_alarm_rate"] is not None]
    coverages = [s["coverage"] for s in sections if s["coverage"] is not None]
    return {
        "folds": sections,
        **pooled_ratios(days),
        **block_bootstrap_intervals(days, resamples=resamples, block_sessions=block_sessions,
                                    seed=seed),
        "kept_ratio": ratio(policy_trades, ungated_trades),
        "worst_fold": worst_fold(sections),
        "refusals": refusals,
        "auc": (pooled_scores or {}).get("auc"),
        "brier": (pooled_scores or {}).get("brier"),
        "coverage": float(np.mean(coverages)) if coverages else None,
        "ood_false_alarm_rate": max(alarms) if alarms else None,
        "bootstrap": {"resamples": resamples, "block_sessions": block_sessions,
                      "level": 0.90, "seed": seed, "sessions": days.sessions},
    }


def check_evaluation(evaluation: Mapping[str, Any]) -> None:
    """Raise DataValidationError naming every key of the report contract that is missing."""
    missing = [key for key in EVALUATION_KEYS if key not in evaluation]
    for number, fold in enumerate(evaluation.get("folds", [])):
        missing += [f"folds[{number}].{key}" for key in FOLD_KEYS if key not in fold]
        for arm in ("ungated", "policy"):
            missing += [f"folds[{number}].{arm}.{key}" for key in ARM_METRICS
                        if key not in fold.get(arm, {})]
    if missing:
        raise DataValidationError(f"evaluation lacks {', '.join(missing)}", where="evaluation")


def data_section(development: pd.DataFrame, held_out: pd.DataFrame) -> dict[str, Any]:
    """What a run used: every symbol (development ones train, held-out ones trade), how
    many of them are held out, their bars, the first and last session."""
    stamps = pd.concat([development["timestamp"], held_out["timestamp"]])
    return {
        "symbols": int(development["symbol"].nunique() + held_out["symbol"].nunique()),
        "held_out_symbols": int(held_out["symbol"].nunique()),
        "bars": len(development) + len(held_out),
        "start": stamps.min().date().isoformat() if len(stamps) else None,
        "end": stamps.max().date().isoformat() if len(stamps) else None,
    }


# ============================================================================ targets
def regime_figures(metrics: Mapping[str, float]) -> dict[str, float]:
    """The regime classifier's logged out-of-time macro-F1 and its majority baseline (as
    logged, else from the majority class's share)."""
    baseline = metrics.get("majority_macro_f1")
    return {"macro_f1": float(metrics.get("macro_f1", math.nan)),
            "majority_macro_f1": float(baseline) if baseline is not None
            else regime_baseline(metrics.get("majority_accuracy", 0.0))}


def evaluation_metrics(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The section's numbers as flat MLflow metrics (`fold_2016_policy_trades`, …);
    undefined ones left out."""
    figures = ("auc", "brier", "pf_ratio", "dd_ratio", "kept_ratio", "coverage",
               "ood_false_alarm_rate")
    values: dict[str, Any] = {key: evaluation.get(key) for key in figures}
    for key in ("pf_ratio_ci", "dd_ratio_ci"):
        values[f"{key}_low"], values[f"{key}_high"] = evaluation.get(key) or (None, None)
    for fold in evaluation.get("folds", []):
        prefix = f"fold_{fold_name(fold).replace('-', '')}_"
        values.update({prefix + key: fold.get(key) for key in figures})
        for arm in ("ungated", "policy"):
            values.update({f"{prefix}{arm}_{k}": v for k, v in fold[arm].items()})
    return {key: float(value) for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value)}


def fold_name(fold: Mapping[str, Any]) -> str:
    """A report fold's name: its label (intraday: its first session), else its year."""
    return str(fold.get("label") or fold["year"])


def regime_baseline(majority_accuracy: float, classes: int = 4) -> float:
    """Macro-F1 of always predicting the majority class: that class scores
    2p/(1+p) (precision p, recall 1), every other class 0."""
    share = float(majority_accuracy)
    return 2 * share / (1 + share) / classes if share > 0 else 0.0


@dataclass(frozen=True)
class Target:
    """One issue-11 target and what was measured."""

    name: str
    goal: str
    measured: str
    met: bool


def _shown(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def policy_targets(evaluation: Mapping[str, Any]) -> list[Target]:
    """Every target of issue 11, met or missed, from an `evaluation` section."""
    folds = evaluation.get("folds", [])
    aucs = [f.get("auc") for f in folds]
    defined = [a for a in aucs if a is not None and math.isfinite(a)]
    pooled_auc = evaluation.get("auc")
    pf, dd, kept = evaluation.get("pf_ratio"), evaluation.get("dd_ratio"), \
        evaluation.get("kept_ratio")
    alarm = evaluation.get("ood_false_alarm_rate")
    regimes = [f.get("regime", {}) for f in folds]
    f1s = [r.get("macro_f1") for r in regimes if r.get("macro_f1") is not None]
    beats = [r["macro_f1"] > r.get("majority_macro_f1", math.inf) for r in regimes
             if r.get("macro_f1") is not None]
    return [
        Target("pooled signal AUC", "≥ 0.56", _shown(pooled_auc),
               pooled_auc is not None and pooled_auc >= 0.56),
        Target("every fold's AUC", "≥ 0.52", ", ".join(_shown(a) for a in aucs),
               bool(folds) and len(defined) == len(folds) and min(defined) >= 0.52),
        Target("profit factor, policy / ungated", "≥ 1.15",
               f"{_shown(pf)} (90% CI {_interval(evaluation.get('pf_ratio_ci'))})",
               pf is not None and pf >= 1.15),
        Target("max drawdown, policy / ungated", "≤ 0.85",
               f"{_shown(dd)} (90% CI {_interval(evaluation.get('dd_ratio_ci'))})",
               dd is not None and dd <= 0.85),
        Target("trades kept", "≥ 0.30", _shown(kept), kept is not None and kept >= 0.30),
        Target("OOD false alarms, ordinary next-year bars (worst fold)", "≤ 5%",
               "–" if alarm is None else f"{alarm:.1%}", alarm is not None and alarm <= 0.05),
        Target("regime macro-F1 (every fold)", "≥ 0.5",
               ", ".join(_shown(f) for f in f1s), bool(f1s) and min(f1s) >= 0.5),
        Target("regime macro-F1 above its majority baseline (every fold)", "above",
               ", ".join(f"{_shown(r.get('macro_f1'))} vs {_shown(r.get('majority_macro_f1'))}"
                         for r in regimes), bool(beats) and all(beats)),
    ]


def _interval(bounds: Sequence[float] | None) -> str:
    return "–" if not bounds else f"{bounds[0]:.2f}–{bounds[1]:.2f}"


# ============================================================================ tracking
class ExperimentTracker:
    """A `Tracker` that files every run in one experiment (the evaluation's), named
    `<prefix><run name>` and tagged with the experiment it would have gone to, so the
    folds' model runs sit next to the evaluation run and never among the models' own."""

    def __init__(self, inner: Tracker, experiment: str = EXPERIMENT, prefix: str = "") -> None:
        self.inner = inner
        self.experiment = experiment
        self.prefix = prefix
        self.tracking_uri = inner.tracking_uri

    @contextlib.contextmanager
    def run(
        self, experiment: str, run_name: str, tags: Mapping[str, str]
    ) -> Iterator[TrackedRun]:
        tagged = {**tags, "model_experiment": experiment}
        with self.inner.run(self.experiment, f"{self.prefix}{run_name}", tagged) as run:
            yield run
