"""The flows beyond one machine, for real: a Prefect server (`tradewind ui`'s own start-up,
`pipelines.commands.flows`) on PostgreSQL records every run, and the same flow code runs
once on Prefect's default runner and once on a Dask cluster of two worker processes
(`distributed.LocalCluster`, chosen by `TRADEWIND_COMPUTE__DASK_ADDRESS`), with the work
cut the same way (two symbols per shard, two Optuna trials per batch). Both runs give the
same features, the same collected trades and the same optimization proposal; the
sharded features equal the unsharded computation.

Embedded sample bars (AAPL, MSFT, IBM, GOOG, 2008-2011) keep it small."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.servers import LocalPostgres
from core.settings import load_settings
from tests.integration.conftest import fresh_postgres_url

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "GOOG", "IBM", "MSFT"]
WORK = {"symbols_per_shard": 2, "trials_per_batch": 2}


@pytest.fixture(scope="module")
def prefect_database(postgres: LocalPostgres) -> str:
    return fresh_postgres_url(postgres, "prefect", driver="asyncpg")


@pytest.fixture(scope="module")
def prefect_server(prefect_database: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[str]:
    """`prefect server start` on PostgreSQL; the module's flows record there."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.commands.flows import _start_prefect_server, _stop

    settings = load_settings(paths={"data_dir": str(tmp_path_factory.mktemp("prefect")),
                                    "prefect_database_url": prefect_database})
    process, api_url = _start_prefect_server(settings, port=0)
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        yield str(cluster.scheduler_address)


def _overrides(root: Path) -> dict[str, Any]:
    return {"paths": {"data_dir": str(root / "data"), "reports_dir": str(root / "reports"),
                      "journal_url": f"sqlite:///{root / 'data' / 'journal.db'}",
                      "mlflow_tracking_uri": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"},
            "compute": WORK}


def _run_flows(root: Path) -> dict[str, Any]:
    from features.store import FeatureStore
    from pipelines.flows.collect_trades import collect_trades_flow
    from pipelines.flows.ingest import ingest_flow
    from pipelines.flows.optimize import optimize_flow

    overrides = _overrides(root)
    ingest_flow(source="sample", symbols=SYMBOLS, start="2008-01-01", end="2011-12-31",
                overrides=overrides)
    collected = collect_trades_flow(start="2010-01-01", end="2011-12-31", symbols=SYMBOLS,
                                    overrides=overrides)
    proposal = optimize_flow(strategy="momentum", trials=4, seed=7, symbols=SYMBOLS,
                             use_champion_window=False, overrides=overrides)
    settings = load_settings(**overrides)
    store = FeatureStore(settings.paths, settings.feature_store)
    return {"features": store.read_features(), "trades": store.read_trades(),
            "collected": collected, "proposal": proposal}


@pytest.fixture(scope="module")
def runs(prefect_server: str, dask_address: str, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, dict[str, Any]]:
    """The same flows on the default runner, then on the Dask cluster."""
    patch = pytest.MonkeyPatch()
    try:
        patch.delenv("TRADEWIND_COMPUTE__DASK_ADDRESS", raising=False)
        local = _run_flows(tmp_path_factory.mktemp("local"))
        patch.setenv("TRADEWIND_COMPUTE__DASK_ADDRESS", dask_address)
        distributed = _run_flows(tmp_path_factory.mktemp("dask"))
    finally:
        patch.undo()
    return {"local": local, "dask": distributed}


def test_features_are_the_same_on_both_runners_and_unsharded(
    runs: dict[str, dict[str, Any]],
) -> None:
    from features.compute import compute_features
    from trading.adapters.sample.data import SampleMarketData

    local, distributed = runs["local"]["features"], runs["dask"]["features"]
    assert set(local["symbol"]) == set(SYMBOLS)
    pd.testing.assert_frame_equal(local, distributed)
    bars = SampleMarketData().history(None, "2008-01-01", "2011-12-31")
    whole = compute_features(bars[bars["symbol"].isin(SYMBOLS)].reset_index(drop=True),
                             bars[bars["symbol"] == "SPX"].reset_index(drop=True))
    stored = local.loc[:, list(whole.columns)].reset_index(drop=True)
    stored["timestamp"] = pd.to_datetime(stored["timestamp"], utc=True)  # stored as UTC
    pd.testing.assert_frame_equal(stored, whole.reset_index(drop=True), check_exact=False,
                                  rtol=1e-12)


def test_trades_collected_in_shards_are_the_same_on_both_runners(
    runs: dict[str, dict[str, Any]],
) -> None:
    local, distributed = runs["local"], runs["dask"]
    assert local["collected"]["trades"] > 0
    assert len(local["collected"]["metrics"]["shards"]) == 2  # one account per shard
    assert local["collected"] == distributed["collected"]
    pd.testing.assert_frame_equal(local["trades"], distributed["trades"])


def test_optuna_batches_give_the_same_proposal_on_both_runners(
    runs: dict[str, dict[str, Any]],
) -> None:
    local, distributed = runs["local"]["proposal"], runs["dask"]["proposal"]
    for key in ("params", "in_sample", "out_of_time", "baseline"):
        assert local[key] == distributed[key], key


def test_the_prefect_server_on_postgresql_recorded_every_run(
    runs: dict[str, dict[str, Any]], prefect_database: str
) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(prefect_database.replace("+asyncpg", "+psycopg"))
    try:
        with engine.connect() as connection:
            flows = connection.execute(text(
                "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            )).fetchall()
            tasks = connection.execute(text(
                "SELECT count(*) FROM task_run WHERE name LIKE 'technical-features-%' "
                "AND state_type = 'COMPLETED'")).scalar()
    finally:
        engine.dispose()
    names = sorted(name for name, _ in flows)
    assert names == sorted(["ingest", "collect_trades", "optimize"] * 2)
    assert {str(state) for _, state in flows} == {"COMPLETED"}
    assert tasks == 4  # two shards per run, the Dask workers' runs included
