"""The decision logic shared by the service and the in-process client."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import DataValidationError, ModelUnavailableError
from core.types import Regime, Side, Signal
from models.policy import PolicyConfig
from serving.decision import DecisionMaker, ServedModels
from serving.decision_log import read_decisions
from serving.inprocess import InProcessModelClient
from serving.predictor import exit_prices
from serving.router import ABRouter, RoutingConfig, bucket
from tests.unit.serving.fakes import FEATURES, FormulaModelSet, features, hand_policy


def _signal(side: Side = Side.BUY, price: float = 100.0) -> Signal:
    return Signal("AAPL", side, datetime(2024, 1, 2, 15, 30, tzinfo=UTC), "momentum", price)


def _signals(count: int) -> list[Signal]:
    return [
        Signal("AAPL", Side.BUY, datetime(2024, 1, 2, tzinfo=UTC).replace(hour=i // 3600 % 24,
               minute=i // 60 % 60, second=i % 60), "momentum", 100.0)
        for i in range(count)
    ]


def test_a_buy_decision_places_exits_below_and_above_the_price() -> None:
    client = InProcessModelClient(FormulaModelSet())
    decision = client.decide(_signal(), features(atr_14=2.0, rsi_14=70.0))
    assert decision.win_probability == pytest.approx(0.70)
    assert decision.stop_loss_price == pytest.approx(100.0 - 2.0 * 2.0)
    assert decision.take_profit_price == pytest.approx(100.0 + 3.0 * 2.0)
    assert decision.regime is Regime.TRENDING
    assert decision.regime_probabilities["trending"] == pytest.approx(0.7)
    assert decision.expected_drawdown_pct == pytest.approx(0.02)
    assert decision.variant == "champion"
    assert decision.model_versions["signal_quality"] == "1"
    assert decision.source == "inprocess"
    assert not decision.out_of_distribution


def test_a_sell_decision_mirrors_the_exits() -> None:
    client = InProcessModelClient(FormulaModelSet())
    decision = client.decide(_signal(side=Side.SELL), features(atr_14=2.0))
    assert decision.stop_loss_price == pytest.approx(104.0)
    assert decision.take_profit_price == pytest.approx(94.0)


def test_a_stop_never_goes_to_or_below_zero() -> None:
    levels = exit_prices(Side.BUY, price=10.0, atr=8.0, stop_loss_atr=2.0, take_profit_atr=3.0)
    assert levels.stop_loss_price > 0


def test_without_a_fitted_policy_every_signal_passes_through() -> None:
    decision = InProcessModelClient(FormulaModelSet()).decide(_signal(), features(rsi_14=10.0))
    assert decision.enter
    assert decision.size_fraction == pytest.approx(1 / 12)
    assert decision.reason_detail == "no fitted policy: pass-through"


def test_the_policy_skips_below_its_threshold_and_sizes_what_it_enters(
    tmp_path: Path,
) -> None:
    client = InProcessModelClient(FormulaModelSet(policy=hand_policy()),
                                  decision_log=tmp_path / "d.db")
    low = client.decide(_signal(), features(rsi_14=50.0))  # p 0.50 <= 0.55
    high = client.decide(_signal(price=101.0), features(rsi_14=60.0))  # p 0.60
    client.close()
    assert (low.action, low.reason) == ("skip", "ev")
    assert low.size_fraction == 0.0
    assert low.threshold == pytest.approx(0.55)
    assert low.expected_value == pytest.approx(0.5 * 0.06 - 0.5 * 0.04)
    assert high.enter
    assert high.reason == ""
    kelly = 0.6 - 0.4 / 1.5
    assert high.size_fraction == pytest.approx(min(0.5 * kelly, 0.10))
    log = read_decisions(tmp_path / "d.db").set_index("decision_id")
    assert log.loc[low.decision_id, "action"] == "skip"
    assert log.loc[low.decision_id, "reason"] == "ev"
    assert "threshold 0.550" in log.loc[low.decision_id, "reason_detail"]
    assert log.loc[high.decision_id, "action"] == "enter"
    assert log.loc[high.decision_id, "outputs"]["size_fraction"] == pytest.approx(
        high.size_fraction)


@pytest.mark.parametrize(("ood_action", "action", "reason"), [
    ("skip", "skip", "ood"), ("half_size", "enter", ""), ("ignore", "enter", ""),
])
def test_what_ood_does_is_a_policy_setting_and_the_log_keeps_the_true_flag(
    tmp_path: Path, ood_action: str, action: str, reason: str,
) -> None:
    config = PolicyConfig(ood_action=ood_action)  # type: ignore[arg-type]
    client = InProcessModelClient(FormulaModelSet(policy=hand_policy(config)),
                                  decision_log=tmp_path / "d.db")
    decision = client.decide(_signal(), features(rsi_14=99.5))  # OOD by the fake's rule
    client.close()
    assert decision.out_of_distribution
    assert (decision.action, decision.reason) == (action, reason)
    full = 0.10  # p 0.995: Kelly far above the cap
    expected = {"skip": 0.0, "half_size": full / 2, "ignore": full}[ood_action]
    assert decision.size_fraction == pytest.approx(expected)
    (row,) = read_decisions(tmp_path / "d.db").itertuples()
    assert row.out_of_distribution
    assert (row.action, row.reason) == (action, reason)


def test_regime_gate_and_size_use_the_rule_regime_without_a_skilled_model() -> None:
    # calm by the rules (VIX level 0.09): momentum is not selected
    calm = {**features(rsi_14=60.0), "mkt_vol_level": 0.09, "mkt_trend": 0.0,
            "mkt_pct_above_ema_50": 0.5}
    names = [*FEATURES, "mkt_vol_level", "mkt_trend", "mkt_pct_above_ema_50"]
    gate = InProcessModelClient(FormulaModelSet(
        features=names, policy=hand_policy(PolicyConfig(regime_mode="gate"))))
    skipped = gate.decide(_signal(), calm)
    assert (skipped.action, skipped.reason) == ("skip", "regime")
    size = InProcessModelClient(FormulaModelSet(features=names, policy=hand_policy()))
    scaled = size.decide(_signal(), calm)
    plain = InProcessModelClient(FormulaModelSet(
        features=names, policy=hand_policy(PolicyConfig(regime_mode="off")))).decide(
        _signal(), calm)
    assert scaled.enter
    assert plain.enter
    assert scaled.size_fraction == pytest.approx(plain.size_fraction * 0.5)
    # a skilled regime model is read instead of the rules (the fake says trending)
    skilled = InProcessModelClient(FormulaModelSet(
        features=names, policy=hand_policy(PolicyConfig(regime_mode="gate")),
        regime_skilled=True)).decide(_signal(), calm)
    assert skilled.enter


def _session_signals(day: str, count: int, strategy: str = "momentum") -> list[Signal]:
    base = datetime.fromisoformat(f"{day}T05:00:00+00:00")
    return [Signal(f"S{i:03d}", Side.BUY, base, strategy, 100.0) for i in range(count)]


def test_the_coverage_guard_lowers_a_threshold_that_would_starve(tmp_path: Path) -> None:
    """A year whose probabilities all sit below the static threshold still trades: the
    threshold follows the recent probabilities (fails when the guard is removed)."""
    sessions = [f"2023-12-{d:02d}" for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 18, 19)]
    seed = {"momentum": [(day, 0.30 + 0.001 * n) for day in sessions for n in range(3)]}
    low_probability = features(rsi_14=35.0)  # p 0.35 < static 0.55
    guarded = InProcessModelClient(FormulaModelSet(policy=hand_policy(guard_seed=seed)))
    signal = _session_signals("2024-01-03", 1)[0]
    decision = guarded.decide(signal, low_probability)
    assert decision.enter
    assert decision.threshold is not None
    assert decision.threshold < 0.35
    assert decision.size_fraction == pytest.approx(0.02)  # Kelly < 0: the floor, no veto
    unguarded = InProcessModelClient(FormulaModelSet(policy=hand_policy()))
    assert unguarded.decide(signal, low_probability).reason == "ev"


def test_guard_memory_is_keyed_by_session_and_rebuilt_from_the_log(tmp_path: Path) -> None:
    model_set = FormulaModelSet(policy=hand_policy())
    first = InProcessModelClient(model_set, decision_log=tmp_path / "d.db")
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    for day in days:
        for signal in _session_signals(day, 6):
            first.decide(signal, features(rsi_14=30.0))
    probe = _session_signals("2024-01-09", 1)[0]
    answer = first.decide(probe, features(rsi_14=40.0))
    first.close()
    # 30 recent signals at p 0.30: the threshold is their Q60, the probe (p 0.40) enters
    assert answer.enter
    assert answer.threshold == pytest.approx(0.30)
    # a fresh maker on the same log remembers them (service restart)
    again = InProcessModelClient(model_set, decision_log=tmp_path / "d.db")
    assert again.decide(probe, features(rsi_14=40.0)).threshold == pytest.approx(0.30)
    again.close()
    # order within a session does not matter; the same session's signals never count
    shuffled = InProcessModelClient(model_set)
    for day in reversed(days):
        for signal in reversed(_session_signals(day, 6)):
            shuffled.decide(signal, features(rsi_14=30.0))
    assert shuffled.decide(probe, features(rsi_14=40.0)).threshold == pytest.approx(0.30)
    fresh = InProcessModelClient(model_set)
    for signal in _session_signals("2024-01-09", 30):
        fresh.decide(signal, features(rsi_14=30.0))
    assert fresh.decide(probe, features(rsi_14=40.0)).reason == "ev"


def test_the_policys_fixed_exits_replace_the_models_and_the_models_stay_visible() -> None:
    model_set = FormulaModelSet(stop_atr=1.0, target_atr=5.0,
                                policy=hand_policy(exits=(2.0, 3.0)))
    client = InProcessModelClient(model_set)
    decision = client.decide(_signal(), features(atr_14=2.0, rsi_14=70.0))
    assert decision.stop_loss_price == pytest.approx(96.0)
    assert decision.take_profit_price == pytest.approx(106.0)


def test_bad_features_raise_a_validation_error_naming_the_feature() -> None:
    client = InProcessModelClient(FormulaModelSet())
    with pytest.raises(DataValidationError, match="rsi_14"):
        client.decide(_signal(), {k: v for k, v in features().items() if k != "rsi_14"})
    # The service's logic refuses a feature no model takes; the engine's clients send
    # only what the models take, so their rows may carry more.
    maker = DecisionMaker(lambda: ServedModels(FormulaModelSet()), ABRouter(RoutingConfig()))
    with pytest.raises(DataValidationError, match="volume_zscore"):
        maker.decide(_signal(), {**features(), "volume_zscore": 1.0})
    assert client.decide(_signal(), {**features(), "volume_zscore": 1.0}).win_probability


def test_a_model_answering_nan_is_unavailable_not_a_number() -> None:
    client = InProcessModelClient(FormulaModelSet(broken=True))
    with pytest.raises(ModelUnavailableError, match="signal_quality"):
        client.decide(_signal(), features())


def test_sticky_ab_routing_and_the_decision_log(tmp_path: Path) -> None:
    champion, challenger = FormulaModelSet("1"), FormulaModelSet("2", stop_atr=1.5)
    client = InProcessModelClient(
        champion, challenger, routing=RoutingConfig(challenger_share=0.3),
        decision_log=tmp_path / "decisions.db",
    )
    signals = _signals(1000)
    decisions = [client.decide(signal, features()) for signal in signals]
    again = [client.decide(signal, features()) for signal in signals[:50]]
    client.close()
    for signal, decision in zip(signals, decisions, strict=True):
        expected = "challenger" if bucket(signal.signal_id) < 0.3 else "champion"
        assert decision.variant == expected
        version = "2" if expected == "challenger" else "1"
        assert decision.model_versions["exit_optimizer"] == version
    share = sum(d.variant == "challenger" for d in decisions) / len(decisions)
    assert abs(share - 0.3) < 0.05
    # Same signal, same features, same models: same decision id (a retry is one decision).
    assert [d.decision_id for d in again] == [d.decision_id for d in decisions[:50]]
    log = read_decisions(tmp_path / "decisions.db")
    assert len(log) == 1000
    assert set(log["decision_id"]) == {d.decision_id for d in decisions}
    assert (log.groupby("variant").size()["challenger"] / 1000) == pytest.approx(share)


def test_shadow_mode_logs_the_challenger_but_acts_on_the_champion(tmp_path: Path) -> None:
    champion, challenger = FormulaModelSet("1"), FormulaModelSet("2", stop_atr=1.0)
    client = InProcessModelClient(
        champion, challenger, routing=RoutingConfig(challenger_share=0.0, shadow=True),
        decision_log=tmp_path / "decisions.db",
    )
    decisions = [client.decide(signal, features(atr_14=2.0)) for signal in _signals(20)]
    client.close()
    assert {d.variant for d in decisions} == {"champion"}
    assert {d.stop_loss_price for d in decisions} == {96.0}  # champion's 2 ATR, not 1
    log = read_decisions(tmp_path / "decisions.db")
    assert all(out["stop_loss_price"] == 98.0 for out in log["shadow_outputs"])
    assert all(v["signal_quality"] == "2" for v in log["shadow_model_versions"])


def test_a_broken_shadow_never_changes_the_answer(tmp_path: Path) -> None:
    client = InProcessModelClient(
        FormulaModelSet("1"), FormulaModelSet("2", broken=True),
        routing=RoutingConfig(challenger_share=0.0, shadow=True),
        decision_log=tmp_path / "decisions.db",
    )
    decision = client.decide(_signal(), features())
    client.close()
    assert decision.win_probability == pytest.approx(0.7)
    (shadow,) = read_decisions(tmp_path / "decisions.db")["shadow_outputs"]
    assert "signal_quality" in shadow["error"]


def test_atr_is_required_for_the_exits_even_when_no_model_takes_it() -> None:
    model_set = FormulaModelSet(features=["rsi_14", "return_5", "sent_mean_1d"])
    client = InProcessModelClient(model_set)
    decision = client.decide(_signal(), features(atr_14=1.0))
    assert decision.stop_loss_price == pytest.approx(98.0)
    with pytest.raises(DataValidationError, match="atr_14"):
        client.decide(_signal(), {k: v for k, v in features().items() if k != "atr_14"})
