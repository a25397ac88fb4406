"""`InProcessModelClient`: the service's decision logic without HTTP, for fast backtests.

It implements `trading.ports.ModelClient` structurally with the same `DecisionMaker` the
service runs (same feature checks, same sticky A/B routing, same decision policy and
coverage guard, same shadow mode, same decision log rows), so a backtest in process and a
backtest against the running service take the same decisions. Bad features raise
`core.errors.DataValidationError` naming the feature; a model that fails raises
`ModelUnavailableError`. Every answer carries the policy's verdict (`Decision.action`,
`reason`, `size_fraction`), out-of-distribution signals included: what OOD does is the
policy's `ood_action`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.types import Decision, Signal
from models.policy import PolicyConfig
from serving.decision import DecisionMaker, ServedModels
from serving.decision_log import DecisionLog
from serving.predictor import ModelSetLike
from serving.router import ABRouter, RoutingConfig
from serving.schemas import to_decision


class InProcessModelClient:
    """The four models and their policy in this process, behind the engine's
    `ModelClient` port. `policy` overrides the fitted policies' decision-time settings
    (`models.policy.PolicyConfig.from_settings`); None keeps the fitted ones."""

    def __init__(
        self,
        model_set: ModelSetLike,
        challenger: ModelSetLike | None = None,
        *,
        routing: RoutingConfig | None = None,
        decision_log: Path | str | DecisionLog | None = None,
        policy: PolicyConfig | None = None,
    ) -> None:
        self._served = ServedModels(champion=model_set, challenger=challenger)
        if isinstance(decision_log, Path | str):
            decision_log = DecisionLog(decision_log)
        self.log = decision_log
        self._maker = DecisionMaker(
            lambda: self._served, ABRouter(routing or RoutingConfig()), log=decision_log,
            policy_config=policy,
        )

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        # The engine's rows carry every catalogue feature; pass what the models take (as
        # the HTTP client does), so missing ones are still refused by name.
        accepted = self._served.accepted
        taken = {name: value for name, value in features.items() if name in accepted}
        answer = self._maker.decide(signal, taken)
        return to_decision(answer, signal, source="inprocess")

    def swap(self, model_set: ModelSetLike, challenger: ModelSetLike | None = None) -> None:
        """Serve other model sets from the next decision on (atomic)."""
        self._served = ServedModels(champion=model_set, challenger=challenger)

    def close(self) -> None:
        """Write every logged decision (call at the end of a backtest)."""
        if self.log is not None:
            self.log.close()
