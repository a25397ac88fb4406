"""The paper exchange's news stream, derived trades and quotes, bar corrections and
intrabar prints, over its real ASGI app (msgpack frames as alpaca-py sends them), and
the news file's one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pandas as pd
import pytest
from starlette.testclient import TestClient
from starlette.testclient import WebSocketTestSession as Socket

from core.errors import ConfigError
from core.types import Bar
from pipelines.cli import main
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.news import NewsArticle, read_news_file
from trading.adapters.paper_exchange.server import create_exchange_app
from trading.adapters.paper_exchange.ticks import price_path, print_sizes, tick_messages

HEADERS = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}
START = pd.Timestamp("2021-08-24 13:30", tz="UTC")


def minute_bars() -> pd.DataFrame:
    stamps = pd.date_range(START, periods=4, freq="1min")
    return pd.DataFrame({
        "symbol": "AAPL", "timestamp": stamps,
        "open": [100.0, 101.0, 99.0, 98.0], "high": [101.5, 101.2, 99.5, 98.4],
        "low": [99.5, 98.8, 97.6, 97.9], "close": [101.0, 99.0, 98.0, 98.2],
        "volume": [1003.0, 800.0, 400.0, 100.0],
    })


@contextmanager
def subscribed(
    intrabar: bool = False, articles: list[NewsArticle] | None = None, **channels: list[str]
) -> Iterator[tuple[TestClient, Socket]]:
    config = PaperExchangeConfig(timeframe="1Min", intrabar_prints=intrabar)
    app = create_exchange_app(minute_bars(), config, news=articles)
    with TestClient(app) as client, client.websocket_connect("/v1beta1/news") as socket:
        assert frames(socket) == [{"T": "success", "msg": "connected"}]
        socket.send_bytes(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}))
        assert frames(socket)[0]["msg"] == "authenticated"
        socket.send_bytes(msgpack.packb({"action": "subscribe", **channels}))
        assert frames(socket)[0]["T"] == "subscription"
        yield client, socket


def frames(socket: Socket) -> list[dict[str, Any]]:
    decoded: list[dict[str, Any]] = msgpack.unpackb(socket.receive_bytes())
    return decoded


def advance(client: TestClient, **body: int) -> dict[str, Any]:
    answer = client.post("/admin/advance", headers=HEADERS, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def article(minutes: float, headline: str = "Apple beats", **extra: Any) -> NewsArticle:
    moment = (START + pd.Timedelta(minutes=minutes)).to_pydatetime()
    return NewsArticle(extra.pop("id", 1), moment, headline, ("AAPL",), **extra)


def test_news_goes_out_when_the_clock_reaches_it_and_loaded_news_at_once() -> None:
    with subscribed(articles=[article(1.5)], news=["AAPL"]) as (client, socket):
        advance(client)  # 13:30
        advance(client)  # 13:31: not yet
        advance(client)  # 13:32: the article of 13:31:30
        (message,) = frames(socket)
        assert message["T"] == "n"
        assert message["headline"] == "Apple beats"
        assert message["symbols"] == ["AAPL"]
        assert message["created_at"].to_datetime() == article(1.5).created_at
        loaded = client.post("/admin/news", headers=HEADERS, json={"items": [
            {"created_at": "2021-08-24T13:31:00Z", "headline": "late", "symbols": ["aapl"]},
            {"created_at": "2021-08-24T13:40:00Z", "headline": "later", "symbols": ["AAPL"]},
        ]})
        assert loaded.json() == {"loaded": 2, "sent": 1}
        assert [m["headline"] for m in frames(socket)] == ["late"]


def test_admin_news_names_the_bad_item() -> None:
    with subscribed(news=["AAPL"]) as (client, _):
        answer = client.post("/admin/news", headers=HEADERS, json={"items": [
            {"created_at": "2021-08-24T13:31:00", "headline": "x", "symbols": ["AAPL"]}]})
        assert answer.status_code == 422
        assert answer.json()["message"] == (
            "items[0]: created_at '2021-08-24T13:31:00' has no time zone"
        )


def test_trades_and_quotes_are_derived_from_the_bar_before_it() -> None:
    with subscribed(bars=["AAPL"], trades=["AAPL"], quotes=["AAPL"]) as (client, socket):
        advance(client)
        messages = frames(socket)
    assert [m["T"] for m in messages] == ["q", "t"] * 4 + ["b"]
    trades = [m for m in messages if m["T"] == "t"]
    assert [t["p"] for t in trades] == [100.0, 99.5, 101.5, 101.0]  # up bar: low first
    assert [t["s"] for t in trades] == [250, 250, 250, 253]
    stamps = [m["t"].to_datetime() for m in messages[:-1]]
    assert stamps == sorted(stamps)
    assert stamps[-1] == START + pd.Timedelta(seconds=45)
    quote = messages[0]
    assert quote["bp"] < 100.0 < quote["ap"]


def test_the_price_path_of_a_down_bar_visits_the_high_first() -> None:
    bar = Bar("X", START.to_pydatetime(), 10.0, 10.4, 9.1, 9.5, 7.0)
    assert price_path(bar) == (10.0, 10.4, 9.1, 9.5)
    assert print_sizes(7.0) == [1, 1, 1, 4]
    again = tick_messages(bar, timedelta(minutes=1), 2, trades=True, quotes=False)
    assert again == tick_messages(bar, timedelta(minutes=1), 2, trades=True, quotes=False)


def test_a_bar_already_sent_can_be_corrected_and_only_such_a_bar() -> None:
    with subscribed(bars=["AAPL"], updatedBars=["AAPL"]) as (client, socket):
        advance(client)
        frames(socket)
        revised = {"symbol": "AAPL", "timestamp": "2021-08-24T13:30:00Z", "open": 100.0,
                   "high": 102.0, "low": 99.5, "close": 101.8, "volume": 1200}
        assert client.post("/admin/bars/correct", headers=HEADERS, json=revised).status_code == 200
        (message,) = frames(socket)
        assert (message["T"], message["c"], message["v"]) == ("u", 101.8, 1200.0)
        unsent = {**revised, "timestamp": "2021-08-24T13:31:00Z"}
        answer = client.post("/admin/bars/correct", headers=HEADERS, json=unsent)
        assert answer.status_code == 422
        assert "only bars already sent can be revised" in answer.json()["message"]
        crossed = {**revised, "low": 103.0}
        answer = client.post("/admin/bars/correct", headers=HEADERS, json=crossed)
        assert answer.json()["message"] == "the bar needs low <= open, close <= high"


def test_intrabar_prints_fill_an_order_at_the_next_print() -> None:
    with subscribed(intrabar=True, trades=["AAPL"], bars=["AAPL"]) as (client, socket):
        first = advance(client, prints=1)
        assert first["timestamps"] == ["2021-08-24T13:30:00+00:00"]
        (trade,) = frames(socket)
        assert trade["p"] == 100.0
        order = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
                 "time_in_force": "day", "client_order_id": "mid-bar"}
        assert client.post("/v2/orders", headers=HEADERS, json=order).status_code == 200
        second = advance(client, prints=1)
        assert second["timestamps"] == ["2021-08-24T13:30:15+00:00"]
        filled = client.get("/v2/orders:by_client_order_id", headers=HEADERS,
                            params={"client_order_id": "mid-bar"}).json()
        assert float(filled["filled_avg_price"]) == pytest.approx(99.5, rel=1e-3)  # the low
        frames(socket)
        advance(client, prints=2)  # the bar's last two prints, then its bar
        kinds = [m["T"] for m in frames(socket)] + [m["T"] for m in frames(socket)]
        assert kinds == ["t", "t", "b"]
        whole = advance(client, steps=1)  # a step replays the next bar's four prints
        assert whole["timestamps"] == ["2021-08-24T13:31:00+00:00"]
        assert client.get("/admin/state", headers=HEADERS).json()["steps_done"] == 2


def test_prints_need_an_intrabar_exchange() -> None:
    with subscribed(bars=["AAPL"]) as (client, _):
        answer = client.post("/admin/advance", headers=HEADERS, json={"prints": 1})
        assert answer.status_code == 422
        assert "--intrabar-prints" in answer.json()["message"]


def test_the_news_file_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    good = {"created_at": "2021-08-24T13:31:30Z", "headline": " Apple beats ",
            "symbols": ["aapl", "MSFT"], "source": "benzinga"}
    path.write_text("# comment\n\n" + json.dumps(good) + "\n", encoding="utf-8")
    (read,) = read_news_file(path)
    assert read == NewsArticle(3, datetime(2021, 8, 24, 13, 31, 30, tzinfo=UTC), "Apple beats",
                               ("AAPL", "MSFT"), source="benzinga")
    cases = {
        "{not json": "not JSON",
        json.dumps({**good, "symbols": []}): "symbols must be a non-empty list of tickers",
        json.dumps({**good, "title": "x"}): "unknown news field(s) title",
        json.dumps({**good, "created_at": "soon"}): "created_at 'soon' is not an RFC 3339 time",
    }
    for line, message in cases.items():
        path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            read_news_file(path)
        assert error.value.message.startswith(message)
        assert error.value.where == f"{path}:1"


def test_the_command_names_a_bad_news_file_in_one_line(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"headline": "x", "symbols": ["AAPL"]}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["paper-exchange", "--port", "0", "--news", str(path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "created_at None is not an RFC 3339 time" in error
    assert f"{path}:1" in " ".join(error.split())


def test_a_restarted_intrabar_exchange_resumes_mid_bar(tmp_path: Path) -> None:
    """The journal replays print commands: a restart mid-bar carries on at the next print
    with the same fills, and sends no news twice."""
    config = PaperExchangeConfig(timeframe="1Min", intrabar_prints=True,
                                 state_path=tmp_path / "exchange.db")
    first = create_exchange_app(minute_bars(), config, news=[article(0.2)])
    order = {"symbol": "AAPL", "qty": 2, "side": "buy", "type": "market",
             "time_in_force": "day", "client_order_id": "mid-bar"}
    with TestClient(first) as client:
        advance(client, prints=1)
        client.post("/v2/orders", headers=HEADERS, json=order)
        advance(client, prints=5)  # into the second bar: the article is out
        before = client.get("/v2/positions", headers=HEADERS).json()
        state = client.get("/admin/state", headers=HEADERS).json()
    again = create_exchange_app(minute_bars(), config, news=[article(0.2)])
    with TestClient(again) as client, client.websocket_connect("/v1beta1/news") as socket:
        frames(socket)
        socket.send_bytes(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}))
        frames(socket)
        socket.send_bytes(msgpack.packb({"action": "subscribe", "news": ["*"],
                                         "trades": ["AAPL"]}))
        frames(socket)
        assert client.get("/v2/positions", headers=HEADERS).json() == before
        resumed = client.get("/admin/state", headers=HEADERS).json()
        assert resumed["steps_done"] == state["steps_done"] == 1
        assert resumed["timestamp"] == "2021-08-24T13:31:15+00:00"
        assert advance(client, prints=1)["timestamps"] == ["2021-08-24T13:31:30+00:00"]
        assert [m["T"] for m in frames(socket)] == ["t"]  # the print, no news again
