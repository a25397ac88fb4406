"""The decision policy against issue 11's targets, on the project's held-out symbols and
years: runs the walk-forward evaluation (`tradewind evaluate`: folds 2015, 2016 and
2017 + Jan–Feb 2018 of the embedded S&P 500 set; each fold's models trained on the
development symbols before it; the same engine replayed on the 73 held-out symbols
ungated and with the policy) in a scratch directory, then prints every target met or
missed. Nothing is tuned here: the figures are what the evaluation measured.

    .venv/bin/python benchmarks/bench_policy.py [--folds 2015,2016,2017] [--keep DIR]
                                                [--from-json evaluation.json]
    .venv/bin/python benchmarks/bench_policy.py --timeframe 1Min \
        --source ../shared/data/intraday/minute_2021.parquet --symbols SPY [--fold-days 5]

On minute bars (`--timeframe 1Min`) the folds are blocks of sessions (`--folds` their
first sessions, default the last three weeks) and, with no held-out symbol that has
minute history, they trade the symbols they trained on: out of time only, and printed so.

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


def run_evaluation(folds: list[int] | list[str], folder: Path,
                   **intraday: Any) -> dict[str, Any]:
    """The `evaluate` flow with its stores (MLflow, Prefect, reports) under `folder`."""
    from pipelines.runtime import use_prefect_home

    os.environ["TRADEWIND_PATHS__DATA_DIR"] = str(folder / "data")
    os.environ["TRADEWIND_PATHS__MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["TRADEWIND_PATHS__MLFLOW_ARTIFACT_ROOT"] = str(folder / "artifacts")
    os.environ["TRADEWIND_PATHS__REPORTS_DIR"] = str(folder / "reports")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with use_prefect_home(folder / "data", console_level="WARNING"):
        from pipelines.flows.evaluate import evaluate_flow

        if intraday:
            result: dict[str, Any] = evaluate_flow(fold_starts=folds or None, **intraday)
        else:
            result = evaluate_flow(years=folds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", default=None,
                        help="test years (default 2015,2016,2017); intraday: first sessions")
    parser.add_argument("--timeframe", default="1Day", help="1Day, or 1Min|5Min|15Min")
    parser.add_argument("--source", default=None, help="intraday: a minute-bar file")
    parser.add_argument("--symbols", default=None, help="intraday: e.g. SPY")
    parser.add_argument("--fold-days", type=int, default=5, help="intraday: sessions per fold")
    parser.add_argument("--keep", type=Path, help="keep the stores and reports here")
    parser.add_argument("--from-json", type=Path,
                        help="judge a saved evaluation.json instead of running one")
    options = parser.parse_args()
    started = time.perf_counter()
    if options.from_json:
        payload = json.loads(options.from_json.read_text())
    else:
        intraday: dict[str, Any] = {}
        folds: list[int] | list[str]
        if options.timeframe == "1Day":
            folds = [int(year) for year in (options.folds or "2015,2016,2017").split(",")]
        else:
            folds = [day for day in (options.folds or "").split(",") if day]
            intraday = {"timeframe": options.timeframe,
                        "source": str(Path(options.source).resolve()),
                        "symbols": options.symbols.split(",") if options.symbols else None,
                        "fold_sessions": options.fold_days}
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            payload = run_evaluation(folds, options.keep.resolve(), **intraday)
        else:
            with tempfile.TemporaryDirectory(prefix="tradewind-bench-policy-") as folder:
                payload = run_evaluation(folds, Path(folder), **intraday)
    evaluation = payload["evaluation"]
    data = payload.get("data", {})
    if evaluation.get("note"):
        print(f"\nPolicy vs ungated engine on {evaluation.get('timeframe')} bars of "
              f"{data.get('symbols')} symbol(s), {data.get('sessions')} sessions")
    else:
        print(f"\nPolicy vs ungated engine: {data.get('held_out_symbols')} held-out symbols "
              f"trade, {(data.get('symbols') or 0) - (data.get('held_out_symbols') or 0)} "
              "development symbols train")
    for line in summary_lines(evaluation):
        print(f"  {line}")
    print("\nIssue 11 targets (" + ("out of time only, the same symbols: not what the "
          "targets ask" if evaluation.get("note") else "held-out symbols and years") + ")")
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
