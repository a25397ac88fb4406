"""The risk rules through the engine: the engine passes each symbol's real sector, counts
its pending entries, and the default limits hold at their boundaries (real matching
engine, real risk manager, default configs)."""

from __future__ import annotations

import numpy as np
import pytest

from core.clock import ReplayClock
from core.settings import load_settings
from core.types import Side
from features.sectors import sector_of
from trading.backtest import build_engine
from trading.journal import Journal

from .helpers import FixedModelClient, Harness, session
from .test_risk_boundaries import TECH, correlated

TENTH = 0.10  # of equity per entry: 10,000 at 100 on 100,000


def _tech_harness() -> Harness:
    sectors = {s: TECH for s in ("A", "B", "C", "D", "E")} | {"F": "Energy"}
    return Harness(model=FixedModelClient(0.9, size_fraction=TENTH), sectors=sectors)


def _signal(h: Harness, symbol: str, n: int = 0) -> None:
    h.bar(n, 100, 101, 99, 100, symbol=symbol, signal=Side.BUY)


def _entered(h: Harness) -> list[str]:  # the journal's order is not the signals' order
    decisions = h.journal.decisions()
    return sorted(decisions.loc[decisions["action"] == "entered", "symbol"])


def test_pending_entries_of_one_sector_stop_the_next_at_40_percent() -> None:
    h = _tech_harness()
    for symbol in ("A", "B", "C", "D", "E", "F"):
        _signal(h, symbol)  # all on one bar: none filled, all pending
    assert _entered(h) == ["A", "B", "C", "D", "F"]
    rejections = h.journal.rejections()
    assert list(rejections["symbol"]) == ["E"]
    assert list(rejections["rule"]) == ["sector_exposure"]
    assert f"sector {TECH} already holds 40.0%" in rejections.loc[0, "reason"]


def test_filled_positions_of_one_sector_stop_the_next_at_40_percent() -> None:
    h = _tech_harness()
    for symbol in ("A", "B", "C", "D"):
        _signal(h, symbol)
    for symbol in ("A", "B", "C", "D"):
        h.bar(1, 100, 100.5, 99.5, 100, symbol=symbol)
    assert {p.symbol for p in h.broker.positions()} == {"A", "B", "C", "D"}
    _signal(h, "E", n=1)
    assert list(h.journal.rejections()["rule"]) == ["sector_exposure"]


def test_a_sized_order_that_would_pass_the_sector_cap_is_refused() -> None:
    h = _tech_harness()
    for symbol in ("A", "B", "C"):
        _signal(h, symbol)
    h.engine.sizer.config = h.engine.sizer.config.model_copy(update={"max_position_pct": 0.2})
    h.engine.risk.config = h.engine.risk.config.model_copy(update={"max_position_pct": 0.2})
    h.engine.model_client = FixedModelClient(0.9, size_fraction=0.11)
    _signal(h, "D")  # 30% + 11% > 40%
    rejected = h.journal.rejections()
    assert list(rejected["rule"]) == ["sector_exposure"]
    assert f"sector {TECH} would hold 41.0%" in rejected.loc[0, "reason"]


@pytest.mark.parametrize(("rho", "entered"), [(0.65, True), (0.75, False)])
def test_correlation_with_an_open_position_at_the_default_limit(
    rho: float, entered: bool
) -> None:
    h = Harness(model=FixedModelClient(0.9, size_fraction=0.05))
    opened, candidate = correlated(rho)
    h.feed.returns = {"AAA": opened, "BBB": candidate}
    _signal(h, "AAA")
    h.bar(1, 100, 101, 99.5, 100.5)
    h.bar(1, 50, 51, 49, 50, symbol="BBB", signal=Side.BUY)
    assert ("BBB" in _entered(h)) is entered
    assert list(h.journal.rejections()["rule"]) == ([] if entered else ["correlation"])


def test_the_backtest_engine_knows_each_symbols_sector() -> None:
    settings = load_settings()
    engine, _ = build_engine(
        settings=settings, clock=ReplayClock(session(0)), feed=None,  # type: ignore[arg-type]
        strategy=None, model_client=None, journal=Journal("sqlite://"), gate_enabled=True,
        trade_sink=None, exchange=None,
    )
    assert sector_of("AAPL") == TECH
    assert engine._sector_of("AAPL") == TECH
    assert engine._sector_of("XOM") == "Energy"
    assert np.isclose(engine.risk.config.max_sector_pct, 0.40)
