"""One conformance suite for the online-feature reader (`OnlineStore.online_features`,
what a decision reads when its request carries no features), run over every back end: Feast's
SQLite online store filled by the DuckDB materialization, the same filled by Feast's own
materialization, Feast's Redis online store with its SQL registry in PostgreSQL (real
servers, started by the session: `tests/integration/conftest.py`), and the in-process
memory store. Features are computed from real bars
(the embedded sample's AAPL and MSFT with the S&P 500 index, 2008-2010)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from core.errors import NotFoundError
from core.servers import LocalPostgres, LocalRedis
from core.settings import FeatureStoreSettings, PathSettings, StoreBackend
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set
from features.store import FeatureStore
from tests.integration.conftest import fresh_postgres_url
from trading.adapters.sample.data import SampleMarketData

pytestmark = pytest.mark.integration

BACKENDS = {
    "sqlite": ("duckdb", "sqlite"),
    "sqlite-feast-materialized": ("feast", "sqlite"),
    "redis-sql-registry": ("duckdb", "redis"),
    "memory": ("duckdb", "memory"),
}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    bars = SampleMarketData().history(["AAPL", "MSFT", "SPX"], "2008-01-01", "2010-12-31")
    stocks = bars[bars["symbol"] != "SPX"].reset_index(drop=True)
    return compute_feature_set(stocks, bars[bars["symbol"] == "SPX"]).frame


class Opener:
    """Opens a fresh store of one back end (a new Redis database and registry database
    each time for the server back end)."""

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.request = request

    def __call__(self, root: Path) -> FeatureStore:
        offline, online = BACKENDS[self.backend]
        config = FeatureStoreSettings(
            offline_store=StoreBackend(type=offline), online_store=StoreBackend(type=online)
        )
        if online == "redis":
            redis: LocalRedis = self.request.getfixturevalue("redis_server")
            postgres: LocalPostgres = self.request.getfixturevalue("postgres")
            config = config.model_copy(update={
                "online_store": StoreBackend(
                    type="redis", connection_string=redis.connection_string(redis.fresh_db())),
                "registry": StoreBackend(
                    type="sql", connection_string=fresh_postgres_url(postgres, "registry")),
            })
        store = FeatureStore(PathSettings(data_dir=root / "data"), config)
        store.apply()
        return store


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def open_store(backend: str, request: pytest.FixtureRequest) -> Opener:
    return Opener(backend, request)


@pytest.fixture(scope="module")
def store(
    backend: str, open_store: Opener, features: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> FeatureStore:
    store = open_store(tmp_path_factory.mktemp(f"online-{backend}"))
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
    open_store: Opener, features: pd.DataFrame, tmp_path: Path
) -> None:
    store = open_store(tmp_path)
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


def test_the_reader_agrees_with_feasts_own_read(store: FeatureStore) -> None:
    """A back end with its own read path (Redis: one HMGET) answers as Feast does."""
    from features.online_store import FeastOnlineStore

    if not store.online.is_feast_store:
        pytest.skip("not kept in a Feast online store")
    generic = FeastOnlineStore(store.repo)
    for symbol in ("AAPL", "MSFT"):
        got, expected = store.online.online_features(symbol), generic.online_features(symbol)
        assert list(got) == list(expected)
        assert all(
            (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got.values(),
                                                                     expected.values(), strict=True)
        )
        # ...and says when the row became known, as Feast does (the staleness check reads it)
        row_as_of, expected_as_of = store.online.online_row(symbol)[1], generic.online_row(
            symbol)[1]
        assert row_as_of is not None
        assert row_as_of == expected_as_of
