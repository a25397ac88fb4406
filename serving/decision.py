"""The decision logic shared by the HTTP service and the in-process client.

One call: check the features against the deciding arm's columns, route the signal
(sticky A/B), run the four models, optionally shadow the challenger, and queue the
decision for the log. The served model sets are read once per call from a provider, so a
hot reload that swaps them mid-request never mixes versions inside one decision: the
request finishes on the set it started with."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from core.errors import ModelUnavailableError, TradewindError
from core.types import Signal
from serving.decision_log import DecisionLog, DecisionRecord, feature_hash
from serving.predictor import (
    DrawdownCall,
    ExitLevels,
    ModelOutputs,
    ModelSetLike,
    RegimeCall,
    drawdown_call,
    exit_levels,
    feature_frame,
    out_of_distribution,
    predict_all,
    regime_call,
    win_probability,
)
from serving.router import ABRouter, Route
from serving.schemas import ATR_FEATURE, DecisionOut, Variant, check_features

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


class DecisionMaker:
    """Turns (signal, features) into a decision with the served models."""

    def __init__(
        self,
        models: Callable[[], ServedModels],
        router: ABRouter,
        *,
        log: DecisionLog | None = None,
        observer: DecisionObserver | None = None,
    ) -> None:
        self._models = models
        self.router = router
        self.log = log
        self.observer = observer

    # -- the whole decision ------------------------------------------------------------
    def decide(self, signal: Signal, features: Mapping[str, float | None]) -> DecisionOut:
        prepared = self.prepare(signal, features)
        X = feature_frame(prepared.model_set, prepared.values)
        outputs = predict_all(
            prepared.model_set, X, side=signal.side, price=signal.price, atr=prepared.atr
        )
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
            win_probability=outputs.win_probability,
            stop_loss_atr=outputs.exits.stop_loss_atr,
            take_profit_atr=outputs.exits.take_profit_atr,
            stop_loss_price=outputs.exits.stop_loss_price,
            take_profit_price=outputs.exits.take_profit_price,
            regime=outputs.regime.regime,
            regime_probabilities=outputs.regime.regime_probabilities,
            expected_drawdown_pct=outputs.drawdown.expected_drawdown_pct,
            drawdown_p10_pct=outputs.drawdown.drawdown_p10_pct,
            drawdown_p90_pct=outputs.drawdown.drawdown_p90_pct,
            out_of_distribution=outputs.out_of_distribution,
            shadowed=shadow_versions is not None,
            latency_ms=latency_s * 1000.0,
            decided_at=decided_at,
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
                    outputs=outputs.as_dict(),
                    out_of_distribution=outputs.out_of_distribution,
                    latency_ms=latency_s * 1000.0,
                    shadow_model_versions=shadow_versions,
                    shadow_outputs=shadow_outputs,
                )
            )
        if self.observer is not None:
            self.observer.decided("decide", prepared.route.variant, latency_s,
                                  outputs.out_of_distribution)
        return answer

    # -- one model at a time (the per-model endpoints) ---------------------------------
    def signal_quality(
        self, signal: Signal, features: Mapping[str, float | None]
    ) -> tuple[Prepared, float, bool]:
        prepared = self.prepare(signal, features)
        X = feature_frame(prepared.model_set, prepared.values)
        probability = win_probability(prepared.model_set, X)
        ood = out_of_distribution(prepared.model_set, X)
        self._observe("signal_quality", prepared, ood=ood)
        return prepared, probability, ood

    def exit(
        self, signal: Signal, features: Mapping[str, float | None]
    ) -> tuple[Prepared, ExitLevels]:
        prepared = self.prepare(signal, features)
        X = feature_frame(prepared.model_set, prepared.values)
        levels = exit_levels(
            prepared.model_set, X, side=signal.side, price=signal.price, atr=prepared.atr
        )
        self._observe("exit", prepared)
        return prepared, levels

    def regime(
        self, signal: Signal, features: Mapping[str, float | None]
    ) -> tuple[Prepared, RegimeCall]:
        prepared = self.prepare(signal, features)
        call = regime_call(prepared.model_set, feature_frame(prepared.model_set, prepared.values))
        self._observe("regime", prepared)
        return prepared, call

    def risk(
        self, signal: Signal, features: Mapping[str, float | None]
    ) -> tuple[Prepared, DrawdownCall]:
        prepared = self.prepare(signal, features)
        call = drawdown_call(prepared.model_set, feature_frame(prepared.model_set, prepared.values))
        self._observe("risk", prepared)
        return prepared, call

    # -- shared steps ------------------------------------------------------------------
    def prepare(self, signal: Signal, features: Mapping[str, float | None]) -> Prepared:
        started = time.perf_counter()
        models = self._models()
        signal_id = signal.signal_id
        route = self.router.route(signal_id, has_challenger=models.challenger is not None)
        model_set = models.arm(route.variant)
        values, atr = checked_values(features, model_set, models.accepted)
        return Prepared(signal, signal_id, route, models, model_set, values, atr, started)

    def _shadow(
        self, prepared: Prepared, features: Mapping[str, float | None]
    ) -> tuple[dict[str, object] | None, dict[str, str] | None]:
        challenger = prepared.models.challenger
        if not prepared.route.shadow or challenger is None:
            return None, None
        try:
            values, _ = checked_values(features, challenger, prepared.models.accepted)
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


def request_names(model_set: ModelSetLike) -> list[str]:
    """The features a request must carry for this model set: the models' inputs plus
    `atr_14`, which places the exits even when no model takes it as an input."""
    names = list(model_set.feature_names)
    return names if ATR_FEATURE in names else [*names, ATR_FEATURE]


def checked_values(
    features: Mapping[str, float | None],
    model_set: ModelSetLike,
    accepted: frozenset[str] = frozenset(),
) -> tuple[list[float], float]:
    """The models' input values in column order, and the ATR for the exits."""
    names = request_names(model_set)
    values = check_features(features, names, accepted)
    return values[: len(model_set.feature_names)], values[names.index(ATR_FEATURE)]


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

