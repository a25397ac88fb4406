"""The decision logic shared by the service and the in-process client."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import DataValidationError, ModelUnavailableError
from core.types import Regime, Side, Signal
from serving.decision import DecisionMaker, ServedModels
from serving.decision_log import read_decisions
from serving.inprocess import InProcessModelClient
from serving.predictor import exit_prices
from serving.router import ABRouter, RoutingConfig, bucket
from serving.schemas import OutOfDistributionError
from tests.unit.serving.fakes import FormulaModelSet, features


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


def test_out_of_distribution_decisions_go_to_the_engines_fallback() -> None:
    with pytest.raises(OutOfDistributionError) as caught:
        InProcessModelClient(FormulaModelSet()).decide(_signal(), features(rsi_14=99.5))
    assert isinstance(caught.value, ModelUnavailableError)
    assert caught.value.decision.out_of_distribution
    assert caught.value.decision.decision_id in str(caught.value)
    flagged = InProcessModelClient(FormulaModelSet(), ood_fallback=False).decide(
        _signal(), features(rsi_14=99.5)
    )
    assert flagged.out_of_distribution


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
