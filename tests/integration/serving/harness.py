"""Shared by the serving integration tests: tiny real models trained once into a
temporary MLflow store, and a real `bentoml serve` subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SERVICE = "pipelines.serve:TradewindService"
TOKEN = "integration-test-token-7f3a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition()` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)  # polling a condition with a deadline, not a fixed wait
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Server:
    """One `bentoml serve` of the Tradewind service."""

    tracking_uri: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    workers: int | None = None  # set: start through `tradewind serve --workers N`
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def decision_log(self) -> Path:
        return self.workdir / "decisions.db"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"bentoml-{self.port}.log"

    def start(self, *, ready_timeout: float = 120.0) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TRADEWIND_", "ALPACA_"))
        }
        env.update(
            {
                "BENTOML_DO_NOT_TRACK": "true",
                "BENTOML_HOME": str(self.workdir / "bentoml"),
                "TRADEWIND_PATHS__MLFLOW_TRACKING_URI": self.tracking_uri,
                "TRADEWIND_PATHS__DATA_DIR": str(self.workdir / "data"),
                "TRADEWIND_DECISION_LOG": str(self.decision_log),
                "PYTHONPATH": str(PROJECT_ROOT),
                **self.env,
            }
        )
        command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1",
                   "--port", str(self.port), "--working-dir", str(PROJECT_ROOT)]
        if self.workers is not None:
            command = [sys.executable, "-c", "from pipelines.cli import main; main()", "serve",
                       "--host", "127.0.0.1", "--port", str(self.port),
                       "--workers", str(self.workers)]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"bentoml serve exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
            return False

        wait_for(ready, timeout=ready_timeout, what="the model service to be ready", interval=0.2)
        return self

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM to the server's process group); returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None
        return process.returncode

    def output(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


# -- tiny real models ------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModels:
    """Four models trained once on real daily bars (bokeh-sampledata AAPL/MSFT/IBM with
    the S&P 500 index from arch) and registered in a temporary MLflow store as version 1
    (champion). `requests` are real signals of the same data with their feature rows."""

    tracking_uri: str
    root: Path
    requests: list[dict[str, Any]]
    bars: Any  # pd.DataFrame: the tradable bars
    index_bars: Any  # pd.DataFrame: SPX
    features: Any  # pd.DataFrame: compute_features of the bars


MODEL_NAMES = ("signal_quality", "exit_optimizer", "regime_classifier", "risk_predictor")


def train_tiny_models(root: Path) -> TrainedModels:
    import warnings

    import numpy as np
    import pandas as pd

    from features.compute import compute_features
    from models.datasets import build_training_data
    from models.exit_optimizer import ExitOptimizerConfig, ExitOptimizerModel
    from models.regime import RegimeConfig, RegimeModel
    from models.registry import ModelRegistry
    from models.risk import RiskConfig, RiskModel
    from models.signal_quality import SignalQualityConfig, SignalQualityModel
    from models.template import TrainingContext, WalkForwardSplit, train_model
    from models.tracker import MlflowTracker
    from trading.adapters.sample.data import SampleMarketData
    from trading.strategies import STRATEGIES

    root.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    bars = SampleMarketData().history(
        ["AAPL", "MSFT", "IBM", "SPX"],
        start=datetime(2007, 1, 1, tzinfo=UTC),
        end=datetime(2012, 12, 31, tzinfo=UTC),
    )
    index_bars = bars[bars["symbol"] == "SPX"].reset_index(drop=True)
    stocks = bars[bars["symbol"] != "SPX"].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = compute_features(stocks, index_bars)
    merged = stocks.merge(features, on=["symbol", "timestamp"], how="inner")
    signals = pd.concat(
        [
            strategy.signals_frame(group)
            for strategy in STRATEGIES.values()
            for _, group in merged.groupby("symbol", sort=True)
        ],
        ignore_index=True,
    )
    data = build_training_data(stocks, features, signals, index_bars=index_bars)
    tracker = MlflowTracker(tracking_uri, root / "artifacts")
    registry = ModelRegistry(tracking_uri)
    context = TrainingContext(source="bokeh-sampledata", split=WalkForwardSplit(n_folds=2))
    for model in (
        SignalQualityModel(SignalQualityConfig(estimator="random_forest", rf_n_estimators=20)),
        ExitOptimizerModel(ExitOptimizerConfig(n_estimators=30)),
        RegimeModel(RegimeConfig()),
        RiskModel(RiskConfig(n_estimators=30)),
    ):
        train_model(model, data, tracker=tracker, registry=registry, context=context)

    rows = signals.merge(features, on=["symbol", "timestamp"], how="inner")
    rows = rows[rows["atr_14"] > 0].reset_index(drop=True)
    feature_columns = [c for c in features.columns if c not in ("symbol", "timestamp")]
    requests = []
    for row in rows.itertuples(index=False):
        record = row._asdict()
        requests.append(
            {
                "signal": {
                    "symbol": record["symbol"],
                    "side": str(record["side"]),
                    "strategy": record["strategy"],
                    "timestamp": pd.Timestamp(record["timestamp"]).isoformat(),
                    "price": float(record["price"]),
                },
                "features": {
                    name: None if not np.isfinite(record[name]) else float(record[name])
                    for name in feature_columns
                },
            }
        )
    return TrainedModels(tracking_uri, root, requests, stocks, index_bars, features)


def register_copy(tracking_uri: str, name: str, of_version: str = "1") -> str:
    """A new registered version of `name` with the artifacts of `of_version` (a cheap
    second "training" for routing and reload tests: same numbers, new version)."""
    from mlflow import MlflowClient


    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    source = client.get_model_version(name, of_version)
    # Straight through MLflow: `ModelRegistry.register` is idempotent on the run (a re-run
    # finds its version), and a copy must be a new version of the same run.
    copy = client.create_model_version(
        name, source=source.source, run_id=source.run_id, description=f"copy of v{of_version}"
    )
    return str(copy.version)


def register_broken(tracking_uri: str, name: str, root: Path) -> str:
    """A registered version whose artifact is not a model (a corrupt upload)."""
    from models.registry import ModelRegistry

    folder = root / f"broken-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text("this is not an MLmodel file: {{{\n")
    registry = ModelRegistry(tracking_uri)
    run_id = registry.run_id(name, "1")
    return registry.register(name, str(folder), run_id=run_id, model_card="broken on purpose")


def set_alias(tracking_uri: str, alias: str, versions: dict[str, str] | None) -> None:
    """Point `alias` of every model at `versions[name]` (None: remove the alias)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for name in MODEL_NAMES:
        if versions is None:
            with contextlib.suppress(Exception):
                client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, versions[name])


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serve_versions(
    server: Server, champion: dict[str, str], challenger: dict[str, str] | None
) -> None:
    """Point the aliases at these versions and wait until the server serves them."""
    set_alias(server.tracking_uri, "champion", champion)
    set_alias(server.tracking_uri, "challenger", challenger)
    response = httpx.post(f"{server.url}/reload", json={}, headers=bearer(), timeout=120)
    assert response.status_code == 200, response.text

    def serving() -> bool:
        status = httpx.get(f"{server.url}/models", timeout=10).json()
        served_challenger = status["challenger"]["versions"] if status["challenger"] else None
        return bool(status["champion"]["versions"] == champion
                    and served_challenger == challenger)

    wait_for(serving, timeout=60, what=f"champion {champion} and challenger {challenger}")


def fill_online_store(data_dir: Path, features: Any) -> None:
    """Write the features to a Feast store under `data_dir` and materialize them, as the
    feature pipeline does, so `/decide` without features has something to read."""
    from core.settings import PathSettings
    from features.store import FeatureStore

    store = FeatureStore(PathSettings(data_dir=data_dir))
    store.apply()
    store.write_features(features)
    store.materialize()
