"""Single-row inference latency of the four registered champions (the serving hot path),
and the random forest through ONNX Runtime vs scikit-learn's `predict_proba` (the peer)
measured in the same run.

Needs trained models: run `tradewind train` first (or pass --tracking-uri).
Usage: .venv/bin/python benchmarks/bench_models_inference.py [--tracking-uri URI] [--calls N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def _timed(call: Callable[[], object], calls: int) -> np.ndarray:
    for _ in range(20):
        call()
    timings = np.empty(calls)
    for i in range(calls):
        started = time.perf_counter()
        call()
        timings[i] = (time.perf_counter() - started) * 1000
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    import skops.io

    from core.settings import load_settings
    from models.loading import load_model_set
    from models.registry import ModelRegistry
    from models.schema import SIGNAL_QUALITY_TRUSTED_TYPES

    uri = args.tracking_uri or load_settings().paths.mlflow_tracking_uri
    model_set = load_model_set(uri, "champion")
    rng = np.random.default_rng(0)
    row = pd.DataFrame(rng.normal(size=(1, len(model_set.feature_names))),
                       columns=model_set.feature_names)
    print(f"champions {model_set.versions}; runtimes {model_set.runtimes}")
    print(f"{'call':<24}{'p50 ms':>10}{'p99 ms':>10}")
    parts: dict[str, Callable[[], object]] = {
        "win_probability": lambda: model_set.win_probability(row),
        "exits": lambda: model_set.exits(row),
        "regime_probabilities": lambda: model_set.regime_probabilities(row),
        "drawdown": lambda: model_set.drawdown(row),
        "out_of_distribution": lambda: model_set.out_of_distribution(row),
    }
    parts["all four + OOD"] = lambda: [part() for part in list(parts.values())[:5]]
    for name, call in parts.items():
        timings = _timed(call, args.calls)
        print(f"{name:<24}{np.percentile(timings, 50):>10.3f}{np.percentile(timings, 99):>10.3f}")

    # Peer: the same forest through scikit-learn (n_jobs=1) in this run, when the champion
    # is a forest (an XGBoost champion is served by its own `inplace_predict`).
    import mlflow.artifacts

    registry = ModelRegistry(uri)
    version = registry.version_of("signal_quality", "champion")
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=registry.download_uri("signal_quality", version), tracking_uri=uri)
    if model_set.runtimes["signal_quality"] != "onnxruntime":
        return
    pipeline = skops.io.load(f"{folder}/model.skops", trusted=list(SIGNAL_QUALITY_TRUSTED_TYPES))
    sk_row = row[model_set.inputs("signal_quality")].to_numpy()
    sklearn_ms = _timed(lambda: pipeline.predict_proba(sk_row), args.calls)
    onnx_ms = _timed(parts["win_probability"], args.calls)
    ratio = np.percentile(sklearn_ms, 50) / np.percentile(onnx_ms, 50)
    print(f"signal_quality sklearn predict_proba p50 {np.percentile(sklearn_ms, 50):.3f} ms vs "
          f"ModelSet ({model_set.runtimes['signal_quality']}) "
          f"{np.percentile(onnx_ms, 50):.3f} ms: {ratio:.1f}x faster")

if __name__ == "__main__":
    main()
