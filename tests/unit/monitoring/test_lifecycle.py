"""From joined outcomes to the action (`monitoring.lifecycle.evaluate_live`): the arms are
the trades of the evaluated versions over the same period, a rollback needs a `previous`
version and then wins over the A/B verdict, a promotion is not floor-checked; and the
registry moves (`apply_verdict`) on a real MLflow store, only where the alias still points
at the evaluated version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.registry import ModelRegistry
from models.tracker import MlflowTracker
from monitoring.ab import ABConfig, Verdict
from monitoring.lifecycle import apply_verdict, evaluate_live
from monitoring.rollback import RollbackFloor

T0 = pd.Timestamp("2012-01-03", tz="UTC")
V1 = {"signal_quality": "1"}
V2 = {"signal_quality": "2"}
CONFIG = ABConfig(min_trades_per_arm=5, max_trades_per_arm=50, alpha=0.05)
FLOOR = RollbackFloor(min_trades=5, window_trades=20, min_win_rate=0.4, min_profit_factor=0.8)


def _outcomes(*arms: tuple[str, dict[str, str], list[float], int]) -> pd.DataFrame:
    """Rows of closed trades per (variant, versions, returns, first day)."""
    rows = []
    for variant, versions, returns, first_day in arms:
        for day, value in enumerate(returns, start=first_day):
            entry = T0 + pd.Timedelta(days=day)
            rows.append(
                {"trade_id": f"{variant}-{day}", "entry_time": entry,
                 "exit_time": entry + pd.Timedelta(days=1), "return_pct": value,
                 "variant": variant, "model_versions": versions, "win_probability": 0.6}
            )
    return pd.DataFrame(rows)


def test_without_a_challenger_a_healthy_champion_holds() -> None:
    outcomes = _outcomes(("champion", V1, [0.02, -0.01] * 5, 0))
    evaluation = evaluate_live(outcomes, {"champion": V1}, config=CONFIG, floor=FLOOR)
    assert evaluation.verdict is None
    assert evaluation.action is Verdict.HOLD
    assert evaluation.reason.startswith("no challenger in A/B; champion healthy")
    assert not evaluation.moves_registry


def test_the_champion_arm_starts_with_the_challengers_first_trade() -> None:
    outcomes = _outcomes(
        ("champion", V1, [0.02] * 10, 0),  # days 0..9
        ("challenger", V2, [0.01] * 6, 6),  # days 6..11
        ("champion", V2, [0.05] * 3, 0),  # other versions: not in either arm
    )
    evaluation = evaluate_live(
        outcomes, {"champion": V1, "challenger": V2}, config=CONFIG, floor=FLOOR
    )
    assert evaluation.counts == {"champion_all": 10, "challenger": 6, "champion_same_period": 4}
    assert evaluation.action is Verdict.KEEP_COLLECTING  # 4 champion trades < 5


def test_a_degraded_champion_rolls_back_over_the_ab_verdict_when_previous_exists() -> None:
    losing = [-0.02] * 8 + [0.01] * 2
    outcomes = _outcomes(("champion", V2, losing, 0), ("challenger", V1, [0.01] * 2, 8))
    aliases = {"champion": V2, "challenger": V1}
    without_previous = evaluate_live(outcomes, aliases, config=CONFIG, floor=FLOOR)
    assert without_previous.action is Verdict.KEEP_COLLECTING
    assert "but no previous version to roll back to" in without_previous.reason
    with_previous = evaluate_live(
        outcomes, {**aliases, "previous": V1}, config=CONFIG, floor=FLOOR
    )
    assert with_previous.action is Verdict.ROLLBACK
    assert "win rate 0.200 < floor 0.400" in with_previous.reason
    assert with_previous.moves_registry


def test_a_promotion_is_not_floor_checked() -> None:
    outcomes = _outcomes(
        ("champion", V1, [-0.02] * 40, 0), ("challenger", V2, [0.03] * 40, 0)
    )
    evaluation = evaluate_live(
        outcomes, {"champion": V1, "challenger": V2, "previous": {"signal_quality": "0"}},
        config=CONFIG, floor=FLOOR,
    )
    assert evaluation.action is Verdict.PROMOTE
    assert evaluation.rollback is None


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """signal_quality v1 champion, v2 challenger, in a real MLflow store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker, registry = MlflowTracker(uri, tmp_path / "artifacts"), ModelRegistry(uri)
    X = np.random.default_rng(0).normal(size=(30, 2))
    for _ in range(2):
        with tracker.run("signal_quality", "test", {}) as run:
            logged = run.log_model(
                "sklearn", LogisticRegression().fit(X, X[:, 0] > 0),
                serialization_format="skops", pip_requirements=["scikit-learn"],
            )
        registry.register("signal_quality", logged.model_uri, run_id=logged.run_id,
                          model_card="card")
    registry.set_challenger("signal_quality", "2", "trial")
    return registry


def test_apply_verdict_moves_only_what_was_evaluated(registry: ModelRegistry) -> None:
    late = {"challenger": {"signal_quality": "9"}}
    stale = apply_verdict(registry, Verdict.PROMOTE, "late", late)
    assert stale.moved == {}
    assert stale.stale == ["signal_quality: challenger is no longer v9; not moved"]
    promoted = apply_verdict(registry, Verdict.PROMOTE, "better", {"challenger": V2})
    assert promoted.moved == {"signal_quality": {"champion": "2", "previous": "1"}}
    rolled = apply_verdict(registry, Verdict.ROLLBACK, "floor", {"previous": V1})
    assert rolled.moved == {"signal_quality": {"champion": "1"}}
    assert apply_verdict(registry, Verdict.RETIRE, "none left", {"challenger": {}}).moved == {}
