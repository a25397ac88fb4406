"""The bar timeframe the served models were trained on: a decision asked for another one
is refused (409, naming both), the A/B arms serve one timeframe, and the engine's client
sends its own with every decision and refuses a service of other bars before a run."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from core.bars import TIMEFRAMES
from core.errors import TimeframeMismatch
from core.types import Side, Signal
from serving.client import HttpModelClient
from serving.decision import DecisionMaker, ServedModels
from serving.model_slots import ModelSlots
from serving.openapi import openapi_document
from serving.router import ABRouter, RoutingConfig
from serving.schemas import DecideRequest, Timeframe
from tests.unit.serving.fakes import FormulaModelSet, features
from tests.unit.serving.test_serving_client import _answer

SIGNAL = Signal("SPY", Side.BUY, datetime(2021, 8, 10, 14, 31, tzinfo=UTC), "momentum", 440.0)


def _maker(champion: FormulaModelSet, challenger: FormulaModelSet | None = None,
           share: float = 0.0) -> DecisionMaker:
    served = ServedModels(champion=champion, challenger=challenger)
    return DecisionMaker(lambda: served, ABRouter(RoutingConfig(challenger_share=share)))


def test_a_decision_for_the_served_timeframe_is_answered() -> None:
    maker = _maker(FormulaModelSet(timeframe="1Min"))
    assert maker.decide(SIGNAL, features(), "1Min").action in ("enter", "skip")
    assert maker.decide(SIGNAL, features()).action in ("enter", "skip")  # not asked: unchecked


@pytest.mark.parametrize("endpoint", ["decide", "signal_quality", "exit", "regime", "risk"])
def test_another_timeframe_is_refused_naming_both(endpoint: str) -> None:
    maker = _maker(FormulaModelSet(timeframe="1Min"))
    with pytest.raises(TimeframeMismatch, match=r"1Day bars.*trained on 1Min") as refused:
        getattr(maker, endpoint)(SIGNAL, features(), "1Day")
    assert refused.value.http_status == 409
    assert refused.value.where == "timeframe"


def test_daily_models_refuse_a_minute_engine() -> None:
    with pytest.raises(TimeframeMismatch, match="1Min bars but the served models were "
                       "trained on 1Day"):
        _maker(FormulaModelSet()).decide(SIGNAL, features(), "1Min")


def test_the_request_schema_lists_the_timeframes_as_an_enum() -> None:
    assert typing.get_args(Timeframe) == TIMEFRAMES
    request = DecideRequest.model_validate_json(json.dumps({
        "signal": {"symbol": "SPY", "side": "buy", "strategy": "momentum",
                   "timestamp": "2021-08-10T14:31:00Z", "price": 440.0},
        "timeframe": "5Min",
    }))
    assert request.timeframe == "5Min"
    with pytest.raises(ValidationError, match="timeframe"):
        DecideRequest.model_validate_json(json.dumps({
            "signal": {"symbol": "SPY", "side": "buy", "strategy": "momentum",
                       "timestamp": "2021-08-10T14:31:00Z", "price": 440.0},
            "timeframe": "1Sec",
        }))
    schema = openapi_document(False)["components"]["schemas"]["DecideRequest"]
    variants = schema["properties"]["timeframe"]["anyOf"]
    assert {"enum": list(TIMEFRAMES), "type": "string"} in variants
    assert "409" in openapi_document(False)["paths"]["/decide"]["post"]["responses"]


def test_a_challenger_on_other_bars_is_not_served() -> None:
    sets = {"champion": FormulaModelSet("1"), "challenger": FormulaModelSet("2", timeframe="1Min")}
    aliases = {name: {"champion": "1", "challenger": "2"} for name in sets["champion"].versions}
    slots = ModelSlots("sqlite:///unused.db", loader=lambda _uri, alias: sets[alias],
                       alias_reader=lambda _uri: aliases)
    result = slots.reload()
    assert result.error is not None
    assert "trained on 1Min bars, the champion on 1Day" in result.error
    assert slots.current().challenger is None
    status = slots.status()
    assert status["champion"]["timeframe"] == "1Day"  # type: ignore[index]


def _service(timeframe: str | None, seen: list[dict[str, object]]) -> httpx.MockTransport:
    """A scripted service: `GET /models` says which bars it serves (None: a service from
    before the timeframe was recorded); `POST /decide` answers and keeps the body."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/models":
            status: dict[str, object] = {"champion": {"versions": {"signal_quality": "1"}},
                                         "accepted_features": ["rsi_14"]}
            if timeframe is not None:
                status["timeframe"] = timeframe
            return httpx.Response(200, json=status)
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_answer() | {"signal_id": SIGNAL.signal_id})

    return httpx.MockTransport(answer)


def test_the_client_sends_its_timeframe_with_every_decision() -> None:
    seen: list[dict[str, object]] = []
    client = HttpModelClient("http://model.test", transport=_service("1Min", seen),
                             timeframe="1Min")
    client.check_timeframe()
    client.decide(SIGNAL, {"rsi_14": 55.0})
    assert seen[0]["timeframe"] == "1Min"
    untold = HttpModelClient("http://model.test", transport=_service("1Min", seen))
    untold.decide(SIGNAL, {"rsi_14": 55.0})
    assert "timeframe" not in seen[1]
    # A service from before timeframes (no `timeframe` in `GET /models`) would refuse the
    # field: a daily engine does not send it there.
    older = HttpModelClient("http://model.test", transport=_service(None, seen),
                            timeframe="1Day")
    older.check_timeframe()
    older.decide(SIGNAL, {"rsi_14": 55.0})
    assert "timeframe" not in seen[2]


@pytest.mark.parametrize("served", ["1Day", None])
def test_a_minute_engine_refuses_a_daily_service_before_it_trades(served: str | None) -> None:
    client = HttpModelClient("http://model.test", transport=_service(served, []),
                             timeframe="1Min")
    with pytest.raises(TimeframeMismatch, match="serves models trained on 1Day bars and this "
                       "engine trades 1Min bars"):
        client.check_timeframe()


def test_an_unreachable_service_is_left_to_the_fallback() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = HttpModelClient("http://model.test", transport=httpx.MockTransport(down),
                             timeframe="1Min", retries=0)
    client.check_timeframe()  # no answer, no verdict: the engine's fallback decides
