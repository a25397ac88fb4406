"""`tradewind features ...`: list the catalogue, compute features for a bar file, and
run the feature store (apply, write, materialize, online read)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import DataValidationError, NotFoundError
from core.strict_json import dumps_strict
from pipelines.commands.options import command_group

if TYPE_CHECKING:
    from features.store import FeatureStore


def _read_bars(path: Path, what: str) -> pd.DataFrame:
    """A bar (or feature) file, or the offline bar store's folder (its daily bars)."""
    import pyarrow as pa

    if not path.exists():
        raise NotFoundError(f"{what} file {path} does not exist", where="features compute")
    if path.is_dir():
        if what == "bar" and any(path.glob("timeframe=*")):
            from features.bar_store import BarStore

            return BarStore(path).read()
        raise DataValidationError(
            f"{path} is a folder; give one {what} file (parquet or csv), or the bar store's "
            "folder (data/bars) that `tradewind ingest` fills",
            where="features compute",
        )
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataValidationError(
            f"cannot read {what} file {path}: {exc}", where="features compute"
        ) from None


def _feature_store(offline_store: str | None = None) -> FeatureStore:
    """The feature store on the settings' paths and back ends (`offline_store` names
    another offline back end for this command)."""
    from core.settings import StoreBackend, load_settings
    from features.store import FeatureStore

    settings = load_settings()
    config = settings.feature_store
    if offline_store is not None:
        config = config.model_copy(update={"offline_store": StoreBackend(type=offline_store)})
    return FeatureStore(settings.paths, config)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
    group = command_group("Feature catalogue, computation and the Feast feature store.")
    app.add_typer(group, name="features")
    console = Console()

    @group.command("list")
    def list_features(
        as_json: bool = typer.Option(
            False, "--json/--no-json", help="Print a JSON list of objects."
        ),
        group_name: str | None = typer.Option(None, "--group", help="Only this group."),
    ) -> None:
        """List every feature: name, group, lookback, unit and description."""
        from features.catalogue import CATALOGUE, feature_names

        chosen = set(feature_names(group_name)) if group_name else None
        specs = [s for s in CATALOGUE if chosen is None or s.name in chosen]
        if as_json:
            typer.echo(json.dumps([s.as_dict() for s in specs], indent=2))
            return
        table = Table(title=f"{len(specs)} features")
        for column in ("name", "group", "lookback", "unit", "description"):
            table.add_column(column)
        for s in specs:
            table.add_row(s.name, s.group, str(s.lookback), s.unit, s.description)
        console.print(table)

    @group.command("compute")
    def compute(
        input_path: Path = typer.Option(..., "--input", help="Bar file (parquet or csv)."),
        output_path: Path = typer.Option(..., "--output", help="Feature parquet to write."),
        index_path: Path | None = typer.Option(
            None, "--index", help="Index bars (SPY/SPX, optional VIX) when the bar file has none."
        ),
        news_path: Path | None = typer.Option(
            None, "--news", help="Headlines (symbol, timestamp, headline) for sentiment."
        ),
        store: bool = typer.Option(
            False, "--store/--no-store",
            help="Also write the features into the offline feature store.",
        ),
        overwrite_missing: bool = typer.Option(
            False, "--overwrite-missing",
            help="Let missing values (e.g. market features without --index) replace stored ones.",
        ),
    ) -> None:
        """Compute the whole catalogue (except position features) for a bar file."""
        from features.compute import compute_feature_set

        bars = _read_bars(input_path, "bar")
        index_bars = _read_bars(index_path, "index") if index_path else None
        news = _read_bars(news_path, "news") if news_path else None
        result = compute_feature_set(bars, index_bars, news=news)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        result.frame.to_parquet(output_path, index=False)
        frame = result.frame
        console.print(
            f"{len(frame):,} rows x {len(frame.columns) - 2} features for "
            f"{frame['symbol'].nunique()} symbols → {output_path}"
        )
        for item in result.warnings:
            console.print(f"[yellow]warning:[/] {escape(item.message)}", highlight=False)
        if store:
            written = _feature_store().write_features(frame, overwrite_missing=overwrite_missing)
            console.print(f"{written:,} rows written to the offline store")

    @group.command("apply")
    def apply() -> None:
        """Register the Feast entity, sources and feature views (registry under data/)."""
        store = _feature_store()
        store.apply()
        console.print(f"feature store applied in {store.root}")

    @group.command("write")
    def write(
        input_path: Path = typer.Option(..., "--input", help="Feature parquet to store."),
        overwrite_missing: bool = typer.Option(
            False, "--overwrite-missing", help="Let missing values replace stored ones."
        ),
    ) -> None:
        """Upsert a feature file into the offline store (idempotent; stored values are not
        replaced by missing ones unless told)."""
        frame = _read_bars(input_path, "feature")
        written = _feature_store().write_features(frame, overwrite_missing=overwrite_missing)
        console.print(f"{written:,} rows written to the offline store")

    @group.command("materialize")
    def materialize(
        end: datetime | None = typer.Option(None, "--end", help="Up to this time (UTC)."),
        feast_engine: bool = typer.Option(
            False, "--feast-engine/--no-feast-engine",
            help="Use Feast's own (much slower) materialization.",
        ),
    ) -> None:
        """Load each symbol's latest features into the online store (SQLite)."""
        store = _feature_store("feast" if feast_engine else None)
        store.apply()
        written = store.materialize(end)  # naive means UTC
        console.print(f"materialized {written}; offline store: {store.summary()}")

    @group.command("online")
    def online(symbol: str = typer.Argument(..., help="Ticker")) -> None:
        """Print a symbol's latest online features as JSON."""
        values = _feature_store().online_features(symbol.upper())
        typer.echo(dumps_strict(values, indent=2))  # NaN is null: JSON has no NaN
