"""Each model class owns its comparison metric and scoring: the metric's direction, the
score by hand, and the `prediction`/`target` frame it builds on the out-of-time rows of a
small hand-made training set with a hand-written model set."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from models.catalogue import MODEL_CLASSES, model_for, models_for
from models.comparison import Comparison
from models.datasets import TrainingData
from models.labels import ForwardPaths, TripleBarrier, trade_label_names
from models.policy import FittedPolicy
from models.registry import MODEL_NAMES
from models.schema import REGIME_COLUMNS

START = pd.Timestamp("2020-01-01", tz="UTC")
LABELS = trade_label_names(20)


class _Formulas:
    """The model set's four predictions as known formulas of feature `x`."""

    def __init__(self) -> None:
        self.versions = {"signal_quality": "9"}
        self.feature_names = ["x"]
        self.loaded_at = datetime(2020, 1, 1, tzinfo=UTC)
        self.policy: FittedPolicy | None = None

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(X), dtype=bool)

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        return X["x"].to_numpy(dtype=float)

    def exits(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"stop_loss_atr": X["x"] * 10, "take_profit_atr": X["x"] * 20})

    def regime_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        # all weight on "ranging" (column 1) when x > 0.5, else on "trending"
        high = (X["x"].to_numpy() > 0.5).astype(float)
        return pd.DataFrame(
            np.column_stack([1 - high, high, np.zeros(len(X)), np.zeros(len(X))]),
            columns=list(REGIME_COLUMNS),
        )

    def drawdown(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"expected_drawdown_pct": X["x"] / 10, "drawdown_p10_pct": 0.0,
                             "drawdown_p90_pct": 0.0})


def _data() -> TrainingData:
    stamps = pd.date_range(START, periods=6, freq="D")
    events = pd.DataFrame(
        {
            "timestamp": stamps,
            "x": [0.1, 0.2, 0.3, 0.8, 0.4, 0.9],
            "strategy": "momentum",
            LABELS["won"]: [0, 0, 1, 1, 0, 1],
            LABELS["net_return"]: [-0.02, -0.02, 0.03, 0.03, -0.02, 0.03],
            LABELS["stop_opt"]: [1.0, 1.0, 1.0, 2.0, np.nan, 3.0],
            LABELS["target_opt"]: [2.0, 2.0, 2.0, 4.0, 5.0, 6.0],
            LABELS["drawdown"]: [0.01, 0.01, 0.01, 0.05, np.nan, 0.10],
        }
    )
    empty = np.zeros((0, 20))
    return TrainingData(
        events=events,
        paths=ForwardPaths(empty, empty, empty, empty, np.zeros(0), np.zeros(0)),
        market=pd.DataFrame(),
        signal_features=["x"],
        market_features=["x"],
        barrier=TripleBarrier(),
        regime_horizon=20,
        index_symbol=None,
        dropped_events=0,
    )


def test_the_catalogue_knows_the_four_models_in_registry_order() -> None:
    assert tuple(MODEL_CLASSES) == MODEL_NAMES
    assert [model.name for model in models_for(None)] == list(MODEL_NAMES)
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        model_for("nope")


@pytest.mark.parametrize(
    ("name", "metric", "greater_is_better"),
    [
        ("signal_quality", "policy_profit_factor", True),
        ("exit_optimizer", "exit_atr_mae", False),
        ("regime_classifier", "regime_macro_f1", True),
        ("risk_predictor", "drawdown_mae", False),
    ],
)
def test_each_model_declares_its_metric(name: str, metric: str, greater_is_better: bool) -> None:
    spec = model_for(name).comparison_metric
    assert spec.name == metric
    assert spec.greater_is_better is greater_is_better
    assert spec.key == f"{metric}/score"


def test_signal_quality_scores_the_policys_profit_factor() -> None:
    model = model_for("signal_quality")
    returns = pd.Series([0.03, -0.02, 0.03, -0.02])
    ungated = model.comparison_score(pd.Series([0.08] * 4), returns)
    selective = model.comparison_score(pd.Series([0.08, 0.0, 0.08, 0.04]), returns)
    assert ungated == pytest.approx(0.06 / 0.04)
    assert selective == pytest.approx((2 * 0.08 * 0.03) / (0.04 * 0.02))
    assert selective > ungated
    assert model.comparison_score(pd.Series([0.0] * 4), returns) == 0.0  # no trades
    assert model.comparison_score(pd.Series([0.1, 0.0, 0.0, 0.0]), returns) == 100.0  # capped


def test_regime_macro_f1_and_drawdown_mae_by_hand() -> None:
    regime = model_for("regime_classifier")
    assert regime.comparison_score(pd.Series([0, 1, 2, 3]), pd.Series([0, 1, 2, 3])) == 1.0
    # class 0: P=1/2 R=1 F1=2/3; class 1: P=0 R=0 F1=0 → macro 1/3
    assert regime.comparison_score(pd.Series([0, 0]), pd.Series([0, 1])) == pytest.approx(1 / 3)
    risk = model_for("risk_predictor")
    assert risk.comparison_score(pd.Series([1.0, 2.0]), pd.Series([2.0, 2.0])) == 0.5


def test_signal_quality_frame_is_the_policys_sizes_on_the_out_of_time_events() -> None:
    from models.policy import PolicyConfig, StrategyPayoff

    models = _Formulas()
    start = START + pd.Timedelta(days=3)
    frame = model_for("signal_quality").comparison_frame(models, _data(), start)  # type: ignore[arg-type]
    # no fitted policy: every signal at the ungated size
    assert frame["prediction"].tolist() == pytest.approx([1 / 12] * 3)
    assert frame["target"].tolist() == [0.03, -0.02, 0.03]
    payoff = StrategyPayoff(0.03, 0.02, threshold=0.5, coverage=0.5, signals=10)
    models.policy = FittedPolicy(PolicyConfig(), {"momentum": payoff}, payoff, 1.0, 5.0)
    frame = model_for("signal_quality").comparison_frame(models, _data(), start)  # type: ignore[arg-type]
    sizes = frame["prediction"].to_numpy()
    assert sizes[1] == 0.0  # x = 0.4: below the 0.5 threshold, skipped
    assert (sizes[[0, 2]] > 0).all()


def test_exit_frame_stacks_stops_then_targets_where_both_are_known() -> None:
    frame = model_for("exit_optimizer").comparison_frame(
        _Formulas(), _data(), START + pd.Timedelta(days=3)  # type: ignore[arg-type]
    )
    # rows x=0.8 and x=0.9 (x=0.4 has no optimal stop)
    assert frame["prediction"].tolist() == pytest.approx([8.0, 9.0, 16.0, 18.0])
    assert frame["target"].tolist() == [2.0, 3.0, 4.0, 6.0]


def test_risk_frame_skips_unknown_drawdowns() -> None:
    frame = model_for("risk_predictor").comparison_frame(
        _Formulas(), _data(), START + pd.Timedelta(days=3)  # type: ignore[arg-type]
    )
    assert frame["prediction"].tolist() == pytest.approx([0.08, 0.09])
    assert frame["target"].tolist() == [0.05, 0.10]


def test_comparison_as_dict_names_every_field() -> None:
    comparison = Comparison("risk_predictor", "drawdown_mae", False, 0.01, 0.02, 0.05, True,
                            "better", 12)
    assert comparison.as_dict() == {
        "model": "risk_predictor", "metric": "drawdown_mae", "greater_is_better": False,
        "candidate": 0.01, "champion": 0.02, "margin": 0.05, "passed": True,
        "reason": "better", "rows": 12,
    }


def test_regime_frame_labels_the_window_with_thresholds_fitted_before_it() -> None:
    from dataclasses import replace

    stamps = pd.date_range(START, periods=40, freq="D")
    # 30 fitting dates (vol 1..30, trend 0..1): volatile from vol 22.75 (q75), trending
    # from trend 0.58 (q60), calm up to vol 12.6 (q40), ranging in between
    vol = np.concatenate([np.arange(1.0, 31.0), [100.0, 1.0, 15.0, np.nan, 1.0] * 2])
    trend = np.concatenate([np.linspace(0.0, 1.0, 30), [0.0, 5.0, 0.0, 0.0, 0.0] * 2])
    market = pd.DataFrame(
        {"timestamp": stamps, "x": np.linspace(0, 1, 40), "fwd_vol_20": vol, "fwd_trend_20": trend}
    )
    data = replace(_data(), market=market)
    frame = model_for("regime_classifier").comparison_frame(
        _Formulas(), data, stamps[30]  # type: ignore[arg-type]
    )
    realized = ["volatile", "trending", "ranging", "calm"] * 2  # the NaN dates are left out
    assert frame["target"].tolist() == [REGIME_COLUMNS.index(r) for r in realized]
    # x > 0.5 on every window date: the formula calls them all "ranging"
    assert frame["prediction"].tolist() == [REGIME_COLUMNS.index("ranging")] * 8
