"""The Tradewind model service (BentoML 1.4): the four models behind one HTTP API, with
sticky champion/challenger routing, shadow mode, a decision log and hot reload.

`DecisionService` is the service's whole behaviour, with its one outside dependency, the
online feature store, injected as an `OnlineFeatureReader` factory. The composition root
declares the BentoML service from it (`pipelines.serve.TradewindService`, with
`SERVICE_CONFIG`, `service_workers()` and `add_middleware`):

    bentoml serve pipelines.serve:TradewindService      (or `tradewind serve`)

- `POST /decide` — all four models for one signal; `/signal_quality`, `/exit`, `/regime`,
  `/risk` — one model each. Body: `{"signal": {...}, "features": {...}}`; `features` may
  be left out, then the symbol's latest online features are used.
- `GET /models` — versions, aliases, the bar timeframe the models were trained on, A/B
  share, load and swap times, last reload error.
- `POST /reload` — check the registry now and swap in changed models (with several
  workers, the worker that takes the call reloads at once; the others within one polling
  interval, `TRADEWIND_RELOAD_INTERVAL_SECONDS`).
- BentoML's `/readyz` (ready once a champion is loaded), `/livez`, `/metrics`.

Bad input is answered 400 (shape, types, NaN/inf, side, price: BentoML's pydantic check
of `DecideRequest`) or 422 (features that do not match the served models), with the
field named; a request for another bar `timeframe` than the served models' 409;
auth failures 401 (`serving.auth`); no loaded models 503. Configuration
comes from Tradewind's settings and `serving.config`; models load from the MLflow
registry by alias when the worker starts."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import bentoml
from pydantic import BaseModel
from starlette.responses import JSONResponse

from core.errors import DataValidationError, NotFoundError, TradewindError
from core.settings import load_settings
from core.types import Signal
from models.policy import PolicyConfig
from serving.auth import BearerAuth
from serving.config import ServiceConfig
from serving.decision import DecisionMaker, check_timeframe_served
from serving.decision_log import DecisionLog
from serving.http import DECISION_PATHS, DecisionRoutes
from serving.metrics import service_metrics
from serving.model_slots import ModelSlots
from serving.online_features import OnlineFeatureReader, OnlineFeatures
from serving.router import ABRouter
from serving.schemas import (
    DecideRequest,
    DecisionOut,
    ExitOut,
    FeatureError,
    RegimeOut,
    ReloadOut,
    RiskOut,
    SignalQualityOut,
    error_body,
)

logger = logging.getLogger("tradewind.serving")

T = TypeVar("T")


# The decision endpoints are answered by `serving.http.DecisionRoutes`: BentoML's access
# log, per-request metrics and tracing spans stay off them (the decision log records every
# decision, `tradewind_*` metrics count and time them); probes and scrapes every few
# seconds would drown the access log.
_QUIET_PATHS = ["/readyz", "/livez", "/metrics", *sorted(DECISION_PATHS), "/reload", "/models"]
SERVICE_CONFIG: dict[str, Any] = {
    "traffic": {"timeout": 30, "concurrency": 64},
    "threads": 4,
    "logging": {"access": {"enabled": True, "skip_paths": _QUIET_PATHS}},
    "tracing": {"excluded_urls": _QUIET_PATHS},
}


def service_workers() -> int:
    # `bentoml serve` has no --workers flag for new-style services; `tradewind serve
    # --workers N` sets TRADEWIND_SERVING__WORKERS, read when the service is declared.
    return load_settings().serving.workers


class DecisionService:
    """The APIs of the model service; BentoML builds one per worker (without arguments,
    so the declared subclass passes `online_features`)."""

    def __init__(
        self, online_features: Callable[[], OnlineFeatureReader] | None = None
    ) -> None:
        self.config = ServiceConfig.from_env()
        self.metrics = service_metrics()
        self.slots = ModelSlots(
            self.config.tracking_uri,
            on_reload=lambda result: self.metrics.reloaded(
                "error" if result.error else "swapped"
            ),
        )
        self.slots.reload(force=True)
        self.slots.start_polling(self.config.reload_interval_seconds)
        self.log = DecisionLog(
            self.config.decision_log, flush_seconds=self.config.decision_log_flush_seconds
        )
        # The fitted policies decide with the current `models.policy` settings (mode,
        # OOD action, regime mode, guard); their fitted numbers come with the models.
        self.maker = DecisionMaker(
            self.slots.current,
            ABRouter(self.config.routing),
            log=self.log,
            observer=self.metrics,
            policy_config=PolicyConfig.from_settings(load_settings()),
        )
        self.online = OnlineFeatures(online_features)
        # Everything loaded so far (libraries, models) lives as long as the worker: move it
        # out of the collector's sight so full collections stop scanning it mid-request.
        gc.freeze()

    # -- health --------------------------------------------------------------------------
    def __is_ready__(self) -> bool:
        return self.slots.ready

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Graceful stop: no more reloads, and every queued decision written."""
        self.slots.stop()
        self.log.close()
        logger.info("decision log closed after %d decisions", self.log.written)

    # -- the decision ----------------------------------------------------------------------
    # The `@bentoml.api` methods declare the endpoints and their schema (`/docs.json`); the
    # requests themselves are answered by `serving.http.DecisionRoutes` through `respond`.
    @bentoml.api(route="/decide")
    def decide(self, request: DecideRequest, /) -> DecisionOut:
        return self._answer("decide", request)

    # -- one model each --------------------------------------------------------------------
    @bentoml.api(route="/signal_quality")
    def signal_quality(self, request: DecideRequest, /) -> SignalQualityOut:
        return self._answer("signal_quality", request)

    @bentoml.api(route="/exit")
    def exit(self, request: DecideRequest, /) -> ExitOut:
        return self._answer("exit", request)

    @bentoml.api(route="/regime")
    def regime(self, request: DecideRequest, /) -> RegimeOut:
        return self._answer("regime", request)

    @bentoml.api(route="/risk")
    def risk(self, request: DecideRequest, /) -> RiskOut:
        return self._answer("risk", request)

    def respond(self, endpoint: str, request: DecideRequest) -> BaseModel:
        """The answer of one endpoint; refusals raise the project's errors (4xx)."""
        signal = request.signal.to_signal()
        timeframe = request.timeframe
        if timeframe is not None:
            # Before the online store is read: the wrong bars are refused as such.
            check_timeframe_served(self.slots.current().champion, timeframe)
        features = self._features(request, signal)
        if endpoint == "decide":
            return self.maker.decide(signal, features, timeframe)
        if endpoint == "signal_quality":
            prepared, probability, ood = self.maker.signal_quality(signal, features, timeframe)
            return SignalQualityOut(
                variant=prepared.route.variant,
                model_version=prepared.model_set.versions["signal_quality"],
                win_probability=probability,
                out_of_distribution=ood,
            )
        if endpoint == "exit":
            prepared, levels = self.maker.exit(signal, features, timeframe)
            return ExitOut(
                variant=prepared.route.variant,
                model_version=prepared.model_set.versions["exit_optimizer"],
                stop_loss_atr=levels.stop_loss_atr,
                take_profit_atr=levels.take_profit_atr,
                stop_loss_price=levels.stop_loss_price,
                take_profit_price=levels.take_profit_price,
            )
        if endpoint == "regime":
            prepared, call = self.maker.regime(signal, features, timeframe)
            return RegimeOut(
                variant=prepared.route.variant,
                model_version=prepared.model_set.versions["regime_classifier"],
                regime=call.regime,
                regime_probabilities=call.regime_probabilities,
            )
        if endpoint == "risk":
            prepared, drawdown = self.maker.risk(signal, features, timeframe)
            return RiskOut(
                variant=prepared.route.variant,
                model_version=prepared.model_set.versions["risk_predictor"],
                expected_drawdown_pct=drawdown.expected_drawdown_pct,
                drawdown_p10_pct=drawdown.drawdown_p10_pct,
                drawdown_p90_pct=drawdown.drawdown_p90_pct,
            )
        raise NotFoundError(f"no endpoint /{endpoint}", where="path")

    def refused(self, endpoint: str, status: int) -> None:
        self.metrics.refused(endpoint, status)

    @property
    def auth_required(self) -> bool:
        return self.config.api_token is not None

    # -- operations --------------------------------------------------------------------------
    def model_status(self) -> dict[str, Any]:
        """`GET /models` (served by `serving.http.DecisionRoutes`)."""
        status = self.slots.status()
        served = self.slots.served
        status["accepted_features"] = sorted(served.accepted) if served else []
        # The bars the served models were trained on: the only timeframe `/decide` takes.
        status["timeframe"] = served.champion.timeframe if served else None
        status["ab"] = {
            "challenger_share": self.config.routing.challenger_share,
            "shadow": self.config.routing.shadow,
            "challenger_loaded": status["challenger"] is not None,
        }
        status["decision_log"] = {
            "path": str(self.config.decision_log),
            "written": self.log.written,
            "pending": self.log.pending,
        }
        status["auth_required"] = self.config.api_token is not None
        return status

    @bentoml.api(route="/reload")
    def reload(self) -> ReloadOut:
        return ReloadOut.model_validate(self.reload_answer())

    def reload_answer(self) -> dict[str, Any]:
        """`POST /reload`: check the registry now; swap in changed models."""
        result = self.slots.reload(force=False)
        served = self.slots.served
        return ReloadOut(
            reloaded=result.reloaded,
            champion=dict(served.champion.versions) if served else {},
            challenger=dict(served.challenger.versions) if served and served.challenger else None,
            error=result.error,
        ).model_dump(mode="json")

    # -- helpers -------------------------------------------------------------------------------
    def _features(self, request: DecideRequest, signal: Signal) -> dict[str, float | None]:
        given = request.feature_values()
        if given is not None:
            return given
        row = self.online.latest(signal.symbol, at=signal.timestamp,
                                 max_age=self.config.max_feature_age)
        wanted = self.slots.current().accepted
        # The store keeps entity keys and timestamps beside the features; keep the features.
        return {name: value for name, value in row.items() if name in wanted}

    def _answer(self, endpoint: str, request: DecideRequest) -> Any:
        # Reached only without `serving.http.DecisionRoutes` in front (tests of the class
        # alone): the same answer, or a JSONResponse that BentoML passes through as is.
        try:
            return self.respond(endpoint, request)
        except (FeatureError, DataValidationError) as exc:
            self.metrics.refused(endpoint, exc.http_status)
            return JSONResponse(error_body(exc), status_code=exc.http_status)
        except TradewindError as exc:
            self.metrics.refused(endpoint, exc.http_status)
            return JSONResponse(
                {"error": exc.message, "field": exc.where}, status_code=exc.http_status
            )


def add_middleware(service: Any) -> None:
    """Bearer-token auth, then the service's own endpoints (`serving.http`), around a
    declared service (a bentoml.Service). The first added is the outer one."""
    service.add_asgi_middleware(BearerAuth)
    service.add_asgi_middleware(DecisionRoutes)
