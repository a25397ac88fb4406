"""The paper exchange's Alpaca API in-process (Starlette's test client): the JSON it
answers parses into alpaca-py's own models, refusals are Alpaca-style errors, the
`trade_updates` handshake matches alpaca-py's, and a restart replays the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from alpaca.trading.models import Clock, Order, Position, TradeAccount, TradeUpdate
from pydantic import SecretStr
from starlette.testclient import TestClient

from trading.adapters.paper_exchange.app import build_app
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.venue import PaperVenue

KEYS = {"APCA-API-KEY-ID": "key", "APCA-API-SECRET-KEY": "secret"}


def make_client(bars: pd.DataFrame, **config: Any) -> TestClient:
    settings = PaperExchangeConfig(**config)
    return TestClient(build_app(PaperVenue(bars, settings), settings), headers=KEYS)


def bracket(client_order_id: str, take_profit: float, stop_loss: float, qty: int = 10) -> dict:
    return {
        "symbol": "AAPL",
        "qty": qty,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "order_class": "bracket",
        "client_order_id": client_order_id,
        "take_profit": {"limit_price": take_profit},
        "stop_loss": {"stop_price": stop_loss},
    }


def test_answers_parse_into_alpaca_py_models(bars: pd.DataFrame) -> None:
    with make_client(bars) as client:
        client.post("/admin/advance", json={"steps": 1})
        placed = client.post("/v2/orders", json=bracket("b-1", 260.0, 190.0))
        assert placed.status_code == 200, placed.text
        order = Order(**placed.json())
        assert order.client_order_id == "b-1"
        assert order.order_class == "bracket"
        # the exit legs are shown held from the start, as Alpaca does
        assert order.legs is not None
        assert [leg.status for leg in order.legs] == ["held", "held"]

        client.post("/admin/advance", json={"steps": 1})
        filled = Order(**client.get(f"/v2/orders/{order.id}").json())
        assert filled.status == "filled"
        assert float(filled.filled_qty or 0) == 10
        assert filled.legs is not None
        assert {leg.status for leg in filled.legs} == {"new"}
        assert {leg.client_order_id for leg in filled.legs} == {"b-1-tp", "b-1-sl"}

        positions = [Position(**p) for p in client.get("/v2/positions").json()]
        assert [(p.symbol, float(p.qty)) for p in positions] == [("AAPL", 10.0)]
        account = TradeAccount(**client.get("/v2/account").json())
        assert float(account.cash or 0) < 100_000
        clock = Clock(**client.get("/v2/clock").json())
        assert clock.is_open
        by_client = Order(
            **client.get("/v2/orders:by_client_order_id?client_order_id=b-1-sl").json()
        )
        assert by_client.type == "stop"
        assert float(by_client.stop_price or 0) == 190.0


def test_replace_creates_a_new_version_and_keeps_the_old_one(bars: pd.DataFrame) -> None:
    with make_client(bars) as client:
        client.post("/admin/advance", json={"steps": 1})
        client.post("/v2/orders", json=bracket("b-2", 260.0, 190.0))
        client.post("/admin/advance", json={"steps": 1})
        stop = client.get("/v2/orders:by_client_order_id?client_order_id=b-2-sl").json()
        moved = client.patch(f"/v2/orders/{stop['id']}", json={"stop_price": 200.5})
        assert moved.status_code == 200, moved.text
        new = Order(**moved.json())
        assert str(new.id) != stop["id"]
        assert float(new.stop_price or 0) == 200.5
        assert new.client_order_id == "b-2-sl~r1"
        old = Order(**client.get(f"/v2/orders/{stop['id']}").json())
        assert old.status == "replaced"
        assert old.replaced_by == new.id


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        (
            "post",
            "/v2/orders",
            {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day"},
            422,
            "qty is required",
        ),
        (
            "post",
            "/v2/orders",
            {"symbol": "AAPL", "qty": 1, "side": "hold", "type": "market", "time_in_force": "day"},
            422,
            "side 'hold'",
        ),
        (
            "post",
            "/v2/orders",
            {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "limit", "time_in_force": "day"},
            422,
            "limit_price is required",
        ),
        (
            "post",
            "/v2/orders",
            {"symbol": "ZZZZ", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day"},
            422,
            "'ZZZZ' is not traded",
        ),
        ("post", "/v2/orders", {**bracket("x", 190.0, 260.0)}, 422, "must be above"),
        (
            "post",
            "/v2/orders",
            {"symbol": "AAPL", "qty": -3, "side": "buy", "type": "market", "time_in_force": "day"},
            422,
            "qty must be a positive",
        ),
        (
            "post",
            "/v2/orders",
            {"symbol": "AAPL", "qty": 1, "side": "sell", "type": "market", "time_in_force": "day"},
            403,
            "no long position",
        ),
        (
            "post",
            "/v2/orders",
            {
                "symbol": "AAPL",
                "qty": 10_000,
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
            },
            403,
            "insufficient buying power",
        ),
        ("get", "/v2/orders/5d8a6a0e-0000-4000-8000-000000000000", None, 404, "order not found"),
        ("get", "/v2/orders/not-a-uuid", None, 422, "not a valid uuid"),
        ("get", "/v2/orders?status=pending", None, 422, "status 'pending'"),
        ("get", "/v2/positions/AAPL", None, 404, "position does not exist"),
        ("delete", "/v2/positions/AAPL", None, 404, "position does not exist"),
        ("get", "/v2/nothing-here", None, 404, "not found"),
    ],
)
def test_bad_requests_get_alpaca_style_errors(
    bars: pd.DataFrame, method: str, path: str, body: dict | None, status: int, words: str
) -> None:
    with make_client(bars) as client:
        client.post("/admin/advance", json={"steps": 1})
        answer = client.request(method.upper(), path, json=body)
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert set(error) == {"code", "message"}
        assert str(error["code"]).startswith(str(status))
        assert words in error["message"]


def test_duplicate_client_order_id_is_refused_like_alpaca(bars: pd.DataFrame) -> None:
    with make_client(bars) as client:
        client.post("/admin/advance", json={"steps": 1})
        assert client.post("/v2/orders", json=bracket("dup", 260.0, 190.0)).status_code == 200
        again = client.post("/v2/orders", json=bracket("dup", 260.0, 190.0))
        assert again.status_code == 422
        assert again.json()["message"] == "client_order_id must be unique"
        assert len(client.get("/v2/orders?status=all").json()) == 1


def test_requests_need_the_configured_keys(bars: pd.DataFrame) -> None:
    with make_client(bars, api_key=SecretStr("key"), secret_key=SecretStr("other")) as client:
        answer = client.get("/v2/account")
        assert answer.status_code == 401
        assert answer.json() == {"code": 40110000, "message": "request is not authorized"}
    with make_client(bars) as client:
        assert client.get("/v2/account", headers={"APCA-API-KEY-ID": ""}).status_code == 401


def test_trade_updates_handshake_and_events(bars: pd.DataFrame) -> None:
    with make_client(bars) as client, client.websocket_connect("/stream") as stream:
        stream.send_json({"action": "authenticate", "data": {"key_id": "k", "secret_key": "s"}})
        assert stream.receive_json() == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        stream.send_json({"action": "listen", "data": {"streams": ["trade_updates"]}})
        assert stream.receive_json() == {
            "stream": "listening",
            "data": {"streams": ["trade_updates"]},
        }
        client.post("/admin/advance", json={"steps": 1})
        client.post("/v2/orders", json=bracket("s-1", 260.0, 190.0))
        new = stream.receive_json()
        assert new["stream"] == "trade_updates"
        assert TradeUpdate(**new["data"]).event == "new"
        client.post("/admin/advance", json={"steps": 1})
        fill = TradeUpdate(**stream.receive_json()["data"])
        assert fill.event == "fill"
        assert fill.qty == 10
        assert fill.position_qty == 10
        assert fill.price is not None
        assert fill.order.client_order_id == "s-1"


def test_stream_refuses_wrong_keys(bars: pd.DataFrame) -> None:
    with (
        make_client(bars, api_key=SecretStr("key"), secret_key=SecretStr("secret")) as client,
        client.websocket_connect("/stream") as stream,
    ):
        stream.send_json({"action": "authenticate", "data": {"key_id": "key", "secret_key": "x"}})
        assert stream.receive_json()["data"]["status"] == "unauthorized"


def test_restarted_exchange_replays_its_journal(bars: pd.DataFrame, tmp_path: Path) -> None:
    state = tmp_path / "exchange.db"

    def snapshot(client: TestClient) -> tuple[Any, ...]:
        return (
            client.get("/v2/account").json(),
            client.get("/v2/positions").json(),
            client.get("/v2/orders?status=all&nested=true&limit=500").json(),
            client.get("/v2/clock").json(),
        )

    with make_client(bars, state_path=state) as client:
        client.post("/admin/advance", json={"steps": 1})
        client.post("/v2/orders", json=bracket("r-1", 260.0, 190.0))
        client.post("/admin/advance", json={"steps": 2})
        stop = client.get("/v2/orders:by_client_order_id?client_order_id=r-1-sl").json()
        client.patch(f"/v2/orders/{stop['id']}", json={"stop_price": 195.0})
        client.post(
            "/v2/orders",
            json={
                "symbol": "MSFT",
                "qty": 5,
                "side": "buy",
                "type": "limit",
                "limit_price": 1.0,
                "time_in_force": "gtc",
                "client_order_id": "r-2",
            },
        )
        client.delete(
            f"/v2/orders/{client.get('/v2/orders:by_client_order_id?client_order_id=r-2').json()['id']}"
        )
        client.post("/admin/advance", json={"steps": 3})
        before = snapshot(client)
    with make_client(bars, state_path=state) as client:
        assert snapshot(client) == before
        # and it carries on from where it stopped
        assert client.post("/admin/advance", json={"steps": 1}).json()["steps_done"] == 7


def test_saved_state_from_other_bars_is_refused_clearly(bars: pd.DataFrame, tmp_path: Path) -> None:
    from core.errors import ConfigError

    state = tmp_path / "exchange.db"
    with make_client(bars, state_path=state) as client:
        client.post("/admin/advance", json={"steps": 3})
    later = bars[bars["timestamp"] > bars["timestamp"].min() + pd.Timedelta(days=10)]
    with pytest.raises(ConfigError, match=r"does not fit these bars.*--fresh"):
        make_client(later, state_path=state)


def test_partial_fills_are_streamed_with_their_own_quantities(bars: pd.DataFrame) -> None:
    from trading.adapters.simulated.config import SimulatedExchangeConfig

    # At most 1e-6 of a bar's volume per bar: a 50-share order fills over several bars.
    exchange = SimulatedExchangeConfig(max_volume_fraction=1e-6)
    with make_client(bars, exchange=exchange) as client, client.websocket_connect("/stream") as ws:
        ws.send_json({"action": "authenticate", "data": {"key_id": "k", "secret_key": "s"}})
        ws.receive_json()
        ws.send_json({"action": "listen", "data": {"streams": ["trade_updates"]}})
        ws.receive_json()
        client.post("/admin/advance", json={"steps": 1})
        order = {
            "symbol": "MSFT",
            "qty": 50,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "big",
        }
        assert client.post("/v2/orders", json=order).status_code == 200
        assert TradeUpdate(**ws.receive_json()["data"]).event == "new"
        fills: list[TradeUpdate] = []
        for _ in range(10):  # each bar fills a part, so each advance sends one event
            published = client.get("/admin/state").json()["events_published"]
            assert client.post("/admin/advance", json={"steps": 1}).json()["events_published"] > (
                published
            )
            fills.append(TradeUpdate(**ws.receive_json()["data"]))
            if fills[-1].event == "fill":
                break
        assert len(fills) >= 2
        assert {u.event for u in fills[:-1]} == {"partial_fill"}
        assert sum(u.qty or 0 for u in fills) == 50
        cumulative = [float(u.order.filled_qty or 0) for u in fills]
        assert cumulative == sorted(cumulative)
        assert cumulative[-1] == 50
        assert [u.position_qty for u in fills] == cumulative
        assert len({u.execution_id for u in fills}) == len(fills)


def test_oco_exit_pair_cancels_the_other_leg(bars: pd.DataFrame) -> None:
    aapl = bars[bars["symbol"] == "AAPL"].reset_index(drop=True)
    with make_client(bars) as client:
        client.post("/admin/advance", json={"steps": 1})
        buy = {
            "symbol": "AAPL",
            "qty": 10,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "held",
        }
        client.post("/v2/orders", json=buy)
        client.post("/admin/advance", json={"steps": 1})  # bar 1: bought at the open
        # An exit pair for the shares held: the target is reached on bar 2, the stop is not.
        target = round(float(aapl.loc[2, "high"]) - 0.01, 2)
        stop = round(float(aapl.loc[2, "low"]) * 0.9, 2)
        oco = {
            "symbol": "AAPL",
            "qty": 10,
            "side": "sell",
            "type": "limit",
            "time_in_force": "gtc",
            "order_class": "oco",
            "client_order_id": "exit",
            "take_profit": {"limit_price": target},
            "stop_loss": {"stop_price": stop},
        }
        placed = client.post("/v2/orders", json=oco)
        assert placed.status_code == 200, placed.text
        order = Order(**placed.json())
        assert order.order_class == "oco"
        assert order.legs is not None
        assert [(leg.type, float(leg.stop_price or 0)) for leg in order.legs] == [("stop", stop)]
        wrong = client.post("/v2/orders", json={**oco, "client_order_id": "x", "type": "market"})
        assert wrong.json()["message"] == "oco orders must be of type limit"

        client.post("/admin/advance", json={"steps": 1})
        done = Order(**client.get(f"/v2/orders/{order.id}").json())
        assert done.status == "filled"
        assert float(done.filled_avg_price or 0) >= target
        assert done.legs is not None
        assert done.legs[0].status == "canceled"
        assert client.get("/v2/positions").json() == []
