"""Every risk default pinned with its settings mapping, and each rule at its boundary:
the limit itself passes, a hair beyond it is refused (each test fails when the limit is
moved or the comparison loosened or tightened)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from core.settings import RiskSettings
from core.types import Side
from trading.risk import (
    UNKNOWN_SECTOR,
    Holding,
    Portfolio,
    Proposal,
    RiskConfig,
    RiskManager,
    _pearson,
)

EQUITY = 100_000.0
TECH = "Information Technology"


def correlated(rho: float, n: int = 60, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Two return series whose Pearson correlation is `rho` to float precision."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    x = (x - x.mean()) / x.std()
    y = y - y.mean()
    y = y - (x @ y) / (x @ x) * x  # orthogonal to x
    y = y / y.std()
    return 0.01 * x, 0.01 * (rho * x + np.sqrt(1 - rho**2) * y)


def tech(*symbols: str, value: float = 10_000.0) -> dict[str, Holding]:
    return {s: Holding(s, value / 100.0, 100.0, TECH) for s in symbols}


def test_risk_defaults_are_pinned() -> None:
    assert RiskConfig().model_dump() == {
        "max_position_pct": 0.10,
        "max_positions": 10,
        "daily_loss_halt_pct": 0.02,
        "max_sector_pct": 0.40,
        "max_correlation": 0.70,
        "correlation_window": 60,
        "min_correlation_overlap": 20,
    }
    settings = RiskSettings()
    assert (
        settings.max_position_pct, settings.max_positions, settings.daily_loss_halt_pct,
        settings.max_sector_pct, settings.max_correlation,
    ) == (0.10, 10, 0.02, 0.40, 0.70)
    assert RiskConfig.from_settings(settings) == RiskConfig()


def test_every_risk_setting_maps_to_its_rule() -> None:
    settings = RiskSettings(
        max_position_pct=0.11, max_positions=7, daily_loss_halt_pct=0.03,
        max_sector_pct=0.33, max_correlation=0.55,
    )
    config = RiskConfig.from_settings(settings, correlation_window=40)
    assert (
        config.max_position_pct, config.max_positions, config.daily_loss_halt_pct,
        config.max_sector_pct, config.max_correlation, config.correlation_window,
    ) == (0.11, 7, 0.03, 0.33, 0.55, 40)
    with pytest.raises(ValueError, match="extra"):
        RiskConfig.from_settings(settings, max_leverage=2.0)


def test_max_position_pct_boundary_counts_the_existing_position() -> None:
    risk = RiskManager()
    empty = Portfolio(EQUITY, EQUITY)
    assert risk.check_order(Proposal("A", Side.BUY, 100, 100.0), empty).accepted  # 10.0%
    assert risk.check_order(Proposal("A", Side.BUY, 100.01, 100.0), empty).rule == (
        "max_position_pct")
    held = Portfolio(EQUITY, EQUITY, {"A": Holding("A", 50, 100.0)})
    assert risk.check_order(Proposal("A", Side.BUY, 50, 100.0), held).accepted
    assert risk.check_order(Proposal("A", Side.BUY, 51, 100.0), held).rule == "max_position_pct"


def test_max_positions_boundary() -> None:
    risk = RiskManager()
    nine = {f"S{i}": Holding(f"S{i}", 1, 10.0) for i in range(9)}
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, Portfolio(EQUITY, EQUITY, nine)).accepted
    ten = Portfolio(EQUITY, EQUITY, nine, pending={"P": Holding("P", 1, 10.0)})
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, ten).rule == "max_positions"


def test_already_positioned_covers_pending_entries() -> None:
    book = Portfolio(EQUITY, EQUITY, pending={"A": Holding("A", 1, 10.0)})
    assert RiskManager().pre_trade("A", UNKNOWN_SECTOR, book).rule == "already_positioned"


def test_daily_loss_halt_boundary() -> None:
    risk = RiskManager()
    risk.start_session(date(2024, 1, 2), EQUITY)
    assert risk.pre_trade("A", UNKNOWN_SECTOR, Portfolio(98_000.01, EQUITY)).accepted
    assert risk.pre_trade("A", UNKNOWN_SECTOR, Portfolio(98_000.0, EQUITY)).rule == (
        "daily_loss_halt")


def test_buying_power_boundary() -> None:
    risk = RiskManager(RiskConfig(max_position_pct=1.0, max_sector_pct=1.0))
    book = Portfolio(EQUITY, 20_000.0, pending={"B": Holding("B", 100, 150.0)})
    assert risk.check_order(Proposal("A", Side.BUY, 50, 100.0), book).accepted  # 5,000 left
    assert risk.check_order(Proposal("A", Side.BUY, 50.01, 100.0), book).rule == "buying_power"


def test_sector_limit_is_40_percent_after_the_order() -> None:
    risk = RiskManager(RiskConfig(max_position_pct=1.0))
    book = Portfolio(EQUITY, EQUITY, tech("A", "B", "C"))  # 30% in tech
    assert risk.check_order(Proposal("D", Side.BUY, 100, 100.0, TECH), book).accepted  # 40%
    refused = risk.check_order(Proposal("D", Side.BUY, 100.01, 100.0, TECH), book)
    assert (refused.rule, refused.accepted) == ("sector_exposure", False)
    assert "limit 40%" in refused.reason
    # Another sector, and symbols of unknown sector, are not summed with tech.
    assert risk.check_order(Proposal("D", Side.BUY, 400, 100.0, "Energy"), book).accepted
    assert risk.check_order(Proposal("D", Side.BUY, 500, 100.0), book).accepted


def test_a_sector_at_its_cap_is_refused_before_sizing() -> None:
    risk = RiskManager()
    below = Portfolio(EQUITY, EQUITY, tech("A", "B", "C", value=13_333.0))
    assert risk.pre_trade("D", TECH, below).accepted
    full = Portfolio(EQUITY, EQUITY, tech("A", "B", "C", "D"))  # exactly 40%
    assert risk.pre_trade("E", TECH, full).rule == "sector_exposure"
    assert risk.pre_trade("E", "Energy", full).accepted


def test_pending_entries_count_in_the_sector_sum() -> None:
    risk = RiskManager(RiskConfig(max_position_pct=1.0))
    book = Portfolio(EQUITY, EQUITY, tech("A", "B"), pending=tech("C"))  # 20% + 10% pending
    assert risk.check_order(Proposal("D", Side.BUY, 101, 100.0, TECH), book).rule == (
        "sector_exposure")
    assert risk.check_order(Proposal("D", Side.BUY, 100, 100.0, TECH), book).accepted
    pending_only = Portfolio(EQUITY, EQUITY, pending=tech("A", "B", "C", "D"))
    assert risk.pre_trade("E", TECH, pending_only).rule == "sector_exposure"


def test_correlation_limit_is_0_70() -> None:
    risk = RiskManager()
    book = Portfolio(EQUITY, EQUITY, {"OPEN": Holding("OPEN", 10, 100.0)})
    for rho, accepted in ((0.69, True), (0.71, False), (0.80, False), (-0.90, True)):
        opened, candidate = correlated(rho)
        returns = {"OPEN": opened, "NEW": candidate}
        verdict = risk.pre_trade("NEW", UNKNOWN_SECTOR, book, returns.get)
        assert verdict.accepted is accepted, rho
        if not accepted:
            assert verdict.rule == "correlation"
            assert f"correlate {rho:.2f}" in verdict.reason


def test_a_correlation_equal_to_the_limit_passes() -> None:
    opened, candidate = correlated(0.75)
    rho = _pearson(candidate, opened, 20)
    assert rho == pytest.approx(0.75)
    book = Portfolio(EQUITY, EQUITY, pending={"OPEN": Holding("OPEN", 10, 100.0)})
    returns = {"OPEN": opened, "NEW": candidate}
    assert RiskManager(RiskConfig(max_correlation=rho)).pre_trade(
        "NEW", UNKNOWN_SECTOR, book, returns.get).accepted
    assert RiskManager(RiskConfig(max_correlation=rho - 1e-9)).pre_trade(
        "NEW", UNKNOWN_SECTOR, book, returns.get).rule == "correlation"


def test_correlation_reads_the_trailing_window_and_needs_enough_overlap() -> None:
    risk = RiskManager()
    book = Portfolio(EQUITY, EQUITY, {"OPEN": Holding("OPEN", 10, 100.0)})
    opened, candidate = correlated(0.95, n=60)
    # Older, uncorrelated history before the 60-bar window does not dilute it.
    noise = np.random.default_rng(9).normal(0, 0.01, (2, 200))
    returns = {
        "OPEN": np.r_[noise[0], opened], "NEW": np.r_[-noise[0] * 3 + noise[1], candidate]
    }
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, book, returns.get).rule == "correlation"
    short_open, short_new = correlated(0.95, n=20)
    assert risk.pre_trade(
        "NEW", UNKNOWN_SECTOR, book, {"OPEN": short_open, "NEW": short_new}.get
    ).rule == "correlation"
    too_short = {"OPEN": short_open[1:], "NEW": short_new[1:]}  # 19 < 20 bars
    assert risk.pre_trade("NEW", UNKNOWN_SECTOR, book, too_short.get).accepted
