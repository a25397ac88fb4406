"""The decision logic shared by the HTTP service and the in-process client.

One call: check the features against the deciding arm's columns (the signal's strategy
becomes the models' one-hot inputs here: clients never send it), route the signal (sticky
A/B), run the four models, apply the arm's decision policy (`models.policy`: enter or
skip with one reason, and a size), optionally shadow the challenger, and queue the
decision for the log. The served model sets are read once per call from a provider, so a
hot reload that swaps them mid-request never mixes versions inside one decision: the
request finishes on the set it started with.

The policy's coverage guard needs the recent win probabilities of each strategy: the
`DecisionMaker` keeps them per arm (the signal model's version), keyed by the signal's
trading session and deduplicated by signal id, so a replay of the same signals decides
the same way. A new arm starts from the training window's last sessions (the policy's
seed); on start the memory is rebuilt from the decision log. The regime the policy
reads is the regime model's when it beat its majority baseline out of time, else the
rule-based regime (`core.regimes`) of the request's market features."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from core.errors import ModelUnavailableError, TimeframeMismatch, TradewindError
from core.regimes import rule_regime
from core.types import Regime, Signal
from models.policy import (
    CoverageGuard,
    FittedPolicy,
    PolicyConfig,
    PolicyDecision,
    SignalView,
    session_number,
)
from models.schema import SIGNAL_QUALITY, is_strategy_column, strategy_column
from serving.decision_log import DecisionLog, DecisionRecord, feature_hash
from serving.predictor import (
    DrawdownCall,
    ExitLevels,
    ModelOutputs,
    ModelSetLike,
    RegimeCall,
    drawdown_call,
    exit_levels,
    exit_prices,
    feature_frame,
    out_of_distribution,
    predict_all,
    regime_call,
    win_probability,
)
from serving.router import ABRouter, Route
from serving.schemas import (
    ATR_FEATURE,
    DecisionOut,
    Variant,
    check_features,
    ignored_features,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServedModels:
    """The model sets serving right now. Replaced as a whole on reload (atomic swap)."""

    champion: ModelSetLike
    challenger: ModelSetLike | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _accepted: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def accepted(self) -> frozenset[str]:
        """Every feature a request may carry: what either arm takes."""
        cached = self._accepted
        if cached is None:
            names = set(request_names(self.champion))
            if self.challenger is not None:
                names |= set(request_names(self.challenger))
            cached = frozenset(names)
            object.__setattr__(self, "_accepted", cached)
        return cached

    def arm(self, variant: Variant) -> ModelSetLike:
        if variant == "challenger":
            if self.challenger is None:
                raise ModelUnavailableError("no challenger is loaded", where="router")
            return self.challenger
        return self.champion


class DecisionObserver(Protocol):
    """Hook for metrics: told about every decision and every refused request."""

    def decided(self, endpoint: str, variant: str, latency_s: float, ood: bool) -> None: ...

    def shadowed(self, ok: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """A routed, checked request: the arm's model set and its one-row frame."""

    signal: Signal
    signal_id: str
    route: Route
    models: ServedModels
    model_set: ModelSetLike
    values: list[float]
    atr: float
    started: float
    ignored: tuple[str, ...] = ()  # catalogue features sent that this arm does not take


@dataclass(frozen=True, slots=True)
class PolicyCall:
    """The policy's decision for one signal, with the exits and regime it used."""

    decision: PolicyDecision
    exits: ExitLevels
    regime: Regime | None
    regime_source: Literal["model", "rules"]


# How far back the decision log is read on start: the guard's lookback in trading days
# fits well inside it.
_RESTORE_CALENDAR_DAYS = 200


class DecisionMaker:
    """Turns (signal, features) into a decision with the served models.

    `policy_config` overrides the decision-time choices of every arm's fitted policy
    (mode, OOD action, regime mode, guard: the `models.policy` settings); None keeps the
    ones it was fitted with."""

    def __init__(
        self,
        models: Callable[[], ServedModels],
        router: ABRouter,
        *,
        log: DecisionLog | None = None,
        observer: DecisionObserver | None = None,
        policy_config: PolicyConfig | None = None,
    ) -> None:
        self._models = models
        self.router = router
        self.log = log
        self.observer = observer
        self.policy_config = policy_config
        self.default_policy_config = policy_config or PolicyConfig()
        self.guard = CoverageGuard(self.default_policy_config.guard_lookback_days)
        self._guard_lock = threading.Lock()
        if log is not None:
            self.restore(log)

    # -- the whole decision ------------------------------------------------------------
    def decide(
        self, signal: Signal, features: Mapping[str, float | None], timeframe: str | None = None
    ) -> DecisionOut:
        prepared = self.prepare(signal, features, timeframe)
        X = feature_frame(prepared.model_set, prepared.values)
        outputs = predict_all(
            prepared.model_set, X, side=signal.side, price=signal.price, atr=prepared.atr
        )
        call = self.apply_policy(prepared, outputs, features)
        verdict = call.decision
        shadow_outputs, shadow_versions = self._shadow(prepared, features)
        latency_s = time.perf_counter() - prepared.started
        versions = dict(prepared.model_set.versions)
        fhash = feature_hash([*prepared.values, prepared.atr])
        decided_at = datetime.now(UTC)
        decision_id = _decision_id(
            prepared.signal_id, prepared.route.variant, versions, fhash, shadow_versions
        )
        answer = DecisionOut(
            decision_id=decision_id,
            signal_id=prepared.signal_id,
            variant=prepared.route.variant,
            model_versions=versions,
            action="enter" if verdict.enter else "skip",
            reason=_reason(verdict.reason),
            reason_detail=verdict.detail,
            expected_value=_finite_or_none(verdict.expected_value),
            threshold=_finite_or_none(verdict.threshold),
            size_fraction=verdict.size_fraction,
            win_probability=outputs.win_probability,
            stop_loss_atr=call.exits.stop_loss_atr,
            take_profit_atr=call.exits.take_profit_atr,
            stop_loss_price=call.exits.stop_loss_price,
            take_profit_price=call.exits.take_profit_price,
            model_stop_loss_atr=outputs.exits.stop_loss_atr,
            model_take_profit_atr=outputs.exits.take_profit_atr,
            regime=outputs.regime.regime,
            regime_probabilities=outputs.regime.regime_probabilities,
            policy_regime=None if call.regime is None else call.regime.value,
            regime_source=call.regime_source,
            expected_drawdown_pct=outputs.drawdown.expected_drawdown_pct,
            drawdown_p10_pct=outputs.drawdown.drawdown_p10_pct,
            drawdown_p90_pct=outputs.drawdown.drawdown_p90_pct,
            out_of_distribution=outputs.out_of_distribution,
            shadowed=shadow_versions is not None,
            latency_ms=latency_s * 1000.0,
            decided_at=decided_at,
            ignored_features=list(prepared.ignored),
        )
        if self.log is not None:
            self.log.record(
                DecisionRecord(
                    decision_id=decision_id,
                    decided_at=decided_at,
                    signal_id=prepared.signal_id,
                    symbol=signal.symbol,
                    side=signal.side.value,
                    strategy=signal.strategy,
                    signal_timestamp=signal.timestamp,
                    price=signal.price,
                    feature_hash=fhash,
                    variant=prepared.route.variant,
                    model_versions=versions,
                    outputs={
                        **outputs.as_dict(),
                        "size_fraction": verdict.size_fraction,
                        "threshold": _finite_or_none(verdict.threshold),
                        "expected_value": _finite_or_none(verdict.expected_value),
                        "policy_regime": answer.policy_regime,
                        "regime_source": call.regime_source,
                        "trade_stop_loss_price": call.exits.stop_loss_price,
                        "trade_take_profit_price": call.exits.take_profit_price,
                    },
                    out_of_distribution=outputs.out_of_distribution,
                    latency_ms=latency_s * 1000.0,
                    action=answer.action,
                    reason=answer.reason,
                    reason_detail=verdict.detail,
                    shadow_model_versions=shadow_versions,
                    shadow_outputs=shadow_outputs,
                )
            )
        if self.observer is not None:
            self.observer.decided("decide", prepared.route.variant, latency_s,
                                  outputs.out_of_distribution)
        return answer

    # -- the policy --------------------------------------------------------------------
    def apply_policy(
        self, prepared: Prepared, outputs: ModelOutputs, features: Mapping[str, float | None]
    ) -> PolicyCall:
        """The arm's policy on the models' outputs; feeds the coverage guard."""
        model_set, signal = prepared.model_set, prepared.signal
        regime, source = self._regime(model_set, outputs, features)
        policy = self.policy_of(model_set)
        if policy is None:
            config = self.default_policy_config
            verdict = PolicyDecision("enter", "", "no fitted policy: pass-through",
                                     math.nan, math.nan, config.base_size_fraction)
            return PolicyCall(verdict, outputs.exits, regime, source)
        arm = arm_key(model_set)
        session = session_number(_session_day(signal))
        with self._guard_lock:
            self.guard.seed(arm, policy)
            recent = self.guard.recent(arm, signal.strategy, session,
                                       policy.config.guard_lookback_days)
            self.guard.observe(arm, signal.strategy, prepared.signal_id, session,
                               outputs.win_probability)
        verdict = policy.decide(SignalView(
            strategy=signal.strategy,
            win_probability=outputs.win_probability,
            out_of_distribution=outputs.out_of_distribution,
            regime=regime,
            expected_drawdown_pct=outputs.drawdown.expected_drawdown_pct,
            recent=recent,
        ))
        exits = outputs.exits
        if policy.config.exits == "fixed" and policy.exits is not None:
            exits = exit_prices(signal.side, signal.price, prepared.atr, *policy.exits)
        return PolicyCall(verdict, exits, regime, source)

    def policy_of(self, model_set: ModelSetLike) -> FittedPolicy | None:
        policy = model_set.policy
        if policy is None or self.policy_config is None:
            return policy
        return policy.with_config(self.policy_config)

    @staticmethod
    def _regime(
        model_set: ModelSetLike, outputs: ModelOutputs, features: Mapping[str, float | None]
    ) -> tuple[Regime | None, Literal["model", "rules"]]:
        if model_set.regime_skilled:
            return Regime(outputs.regime.regime), "model"
        return rule_regime(features), "rules"

    def restore(self, log: DecisionLog) -> int:
        """Rebuild the guard's memory from the decision log (service start); returns the
        number of decisions read."""
        rows = log.recent(timedelta(days=_RESTORE_CALENDAR_DAYS))
        with self._guard_lock:
            for row in rows:
                probability = row.win_probability
                if probability is None:
                    continue
                self.guard.observe(row.arm, row.strategy, row.signal_id,
                                   session_number(row.session_day), probability)
        return len(rows)

    # -- one model at a time (the per-model endpoints) ---------------------------------
    def signal_quality(
        self, signal: Signal, features: Mapping[str, float | None],
        timeframe: str | None = None,
    ) -> tuple[Prepared, float, bool]:
        prepared = self.prepare(signal, features, timeframe)
        X = feature_frame(prepared.model_set, prepared.values)
        probability = win_probability(prepared.model_set, X)
        ood = out_of_distribution(prepared.model_set, X)
        self._observe("signal_quality", prepared, ood=ood)
        return prepared, probability, ood

    def exit(
        self, signal: Signal, features: Mapping[str, float | None],
        timeframe: str | None = None,
    ) -> tuple[Prepared, ExitLevels]:
        prepared = self.prepare(signal, features, timeframe)
        X = feature_frame(prepared.model_set, prepared.values)
        levels = exit_levels(
            prepared.model_set, X, side=signal.side, price=signal.price, atr=prepared.atr
        )
        self._observe("exit", prepared)
        return prepared, levels

    def regime(
        self, signal: Signal, features: Mapping[str, float | None],
        timeframe: str | None = None,
    ) -> tuple[Prepared, RegimeCall]:
        prepared = self.prepare(signal, features, timeframe)
        call = regime_call(prepared.model_set, feature_frame(prepared.model_set, prepared.values))
        self._observe("regime", prepared)
        return prepared, call

    def risk(
        self, signal: Signal, features: Mapping[str, float | None],
        timeframe: str | None = None,
    ) -> tuple[Prepared, DrawdownCall]:
        prepared = self.prepare(signal, features, timeframe)
        call = drawdown_call(prepared.model_set, feature_frame(prepared.model_set, prepared.values))
        self._observe("risk", prepared)
        return prepared, call

    # -- shared steps ------------------------------------------------------------------
    def prepare(
        self, signal: Signal, features: Mapping[str, float | None], timeframe: str | None = None
    ) -> Prepared:
        started = time.perf_counter()
        models = self._models()
        signal_id = signal.signal_id
        route = self.router.route(signal_id, has_challenger=models.challenger is not None)
        model_set = models.arm(route.variant)
        if timeframe is not None:
            check_timeframe_served(model_set, timeframe)
        values, atr = checked_values(features, model_set, models.accepted, signal.strategy)
        ignored = ignored_features(features, request_names_set(model_set))
        return Prepared(signal, signal_id, route, models, model_set, values, atr, started,
                        tuple(ignored))

    def _shadow(
        self, prepared: Prepared, features: Mapping[str, float | None]
    ) -> tuple[dict[str, object] | None, dict[str, str] | None]:
        challenger = prepared.models.challenger
        if not prepared.route.shadow or challenger is None:
            return None, None
        try:
            values, _ = checked_values(features, challenger, prepared.models.accepted,
                                       prepared.signal.strategy)
            X = feature_frame(challenger, values)
            outputs: ModelOutputs = predict_all(
                challenger, X, side=prepared.signal.side, price=prepared.signal.price,
                atr=prepared.atr,
            )
        except TradewindError as exc:
            # The shadow never changes the answer: a failing challenger is logged, not raised.
            logger.warning("shadow challenger failed: %s", exc)
            if self.observer is not None:
                self.observer.shadowed(False)
            return {"error": str(exc)}, dict(challenger.versions)
        if self.observer is not None:
            self.observer.shadowed(True)
        return outputs.as_dict(), dict(challenger.versions)

    def _observe(self, endpoint: str, prepared: Prepared, *, ood: bool = False) -> None:
        if self.observer is not None:
            self.observer.decided(endpoint, prepared.route.variant,
                                  time.perf_counter() - prepared.started, ood)


def check_timeframe_served(model_set: ModelSetLike, timeframe: str) -> None:
    """Refuse (409) a decision asked for bars of another timeframe than the models were
    trained on: their probabilities, exits and drawdowns mean nothing on other bars."""
    if timeframe != model_set.timeframe:
        raise TimeframeMismatch(
            f"the request is for {timeframe} bars but the served models were trained on "
            f"{model_set.timeframe} bars; ask with timeframe {model_set.timeframe}, or "
            f"serve models trained with `tradewind train --timeframe {timeframe}`",
            where="timeframe",
        )


def request_names(model_set: ModelSetLike) -> list[str]:
    """The features a request must carry for this model set: the models' inputs (but the
    strategy indicators, which the service derives from the signal) plus `atr_14`, which
    places the exits even when no model takes it as an input."""
    names = [name for name in model_set.feature_names if not is_strategy_column(name)]
    return names if ATR_FEATURE in names else [*names, ATR_FEATURE]


_REQUEST_NAMES: dict[int, tuple[ModelSetLike, frozenset[str]]] = {}


def request_names_set(model_set: ModelSetLike) -> frozenset[str]:
    """`request_names` as a set, kept per served model set (asked on every request)."""
    cached = _REQUEST_NAMES.get(id(model_set))
    if cached is not None and cached[0] is model_set:
        return cached[1]
    if len(_REQUEST_NAMES) > 16:  # old sets after many reloads
        _REQUEST_NAMES.clear()
    names = frozenset(request_names(model_set))
    _REQUEST_NAMES[id(model_set)] = (model_set, names)
    return names


def checked_values(
    features: Mapping[str, float | None],
    model_set: ModelSetLike,
    accepted: frozenset[str] = frozenset(),
    strategy: str = "",
) -> tuple[list[float], float]:
    """The models' input values in column order (the strategy's indicator set from
    `strategy`), and the ATR for the exits."""
    names = request_names(model_set)
    values = check_features(features, names, accepted)
    by_name = dict(zip(names, values, strict=True))
    chosen = strategy_column(strategy)
    row = [
        by_name[name] if name in by_name else float(name == chosen)
        for name in model_set.feature_names
    ]
    return row, by_name[ATR_FEATURE]


def arm_key(model_set: ModelSetLike) -> str:
    """Which coverage-guard memory a model set uses: its signal model's version."""
    return str(model_set.versions.get(SIGNAL_QUALITY, "unversioned"))


def _session_day(signal: Signal) -> str:
    # daily bars are stamped at the session's midnight in New York; intraday bars belong
    # to the session of their New York date
    from zoneinfo import ZoneInfo

    return signal.timestamp.astimezone(ZoneInfo("America/New_York")).date().isoformat()


def _reason(reason: str) -> Literal["", "ev", "gate", "ood", "regime"]:
    if reason not in ("", "ev", "gate", "ood", "regime"):
        raise ModelUnavailableError(f"the policy gave an unknown reason '{reason}'",
                                    where="policy")
    return reason  # type: ignore[return-value]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _decision_id(
    signal_id: str,
    variant: str,
    versions: dict[str, str],
    fhash: str,
    shadow_versions: dict[str, str] | None,
) -> str:
    # Deterministic: the same signal, features and models (shadow included) give the same
    # id, so a client retry is one decision (the log ignores the duplicate) and backtests
    # are repeatable.
    shadow = sorted(shadow_versions.items()) if shadow_versions else None
    key = json.dumps([signal_id, variant, sorted(versions.items()), fhash, shadow])
    return hashlib.sha256(key.encode()).hexdigest()[:24]

