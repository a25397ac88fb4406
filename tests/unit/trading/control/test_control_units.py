"""The control plane's pure parts: the pause rule, the persisted session ledger and its
order of baselines, the reason categories, the story's lag lines, the retrain trigger
on the trade count (with a fake launcher and with Prefect's API answered by a mock
transport), and the token rule of the API's config."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from core.errors import ConfigError, DataSourceError
from core.types import Side, Trade
from monitoring.prefect_runs import PrefectRunLauncher, StartedRun
from trading.control.config import EngineApiConfig, is_loopback
from trading.control.events import EventHub
from trading.control.ledger import JournalSessionLedger
from trading.control.reads import JournalReads
from trading.control.reasons import reason_category
from trading.control.retrain import RetrainOnTrades
from trading.control.store import ControlStore
from trading.journal import Journal
from trading.ports import Account
from trading.risk import Portfolio, RiskConfig, RiskManager

EQUITY = 100_000.0


def memory_store() -> tuple[ControlStore, Journal]:
    journal = Journal("sqlite://")
    return ControlStore(journal.engine), journal


def test_pause_refuses_entries_under_its_own_rule_until_resumed() -> None:
    risk = RiskManager(RiskConfig())
    risk.start_session(date(2024, 1, 2), EQUITY)
    risk.pause("by test")
    verdict = risk.pre_trade("A", "unknown", Portfolio(EQUITY, EQUITY))
    assert (verdict.accepted, verdict.rule) == (False, "paused")
    assert "by test" in verdict.reason
    risk.resume()
    assert risk.pre_trade("A", "unknown", Portfolio(EQUITY, EQUITY)).accepted


class Broker:
    def __init__(self, last_equity: float | None, at: datetime) -> None:
        self.last_equity, self.at = last_equity, at

    def account(self) -> Account:
        return Account(EQUITY, EQUITY, EQUITY, last_equity=self.last_equity)


def ledger_for(store: ControlStore, journal: Journal, broker: Broker) -> JournalSessionLedger:
    return JournalSessionLedger(
        store, journal.engine, account=broker.account, broker_time=lambda: broker.at
    )


def test_baseline_is_the_last_close_persisted_with_the_halt() -> None:
    store, journal = memory_store()
    day = date(2024, 1, 3)
    broker = Broker(101_000.0, datetime(2024, 1, 3, 21, tzinfo=UTC))
    config = RiskConfig(daily_loss_halt_pct=0.02)
    risk = RiskManager(config, ledger=ledger_for(store, journal, broker))
    # The bar arrives after the day's move: the baseline is still yesterday's close.
    risk.start_session(day, 98_500.0)
    assert risk.session_start_equity == 101_000.0
    risk.update_equity(98_500.0)  # -2.48%
    assert risk.halted
    assert "101,000.00" in (risk.halt_reason or "")

    # A restart: a new risk manager over the same store keeps baseline and halt, even if
    # the broker now says something else.
    broker.last_equity = 50_000.0
    again = RiskManager(config, ledger=ledger_for(store, journal, broker))
    again.start_session(day, 99_900.0)
    assert again.session_start_equity == 101_000.0
    assert again.halted
    assert not again.pre_trade("A", "unknown", Portfolio(99_900.0, 99_900.0)).accepted


def test_baseline_falls_back_to_the_journal_then_to_what_is_seen() -> None:
    store, journal = memory_store()
    no_broker = Broker(None, datetime(2024, 1, 4, 21, tzinfo=UTC))
    ledger = ledger_for(store, journal, no_broker)
    assert ledger.opening_equity(date(2024, 1, 2), 99_000.0) == 99_000.0
    assert ledger.sources[date(2024, 1, 2)] == "observed"
    journal.record_equity(datetime(2024, 1, 2, tzinfo=UTC), equity=99_500.0, cash=0.0,
                          positions_value=0.0, open_positions=0, halted=False)  # fmt: skip
    assert ledger.opening_equity(date(2024, 1, 3), 1.0) == 99_500.0
    assert ledger.sources[date(2024, 1, 3)] == "journal_equity_curve"
    ledger.observe_close(date(2024, 1, 3), 99_700.0)
    assert ledger.opening_equity(date(2024, 1, 4), 1.0) == 99_700.0
    assert ledger.sources[date(2024, 1, 4)] == "journal_last_mark"
    # A broker already in a later session reports a later close: not used.
    late = Broker(123.0, datetime(2024, 1, 9, 21, tzinfo=UTC))
    assert ledger_for(store, journal, late).opening_equity(date(2024, 1, 5), 1.0) == 99_700.0


@pytest.mark.parametrize(
    ("action", "detail", "category", "expected"),
    [
        ("entered", "", None, ""),
        ("rejected", "paused: new entries are paused (by x)", None, "paused"),
        ("skipped", "paused: new entries are paused (by x)", "risk", "paused"),
        ("rejected", "daily_loss_halt: equity down", None, "paused"),
        ("rejected", "max_positions: 10 open", None, "risk"),
        ("rejected", "sizing: zero shares", None, "sizing"),
        ("gated", "win probability 0.41 < gate 0.65", None, "gate"),
        ("skipped", "expected value -0.2%", "ev", "ev"),
        ("model_unavailable", "no entry on a guess", None, "model_unavailable"),
    ],
)
def test_reason_categories(action: str, detail: str, category: str | None, expected: str) -> None:
    assert reason_category(action, detail, category) == expected


def test_story_tells_lag_once_when_it_starts_and_once_when_it_ends() -> None:
    lines: list[str] = []
    hub = EventHub(story=lines.append)
    for bars in (0, 2, 1, 3, 0, 0):
        hub.lag(bars)
    assert len(lines) == 2
    assert "2 bar(s) ahead" in lines[0]
    assert lines[1] == "caught up with the broker's clock"


class FakeLauncher:
    deployment = "retrain/after-close"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.keys: list[str | None] = []

    def launch(
        self, parameters: dict[str, Any], *, idempotency_key: str | None = None
    ) -> StartedRun:
        self.calls.append(parameters)
        self.keys.append(idempotency_key)
        if self.fail:
            raise ConnectionError("prefect is down")
        return StartedRun(f"run-{len(self.calls)}", "Scheduled")


def close_trades(journal: Journal, count: int, start: int = 0) -> None:
    at = datetime(2024, 1, 2, tzinfo=UTC)
    for n in range(start, start + count):
        journal.record_trade(Trade(f"t{n}", "A", Side.BUY, 1, at, 10.0, at, 11.0, "momentum",
                                   "take_profit"))  # fmt: skip


def test_retrain_starts_every_n_closed_trades_counted_in_the_journal() -> None:
    store, journal = memory_store()
    launcher = FakeLauncher()
    lines: list[str] = []

    def trigger() -> RetrainOnTrades:
        return RetrainOnTrades(every=3, reads=JournalReads(journal.engine), store=store,
                               hub=EventHub(story=lines.append), launcher=launcher)  # fmt: skip

    close_trades(journal, 2)
    assert trigger().check() is None
    close_trades(journal, 1, start=2)
    run = trigger().check()
    assert run is not None
    assert run.run_id == "run-1"
    assert launcher.calls == [{"trigger": "trades", "force": True}]
    # A restarted engine counts from the journal: no second run for the same trades.
    assert trigger().check() is None
    close_trades(journal, 3, start=3)
    restarted = trigger()
    assert restarted.check() is not None
    assert restarted.status()["runs"][0]["closed_trades"] == 6
    assert restarted.status()["since_last"] == 0
    # One key per count, under this journal's own id (kept in the journal).
    journal_id = store.flag("retrain_journal_id")
    assert launcher.keys == [f"{journal_id}:trades-3", f"{journal_id}:trades-6"]


def test_a_launcher_that_is_down_is_asked_again_later() -> None:
    store, journal = memory_store()
    close_trades(journal, 3)
    down = RetrainOnTrades(
        every=3, reads=JournalReads(journal.engine), store=store, hub=EventHub(),
        launcher=FakeLauncher(fail=True), retry_seconds=0,
    )  # fmt: skip
    assert down.check() is None
    assert down.last_error == "prefect is down"
    assert down.last_count == 0  # nothing recorded: the next trade asks again


def test_prefect_launcher_creates_a_run_of_the_named_deployment() -> None:
    seen: list[tuple[str, str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = request.content and __import__("json").loads(request.content)
        seen.append((request.method, request.url.path, body))
        if request.url.path.endswith("/deployments/name/retrain/after-close"):
            return httpx.Response(200, json={"id": "dep-1"})
        return httpx.Response(201, json={"id": "run-9", "state": {"name": "Scheduled"}})

    launcher = PrefectRunLauncher("http://127.0.0.1:4200/api",
                                  transport=httpx.MockTransport(answer))  # fmt: skip
    run = launcher.launch({"trigger": "trades", "force": True})
    assert run == StartedRun("run-9", "Scheduled", "http://127.0.0.1:4200/runs/flow-run/run-9")
    assert seen[1][1] == "/api/deployments/dep-1/create_flow_run"
    assert seen[1][2]["parameters"] == {"trigger": "trades", "force": True}
    assert "idempotency_key" not in seen[1][2]


def test_prefect_launcher_retries_a_locked_server_under_one_idempotency_key() -> None:
    """Prefect answers 503 while its SQLite database is locked; the launcher waits and
    asks again, with the same key, so a create that did land is not made twice."""
    answers = iter([503, 503, 201])
    bodies: list[Any] = []
    waits: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/deployments/name/retrain/after-close"):
            return httpx.Response(200, json={"id": "dep-1"})
        bodies.append(__import__("json").loads(request.content))
        status = next(answers)
        if status == 503:
            return httpx.Response(503, headers={"Retry-After": "0.1"}, text="locked")
        return httpx.Response(201, json={"id": "run-9", "state": {"name": "Scheduled"}})

    launcher = PrefectRunLauncher("http://127.0.0.1:4200/api", sleep=waits.append,
                                  transport=httpx.MockTransport(answer))  # fmt: skip
    run = launcher.launch({"trigger": "trades"}, idempotency_key="j1:trades-3")
    assert run.run_id == "run-9"
    assert waits == [0.1, 0.1]
    assert [body["idempotency_key"] for body in bodies] == ["j1:trades-3"] * 3


def test_prefect_launcher_gives_up_with_the_status_after_its_retries() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503, text="database is locked")

    launcher = PrefectRunLauncher("http://127.0.0.1:4200/api", sleep=lambda _: None,
                                  transport=httpx.MockTransport(answer))  # fmt: skip
    with pytest.raises(DataSourceError, match="HTTP 503: database is locked"):
        launcher.launch({"trigger": "trades"})
    assert len(calls) == 1 + len(launcher.backoff_seconds)


def test_no_listening_beyond_loopback_without_a_token() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(ConfigError, match="beyond loopback"):
        EngineApiConfig(host="0.0.0.0")
    assert EngineApiConfig(host="0.0.0.0", token="t").url(9) == "http://127.0.0.1:9"
    with pytest.raises(ValueError, match="extra"):
        EngineApiConfig.model_validate({"colour": "red"})


def test_memory_engine_is_shared() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    store = ControlStore(engine)
    store.set_flag("paused", {"reason": "x"})
    assert store.flag("paused") == {"reason": "x"}
    store.set_flag("paused", None)
    assert store.flag("paused") is None
