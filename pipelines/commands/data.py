"""`tradewind` commands for the data area: `ingest` (bars from a source into the offline
bar store, with a progress bar and a report of every repaired row) and `data show`
(what the store holds)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from pipelines.commands.options import (
    SYMBOLS_HELP,
    SYMBOLS_METAVAR,
    command_group,
    parse_day,
    parse_symbols,
)

if TYPE_CHECKING:
    from core.bars import BarCheck
    from core.settings import Settings


LISTED_ROWS = 10  # more repaired rows or warnings than this are summarised per symbol


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
    app.command("ingest")(ingest)
    data_app = command_group("Inspect the offline bar store.")
    data_app.command("show")(show)
    app.add_typer(data_app, name="data", help="Inspect the offline bar store.")


def ingest(
    source: str = typer.Option(
        "sample", "--source", help="Where bars come from: sample, sp500, parquet, csv or alpaca."
    ),
    symbols: list[str] | None = typer.Option(
        None,
        "--symbols",
        metavar=SYMBOLS_METAVAR,
        help=f"Symbols, {SYMBOLS_HELP} (default: all of the source; "
        "for alpaca the settings' symbols; sample adds its index series).",
    ),
    start: str | None = typer.Option(None, "--start", help="First day or time (inclusive)."),
    end: str | None = typer.Option(None, "--end", help="Last day or time (inclusive)."),
    timeframe: str = typer.Option("1Day", "--timeframe", help="1Min, 5Min, 15Min, 1Hour, 1Day."),
    path: Path | None = typer.Option(None, "--path", help="File or folder (parquet / csv)."),
    repair: bool = typer.Option(
        False, "--repair/--no-repair",
        help="Drop or fix bad bars (summarised; each with --verbose).",
    ),
    verbose: bool = typer.Option(
        False, "--verbose/--quiet", "-v", help="List every repaired row and every warning."
    ),
    data_url: str | None = typer.Option(
        None, "--data-url", help="Alpaca data API base URL (default: Alpaca's own)."
    ),
    feed: str = typer.Option("iex", "--feed", help="Alpaca feed: iex, sip, delayed_sip, ..."),
    adjustment: str = typer.Option(
        "all", "--adjustment", help="Alpaca adjustment: raw, split, dividend, all."
    ),
) -> None:
    """Load bars from a source into the offline bar store (idempotent)."""
    from core.bars import BarValidationError, check_timeframe
    from core.settings import load_settings
    from features.bar_store import BarStore

    check_timeframe(timeframe)
    parse_day(start, "--start")
    parse_day(end, "--end")
    settings = load_settings()
    wanted = parse_symbols(symbols)
    if source == "alpaca" and not wanted:
        wanted = list(settings.symbols)
    console = Console()
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        fetching = progress.add_task(f"fetch {source} bars", total=1)
        try:
            alpaca = {"data_url": data_url, "feed": feed, "adjustment": adjustment}
            check = _fetch(source, wanted, start, end, timeframe, path, repair, alpaca, settings)
        except BarValidationError as exc:
            raise BarValidationError(
                exc.message + "\n(run with --repair to drop or fix these rows, each reported)",
                where=exc.where,
                problems=exc.problems,
            ) from None
        progress.update(fetching, completed=1)
        bars = check.bars
        partitions = bars["symbol"].nunique()
        if timeframe != "1Day" and not bars.empty:
            partitions = len(bars.groupby([bars["symbol"], bars["timestamp"].dt.year]))
        writing = progress.add_task("write partitions", total=max(partitions, 1))
        store = BarStore(settings.paths.bars_dir)
        report = store.write(
            bars, timeframe, on_partition=lambda _symbol, _new: progress.advance(writing)
        )
        progress.update(writing, completed=max(partitions, 1))
    _print_check(console, check, verbose=verbose)
    missing = [s for s in wanted if s not in set(bars["symbol"])]
    if bars.empty or missing:
        console.print(
            f"[yellow]no {timeframe} bars from {source} for "
            f"{', '.join(missing or wanted) or 'any symbol'} between {start or 'the start'} and "
            f"{end or 'the end'}[/]",
            soft_wrap=True,
        )
    console.print(
        f"ingested {report.rows_written:,} {timeframe} bars ({report.rows_new:,} new) of "
        f"{len(report.symbols)} symbol(s) from {source} into {store.root} "
        f"in {time.perf_counter() - started:.1f}s",
        soft_wrap=True,
    )


def show(
    as_json: bool = typer.Option(False, "--json/--no-json", help="Machine-readable output."),
    timeframe: str | None = typer.Option(None, "--timeframe", help="Only this timeframe."),
) -> None:
    """Symbols, bar counts, first/last timestamp and timeframe in the bar store."""
    from core.settings import load_settings
    from features.bar_store import BarStore

    store = BarStore(load_settings().paths.bars_dir)
    summary = store.summary()
    if timeframe is not None:
        held = summary.groupby("timeframe")["bars"].sum()
        summary = summary[summary["timeframe"] == timeframe]
        if summary.empty and not held.empty and not as_json:
            holds = ", ".join(f"{int(bars):,} {name} bars" for name, bars in held.items())
            Console().print(
                f"no {timeframe} bars in the bar store at {store.root} (it holds {holds}); "
                f"load them with `tradewind ingest --timeframe {timeframe} ...`",
                soft_wrap=True,
            )
            return
    console = Console()
    if as_json:
        rows = [
            {
                "symbol": row.symbol,
                "timeframe": row.timeframe,
                "bars": int(row.bars),
                "first": row.first.isoformat() if row.first is not None else None,
                "last": row.last.isoformat() if row.last is not None else None,
            }
            for row in summary.itertuples(index=False)
        ]
        # Plain print: rich would wrap long lines and break the JSON.
        print(json.dumps(rows, indent=2))
        return
    if summary.empty:
        console.print(
            f"the bar store at {store.root} is empty; load bars with "
            "`tradewind ingest --source sample`",
            soft_wrap=True,
        )
        return
    table = Table(title=f"bar store {store.root}")
    for name, justify in (
        ("symbol", "left"),
        ("timeframe", "left"),
        ("bars", "right"),
        ("first", "left"),
        ("last", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in summary.itertuples(index=False):
        table.add_row(
            row.symbol,
            row.timeframe,
            f"{row.bars:,}",
            _short_time(row.first),
            _short_time(row.last),
        )
    console.print(table)
    console.print(f"{int(summary['bars'].sum()):,} bars, {summary['symbol'].nunique()} symbols")


def _short_time(stamp: object) -> str:
    return stamp.strftime("%Y-%m-%d %H:%MZ") if isinstance(stamp, datetime) else ""


def _fetch(
    source: str,
    symbols: list[str],
    start: str | None,
    end: str | None,
    timeframe: str,
    path: Path | None,
    repair: bool,
    alpaca_options: dict[str, str | None],
    settings: Settings,
) -> BarCheck:
    """Bars and their check from the source type (`trading.adapters.registry`)."""
    from trading.adapters.registry import SourceContext, market_data, source_config

    fields: dict[str, object] = {}
    if source in ("parquet", "csv", "files"):
        if path is None:
            raise ConfigError(f"--source {source} needs --path", where="ingest")
        fields = {"path": path, "repair": repair}
        if source != "files":
            fields["formats"] = (source,)
    elif source == "alpaca":
        fields = {**alpaca_options, "repair": repair}
    data = market_data(source_config(source, **fields), SourceContext.from_settings(settings))
    if source == "sample" and symbols:
        # The index series come along as market context (features need them).
        from core.symbols import CONTEXT_ONLY_SYMBOLS

        symbols = [*symbols, *sorted(CONTEXT_ONLY_SYMBOLS - set(symbols))]
    return data.history_check(symbols or None, start, end, timeframe)


def _print_check(console: Console, check: BarCheck, *, verbose: bool) -> None:
    """What repair touched and what looks suspicious: every row when there are few (or
    with `verbose`), else one line per symbol and reason."""
    if check.repairs:
        console.print(f"[yellow]repaired {len(check.repairs)} row(s):[/]")
        if verbose or len(check.repairs) <= LISTED_ROWS:
            lines = [str(repair) for repair in check.repairs]
        else:
            lines = _summary(
                (r.symbol or "?", f"{r.action} — {r.reason}", r.timestamp) for r in check.repairs
            )
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if check.warnings:
        console.print(f"[yellow]{len(check.warnings)} warning(s)[/] (kept; check they are real):")
        if verbose or len(check.warnings) <= LISTED_ROWS:
            lines = [str(warning) for warning in check.warnings]
        else:
            lines = _summary((w.symbol, w.kind, w.timestamp) for w in check.warnings)
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if max(len(check.repairs), len(check.warnings)) > LISTED_ROWS and not verbose:
        console.print("  (--verbose lists every row)")


def _summary(rows: Iterable[tuple[str, str, str | None]]) -> list[str]:
    """One line per (symbol, what): how many rows, first and last time."""
    groups: dict[tuple[str, str], list[str]] = {}
    for symbol, what, stamp in rows:
        groups.setdefault((symbol, what), []).append(stamp or "")
    lines = []
    for (symbol, what), stamps in groups.items():
        known = sorted(stamp for stamp in stamps if stamp)
        span = f" ({known[0][:10]} … {known[-1][:10]})" if known else ""
        lines.append(f"{symbol}: {len(stamps)} × {what}{span}")
    return lines
