"""Crash soak: `tradewind trade` SIGKILLed again and again against the local paper
exchange while bars advance, restarted after every kill; each restart must reconcile.

    .venv/bin/python benchmarks/bench_crash_soak.py [--kills 100] [--seed 7]

Real components only: the `tradewind paper-exchange` subprocess replays real daily bars
(bokeh-sampledata AAPL, MSFT, IBM from 2010-02-22) and `tradewind trade` trades them with
every strategy. Each round picks, from a seeded random stream, how the engine dies:

- at an armed point (`TRADEWIND_CRASH_AT`): after the decision before the submit, after
  the submit before its answer is journaled, right after a fill is journaled (entries and
  exits alike: a close is a submit too);
- from outside, at a random moment while it trades a new bar (in flight);
and whether the market moves on while it is down (fills it has to find at restart).

After every restart, once it has recovered, and at the end after a graceful stop, it
counts: fills the exchange made that the journal lacks (lost), fills journaled twice or
beyond the exchange's (extra), `client_order_id`s the exchange holds twice, positions that
differ from the exchange's, and journal rows that contradict each other (a fill without
its order, an order the journal thinks open that the exchange has closed). Every count
must be zero. The peer measured in the same run: a clean restart (SIGTERM) of the same
engine, against which the time to recover from SIGKILL is printed as a ratio."""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from tests.integration.exchange_support import (  # noqa: E402
    KEY,
    SECRET,
    Exchange,
    Process,
    exchange_env,
    sample_bars,
    wait_for,
    write_store,
)

SYMBOLS = ("AAPL", "MSFT", "IBM")
REPLAY_START = "2010-02-22"
ARMED = ("before_submit", "after_submit", "after_fill")


@dataclass
class Counts:
    """What a check found; every field must stay zero."""

    lost_fills: int = 0
    extra_fills: int = 0
    duplicate_client_order_ids: int = 0
    position_mismatches: int = 0
    journal_contradictions: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.lost_fills += other.lost_fills
        self.extra_fills += other.extra_fills
        self.duplicate_client_order_ids += other.duplicate_client_order_ids
        self.position_mismatches += other.position_mismatches
        self.journal_contradictions += other.journal_contradictions
        self.details.extend(other.details)

    @property
    def clean(self) -> bool:
        return not (self.lost_fills or self.extra_fills or self.duplicate_client_order_ids
                    or self.position_mismatches or self.journal_contradictions)


@dataclass
class SoakResult:
    kills: int = 0
    by_way: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    bars: int = 0
    fills: int = 0
    closed_trades: int = 0
    counts: Counts = field(default_factory=Counts)
    recover_seconds: list[float] = field(default_factory=list)
    clean_restart_seconds: float = 0.0


def check(exchange: Exchange, journal_path: Path) -> Counts:
    """The exchange's books against the journal's (the engine idle between bars)."""
    found = Counts()
    orders = exchange.orders(nested="false")
    base = Counter(o["client_order_id"].split("~r")[0] for o in orders)
    twice = {cid: n for cid, n in base.items() if n > 1}
    found.duplicate_client_order_ids = len(twice)
    if twice:
        found.details.append(f"at the exchange twice: {twice}")
    filled = {o["client_order_id"].split("~r")[0]: float(o["filled_qty"])
              for o in orders if float(o["filled_qty"]) > 0}
    with sqlite3.connect(journal_path) as db:
        journaled = dict(db.execute(
            "SELECT client_order_id, SUM(qty) FROM fills GROUP BY client_order_id").fetchall())
        fill_ids = [row[0] for row in db.execute("SELECT fill_id FROM fills")]
        fill_orders = {row[0] for row in db.execute("SELECT DISTINCT client_order_id FROM fills")}
        known_orders = {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
        open_in_journal = {row[0] for row in db.execute(
            "SELECT client_order_id FROM orders WHERE status IN "
            "('new', 'accepted', 'pending_new', 'partially_filled', 'held')")}
        positions = {symbol: qty for symbol, qty in
                     db.execute("SELECT symbol, qty FROM positions") if abs(qty) > 1e-9}
    for cid, qty in filled.items():
        have = float(journaled.get(cid, 0.0))
        if have < qty - 1e-9:
            found.lost_fills += 1
            found.details.append(f"lost fill: {cid} {have:g} of {qty:g} journaled")
        elif have > qty + 1e-9:
            found.extra_fills += 1
            found.details.append(f"extra fill: {cid} {have:g} journaled, {qty:g} filled")
    for cid in set(journaled) - set(filled):
        found.extra_fills += 1
        found.details.append(f"fill journaled that the exchange never made: {cid}")
    held = exchange.positions()
    for symbol in set(held) | set(positions):
        if abs(held.get(symbol, 0.0) - positions.get(symbol, 0.0)) > 1e-9:
            found.position_mismatches += 1
            found.details.append(f"position {symbol}: journal {positions.get(symbol, 0)}, "
                                 f"exchange {held.get(symbol, 0)}")
    open_at_exchange = {o["client_order_id"].split("~r")[0] for o in orders
                        if o["status"] in ("new", "accepted", "pending_new", "partially_filled",
                                           "held")}
    contradictions = [f"fill_id journaled {len(fill_ids) - len(set(fill_ids))} times too often"
                      ] if len(fill_ids) != len(set(fill_ids)) else []
    contradictions += [f"fill of unknown order {cid}" for cid in fill_orders - known_orders]
    contradictions += [f"journal says open, exchange says closed: {cid}"
                       for cid in open_in_journal - open_at_exchange]
    found.journal_contradictions = len(contradictions)
    found.details.extend(contradictions)
    return found


class Engine:
    """`tradewind trade` against the exchange; one subprocess per life."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.status_path = exchange.workdir / "status.json"
        self.process: Process | None = None
        self.lives = 0

    def start(self, crash_at: str | None = None) -> bool:
        """Start and wait until it has recovered; False when it died on the way (an
        armed point reached during its recovery)."""
        self.lives += 1
        extra = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET}
        if crash_at:
            extra["TRADEWIND_CRASH_AT"] = crash_at
        self.status_path.unlink(missing_ok=True)
        self.process = Process(
            ["trade", "--broker", "paper-exchange", "--exchange-url", self.exchange.url,
             "--symbols", ",".join(SYMBOLS), "--poll-seconds", "0.05", "--no-feature-store",
             "--status-file", str(self.status_path), "--api-port", "0"],
            self.exchange.workdir, exchange_env(self.exchange.workdir, **extra),
            f"trade-{self.lives % 4}",  # a few rotating logs, not one per life
        )  # fmt: skip
        wait_for(lambda: self.recovered() or self.dead(), "the engine to recover", 180)
        return not self.dead()

    def status(self) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return value

    def recovered(self) -> bool:
        status = self.status()
        return (status is not None and self.process is not None
                and status["service"]["pid"] == self.process.proc.pid
                and status["service"]["state"] == "running")

    def dead(self) -> bool:
        return self.process is not None and self.process.proc.poll() is not None

    def caught_up(self, moment: str) -> bool:
        status = self.status()
        return status is not None and status["service"]["last_bar"] == moment

    def advance(self) -> str:
        moment: str = self.exchange.advance(1)["timestamps"][0]
        wait_for(lambda: self.caught_up(moment) or self.dead(), f"the engine at {moment}", 60)
        return moment

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.close()

    def died_by_sigkill(self) -> bool:
        assert self.process is not None
        return self.process.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> int:
        assert self.process is not None
        code = self.process.terminate(timeout=60)
        self.process.close()
        return code


def soak(kills: int, seed: int, workdir: Path, *, say: Any = print) -> SoakResult:
    """`kills` SIGKILLs at seeded random moments; the counts of every check."""
    rng = random.Random(seed)
    write_store(workdir / "data", sample_bars(SYMBOLS, start="2008-09-01", end="2013-12-31"))
    exchange = Exchange(workdir, symbols=",".join(SYMBOLS), start=REPLAY_START).start()
    journal_path = workdir / "data" / "journal.db"
    engine = Engine(exchange)
    result = SoakResult()
    try:
        started = time.perf_counter()
        engine.start()
        result.clean_restart_seconds = time.perf_counter() - started
        for round_ in range(kills):
            way = rng.choice([*ARMED, "in_flight", "in_flight"])
            if way in ARMED:
                engine.stop()  # re-armed: the point is read at start
                if not engine.start(crash_at=way):
                    result.by_way[f"{way} (during recovery)"] += 1
                else:
                    for _ in range(12):
                        engine.advance()
                        result.bars += 1
                        if engine.dead():
                            break
                    if engine.dead():
                        result.by_way[way] += 1
                    else:  # not reached in 12 bars: killed from outside instead
                        engine.kill()
                        result.by_way[f"{way} (not reached, killed)"] += 1
                assert engine.died_by_sigkill()
                assert engine.process is not None
                engine.process.close()
            else:
                for _ in range(rng.randint(0, 2)):
                    engine.advance()
                    result.bars += 1
                exchange.advance(1)  # a new bar; killed while it trades it
                result.bars += 1
                time.sleep(rng.uniform(0.0, 0.4))  # the random moment itself
                engine.kill()
                result.by_way[way] += 1
            result.kills += 1
            for _ in range(rng.choice([0, 0, 1, 2])):  # the market moves on while it is down
                exchange.advance(1)
                result.bars += 1
            started = time.perf_counter()
            if not engine.start():
                raise AssertionError("the engine died at a clean start (nothing was armed)")
            result.recover_seconds.append(time.perf_counter() - started)
            result.restarts += 1
            found = check(exchange, journal_path)
            if not found.clean:
                say(f"round {round_ + 1}: {found.details}")
            result.counts.add(found)
            if (round_ + 1) % 10 == 0:
                say(f"  {round_ + 1} kills; {result.bars} bars; restarts recovered "
                    f"in {statistics.median(result.recover_seconds):.1f} s (median)")
        for _ in range(3):
            engine.advance()
            result.bars += 1
        assert engine.stop() == 0
        result.counts.add(check(exchange, journal_path))
        with sqlite3.connect(journal_path) as db:
            result.fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
            result.closed_trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
    finally:
        if engine.process is not None:
            engine.process.close()
        exchange.close()
    return result


def report(result: SoakResult) -> None:
    counts = result.counts
    print()
    ways = ", ".join(f"{n} {way}" for way, n in sorted(result.by_way.items()))
    print(f"SIGKILLs: {result.kills} ({ways})")
    print(f"restarts that reconciled: {result.restarts}; bars replayed: {result.bars}; "
          f"fills: {result.fills}; closed trades: {result.closed_trades}")
    print(f"lost fills: {counts.lost_fills}")
    print(f"fills journaled twice or beyond the exchange's: {counts.extra_fills}")
    print(f"duplicate client_order_ids at the exchange: {counts.duplicate_client_order_ids}")
    print(f"positions different from the exchange's: {counts.position_mismatches}")
    print(f"journal contradictions: {counts.journal_contradictions}")
    if result.recover_seconds:
        median = statistics.median(result.recover_seconds)
        first = result.clean_restart_seconds
        print(f"restart after SIGKILL, to recovered: median {median:.1f} s, max "
              f"{max(result.recover_seconds):.1f} s; the first start on an empty journal "
              f"{first:.1f} s (ratio {median / first:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="tradewind-crash-soak-"))
    print(f"{args.kills} SIGKILLs of `tradewind trade` (seed {args.seed}) in {workdir} ...",
          flush=True)
    result = soak(args.kills, args.seed, workdir, say=lambda line: print(line, flush=True))
    report(result)
    assert result.counts.clean, result.counts.details[:20]
    assert result.kills == args.kills


if __name__ == "__main__":
    main()
