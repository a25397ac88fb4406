"""The optimization proposal: what the optimize flow writes for a person to read and
accept by hand (`<reports_dir>/optimization/proposal-<strategy>-<time>.yaml`): the best
parameters of the in-sample search, their one out-of-time evaluation beside today's
parameters, a recommendation, and the settings block and strategy config to copy. Its
Markdown summary is the flow's Prefect artifact. Nothing here applies anything."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.errors import DataValidationError
from core.performance import HEADLINE_FIGURES
from core.strict_json import json_safe
from trading.optimization import Window, entry_params


def proposal_document(
    strategy: str,
    *,
    created: datetime,
    seed: int,
    trials: int,
    min_trades: int,
    symbols: list[str],
    window: Window,
    window_source: str,
    found: dict[str, Any],
    out_of_time: dict[str, Any],
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """The proposal (strict JSON values, six digits) from the search's result `found`,
    the best parameters' out-of-time figures and today's parameters' (`baseline`)."""
    best = found["params"]
    proposed_sharpe = out_of_time.get("sharpe")
    default_sharpe = baseline["out_of_time"].get("sharpe")
    better_out_of_time = (
        proposed_sharpe is not None and default_sharpe is not None
        and proposed_sharpe > default_sharpe
    )
    return dict(json_safe(
        {
            "strategy": strategy,
            "created_at": created.isoformat(),
            "status": "proposed (not applied)",
            "recommendation": (
                "consider accepting: better out-of-time Sharpe than the current parameters"
                if better_out_of_time
                else "keep the current parameters: the proposal does not beat them out of time"
            ),
            "objective": "in-sample annualised Sharpe; penalised below "
            f"{min_trades} closed trades",
            "sampler": "optuna TPESampler",
            "seed": seed,
            "trials": trials,
            "symbols": symbols,
            "windows": {
                "source": window_source,
                "in_sample": [str(window.in_sample[0]), str(window.in_sample[1])],
                "out_of_time": [str(window.out_of_time[0]), str(window.out_of_time[1])],
            },
            "params": best,
            "in_sample": found["in_sample"],
            "out_of_time": out_of_time,
            "baseline": baseline,
            "accept": {
                "settings": {
                    "risk": {
                        "stop_loss_atr": best["stop_loss_atr"],
                        "take_profit_atr": best["take_profit_atr"],
                        "max_holding_bars": best["max_holding_bars"],
                    }
                },
                f"{strategy}_config": entry_params(strategy, best),
                "how": "copy the settings block into tradewind.yaml and the strategy config "
                "into the strategy's defaults after reviewing the out-of-time figures",
            },
            "history": found["history"],
        },
        digits=6,
    ))


def proposal_markdown(proposal: dict[str, Any]) -> str:
    """The proposal's summary for the Prefect UI: figures side by side, changed values."""
    rows = ["| metric | default in-sample | best in-sample | default out-of-time | "
            "best out-of-time |", "|---|---|---|---|---|"]
    for key in HEADLINE_FIGURES:
        values = [
            proposal["baseline"]["in_sample"].get(key),
            proposal["in_sample"].get(key),
            proposal["baseline"]["out_of_time"].get(key),
            proposal["out_of_time"].get(key),
        ]
        cells = " | ".join("—" if v is None else f"{v:.4g}" for v in values)
        rows.append(f"| {key} | {cells} |")
    params = "\n".join(
        f"- `{k}`: {proposal['baseline']['params'].get(k)} → **{v}**"
        for k, v in proposal["params"].items()
    )
    return (
        f"## Optimization proposal: {proposal['strategy']}\n\n"
        f"{proposal['trials']} TPE trials (seed {proposal['seed']}) on "
        f"{proposal['windows']['in_sample'][0][:10]} → {proposal['windows']['in_sample'][1][:10]}"
        f"; evaluated once out of time on {proposal['windows']['out_of_time'][0][:10]} → "
        f"{proposal['windows']['out_of_time'][1][:10]}.\n\n{params}\n\n" + "\n".join(rows)
        + f"\n\nProposal file: `{proposal['path']}`. Nothing was applied."
    )


def read_proposal(path: str) -> dict[str, Any]:
    """A proposal file back as a dict (for review tooling and tests)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise DataValidationError(f"{path} is not an optimization proposal", where="optimize")
    return dict(json.loads(json.dumps(loaded)))
