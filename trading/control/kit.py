"""The control plane's parts, made before the engine because the engine's journal,
broker, model client and risk ledger are wrapped by them; then the plane itself, once
the live runner exists. `pipelines/commands/trading.py` composes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monitoring.alerts import AlertDispatcher
from monitoring.prefect_runs import PrefectRunLauncher
from trading.control.alerting import AlertOutbox
from trading.control.api import api_companion
from trading.control.config import EngineApiConfig
from trading.control.events import EventHub, Writer
from trading.control.ledger import JournalSessionLedger
from trading.control.metrics import EngineMetrics
from trading.control.observed import ObservedBroker, ObservedJournal, ObservedModelClient
from trading.control.plane import EngineControlPlane
from trading.control.reads import JournalReads
from trading.control.retrain import RetrainOnTrades
from trading.control.store import ControlStore
from trading.ports import ModelClient
from trading.service import Companion, RecoveringBroker, TradingService


class ControlKit:
    def __init__(
        self,
        *,
        journal_url: str,
        api: EngineApiConfig,
        dispatcher: AlertDispatcher | None,
        alert_history: Path | None,
        story: Writer,
    ) -> None:
        self.api = api
        self.metrics = EngineMetrics()
        self.outbox = AlertOutbox(dispatcher, history=alert_history) if dispatcher else None
        self.hub = EventHub(story=story, outbox=self.outbox, metrics=self.metrics)
        self.journal = ObservedJournal(journal_url, self.hub)
        self.store = ControlStore(self.journal.engine)
        self.broker: ObservedBroker | None = None
        self.ledger: JournalSessionLedger | None = None
        self.model: ObservedModelClient | None = None

    def observe_broker(self, inner: RecoveringBroker) -> ObservedBroker:
        self.broker = ObservedBroker(inner, self.hub)
        broker = self.broker
        self.ledger = JournalSessionLedger(
            self.store,
            self.journal.engine,
            account=broker.account,
            broker_time=lambda: broker.market_clock().timestamp,
        )
        return broker

    def observe_model(self, inner: ModelClient, *, fallback: str) -> ObservedModelClient:
        self.model = ObservedModelClient(inner, self.hub, fallback=fallback)
        return self.model

    def decides(self) -> str:
        """What decides the entries, for the start line: the model service and the
        versions it serves per arm, or the fixed rules."""
        model = self.model
        if model is None or model.endpoint is None:
            return "fixed rules (2x/3x ATR exits, no model gate)"
        try:
            status = model.models() or {}
            arms = "; ".join(
                f"{arm} " + ", ".join(f"{k} v{v}" for k, v in sorted(versions.items()))
                for arm in ("champion", "challenger")
                if isinstance(status.get(arm), dict)
                and isinstance(versions := status[arm].get("versions", {}), dict)
            )
        except Exception as exc:  # the start line says so, and trading starts
            arms = f"not answering yet: {exc}"
        return (
            f"the model service at {model.endpoint} ({arms or 'no models loaded'}; "
            f"fallback {model.fallback})"
        )

    def plane(
        self, service: TradingService, *, prefect_api_url: str | None, decides: str
    ) -> EngineControlPlane:
        if self.broker is None:
            raise RuntimeError("observe_broker comes before plane")
        launcher = (
            PrefectRunLauncher(prefect_api_url, self.api.retrain_deployment)
            if prefect_api_url
            else None
        )
        retrain = RetrainOnTrades(
            every=self.api.retrain_every_trades,
            reads=JournalReads(self.journal.engine),
            store=self.store,
            hub=self.hub,
            launcher=launcher,
        )
        return EngineControlPlane(
            config=self.api,
            service=service,
            broker=self.broker,
            store=self.store,
            hub=self.hub,
            ledger=self.ledger,
            retrain=retrain,
            model=self.model,
            decides=decides,
            outbox=self.outbox,
        )


def start(
    plane: EngineControlPlane, announce: Callable[[str], None]
) -> list[Companion]:
    """Restore a pause, start the alert worker and the watchdog; the companions the
    runner starts beside its loop (the API server, the model probe)."""
    plane.controls.restore()
    if plane.outbox is not None:
        plane.outbox.start()
    plane.start_watchdog()
    return [api_companion(plane, announce), plane.probe_models]


def stop(plane: EngineControlPlane) -> None:
    plane.stop()
    if plane.outbox is not None:
        plane.outbox.drain()
