"""The evaluate_ab flow under the Prefect test harness, on real stores: a real MLflow
registry (SQLite) with logged scikit-learn models, the trading journal (SQLite) and the
serving decision log (SQLite). Closed-trade outcomes are constructed per arm so each branch
of the decision rule is reached: keep collecting → promote → forced degradation → rollback,
and a clearly worse challenger → retire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration

START = datetime(2012, 1, 3, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


class Stores:
    """One isolated set of stores and the overrides that point the flows at them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        self.journal_url = f"sqlite:///{root / 'data' / 'journal.db'}"
        self.decision_log = root / "data" / "decisions.db"
        self.overrides: dict[str, Any] = {
            "paths": {
                "data_dir": str(root / "data"),
                "mlflow_tracking_uri": self.tracking_uri,
                "mlflow_artifact_root": str(root / "mlruns" / "artifacts"),
                "journal_url": self.journal_url,
                "reports_dir": str(root / "reports"),
            }
        }
        self._day = 0

    def register_versions(self, name: str, count: int) -> list[str]:
        """`count` real logged models registered as versions of `name`."""
        from sklearn.linear_model import LogisticRegression

        from models.registry import ModelRegistry
        from models.tracker import MlflowTracker

        tracker = MlflowTracker(self.tracking_uri, self.root / "mlruns" / "artifacts")
        registry = ModelRegistry(self.tracking_uri)
        rng = np.random.default_rng(len(name))
        versions = []
        for number in range(count):
            features = rng.normal(size=(40, 3))
            labels = (features[:, 0] + rng.normal(scale=0.5, size=40) > 0).astype(int)
            model = LogisticRegression().fit(features, labels)
            with tracker.run(name, f"{name}-{number}", {"model": name}) as run:
                logged = run.log_model("sklearn", model, pip_requirements=["scikit-learn"])
            versions.append(
                registry.register(
                    name, logged.model_uri, run_id=logged.run_id, model_card=f"test model {number}"
                )
            )
        return versions

    def trades(self, rows: list[tuple[str, dict[str, str], float, float]]) -> None:
        """Closed trades (variant, versions, return, win probability at entry) in the journal
        and their decisions in the serving decision log, one day apart."""
        from core.types import Side, Trade
        from serving.decision_log import DecisionLog, DecisionRecord
        from trading.journal import Journal

        (self.root / "data").mkdir(parents=True, exist_ok=True)
        journal = Journal(self.journal_url, batch_size=1_000)
        log = DecisionLog(self.decision_log)
        try:
            for variant, versions, value, probability in rows:
                self._day += 1
                entry = START + timedelta(days=self._day)
                key = f"{variant}-{self._day}"
                log.record(
                    DecisionRecord(
                        decision_id=f"d-{key}",
                        decided_at=entry,
                        signal_id=f"s-{key}",
                        symbol="AAPL",
                        side="buy",
                        strategy="momentum",
                        signal_timestamp=entry,
                        price=100.0,
                        feature_hash="0" * 16,
                        variant=variant,
                        model_versions=versions,
                        outputs={"win_probability": probability},
                        out_of_distribution=False,
                        latency_ms=2.5,
                    )
                )
                journal.record_trade(
                    Trade(
                        trade_id=f"t-{key}",
                        symbol="AAPL",
                        side=Side.BUY,
                        qty=10.0,
                        entry_time=entry,
                        entry_price=100.0,
                        exit_time=entry + timedelta(days=2),
                        exit_price=100.0 * (1 + value),
                        strategy="momentum",
                        exit_reason="target" if value > 0 else "stop",
                        decision_id=f"d-{key}",
                    )
                )
        finally:
            log.close()
            journal.close()

    def aliases(self, name: str) -> dict[str, str]:
        from models.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri).aliases(name)

    def evaluate(self, **parameters: Any) -> dict[str, Any]:
        from pipelines.flows.evaluate_ab import evaluate_ab_flow

        return evaluate_ab_flow(
            decision_log=str(self.decision_log),
            min_trades_per_arm=30,
            overrides=self.overrides,
            **parameters,
        )


def _returns(win_rate: float, count: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    wins = round(win_rate * count)
    values = [0.03] * wins + [-0.02] * (count - wins)
    return list(rng.permutation(np.array(values) * rng.uniform(0.8, 1.2, count)))


def _interleaved(
    stores: Stores, arms: list[tuple[str, dict[str, str], list[float], float]]
) -> None:
    """Write the arms' trades alternately so both arms trade over the same period."""
    longest = max(len(arm[2]) for arm in arms)
    stores.trades(
        [
            (variant, versions, returns[i], probability)
            for i in range(longest)
            for variant, versions, returns, probability in arms
            if i < len(returns)
        ]
    )


def test_keep_collecting_then_promote_then_rollback(prefect_harness: None, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from pipelines.flows.evaluate_ab import AB_EXPERIMENT, read_ab_outcomes

    stores = Stores(tmp_path)
    for name in ("signal_quality", "exit_optimizer"):
        stores.register_versions(name, 2)
    from models.registry import ModelRegistry

    registry = ModelRegistry(stores.tracking_uri)
    for name in ("signal_quality", "exit_optimizer"):
        registry.set_challenger(name, "2", "better out of time")
    v1 = {"signal_quality": "1", "exit_optimizer": "1"}
    v2 = {"signal_quality": "2", "exit_optimizer": "2"}

    # 1. too few challenger trades: nothing moves
    _interleaved(
        stores,
        [
            ("champion", v1, _returns(0.40, 60, 1), 0.6),
            ("challenger", v2, _returns(0.80, 10, 2), 0.7),
        ],
    )
    first = stores.evaluate()
    assert first["action"] == "keep_collecting"
    assert not first["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1", "challenger": "2"}

    # 2. the challenger is clearly better over enough trades: promote both models
    _interleaved(
        stores,
        [
            ("champion", v1, _returns(0.40, 20, 3), 0.6),
            ("challenger", v2, _returns(0.80, 50, 4), 0.7),
        ],
    )
    second = stores.evaluate()
    assert second["action"] == "promote", second["reason"]
    assert second["applied"]
    assert second["arms"]["challenger"]["trades"] == 60
    assert second["arms"]["challenger"]["win_rate"] == pytest.approx(0.8, abs=0.02)
    for name in ("signal_quality", "exit_optimizer"):
        assert stores.aliases(name) == {"champion": "2", "previous": "1"}
    assert {t["favours"] for t in second["tests"]} == {"challenger"}

    # 3. the new champion degrades in live trading: roll back to the previous version
    stores.trades([("champion", v2, value, 0.7) for value in _returns(0.15, 30, 5)])
    third = stores.evaluate()
    assert third["action"] == "rollback", third["reason"]
    assert "win rate 0.1" in third["reason"]
    for name in ("signal_quality", "exit_optimizer"):
        assert stores.aliases(name) == {"champion": "1"}
    tags = registry.versions("signal_quality")[0].tags  # newest = v2
    assert "rolled_back_reason" in tags

    # every outcome is in MLflow and in the journal
    client = MlflowClient(tracking_uri=stores.tracking_uri)
    experiment = client.get_experiment_by_name(AB_EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [run.data.tags["verdict"] for run in runs] == ["keep_collecting", "promote", "rollback"]
    promote_run = runs[1]
    assert promote_run.data.metrics["challenger_win_rate"] == pytest.approx(0.8, abs=0.02)
    assert "mann_whitney_returns_pvalue" in promote_run.data.metrics
    outcomes = read_ab_outcomes(stores.journal_url)
    assert list(outcomes["verdict"]) == ["keep_collecting", "promote", "rollback"]
    assert list(outcomes["applied"]) == [0, 1, 1]
    assert outcomes["mlflow_run_id"].tolist() == [run.info.run_id for run in runs]
    alerts = [
        json.loads(line)
        for line in (tmp_path / "data" / "monitoring" / "alerts.jsonl").read_text().splitlines()
    ]
    assert [alert["priority"] for alert in alerts] == ["medium", "critical"]


def test_clearly_worse_challenger_is_retired_and_dry_run_moves_nothing(
    prefect_harness: None, tmp_path: Path
) -> None:
    stores = Stores(tmp_path)
    stores.register_versions("signal_quality", 2)
    from models.registry import ModelRegistry

    ModelRegistry(stores.tracking_uri).set_challenger("signal_quality", "2", "trial")
    _interleaved(
        stores,
        [
            ("champion", {"signal_quality": "1"}, _returns(0.65, 45, 6), 0.6),
            ("challenger", {"signal_quality": "2"}, _returns(0.20, 40, 7), 0.8),
        ],
    )
    dry = stores.evaluate(dry_run=True)
    assert dry["action"] == "retire"
    assert not dry["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1", "challenger": "2"}

    result = stores.evaluate()
    assert result["action"] == "retire", result["reason"]
    assert result["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1"}
    # the challenger claimed 0.8 and won 20%: its log loss is far worse than the champion's
    assert result["arms"]["challenger"]["log_loss"] > result["arms"]["champion"]["log_loss"]
