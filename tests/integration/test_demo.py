"""The shortened end-to-end demo (`tradewind demo --quick`) in a fresh directory: every
stage must leave real artefacts (bars, Feast, registered versions with aliases, journal
rows, decision-log rows of both A/B arms, retrain runs in MLflow, Prefect flow runs in the
persistent database) and the report must carry its contract's keys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_quick_demo_end_to_end(workdir: Path) -> None:
    from rich.console import Console

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
    assert html.count("data:image/png;base64,") >= 3
    assert payload["baseline"]["trades"] > 0

    # 3. registered versions with aliases; 5. the retrain flow ran and left a challenger
    registry = ModelRegistry(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    for name in MODEL_NAMES:
        assert "champion" in registry.aliases(name)
    assert report["retraining"], "the retrain flow never triggered"
    challengers = {n: v for r in report["retraining"] for n, v in r["challengers"].items()}
    assert challengers, f"no candidate beat the champion: {report['retraining']}"
    for name, version in challengers.items():
        assert int(version) > 1
        tags = next(v for v in registry.versions(name) if v.version == version).tags
        assert tags.get("challenger_reason") or tags.get("origin") == "retrain"

    # 5. the engine's journal and the service's decision log, with both arms
    journal = Journal(f"sqlite:///{workdir / 'data' / 'demo' / 'journal.db'}")
    assert len(journal.decisions()) > 0
    assert len(journal.equity()) > 0
    logged = read_decisions(workdir / "data" / "demo" / "decisions.db")
    assert {"champion", "challenger"} <= set(logged["variant"])
    assert payload["ab"]["evaluations"], "evaluate_ab never ran"

    # Every stage is a Prefect flow run in the persistent database under the data dir.
    with sqlite3.connect(workdir / "data" / "prefect" / "prefect.db") as db:
        names = {row[0] for row in db.execute("select name from flow")}
    assert {"demo", "ingest", "collect_trades", "train", "retrain", "evaluate_ab"} <= names

    text = console.export_text()
    assert "Where to look" in text
    assert "tradewind ui" in text
