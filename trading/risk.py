"""The risk manager: every entry passes here before any order leaves the engine.

Rules (each rejection names its rule and says why, and the engine journals it):
- `paused` — an operator paused new entries (`pause`/`resume`, from the engine's API).
- `daily_loss_halt` — the circuit breaker. Once equity is down `daily_loss_halt_pct`
  (2%) from the session's baseline, no new entry until the next session. Exits never
  pass through here, so they keep working. The baseline is the equity the driver passes
  to `start_session`, unless a `SessionLedger` knows better: live, the previous
  session's closing equity (the broker's `last_equity`, else the journal's last mark),
  persisted with the halt itself so a restart neither resets the baseline nor lifts the
  halt.
- `max_positions` — open positions plus pending entries.
- `already_positioned` — one position (or pending entry) per symbol.
- `max_position_pct` — the position's value (existing + new) ≤ 10% of equity.
- `buying_power` — the order's cost ≤ buying power less what pending entries reserve.
- `sector_exposure` — a sector's value after the order ≤ 40% of equity (symbols of
  unknown sector are their own sector).
- `correlation` — the Pearson correlation of the candidate's trailing returns with any
  open position's ≤ 0.7 (when both have enough history).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.settings import RiskSettings
from core.types import Side

UNKNOWN_SECTOR = "unknown"
PAUSE_RULE = "paused"
HALT_RULE = "daily_loss_halt"


class RiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_pct: float = Field(0.10, gt=0, le=1)
    max_positions: int = Field(10, ge=1)
    daily_loss_halt_pct: float = Field(0.02, gt=0, le=1)
    max_sector_pct: float = Field(0.40, gt=0, le=1)
    max_correlation: float = Field(0.70, gt=0, le=1)
    correlation_window: int = Field(60, ge=5)
    min_correlation_overlap: int = Field(20, ge=3)

    @classmethod
    def from_settings(cls, risk: RiskSettings, **overrides: object) -> RiskConfig:
        values: dict[str, object] = {
            "max_position_pct": risk.max_position_pct,
            "max_positions": risk.max_positions,
            "daily_loss_halt_pct": risk.daily_loss_halt_pct,
            "max_sector_pct": risk.max_sector_pct,
            "max_correlation": risk.max_correlation,
        }
        values.update(overrides)
        return cls.model_validate(values)


@dataclass(frozen=True, slots=True)
class Holding:
    """An open position (or pending entry) as the risk manager sees it."""

    symbol: str
    qty: float  # signed
    price: float
    sector: str = UNKNOWN_SECTOR

    @property
    def value(self) -> float:
        return abs(self.qty) * self.price


@dataclass(frozen=True, slots=True)
class Portfolio:
    equity: float
    buying_power: float
    holdings: Mapping[str, Holding] = field(default_factory=dict)
    pending: Mapping[str, Holding] = field(default_factory=dict)  # entries not yet filled


@dataclass(frozen=True, slots=True)
class Proposal:
    symbol: str
    side: Side
    qty: float
    price: float
    sector: str = UNKNOWN_SECTOR


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    rule: str = ""
    reason: str = ""


ACCEPT = Verdict(True)

# symbol → its trailing simple returns up to now (oldest first), or None when unknown.
ReturnsLookup = Callable[[str], np.ndarray | None]


class SessionLedger(Protocol):
    """Where a live engine keeps each session's baseline and halt (see the module doc)."""

    def opening_equity(self, session: date, observed: float) -> float:
        """The session's baseline: the one recorded earlier, else the best source now
        (recorded from then on); `observed` is the equity the driver sees."""
        ...

    def halt_of(self, session: date) -> str | None:
        """Why the session was halted, or None."""
        ...

    def record_halt(self, session: date, reason: str) -> None: ...


class RiskManager:
    def __init__(
        self, config: RiskConfig | None = None, *, ledger: SessionLedger | None = None
    ) -> None:
        self.config = config or RiskConfig()
        self.ledger = ledger
        self._session: date | None = None
        self._session_start_equity: float | None = None
        self._halted_session: date | None = None
        self._halt_reason: str | None = None
        self._paused: str | None = None  # why new entries are paused, None when not

    # ------------------------------------------------------------------ pause
    def pause(self, reason: str) -> None:
        """No new entry until `resume` (exits and stops are not affected)."""
        self._paused = reason

    def resume(self) -> None:
        self._paused = None

    @property
    def paused(self) -> str | None:
        return self._paused

    # ------------------------------------------------------------------ circuit breaker
    def start_session(self, session: date, equity: float) -> None:
        """Called at the first bar of each session: the daily loss is measured from the
        session's baseline, and a halt from an earlier session is lifted (a halt of this
        session recorded by the ledger stays)."""
        if session == self._session:
            return
        self._session = session
        if self.ledger is None:
            self._session_start_equity = equity
            return
        self._session_start_equity = self.ledger.opening_equity(session, equity)
        reason = self.ledger.halt_of(session)
        if reason is not None:
            self._halted_session, self._halt_reason = session, reason

    def update_equity(self, equity: float) -> None:
        """Trip the breaker when the session's loss reaches the limit."""
        start = self._session_start_equity
        if start is None or start <= 0 or self._halted_session == self._session:
            return
        if equity / start - 1.0 <= -self.config.daily_loss_halt_pct:
            self._halted_session = self._session
            self._halt_reason = (
                f"equity {equity:,.2f} is down {1 - equity / start:.2%} from the session's "
                f"baseline {start:,.2f} (limit {self.config.daily_loss_halt_pct:.2%})"
            )
            if self.ledger is not None and self._session is not None:
                self.ledger.record_halt(self._session, self._halt_reason)

    @property
    def halted(self) -> bool:
        return self._halted_session is not None and self._halted_session == self._session

    @property
    def halt_reason(self) -> str | None:
        return self._halt_reason if self.halted else None

    @property
    def session(self) -> date | None:
        return self._session

    @property
    def session_start_equity(self) -> float | None:
        return self._session_start_equity

    # ------------------------------------------------------------------ rules
    def pre_trade(
        self, symbol: str, sector: str, portfolio: Portfolio, returns: ReturnsLookup | None = None
    ) -> Verdict:
        """The checks that need no size: breaker, position count, duplicates, sector at
        its cap already, correlation. Run before asking the models anything."""
        c = self.config
        if self._paused is not None:
            return Verdict(False, PAUSE_RULE, f"new entries are paused ({self._paused})")
        self.update_equity(portfolio.equity)
        if self.halted:
            start = self._session_start_equity or 0.0
            return Verdict(
                False,
                HALT_RULE,
                f"equity {portfolio.equity:,.2f} is down {1 - portfolio.equity / start:.2%} "
                f"from the session's baseline {start:,.2f} (limit "
                f"{c.daily_loss_halt_pct:.0%}); no new entries until the next session",
            )
        if symbol in portfolio.holdings or symbol in portfolio.pending:
            return Verdict(False, "already_positioned", f"{symbol} already has a position or order")
        count = len(portfolio.holdings) + len(portfolio.pending)
        if count >= c.max_positions:
            return Verdict(
                False, "max_positions", f"{count} positions/entries open, limit {c.max_positions}"
            )
        sector_value = self._sector_value(sector, portfolio)
        if sector != UNKNOWN_SECTOR and sector_value >= c.max_sector_pct * portfolio.equity:
            return Verdict(
                False,
                "sector_exposure",
                f"sector {sector} already holds {sector_value / portfolio.equity:.1%} of equity "
                f"(limit {c.max_sector_pct:.0%})",
            )
        if returns is not None:
            verdict = self._correlation(symbol, portfolio, returns)
            if not verdict.accepted:
                return verdict
        return ACCEPT

    def check_order(self, proposal: Proposal, portfolio: Portfolio) -> Verdict:
        """The checks on the sized order: position size, buying power, sector after it."""
        c = self.config
        value = proposal.qty * proposal.price
        existing = portfolio.holdings.get(proposal.symbol)
        position_value = value + (existing.value if existing else 0.0)
        if position_value > c.max_position_pct * portfolio.equity + 1e-6:
            return Verdict(
                False,
                "max_position_pct",
                f"{proposal.symbol} position {position_value:,.2f} would be "
                f"{position_value / portfolio.equity:.1%} of equity "
                f"(limit {c.max_position_pct:.0%})",
            )
        reserved = sum(h.value for h in portfolio.pending.values())
        available = portfolio.buying_power - reserved
        if value > available + 1e-6:
            return Verdict(
                False,
                "buying_power",
                f"order needs {value:,.2f}, buying power {portfolio.buying_power:,.2f} less "
                f"{reserved:,.2f} reserved by pending entries leaves {available:,.2f}",
            )
        if proposal.sector != UNKNOWN_SECTOR:
            after = self._sector_value(proposal.sector, portfolio) + value
            if after > c.max_sector_pct * portfolio.equity + 1e-6:
                return Verdict(
                    False,
                    "sector_exposure",
                    f"sector {proposal.sector} would hold {after / portfolio.equity:.1%} of "
                    f"equity (limit {c.max_sector_pct:.0%})",
                )
        return ACCEPT

    @staticmethod
    def _sector_value(sector: str, portfolio: Portfolio) -> float:
        total = 0.0
        for group in (portfolio.holdings, portfolio.pending):
            for holding in group.values():
                if holding.sector == sector:
                    total += holding.value
        return total

    def _correlation(self, symbol: str, portfolio: Portfolio, returns: ReturnsLookup) -> Verdict:
        c = self.config
        others = [*portfolio.holdings, *portfolio.pending]
        if not others:
            return ACCEPT
        candidate = returns(symbol)
        if candidate is None:
            return ACCEPT
        candidate = candidate[-c.correlation_window :]
        for other in others:
            series = returns(other)
            if series is None:
                continue
            n = min(len(candidate), len(series), c.correlation_window)
            if n < c.min_correlation_overlap:
                continue
            rho = _pearson(candidate[-n:], series[-n:], c.min_correlation_overlap)
            if rho is None:
                continue
            if rho > c.max_correlation:
                return Verdict(
                    False,
                    "correlation",
                    f"{symbol} returns correlate {rho:.2f} with open {other} over {n} bars "
                    f"(limit {c.max_correlation:.2f})",
                )
        return ACCEPT


_ADD = np.add.reduce


def _pearson(a: np.ndarray, b: np.ndarray, min_overlap: int) -> float | None:
    """Pearson correlation over the bars where both have a return, or None when too few
    or one series is flat. Written out: np.corrcoef's generality costs 10x here."""
    ok = ~(np.isnan(a) | np.isnan(b))
    count = int(np.count_nonzero(ok))
    if count < min_overlap:
        return None
    x, y = a[ok], b[ok]
    # The mean as ndarray.mean computes it (the same sum, divided by the count), without
    # its Python wrapper: this runs for every open position on every candidate signal.
    x = x - _ADD(x) / count
    y = y - _ADD(y) / count
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    if denominator == 0:
        return None
    return float(x @ y) / denominator
