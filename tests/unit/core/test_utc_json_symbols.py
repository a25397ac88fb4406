"""Small core helpers: UTC values, strict JSON, the market-context symbols, bracket legs."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.strict_json import dumps_strict, json_safe
from core.symbols import (
    CONTEXT_ONLY_SYMBOLS,
    MARKET_CONTEXT_SYMBOLS,
    is_tradable,
    split_context,
)
from core.types import BracketLeg
from core.utc import require_aware, utc_datetime, utc_timestamp

NEW_YORK_SUMMER = timezone(timedelta(hours=-4))


def test_naive_means_utc_and_aware_is_converted() -> None:
    assert utc_timestamp("2015-06-01") == pd.Timestamp("2015-06-01T00:00Z")
    assert utc_timestamp("2015-06-01T10:00-04:00") == pd.Timestamp("2015-06-01T14:00Z")
    assert str(utc_timestamp(pd.Timestamp("2015-06-01 10:00")).tz) == "UTC"
    assert utc_timestamp(None) is None
    aware = datetime(2015, 6, 1, 10, tzinfo=NEW_YORK_SUMMER)
    assert utc_datetime(aware) == datetime(2015, 6, 1, 14, tzinfo=UTC)
    assert utc_datetime(aware).tzinfo is UTC
    assert utc_datetime(datetime(2015, 6, 1, 10)) == datetime(2015, 6, 1, 10, tzinfo=UTC)  # noqa: DTZ001
    assert utc_datetime("2015-06-01") == datetime(2015, 6, 1, tzinfo=UTC)
    assert utc_datetime(None) is None


def test_clocks_refuse_naive_times() -> None:
    with pytest.raises(DataValidationError, match="no time zone"):
        require_aware(datetime(2015, 6, 1), where="test")  # noqa: DTZ001
    require_aware(datetime(2015, 6, 1, tzinfo=UTC), where="test")


def test_strict_json_has_no_nan_or_infinity() -> None:
    value = {
        1: np.float64(0.1234567891),
        "nan": math.nan,
        "inf": (math.inf, -math.inf),
        "stamp": pd.Timestamp("2015-06-01T14:00Z"),
        "day": date(2015, 6, 1),
        "flags": np.array([True, False]),
        "missing": pd.NaT,
        "count": np.int64(3),
    }
    safe = json_safe(value)
    assert safe == {
        "1": 0.1234567891,
        "nan": None,
        "inf": [None, None],
        "stamp": "2015-06-01T14:00:00+00:00",
        "day": "2015-06-01",
        "flags": [True, False],
        "missing": None,
        "count": 3,
    }
    assert json_safe(value, digits=3)["1"] == 0.123
    assert json_safe([math.inf, -math.inf], infinity_as_text=True) == ["inf", "-inf"]
    assert json.loads(dumps_strict(value))["nan"] is None


def test_context_symbols_and_the_split() -> None:
    assert {"SPX", "COMP", "VIX"} == CONTEXT_ONLY_SYMBOLS
    assert CONTEXT_ONLY_SYMBOLS | {"SPY"} == MARKET_CONTEXT_SYMBOLS
    assert is_tradable("SPY")
    assert not is_tradable("VIX")
    stamps = pd.to_datetime(["2015-06-01", "2015-06-02"], utc=True)
    bars = pd.DataFrame(
        {"symbol": ["AAPL", "AAPL", "SPY", "SPY", "SPX", "SPX"], "timestamp": list(stamps) * 3}
    )
    extra = pd.DataFrame({"symbol": ["SPX", "VIX"], "timestamp": [stamps[1], stamps[0]]})
    tradable, context = split_context(bars, extra)
    assert sorted(set(tradable["symbol"])) == ["AAPL", "SPY"]
    assert context is not None
    assert list(context["symbol"]) == ["SPX", "SPX", "SPY", "SPY", "VIX"]
    assert not context.duplicated(["symbol", "timestamp"]).any()
    alone, none = split_context(bars[bars["symbol"] == "AAPL"])
    assert none is None
    assert len(alone) == 2


def test_bracket_leg_ids() -> None:
    assert BracketLeg.STOP_LOSS.leg_id("tw-abc") == "tw-abc-sl"
    assert BracketLeg.TAKE_PROFIT.leg_id("tw-abc") == "tw-abc-tp"
    assert BracketLeg.of("tw-abc-tp") is BracketLeg.TAKE_PROFIT
    assert BracketLeg.of("tw-abc-sl") is BracketLeg.STOP_LOSS
    assert BracketLeg.of("tw-abc") is None
    assert BracketLeg.entry_id("tw-abc-sl") == "tw-abc"
    assert BracketLeg.entry_id("tw-abc") is None
