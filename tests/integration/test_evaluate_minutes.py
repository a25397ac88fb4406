"""`tradewind evaluate --timeframe 1Min` end to end on a slice of the real SPY minute bars
(six sessions: five train, the sixth is the fold): the models trained as `train
--timeframe 1Min` trains them, real MLflow, the same engine replayed ungated and with the
policy over the fold's session; the report, the page, the output and the MLflow run say
the timeframe and that the fold is out of time on the same symbol, not a held-out one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import shared_file

# About a minute on this 2-core machine (four models trained per fold), beyond the
# suite's budget: `benchmarks/bench_policy.py --timeframe 1Min --source
# ../shared/data/intraday/minute_2021.parquet --symbols SPY` runs the same command on
# every session; `pytest -m slow` runs this case. The fold splitter, the report's wording
# and the command's refusals are unit-tested in the default run.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_minute_evaluation_writes_an_out_of_time_report(workdir: Path) -> None:
    from mlflow import MlflowClient

    from monitoring.evaluation import ARM_METRICS, EVALUATION_KEYS, FOLD_KEYS

    minutes = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    spy = minutes[(minutes["symbol"] == "SPY") & (minutes["timestamp"] < "2021-07-10")]
    spy.to_parquet(workdir / "spy.parquet")  # 2021-07-01, 02, 06, 07, 08 and 09

    # Its own process, as a user runs it: Prefect's console logging stays bound to the
    # first in-process command's output, which another test's CliRunner has closed.
    outcome = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "evaluate",
         "--timeframe", "1Min", "--source", "spy.parquet", "--symbols", "SPY",
         "--folds", "2021-07-09", "--fold-days", "1", "--json", "out/evaluation.json"],
        cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    text = " ".join(outcome.stdout.split())
    assert "OUT OF TIME ONLY, NOT held-out symbols" in text
    assert "pooled: profit factor ratio" in text

    payload = json.loads((workdir / "out" / "evaluation.json").read_text())
    evaluation = payload["evaluation"]
    assert set(EVALUATION_KEYS) <= set(evaluation)
    assert evaluation["timeframe"] == "1Min"
    assert "not held-out symbols" in evaluation["note"]
    assert payload["data"]["held_out_symbols"] == 0
    assert payload["data"]["sessions"] == 6
    assert payload["run"]["timeframe"] == "1Min"
    (fold,) = evaluation["folds"]
    assert set(FOLD_KEYS) <= set(fold)
    for arm in ("ungated", "policy"):
        assert set(fold[arm]) == set(ARM_METRICS)
    assert fold["label"] == "2021-07-09"
    session = spy.loc[spy["timestamp"] >= "2021-07-09", "timestamp"]
    assert pd.Timestamp(fold["start"]) == session.min()  # the session's first and last bar
    assert pd.Timestamp(fold["end"]) == session.max()
    assert fold["train_end"] < "2021-07-09"  # five bars of embargo into the session before
    assert fold["ungated"]["trades"] > 0
    assert fold["events"] > 0
    assert set(fold["regime"]) == {"macro_f1", "majority_macro_f1"}
    assert fold["ood_false_alarm_rate"] is not None
    page = (workdir / "out" / "evaluation.html").read_text()
    assert "out of time on the same symbols" in page
    assert page.count("data:image/png;base64,") >= 3

    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("evaluation")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    summary = runs["evaluation-2021-07-09"]
    assert summary.info.run_id in text
    assert summary.data.tags["timeframe"] == "1Min"
    assert summary.data.tags["out_of_time_only"] == "true"
    assert summary.data.params["timeframe"] == "1Min"
    assert "fold_20210709_policy_trades" in summary.data.metrics
    fold_runs = [r for name, r in runs.items() if name.startswith("fold-2021-07-09/")]
    assert len(fold_runs) == 4
    assert {r.data.tags["timeframe"] for r in fold_runs} == {"1Min"}
    assert client.search_registered_models() == []
