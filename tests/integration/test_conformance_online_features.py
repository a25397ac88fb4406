"""One conformance suite for the online-feature reader (`OnlineStore.online_features`,
what a decision reads when its request carries no features), run over every back end: Feast's
SQLite online store filled by the DuckDB materialization, the same filled by Feast's own
materialization, and the in-process memory store. Features are computed from real bars
(the embedded sample's AAPL and MSFT with the S&P 500 index, 2008-2010)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from core.errors import NotFoundError
from core.settings import FeatureStoreSettings, PathSettings, StoreBackend
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set
from features.store import FeatureStore
from trading.adapters.sample.data import SampleMarketData

pytestmark = pytest.mark.integration

BACKENDS = {
    "sqlite": ("duckdb", "sqlite"),
    "sqlite-feast-materialized": ("feast", "sqlite"),
    "memory": ("duckdb", "memory"),
}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    bars = SampleMarketData().history(["AAPL", "MSFT", "SPX"], "2008-01-01", "2010-12-31")
    stocks = bars[bars["symbol"] != "SPX"].reset_index(drop=True)
    return compute_feature_set(stocks, bars[bars["symbol"] == "SPX"]).frame


def open_store(root: Path, backend: str) -> FeatureStore:
    offline, online = BACKENDS[backend]
    config = FeatureStoreSettings(
        offline_store=StoreBackend(type=offline), online_store=StoreBackend(type=online)
    )
    store = FeatureStore(PathSettings(data_dir=root / "data"), config)
    store.apply()
    return store


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store(
    backend: str, features: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> FeatureStore:
    store = open_store(tmp_path_factory.mktemp(f"online-{backend}"), backend)
    store.write_features(features)
    store.materialize()
    return store


def same(got: dict[str, float], row: pd.Series) -> None:
    assert list(got) == list(BAR_FEATURES)
    for name in BAR_FEATURES:
        expected = float(row[name])
        if math.isnan(expected):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(expected, rel=1e-12), name


def test_the_reader_gives_each_symbols_latest_row(
    store: FeatureStore, features: pd.DataFrame
) -> None:
    for symbol in ("AAPL", "MSFT"):
        same(store.online.online_features(symbol), features[features["symbol"] == symbol].iloc[-1])


def test_a_symbol_never_written_is_not_found(store: FeatureStore) -> None:
    with pytest.raises(NotFoundError, match="NOPE"):
        store.online.online_features("NOPE")


def test_materializing_up_to_a_time_gives_the_row_known_then(
    backend: str, features: pd.DataFrame, tmp_path: Path
) -> None:
    store = open_store(tmp_path, backend)
    store.write_features(features)
    cutoff = store.read_features(["MSFT"])["event_timestamp"].iloc[400]
    store.materialize(cutoff.to_pydatetime())
    msft = features[features["symbol"] == "MSFT"].reset_index(drop=True)
    same(store.online.online_features("MSFT"), msft.iloc[400])
    store.materialize()  # materialization moves forward to now
    same(store.online.online_features("MSFT"), msft.iloc[-1])


def test_a_push_replaces_the_latest_values(store: FeatureStore, features: pd.DataFrame) -> None:
    fresh = features[features["symbol"] == "AAPL"].tail(1).copy()
    fresh["timestamp"] = fresh["timestamp"] + pd.Timedelta(days=7)
    fresh["rsi_14"] = 42.5
    fresh["mkt_trend"] = -1.0
    store.push(fresh, offline=False)
    got = store.online.online_features("AAPL")
    assert got["rsi_14"] == 42.5
    assert got["mkt_trend"] == -1.0
    same(store.online.online_features("MSFT"), features[features["symbol"] == "MSFT"].iloc[-1])
