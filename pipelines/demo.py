"""`tradewind demo`: the whole platform, offline, on the embedded sample data.

1. ingest the sample bars, compute the feature catalogue and materialize Feast;
2. collect trades with the ungated engine over the training years;
3. train and register the four models (they become champions);
4. start the BentoML model service as a subprocess (`tradewind serve`);
5. trade the later years through the engine, which consults the service over HTTP for
   every signal (simulated broker), while the `retrain` flow runs on its triggers (every
   N closed trades counted from the journal, and on a schedule in replay time), a better
   candidate enters A/B as challenger, and OPERATIONS' `evaluate_ab` flow promotes,
   retires or rolls back; the same years are also replayed ungated as the baseline;
6. write `reports/demo/report.json` and `reports/demo/report.html`;
7. say where to look.

Every stage is a Prefect flow (or a task of the `demo` flow) recorded in the persistent
local Prefect database under the data dir, so the runs are in the Prefect UI afterwards
(`tradewind ui`), and every model, retrain comparison and A/B verdict is in MLflow.

Re-running is clean: the bar store, Feast and the trade collection are idempotent upserts;
MLflow gets new runs and versions (the freshly trained versions become champion through
the registry's promote path, recording why); the demo's own journal and decision log
under `<data_dir>/demo/` are started afresh each run, so no trade is counted twice.

Settings the demo changes, and why (all through ordinary settings overrides, printed at
the start): on ~4 symbols of daily bars the strategies give only a few dozen trades in six
years, so the retrain trigger is every `retrain_every_trades` (default 10, production 100)
closed trades, the challenger share is 50% (production 20%), the A/B needs
`min_trades_per_arm` trades per arm, and the win-probability gate is 0.5 (production
0.65, which on this small sample would block every entry: the out-of-time probabilities
cluster near the base rate)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from core.settings import Settings, load_settings
from pipelines.runtime import ModelService, free_port, use_prefect_home


class DemoPlan(BaseModel):
    """What the demo runs on and the loop's demo settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "IBM", "GOOG"])
    history_start: str = "2001-01-01"  # training window start (earlier bars warm up)
    train_end: str = "2007-12-31"
    trade_start: str = "2008-01-01"
    trade_end: str = "2013-12-31"
    win_probability_gate: float = Field(0.50, ge=0, le=1)
    challenger_share: float = Field(0.5, ge=0, le=1)
    retrain_every_trades: int = Field(10, ge=1)
    retrain_schedule_months: int = Field(6, ge=1)  # scheduled retrain cadence (replay time)
    max_retrains: int = Field(2, ge=1)
    promotion_margin: float = Field(0.05, ge=0)
    ab_every_months: int = Field(3, ge=1)
    min_trades_per_arm: int = Field(2, ge=2)
    max_trades_per_arm: int = Field(2, ge=2)
    alpha: float = Field(0.05, gt=0, lt=1)

    @classmethod
    def full(cls) -> DemoPlan:
        return cls()

    @classmethod
    def quick(cls) -> DemoPlan:
        """Fewer training and trading years, one retrain early in the trading window."""
        return cls(
            history_start="2004-01-01",
            train_end="2008-12-31",
            trade_start="2009-01-01",
            trade_end="2011-12-31",
            retrain_schedule_months=6,
            max_retrains=1,
        )

    def overrides(self, settings: Settings, demo_dir: Path, endpoint: str | None) -> dict[str, Any]:
        """Settings overrides for the demo's flows (JSON, shown in the Prefect UI)."""
        paths = {
            "data_dir": str(settings.paths.data_dir.resolve()),
            "mlflow_tracking_uri": absolute_sqlite(settings.paths.mlflow_tracking_uri),
            "mlflow_artifact_root": str(settings.paths.mlflow_artifact_root.resolve()),
            "journal_url": f"sqlite:///{(demo_dir / 'journal.db').resolve()}",
            "reports_dir": str(settings.paths.reports_dir.resolve()),
        }
        return {
            "paths": paths,
            "symbols": list(self.symbols),
            "models": {
                "win_probability_gate": self.win_probability_gate,
                "challenger_share": self.challenger_share,
                "retrain_every_trades": self.retrain_every_trades,
                "promotion_margin": self.promotion_margin,
                "min_trades_per_arm": self.min_trades_per_arm,
            },
            "serving": {"endpoint": endpoint, "timeout_seconds": 5.0},
        }


def absolute_sqlite(uri: str) -> str:
    """A `sqlite:///relative` URI made absolute (child processes run elsewhere)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


@dataclass
class Narrator:
    """The terminal story: numbered stages, one line per event, and a timeline kept for
    the report."""

    console: Console
    started: float = field(default_factory=time.perf_counter)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, number: int, title: str) -> Iterator[None]:
        self.console.rule(f"[bold cyan]{number}. {title}")
        begin = time.perf_counter()
        yield
        took = time.perf_counter() - begin
        self.stage_seconds[title] = took
        self.console.print(f"[dim]   {title}: {took:.1f} s[/]")

    def say(self, message: str) -> None:
        self.console.print(f"   {message}")

    def event(self, at: datetime | pd.Timestamp, action: str, model: str, detail: str) -> None:
        self.timeline.append(
            {"at": pd.Timestamp(at).isoformat(), "action": action, "model": model, "detail": detail}
        )


def _quiet() -> None:
    """Library chatter (feature NaN warnings, MLflow download bars) off the terminal."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    import logging

    for name in ("mlflow", "alembic", "feast", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_demo(
    plan: DemoPlan, *, port: int | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run the demo end to end; returns the report dict (also written to disk)."""
    console = console or Console()
    _quiet()
    settings = load_settings()
    demo_dir = (settings.paths.data_dir / "demo").resolve()
    # The demo's own journal, decision log and loop state start afresh on every run.
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True, exist_ok=True)
    (settings.paths.data_dir / "loop").mkdir(parents=True, exist_ok=True)
    with use_prefect_home(settings.paths.data_dir, console_level="WARNING"):
        # Imported only now: Prefect reads its settings (database, console level) on import.
        from pipelines.flows.demo_flow import demo_flow, set_console
        from pipelines.flows.retrain import write_state

        # The retrain trigger counts trades since the last retrain of this journal: a fresh
        # journal starts with a fresh count.
        write_state(settings, f"sqlite:///{(demo_dir / 'journal.db').resolve()}", {})

        set_console(console)
        port = port or free_port()
        report: dict[str, Any] = demo_flow(
            plan=plan.model_dump(), port=port, demo_dir=str(demo_dir)
        )
    return report


def closed_trades_since(journal: Any, since: pd.Timestamp | None, until: datetime | None) -> int:
    trades = journal.trades()
    if trades.empty:
        return 0
    exits = pd.to_datetime(trades["exit_time"], utc=True)
    mask = np.ones(len(trades), dtype=bool)
    if since is not None:
        mask &= (exits > since).to_numpy()
    if until is not None:
        mask &= (exits <= pd.Timestamp(until)).to_numpy()
    return int(mask.sum())


def month_starts(first: str, last: datetime) -> list[pd.Timestamp]:
    """Month boundaries (UTC midnight) after `first`, up to and past `last`."""
    begin = pd.Timestamp(first, tz="UTC")
    edges = pd.date_range(
        begin + pd.offsets.MonthBegin(1),
        pd.Timestamp(last) + pd.offsets.MonthBegin(1),
        freq="MS",
        tz="UTC",
    )
    return list(edges)


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="Ungated baseline vs model-gated engine (same bars, same strategies)")
    table.add_column("figure")
    table.add_column("baseline", justify="right")
    table.add_column("ml (gated)", justify="right")
    for key in ("trades", "win_rate", "profit_factor", "sharpe", "max_drawdown", "total_return"):
        cells = []
        for arm in ("baseline", "ml"):
            value = report[arm].get(key)
            cells.append(
                "–"
                if value is None
                else (f"{value:.4f}" if isinstance(value, float) else str(value))
            )
        table.add_row(key, *cells)
    return table


def where_to_look(console: Console, json_path: Path, html_path: Path, seconds: float) -> None:
    console.print(
        Panel.fit(
            f"Report: [bold]{html_path}[/] (data: {json_path})\n"
            "MLflow and Prefect UIs: [bold]tradewind ui[/] (or [bold]make ui[/]) — the models,\n"
            "retrain comparisons (experiment 'retrain') and A/B verdicts (experiment 'ab_tests')\n"
            "in MLflow; every flow run of this demo in the Prefect UI.\n"
            f"Wall time: {seconds:.0f} s",
            title="7. Where to look",
        )
    )


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))


def now_utc() -> datetime:
    return datetime.now(tz=UTC)


__all__ = [
    "DemoPlan",
    "ModelService",
    "Narrator",
    "run_demo",
]
