"""The experiment tracker the training template writes to: a small interface with one
MLflow implementation. It is passed in (never a module-level global) so tests point it at
a temporary store and the template never knows which tracking server it talks to.

One experiment per model, each with an explicit artifact location under the artifact
root, so runs of different models never share folders. `RunReader` reads finished runs
back (their tags, metrics and logged model) for the flows, the CLI and the reports: MLflow
is only ever touched inside `models/`."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import ConfigError, NotFoundError


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """Where a logged model lives: its URI (for registration) and the run that made it."""

    model_uri: str
    run_id: str


class TrackedRun(Protocol):
    """One training run: parameters, metrics, artifacts and the model it produced."""

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_figure(self, figure: Any, artifact_file: str) -> None: ...

    def log_dict(self, payload: Mapping[str, Any], artifact_file: str) -> None: ...

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None: ...

    def log_model(self, flavor: str, model: Any, **kwargs: Any) -> LoggedModel: ...


class Tracker(Protocol):
    """Opens runs in the experiment named after a model."""

    tracking_uri: str

    def run(
        self, experiment: str, run_name: str, tags: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[TrackedRun]: ...


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (None for other back ends)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix) :])


def absolute_tracking_uri(tracking_uri: str) -> str:
    """A `sqlite:///relative` tracking URI made absolute (child processes run elsewhere)."""
    database = sqlite_path(tracking_uri)
    if database is None or database.is_absolute():
        return tracking_uri
    return f"sqlite:///{database.resolve()}"


def ui_command(tracking_uri: str, artifact_root: Path, *, host: str, port: int) -> list[str]:
    """The MLflow UI on a store (`python -m mlflow ui`), for a child process."""
    import sys

    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
            "--default-artifact-root", artifact_root.resolve().as_uri(),
            "--host", host, "--port", str(port)]


def prepare_store(tracking_uri: str) -> None:
    """Create the folder of a SQLite tracking database, so a fresh checkout just works."""
    database = sqlite_path(tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)


class _MlflowRun:
    """A `TrackedRun` over MLflow's fluent API, valid inside `MlflowTracker.run`."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        # MLflow caps a param value at 6000 characters; long lists go to artifacts instead.
        mlflow.log_params({key: str(value)[:6000] for key, value in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import math

        import mlflow

        finite = {key: float(value) for key, value in metrics.items() if math.isfinite(value)}
        mlflow.log_metrics(finite, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        mlflow.set_tags({key: str(value)[:5000] for key, value in tags.items()})

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        import mlflow

        mlflow.log_figure(figure, artifact_file)

    def log_dict(self, payload: Mapping[str, Any], artifact_file: str) -> None:
        import mlflow

        mlflow.log_text(json.dumps(payload, indent=2, sort_keys=True, default=str), artifact_file)

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_dir)

    def log_model(self, flavor: str, model: Any, **kwargs: Any) -> LoggedModel:
        import mlflow.pytorch
        import mlflow.sklearn
        import mlflow.xgboost

        loggers = {
            "sklearn": mlflow.sklearn.log_model,
            "xgboost": mlflow.xgboost.log_model,
            "pytorch": mlflow.pytorch.log_model,
        }
        if flavor not in loggers:
            raise ConfigError(f"unknown model flavor '{flavor}'", where="tracker.log_model")
        info = loggers[flavor](model, name="model", **kwargs)
        return LoggedModel(model_uri=info.model_uri, run_id=self.run_id)


class MlflowTracker:
    """MLflow behind the `Tracker` interface.

    `tracking_uri` is e.g. `sqlite:///mlruns/mlflow.db`; `artifact_root` the folder under
    which each experiment gets `<artifact_root>/<experiment>`."""

    def __init__(self, tracking_uri: str, artifact_root: Path) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root

    def experiment_id(self, experiment: str) -> str:
        from mlflow import MlflowClient

        prepare_store(self.tracking_uri)
        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            return str(found.experiment_id)
        location = (self.artifact_root / experiment).resolve()
        location.mkdir(parents=True, exist_ok=True)
        return str(client.create_experiment(experiment, artifact_location=location.as_uri()))

    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: Mapping[str, str]) -> Iterator[TrackedRun]:
        import mlflow

        experiment_id = self.experiment_id(experiment)
        previous_uri = mlflow.get_tracking_uri()
        # The fluent API (needed by the model flavors) reads a process-wide URI; set it for
        # the life of this run only and put the caller's back afterwards.
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=run_name, tags=dict(tags)
            ) as active:
                yield _MlflowRun(active.info.run_id)
        finally:
            mlflow.set_tracking_uri(previous_uri)


class RunReader:
    """Finished runs of one MLflow store, read by run id."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri)

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self._client.get_run(run_id).data.tags)

    def metrics(self, run_id: str) -> dict[str, float]:
        logged = self._client.get_run(run_id).data.metrics
        return {key: float(value) for key, value in logged.items()}

    def logged_model_uri(self, run_id: str) -> str:
        """The `models:/m-…` URI of the (last) model a run logged."""
        run = self._client.get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs else []
        if not outputs:
            raise NotFoundError(f"training run {run_id} logged no model", where="tracker")
        return f"models:/{outputs[-1].model_id}"

    def logged_model_location(self, run_id: str) -> str:
        """Where the files of the model a run logged are (its own artifact location: a
        `models:/m-…` URI would resolve through MLflow's process-wide tracking URI)."""
        model_id = self.logged_model_uri(run_id).removeprefix("models:/")
        return str(self._client.get_logged_model(model_id).artifact_location)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for artifacts written to disk before logging."""
    with tempfile.TemporaryDirectory(prefix="tradewind-") as folder:
        yield Path(folder)
