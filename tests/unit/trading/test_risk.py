"""Each risk rule rejects what it must (each test fails when its rule is removed) and
lets through what it may."""

from __future__ import annotations

from datetime import date

import numpy as np

from core.types import Side
from trading.risk import Holding, Portfolio, Proposal, RiskConfig, RiskManager

EQUITY = 100_000.0


def portfolio(**holdings: Holding) -> Portfolio:
    return Portfolio(EQUITY, EQUITY, holdings)


def test_max_position_pct() -> None:
    risk = RiskManager(RiskConfig(max_position_pct=0.10))
    big = Proposal("AAA", Side.BUY, 101, 100.0)
    verdict = risk.check_order(big, portfolio())
    assert (verdict.accepted, verdict.rule) == (False, "max_position_pct")
    assert risk.check_order(Proposal("AAA", Side.BUY, 100, 100.0), portfolio()).accepted


def test_max_positions_counts_pending_entries() -> None:
    risk = RiskManager(RiskConfig(max_positions=2))
    full = Portfolio(
        EQUITY, EQUITY, {"A": Holding("A", 1, 10.0)}, pending={"B": Holding("B", 1, 10.0)}
    )
    verdict = risk.pre_trade("C", "unknown", full)
    assert (verdict.accepted, verdict.rule) == (False, "max_positions")
    assert risk.pre_trade("C", "unknown", portfolio(A=Holding("A", 1, 10.0))).accepted


def test_one_position_per_symbol() -> None:
    risk = RiskManager()
    verdict = risk.pre_trade("A", "unknown", portfolio(A=Holding("A", 1, 10.0)))
    assert verdict.rule == "already_positioned"


def test_daily_loss_halt_until_next_session() -> None:
    risk = RiskManager(RiskConfig(daily_loss_halt_pct=0.02))
    risk.start_session(date(2024, 1, 2), EQUITY)
    assert risk.pre_trade("A", "unknown", Portfolio(98_100.0, 98_100.0)).accepted
    verdict = risk.pre_trade("A", "unknown", Portfolio(97_900.0, 97_900.0))
    assert (verdict.accepted, verdict.rule) == (False, "daily_loss_halt")
    # Recovering inside the session does not lift the halt...
    assert not risk.pre_trade("A", "unknown", Portfolio(99_000.0, 99_000.0)).accepted
    # ...the next session does.
    risk.start_session(date(2024, 1, 3), 99_000.0)
    assert risk.pre_trade("A", "unknown", Portfolio(99_000.0, 99_000.0)).accepted


def test_buying_power_less_pending_reservations() -> None:
    risk = RiskManager(RiskConfig(max_position_pct=1.0, max_sector_pct=1.0))
    book = Portfolio(EQUITY, 20_000.0, {}, pending={"B": Holding("B", 100, 150.0)})
    verdict = risk.check_order(Proposal("A", Side.BUY, 60, 100.0), book)  # 6,000 > 5,000
    assert (verdict.accepted, verdict.rule) == (False, "buying_power")
    assert risk.check_order(Proposal("A", Side.BUY, 50, 100.0), book).accepted


def test_sector_exposure() -> None:
    risk = RiskManager(RiskConfig(max_sector_pct=0.40, max_position_pct=1.0))
    tech = {
        s: Holding(s, 100, 100.0, "Information Technology") for s in ("A", "B", "C")
    }  # 30% of equity in tech
    book = Portfolio(EQUITY, EQUITY, tech)
    verdict = risk.check_order(Proposal("D", Side.BUY, 101, 100.0, "Information Technology"), book)
    assert (verdict.accepted, verdict.rule) == (False, "sector_exposure")
    assert risk.check_order(
        Proposal("D", Side.BUY, 100, 100.0, "Information Technology"), book
    ).accepted
    assert risk.check_order(Proposal("D", Side.BUY, 101, 100.0, "Energy"), book).accepted
    full = Portfolio(
        EQUITY, EQUITY, {**tech, "D": Holding("D", 100, 100.0, "Information Technology")}
    )
    assert risk.pre_trade("E", "Information Technology", full).rule == "sector_exposure"


def test_correlation_with_open_positions() -> None:
    risk = RiskManager(RiskConfig(max_correlation=0.7))
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, 60)
    series = {
        "OPEN": base,
        "TWIN": base * 1.1 + rng.normal(0, 0.002, 60),
        "OTHER": rng.normal(0, 0.01, 60),
    }
    book = portfolio(OPEN=Holding("OPEN", 10, 100.0))
    verdict = risk.pre_trade("TWIN", "unknown", book, series.get)
    assert (verdict.accepted, verdict.rule) == (False, "correlation")
    assert risk.pre_trade("OTHER", "unknown", book, series.get).accepted
