"""`tradewind` commands for the trading area: `backtest` (ENGINE) and, in the section
marked below, `paper-exchange` and `trade` (EXCHANGE)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.errors import ConfigError

console = Console()


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
    app.command()(backtest)
    register_service_commands(app)


# ====================================================================== backtest (ENGINE)
def backtest(
    source: Annotated[
        str, typer.Option(help="Where bars come from: sample (embedded) or parquet (files).")
    ] = "sample",
    path: Annotated[
        Path | None, typer.Option(help="Parquet/CSV file or folder (with --source parquet).")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all in the source).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (inclusive).")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="momentum | mean_reversion | breakout (default: regime selector)."),
    ] = None,
    index_path: Annotated[
        Path | None,
        typer.Option(help="Bar file with an index series (SPY/SPX/COMP/VIX) for market context."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write metrics + equity curve as JSON here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (plots) here.")
    ] = None,
    journal: Annotated[
        str, typer.Option(help="Journal database URL (default: in memory).")
    ] = "sqlite://",
    repair: Annotated[
        bool, typer.Option(help="Repair bad bars (drop/fill, reported) instead of failing.")
    ] = True,
) -> None:
    """Replay historical bars through the trading engine (simulated broker, rules client,
    ungated) and print trades, win rate, profit factor, Sharpe, max drawdown, exposure."""
    from core.settings import load_settings
    from trading.backtest import run_backtest
    from trading.report import METRIC_KEYS, write_html, write_json

    settings = load_settings()
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    bars, index_bars, repairs = _load_bars(source, path, wanted, start, end, index_path, repair)
    result = run_backtest(bars, index_bars=index_bars, settings=settings, strategy=strategy,
                          journal_url=journal)  # fmt: skip
    metrics = result.metrics

    table = Table(title=f"backtest · {metrics['strategy']} · {source}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (*METRIC_KEYS, "final_equity", "bars", "symbols", "start", "end"):
        table.add_row(key, _show(metrics.get(key)))
    table.add_row("repaired bars", str(repairs))
    table.add_row("risk rejections", _show(metrics.get("risk_rejections")))
    table.add_row(
        "replay speed",
        f"{result.bars / result.replay_seconds:,.0f} bars/s "
        f"(features {result.feature_seconds:.2f}s)"
        if result.replay_seconds > 0
        else "—",
    )
    console.print(table)
    if json_out is not None:
        console.print(f"JSON → {write_json(json_out, metrics, result.equity)}")
    if html_out is not None:
        title = (
            f"Tradewind backtest · {metrics['strategy']} · "
            f"{metrics['start'][:10]} → {metrics['end'][:10]}"
        )
        console.print(
            f"HTML → {write_html(html_out, metrics, result.equity, result.trades, title)}"
        )
    result.journal.close()


def _load_bars(
    source: str,
    path: Path | None,
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
    index_path: Path | None,
    repair: bool,
) -> tuple[object, object, int]:
    import pandas as pd

    if source == "sample":
        from trading.adapters.sample.data import SampleMarketData

        sample = SampleMarketData()
        wanted = None
        if symbols is not None:
            # The index series come along as market context.
            wanted = sorted(set(symbols) | ({"SPX", "COMP", "VIX"} & set(sample.symbols())))
        check = sample.history_check(wanted, start, end)
    elif source == "parquet":
        if path is None:
            raise ConfigError("--source parquet needs --path FILE_OR_FOLDER", where="backtest")
        from trading.adapters.files.data import FileMarketData

        check = FileMarketData(path, repair=repair).history_check(symbols, start, end)
    else:
        raise ConfigError(f"unknown --source '{source}'; use sample or parquet", where="backtest")
    index_bars: pd.DataFrame | None = None
    if index_path is not None:
        from trading.adapters.files.data import FileMarketData

        index_bars = FileMarketData(index_path, repair=repair).history_check(None, start, end).bars
    if check.bars.empty:
        raise ConfigError(
            f"no bars for symbols={symbols or 'all'} between {start or 'the start'} and "
            f"{end or 'the end'} in {source}",
            where="backtest",
        )
    return check.bars, index_bars, len(check.repairs)


def _show(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


# ============================================ paper-exchange and trade (EXCHANGE engineer)
# The EXCHANGE engineer adds `tradewind paper-exchange` and `tradewind trade` here and
# registers them in `register_service_commands`. Nothing above this line needs to change.
def register_service_commands(app: typer.Typer) -> None:
    """Register `paper-exchange` and `trade` (owned by the EXCHANGE engineer)."""
