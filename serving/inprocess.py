"""`InProcessModelClient`: the service's decision logic without HTTP, for fast backtests.

It implements `trading.ports.ModelClient` structurally with the same `DecisionMaker` the
service runs (same feature checks, same sticky A/B routing, same shadow mode, same
decision log rows), so a backtest in process and a backtest against the running service
take the same decisions. Bad features raise `core.errors.DataValidationError` naming the
feature; a model that fails raises `ModelUnavailableError`; an out-of-distribution
decision raises `OutOfDistributionError` (the engine's fallback applies), as over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.types import Decision, Signal
from serving.decision import DecisionMaker, ServedModels
from serving.decision_log import DecisionLog
from serving.predictor import ModelSetLike
from serving.router import ABRouter, RoutingConfig
from serving.schemas import OutOfDistributionError, to_decision


class InProcessModelClient:
    """The four models in this process, behind the engine's `ModelClient` port."""

    def __init__(
        self,
        model_set: ModelSetLike,
        challenger: ModelSetLike | None = None,
        *,
        routing: RoutingConfig | None = None,
        decision_log: Path | DecisionLog | None = None,
        ood_fallback: bool = True,
    ) -> None:
        self.ood_fallback = ood_fallback
        self._served = ServedModels(champion=model_set, challenger=challenger)
        if isinstance(decision_log, Path):
            decision_log = DecisionLog(decision_log)
        self.log = decision_log
        self._maker = DecisionMaker(
            lambda: self._served, ABRouter(routing or RoutingConfig()), log=decision_log
        )

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        # The engine's rows carry every catalogue feature; pass what the models take (as
        # the HTTP client does), so missing ones are still refused by name.
        accepted = self._served.accepted
        taken = {name: value for name, value in features.items() if name in accepted}
        answer = self._maker.decide(signal, taken)
        decision = to_decision(answer, signal, source="inprocess")
        if decision.out_of_distribution and self.ood_fallback:
            raise OutOfDistributionError(decision)
        return decision

    def swap(self, model_set: ModelSetLike, challenger: ModelSetLike | None = None) -> None:
        """Serve other model sets from the next decision on (atomic)."""
        self._served = ServedModels(champion=model_set, challenger=challenger)

    def close(self) -> None:
        """Write every logged decision (call at the end of a backtest)."""
        if self.log is not None:
            self.log.close()
