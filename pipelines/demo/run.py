"""`run_demo`: the demo's Prefect home under the data dir, a fresh demo folder, then the
`demo` flow (`pipelines.demo.flow`). Nothing here imports Prefect before the Prefect home
is set: Prefect reads its settings when it is first imported."""

from __future__ import annotations

import os
import shutil
import warnings
from typing import Any

from rich.console import Console

from core.settings import load_settings
from pipelines.demo.narration import terminal
from pipelines.demo.plan import DemoPlan
from pipelines.runtime import free_port, use_prefect_home


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
    from monitoring.trigger import RetrainStateFile

    console = console or Console()
    _quiet()
    settings = load_settings()
    demo_dir = (settings.paths.data_dir / "demo").resolve()
    # The demo's own journal, decision log and loop state start afresh on every run.
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True, exist_ok=True)
    (settings.paths.data_dir / "loop").mkdir(parents=True, exist_ok=True)
    # The retrain trigger counts trades since the last retrain of this journal: a fresh
    # journal starts with a fresh count.
    RetrainStateFile.under(settings.paths.data_dir).write(
        f"sqlite:///{(demo_dir / 'journal.db').resolve()}", {}
    )
    with use_prefect_home(settings.paths.data_dir, console_level="WARNING"), terminal(console):
        # Imported only now: Prefect reads its settings (database, console level) on import.
        from pipelines.demo.flow import demo_flow

        report: dict[str, Any] = demo_flow(
            plan=plan.model_dump(), port=port or free_port(), demo_dir=str(demo_dir)
        )
    return report
