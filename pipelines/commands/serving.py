"""`tradewind` commands for the serving area: `tradewind serve` runs the BentoML model
service (`pipelines.serve:TradewindService`) with `bentoml serve`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from core.errors import ConfigError
from core.network import require_secret_beyond_loopback
from core.settings import Settings, load_settings
from pipelines.runtime import check_port_free

SERVICE = "pipelines.serve:TradewindService"


def serve_command(host: str, port: int) -> list[str]:
    """The `bentoml serve` command line for the service."""
    return [
        sys.executable, "-m", "bentoml", "serve", SERVICE,
        "--host", host, "--port", str(port),
        "--working-dir", str(Path(__file__).resolve().parents[2]),
    ]


def _stores_from_here(settings: Settings) -> dict[str, str]:
    """The stores of this working directory, as absolute settings for the service:
    `bentoml serve` runs in the project folder, where relative paths (the MLflow store,
    the data dir, a `tradewind.yaml` here) would name other stores than `tradewind train`
    and `ingest` just filled."""
    from core.settings import config_file
    from models.tracker import absolute_tracking_uri

    paths = settings.paths
    env = {
        "TRADEWIND_PATHS__MLFLOW_TRACKING_URI": absolute_tracking_uri(paths.mlflow_tracking_uri),
        "TRADEWIND_PATHS__MLFLOW_ARTIFACT_ROOT": str(paths.mlflow_artifact_root.resolve()),
        "TRADEWIND_PATHS__DATA_DIR": str(paths.data_dir.resolve()),
    }
    named = config_file()
    if named is not None:
        env["TRADEWIND_CONFIG"] = str(named.resolve())
    return env


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def serve(
        port: int = typer.Option(None, "--port", "-p", help="Port (default: serving.port, 3000)"),
        workers: int = typer.Option(None, "--workers", "-w", min=1,
                                    help="Worker processes (default: serving.workers)"),
        host: str = typer.Option(None, "--host", help="Interface (default: serving.host)"),
    ) -> None:
        """Run the model service: POST /decide, per-model endpoints, GET /models,
        POST /reload, /readyz, /livez, /metrics. Models load from the MLflow registry by
        alias; decisions are logged to TRADEWIND_DECISION_LOG (default data/decisions.db).
        Beyond loopback only with a token: without one every endpoint would be open."""
        settings = load_settings()
        chosen_host = host or settings.serving.host
        require_secret_beyond_loopback(
            chosen_host, settings.serving.api_token is not None, what="the model service",
            hint="a token (TRADEWIND_API_TOKEN)", where="serve",
        )
        chosen_port = port or settings.serving.port
        chosen_workers = workers or settings.serving.workers
        env = {**os.environ, **_stores_from_here(settings)}
        # `bentoml serve` has no --workers for new-style services: the service reads it.
        env["TRADEWIND_SERVING__WORKERS"] = str(chosen_workers)
        env.setdefault("BENTOML_DO_NOT_TRACK", "true")
        if not 0 < chosen_port < 65536:
            raise ConfigError(f"--port {chosen_port}: give 1-65535", where="serve")
        check_port_free(chosen_host, chosen_port, where="serve")
        command = serve_command(chosen_host, chosen_port)
        try:
            # Become `bentoml serve` (exec, not a child): signals such as the SIGTERM of a
            # graceful stop reach it directly, and its exit code is the command's.
            os.execve(sys.executable, command, env)
        except OSError as exc:
            raise ConfigError(f"cannot start bentoml serve: {exc}", where="serve") from None
