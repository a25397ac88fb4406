"""The scores written once in `models.metrics`, the permutation importance of the win
probability, the single-row latency figures and the plan's targets table, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.importance import permutation_importance
from models.metrics import LOG_LOSS_EPS, log_loss, macro_f1, mean_absolute_error
from models.targets import seed_targets


def test_log_loss_by_hand_and_clipped() -> None:
    assert log_loss([0.8, 0.3], [1, 0]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    assert log_loss([1.0], [0]) == pytest.approx(-math.log(LOG_LOSS_EPS))  # finite


def test_mae_and_macro_f1_by_hand() -> None:
    assert mean_absolute_error([1.0, 3.0], [2.0, 2.0]) == 1.0
    assert macro_f1([0, 1, 1], [0, 1, 0]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert macro_f1([2], [0]) == 0.0  # a class only one side has scores 0, no warning


class _LeansOnRsi:
    """A win probability that is rsi_14/100 and ignores every other input."""

    def inputs(self, name: str) -> list[str]:
        return ["rsi_14", "noise"]

    def win_probability(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["rsi_14"].to_numpy() / 100.0


def test_permutation_importance_ranks_the_input_the_model_uses() -> None:
    rng = np.random.default_rng(3)
    rsi = rng.uniform(5, 95, 300)
    won = (rng.uniform(0, 100, 300) < rsi).astype(float)
    events = pd.DataFrame({"rsi_14": rsi, "noise": rng.normal(size=300)})
    ranked = permutation_importance(_LeansOnRsi(), events, won, seed=7)  # type: ignore[arg-type]
    assert list(ranked) == ["rsi_14", "noise"]
    assert ranked["rsi_14"] > 0.05
    assert ranked["noise"] == 0.0
    # seeded: the same shuffle gives the same figures
    again = permutation_importance(_LeansOnRsi(), events, won, seed=7)  # type: ignore[arg-type]
    assert again == ranked


def test_seed_targets_rows() -> None:
    rows = seed_targets(
        {"signal_quality": {"accuracy": 0.61, "majority_accuracy": 0.55,
                            "win_rate_change_pts": 4.25, "coverage_at_gate": 0.3}},
        {"p50_ms": 1.234, "p99_ms": 2.5},
    )
    measured = {target: value for target, _, value in rows}
    assert measured["signal accuracy"] == "61.0% (majority class 55.0%)"
    assert measured["win rate, gated vs ungated"] == "+4.2 pts (coverage 0.300)"
    assert measured["profit factor, model vs fixed exits"] == "n/a"
    assert measured["prediction latency (4 models, 1 row)"] == "p50 1.23 ms, p99 2.50 ms"
    assert seed_targets({}, None)[-1][2] == "n/a"
