"""The live inputs of the streaming features: headlines from a news stream are scored
and counted exactly as the offline sentiment features count the same headlines, with
the missing flag only when no source is connected; a corrected latest bar gives the
features a stream fed the corrected bar from the start would give."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.types import BAR_COLUMNS
from features.catalogue import BAR_FEATURES
from features.sentiment import SENTIMENT_COLUMNS, sentiment_features
from features.streaming import StreamingFeatures
from features.technical import periods_per_year
from tests.conftest import shared_file

NEWS = pd.DataFrame({
    "symbol": ["AAPL", "AAPL", "MSFT", "AAPL"],
    "timestamp": pd.to_datetime(["2021-08-23 13:40", "2021-08-20 15:00", "2021-08-23 13:35",
                                 "2021-08-23 14:10"], utc=True),
    "headline": ["Apple shares surge on record profit", "Apple faces a lawsuit over fraud",
                 "Microsoft cloud growth slows", "Apple unveils a new phone"],
})


@pytest.fixture(scope="module")
def minute() -> pd.DataFrame:
    bars = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    bars = bars.loc[bars["symbol"].isin(["AAPL", "MSFT"]), list(BAR_COLUMNS)]
    bars = bars.loc[bars["timestamp"] < "2021-08-23 15:00:00+00:00"]
    return bars.sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def test_live_headlines_count_as_the_offline_features_count_them(minute: pd.DataFrame) -> None:
    live = StreamingFeatures(bars_per_year=periods_per_year(minute["timestamp"]))
    got: list[dict[str, float]] = []
    pending = NEWS.sort_values("timestamp").to_dict("records")
    silent = live.update_many(minute.loc[minute["timestamp"] == minute["timestamp"].min()])
    assert silent["AAPL"]["sent_available"] == 0.0  # no source: flagged, never a 0 count
    assert math.isnan(silent["AAPL"]["news_count_1d"])
    live.news_live()
    for moment, group in minute.groupby("timestamp", sort=True):
        if moment == minute["timestamp"].min():
            continue
        while pending and pending[0]["timestamp"] <= moment:  # arrives before the bar
            item = pending.pop(0)
            live.add_news(item["symbol"], int(item["timestamp"].value), item["headline"])
        rows = live.update_many(group)
        if moment >= pd.Timestamp("2021-08-23 13:30", tz="UTC"):
            got.extend({"symbol": s, "timestamp": moment, **rows[s]} for s in sorted(rows))
    streamed = pd.DataFrame(got)
    offline = sentiment_features(streamed["symbol"], streamed["timestamp"], news=NEWS)
    for name in SENTIMENT_COLUMNS:
        if name.startswith("earnings"):
            continue
        np.testing.assert_allclose(streamed[name].to_numpy(), offline[name].to_numpy(),
                                   rtol=0, atol=1e-12, err_msg=name)
    assert streamed["news_count_5d"].max() == 3.0


def test_a_corrected_latest_bar_equals_a_stream_of_the_corrected_bars(
    minute: pd.DataFrame,
) -> None:
    per_year = periods_per_year(minute["timestamp"])
    live = StreamingFeatures(bars_per_year=per_year, corrections=True)
    times = sorted(minute["timestamp"].unique())
    for moment in times[:-1]:
        live.update_many(minute.loc[minute["timestamp"] == moment])
    last = minute.loc[minute["timestamp"] == times[-1]].copy()
    live.update_many(last)
    revised = last.copy()
    aapl = revised["symbol"] == "AAPL"
    revised.loc[aapl, "close"] *= 1.004
    revised.loc[aapl, "high"] = revised.loc[aapl, ["high", "close"]].max(axis=1)
    revised.loc[aapl, "volume"] += 500
    row = revised.loc[aapl].iloc[0]
    corrected = live.correct_bar("AAPL", int(row["timestamp"].value), float(row["open"]),
                                 float(row["high"]), float(row["low"]), float(row["close"]),
                                 float(row["volume"]))
    assert corrected is not None
    fresh = StreamingFeatures(bars_per_year=per_year)
    for moment in times[:-1]:
        fresh.update_many(minute.loc[minute["timestamp"] == moment])
    want = fresh.update_many(revised)
    for name in BAR_FEATURES:
        a, b = corrected[name], want["AAPL"][name]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9), name
    # Only the latest bar can be revised; without `corrections` none can.
    earlier = int(pd.Timestamp(times[-2]).value)
    assert live.correct_bar("AAPL", earlier, 1.0, 1.0, 1.0, 1.0, 1.0) is None
    assert fresh.correct_bar("AAPL", int(row["timestamp"].value), 1.0, 1.0, 1.0, 1.0, 1.0) is None
