"""The learning loop's flows under Prefect's test harness, on the embedded sample data
(real daily bars of AAPL, MSFT, IBM and GOOG; SPX/COMP as market context):

train → retrain with a candidate that is not better (not registered) → retrain with a
better one (challenger) → live A/B through the engine (both arms, decision log) →
evaluate_ab retires the challenger (no significant difference on this small sample; the
test then promotes it through the registry) → the promoted champion trades → a forced
degradation of its live figures → evaluate_ab rolls back to `previous`.

Each test builds the stores it needs from fixtures and works on its own copy of them, so
the tests pass in any order and alone. Expensive starting points are made once per module
and never changed afterwards: the ingested bars, the four trained champions, and the
champions with the retrained challenger. A test gets a fresh project directory with a
copy of the bar store and of the MLflow database (artifacts are read in place; new runs
add files under new run ids), and its own journal, decision log and loop state."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "IBM", "GOOG"]
CHAMPION_WINDOW = ("2001-01-01", "2007-12-31")
# The better candidate trains on one more year of the same symbols (2008: the crisis
# year changes the regime and exit figures the most).
CANDIDATE_AS_OF = "2008-12-31T23:59:59+00:00"
AB_WINDOW = ("2009-01-01", "2013-12-31")


@dataclass
class Project:
    """One project directory: its bar store, MLflow store, journal and loop state, and the
    settings overrides that point the flows at them."""

    root: Path
    result: dict[str, Any] = field(default_factory=dict)  # what built it, if anything

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"

    @property
    def overrides(self) -> dict[str, Any]:
        return {
            "symbols": SYMBOLS,
            "paths": {
                "data_dir": str(self.root / "data"),
                "mlflow_tracking_uri": self.tracking_uri,
                "mlflow_artifact_root": str(self.root / "mlruns" / "artifacts"),
                "journal_url": f"sqlite:///{self.root / 'data' / 'journal.db'}",
            },
            "models": {"challenger_share": 0.5, "win_probability_gate": 0.0},
        }

    def registry(self) -> Any:
        from models.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri)

    def versions(self) -> dict[str, str]:
        """Model → version of the models trained by the `train` flow that built it."""
        return {name: info["version"] for name, info in self.result["models"].items()}

    def copy_to(self, root: Path) -> Project:
        """A new project with this one's bars and MLflow database (a consistent copy)."""
        shutil.copytree(self.root / "data" / "bars", root / "data" / "bars")
        database = self.root / "mlruns" / "mlflow.db"
        if database.exists():
            (root / "mlruns").mkdir(parents=True)
            with sqlite3.connect(database) as source, sqlite3.connect(
                root / "mlruns" / "mlflow.db"
            ) as target:
                source.backup(target)
        return Project(root, dict(self.result))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch working directory without Tradewind's environment, under a Prefect test
    harness (the infrastructure every test shares; no test's data lives in it)."""
    import warnings

    from prefect.testing.utilities import prefect_test_harness

    root = tmp_path_factory.mktemp("loop")
    saved_cwd = Path.cwd()
    saved_env = {k: v for k, v in os.environ.items() if k.startswith(("TRADEWIND_", "ALPACA_"))}
    for key in saved_env:
        del os.environ[key]
    os.chdir(root)
    warnings.simplefilter("ignore")
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield root
    finally:
        os.chdir(saved_cwd)
        os.environ.update(saved_env)


@pytest.fixture(scope="module")
def ingested(workspace: Path) -> Project:
    """The sample bars in a bar store (never written to again)."""
    from pipelines.flows.ingest import ingest_flow

    project = Project(workspace / "ingested")
    ingest_flow(source="sample", symbols=SYMBOLS, features=False, overrides=project.overrides)
    return project


@pytest.fixture(scope="module")
def champions(ingested: Project, workspace: Path) -> Project:
    """The four models trained on the champion window; every first version is champion."""
    from pipelines.flows.train import train_flow

    project = ingested.copy_to(workspace / "champions")
    project.result = train_flow(
        start=CHAMPION_WINDOW[0],
        end=CHAMPION_WINDOW[1],
        symbols=SYMBOLS,
        overrides=project.overrides,
    )
    return project


@pytest.fixture(scope="module")
def with_challenger(champions: Project, workspace: Path) -> Project:
    """The champions plus a retrain on one more year: the candidates that beat their
    champion by the margin are challengers."""
    from pipelines.flows.retrain import retrain_flow

    project = champions.copy_to(workspace / "with_challenger")
    project.result = retrain_flow(
        as_of=CANDIDATE_AS_OF,
        trigger="schedule",
        train_start=CHAMPION_WINDOW[0],
        symbols=SYMBOLS,
        models=["signal_quality", "exit_optimizer", "risk_predictor"],
        overrides=project.overrides,
    )
    return project


def test_train_registers_four_champions(champions: Project, tmp_path: Path) -> None:
    registry = champions.copy_to(tmp_path).registry()
    assert (
        set(champions.result["models"])
        == set(registry.names())
        == {"signal_quality", "exit_optimizer", "regime_classifier", "risk_predictor"}
    )
    for name, info in champions.result["models"].items():
        assert registry.aliases(name) == {"champion": info["version"]}
        assert info["metrics"]["test_rows"] > 0


def test_retrain_same_data_candidate_is_not_registered(
    champions: Project, tmp_path: Path
) -> None:
    """A candidate trained on the champion's own data (same seed: the same model) is not
    better by the 5% margin on any model (the signal model judged by its policy's profit
    factor out of time), so nothing is registered, and MLflow says why."""
    from mlflow import MlflowClient

    from models.retraining import RETRAIN_EXPERIMENT
    from pipelines.flows.retrain import retrain_flow

    project = champions.copy_to(tmp_path)
    registry = project.registry()
    before = {name: len(registry.versions(name)) for name in registry.names()}
    result = retrain_flow(
        as_of=CHAMPION_WINDOW[1] + "T23:59:59+00:00",
        trigger="schedule",
        train_start=CHAMPION_WINDOW[0],
        symbols=SYMBOLS,
        models=["signal_quality", "exit_optimizer"],
        overrides=project.overrides,
    )
    assert result["action"] == "not_registered"
    for comparison in result["comparisons"].values():
        assert not comparison["passed"]
        assert comparison["candidate"] == pytest.approx(comparison["champion"], rel=1e-9)
    assert {name: len(registry.versions(name)) for name in registry.names()} == before
    client = MlflowClient(tracking_uri=project.tracking_uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.tags["signal_quality.verdict"] == "not_registered"
    assert "not 5% higher" in run.data.tags["signal_quality.reason"]  # policy profit factor
    assert "not 5% lower" in run.data.tags["exit_optimizer.reason"]
    # a complete sentence with the bar it missed, not MLflow's message cut mid-way
    assert run.data.tags["exit_optimizer.reason"].endswith(")")
    assert "(needs at most " in run.data.tags["exit_optimizer.reason"]
    assert "Metric" not in run.data.tags["signal_quality.reason"]
    assert client.get_experiment(run.info.experiment_id).name == RETRAIN_EXPERIMENT


def test_retrain_trades_trigger_waits_for_enough_closed_trades(
    ingested: Project, tmp_path: Path
) -> None:
    from pipelines.flows.retrain import retrain_flow

    project = ingested.copy_to(tmp_path)
    result = retrain_flow(
        as_of=CANDIDATE_AS_OF,
        trigger="trades",
        every_trades=100,
        overrides=project.overrides,
    )
    assert result["action"] == "skipped"
    assert result["closed_trades_since_last"] < 100


def test_retrain_better_candidate_becomes_challenger(
    with_challenger: Project, tmp_path: Path
) -> None:
    result = with_challenger.result
    assert result["action"] == "challenger", result["comparisons"]
    registry = with_challenger.copy_to(tmp_path).registry()
    for name, version in result["challengers"].items():
        comparison = result["comparisons"][name]
        assert comparison["passed"]
        if comparison["greater_is_better"]:
            assert comparison["candidate"] >= comparison["champion"] * 1.05
        else:
            assert comparison["candidate"] <= comparison["champion"] * 0.95
        assert registry.aliases(name)["challenger"] == version
    for name, comparison in result["comparisons"].items():
        if not comparison["passed"]:
            assert "challenger" not in registry.aliases(name)


def test_ab_retires_on_thin_evidence_then_degradation_rolls_back(
    with_challenger: Project, champions: Project, tmp_path: Path
) -> None:
    """Both arms trade through the engine (the in-process client with the service's
    routing and decision log), then OPERATIONS' evaluate_ab decides."""
    from core.settings import load_settings
    from models.loading import load_model_set
    from pipelines.flows.evaluate_ab import evaluate_ab_flow
    from serving.decision_log import read_decisions
    from serving.inprocess import InProcessModelClient
    from serving.router import RoutingConfig
    from trading.backtest import ReplaySession, load_window_bars

    project = with_challenger.copy_to(tmp_path)
    overrides = project.overrides
    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    decision_log = settings.paths.data_dir / "decisions.db"
    client = InProcessModelClient(
        load_model_set(tracking_uri, "champion"),
        load_model_set(tracking_uri, "challenger", fallback_alias="champion"),
        routing=RoutingConfig(challenger_share=0.5),
        decision_log=decision_log,
    )
    bars, index_bars = load_window_bars(settings, SYMBOLS, *AB_WINDOW)
    session = ReplaySession(
        settings,
        bars,
        index_bars,
        pd.Timestamp(AB_WINDOW[0], tz="UTC"),
        model_client=client,
        gate_enabled=True,
        journal_url=settings.paths.journal_url,
    )
    session.run_until(None)
    session.finish()
    client.close()  # drains the decision log
    logged = read_decisions(decision_log)
    assert set(logged["variant"]) == {"champion", "challenger"}
    assert len(session.records) >= 4

    registry = project.registry()
    challengers = project.result["challengers"]
    verdict = evaluate_ab_flow(
        as_of=AB_WINDOW[1] + "T23:59:59+00:00",
        alpha=0.99,
        min_trades_per_arm=2,
        max_trades_per_arm=2,
        decision_log=str(decision_log),
        overrides=overrides,
    )
    # The replay is deterministic (seeded, single-threaded training; hash-routed arms;
    # content-derived decision ids), so the verdict is too. The retrain gate judged the
    # signal model by its policy's profit factor out of time: both the signal model and
    # the exit model became challengers; with the policy trading, the challenger arm's
    # record is better but far from significant, and at `alpha=0.99` evaluate_ab promotes.
    assert set(challengers) == {"signal_quality", "exit_optimizer"}
    assert verdict["action"] == "promote", verdict["reason"]
    assert verdict["applied"]
    trades = {arm: figures["trades"] for arm, figures in verdict["arms"].items()}
    assert trades["challenger"] == verdict["counts"]["challenger"] >= 2
    assert trades["champion"] == verdict["counts"]["champion_same_period"] >= 2
    assert len(verdict["tests"]) == 2
    # Promoted: each challenger is the champion now, the old champion its `previous`.
    for name, version in challengers.items():
        assert "challenger" not in registry.aliases(name)
        assert registry.aliases(name)["champion"] == version
        assert registry.aliases(name)["previous"] == champions.versions()[name]

    # The promoted champion trades on (its own journal and decision log), then a forced
    # degradation: a floor its live record cannot meet (every trade must win, profit
    # factor above a million) makes evaluate_ab roll back to `previous`.
    after = {
        **overrides,
        "paths": {
            **overrides["paths"],
            "journal_url": f"sqlite:///{settings.paths.data_dir / 'j2.db'}",
        },
    }
    settings_after = load_settings(**after)
    log_after = settings.paths.data_dir / "decisions-after.db"
    champion_client = InProcessModelClient(
        load_model_set(tracking_uri, "champion"), decision_log=log_after
    )
    session = ReplaySession(
        settings_after,
        bars,
        index_bars,
        pd.Timestamp(AB_WINDOW[0], tz="UTC"),
        model_client=champion_client,
        gate_enabled=True,
        journal_url=settings_after.paths.journal_url,
    )
    session.run_until(None)
    session.finish()
    champion_client.close()
    assert session.records, "the promoted champion closed no trade"
    rolled = evaluate_ab_flow(
        as_of=AB_WINDOW[1] + "T23:59:59+00:00",
        floor_min_trades=1,
        floor_window_trades=50,
        floor_min_win_rate=1.0,
        floor_min_profit_factor=1e6,
        decision_log=str(log_after),
        overrides=after,
    )
    assert rolled["action"] == "rollback", rolled["reason"]
    for name in challengers:
        assert registry.aliases(name)["champion"] == champions.versions()[name]
