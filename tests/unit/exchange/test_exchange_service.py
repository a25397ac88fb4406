"""Pieces of the live service and the exchange that need no server: when the service
sleeps, which journaled fills rebuild a position, and the exchange's own replay pace."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from starlette.testclient import TestClient

from core.calendar import MarketCalendar
from core.types import MarketClock
from trading.adapters.paper_exchange.app import build_app
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.venue import PaperVenue
from trading.service import _fills_since_flat, seconds_to_sleep

NOW = datetime(2024, 7, 3, 15, 0, tzinfo=UTC)  # a Wednesday, 11:00 in New York


def test_polls_while_open_and_sleeps_until_the_open_when_closed() -> None:
    calendar = MarketCalendar()
    rules = {"poll_seconds": 0.5, "max_sleep_seconds": 300.0, "calendar": calendar}
    assert seconds_to_sleep(MarketClock(NOW, True, None, None), NOW, **rules) == 0.5
    soon = NOW + timedelta(seconds=42)
    assert seconds_to_sleep(MarketClock(NOW, False, soon, None), NOW, **rules) == 42
    # the broker does not say: the calendar does (Independence Day is skipped), capped
    friday_night = datetime(2024, 7, 5, 23, 0, tzinfo=UTC)
    assert (
        seconds_to_sleep(MarketClock(friday_night, False, None, None), friday_night, **rules) == 300
    )
    uncapped = {**rules, "max_sleep_seconds": 1e9}
    monday_open = datetime(2024, 7, 8, 13, 30, tzinfo=UTC)
    assert seconds_to_sleep(
        MarketClock(friday_night, False, None, None), friday_night, **uncapped
    ) == pytest.approx((monday_open - friday_night).total_seconds())


def test_a_position_is_rebuilt_from_the_fills_since_it_was_last_flat() -> None:
    stamps = pd.date_range("2024-01-02", periods=5, freq="D", tz="UTC")
    fills = pd.DataFrame(
        {
            "fill_id": ["a:10", "a-tp:10", "b:5", "b:8", "c-sl:2"],
            "client_order_id": ["a", "a-tp", "b", "b", "c-sl"],
            "symbol": "AAPL",
            "side": ["buy", "sell", "buy", "buy", "sell"],
            "qty": [10.0, 10.0, 5.0, 3.0, 2.0],
            "price": [100.0, 110.0, 101.0, 102.0, 99.0],
            "commission": 0.0,
            "timestamp": stamps,
        }
    )
    rebuilt = _fills_since_flat(fills)
    assert [f.fill_id for f in rebuilt] == ["b:5", "b:8", "c-sl:2"]
    assert sum(f.qty * f.side.sign for f in rebuilt) == 6
    assert _fills_since_flat(fills.iloc[:2]) == []


def test_the_exchange_replays_at_its_own_pace(bars: pd.DataFrame) -> None:
    config = PaperExchangeConfig(bars_per_second=50)
    app = build_app(PaperVenue(bars, config), config, replay_interval=1 / 50)
    headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}
    with TestClient(app, headers=headers) as client:
        deadline = time.monotonic() + 10
        state = client.get("/admin/state").json()
        while state["steps_done"] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
            state = client.get("/admin/state").json()
        assert state["steps_done"] >= 5
        clock = client.get("/v2/clock").json()
        assert clock["is_open"]
        assert clock["timestamp"] == state["timestamp"] or clock["timestamp"] > state["timestamp"]


def test_only_final_bars_are_traded() -> None:
    from trading.service import bar_is_final

    calendar = MarketCalendar()
    today = datetime(2024, 7, 3, 4, 0, tzinfo=UTC)  # the daily bar of Wed 3 July (half day)
    during = datetime(2024, 7, 3, 16, 30, tzinfo=UTC)  # 12:30 in New York
    after_early_close = datetime(2024, 7, 3, 17, 5, tzinfo=UTC)  # closed at 13:00
    assert not bar_is_final(today, "1Day", during, calendar)
    assert bar_is_final(today, "1Day", after_early_close, calendar)
    assert bar_is_final(datetime(2010, 2, 26, 5, 0, tzinfo=UTC), "1Day", during, calendar)
    minute = datetime(2024, 7, 3, 16, 29, tzinfo=UTC)
    assert not bar_is_final(minute, "1Min", minute + timedelta(seconds=59), calendar)
    assert bar_is_final(minute, "1Min", minute + timedelta(minutes=1), calendar)
    assert not bar_is_final(minute, "1Hour", minute + timedelta(minutes=59), calendar)
