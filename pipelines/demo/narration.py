"""The demo's terminal story: numbered stages, one line per event, a timeline kept for the
report, the closing figures table and where to look. The console is the caller's
(`run_demo` hands it over for the length of one run)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from monitoring.loop_report import lifecycle_event, retrain_events, verdict_event

_terminal: list[Console] = []  # the console of the run in progress (innermost last)


@contextlib.contextmanager
def terminal(console: Console) -> Iterator[Console]:
    """Make `console` the demo's terminal for the block (the demo flow cannot take it as a
    parameter: Prefect records flow parameters as JSON)."""
    _terminal.append(console)
    try:
        yield console
    finally:
        _terminal.pop()


def current_terminal() -> Console:
    return _terminal[-1] if _terminal else Console()


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
        self.timeline.append(lifecycle_event(at, action, model, detail))

    def retrained(
        self, now: pd.Timestamp, trigger: str, closed_since: int, result: dict[str, Any]
    ) -> None:
        """What a retrain decided, per model, on the terminal and in the timeline."""
        self.timeline += retrain_events(result, now, trigger, closed_since)
        for name, comparison in result.get("comparisons", {}).items():
            registered = result["registered"][name]
            shown = (
                f"[green]challenger v{registered['version']}[/]"
                if registered.get("registered")
                else "not registered"
            )
            why = registered.get("reason") or comparison["reason"]  # e.g. an A/B under way
            self.say(f"  {name}: {shown} — {why}")

    def evaluation(self, evaluation: dict[str, Any]) -> None:
        """One line per fold, the pooled ratios with their intervals, the refusals."""
        from monitoring.evaluation_page import summary_lines

        for line in summary_lines(evaluation):
            self.say(line)

    def verdict(self, now: pd.Timestamp, summary: dict[str, Any]) -> None:
        """An A/B verdict that moves the registry, on the terminal and in the timeline."""
        self.timeline.append(verdict_event(summary, now))
        self.say(
            f"[bold]{now.date()}[/]: A/B verdict [magenta]{summary['action']}[/] "
            f"(applied={summary['applied']}): {summary['reason']}"
        )


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


def where_to_look(
    console: Console, json_path: Path, html_path: Path, seconds: float, log_path: Path
) -> None:
    console.print(
        Panel.fit(
            f"Report: [bold]{html_path}[/] (data: {json_path})\n"
            "MLflow and Prefect UIs: [bold]tradewind ui[/] (or [bold]make ui[/]).\n"
            "MLflow: the models, retrain comparisons ('retrain'), A/B verdicts\n"
            "('ab_tests'), the walk-forward evaluation ('evaluation').\n"
            "Prefect: every flow run of this demo.\n"
            f"Library warnings and logs: {log_path}\n"
            f"Wall time: {seconds:.0f} s",
            title="8. Where to look",
        )
    )
