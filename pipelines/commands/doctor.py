"""`tradewind doctor`: what is in place and what to do next — the settings, the bar store,
the Feast store, the MLflow registry, the model service, the Alpaca keys and the Prefect
server — one line each, ending with what to fix. Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from core.errors import TradewindError

if TYPE_CHECKING:
    from core.settings import Settings

OK, TODO, FAIL = "ok", "todo", "fail"
FEATURES_HINT = (
    "tradewind features compute --input data/bars --output data/features.parquet --store, "
    "then tradewind features materialize"
)
TRAIN_HINT = "tradewind train --source store (or --source sample)"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: its part, status (ok, todo, fail), what was found and what to do."""

    part: str
    status: str
    found: str
    fix: str = ""


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def doctor(
        timeout: float = typer.Option(
            2.0, "--timeout", min=0.1, help="Seconds to wait for each service."
        ),
    ) -> None:
        """Check the settings, stores (bar store, Feast, MLflow), the model service, the
        Alpaca keys and the Prefect server, and say what to fix. Exit 1 when something
        is broken."""
        findings = run_checks(timeout)
        console = Console()
        for finding in findings:
            colour = {OK: "green", TODO: "yellow", FAIL: "red"}[finding.status]
            fix = f" → {escape(finding.fix)}" if finding.fix else ""
            console.print(
                f"[{colour}]{finding.status:<4}[/] {finding.part:<14} {escape(finding.found)}{fix}",
                highlight=False,
                soft_wrap=True,
            )
        failed = [f for f in findings if f.status == FAIL]
        todo = [f for f in findings if f.status == TODO]
        console.print(f"{len(findings) - len(failed) - len(todo)} ok, {len(todo)} to do, "
                      f"{len(failed)} broken")
        if failed:
            raise typer.Exit(1)


def run_checks(timeout: float) -> list[Finding]:
    """Every check in the order a newcomer meets them; the settings first (every other
    check needs them)."""
    from core.settings import load_settings

    try:
        settings = load_settings()
    except TradewindError as exc:
        return [Finding("settings", FAIL, str(exc), "fix tradewind.yaml or TRADEWIND_* variables")]
    return [
        _settings(settings),
        _bar_store(settings),
        _feature_store(settings),
        _registry(settings),
        _model_service(settings, timeout),
        _alpaca(settings),
        _prefect(settings),
    ]


def _settings(settings: Settings) -> Finding:
    from core.settings import config_file

    source = config_file()
    where = f"from {source}" if source is not None else "defaults and TRADEWIND_* variables"
    return Finding(
        "settings", OK,
        f"{where}; data {settings.data.source}, symbols {','.join(settings.symbols)}",
    )


def _bar_store(settings: Settings) -> Finding:
    from features.bar_store import BarStore

    store = BarStore(settings.paths.bars_dir)
    summary = store.summary()
    if summary.empty:
        return Finding("bar store", TODO, f"{store.root} is empty",
                       "tradewind ingest --source sample")
    by_timeframe = summary.groupby("timeframe")["bars"].sum()
    held = ", ".join(f"{int(bars):,} {name}" for name, bars in by_timeframe.items())
    return Finding("bar store", OK, f"{held} bars of {summary['symbol'].nunique()} symbols")


def _feature_store(settings: Settings) -> Finding:
    from features.store import FeatureStore

    if not (settings.paths.data_dir / "feast").is_dir():  # nothing to open: nothing created
        return Finding("feature store", TODO, f"no Feast store under {settings.paths.data_dir}",
                       FEATURES_HINT)
    try:
        summary = FeatureStore(settings.paths, settings.feature_store).summary()
    except (TradewindError, OSError, ValueError) as exc:
        return Finding("feature store", FAIL, str(exc), "check settings.feature_store")
    if not summary["feature_rows"]:
        return Finding("feature store", TODO, "no feature rows",
                       FEATURES_HINT)
    return Finding("feature store", OK, f"{summary['feature_rows']:,} feature rows of "
                   f"{summary['symbols']} symbols, {summary['trades']:,} trades")


def _registry(settings: Settings) -> Finding:
    from models.registry import MODEL_NAMES, ModelRegistry
    from models.tracker import sqlite_path

    database = sqlite_path(settings.paths.mlflow_tracking_uri)
    if database is not None and not database.is_file():  # opening it would create it
        return Finding("models", TODO, f"no MLflow store at {database}",
                       TRAIN_HINT)
    try:
        registry = ModelRegistry(settings.paths.mlflow_tracking_uri)
        champions = {name: registry.aliases(name).get("champion")
                     for name in registry.names() if name in MODEL_NAMES}
    except (TradewindError, OSError, ValueError) as exc:
        return Finding("models", FAIL, str(exc), "check paths.mlflow_tracking_uri")
    missing = [name for name in MODEL_NAMES if not champions.get(name)]
    if missing:
        return Finding("models", TODO, f"no champion for {', '.join(missing)}",
                       TRAIN_HINT)
    shown = ", ".join(f"{name} v{version}" for name, version in champions.items())
    return Finding("models", OK, f"champions {shown}")


def _model_service(settings: Settings, timeout: float) -> Finding:
    import httpx

    endpoint = settings.serving.endpoint or f"http://{settings.serving.host}:{settings.serving.port}"
    try:
        ready = httpx.get(f"{endpoint}/readyz", timeout=timeout)
        models = httpx.get(f"{endpoint}/models", timeout=timeout).json()
    except (httpx.HTTPError, ValueError):
        status = FAIL if settings.serving.endpoint else TODO
        return Finding("model service", status, f"nothing answers at {endpoint}",
                       "tradewind serve (without a model endpoint the engine trades by fixed "
                       "rules)")
    if ready.status_code != 200:
        return Finding("model service", FAIL, f"{endpoint} is not ready ({ready.status_code})",
                       "tradewind train, then POST /reload or restart tradewind serve")
    champion = models.get("champion") if isinstance(models, dict) else None
    versions = champion.get("versions", {}) if isinstance(champion, dict) else {}
    shown = ", ".join(f"{name} v{version}" for name, version in versions.items())
    return Finding("model service", OK, f"{endpoint} ready{f'; serves {shown}' if shown else ''}")


def _alpaca(settings: Settings) -> Finding:
    from core.settings import AlpacaCredentials

    credentials = AlpacaCredentials()
    if not credentials.present:
        return Finding("alpaca keys", TODO, "ALPACA_API_KEY / ALPACA_SECRET_KEY not set",
                       "only needed for Alpaca; the local paper exchange takes any keys")
    if credentials.paper:
        return Finding("alpaca keys", OK, "present; paper trading")
    if not settings.broker.allow_live:
        return Finding("alpaca keys", FAIL, "ALPACA_PAPER=false but live trading is not allowed",
                       "set TRADEWIND_BROKER__ALLOW_LIVE=true for live, or ALPACA_PAPER=true")
    return Finding("alpaca keys", OK, "present; LIVE trading allowed")


def _prefect(settings: Settings) -> Finding:
    import os

    from pipelines.deployments import recorded_server

    url = os.environ.get("PREFECT_API_URL") or recorded_server(settings)
    if url is None:
        return Finding("prefect", TODO, "no Prefect server running",
                       "tradewind ui (the UIs), then tradewind deploy (the schedules)")
    return Finding("prefect", OK, f"server at {url}")
