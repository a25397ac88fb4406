"""Domain types shared by every package: bars, signals, orders, fills, positions,
closed trades, model decisions, the market clock and the naming of bracket legs. Plain
frozen dataclasses: cheap on the engine's hot path, hashable, and free of I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

BAR_COLUMNS: tuple[str, ...] = ("symbol", "timestamp", "open", "high", "low", "close", "volume")


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class OrderClass(StrEnum):
    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REPLACED = "replaced"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class BracketLeg(StrEnum):
    """The two exit legs of a bracket entry. Every venue names them `<entry id><suffix>`
    (`tw-abc-tp`, `tw-abc-sl`), so the engine knows a fill's exit reason by its order id."""

    TAKE_PROFIT = "-tp"
    STOP_LOSS = "-sl"

    def leg_id(self, entry_id: str) -> str:
        """The client order id of this leg of the entry `entry_id`."""
        return entry_id + self.value

    @classmethod
    def of(cls, client_order_id: str) -> BracketLeg | None:
        """Which leg `client_order_id` names, or None for an entry or a plain order."""
        for leg in cls:
            if client_order_id.endswith(leg.value):
                return leg
        return None

    @classmethod
    def entry_id(cls, client_order_id: str) -> str | None:
        """The entry a leg id belongs to, or None when the id names no leg."""
        leg = cls.of(client_order_id)
        return None if leg is None else client_order_id[: -len(leg.value)]


class Regime(StrEnum):
    TRENDING = "trending"
    RANGING = "ranging"
    VOLATILE = "volatile"
    CALM = "calm"


@dataclass(frozen=True, slots=True)
class MarketClock:
    """The market's state at a moment, as a broker's clock reports it."""

    timestamp: datetime
    is_open: bool
    next_open: datetime | None
    next_close: datetime | None


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's wish to enter a position. Strategies emit these; they never trade."""

    symbol: str
    side: Side
    timestamp: datetime
    strategy: str
    price: float
    reason: str = ""

    @property
    def signal_id(self) -> str:
        """Stable identity of the signal: the same signal hashes the same everywhere."""
        key = f"{self.symbol}|{self.side.value}|{self.timestamp.isoformat()}|{self.strategy}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Order:
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit_price: float | None = None
    stop_loss_price: float | None = None
    status: OrderStatus = OrderStatus.NEW
    broker_order_id: str | None = None
    parent_client_order_id: str | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    timestamp: datetime
    commission: float = 0.0


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: float  # signed: positive long, negative short
    avg_entry_price: float
    market_price: float | None = None

    @property
    def market_value(self) -> float:
        price = self.market_price if self.market_price is not None else self.avg_entry_price
        return self.qty * price


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip: entry fill(s) to exit fill(s)."""

    trade_id: str
    symbol: str
    side: Side
    qty: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    strategy: str
    exit_reason: str
    commission: float = 0.0
    max_favorable_excursion: float = 0.0  # best unrealised price move, in price units per share
    max_adverse_excursion: float = 0.0  # worst unrealised price move, positive, per share
    decision_id: str | None = None

    @property
    def pnl(self) -> float:
        return self.side.sign * (self.exit_price - self.entry_price) * self.qty - self.commission

    @property
    def return_pct(self) -> float:
        gross = self.side.sign * (self.exit_price - self.entry_price) / self.entry_price
        return gross - self.commission / (self.entry_price * self.qty)

    @property
    def is_win(self) -> bool:
        return self.pnl > 0

    @property
    def holding_seconds(self) -> float:
        return (self.exit_time - self.entry_time).total_seconds()


# Why a signal was not traded: one category per refusal, counted by reports. The policy
# emits `ev`, `gate`, `ood` and `regime`; the engine `sizing`, `risk`, `paused`,
# `session` (intraday session rules) and `model_unavailable`.
REASONS: tuple[str, ...] = (
    "ev", "gate", "ood", "regime", "sizing", "risk", "paused", "session", "model_unavailable",
)
ENTER, SKIP = "enter", "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the models said about one signal, and what the engine did with it."""

    decision_id: str
    signal: Signal
    win_probability: float | None
    stop_loss_price: float
    take_profit_price: float
    regime: Regime | None
    expected_drawdown_pct: float | None
    variant: str = "rules"  # champion | challenger | rules
    model_versions: dict[str, str] = field(default_factory=dict)
    regime_probabilities: dict[str, float] = field(default_factory=dict)
    out_of_distribution: bool = False
    source: str = "rules"  # which client produced it: rules | http | inprocess | fallback
    # The policy's verdict (`models.policy`): enter, or skip for one `REASONS` category.
    action: str = ENTER  # ENTER | SKIP
    reason: str = ""  # a `REASONS` category when skipped, "" when entered
    reason_detail: str = ""
    expected_value: float | None = None  # per unit of capital, net of costs
    threshold: float | None = None  # the win probability the policy asked for
    size_fraction: float | None = None  # of equity; None: the engine's default size

    @property
    def enter(self) -> bool:
        return self.action == ENTER
