"""The `optimize` flow: Bayesian search (Optuna, TPE sampler with a fixed seed) over one
strategy's entry parameters and its exits, on the in-sample window, then ONE evaluation
of the best parameters (and of the current defaults, for comparison) on the out-of-time
window that the search never saw. The result is a proposal file under
`<reports_dir>/optimization/` that a user reads and accepts by hand (the settings keys and
strategy config to change are in it); nothing is applied automatically.

Wiring only: the search space (each strategy config's own, plus the exits), the TPE
search in batches, the candidate replay, the objective and the windows are
`trading.optimization`, the proposal is `trading.proposal`; each batch's candidates run as
tasks on the configured runner (`pipelines.compute`; `compute.trials_per_batch` at once).

The in-sample window is the champion signal_quality model's training window when there is a
champion (its run tags), else all but the last `out_of_time_fraction` of the stored bars;
the out-of-time window runs from its end to the last bar."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import ConfigError
from core.settings import load_settings
from core.symbols import CONTEXT_ONLY_SYMBOLS
from core.utc import utc_now
from pipelines.compute import ComputeTaskRunner, results
from trading.optimization import (
    CandidateEvaluator,
    Window,
    default_params,
    search,
    split_window,
)
from trading.proposal import proposal_document, proposal_markdown
from trading.strategies import STRATEGIES


def _champion_window(tracking_uri: str) -> dict[str, Any] | None:
    """The champion's training window (start, end of the fitted rows), or None without one."""
    from core.errors import NotFoundError
    from pipelines.tasks import champion_training_window

    try:
        return dict(champion_training_window.fn(tracking_uri))
    except NotFoundError:
        return None


@task(name="load-optimization-bars", retries=2, retry_delay_seconds=3)
def load_bars(symbols: list[str], timeframe: str, overrides: dict[str, Any]) -> pd.DataFrame:
    """Stored bars of the symbols plus the index series (market context)."""
    from features.bar_store import BarStore

    settings = load_settings(**overrides)
    store = BarStore(settings.paths.bars_dir)
    stored = set(store.symbols(timeframe))
    wanted = [s for s in symbols if s in stored]
    if not wanted:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)} ({timeframe}); run the ingest flow first",
            where="optimize",
        )
    context = sorted(stored & CONTEXT_ONLY_SYMBOLS)
    return store.read(symbols=sorted(set(wanted) | set(context)), timeframe=timeframe)


@task(name="optuna-trial", cache_policy=NO_CACHE)
def run_candidate(evaluator: CandidateEvaluator, strategy: str, params: dict[str, Any],
                  window: Window) -> dict[str, Any]:
    """One candidate's in-sample figures (the out-of-time window is not touched)."""
    return evaluator.run(strategy, params, *window.in_sample)


@flow(name="optimize", log_prints=True, task_runner=ComputeTaskRunner())
def optimize_flow(
    strategy: str = "momentum",
    trials: int = 30,
    seed: int | None = None,
    symbols: list[str] | None = None,
    timeframe: str = "1Day",
    train_start: str | None = None,
    train_end: str | None = None,
    test_end: str | None = None,
    out_of_time_fraction: float = 0.25,
    min_trades: int = 20,
    use_champion_window: bool = True,
    market_days_only: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search, evaluate out of time once, write the proposal (see the module)."""
    import yaml
    from prefect.artifacts import create_markdown_artifact

    from pipelines.flows.gate import market_day_gate

    logger = get_run_logger()
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}",
            where="optimize",
        )
    if trials < 1:
        raise ConfigError("trials must be at least 1", where="optimize")
    if market_days_only:
        day = market_day_gate(None, flow_name="optimize")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"skipped": True, "reason": day.reason}
    overrides = overrides or {}
    settings = load_settings(**overrides)
    seed = settings.seed if seed is None else seed
    bars = load_bars(list(symbols or settings.symbols), timeframe, overrides)
    evaluator = CandidateEvaluator(bars, settings)
    window_source = "explicit dates" if train_start or train_end else (
        f"last {out_of_time_fraction:.0%} of the history out of time"
    )
    if use_champion_window and not (train_start or train_end):
        champion = _champion_window(settings.paths.mlflow_tracking_uri)
        if champion is not None:
            train_start, train_end = champion["start"], champion["end"]
            window_source = (
                f"the champion signal_quality v{champion['version']} training window"
            )
    window = split_window(
        evaluator.market.frame["timestamp"], train_start=train_start, train_end=train_end,
        test_end=test_end, out_of_time_fraction=out_of_time_fraction,
    )
    baseline_params = default_params(strategy, settings)
    found = search(strategy, lambda batch: results(
        run_candidate.submit(evaluator, strategy, params, window) for params in batch),
        trials=trials, seed=seed, min_trades=min_trades, start_from=baseline_params,
        per_batch=settings.compute.trials_per_batch)
    logger.info("best in-sample objective %.3f after %d trials", found["objective"], trials)
    best = found["params"]
    out_of_time = evaluator.run(strategy, best, *window.out_of_time, include_end=True)
    baseline = {
        "params": baseline_params,
        "in_sample": evaluator.run(strategy, baseline_params, *window.in_sample),
        "out_of_time": evaluator.run(
            strategy, baseline_params, *window.out_of_time, include_end=True
        ),
    }
    created = utc_now()
    folder = settings.paths.reports_dir / "optimization"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"proposal-{strategy}-{created:%Y%m%dT%H%M%S}.yaml"
    proposal = proposal_document(
        strategy, created=created, seed=seed, trials=trials, min_trades=min_trades,
        symbols=evaluator.symbols, window=window, window_source=window_source, found=found,
        out_of_time=out_of_time, baseline=baseline)
    proposal["path"] = str(path)
    path.write_text(yaml.safe_dump(proposal, sort_keys=False), encoding="utf-8")
    create_markdown_artifact(
        key=f"optimization-{strategy.replace('_', '-')}",
        markdown=proposal_markdown(proposal),
        description=f"optimization proposal for {strategy}",
    )
    logger.info("proposal written to %s", path)
    return {k: v for k, v in proposal.items() if k != "history"}
