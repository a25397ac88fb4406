"""One conformance suite for experiment tracking and the model registry (`models.tracker`,
`models.registry`: MLflow behind them), run over every back end: MLflow's SQLite store
(the default) and PostgreSQL (a real server started by the session). Registry lifecycle:
first version becomes champion, challenger → champion with the old champion kept as
previous, rollback, and reasons; the reads the flows use (aliases by alias, a version's
training window, the run's tags, metrics and logged model) and the registry inventory.

Each test gets a fresh store, a copy of one that MLflow migrated once per back end (the
SQLite file copied; on PostgreSQL `CREATE DATABASE … TEMPLATE`): the schema's migrations
cost seconds each time."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core.errors import ConfigError, NotFoundError
from core.servers import LocalPostgres
from models.registry import ModelRegistry
from models.tracker import MlflowTracker

pytestmark = pytest.mark.integration

_copies = itertools.count()


def _register_version(
    tracker: MlflowTracker, registry: ModelRegistry, name: str, tags: dict[str, str] | None = None
) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    with tracker.run(name, "test", {"purpose": "registry test", **(tags or {})}) as run:
        run.log_metrics({"oot_roc_auc": 0.61, "oot_log_loss": float("nan"), "cv_roc_auc": 0.6})
        logged = run.log_model(
            "sklearn", model, serialization_format="skops", pip_requirements=["scikit-learn"]
        )
    return registry.register(name, logged.model_uri, run_id=logged.run_id, model_card="card")


@pytest.fixture(scope="module")
def migrated_postgres(
    postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A PostgreSQL database with MLflow's schema, to copy per test; its name."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = "mlflow_migrated"
    store = SqlAlchemyStore(postgres.create_database(name),
                            tmp_path_factory.mktemp("mlflow-template").as_uri())
    store.engine.dispose()  # a template database must have no open connections
    return name


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with MLflow's schema, to copy per test."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    store = SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", folder.as_uri())
    store.engine.dispose()
    return folder / "mlflow.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[MlflowTracker, ModelRegistry]:
    if request.param == "sqlite":
        import shutil

        database = tmp_path / "mlruns" / "mlflow.db"
        database.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), database)
        uri = f"sqlite:///{database}"
    else:
        import psycopg
        from psycopg import sql

        server: LocalPostgres = request.getfixturevalue("postgres")
        template: str = request.getfixturevalue("migrated_postgres")
        name = f"mlflow_{next(_copies)}"
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres",
                             autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        uri = server.url(name)
    return MlflowTracker(uri, tmp_path / "mlruns" / "artifacts"), ModelRegistry(uri)


def test_promote_and_rollback_round_trip(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    first = _register_version(tracker, registry, "signal_quality")
    assert registry.aliases("signal_quality") == {"champion": first}

    second = _register_version(tracker, registry, "signal_quality")
    assert registry.aliases("signal_quality") == {"champion": first}  # not auto-promoted
    registry.set_challenger("signal_quality", second, "better out-of-time AUC")
    assert registry.aliases("signal_quality") == {"champion": first, "challenger": second}

    after_promote = registry.promote("signal_quality", "won the A/B test")
    assert after_promote == {"champion": second, "previous": first}

    after_rollback = registry.rollback("signal_quality", "live win rate degraded")
    assert after_rollback == {"champion": first}

    versions = {info.version: info for info in registry.versions("signal_quality")}
    assert versions[second].tags["promoted_reason"] == "won the A/B test"
    assert versions[second].tags["rolled_back_reason"] == "live win rate degraded"
    assert versions[first].tags["restored_reason"] == "live win rate degraded"
    assert versions[first].description == "card"

    with pytest.raises(NotFoundError, match="no previous"):
        registry.rollback("signal_quality", "again")


def test_challenger_rules(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    first = _register_version(tracker, registry, "risk_predictor")
    with pytest.raises(ConfigError, match="already the champion"):
        registry.set_challenger("risk_predictor", first, "no")
    with pytest.raises(NotFoundError, match="no challenger"):
        registry.promote("risk_predictor", "nothing to promote")
    second = _register_version(tracker, registry, "risk_predictor")
    registry.set_challenger("risk_predictor", second, "trial")
    assert registry.retire_challenger("risk_predictor", "lost") == {"champion": first}
    with pytest.raises(NotFoundError, match="no version 99"):
        registry.set_challenger("risk_predictor", "99", "missing")
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        registry.aliases("nope")


def test_aliases_by_alias_and_make_champion(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    first = _register_version(tracker, registry, "signal_quality")
    assert registry.aliases_by_alias() == {
        "champion": {"signal_quality": first}, "challenger": {}, "previous": {}
    }
    assert registry.make_champion("signal_quality", first, "already") == {"champion": first}
    second = _register_version(tracker, registry, "signal_quality")
    moved = registry.make_champion("signal_quality", second, "fresh")
    assert moved == {"champion": second, "previous": first}
    newest = registry.versions("signal_quality")[0]
    assert newest.tags["promoted_reason"] == "fresh"  # through the promote path


def test_training_window_reads_the_champion_run(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    tags = {"data_window": "2001-01-02..2007-12-31", "out_of_time_start": "2006-08-01",
            "feature_list": "rsi_14,adx_14"}
    version = _register_version(tracker, registry, "signal_quality", tags)
    window = registry.training_window("signal_quality")
    assert (window.version, window.start, window.end) == (version, "2001-01-02", "2006-08-01")
    assert window.features == ["rsi_14", "adx_14"]
    _register_version(tracker, registry, "exit_optimizer")
    with pytest.raises(NotFoundError, match="no data_window tag"):
        registry.training_window("exit_optimizer")


def test_run_reader_and_inventory(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    from models.inventory import model_summaries, out_of_time_metrics, version_rows
    from models.tracker import RunReader

    tracker, registry = store
    version = _register_version(tracker, registry, "signal_quality", {"data_window": "a..b"})
    runs = RunReader(registry.tracking_uri)
    run_id = registry.run_id("signal_quality", version)
    assert runs.tags(run_id)["purpose"] == "registry test"
    assert runs.logged_model_uri(run_id).startswith("models:/m-")
    assert runs.logged_model_location(run_id).startswith("file://")
    assert out_of_time_metrics(runs, run_id) == {"roc_auc": 0.61}  # cv_ and NaN left out
    (row,) = version_rows(registry.tracking_uri)
    assert (row["name"], row["version"], row["aliases"]) == ("signal_quality", version,
                                                             ["champion"])
    assert row["metrics"] == {"roc_auc": 0.61}
    summary = model_summaries(
        registry.tracking_uri, {"signal_quality": {"version": version, "metrics": {}}}
    )["signal_quality"]
    assert summary["champion_version"] == version
    assert summary["data_window"] == "a..b"
    assert [v["version"] for v in summary["versions"]] == [version]
