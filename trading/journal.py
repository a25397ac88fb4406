"""The trading journal: orders, fills, positions, closed trades, decisions (with model
versions and A/B arm), risk rejections and the equity curve, in one SQL database.

SQLAlchemy 2 Core. The default is SQLite in WAL mode (a reader, such as a status page,
never blocks the engine); a Postgres URL works unchanged. Every write is idempotent,
keyed by `client_order_id`, `fill_id`, `trade_id`, `decision_id`, the rejection's
(signal, rule) and the equity timestamp: replaying the same events after a crash writes
nothing twice. Orders, positions and equity points are upserts (their latest state wins);
fills, trades, decisions and rejections are insert-once.

`batch_size` > 1 buffers rows and writes them in one transaction (backtests); the default
1 writes every event before returning (live trading, where a kill -9 must lose nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import ConfigError
from core.sql import sql_engine
from core.types import Decision, Fill, Order, Position, Trade
from core.utc import utc_datetime, utc_now

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(128), primary_key=True),
    Column("broker_order_id", String(128)),
    Column("parent_client_order_id", String(128)),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", Float, nullable=False),
    Column("type", String(16), nullable=False),
    Column("order_class", String(16), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("limit_price", Float),
    Column("stop_price", Float),
    Column("take_profit_price", Float),
    Column("stop_loss_price", Float),
    Column("status", String(24), nullable=False),
    Column("filled_qty", Float, nullable=False),
    Column("filled_avg_price", Float),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("decision_id", String(128)),
)

fills = Table(
    "fills",
    metadata,
    Column("fill_id", String(160), primary_key=True),
    Column("client_order_id", String(128), nullable=False, index=True),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("commission", Float, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("qty", Float, nullable=False),
    Column("avg_entry_price", Float, nullable=False),
    Column("market_price", Float),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", String(128), primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", Float, nullable=False),
    Column("entry_time", DateTime(timezone=True), nullable=False),
    Column("entry_price", Float, nullable=False),
    Column("exit_time", DateTime(timezone=True), nullable=False),
    Column("exit_price", Float, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("exit_reason", String(64), nullable=False),
    Column("commission", Float, nullable=False),
    Column("pnl", Float, nullable=False),
    Column("return_pct", Float, nullable=False),
    Column("max_favorable_excursion", Float, nullable=False),
    Column("max_adverse_excursion", Float, nullable=False),
    Column("decision_id", String(128)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(160), primary_key=True),
    Column("signal_id", String(32), nullable=False, index=True),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("signal_time", DateTime(timezone=True), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("price", Float, nullable=False),
    Column("win_probability", Float),
    Column("stop_loss_price", Float),
    Column("take_profit_price", Float),
    Column("regime", String(16)),
    Column("expected_drawdown_pct", Float),
    Column("variant", String(16), nullable=False),
    Column("model_versions", Text, nullable=False),  # JSON object name → version
    Column("source", String(16), nullable=False),
    Column("out_of_distribution", Integer, nullable=False),  # the detector's own flag
    Column("action", String(24), nullable=False),  # entered | skipped
    Column("category", String(24), nullable=False, server_default=""),  # REASONS or ""
    Column("reason", Text, nullable=False),  # the detail
    Column("size_fraction", Float),
    Column("threshold", Float),
    Column("qty", Float),
    Column("client_order_id", String(128)),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

risk_rejections = Table(
    "risk_rejections",
    metadata,
    Column("rejection_id", String(200), primary_key=True),
    Column("signal_id", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("rule", String(32), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
)

equity_curve = Table(
    "equity_curve",
    metadata,
    Column("timestamp", DateTime(timezone=True), primary_key=True),
    Column("equity", Float, nullable=False),
    Column("cash", Float, nullable=False),
    Column("positions_value", Float, nullable=False),
    Column("open_positions", Integer, nullable=False),
    Column("halted", Integer, nullable=False),
)

_KEYS: dict[str, tuple[str, ...]] = {
    "orders": ("client_order_id",),
    "fills": ("fill_id",),
    "positions": ("symbol",),
    "trades": ("trade_id",),
    "decisions": ("decision_id",),
    "risk_rejections": ("rejection_id",),
    "equity_curve": ("timestamp",),
}
_UPSERT = frozenset({"orders", "positions", "equity_curve"})
_DATETIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("created_at", "updated_at"),
    "fills": ("timestamp",),
    "positions": ("updated_at",),
    "trades": ("entry_time", "exit_time"),
    "decisions": ("signal_time", "decided_at"),
    "risk_rejections": ("timestamp",),
    "equity_curve": ("timestamp",),
}


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One signal's journey through the pipeline: what the models said, what we did."""

    signal_id: str
    symbol: str
    side: str
    signal_time: datetime
    strategy: str
    price: float
    action: str
    reason: str
    decided_at: datetime
    decision: Decision | None = None
    qty: float | None = None
    client_order_id: str | None = None
    category: str = ""  # the refusal's `core.types.REASONS` category ("" when entered)

    @property
    def decision_id(self) -> str:
        return (
            self.decision.decision_id
            if self.decision is not None
            else f"{self.action}-{self.signal_id}"
        )


class Journal:
    def __init__(self, url: str = "sqlite://", *, batch_size: int = 1, echo: bool = False) -> None:
        self.url = url
        self.batch_size = max(1, batch_size)
        self._engine = sql_engine(url, echo=echo)
        metadata.create_all(self._engine)
        _add_missing_columns(self._engine)
        self._buffer: dict[str, dict[tuple[Any, ...], _Pending]] = {name: {} for name in _KEYS}
        self._buffered = 0
        self._compiled: dict[str, _Positional] = {}
        self._decision_of_order: dict[str, str | None] = {}
        # Orders written by an earlier process can only exist if the table had rows.
        with self._engine.connect() as connection:
            self._has_history = (
                connection.execute(select(orders.c.client_order_id).limit(1)).first() is not None
            )

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ writes
    # Each write buffers its key and what its row is made of; the row itself is built
    # when it is written. An upserted key (an order's every state change, a position, an
    # equity point) written again before a flush is then built once, in its last state.
    def record_order(
        self, order: Order, *, decision_id: str | None = None, at: datetime | None = None
    ) -> None:
        client_order_id = order.client_order_id
        if decision_id is None:
            # Keep the decision link written when the order was placed.
            decision_id = self._order_decision(client_order_id)
        else:
            self._decision_of_order[client_order_id] = decision_id
        updated_at = at or order.created_at or utc_now()
        self._put("orders", (client_order_id,), _order_row, (order, decision_id, updated_at))

    def record_fill(self, fill: Fill) -> None:
        self._put("fills", (fill.fill_id,), _fill_row, (fill,))

    def record_position(self, position: Position, at: datetime) -> None:
        """The latest state of a position; qty 0 marks it closed."""
        self._put("positions", (position.symbol,), _position_row, (position, at))

    def record_trade(self, trade: Trade) -> None:
        self._put("trades", (trade.trade_id,), _trade_row, (trade,))

    def record_decision(self, record: DecisionRecord) -> None:
        self._put("decisions", (record.decision_id,), _decision_row, (record,))

    def record_rejection(
        self, *, signal_id: str, symbol: str, strategy: str, rule: str, reason: str, at: datetime
    ) -> None:
        rejection_id = f"{signal_id}:{rule}"
        self._put(
            "risk_rejections",
            (rejection_id,),
            _rejection_row,
            (rejection_id, signal_id, symbol, strategy, rule, reason, at),
        )

    def record_equity(
        self,
        at: datetime,
        *,
        equity: float,
        cash: float,
        positions_value: float,
        open_positions: int,
        halted: bool,
    ) -> None:
        timestamp = utc_datetime(at)
        self._put(
            "equity_curve",
            (timestamp,),
            _equity_row,
            (timestamp, equity, cash, positions_value, open_positions, halted),
        )

    def amend_decision(self, decision_id: str, *, action: str, category: str, reason: str) -> None:
        """Change a recorded decision's outcome (an entry the broker then refused is a
        skip): the buffered row if it is still buffered, else the stored one. Decisions
        are otherwise insert-once, so a replayed signal cannot rewrite its own record."""
        amended = {"action": action, "category": category, "reason": reason}
        rows = self._buffer["decisions"]
        buffered = rows.get((decision_id,))
        if buffered is not None:  # rows are built at the flush: amend what it builds
            build, parts = buffered

            def amended_build(*values: Any) -> dict[str, Any]:
                return {**build(*values), **amended}

            rows[(decision_id,)] = (amended_build, parts)
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(decisions).where(decisions.c.decision_id == decision_id).values(**amended)
            )

    def flush(self) -> None:
        """Write every buffered row, one transaction, idempotently."""
        if not self._buffered:
            return
        with self._engine.begin() as connection:
            for name, rows in self._buffer.items():
                if not rows:
                    continue
                built = [build(*parts) for build, parts in rows.values()]
                positional = self._positional(name)
                if positional is None:
                    connection.execute(self._insert(metadata.tables[name]), built)
                else:
                    sql, values_of, processors = positional
                    parameters = [values_of(row) for row in built]
                    if processors:
                        parameters = [_processed(values, processors) for values in parameters]
                    connection.exec_driver_sql(sql, parameters)
                rows.clear()
        self._buffered = 0

    def close(self) -> None:
        self.flush()
        self._engine.dispose()

    # ------------------------------------------------------------------ reads
    def frame(self, table_name: str) -> pd.DataFrame:
        """A whole table as a DataFrame, datetimes as UTC."""
        if table_name not in metadata.tables:
            raise ConfigError(
                f"no journal table '{table_name}'; tables: {', '.join(sorted(_KEYS))}",
                where="Journal.frame",
            )
        self.flush()
        table = metadata.tables[table_name]
        with self._engine.connect() as connection:
            result = connection.execute(select(table))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        for column in _DATETIME_COLUMNS[table_name]:
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def trades(self) -> pd.DataFrame:
        return self.frame("trades").sort_values(["exit_time", "trade_id"], ignore_index=True)

    def decisions(self) -> pd.DataFrame:
        return self.frame("decisions").sort_values(
            ["signal_time", "decision_id"], ignore_index=True
        )

    def rejections(self) -> pd.DataFrame:
        return self.frame("risk_rejections").sort_values(
            ["timestamp", "rejection_id"], ignore_index=True
        )

    def equity(self) -> pd.DataFrame:
        return self.frame("equity_curve").sort_values("timestamp", ignore_index=True)

    def orders(self, *, open_only: bool = False) -> pd.DataFrame:
        frame = self.frame("orders")
        if open_only:
            frame = frame[frame["status"].isin(["new", "accepted", "partially_filled"])]
        return frame.sort_values(["created_at", "client_order_id"], ignore_index=True)

    def fills(self) -> pd.DataFrame:
        return self.frame("fills").sort_values(["timestamp", "fill_id"], ignore_index=True)

    def positions(self) -> pd.DataFrame:
        frame = self.frame("positions")
        return frame[frame["qty"] != 0].sort_values("symbol", ignore_index=True)

    def has_order(self, client_order_id: str) -> bool:
        if (client_order_id,) in self._buffer["orders"]:
            return True
        with self._engine.connect() as connection:
            found = connection.execute(
                select(orders.c.client_order_id).where(orders.c.client_order_id == client_order_id)
            ).first()
        return found is not None

    # ------------------------------------------------------------------ internals
    def _order_decision(self, client_order_id: str) -> str | None:
        if client_order_id in self._decision_of_order or not self._has_history:
            return self._decision_of_order.get(client_order_id)
        with self._engine.connect() as connection:  # written by an earlier process
            found = connection.execute(
                select(orders.c.decision_id).where(orders.c.client_order_id == client_order_id)
            ).first()
        decision_id = None if found is None else found[0]
        self._decision_of_order[client_order_id] = decision_id
        return decision_id

    def _put(
        self,
        table_name: str,
        key: tuple[Any, ...],
        build: Callable[..., dict[str, Any]],
        parts: tuple[Any, ...],
    ) -> None:
        rows = self._buffer[table_name]
        if key in rows:
            if table_name not in _UPSERT:
                return  # insert-once: the first write of a key wins
        else:
            self._buffered += 1
        rows[key] = (build, parts)
        if self._buffered >= self.batch_size:
            self.flush()

    def _positional(self, table_name: str) -> _Positional | None:
        """SQLite: the table's insert compiled once, a getter of its parameters from a row
        and the bind processors SQLAlchemy would apply (by position), so a batch goes to
        the driver as tuples: SQLAlchemy's per-row parameter handling costs more than
        SQLite's insert. None for other databases, which take the statement as it is."""
        dialect = self._engine.dialect
        if dialect.name != "sqlite":
            return None
        cached = self._compiled.get(table_name)
        if cached is None:
            table = metadata.tables[table_name]
            compiled = self._insert(table).compile(dialect=dialect)
            names = list(compiled.positiontup or ())
            processors = [
                (position, process)
                for position, name in enumerate(names)
                if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                is not None
            ]
            cached = self._compiled[table_name] = (str(compiled), _values_of(names), processors)
        return cached

    def _insert(self, table: Table) -> Any:
        keys = list(_KEYS[table.name])
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            statement: Any = sqlite.insert(table)
        elif dialect == "postgresql":
            statement = postgresql.insert(table)
        else:
            raise ConfigError(
                f"journal supports sqlite and postgresql URLs, not {dialect}", where="Journal"
            )
        if table.name in _UPSERT:
            updates = {
                c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys
            }
            return statement.on_conflict_do_update(index_elements=keys, set_=updates)
        return statement.on_conflict_do_nothing(index_elements=keys)


_Pending = tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]  # row builder, its parts
# An insert's SQL, its parameters from a row, (position, bind processor) of each
# parameter SQLAlchemy would process.
_Positional = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], list[tuple[int, Any]]]


def _values_of(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def _processed(values: tuple[Any, ...], processors: list[tuple[int, Any]]) -> tuple[Any, ...]:
    processed = list(values)
    for position, process in processors:
        processed[position] = process(processed[position])
    return tuple(processed)


def _order_row(order: Order, decision_id: str | None, updated_at: datetime) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "parent_client_order_id": order.parent_client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": float(order.qty),
        "type": order.type.value,
        "order_class": order.order_class.value,
        "time_in_force": order.time_in_force.value,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "take_profit_price": order.take_profit_price,
        "stop_loss_price": order.stop_loss_price,
        "status": order.status.value,
        "filled_qty": float(order.filled_qty),
        "filled_avg_price": order.filled_avg_price,
        "created_at": utc_datetime(order.created_at),
        "updated_at": utc_datetime(updated_at),
        "decision_id": decision_id,
    }


def _fill_row(fill: Fill) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": float(fill.qty),
        "price": float(fill.price),
        "commission": float(fill.commission),
        "timestamp": utc_datetime(fill.timestamp),
    }


def _position_row(position: Position, at: datetime) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "qty": float(position.qty),
        "avg_entry_price": float(position.avg_entry_price),
        "market_price": position.market_price,
        "updated_at": utc_datetime(at),
    }


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.trade_id,
        "symbol": trade.symbol,
        "side": trade.side.value,
        "qty": float(trade.qty),
        "entry_time": utc_datetime(trade.entry_time),
        "entry_price": float(trade.entry_price),
        "exit_time": utc_datetime(trade.exit_time),
        "exit_price": float(trade.exit_price),
        "strategy": trade.strategy,
        "exit_reason": trade.exit_reason,
        "commission": float(trade.commission),
        "pnl": float(trade.pnl),
        "return_pct": float(trade.return_pct),
        "max_favorable_excursion": float(trade.max_favorable_excursion),
        "max_adverse_excursion": float(trade.max_adverse_excursion),
        "decision_id": trade.decision_id,
    }


def _decision_row(record: DecisionRecord) -> dict[str, Any]:
    decision = record.decision
    return {
        "decision_id": record.decision_id,
        "signal_id": record.signal_id,
        "symbol": record.symbol,
        "side": record.side,
        "signal_time": utc_datetime(record.signal_time),
        "strategy": record.strategy,
        "price": float(record.price),
        "win_probability": decision.win_probability if decision else None,
        "stop_loss_price": decision.stop_loss_price if decision else None,
        "take_profit_price": decision.take_profit_price if decision else None,
        "regime": decision.regime.value if decision and decision.regime else None,
        "expected_drawdown_pct": decision.expected_drawdown_pct if decision else None,
        "variant": decision.variant if decision else "none",
        "model_versions": json.dumps(
            dict(sorted(decision.model_versions.items())) if decision else {}
        ),
        "source": decision.source if decision else "none",
        "out_of_distribution": int(bool(decision and decision.out_of_distribution)),
        "action": record.action,
        "category": record.category,
        "reason": record.reason,
        "size_fraction": decision.size_fraction if decision else None,
        "threshold": decision.threshold if decision else None,
        "qty": record.qty,
        "client_order_id": record.client_order_id,
        "decided_at": utc_datetime(record.decided_at),
    }


def _rejection_row(
    rejection_id: str, signal_id: str, symbol: str, strategy: str, rule: str, reason: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "rejection_id": rejection_id,
        "signal_id": signal_id,
        "symbol": symbol,
        "strategy": strategy,
        "rule": rule,
        "reason": reason,
        "timestamp": utc_datetime(at),
    }


def _equity_row(
    timestamp: datetime, equity: float, cash: float, positions_value: float,
    open_positions: int, halted: bool,
) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "equity": float(equity),
        "cash": float(cash),
        "positions_value": float(positions_value),
        "open_positions": int(open_positions),
        "halted": int(halted),
    }


def _add_missing_columns(engine: Engine) -> None:
    """A journal written by an older version lacks the columns added since (the
    decisions' category, size and threshold): add them, nullable, before any write."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


def journal_rows(journal: Journal, table_name: str) -> Iterable[dict[str, Any]]:
    """Rows of a journal table as dicts (for status pages and reports)."""
    return journal.frame(table_name).to_dict(orient="records")
