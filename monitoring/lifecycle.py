"""From live outcomes to a registry move: the A/B arms are the trades decided by the
current challenger versions and the trades decided by the current champion versions in
the same period (from the challenger's first trade on, so both arms faced the same
market); `monitoring.ab.evaluate` decides between them, and the champion's floor
(`monitoring.rollback`) is checked whenever the champion is not being replaced anyway.

The action, stated once:
- no challenger → `hold`; otherwise the A/B verdict (promote, retire, keep collecting);
- a champion below its floor → `rollback` when a `previous` version exists (this wins
  over the A/B verdict), else the verdict stands and the reason says why no rollback.

`apply_verdict` moves the aliases of every model concerned, and only where the alias still
points at the version that was evaluated: a challenger registered after the comparison is
never promoted unseen, and a retried move does not move anything twice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from models.registry import ModelRegistry
from monitoring.ab import ABConfig, ABVerdict, Verdict, evaluate
from monitoring.outcomes import arm_trades
from monitoring.rollback import RollbackFloor, RollbackVerdict, check_rollback

Aliases = Mapping[str, Mapping[str, str]]  # alias → {model name → version}
MOVES = (Verdict.PROMOTE, Verdict.RETIRE, Verdict.ROLLBACK)


@dataclass(frozen=True, slots=True)
class LiveEvaluation:
    """The A/B verdict (None without a challenger), the floor check of the champion (None
    when the verdict replaces it anyway), the trade counts, and the resulting action."""

    verdict: ABVerdict | None
    rollback: RollbackVerdict | None
    counts: dict[str, int]
    action: Verdict
    reason: str

    @property
    def moves_registry(self) -> bool:
        return self.action in MOVES


def evaluate_live(
    outcomes: pd.DataFrame, aliases: Aliases, *, config: ABConfig, floor: RollbackFloor
) -> LiveEvaluation:
    """The module's rule over joined outcomes (`monitoring.outcomes.join_outcomes`)."""
    champion_all = arm_trades(outcomes, "champion", aliases.get("champion", {}))
    challenger = arm_trades(outcomes, "challenger", aliases.get("challenger", {}))
    counts = {"champion_all": len(champion_all), "challenger": len(challenger)}
    verdict: ABVerdict | None = None
    if aliases.get("challenger"):
        start = challenger["entry_time"].min() if not challenger.empty else None
        champion = champion_all if start is None else champion_all[
            champion_all["entry_time"] >= start
        ]
        counts["champion_same_period"] = len(champion)
        verdict = evaluate(
            champion["return_pct"].to_numpy(),
            challenger["return_pct"].to_numpy(),
            config=config,
            champion_win_probability=champion["win_probability"].to_numpy(),
            challenger_win_probability=challenger["win_probability"].to_numpy(),
        )
    rollback: RollbackVerdict | None = None
    if verdict is None or verdict.verdict is not Verdict.PROMOTE:
        rollback = check_rollback(
            champion_all["return_pct"].to_numpy(),
            floor=floor,
            champion_win_probability=champion_all["win_probability"].to_numpy(),
        )

    action = Verdict.HOLD
    reason = "no challenger in A/B"
    if verdict is not None:
        action, reason = verdict.verdict, verdict.reason
    if rollback is not None and rollback.rollback:
        if aliases.get("previous"):
            action, reason = Verdict.ROLLBACK, rollback.reason
        else:
            reason += f"; {rollback.reason}, but no previous version to roll back to"
    elif rollback is not None and verdict is None:
        reason = f"no challenger in A/B; {rollback.reason}"
    return LiveEvaluation(verdict, rollback, counts, action, reason)


@dataclass(frozen=True, slots=True)
class AppliedMoves:
    moved: dict[str, dict[str, str]]  # model → its aliases after the move
    stale: list[str]  # models whose alias no longer pointed at the evaluated version


def apply_verdict(
    registry: ModelRegistry, action: Verdict, reason: str, aliases: Aliases
) -> AppliedMoves:
    """Promote, retire or roll back every model that has the alias concerned."""
    moved: dict[str, dict[str, str]] = {}
    stale: list[str] = []
    alias = "previous" if action == Verdict.ROLLBACK else "challenger"
    for name, evaluated in sorted(aliases.get(alias, {}).items()):
        if registry.aliases(name).get(alias) != evaluated:
            stale.append(f"{name}: {alias} is no longer v{evaluated}; not moved")
            continue
        if action == Verdict.PROMOTE:
            moved[name] = registry.promote(name, reason)
        elif action == Verdict.RETIRE:
            moved[name] = registry.retire_challenger(name, reason)
        elif action == Verdict.ROLLBACK:
            moved[name] = registry.rollback(name, reason)
    return AppliedMoves(moved, stale)
