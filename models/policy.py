"""The decision policy: the one place where the four models' predictions become enter or
skip and a size. Fitted with the signal-quality model on its training window, saved as
JSON next to it (`policy.json`), loaded into `models.loading.ModelSet`, and applied by the
model service (`serving.decision`) and, through it, obeyed by the engine.

Fitted on the training window (`fit_policy`), per strategy s:
- payoffs of the strategy under the engine's exits, net of costs (the labels): `avg_win`
  = mean net return of winners, `avg_loss` = mean |net return| of losers; break-even
  probability `p_ev = avg_loss / (avg_win + avg_loss)` (expected value 0);
- a static threshold `max(p_ev, in-window quantile of the out-of-fold win probabilities)`
  (the median by default), clipped so that the in-window coverage lies in
  [`min_coverage`, `max_coverage`];
- Kelly sizing from the same probability and payoffs: f* = p − (1 − p)/b with
  b = avg_win/avg_loss; size = clip(kelly_fraction · f* · norm, floor, cap), `norm` fitted
  so that the in-window mean size of entered signals is `base_size_fraction` (the ungated
  size). An entered signal with f* ≤ 0 gets the floor: sizing never vetoes the gate.
  With `size_follows_guard` (off by default), a signal whose threshold the coverage guard
  (below) has moved by d from the fitted one is sized as p − d;
- the tail of the in-window probabilities, which seeds the coverage guard (below);
- the skill check, on the out-of-time slice the model never fitted (`skill_check`): the
  policy against pass-through (enter everything at the ungated size) on the labelled
  events; a policy whose profit-factor ratio does not exceed `min_skill_pf_ratio` is
  inactive and passes every signal through at the ungated size.

Per signal (`FittedPolicy.decide`), refusal reasons in order:
- `ood`: the inputs are out of distribution and `ood_action` is `skip` (`half_size` halves
  the size instead, `ignore` does nothing);
- `ev` (mode `expected_value`): p not above the threshold. The threshold is the static one
  clipped to [Q_low, Q_high] of the same strategy's win probabilities over the previous
  `guard_lookback_days` trading days (with at least `guard_min_signals` of them), so a
  year whose probabilities all sit lower does not starve the engine;
- `gate` (mode `probability`): p below the absolute `win_probability_gate` (the seed's);
- `regime` (`regime_mode: gate`): the regime does not select the strategy. With
  `regime_mode: size` the size is scaled by `regime_scale` instead (also in a calm market).

`evaluate_decisions` turns enter/size decisions on labelled events into trades, win rate,
profit factor, Sharpe, maximum drawdown and return (`core.performance`): the yardstick of
the skill check and of the retrain comparison. Pure numpy/pandas; no I/O."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from core.errors import DataValidationError
from core.performance import max_drawdown, profit_factor, sharpe_ratio, win_rate
from core.regimes import selects
from core.settings import PolicySettings, Settings
from core.types import ENTER, SKIP, Regime

POLICY_VERSION = 1


class PolicyConfig(PolicySettings):
    """The `models.policy` settings plus the figures the policy takes from elsewhere in
    the settings: the probability gate, the Kelly fraction and the position cap."""

    win_probability_gate: float = Field(0.65, ge=0, le=1)
    kelly_fraction: float = Field(0.5, gt=0, le=1)
    max_size_fraction: float = Field(0.10, gt=0, le=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyConfig:
        return cls(
            **settings.models.policy.model_dump(),
            win_probability_gate=settings.models.win_probability_gate,
            kelly_fraction=settings.risk.kelly_fraction,
            max_size_fraction=settings.risk.max_position_pct,
        )


@dataclass(frozen=True, slots=True)
class StrategyPayoff:
    """One strategy's payoffs under the engine's exits, and its fitted threshold."""

    avg_win: float
    avg_loss: float
    threshold: float
    coverage: float  # share of in-window signals above the threshold
    signals: int

    @property
    def break_even(self) -> float:
        """The win probability at which the expected value is zero."""
        return self.avg_loss / (self.avg_win + self.avg_loss)

    @property
    def payoff_ratio(self) -> float:
        return self.avg_win / self.avg_loss

    def expected_value(self, win_probability: float) -> float:
        return win_probability * self.avg_win - (1.0 - win_probability) * self.avg_loss

    def kelly(self, win_probability: float) -> float:
        return win_probability - (1.0 - win_probability) / self.payoff_ratio


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the policy decided for one signal."""

    action: str  # ENTER | SKIP
    reason: str  # a `core.types.REASONS` category when skipped, "" when entered
    detail: str
    expected_value: float
    threshold: float
    size_fraction: float  # of equity; 0 when skipped

    @property
    def enter(self) -> bool:
        return self.action == ENTER


@dataclass(frozen=True, slots=True)
class SignalView:
    """What the policy sees of one signal."""

    strategy: str
    win_probability: float
    out_of_distribution: bool = False
    regime: Regime | None = None
    expected_drawdown_pct: float | None = None
    # the same strategy's win probabilities over the guard's lookback (None: no guard)
    recent: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """Trades of enter/size decisions on labelled events (`evaluate_decisions`)."""

    trades: int
    win_rate: float
    profit_factor: float
    sharpe: float
    max_drawdown: float
    total_return: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class PolicySkill:
    """The policy against pass-through on the out-of-time slice of the training window."""

    policy: PolicyResult
    ungated: PolicyResult
    start: str
    end: str

    @property
    def pf_ratio(self) -> float:
        return _ratio(self.policy.profit_factor, self.ungated.profit_factor)

    @property
    def kept(self) -> float:
        return self.policy.trades / self.ungated.trades if self.ungated.trades else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.as_dict(),
            "ungated": self.ungated.as_dict(),
            "start": self.start,
            "end": self.end,
            "pf_ratio": self.pf_ratio,
            "kept": self.kept,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PolicySkill:
        return cls(
            policy=PolicyResult(**payload["policy"]),
            ungated=PolicyResult(**payload["ungated"]),
            start=str(payload["start"]),
            end=str(payload["end"]),
        )


@dataclass(frozen=True)
class FittedPolicy:
    """The policy's fitted state and its decision rule."""

    config: PolicyConfig
    payoffs: dict[str, StrategyPayoff]
    pooled: StrategyPayoff  # for a strategy the window did not have
    size_norm: float
    tolerable_drawdown_pct: float  # in-window median drawdown (drawdown scaling)
    # (session date, win probability) of the window's last `guard_lookback_days` sessions
    guard_seed: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    calibration: str = "out-of-fold"
    skill: PolicySkill | None = None
    # (stop, target) in ATR: the exits the payoffs were measured with (`exits: fixed`)
    exits: tuple[float, float] | None = None

    # -- state ---------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """False when the policy did not beat pass-through out of time."""
        return self.skill is None or self.skill.pf_ratio > self.config.min_skill_pf_ratio

    def payoff(self, strategy: str) -> StrategyPayoff:
        return self.payoffs.get(strategy, self.pooled)

    def with_skill(self, skill: PolicySkill) -> FittedPolicy:
        return replace(self, skill=skill)

    def with_config(self, config: PolicyConfig) -> FittedPolicy:
        """The same fitted numbers under other decision-time choices (mode, OOD action,
        regime mode, guard): settings changed after training."""
        return replace(self, config=config)

    # -- the decision ----------------------------------------------------------------
    def decide(self, view: SignalView) -> PolicyDecision:
        c = self.config
        payoff = self.payoff(view.strategy)
        p = float(view.win_probability)
        ev = payoff.expected_value(p)
        notes: list[str] = []
        if c.mode == "expected_value" and not self.active:
            return PolicyDecision(
                ENTER, "", "policy inactive (no skill out of time): pass-through", ev,
                0.0, c.base_size_fraction,
            )
        threshold = self.threshold(view)
        if view.out_of_distribution and c.ood_action == "skip":
            return _skip("ood", "inputs out of the training distribution", ev, threshold)
        if c.mode == "probability":
            if p < threshold:
                return _skip("gate", f"win probability {p:.3f} < gate {threshold:.2f}", ev,
                             threshold)
        elif p <= threshold:
            return _skip(
                "ev",
                f"win probability {p:.3f} <= threshold {threshold:.3f} "
                f"(break-even {payoff.break_even:.3f}, expected value {ev:+.4f})",
                ev, threshold,
            )
        scale = 1.0
        if view.out_of_distribution and c.ood_action == "half_size":
            scale *= 0.5
            notes.append("out of distribution: half size")
        if c.regime_mode != "off" and view.regime is not None:
            fits = selects(view.regime, view.strategy)
            if not fits and c.regime_mode == "gate":
                return _skip(
                    "regime", f"regime {view.regime.value} does not select {view.strategy}",
                    ev, threshold,
                )
            if not fits or view.regime is Regime.CALM:
                scale *= c.regime_scale
                notes.append(f"regime {view.regime.value}: x{c.regime_scale:g}")
        # Sizing follows the gate: when the guard has moved the threshold off the fitted
        # one (the year's probabilities sit lower or higher), the probability is sized as
        # if moved by the same amount, so a drift the gate corrects does not send every
        # entry to the floor (or the cap).
        sized = p
        if c.mode == "expected_value" and c.size_follows_guard:
            sized = min(max(p + payoff.threshold - threshold, 0.0), 1.0)
            if sized != p:
                notes.append(f"sized at {sized:.3f} (guard moved the threshold "
                             f"{threshold - payoff.threshold:+.3f})")
        size = self.size_fraction(sized, view.strategy) * scale
        if c.drawdown_scaling and view.expected_drawdown_pct and view.expected_drawdown_pct > 0:
            size *= min(1.0, max(0.25, self.tolerable_drawdown_pct / view.expected_drawdown_pct))
            notes.append("drawdown-scaled")
        return PolicyDecision(ENTER, "", "; ".join(notes), ev, threshold, size)

    def threshold(self, view: SignalView) -> float:
        """The win probability this signal must beat (see the module doc)."""
        c = self.config
        if c.mode == "probability":
            return c.win_probability_gate
        static = self.payoff(view.strategy).threshold
        recent = view.recent
        if recent is None or len(recent) < c.guard_min_signals:
            return static
        low, high = np.quantile(recent, [c.guard_lower_quantile, c.guard_upper_quantile])
        return float(min(max(static, low), high))

    def size_fraction(self, win_probability: float, strategy: str) -> float:
        """Fractional Kelly, normalised, between the floor and the cap."""
        c = self.config
        kelly = self.payoff(strategy).kelly(win_probability)
        return _kelly_size(np.array([kelly]), self.size_norm, c)[0].item()

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": POLICY_VERSION,
            "method": "expected-value gate at max(break-even, in-window quantile) with an "
            "online coverage guard; normalised fractional Kelly sizing",
            "config": self.config.model_dump(mode="json"),
            "payoffs": {name: asdict(payoff) for name, payoff in self.payoffs.items()},
            "pooled": asdict(self.pooled),
            "size_norm": self.size_norm,
            "tolerable_drawdown_pct": self.tolerable_drawdown_pct,
            "exits": None if self.exits is None else list(self.exits),
            "guard_seed": {s: [[day, p] for day, p in rows]
                           for s, rows in self.guard_seed.items()},
            "calibration": self.calibration,
            "skill": None if self.skill is None else self.skill.as_dict(),
            "active": self.active,
            "break_even": {name: p.break_even for name, p in self.payoffs.items()},
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> FittedPolicy:
        if payload.get("version") != POLICY_VERSION:
            raise DataValidationError(
                f"policy artifact version {payload.get('version')} is not {POLICY_VERSION}",
                where="policy",
            )
        return cls(
            config=PolicyConfig(**payload["config"]),
            payoffs={name: StrategyPayoff(**p) for name, p in payload["payoffs"].items()},
            pooled=StrategyPayoff(**payload["pooled"]),
            size_norm=float(payload["size_norm"]),
            tolerable_drawdown_pct=float(payload["tolerable_drawdown_pct"]),
            exits=None if payload["exits"] is None else (
                float(payload["exits"][0]), float(payload["exits"][1])),
            guard_seed={s: [(str(day), float(p)) for day, p in rows]
                        for s, rows in payload["guard_seed"].items()},
            calibration=str(payload["calibration"]),
            skill=None if payload["skill"] is None else PolicySkill.from_dict(payload["skill"]),
        )


def _skip(reason: str, detail: str, ev: float, threshold: float) -> PolicyDecision:
    return PolicyDecision(SKIP, reason, detail, ev, threshold, 0.0)


def _kelly_size(kelly: np.ndarray, norm: float, config: PolicyConfig) -> np.ndarray:
    raw = config.kelly_fraction * kelly * norm
    return np.clip(raw, config.min_size_fraction, config.max_size_fraction)


# ================================================================== fitting
def fit_policy(
    config: PolicyConfig,
    *,
    strategy: Sequence[str] | np.ndarray,
    net_return: Sequence[float] | np.ndarray,
    drawdown_pct: Sequence[float] | np.ndarray,
    calibrated_strategy: Sequence[str] | np.ndarray,
    calibrated_probability: Sequence[float] | np.ndarray,
    calibrated_timestamp: pd.Series,
    calibration: str = "out-of-fold",
) -> FittedPolicy:
    """Fit the policy on one training window.

    `strategy`, `net_return` and `drawdown_pct` describe every labelled signal of the
    window (payoffs); `calibrated_*` are the win probabilities of signals the model did
    not fit on (out-of-fold), which place the thresholds and the size normalisation."""
    strategies = np.asarray(strategy, dtype=object)
    returns = np.asarray(net_return, dtype=float)
    cal_strategy = np.asarray(calibrated_strategy, dtype=object)
    cal_p = np.asarray(calibrated_probability, dtype=float)
    if len(strategies) != len(returns) or len(cal_strategy) != len(cal_p):
        raise DataValidationError("misaligned policy inputs", where="fit_policy")
    if len(cal_p) == 0:
        raise DataValidationError("no calibrated probabilities to fit the policy on",
                                  where="fit_policy")
    pooled_avg = _payoffs(returns, None)
    payoffs: dict[str, StrategyPayoff] = {}
    for name in sorted(set(strategies) | set(cal_strategy)):
        avg = _payoffs(returns[strategies == name], pooled_avg)
        p = cal_p[cal_strategy == name]
        payoffs[str(name)] = _threshold(config, avg, p if len(p) else cal_p)
    pooled = _threshold(config, pooled_avg, cal_p)
    thresholds = np.array([payoffs[str(s)].threshold for s in cal_strategy])
    entered = cal_p > thresholds
    kelly = np.array([payoffs[str(s)].kelly(p) for s, p in zip(cal_strategy, cal_p,
                                                                  strict=True)])
    norm = _size_norm(kelly[entered], config)
    drawdowns = np.asarray(drawdown_pct, dtype=float)
    drawdowns = drawdowns[np.isfinite(drawdowns)]
    tolerable = float(np.median(drawdowns)) * 100.0 if len(drawdowns) else 5.0
    return FittedPolicy(
        config=config,
        payoffs=payoffs,
        pooled=pooled,
        size_norm=norm,
        tolerable_drawdown_pct=tolerable,
        guard_seed=_guard_seed(cal_strategy, cal_p, calibrated_timestamp,
                               config.guard_lookback_days),
        calibration=calibration,
    )


def _payoffs(
    returns: np.ndarray, fallback: tuple[float, float] | None
) -> tuple[float, float]:
    """(mean win, mean |loss|); the fallback (pooled) when a side is missing, and the
    symmetric 1:1 when even that is missing."""
    wins, losses = returns[returns > 0], returns[returns <= 0]
    if len(wins) and len(losses) and float(-losses.mean()) > 0:
        return float(wins.mean()), float(-losses.mean())
    return fallback if fallback is not None else (0.01, 0.01)


def _threshold(
    config: PolicyConfig, payoff: tuple[float, float], probabilities: np.ndarray
) -> StrategyPayoff:
    avg_win, avg_loss = payoff
    break_even = avg_loss / (avg_win + avg_loss)
    quantile = float(np.quantile(probabilities, config.threshold_quantile))
    # coverage (the share strictly above) within [min, max]: the threshold lies between
    # the order statistics with floor(max·n) and ceil(min·n) values above them
    ordered = np.sort(probabilities)
    n = len(ordered)
    most = math.floor(config.max_coverage * n)
    least = math.ceil(config.min_coverage * n)
    low = float(ordered[n - most - 1]) if most < n else -math.inf
    high = float(ordered[max(n - least - 1, 0)])
    threshold = min(max(max(break_even, quantile), low), high)
    return StrategyPayoff(
        avg_win=avg_win,
        avg_loss=avg_loss,
        threshold=threshold,
        coverage=float((probabilities > threshold).mean()),
        signals=len(probabilities),
    )


def _size_norm(kelly: np.ndarray, config: PolicyConfig) -> float:
    """The Kelly multiplier that makes the mean size of `kelly`'s signals equal the
    ungated size (bisection: the clipped mean grows with the multiplier)."""
    if len(kelly) == 0 or not (kelly > 0).any():
        return 1.0
    target = config.base_size_fraction
    low, high = 1e-4, 1e4
    for _ in range(100):
        middle = math.sqrt(low * high)
        if float(_kelly_size(kelly, middle, config).mean()) < target:
            low = middle
        else:
            high = middle
    return math.sqrt(low * high)


def _guard_seed(
    strategies: np.ndarray, probabilities: np.ndarray, timestamps: pd.Series, lookback: int
) -> dict[str, list[tuple[str, float]]]:
    sessions = session_numbers(timestamps)
    recent = sessions >= sessions.max() - lookback + 1
    days = session_dates(timestamps)
    seed: dict[str, list[tuple[str, float]]] = {}
    for index in np.flatnonzero(recent):
        seed.setdefault(str(strategies[index]), []).append(
            (days[index], float(probabilities[index])))
    return {s: sorted(rows) for s, rows in sorted(seed.items())}


# ================================================================== the coverage guard
@lru_cache(maxsize=1)
def _sessions() -> np.ndarray:
    from core.calendar import exchange_calendar

    return np.asarray(exchange_calendar().sessions.values.astype("datetime64[D]"))


def session_dates(timestamps: pd.Series | Iterable[Any]) -> list[str]:
    """The exchange-time date (ISO) of each timestamp: its session for daily bars."""
    stamps = pd.to_datetime(pd.Series(list(timestamps)), utc=True)
    return [str(day) for day in stamps.dt.tz_convert("America/New_York").dt.date]


def session_numbers(timestamps: pd.Series | Iterable[Any]) -> np.ndarray:
    """Trading-session ordinals (XNYS) of timestamps: differences count trading days."""
    days = np.asarray(session_dates(timestamps), dtype="datetime64[D]")
    return np.searchsorted(_sessions(), days, side="left").astype(np.int64)


def session_number(day: str) -> int:
    return int(np.searchsorted(_sessions(), np.datetime64(day, "D"), side="left"))


class CoverageGuard:
    """The recent win probabilities per (arm, strategy), keyed by trading session and
    deduplicated by signal id, so a replay of the same signals gives the same thresholds
    whatever the order within a session. `recent(...)` returns the probabilities of the
    `lookback` sessions strictly before a signal's session."""

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self._days: dict[tuple[str, str], list[int]] = {}
        self._probabilities: dict[tuple[str, str], list[float]] = {}
        self._seen: dict[str, int] = {}
        self._seeded: set[str] = set()
        self._latest = -1

    def seed(self, arm: str, policy: FittedPolicy) -> None:
        """Start an arm's memory with the training window's last sessions (once)."""
        if arm in self._seeded:
            return
        self._seeded.add(arm)
        for strategy, rows in policy.guard_seed.items():
            for number, (day, probability) in enumerate(rows):
                self.observe(arm, strategy, f"seed-{arm}-{strategy}-{number}",
                             session_number(day), probability)

    def seeded(self, arm: str) -> bool:
        return arm in self._seeded

    def observe(
        self, arm: str, strategy: str, signal_id: str, session: int, probability: float
    ) -> None:
        key = f"{arm}|{signal_id}"
        if key in self._seen or not math.isfinite(probability):
            return
        self._seen[key] = session
        days = self._days.setdefault((arm, strategy), [])
        values = self._probabilities.setdefault((arm, strategy), [])
        at = bisect.bisect_right(days, session)
        days.insert(at, session)
        values.insert(at, probability)
        if session > self._latest:
            self._latest = session
            self._prune()

    def recent(
        self, arm: str, strategy: str, session: int, lookback: int | None = None
    ) -> np.ndarray:
        days = self._days.get((arm, strategy))
        if not days:
            return np.empty(0)
        start = bisect.bisect_left(days, session - (lookback or self.lookback))
        stop = bisect.bisect_left(days, session)
        return np.asarray(self._probabilities[(arm, strategy)][start:stop])

    def _prune(self) -> None:
        # Memory only ever needs the lookback; keep three times that for late arrivals.
        horizon = self._latest - 3 * self.lookback
        for key, days in self._days.items():
            cut = bisect.bisect_left(days, horizon)
            if cut > len(days) // 2 and cut > 256:
                del days[:cut]
                del self._probabilities[key][:cut]
        if len(self._seen) > 50_000:
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}


# ================================================================== evaluation
def replay_policy(
    policy: FittedPolicy, signals: pd.DataFrame, *, arm: str = "replay"
) -> list[PolicyDecision]:
    """The policy's decisions on `signals` (`timestamp`, `strategy`, `win_probability`,
    optional `out_of_distribution` and `regime`) in time order, with the coverage guard
    seeded from the training window and fed every signal, as the service does."""
    guard = CoverageGuard(policy.config.guard_lookback_days)
    guard.seed(arm, policy)
    sessions = session_numbers(signals["timestamp"])
    ood = (signals["out_of_distribution"].to_numpy(dtype=bool)
           if "out_of_distribution" in signals else np.zeros(len(signals), dtype=bool))
    regimes = signals["regime"].tolist() if "regime" in signals else [None] * len(signals)
    strategies = signals["strategy"].astype(str).tolist()
    probabilities = signals["win_probability"].to_numpy(dtype=float)
    order = np.argsort(sessions, kind="stable")
    decisions: list[PolicyDecision | None] = [None] * len(signals)
    for row in order:
        strategy, session = strategies[row], int(sessions[row])
        view = SignalView(
            strategy=strategy,
            win_probability=float(probabilities[row]),
            out_of_distribution=bool(ood[row]),
            regime=None if regimes[row] is None else Regime(regimes[row]),
            recent=guard.recent(arm, strategy, session),
        )
        decisions[row] = policy.decide(view)
        guard.observe(arm, strategy, f"row-{row}", session, float(probabilities[row]))
    return [d for d in decisions if d is not None]


def evaluate_decisions(
    net_return: Sequence[float] | np.ndarray,
    size_fraction: Sequence[float] | np.ndarray,
    entry_time: pd.Series,
    exit_time: pd.Series,
) -> PolicyResult:
    """Trades of the signals with a positive size: each books size × net return on its
    exit session; equity = 1 + cumulative P&L over every session from the first entry to
    the last exit (no compounding, no capacity limit)."""
    returns = np.asarray(net_return, dtype=float)
    sizes = np.asarray(size_fraction, dtype=float)
    taken = sizes > 0
    pnl = returns[taken] * sizes[taken]
    if not taken.any():
        return PolicyResult(0, 0.0, math.nan, 0.0, 0.0, 0.0)
    first = int(session_numbers(entry_time).min())
    exits = session_numbers(pd.Series(exit_time).reset_index(drop=True)[taken])
    daily = np.zeros(max(int(exits.max()), first) - first + 1)
    np.add.at(daily, exits - first, pnl)
    equity = 1.0 + np.concatenate([[0.0], np.cumsum(daily)])
    return PolicyResult(
        trades=int(taken.sum()),
        win_rate=win_rate(pnl),
        profit_factor=profit_factor(pnl),
        sharpe=sharpe_ratio(daily),
        max_drawdown=max_drawdown(equity),
        total_return=float(equity[-1] - 1.0),
    )


def skill_check(policy: FittedPolicy, events: pd.DataFrame) -> PolicySkill:
    """The policy against pass-through on labelled `events` (`timestamp`, `exit_time`,
    `strategy`, `win_probability`, `net_return`, optional `out_of_distribution`)."""
    decisions = replay_policy(replace(policy, skill=None), events)
    sizes = np.array([d.size_fraction for d in decisions])
    flat = np.full(len(events), policy.config.base_size_fraction)
    stamps = events["timestamp"]
    return PolicySkill(
        policy=evaluate_decisions(events["net_return"], sizes, stamps, events["exit_time"]),
        ungated=evaluate_decisions(events["net_return"], flat, stamps, events["exit_time"]),
        start=str(pd.Timestamp(stamps.min()).date()),
        end=str(pd.Timestamp(stamps.max()).date()),
    )


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN when either is missing or the denominator is not a
    positive finite number (nothing to compare with); infinite for a finite base and an
    infinite numerator (no losses)."""
    if math.isnan(numerator) or not (math.isfinite(denominator) and denominator > 0):
        return math.nan
    return numerator / denominator
