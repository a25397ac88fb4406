"""`tradewind evaluate` end to end on a slice of the embedded S&P 500 set (a few symbols,
one fold): real training through the template, real MLflow, the same engine replayed
twice; the JSON carries the report keys, the page sits next to it, the MLflow run has the
figures and both files, and the registry is untouched. Plus training's held-out rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.universe import is_held_out

pytestmark = pytest.mark.integration

DEVELOPMENT = ["AAPL", "GOOGL", "JPM", "XOM", "PG", "KO"]
HELD_OUT = ["CVX", "DIS", "JNJ"]


def test_evaluate_writes_json_html_and_an_mlflow_run(workdir: Path) -> None:
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from monitoring.evaluation import ARM_METRICS, EVALUATION_KEYS, FOLD_KEYS
    from pipelines.cli import app

    assert not any(is_held_out(s) for s in DEVELOPMENT)
    assert all(is_held_out(s) for s in HELD_OUT)
    arguments = ["evaluate", "--folds", "2016", "--json", "out/evaluation.json"]
    for symbol in DEVELOPMENT + HELD_OUT:
        arguments += ["--symbol", symbol]
    outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 0, outcome.output
    assert "pooled: profit factor ratio" in outcome.output

    payload = json.loads((workdir / "out" / "evaluation.json").read_text())
    evaluation = payload["evaluation"]
    assert set(EVALUATION_KEYS) <= set(evaluation)
    (fold,) = evaluation["folds"]
    assert set(FOLD_KEYS) <= set(fold)
    for arm in ("ungated", "policy"):
        assert set(fold[arm]) == set(ARM_METRICS)
    assert fold["start"].startswith("2016-01-04")
    assert fold["end"].startswith("2016-12-30")
    assert fold["train_end"] < fold["start"]
    assert fold["ungated"]["trades"] > 0
    assert fold["events"] > 0
    assert 0.0 <= fold["auc"] <= 1.0
    assert set(evaluation["refusals"]) >= {"ev", "gate", "ood", "regime", "sizing", "risk"}
    assert payload["data"]["symbols"] == len(DEVELOPMENT) + len(HELD_OUT)
    assert payload["data"]["held_out_symbols"] == len(HELD_OUT)
    page = (workdir / "out" / "evaluation.html").read_text()
    assert page.count("data:image/png;base64,") >= 3

    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("evaluation")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    summary = runs["evaluation-2016"]
    assert summary.info.run_id in outcome.output.replace("\n", "")
    assert "fold_2016_ungated_trades" in summary.data.metrics
    artifacts = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert {"evaluation.json", "evaluation.html"} <= artifacts
    # The fold's four models were logged next to it, and nothing was registered.
    fold_runs = [name for name in runs if name.startswith("fold-2016/")]
    assert len(fold_runs) == 4
    assert client.search_registered_models() == []

    # The policy arm's models carry the signal model's OOD detector and the fitted
    # policy, as the service's do.
    from models.loading import load_logged_set

    logged = {k: v for k, v in payload["run"]["fold_runs"]["2016"].items()
              if k != "training_events"}
    model_set = load_logged_set(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}", logged)
    extreme = pd.DataFrame({name: [1e9] for name in model_set.feature_names})
    assert model_set.out_of_distribution(extreme).all()
    assert model_set.policy is not None


def test_training_leaves_the_held_out_symbols_out_unless_asked(workdir: Path) -> None:
    from core.errors import ConfigError
    from core.settings import load_settings
    from pipelines.training import TrainRequest, load_bars

    settings = load_settings()
    stocks, index, left_out = load_bars(
        TrainRequest(source="sp500", symbols=("AAPL", "CVX"), end="2014-01-31"), settings)
    assert sorted(stocks["symbol"].unique()) == ["AAPL"]
    assert left_out == ["CVX"]
    assert len(index)
    everything, _, none = load_bars(
        TrainRequest(source="sp500", symbols=("AAPL", "CVX"), end="2014-01-31",
                     include_held_out=True), settings)
    assert sorted(everything["symbol"].unique()) == ["AAPL", "CVX"]
    assert none == []
    with pytest.raises(ConfigError, match="every requested symbol is held out"):
        load_bars(TrainRequest(source="sp500", symbols=("CVX",)), settings)
    universe, _, held_out = load_bars(TrainRequest(source="sp500"), settings)
    assert len(held_out) == 73
    assert not any(is_held_out(s) for s in universe["symbol"].unique())


def test_backtest_defaults_to_the_held_out_symbols_of_the_sp500_set(workdir: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    outcome = CliRunner().invoke(app, ["backtest", "--start", "2017-03-01", "--end",
                                       "2017-04-30", "--json", "out/backtest.json"])
    assert outcome.exit_code == 0, outcome.output
    assert "trading the 73 held-out symbols of sp500" in outcome.output
    metrics = json.loads((workdir / "out" / "backtest.json").read_text())
    assert metrics["symbols"] == 73
