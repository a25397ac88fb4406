"""The local `/v2/stocks/bars` API: Alpaca's paging, sorting, errors and 429 switch,
called in-process (starlette's TestClient)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x nags about httpx; it still works
    from starlette.testclient import TestClient

from trading.adapters.paper_exchange.data_api import DataApiConfig, build_data_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def minutes(symbol: str, count: int, start: str = "2021-08-23T13:30Z") -> pd.DataFrame:
    close = 100 + np.arange(count, dtype=float)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": pd.date_range(start, periods=count, freq="1min"),
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close + 0.25,
            "volume": 10.0,
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.concat([minutes("BBB", 7), minutes("AAA", 5)], ignore_index=True)


KEYS = {"APCA-API-KEY-ID": "any-key", "APCA-API-SECRET-KEY": "any-secret"}


def get(app: object, **params: object) -> tuple[int, dict]:
    with TestClient(app, headers=KEYS) as http:  # type: ignore[arg-type]
        response = http.get("/v2/stocks/bars", params=params)
    return response.status_code, response.json()


def test_pages_go_symbol_by_symbol_and_resume_exactly(frame: pd.DataFrame) -> None:
    app = build_data_app(frame, timeframe="1Min")
    seen: list[tuple[str, str]] = []
    token = None
    pages = 0
    while True:
        params = {"symbols": "BBB,AAA", "timeframe": "1Min", "limit": 4}
        if token:
            params["page_token"] = token
        status, body = get(app, **params)
        assert status == 200
        pages += 1
        assert sum(len(bars) for bars in body["bars"].values()) <= 4
        seen += [(symbol, bar["t"]) for symbol, bars in body["bars"].items() for bar in bars]
        token = body["next_page_token"]
        if token is None:
            break
    assert pages == 3  # 12 bars, 4 a page
    assert [s for s, _ in seen] == ["AAA"] * 5 + ["BBB"] * 7
    assert seen[0][1] == "2021-08-23T13:30:00Z"
    assert len(set(seen)) == 12


def test_bar_fields_are_alpaca_shaped(frame: pd.DataFrame) -> None:
    status, body = get(build_data_app(frame, timeframe="1Min"), symbols="AAA", timeframe="1Min")
    assert status == 200
    assert body["bars"]["AAA"][0] == {
        "t": "2021-08-23T13:30:00Z",
        "o": 100.0,
        "h": 100.5,
        "l": 99.5,
        "c": 100.25,
        "v": 10,
        "n": None,
        "vw": None,
    }


def test_descending_sort_and_time_bounds(frame: pd.DataFrame) -> None:
    app = build_data_app(frame, timeframe="1Min")
    status, body = get(
        app,
        symbols="AAA",
        timeframe="1Min",
        sort="desc",
        start="2021-08-23T13:31:00Z",
        end="2021-08-23T13:33:00Z",
    )
    assert status == 200
    assert [bar["t"][11:16] for bar in body["bars"]["AAA"]] == ["13:33", "13:32", "13:31"]
    status, body = get(app, symbols="AAA", timeframe="1Min", sort="desc", limit=2)
    status, rest = get(
        app, symbols="AAA", timeframe="1Min", sort="desc", page_token=body["next_page_token"]
    )
    assert [bar["t"][11:16] for bar in rest["bars"]["AAA"]] == ["13:32", "13:31", "13:30"]


def test_coarser_timeframes_are_aggregated_on_bar_start(frame: pd.DataFrame) -> None:
    status, body = get(build_data_app(frame, timeframe="1Min"), symbols="BBB", timeframe="5Min")
    assert status == 200
    bars = body["bars"]["BBB"]
    assert [bar["t"][11:16] for bar in bars] == ["13:30", "13:35"]
    assert (bars[0]["o"], bars[0]["h"], bars[0]["l"], bars[0]["c"], bars[0]["v"]) == (
        100.0,
        104.5,
        99.5,
        104.25,
        50,
    )
    assert bars[1]["v"] == 20
    # Daily bars are never made from minutes: nothing to serve.
    status, body = get(build_data_app(frame, timeframe="1Min"), symbols="BBB", timeframe="1Day")
    assert (status, body) == (200, {"bars": {}, "next_page_token": None})


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"timeframe": "1Min"}, 400, "missing symbols"),
        ({"symbols": "AAA", "timeframe": "2Weeks"}, 422, "invalid timeframe"),
        ({"symbols": "AAA", "timeframe": "1Min", "limit": 0}, 422, "invalid limit"),
        ({"symbols": "AAA", "timeframe": "1Min", "limit": "many"}, 422, "invalid limit"),
        ({"symbols": "AAA", "timeframe": "1Min", "feed": "nasdaq"}, 422, "invalid feed"),
        ({"symbols": "AAA", "timeframe": "1Min", "adjustment": "x"}, 422, "invalid adjustment"),
        ({"symbols": "AAA", "timeframe": "1Min", "start": "soon"}, 422, "invalid time"),
        ({"symbols": "AAA", "timeframe": "1Min", "page_token": "%%%"}, 422, "invalid page_token"),
    ],
)
def test_bad_requests_get_alpaca_style_errors(
    frame: pd.DataFrame, params: dict, status: int, fragment: str
) -> None:
    got_status, body = get(build_data_app(frame, timeframe="1Min"), **params)
    assert got_status == status
    assert fragment in body["message"]
    assert "code" in body


def test_the_429_switch_answers_n_times_then_serves(frame: pd.DataFrame) -> None:
    app = build_data_app(frame, DataApiConfig(), timeframe="1Min")
    app.state.rate_limit.arm(2)
    with TestClient(app, headers=KEYS) as http:
        codes = [
            http.get("/v2/stocks/bars", params={"symbols": "AAA", "timeframe": "1Min"}).status_code
            for _ in range(3)
        ]
    assert codes == [429, 429, 200]
    assert app.state.rate_limit.answered == 2


def test_keys_are_checked_when_configured(frame: pd.DataFrame) -> None:
    app = build_data_app(
        frame,
        DataApiConfig(api_key="k", secret_key="s"),  # type: ignore[arg-type]
        timeframe="1Min",
    )
    params = {"symbols": "AAA", "timeframe": "1Min"}
    with TestClient(app) as http:
        refused = http.get("/v2/stocks/bars", params=params)
        accepted = http.get(
            "/v2/stocks/bars",
            params=params,
            headers={"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"},
        )
    assert refused.status_code == 401
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"APCA-API-KEY-ID": "k"}, {"APCA-API-SECRET-KEY": "s"},
     {"APCA-API-KEY-ID": "", "APCA-API-SECRET-KEY": "s"}],
)
def test_without_both_key_headers_it_is_401_as_at_alpaca(
    frame: pd.DataFrame, headers: dict[str, str]
) -> None:
    with TestClient(build_data_app(frame, timeframe="1Min")) as http:  # type: ignore[arg-type]
        answer = http.get("/v2/stocks/bars", params={"symbols": "AAA", "timeframe": "1Min"},
                          headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"code": 40110000, "message": "request is not authorized"}


@pytest.mark.parametrize(("key", "secret"), [("k", "wrong"), ("wrong", "s"), ("k", "s ")])
def test_a_wrong_key_or_secret_is_401(frame: pd.DataFrame, key: str, secret: str) -> None:
    app = build_data_app(
        frame, DataApiConfig(api_key="k", secret_key="s"), timeframe="1Min"  # type: ignore[arg-type]
    )
    with TestClient(app) as http:  # type: ignore[arg-type]
        answer = http.get("/v2/stocks/bars", params={"symbols": "AAA", "timeframe": "1Min"},
                          headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})
    assert answer.status_code == 401


def test_never_a_bar_after_the_clock(frame: pd.DataFrame) -> None:
    clock = [pd.Timestamp("2021-08-23T13:32Z")]
    app = build_data_app(frame, timeframe="1Min", now=lambda: clock[0].to_pydatetime())
    status, body = get(app, symbols="AAA,BBB", timeframe="1Min")
    assert status == 200
    for symbol in ("AAA", "BBB"):
        assert [bar["t"] for bar in body["bars"][symbol]] == [
            "2021-08-23T13:30:00Z", "2021-08-23T13:31:00Z", "2021-08-23T13:32:00Z"]
    # an explicit end beyond the clock is capped too; a start after it finds nothing
    status, body = get(app, symbols="AAA", timeframe="1Min", end="2021-08-23T13:40:00Z")
    assert body["bars"]["AAA"][-1]["t"] == "2021-08-23T13:32:00Z"
    status, body = get(app, symbols="AAA", timeframe="1Min", start="2021-08-23T13:33:00Z")
    assert (status, body["bars"]) == (200, {})
    clock[0] = pd.Timestamp("2021-08-23T13:33Z")  # the replay moved on
    status, body = get(app, symbols="AAA", timeframe="1Min")
    assert len(body["bars"]["AAA"]) == 4
