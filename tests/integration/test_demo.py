"""The shortened end-to-end demo (`tradewind demo --quick`) in a fresh directory: every
stage must leave real artefacts (bars, Feast, registered versions with aliases, journal
rows, decision-log rows of both A/B arms, retrain runs in MLflow, the walk-forward
evaluation, Prefect flow runs in the persistent database), the report must carry its
contract's keys, the models never train on the symbols the engine trades, and the terminal
shows the narrative only (library warnings go to the demo's log file)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_quick_demo_end_to_end(workdir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from core.universe import is_held_out
    from models.registry import MODEL_NAMES, ModelRegistry
    from pipelines.demo.plan import DemoPlan
    from pipelines.demo.run import run_demo
    from serving.decision_log import read_decisions
    from trading.journal import Journal

    console = Console(record=True, width=120)
    report = run_demo(DemoPlan.quick(), console=console)

    # 6. the report, on disk, with its keys
    payload = json.loads((workdir / "reports" / "demo" / "report.json").read_text())
    html = (workdir / "reports" / "demo" / "report.html").read_text()
    for key in ("baseline", "ml", "models", "ab", "features"):
        assert key in payload
    for arm in ("baseline", "ml"):
        for key in ("trades", "win_rate", "profit_factor", "sharpe", "max_drawdown"):
            assert key in payload[arm]
        assert "total_return" in payload[arm]
        assert payload[arm]["equity_curve"], arm
    assert payload["features"]["count"] >= 55
    assert set(payload["models"]) == set(MODEL_NAMES)
    for info in payload["models"].values():
        assert info["champion_version"]
        assert info["metrics"]
    for key in ("decisions", "promotions", "rollbacks", "timeline"):
        assert key in payload["ab"]
    assert html.count("data:image/png;base64,") >= 6  # the loop's plots and the evaluation's
    assert payload["baseline"]["trades"] > 0

    # The walk-forward evaluation and the data it ran on (issue 11's report keys).
    evaluation = payload["evaluation"]
    for key in ("folds", "pf_ratio", "pf_ratio_ci", "dd_ratio", "dd_ratio_ci", "kept_ratio",
                "worst_fold", "refusals"):
        assert key in evaluation
    (fold,) = evaluation["folds"]
    for key in ("start", "end", "auc", "brier", "ungated", "policy"):
        assert key in fold
    for arm in ("ungated", "policy"):
        assert set(fold[arm]) == {"trades", "win_rate", "profit_factor", "sharpe",
                                  "max_drawdown", "total_return"}
    assert set(payload["data"]) == {"symbols", "held_out_symbols", "bars", "start", "end"}
    plan = DemoPlan.quick()
    assert payload["data"]["held_out_symbols"] == len(plan.trade_symbols)
    assert payload["data"]["symbols"] == len(plan.symbols) + len(plan.trade_symbols)
    assert all(is_held_out(s) for s in plan.trade_symbols)
    assert not any(is_held_out(s) for s in plan.symbols)
    assert "Walk-forward evaluation" in html

    # 3. registered versions with aliases; 5. the retrain flow ran and judged every model
    # (on the quick demo's 8 symbols a candidate may well not beat its champion: then each
    # model says why; the full lifecycle is tested in test_flows_loop / test_flows_ops)
    registry = ModelRegistry(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    for name in MODEL_NAMES:
        assert "champion" in registry.aliases(name)
    assert report["retraining"], "the retrain flow never triggered"
    for retrain in report["retraining"]:
        assert set(retrain["comparisons"]) == set(MODEL_NAMES)
        assert all(c["reason"] for c in retrain["comparisons"].values())
    challengers = {n: v for r in report["retraining"] for n, v in r["challengers"].items()}
    for name, version in challengers.items():
        assert int(version) > 1
        tags = next(v for v in registry.versions(name) if v.version == version).tags
        assert tags.get("challenger_reason") or tags.get("origin") == "retrain"

    # 5. the engine's journal and the service's decision log, with both arms
    journal = Journal(f"sqlite:///{workdir / 'data' / 'demo' / 'journal.db'}")
    assert len(journal.decisions()) > 0
    assert len(journal.equity()) > 0
    logged = read_decisions(workdir / "data" / "demo" / "decisions.db")
    assert "champion" in set(logged["variant"])
    if challengers:  # a challenger serves its share and the A/B test judges it
        assert "challenger" in set(logged["variant"])
        assert payload["ab"]["evaluations"], "evaluate_ab never ran"

    # Every stage is a Prefect flow run in the persistent database under the data dir.
    with sqlite3.connect(workdir / "data" / "prefect" / "prefect.db") as db:
        names = {row[0] for row in db.execute("select name from flow")}
    assert {"demo", "ingest", "collect_trades", "train", "retrain", "evaluate_ab",
            "evaluate"} <= names

    text = console.export_text()
    assert "Where to look" in text
    assert "tradewind ui" in text
    assert "pooled: profit factor ratio" in text
    printed = capfd.readouterr()
    for noise in ("Warning", "INFO", "mlflow."):  # the libraries talk to the log file
        assert noise not in text, noise
        assert noise not in printed.err, printed.err[-2000:]
    assert (workdir / "data" / "demo" / "demo.log").exists()
