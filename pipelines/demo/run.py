"""`run_demo`: the demo's Prefect home under the data dir, a fresh demo folder, then the
`demo` flow (`pipelines.demo.flow`). Nothing here imports Prefect before the Prefect home
is set: Prefect reads its settings when it is first imported.

The terminal shows the narrative only: Python warnings (SQLAlchemy deprecations, MLflow's
evaluation warnings, feature data-quality notes) and the libraries' log records (MLflow,
Prefect, Feast, alembic, HTTP clients) go to `<data_dir>/demo/demo.log` instead."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from core.settings import load_settings
from pipelines.demo.narration import terminal
from pipelines.demo.plan import LOG_FILE, DemoPlan
from pipelines.runtime import free_port, use_prefect_home

LIBRARY_LOGGERS = ("mlflow", "alembic", "feast", "urllib3", "httpx", "httpcore", "prefect",
                   "py.warnings", "sqlalchemy", "bentoml", "matplotlib")


@contextlib.contextmanager
def library_output(log_path: Path) -> Iterator[None]:
    """Warnings and library log records into `log_path` for the block, not the terminal
    (MLflow's download bars are switched off: they write to the terminal directly)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # keep our handler on import
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [(list(log.handlers), log.propagate, log.level) for log in loggers]
    for log in loggers:
        log.handlers, log.propagate, log.level = [handler], False, logging.WARNING
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        for log, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            log.handlers, log.propagate, log.level = handlers, propagate, level
        handler.close()


def run_demo(
    plan: DemoPlan, *, port: int | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run the demo end to end; returns the report dict (also written to disk)."""
    from monitoring.trigger import RetrainStateFile

    console = console or Console()
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
    plan = plan.resolved()
    with (
        library_output(demo_dir / LOG_FILE),
        use_prefect_home(settings.paths.data_dir, console_level="CRITICAL"),
        terminal(console),
    ):
        # Imported only now: Prefect reads its settings (database, console level) on import.
        from pipelines.demo.flow import demo_flow

        report: dict[str, Any] = demo_flow(
            plan=plan.model_dump(), port=port or free_port(), demo_dir=str(demo_dir)
        )
    return report
