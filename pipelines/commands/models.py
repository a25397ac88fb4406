"""`tradewind` commands for the models area: `train`, and `models list|promote|rollback|
challenger|retire`."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import ConfigError
from models.targets import figure
from pipelines.commands.options import (
    SYMBOLS_HELP,
    SYMBOLS_METAVAR,
    command_group,
    parse_day,
    parse_symbols,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
    models_app = command_group("Registered models: list, promote, roll back.")
    app.add_typer(models_app, name="models")

    @app.command()
    def train(
        model: list[str] = typer.Option(
            ["all"],
            "--model",
            "-m",
            help="all, signal_quality, exit_optimizer, regime_classifier, risk_predictor "
            "(repeatable).",
        ),
        source: str = typer.Option(
            "sp500", "--source",
            help="sp500 (embedded S&P 500 set) | sample (small embedded set) | store | a "
            "parquet/CSV file or folder.",
        ),
        index_source: str | None = typer.Option(
            None,
            "--index-source",
            help="File/folder with the index series (SPX/SPY/COMP) when not in --source.",
        ),
        symbols: list[str] | None = typer.Option(
            None, "--symbols", "--symbol", metavar=SYMBOLS_METAVAR,
            help=f"Stocks, {SYMBOLS_HELP} (default: all).",
        ),
        max_symbols: int | None = typer.Option(
            None, "--max-symbols", help="Use the first N stocks (alphabetical)."
        ),
        start: str | None = typer.Option(None, "--start", help="First signal date (YYYY-MM-DD)."),
        end: str | None = typer.Option(None, "--end", help="Last bar date (YYYY-MM-DD)."),
        store_trades: bool = typer.Option(
            True,
            "--store-trades/--no-store-trades",
            help="Add the closed trades collected in the feature store as events.",
        ),
        include_held_out: bool = typer.Option(
            False, "--include-held-out/--no-include-held-out",
            help="Train on the held-out symbols too (production use: the evaluation and "
            "the demo judge models on them, so they are left out by default).",
        ),
        timeframe: str = typer.Option(
            "1Day", "--timeframe",
            help="Bars to learn from: 1Day, or 1Min|5Min|15Min from an intraday "
            "parquet/CSV --source (5Min/15Min made of 1Min bars). Recorded with every "
            "registered version; the service serves only engines of the same timeframe.",
        ),
        as_json: bool = typer.Option(False, "--json/--no-json", help="Print the results as JSON."),
    ) -> None:
        """Train the models on real bars, log them to MLflow and register them (the
        first version of each model becomes champion). The held-out symbols (a fixed fifth
        of any universe, `core.universe`) are left out unless --include-held-out."""
        from core.bars import check_timeframe
        from core.settings import load_settings
        from models.inventory import HEADLINES
        from models.latency import measure_latency
        from models.loading import load_model_set
        from models.registry import MODEL_NAMES
        from pipelines.training import TrainRequest, run_training

        # MLflow draws a progress bar per artifact it re-reads while logging: noise here.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        names = MODEL_NAMES if "all" in model else tuple(dict.fromkeys(model))
        unknown = [name for name in names if name not in MODEL_NAMES]
        if unknown:
            raise ConfigError(
                f"--model {', '.join(unknown)}: not a model; use all or "
                f"{', '.join(MODEL_NAMES)}",
                where="train",
            )
        parse_day(start, "--start")
        parse_day(end, "--end")
        chosen = parse_symbols(symbols)
        request = TrainRequest(
            models=names,
            source=source,
            index_source=index_source,
            symbols=tuple(chosen) if chosen else None,
            max_symbols=max_symbols,
            start=start,
            end=end,
            include_store_trades=store_trades,
            include_held_out=include_held_out,
            timeframe=check_timeframe(timeframe),
        )
        settings = load_settings()
        console = Console(stderr=as_json)
        with console.status("training…") as status:

            def progress(message: str) -> None:
                status.update(message)
                console.log(message)

            report = run_training(request, settings, progress=progress)
            latency = None
            if set(MODEL_NAMES) <= {r.name for r in report.results}:
                status.update("measuring single-row latency")
                latency = measure_latency(
                    load_model_set(settings.paths.mlflow_tracking_uri, "champion")
                )
        if as_json:
            payload = {
                "source": source,
                "timeframe": timeframe,
                "held_out_left_out": report.held_out_left_out,
                "events": len(report.data.events),
                "market_days": len(report.data.market),
                "models": [
                    {
                        "name": r.name,
                        "version": r.version,
                        "aliases": r.aliases,
                        "seconds": r.seconds,
                        "window": r.window,
                        "out_of_time": r.metrics,
                    }
                    for r in report.results
                ],
                "latency_ms": latency,
            }
            typer.echo(json.dumps(payload, indent=2, default=str))
            return
        table = Table(
            title=f"Out-of-time metrics ({source}, {timeframe} bars, "
            f"{len(report.data.events)} signals, {len(report.data.market)} market bars)"
        )
        # Readable at 80 columns: the names are never cut.
        for column, justify in (("model", "left"), ("v", "right"), ("aliases", "left"),
                                ("s", "right"), ("metric", "left"), ("value", "right")):
            table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for result in report.results:
            own = sorted(a for a, v in result.aliases.items() if v == result.version)
            for position, key in enumerate(HEADLINES[result.name]):
                first = position == 0
                table.add_row(
                    result.name if first else "",
                    result.version if first else "",
                    ",".join(own) if first else "",
                    f"{result.seconds:.1f}" if first else "",
                    key,
                    figure(result.metrics.get(key)),
                    end_section=position == len(HEADLINES[result.name]) - 1,
                )
        console.print(table)
        console.print(_targets_table(report.results, latency))

    @models_app.command("list")
    def list_models(
        as_json: bool = typer.Option(False, "--json/--no-json", help="Print as JSON."),
    ) -> None:
        """Each model's versions with aliases, key out-of-time metrics and data window."""
        from core.settings import load_settings
        from models.inventory import version_rows

        rows = version_rows(load_settings().paths.mlflow_tracking_uri)
        if as_json:
            typer.echo(json.dumps(rows, indent=2, default=str))
            return
        # Readable at 80 columns: names never cut, one alias and one metric per line.
        table = Table(title="Registered models (all fields: --json)", show_lines=True)
        table.add_column("model", no_wrap=True)
        table.add_column("v", justify="right", no_wrap=True)
        table.add_column("aliases", no_wrap=True)
        table.add_column("trained on", no_wrap=True)
        table.add_column("out-of-time metrics", overflow="fold")
        for row in rows:
            first, _, last = row["data_window"].partition("..")
            table.add_row(
                row["name"],
                row["version"],
                "\n".join(row["aliases"]),
                f"{row['timeframe']} bars\n{first}\n→ {last}" if last else first,
                "\n".join(f"{k} {figure(v)}" for k, v in list(row["metrics"].items())[:3]),
            )
        Console().print(table)

    @models_app.command()
    def promote(
        name: str = typer.Argument(..., help="Registered model name."),
        reason: str = typer.Option("promoted from the command line", "--reason"),
    ) -> None:
        """challenger → champion (the old champion becomes previous)."""
        _lifecycle("promote", name, reason)

    @models_app.command()
    def rollback(
        name: str = typer.Argument(..., help="Registered model name."),
        reason: str = typer.Option("rolled back from the command line", "--reason"),
    ) -> None:
        """previous → champion."""
        _lifecycle("rollback", name, reason)

    @models_app.command()
    def challenger(
        name: str = typer.Argument(..., help="Registered model name."),
        version: str = typer.Argument(..., help="Version to put in the A/B arm."),
        reason: str = typer.Option("set from the command line", "--reason"),
    ) -> None:
        """Make VERSION the challenger of NAME."""
        _lifecycle("challenger", name, reason, version)

    @models_app.command()
    def retire(
        name: str = typer.Argument(..., help="Registered model name."),
        reason: str = typer.Option("retired from the command line", "--reason"),
    ) -> None:
        """Remove NAME's challenger."""
        _lifecycle("retire", name, reason)


def _lifecycle(action: str, name: str, reason: str, version: str | None = None) -> None:
    from core.settings import load_settings
    from models.registry import ModelRegistry

    registry = ModelRegistry(load_settings().paths.mlflow_tracking_uri)
    if action == "promote":
        aliases = registry.promote(name, reason)
    elif action == "rollback":
        aliases = registry.rollback(name, reason)
    elif action == "challenger" and version is not None:
        aliases = registry.set_challenger(name, version, reason)
    else:
        aliases = registry.retire_challenger(name, reason)
    shown = ", ".join(f"{alias}=v{v}" for alias, v in sorted(aliases.items()))
    Console().print(f"{name}: {shown}")


def _targets_table(results: list[Any], latency: dict[str, float] | None) -> Table:
    """The original plan's targets next to what was measured out of time."""
    from models.targets import seed_targets

    table = Table(title="Seed targets vs measured (out of time)")
    for column in ("target", "plan", "measured"):
        table.add_column(column)
    for row in seed_targets({r.name: r.metrics for r in results}, latency):
        table.add_row(*row)
    return table
