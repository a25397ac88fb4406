"""The decision policy against issue 11's targets, on the project's held-out symbols and
years: runs the walk-forward evaluation (`tradewind evaluate`: folds 2015, 2016 and
2017 + Jan–Feb 2018 of the embedded S&P 500 set; each fold's models trained on the
development symbols before it; the same engine replayed on the 73 held-out symbols
ungated and with the policy) in a scratch directory, then prints every target met or
missed. Nothing is tuned here: the figures are what the evaluation measured.

    .venv/bin/python benchmarks/bench_policy.py [--folds 2015,2016,2017] [--keep DIR]
                                                [--from-json evaluation.json]

Targets: pooled signal AUC ≥ 0.56 and every fold ≥ 0.52; profit factor policy / ungated
≥ 1.15; max drawdown policy / ungated ≤ 0.85; trades kept ≥ 0.30; out-of-distribution
false alarms on ordinary next-year bars ≤ 5% (worst fold); regime macro-F1 ≥ 0.5 and above
its majority baseline (read from the fold models' logged out-of-time metrics). Takes
several minutes (three trainings of the four models on 332 symbols); not run by pytest."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitoring.evaluation import policy_targets  # noqa: E402
from monitoring.evaluation_page import summary_lines  # noqa: E402


def run_evaluation(folds: list[int], folder: Path) -> dict[str, Any]:
    """The `evaluate` flow with its stores (MLflow, Prefect, reports) under `folder`."""
    from pipelines.runtime import use_prefect_home

    os.environ["TRADEWIND_PATHS__DATA_DIR"] = str(folder / "data")
    os.environ["TRADEWIND_PATHS__MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["TRADEWIND_PATHS__MLFLOW_ARTIFACT_ROOT"] = str(folder / "artifacts")
    os.environ["TRADEWIND_PATHS__REPORTS_DIR"] = str(folder / "reports")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with use_prefect_home(folder / "data", console_level="WARNING"):
        from pipelines.flows.evaluate import evaluate_flow

        result: dict[str, Any] = evaluate_flow(years=folds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", default="2015,2016,2017", help="test years")
    parser.add_argument("--keep", type=Path, help="keep the stores and reports here")
    parser.add_argument("--from-json", type=Path,
                        help="judge a saved evaluation.json instead of running one")
    options = parser.parse_args()
    started = time.perf_counter()
    if options.from_json:
        payload = json.loads(options.from_json.read_text())
    else:
        folds = [int(year) for year in options.folds.split(",")]
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            payload = run_evaluation(folds, options.keep.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="tradewind-bench-policy-") as folder:
                payload = run_evaluation(folds, Path(folder))
    evaluation = payload["evaluation"]
    data = payload.get("data", {})
    print(f"\nPolicy vs ungated engine: {data.get('held_out_symbols')} held-out symbols trade, "
          f"{(data.get('symbols') or 0) - (data.get('held_out_symbols') or 0)} development "
          f"symbols train")
    for line in summary_lines(evaluation):
        print(f"  {line}")
    print("\nIssue 11 targets (held-out symbols and years)")
    width = max(len(t.name) for t in policy_targets(evaluation))
    met = 0
    for target in policy_targets(evaluation):
        met += target.met
        verdict = "met" if target.met else "MISSED"
        print(f"  {target.name:<{width}}  {target.goal:>7}  {verdict:<6}  {target.measured}")
    print(f"\n{met} of {len(policy_targets(evaluation))} targets met · "
          f"{time.perf_counter() - started:.0f} s"
          + (f" · evaluation run {payload['run'].get('seconds', 0):.0f} s"
             if "run" in payload else ""))


if __name__ == "__main__":
    main()
