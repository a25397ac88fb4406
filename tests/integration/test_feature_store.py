"""The Feast feature store for real: apply once (module fixture; Feast's imports cost
seconds), offline writes, materialize, online read, point-in-time training sets (DuckDB
and Feast agree), pushes and the idempotent trade collection."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.settings import FeatureStoreSettings, PathSettings, StoreBackend
from core.types import BAR_COLUMNS
from features.catalogue import BAR_FEATURES, MODEL_FEATURES
from features.compute import compute_feature_set
from features.store import FeatureStore

pytestmark = pytest.mark.integration
SYMBOLS = ["AAPL", "XOM", "JPM"]
FEAST_OFFLINE = FeatureStoreSettings(offline_store=StoreBackend(type="feast"))


@pytest.fixture(scope="module")
def bars(sp500_daily: pd.DataFrame) -> pd.DataFrame:
    return sp500_daily.loc[sp500_daily["symbol"].isin(SYMBOLS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def features(bars: pd.DataFrame, spy_daily: pd.DataFrame) -> pd.DataFrame:
    return compute_feature_set(bars, spy_daily.loc[:, list(BAR_COLUMNS)]).frame


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, features: pd.DataFrame) -> FeatureStore:
    root = tmp_path_factory.mktemp("feature-store")
    store = FeatureStore(PathSettings(data_dir=root / "data"))
    store.apply()
    assert store.write_features(features) == len(features)
    store.materialize()
    return store


def test_layout_lives_under_the_data_dir(store: FeatureStore) -> None:
    root = store.root
    assert (root / "registry.db").exists()
    assert (root / "online.db").exists()
    config = (root / "feature_store.yaml").read_text()
    assert "type: sqlite" in config
    assert str(root) in config
    assert not (Path(__file__).parents[2] / "features" / "repo" / "data").exists()


def test_writes_are_idempotent(store: FeatureStore, features: pd.DataFrame) -> None:
    store.write_features(features.tail(500))
    stored = store.read_features()
    assert len(stored) == len(features)
    assert not stored.duplicated(["symbol", "timestamp"]).any()


def test_online_read_returns_the_latest_row(store: FeatureStore, features: pd.DataFrame) -> None:
    latest = features.loc[features["symbol"] == "XOM"].iloc[-1]
    online = store.online_features("XOM")
    assert list(online) == list(BAR_FEATURES)
    for name in BAR_FEATURES:
        expected = float(latest[name])
        assert (math.isnan(expected) and math.isnan(online[name])) or online[name] == (
            pytest.approx(expected, rel=1e-12)
        ), name


def test_point_in_time_between_feature_timestamps(
    store: FeatureStore, features: pd.DataFrame
) -> None:
    stored = store.read_features(["AAPL"])
    known = stored["event_timestamp"]  # the session close: when a daily bar is known
    first, second = known.iloc[300], known.iloc[301]
    events = pd.DataFrame(
        {
            "symbol": ["AAPL", "AAPL", "AAPL", "AAPL", "AAPL", "NOPE"],
            "timestamp": [
                first + (second - first) / 2,  # between two feature times → the first
                second - pd.Timedelta(microseconds=1),  # just before → still the first
                second,  # at the second's availability → the second
                stored["timestamp"].iloc[301],  # the bar's own 00:00 stamp → not yet known
                known.iloc[0] - pd.Timedelta(days=1),  # before any feature → NaN
                second,  # unknown symbol → NaN
            ],
            "label": [1, 0, 1, 0, 1, 0],
        }
    )
    got = store.training_set(events)
    assert list(got.columns[:3]) == ["symbol", "timestamp", "label"]
    assert got["label"].tolist() == [1, 0, 1, 0, 1, 0]
    rsi = got["rsi_14"].to_numpy()
    assert rsi[0] == rsi[1] == stored["rsi_14"].iloc[300]
    assert rsi[2] == stored["rsi_14"].iloc[301]
    assert rsi[3] == stored["rsi_14"].iloc[300]
    assert np.isnan(rsi[4])
    assert np.isnan(rsi[5])
    by_bar = store.training_set(events.iloc[[3]], as_of="bar")
    assert by_bar["rsi_14"].iloc[0] == stored["rsi_14"].iloc[301]


def test_duckdb_join_agrees_with_feast_file_store(store: FeatureStore) -> None:
    stored = store.read_features()
    rng = np.random.default_rng(7)
    picks = stored.iloc[rng.choice(np.arange(400, len(stored)), 40, replace=False)]
    events = pd.DataFrame(
        {
            "symbol": picks["symbol"].to_numpy(),
            "timestamp": picks["event_timestamp"].to_numpy()
            + pd.to_timedelta(rng.integers(0, 86_400, 40), unit="s"),
        }
    )
    ours = store.training_set(events)
    feast = FeatureStore(store.paths, FEAST_OFFLINE).training_set(events)
    pd.testing.assert_frame_equal(
        ours.loc[:, BAR_FEATURES], feast.loc[:, BAR_FEATURES], check_dtype=False
    )


def test_push_updates_the_online_store(store: FeatureStore, features: pd.DataFrame) -> None:
    fresh = features.loc[features["symbol"] == "JPM"].tail(1).copy()
    fresh["timestamp"] = fresh["timestamp"] + pd.Timedelta(days=3650)
    fresh["rsi_14"] = 42.5
    store.push(fresh, offline=False)
    assert store.online_features("JPM")["rsi_14"] == 42.5


def test_trade_collection_is_idempotent_with_entry_features_and_labels(
    store: FeatureStore, bars: pd.DataFrame
) -> None:
    aapl = bars.loc[bars["symbol"] == "AAPL"].reset_index(drop=True)
    entry, exit_ = aapl.iloc[500], aapl.iloc[510]
    trades = pd.DataFrame(
        {
            "trade_id": ["t-1", "t-2"],
            "symbol": ["AAPL", "AAPL"],
            "side": ["buy", "sell"],
            "qty": [10.0, 5.0],
            "entry_time": [entry["timestamp"] + pd.Timedelta(hours=14, minutes=30)] * 2,
            "entry_price": [entry["open"], entry["open"]],
            "exit_time": [exit_["timestamp"] + pd.Timedelta(hours=20)] * 2,
            "exit_price": [exit_["close"], exit_["close"]],
            "strategy": ["momentum", "mean_reversion"],
            "exit_reason": ["time", "time"],
        }
    )
    assert store.write_trades(trades, bars) == 2
    assert store.write_trades(trades, bars) == 0
    stored = store.read_trades()
    assert sorted(stored["trade_id"]) == ["t-1", "t-2"]
    long = stored.set_index("trade_id").loc["t-1"]
    move = exit_["close"] / entry["open"] - 1
    assert long["return_pct"] == pytest.approx(move)
    assert long["win"] == float(move > 0)
    window = aapl.iloc[500:511]
    assert long["mfe_price"] == pytest.approx(max(window["high"].max() - entry["open"], 0))
    assert long["mae_price"] == pytest.approx(max(entry["open"] - window["low"].min(), 0))
    assert long["mfe_atr"] == pytest.approx(long["mfe_price"] / long["atr_14"])
    assert long["max_drawdown_pct"] >= 0
    # Entry features are the ones known before the entry (the previous session's close).
    assert long["rsi_14"] == store.read_features(["AAPL"])["rsi_14"].iloc[499]
    assert set(MODEL_FEATURES) <= set(stored.columns)


def test_trades_keep_the_callers_model_context(store: FeatureStore, bars: pd.DataFrame) -> None:
    aapl = bars.loc[bars["symbol"] == "AAPL"].reset_index(drop=True)
    trade = pd.DataFrame(
        {
            "trade_id": ["ctx-1"],
            "symbol": ["AAPL"],
            "side": ["buy"],
            "qty": [1.0],
            "entry_time": [aapl["timestamp"].iloc[600] + pd.Timedelta(hours=15)],
            "entry_price": [aapl["open"].iloc[600]],
            "exit_time": [aapl["timestamp"].iloc[605] + pd.Timedelta(hours=20)],
            "exit_price": [aapl["close"].iloc[605]],
            "max_favorable_excursion": [1.5],
            "max_adverse_excursion": [0.5],
            "variant": ["challenger"],
            "win_probability": [0.71],
            "decision_id": [None],
        }
    )
    store.write_trades(trade)
    store.write_trades(trade)
    stored = store.read_trades().set_index("trade_id")
    assert stored.index.is_unique
    row = stored.loc["ctx-1"]
    assert row["variant"] == "challenger"
    assert row["win_probability"] == pytest.approx(0.71)
    assert row["mfe_price"] == pytest.approx(1.5)
    assert np.isnan(row["max_drawdown_pct"])  # no bars given: not guessed


def test_materialize_up_to_a_time_and_trade_outcomes_online(
    store: FeatureStore, bars: pd.DataFrame
) -> None:
    stored = store.read_features(["XOM"])
    xom = bars.loc[bars["symbol"] == "XOM"].reset_index(drop=True)
    trade = pd.DataFrame(
        {
            "trade_id": ["online-1"],
            "symbol": ["XOM"],
            "side": ["buy"],
            "qty": [3.0],
            "entry_time": [xom["timestamp"].iloc[-5] + pd.Timedelta(hours=15)],
            "entry_price": [xom["open"].iloc[-5]],
            "exit_time": [xom["timestamp"].iloc[-2] + pd.Timedelta(hours=20)],
            "exit_price": [xom["close"].iloc[-2]],
        }
    )
    store.write_trades(trade, bars)
    cutoff = stored["event_timestamp"].iloc[700]
    try:
        store.materialize(cutoff.to_pydatetime())
        assert store.online_features("XOM")["rsi_14"] == stored["rsi_14"].iloc[700]
    finally:
        written = store.materialize()
    assert written["bar_features"] == len(SYMBOLS)
    assert store.online_features("XOM")["rsi_14"] == stored["rsi_14"].iloc[-1]
    answer = (
        store.feast()
        .get_online_features(
            features=["trade_outcomes:return_pct", "trade_outcomes:trade_id"],
            entity_rows=[{"symbol": "XOM"}],
        )
        .to_dict()
    )
    assert answer["trade_id"][0] == "online-1"
    expected = xom["close"].iloc[-2] / xom["open"].iloc[-5] - 1
    assert answer["return_pct"][0] == pytest.approx(expected)


def test_online_prints_strict_json_with_null_for_missing(store: FeatureStore) -> None:
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(
        app, ["features", "online", "AAPL"],
        env={"TRADEWIND_PATHS__DATA_DIR": str(store.paths.data_dir)},
    )
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    values = json.loads(result.output, parse_constant=refuse)
    assert values["rsi_14"] is not None
    assert any(value is None for value in values.values())  # no news: missing by design
