"""The policy's yardstick (`monitoring.evaluation`, `monitoring.evaluation_page`): folds
with purge and embargo, no held-out symbol in training, arm figures, refusal categories,
ratios, the seeded block bootstrap, the worst fold, the report keys, targets, files."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.universe import split_universe
from models.datasets import TrainingData
from monitoring.evaluation import (
    ARM_METRICS,
    EVALUATION_KEYS,
    FOLD_KEYS,
    REFUSAL_REASONS,
    ArmRun,
    EvaluationFold,
    ExperimentTracker,
    FoldResult,
    PairedDays,
    arm_metrics,
    block_bootstrap_intervals,
    check_development_only,
    check_evaluation,
    check_purged,
    data_section,
    evaluation_metrics,
    fold_training_data,
    gate_coverage,
    held_out_predictions,
    ordinary_rows,
    policy_targets,
    purge_events,
    ratio,
    refusal_counts,
    refusal_reason,
    regime_baseline,
    regime_figures,
    signal_scores,
    split_for_evaluation,
    spread_sample,
    summarize,
    walk_forward_folds,
    worst_fold,
    year_events,
)
from monitoring.evaluation_page import fold_lines, interval_text, summary_lines, write_evaluation

CASH = 100_000.0


def sessions(start: str = "2013-02-08", end: str = "2018-02-07") -> pd.DatetimeIndex:
    """Weekday sessions at 05:00 UTC (New York midnight), like the S&P 500 set."""
    return pd.bdate_range(start, end, tz="UTC") + pd.Timedelta(hours=5)


# ----------------------------------------------------------------------------- folds
def test_folds_are_calendar_years_and_the_short_tail_joins_the_last() -> None:
    folds = walk_forward_folds(sessions(), (2017, 2015, 2016))
    assert [f.year for f in folds] == [2015, 2016, 2017]
    assert folds[0].start == pd.Timestamp("2015-01-01 05:00", tz="UTC")
    assert folds[0].end == pd.Timestamp("2015-12-31 05:00", tz="UTC")
    assert folds[-1].end == pd.Timestamp("2018-02-07 05:00", tz="UTC")  # Jan–Feb 2018 join
    assert folds[-1].name == "2017-2018"
    # Only the last fold takes the tail; a long tail stands alone.
    alone = walk_forward_folds(sessions(), (2015,))
    assert alone[0].end == pd.Timestamp("2015-12-31 05:00", tz="UTC")


def test_the_embargo_leaves_sessions_out_before_each_test_year() -> None:
    days = sessions()
    (fold,) = walk_forward_folds(days, (2016,), embargo_bars=5)
    before = days[days < fold.start]
    assert fold.train_end == before[-6]  # five sessions of embargo, then the training end
    assert ((days > fold.train_end) & (days < fold.start)).sum() == 5
    (none,) = walk_forward_folds(days, (2016,), embargo_bars=0)
    assert none.train_end == before[-1]


def test_folds_refuse_a_year_without_data_or_without_history() -> None:
    with pytest.raises(DataValidationError, match="no sessions in 2019"):
        walk_forward_folds(sessions(), (2019,))
    with pytest.raises(DataValidationError, match="no training history"):
        walk_forward_folds(sessions("2015-01-02", "2015-12-31"), (2015,))


def _events(train_end: pd.Timestamp) -> pd.DataFrame:
    stamps = pd.date_range(train_end - pd.Timedelta(days=40), periods=8, freq="7D", tz="UTC")
    return pd.DataFrame({"symbol": "AAPL", "timestamp": stamps,
                         "label_end": stamps + pd.Timedelta(days=28)})


def test_purging_drops_every_event_whose_label_reaches_past_the_training_end() -> None:
    (fold,) = walk_forward_folds(sessions(), (2016,))
    events = _events(fold.train_end)
    with pytest.raises(DataValidationError, match="training labels end after"):
        check_purged(events, fold)
    kept = purge_events(events, fold)
    assert len(kept)
    assert (kept["label_end"] <= fold.train_end).all()
    assert (kept["timestamp"] < fold.start).all()
    check_purged(kept, fold)  # passes


def test_no_held_out_symbol_passes_into_a_training_set() -> None:
    development, held_out = split_universe(["AAPL", "MSFT", "A", "AFL", "CVX", "ACN"])
    assert held_out == ["A", "AFL", "CVX"]
    check_development_only(development)
    with pytest.raises(DataValidationError, match="held-out symbols in a training set: AFL"):
        check_development_only([*development, "AFL"])


# ----------------------------------------------------------------------------- one arm
def arm(pnls: list[float], equity: list[float], decisions: list[tuple[str, str]] | None = None,
        start: str = "2016-01-04") -> ArmRun:
    days = pd.bdate_range(start, periods=len(equity), tz="UTC")
    exits = days[np.linspace(0, len(days) - 1, len(pnls)).astype(int)] if pnls else []
    actions = decisions or []
    return ArmRun(
        trades=pd.DataFrame({"exit_time": exits, "pnl": pnls}),
        equity=pd.DataFrame({"timestamp": days, "equity": equity}),
        decisions=pd.DataFrame({"action": [a for a, _ in actions],
                                "reason": [r for _, r in actions]}),
        starting_equity=CASH,
    )


def test_arm_figures_come_from_core_performance() -> None:
    run = arm([300.0, -100.0, 200.0, -100.0], [100_000, 101_000, 99_990, 100_500, 100_300])
    figures = arm_metrics(run)
    assert set(figures) == set(ARM_METRICS)
    assert figures["trades"] == 4
    assert figures["win_rate"] == pytest.approx(0.5)
    assert figures["profit_factor"] == pytest.approx(500 / 200)
    assert figures["max_drawdown"] == pytest.approx(1 - 99_990 / 101_000)
    assert figures["total_return"] == pytest.approx(0.003)
    empty = arm_metrics(arm([], [CASH, CASH]))
    assert empty["trades"] == 0
    assert math.isnan(empty["profit_factor"])
    assert empty["max_drawdown"] == 0.0
    assert empty["sharpe"] == 0.0


@pytest.mark.parametrize(
    ("action", "reason", "category"),
    [
        ("entered", "", None),
        ("skip", "ev", "ev"),  # the policy's record: the category as the reason
        ("skipped", "gate: win probability 0.41 < 0.65", "gate"),  # or leading it
        ("ood", "features far from the training window", "ood"),  # or as the action
        ("gated", "win probability 0.55 < gate 0.65", "gate"),
        ("regime_mismatch", "model regime calm does not select momentum", "regime"),
        ("rejected", "sizing: no edge: kelly -0.43", "sizing"),
        ("rejected", "max_positions: 10 positions open", "risk"),
        ("model_unavailable", "no entry on a guess: features of X at 2016-01-04 are out of "
         "the training distribution (decision d-1)", "ood"),
        ("model_unavailable", "no entry on a guess: timeout", "model_unavailable"),
        ("invalid_features", "rsi_14 is NaN", "model_unavailable"),
    ],
)
def test_every_refusal_has_one_category(action: str, reason: str, category: str | None) -> None:
    assert refusal_reason(action, reason) == category


def test_the_journals_category_column_wins() -> None:
    assert refusal_reason("skipped", "p 0.41 < threshold 0.45", "ev") == "ev"
    assert refusal_reason("entered", "", "") is None
    decisions = pd.DataFrame({"action": ["skipped", "skipped", "entered"],
                              "category": ["ood", "risk", ""],
                              "reason": ["features far out", "max_positions: full", ""]})
    assert refusal_counts(decisions)["ood"] == 1
    assert refusal_counts(decisions)["risk"] == 1
    assert gate_coverage(decisions) == pytest.approx(1 / 2)


def test_refusal_counts_and_gate_coverage() -> None:
    decisions = pd.DataFrame({
        "action": ["entered", "entered", "gated", "gated", "rejected", "regime_mismatch"],
        "reason": ["", "", "p < gate", "p < gate", "max_positions: full", "calm"],
    })
    counts = refusal_counts(decisions)
    assert list(counts) == list(REFUSAL_REASONS)
    assert counts["gate"] == 2
    assert counts["risk"] == 1
    assert counts["regime"] == 1
    # coverage: entries over entries + the policy's own refusals (risk is not the policy's)
    assert gate_coverage(decisions) == pytest.approx(2 / 5)
    assert gate_coverage(decisions.iloc[0:0]) is None


def test_ratios_are_none_when_undefined() -> None:
    assert ratio(1.5, 1.0) == 1.5
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(1.0, math.inf) is None
    assert ratio(math.nan, 1.0) is None
    assert ratio(math.inf, 2.0) == math.inf


def test_signal_scores() -> None:
    scores = signal_scores(np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 0, 1, 1]))
    assert scores["auc"] == 1.0
    assert scores["brier"] == pytest.approx((0.04 + 0.16 + 0.16 + 0.04) / 4)
    assert math.isnan(signal_scores(np.array([0.5, 0.6]), np.array([1, 1]))["auc"])


def test_regime_baseline_is_the_majority_predictor_macro_f1() -> None:
    assert regime_baseline(0.4) == pytest.approx(2 * 0.4 / 1.4 / 4)
    assert regime_baseline(0.0) == 0.0


# ----------------------------------------------------------------------------- pooling
def fold_result(year: int, ungated: ArmRun, policy: ArmRun, auc: float = 0.55) -> FoldResult:
    (fold,) = walk_forward_folds(sessions(), (year,))
    return FoldResult(fold, ungated, policy, {"auc": auc, "brier": 0.25, "events": 100}, 0.02,
                      {"macro_f1": 0.4, "majority_macro_f1": 0.12})


def random_arm(seed: int, start: str, drift: float, trades: int) -> ArmRun:
    rng = np.random.default_rng(seed)
    equity = CASH * np.cumprod(1 + rng.normal(drift, 0.005, 250))
    pnl = rng.normal(40 + drift * 1e5, 300, trades)
    return arm(list(pnl), list(equity), [("entered", "")] * trades + [("gated", "p")] * 10,
               start)


@pytest.fixture
def results() -> list[FoldResult]:
    return [
        fold_result(2015, random_arm(1, "2015-01-02", 0.0002, 60),
                    random_arm(2, "2015-01-02", 0.0003, 30)),
        fold_result(2016, random_arm(3, "2016-01-04", 0.0001, 50),
                    random_arm(4, "2016-01-04", 0.0004, 25), auc=0.60),
    ]


def test_paired_days_chain_the_folds_on_the_same_sessions(results: list[FoldResult]) -> None:
    days = PairedDays.from_folds(results)
    assert days.sessions == 500
    assert days.ungated_returns.shape == days.policy_returns.shape
    assert days.ungated_trades[0].max() < 500
    assert days.ungated_trades[1].size == 110
    assert days.policy_trades[1].size == 55


def test_the_bootstrap_is_deterministic_for_a_seed(results: list[FoldResult]) -> None:
    days = PairedDays.from_folds(results)
    first = block_bootstrap_intervals(days, resamples=300, seed=7)
    assert first == block_bootstrap_intervals(days, resamples=300, seed=7)
    assert first != block_bootstrap_intervals(days, resamples=300, seed=8)
    low, high = first["pf_ratio_ci"] or (None, None)
    assert low is not None
    assert high is not None
    assert low < high


def test_identical_arms_give_ratios_of_one_with_a_degenerate_interval() -> None:
    same = random_arm(5, "2016-01-04", 0.0002, 40)
    days = PairedDays.from_folds([fold_result(2016, same, same)])
    intervals = block_bootstrap_intervals(days, resamples=200)
    assert intervals["pf_ratio_ci"] == pytest.approx((1.0, 1.0))
    assert intervals["dd_ratio_ci"] == pytest.approx((1.0, 1.0))


def test_summary_has_the_report_keys_pooled_ratios_and_worst_fold(
    results: list[FoldResult],
) -> None:
    evaluation = summarize(results, pooled_scores={"auc": 0.57, "brier": 0.25}, resamples=200)
    check_evaluation(evaluation)
    assert set(EVALUATION_KEYS) <= set(evaluation)
    for fold in evaluation["folds"]:
        assert set(FOLD_KEYS) <= set(fold)
        assert set(fold["ungated"]) == set(fold["policy"]) == set(ARM_METRICS)
    assert evaluation["kept_ratio"] == pytest.approx(55 / 110)
    assert evaluation["refusals"]["gate"] == 20
    assert evaluation["auc"] == 0.57
    pf_ratios = [f["pf_ratio"] for f in evaluation["folds"]]
    assert evaluation["worst_fold"]["pf_ratio"] == min(pf_ratios)


def test_a_starved_fold_is_the_worst() -> None:
    fine = {"year": 2015, "pf_ratio": 0.9, "policy": {"sharpe": 0.1}, "ungated": {"sharpe": 0.2}}
    starved = {"year": 2016, "pf_ratio": None, "policy": {"sharpe": 0.0},
               "ungated": {"sharpe": 1.0}}
    assert (worst_fold([fine, starved]) or {})["year"] == 2016
    assert worst_fold([]) is None


def test_check_evaluation_names_what_is_missing() -> None:
    with pytest.raises(DataValidationError, match=r"pf_ratio_ci.*folds\[0\]\.policy"):
        check_evaluation({"folds": [{"start": "", "end": "", "auc": 0.5, "brier": 0.2,
                                     "ungated": dict.fromkeys(ARM_METRICS, 0)}],
                          "pf_ratio": 1.0})


def test_targets_are_met_or_missed_from_the_figures(results: list[FoldResult]) -> None:
    evaluation = summarize(results, pooled_scores={"auc": 0.57, "brier": 0.25}, resamples=200)
    targets = {t.name: t for t in policy_targets(evaluation)}
    assert targets["pooled signal AUC"].met
    assert targets["every fold's AUC"].met
    assert targets["trades kept"].met == (evaluation["kept_ratio"] >= 0.30)
    assert targets["OOD false alarms, ordinary next-year bars (worst fold)"].met
    assert not targets["regime macro-F1 (every fold)"].met  # 0.4 < 0.5
    assert targets["regime macro-F1 above its majority baseline (every fold)"].met
    assert not {t.name: t for t in policy_targets({"folds": []})}["every fold's AUC"].met


def test_data_section_counts_both_universes() -> None:
    bars = pd.DataFrame({"symbol": ["AAPL", "AAPL", "MSFT"],
                         "timestamp": pd.to_datetime(["2013-02-08", "2014-01-02", "2015-01-02"],
                                                     utc=True)})
    held = pd.DataFrame({"symbol": ["A"], "timestamp": pd.to_datetime(["2018-02-07"], utc=True)})
    assert data_section(bars, held) == {"symbols": 3, "held_out_symbols": 1, "bars": 4,
                                        "start": "2013-02-08", "end": "2018-02-07"}


# ----------------------------------------------------------------------------- files
def test_json_and_html_are_written_side_by_side(
    results: list[FoldResult], tmp_path: Path
) -> None:
    evaluation = summarize(results, pooled_scores={"auc": 0.57, "brier": 0.25}, resamples=200)
    payload = {"evaluation": evaluation, "data": {"symbols": 3, "held_out_symbols": 2},
               "run": {"source": "test"}}
    json_path, html_path = write_evaluation(payload, tmp_path / "out" / "evaluation.json")
    assert html_path == tmp_path / "out" / "evaluation.html"
    saved = json.loads(json_path.read_text())
    assert set(EVALUATION_KEYS) <= set(saved["evaluation"])
    page = html_path.read_text()
    assert page.count("<img") == 3
    assert "Walk-forward evaluation" in page
    lines = fold_lines(saved["evaluation"])
    assert len(lines) == 2
    assert lines[0].startswith("2015: AUC 0.550 · ungated 60 trades")
    assert "policy 30 trades" in lines[0]
    assert interval_text({"pf_ratio": 1.2, "pf_ratio_ci": [0.9, 1.5]}, "pf_ratio") == \
        "1.20 (90% CI 0.90–1.50)"
    assert interval_text({"pf_ratio": None}, "pf_ratio") == "–"


class _Recorder:
    tracking_uri = "memory://"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def run(self, experiment: str, run_name: str, tags: dict[str, str]):  # type: ignore[no-untyped-def]
        import contextlib

        self.calls.append((experiment, run_name, dict(tags)))
        return contextlib.nullcontext(object())


def test_the_folds_model_runs_go_to_the_evaluation_experiment() -> None:
    inner = _Recorder()
    tracker = ExperimentTracker(inner, prefix="fold-2016/")  # type: ignore[arg-type]
    with tracker.run("signal_quality", "signal_quality-2015-12-23", {"model": "signal_quality"}):
        pass
    assert inner.calls == [("evaluation", "fold-2016/signal_quality-2015-12-23",
                            {"model": "signal_quality", "model_experiment": "signal_quality"})]
    assert tracker.tracking_uri == "memory://"


def test_a_fold_knows_its_name() -> None:
    fold = EvaluationFold(2017, pd.Timestamp("2017-01-03", tz="UTC"),
                          pd.Timestamp("2018-02-07", tz="UTC"),
                          pd.Timestamp("2016-12-22", tz="UTC"))
    assert fold.name == "2017-2018"


# ----------------------------------------------------------------------------- helpers
def test_spread_sample_is_spread_over_the_alphabet() -> None:
    names = [f"S{i:03d}" for i in range(100)]
    picked = spread_sample(names, 5)
    assert picked == ["S000", "S025", "S050", "S074", "S099"]
    assert spread_sample(names[:3], 5) == names[:3]
    assert spread_sample(names[:3], None) == names[:3]


def test_split_for_evaluation_needs_both_universes() -> None:
    bars = pd.DataFrame({"symbol": ["AAPL", "CVX", "JPM", "DIS"], "timestamp": 0})
    development, held_out = split_for_evaluation(bars, 1)
    assert list(development["symbol"]) == ["AAPL"]
    assert sorted(held_out["symbol"]) == ["CVX", "DIS"]
    with pytest.raises(DataValidationError, match="development and held-out"):
        split_for_evaluation(bars.iloc[:1])


def _training_data(events: pd.DataFrame) -> TrainingData:
    from models.labels import TripleBarrier

    return TrainingData(events=events, paths=None, market=pd.DataFrame(),  # type: ignore[arg-type]
                        signal_features=[], market_features=[], barrier=TripleBarrier(),
                        regime_horizon=20, index_symbol=None, dropped_events=0)


def test_a_folds_training_data_is_purged_and_development_only() -> None:
    (fold,) = walk_forward_folds(sessions(), (2016,))
    events = _events(fold.train_end)
    data = fold_training_data(_training_data(events), fold)
    assert (data.events["label_end"] <= fold.train_end).all()
    assert len(data.events) < len(events)
    leaked = events.assign(symbol="CVX")
    with pytest.raises(DataValidationError, match="held-out symbols in a training set: CVX"):
        fold_training_data(_training_data(leaked), fold)


def test_year_events_and_ordinary_rows_keep_the_test_window() -> None:
    (fold,) = walk_forward_folds(sessions(), (2016,))
    stamps = pd.to_datetime(["2015-12-31 05:00", "2016-06-01 05:00", "2017-01-03 05:00"],
                            utc=True)
    frame = pd.DataFrame({"symbol": "CVX", "timestamp": stamps, "close": 1.0, "rsi_14": 50.0})
    assert list(year_events(_training_data(frame), fold).events["timestamp"]) == [stamps[1]]
    rows = ordinary_rows(frame, fold, ["close"])
    assert list(rows.columns) == ["rsi_14"]
    assert len(rows) == 1


def test_flat_mlflow_metrics_and_regime_figures(results: list[FoldResult]) -> None:
    evaluation = summarize(results, pooled_scores={"auc": 0.57, "brier": 0.25}, resamples=200)
    metrics = evaluation_metrics(evaluation)
    assert metrics["auc"] == 0.57
    assert metrics["fold_2015_ungated_trades"] == 60.0
    assert metrics["fold_2016_policy_trades"] == 25.0
    assert "pf_ratio_ci_low" in metrics
    assert all(math.isfinite(v) for v in metrics.values())
    figures = regime_figures({"macro_f1": 0.3, "majority_accuracy": 0.4})
    assert figures == {"macro_f1": 0.3, "majority_macro_f1": regime_baseline(0.4)}
    assert math.isnan(regime_figures({})["macro_f1"])
    assert regime_figures({"macro_f1": 0.3, "majority_macro_f1": 0.1})["majority_macro_f1"] == 0.1


def test_summary_lines_end_with_the_pooled_ratios_and_refusals(
    results: list[FoldResult],
) -> None:
    evaluation = summarize(results, pooled_scores={"auc": 0.57, "brier": 0.25}, resamples=200)
    lines = summary_lines(evaluation)
    assert len(lines) == 4
    assert lines[2].startswith("pooled: profit factor ratio ")
    assert "signal AUC 0.570" in lines[2]
    assert lines[3] == "refusals by reason: gate 20"


class _ScoresByRsi:
    """A model set whose win probability is the RSI over 100."""

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        return X["rsi_14"].to_numpy(dtype=float) / 100


def test_held_out_predictions_score_the_years_labelled_events() -> None:
    (fold,) = walk_forward_folds(sessions(), (2016,))
    stamps = pd.to_datetime(["2015-12-31 05:00", "2016-03-01 05:00", "2016-06-01 05:00"],
                            utc=True)
    events = pd.DataFrame({"symbol": "CVX", "timestamp": stamps, "rsi_14": [90.0, 30.0, 70.0],
                           "won_20": [1, 0, 1]})
    data = replace(_training_data(events), signal_features=["rsi_14"])
    predicted, won = held_out_predictions(_ScoresByRsi(), data, fold)  # type: ignore[arg-type]
    assert predicted.tolist() == [0.3, 0.7]
    assert won.tolist() == [0.0, 1.0]
