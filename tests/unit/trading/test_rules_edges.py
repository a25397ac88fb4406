"""Edges of the rules the boundary tests do not reach: the correlation's arithmetic on
drifting and gappy series, the operator's pause and resume, streaks that a win or a loss
breaks, and the engine's count of its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from core.types import Side
from trading.risk import UNKNOWN_SECTOR, Portfolio, RiskManager, _pearson
from trading.sizing import SizingConfig, StreakTracker
from trading.stops import TrailingStop

from .helpers import FixedModelClient, Harness
from .test_risk_boundaries import TECH, correlated


def test_pearson_ignores_drift_and_scale_and_reads_only_common_bars() -> None:
    a, b = correlated(0.8)
    assert _pearson(a, b, 20) == pytest.approx(0.8)
    assert _pearson(a + 0.05, 3 * b - 0.02, 20) == pytest.approx(0.8)  # drifting series
    gappy_a, gappy_b = a.copy(), b.copy()
    gappy_a[:5], gappy_b[5:10] = np.nan, np.nan
    expected = float(np.corrcoef(a[10:], b[10:])[0, 1])
    assert _pearson(gappy_a, gappy_b, 20) == pytest.approx(expected)
    assert _pearson(gappy_a, gappy_b, 51) is None  # 50 common bars < 51
    assert _pearson(np.zeros(60), b, 20) is None  # a flat series has no correlation


def test_pause_blocks_new_entries_with_its_reason_until_resume() -> None:
    risk = RiskManager()
    book = Portfolio(100_000.0, 100_000.0)
    risk.pause("operator: earnings week")
    verdict = risk.pre_trade("A", UNKNOWN_SECTOR, book)
    assert (verdict.accepted, verdict.rule) == (False, "paused")
    assert verdict.reason == "new entries are paused (operator: earnings week)"
    assert risk.paused == "operator: earnings week"
    risk.resume()
    assert risk.paused is None
    assert risk.pre_trade("A", UNKNOWN_SECTOR, book).accepted


@pytest.mark.parametrize(("first", "then"), [(False, True), (True, False)])
def test_a_win_breaks_a_losing_streak_and_a_loss_a_winning_one(first: bool, then: bool) -> None:
    streak = StreakTracker(SizingConfig(loss_streak=3, win_streak=3))
    for outcome in (first, first, then, first, first):  # two, broken, two again
        streak.record(outcome)
    assert (streak.wins, streak.losses) == ((2, 0) if first else (0, 2))
    assert streak.multiplier == 1.0


def test_the_engine_counts_its_refusals_by_rule_and_category() -> None:
    sectors = dict.fromkeys(("A", "B", "C", "D", "E", "F"), TECH)
    h = Harness(model=FixedModelClient(0.9, size_fraction=0.10), sectors=sectors)
    for symbol in ("A", "B", "C", "D", "E", "F"):
        h.bar(0, 100, 101, 99, 100, symbol=symbol, signal=Side.BUY)
    assert h.engine.stats.risk_rejected == 2
    assert h.engine.stats.rejections_by_rule == {"sector_exposure": 2}
    assert h.engine.stats.refusals == {"risk": 2}
    assert h.engine.stats.entries == 4
    refused = h.journal.decisions().set_index("symbol").loc[["E", "F"]]
    assert set(refused["category"]) == {"risk"}
    assert set(refused["variant"]) == {"challenger"}  # the policy's decision is kept
    assert set(refused["win_probability"]) == {0.9}


def test_a_trailing_stop_never_moves_to_zero_and_works_on_penny_stocks() -> None:
    stop = TrailingStop(atr_multiple=2.0)
    assert stop.tighten(Side.BUY, 0.1, 2.0, 1.0) is None  # the level would be 0
    assert stop.tighten(Side.BUY, 0.1, 2.5, 1.0) == pytest.approx(0.5)
    assert stop.tighten(Side.BUY, 0.5, 0.8, 0.1) == pytest.approx(0.6)  # a price below 1
    assert stop.tighten(Side.BUY, 0.5, 0.0, 0.1) is None


def test_each_refusal_says_why_in_numbers() -> None:
    from datetime import date

    from trading.risk import Holding, Proposal

    risk = RiskManager()
    book = Portfolio(100_000.0, 20_000.0, pending={"P": Holding("P", 100, 150.0)})
    too_big = risk.check_order(Proposal("A", Side.BUY, 101, 100.0), book)
    assert (too_big.accepted, too_big.reason) == (
        False, "A position 10,100.00 would be 10.1% of equity (limit 10%)")
    short = risk.check_order(Proposal("A", Side.BUY, 51, 100.0), book)
    assert short.reason == ("order needs 5,100.00, buying power 20,000.00 less 15,000.00 "
                            "reserved by pending entries leaves 5,000.00")
    held = risk.pre_trade("P", UNKNOWN_SECTOR, book)
    assert (held.accepted, held.reason) == (False, "P already has a position or order")
    risk.start_session(date(2024, 1, 2), 100_000.0)
    halted = risk.pre_trade("A", UNKNOWN_SECTOR, Portfolio(97_000.0, 97_000.0))
    assert halted.reason == ("equity 97,000.00 is down 3.00% from the session's baseline "
                             "100,000.00 (limit 2%); no new entries until the next session")
    assert risk.halt_reason == ("equity 97,000.00 is down 3.00% from the session's baseline "
                                "100,000.00 (limit 2.00%)")


def test_a_halt_is_recorded_in_the_ledger_of_its_session() -> None:
    from datetime import date

    class Ledger:
        def __init__(self) -> None:
            self.halts: list[tuple[date, str]] = []

        def opening_equity(self, session: date, observed: float) -> float:
            return 100_000.0

        def halt_of(self, session: date) -> str | None:
            return None

        def record_halt(self, session: date, reason: str) -> None:
            self.halts.append((session, reason))

    ledger = Ledger()
    risk = RiskManager(ledger=ledger)
    risk.start_session(date(2024, 1, 2), 99_000.0)  # the ledger's baseline wins
    risk.update_equity(98_500.0)
    assert ledger.halts == []
    risk.update_equity(97_900.0)
    assert ledger.halts == [(date(2024, 1, 2), risk.halt_reason)]
    risk.update_equity(97_000.0)  # recorded once per session
    assert len(ledger.halts) == 1


def test_correlation_checks_every_open_position_on_their_common_bars() -> None:
    from trading.risk import Holding

    risk = RiskManager()
    opened, candidate = correlated(0.9)
    book = Portfolio(100_000.0, 100_000.0, {"NODATA": Holding("NODATA", 1, 10.0),
                                            "SHORT": Holding("SHORT", 1, 10.0),
                                            "OPEN": Holding("OPEN", 1, 10.0)})
    returns = {"NEW": candidate, "SHORT": opened[-10:], "OPEN": opened}  # NODATA: unknown
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, book, returns.get).rule == "correlation"
    longer = {"NEW": candidate[-30:], "OPEN": opened}  # the candidate's history is shorter
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, book, longer.get).rule == "correlation"


def test_no_size_without_a_positive_price_and_equity() -> None:
    from trading.sizing import PositionSizer, SizeRequest, SizeResult

    for request in (SizeRequest(100_000.0, 0.0, 0.05), SizeRequest(0.0, 100.0, 0.05)):
        assert PositionSizer().size(request) == SizeResult(
            0, 0.0, 1.0, "price or equity not positive")
