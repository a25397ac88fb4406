"""Helpers for the paper-exchange integration tests: real daily bars in a bar store, the
exchange started as a real `tradewind paper-exchange` subprocess on 127.0.0.1, and
polling for conditions with a deadline (never a fixed sleep)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd

from core.bars import validate_bars
from tests.conftest import PROJECT_ROOT

T = TypeVar("T")

KEY, SECRET = "test-key", "test-secret"
ADMIN_HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
CLI = "from pipelines.cli import main; main()"
READY_LINE = "paper exchange listening on"


def sample_bars(
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    days: int = 60,
    start: str = "2010-01-01",
    end: str | None = None,
) -> pd.DataFrame:
    """Real daily bars from bokeh-sampledata: `days` sessions from `start` (or every
    session up to `end` when it is given)."""
    from bokeh_sampledata import stocks

    frames = []
    for symbol in symbols:
        raw = pd.DataFrame(getattr(stocks, symbol))
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "timestamp": pd.to_datetime(raw["date"]),
                "open": raw["open"].astype(float),
                "high": raw["high"].astype(float),
                "low": raw["low"].astype(float),
                "close": raw["close"].astype(float),
                "volume": raw["volume"].astype(float),
            }
        )
        frame = frame[frame["timestamp"] >= start]
        frame = frame[frame["timestamp"] <= end] if end is not None else frame.head(days)
        frames.append(frame)
    return validate_bars(pd.concat(frames, ignore_index=True), where="sample bars").bars


def write_store(data_dir: Path, bars: pd.DataFrame, timeframe: str = "1Day") -> pd.DataFrame:
    """Put `bars` in the offline bar store under `data_dir`; return them as stored."""
    from features.bar_store import BarStore

    store = BarStore(data_dir / "bars")
    store.write(bars, timeframe)
    return store.read(timeframe=timeframe)


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = 15.0, every: float = 0.02
) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def isolate_settings(monkeypatch: Any, workdir: Path) -> None:
    """An in-process engine's settings point at `workdir` and ignore the user's keys and
    config file (`monkeypatch` is pytest's)."""
    for key in ("TRADEWIND_CONFIG", "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_PAPER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TRADEWIND_PATHS__DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("TRADEWIND_PATHS__JOURNAL_URL", f"sqlite:///{workdir / 'journal.db'}")


def exchange_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRADEWIND_", "ALPACA_"))
    }
    env["TRADEWIND_PATHS__DATA_DIR"] = str(workdir / "data")
    env["TRADEWIND_PATHS__JOURNAL_URL"] = f"sqlite:///{workdir / 'data' / 'journal.db'}"
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(extra)
    return env


class Process:
    """A `tradewind ...` subprocess whose stdout lines are collected by a thread."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str], name: str) -> None:
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line.strip()
        raise AssertionError(
            f"no line starting with {prefix!r}; exit code {self.proc.poll()}; "
            f"stderr: {self.stderr()[-3000:]}"
        )

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


class Exchange:
    """`tradewind paper-exchange` as a subprocess, replaying only when told to."""

    def __init__(
        self,
        workdir: Path,
        *,
        symbols: str = "AAPL,MSFT",
        keys: bool = False,
        start: str | None = None,
        timeframe: str = "1Day",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.extra_args = extra_args
        self.timeframe = timeframe
        self.symbols = symbols
        self.keys = keys
        self.start_at = start
        self.process: Process | None = None
        self.url = ""
        self._http = httpx.Client(headers=ADMIN_HEADERS, timeout=10)

    def start(self) -> Exchange:
        args = [
            "paper-exchange",
            "--port",
            "0",
            "--symbols",
            self.symbols,
            "--state",
            str(self.workdir / "exchange.db"),
            *(["--start", self.start_at] if self.start_at else []),
            "--timeframe",
            self.timeframe,
            *self.extra_args,
        ]
        extra = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET} if self.keys else {}
        if self.keys:
            args.append("--require-keys")
        self.process = Process(args, self.workdir, exchange_env(self.workdir, **extra), "exchange")
        line = self.process.wait_line(READY_LINE)
        self.url = line.rsplit(" ", 1)[-1]
        return self

    @property
    def stream_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/stream"

    def admin(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        answer = self._http.request(method, self.url + path, json=body or None)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def advance(self, steps: int = 1) -> dict[str, Any]:
        return self.admin("POST", "/admin/advance", steps=steps)

    def state(self) -> dict[str, Any]:
        return self.admin("GET", "/admin/state")

    def drop_streams(self, refuse_seconds: float) -> dict[str, Any]:
        return self.admin("POST", "/admin/streams", refuse_seconds=refuse_seconds)

    def accept_streams(self) -> dict[str, Any]:
        return self.admin("POST", "/admin/streams", disconnect=False, refuse_seconds=0)

    def orders(self, **params: Any) -> list[dict[str, Any]]:
        answer = self._http.get(
            self.url + "/v2/orders", params={"status": "all", "limit": 500, **params}
        )
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def positions(self) -> dict[str, float]:
        answer = self._http.get(self.url + "/v2/positions")
        answer.raise_for_status()
        return {p["symbol"]: float(p["qty"]) for p in answer.json()}

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
        self._http.close()


def minute_bar_service(
    exchange: Exchange, symbols: tuple[str, ...], watchlist: Path | None = None
) -> Any:
    """`tradewind trade --timeframe 1Min` as a `TradingService` in this process, on the
    exchange (its REST and streams, through the SDK), without the feature store."""
    from core.settings import AlpacaCredentials, load_settings
    from pipelines.commands.trading import build_trading_service
    from trading.service import ServiceConfig, warmup_days_for

    return build_trading_service(
        load_settings(),
        AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
        exchange.url,
        None,
        ServiceConfig(
            symbols=symbols,
            timeframe="1Min",
            status_path=exchange.workdir / "status.json",
            poll_seconds=0.05,
            warmup_days=warmup_days_for("1Min"),
            watchlist_path=watchlist,
        ),
        feature_store=False,
    )
