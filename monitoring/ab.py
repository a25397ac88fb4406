"""Champion/challenger A/B statistics on live closed trades: per-arm figures, the stated
tests and `evaluate`, the promote / retire / keep-collecting decision. Pure: arrays in,
an `ABVerdict` out; the evaluate_ab flow does the I/O. The champion's floor is in
`monitoring.rollback`.

The decision rule (what a user can check by hand):
1. Until *both* arms have `min_trades_per_arm` closed trades → keep collecting.
2. Two tests, each two-sided, with a Bonferroni split of `alpha` (α/2 each) so the chance of
   a false promotion or retirement stays below `alpha`:
   - win rate: two-proportion z-test with pooled variance; Fisher's exact test instead
     when any expected cell of the 2×2 table is below 5 (the z approximation is poor there);
   - trade returns: Mann–Whitney U (no normality assumption; returns are fat-tailed). Its
     direction is the common-language effect size P(challenger return > champion return).
3. Promote when at least one test favours the challenger significantly and none favours
   the champion; retire when at least one favours the champion and none the challenger.
4. No significant difference: keep collecting until each arm has
   `max_trades_per_arm`, then retire the challenger (it had its chance; the incumbent stays)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from core import performance
from core.errors import DataValidationError
from models.metrics import log_loss as score_log_loss


class Verdict(StrEnum):
    PROMOTE = "promote"
    RETIRE = "retire"
    KEEP_COLLECTING = "keep_collecting"
    ROLLBACK = "rollback"
    HOLD = "hold"  # champion healthy, nothing to do


class ABConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_trades_per_arm: int = Field(30, ge=2)
    max_trades_per_arm: int = Field(300, ge=2)
    alpha: float = Field(0.05, gt=0, lt=1)

    @classmethod
    def bounded(cls, min_trades_per_arm: int, max_trades_per_arm: int, alpha: float) -> ABConfig:
        """A configuration whose cap is never below the minimum (it is raised to it)."""
        return cls(
            min_trades_per_arm=min_trades_per_arm,
            max_trades_per_arm=max(max_trades_per_arm, min_trades_per_arm),
            alpha=alpha,
        )

    @model_validator(mode="after")
    def _ordered(self) -> ABConfig:
        if self.max_trades_per_arm < self.min_trades_per_arm:
            raise ValueError("max_trades_per_arm must be at least min_trades_per_arm")
        return self


@dataclass(frozen=True, slots=True)
class ArmMetrics:
    arm: str
    trades: int
    wins: int
    win_rate: float
    profit_factor: float  # `core.performance.profit_factor`: inf with no losing trade
    mean_return: float
    total_return: float  # sum of per-trade returns
    log_loss: float  # of the win probability on trades that had one; NaN if none
    scored_trades: int  # trades with a win probability

    def to_metrics(self, prefix: str) -> dict[str, float]:
        """Finite numbers for MLflow (which rejects inf/NaN in some stores)."""
        values = {
            "trades": float(self.trades),
            "wins": float(self.wins),
            "win_rate": self.win_rate,
            "profit_factor": self.profit_factor,
            "mean_return": self.mean_return,
            "total_return": self.total_return,
            "log_loss": self.log_loss,
        }
        out = {}
        for key, value in values.items():
            if math.isnan(value):
                continue
            out[f"{prefix}_{key}"] = min(value, 1e6)
        return out


@dataclass(frozen=True, slots=True)
class SignificanceTest:
    name: str
    statistic: float
    pvalue: float
    favours: str | None  # "challenger", "champion" or None when not significant


@dataclass(frozen=True, slots=True)
class ABVerdict:
    verdict: Verdict
    reason: str
    champion: ArmMetrics
    challenger: ArmMetrics
    tests: list[SignificanceTest]
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "alpha": self.alpha,
            "champion": asdict(self.champion),
            "challenger": asdict(self.challenger),
            "tests": [asdict(test) for test in self.tests],
        }


def trade_returns(values: Sequence[float] | np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(array).all():
        raise DataValidationError(
            f"{int((~np.isfinite(array)).sum())} trade return(s) are NaN or infinite", where=where
        )
    return array


def arm_metrics(
    arm: str,
    returns: Sequence[float] | np.ndarray,
    win_probability: Sequence[float | None] | np.ndarray | None = None,
) -> ArmMetrics:
    """Per-arm live figures from closed trades' returns (a win is a return > 0) and the
    win probability each trade was given at entry (None/NaN where the rules decided)."""
    values = trade_returns(returns, f"arm {arm}")
    wins = values > 0
    log_loss = float("nan")
    scored = 0
    if win_probability is not None:
        probability = np.array(
            [np.nan if p is None else p for p in win_probability], dtype=float
        ).ravel()
        if probability.size != values.size:
            raise DataValidationError(
                f"{probability.size} win probabilities for {values.size} trades",
                where=f"arm {arm}",
            )
        has = np.isfinite(probability)
        scored = int(has.sum())
        if scored:
            if probability[has].min() < 0 or probability[has].max() > 1:
                raise DataValidationError(
                    "win probabilities must lie in [0, 1]", where=f"arm {arm}"
                )
            log_loss = score_log_loss(probability[has], wins[has])
    return ArmMetrics(
        arm=arm,
        trades=int(values.size),
        wins=int(wins.sum()),
        win_rate=float(wins.mean()) if values.size else float("nan"),
        profit_factor=performance.profit_factor(values),
        mean_return=float(values.mean()) if values.size else float("nan"),
        total_return=float(values.sum()),
        log_loss=log_loss,
        scored_trades=scored,
    )


def win_rate_test(
    champion_wins: int,
    champion_trades: int,
    challenger_wins: int,
    challenger_trades: int,
    *,
    alpha: float,
) -> SignificanceTest:
    """Two-sided two-proportion z-test (pooled), or Fisher's exact test when an expected
    cell count is below 5. `favours` names the arm with the higher win rate if p < alpha."""
    if champion_trades <= 0 or challenger_trades <= 0:
        raise DataValidationError("both arms need trades for a win-rate test", where="ab")
    table = np.array(
        [
            [challenger_wins, challenger_trades - challenger_wins],
            [champion_wins, champion_trades - champion_wins],
        ],
        dtype=float,
    )
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    challenger_rate = challenger_wins / challenger_trades
    champion_rate = champion_wins / champion_trades
    if (expected < 5).any():
        _, pvalue = stats.fisher_exact(table.astype(int), alternative="two-sided")
        name, statistic = "fisher_exact_win_rate", challenger_rate - champion_rate
    else:
        pooled = (challenger_wins + champion_wins) / (challenger_trades + champion_trades)
        se = math.sqrt(pooled * (1 - pooled) * (1 / challenger_trades + 1 / champion_trades))
        statistic = (challenger_rate - champion_rate) / se if se > 0 else 0.0
        pvalue = float(2 * stats.norm.sf(abs(statistic)))
        name = "two_proportion_z_win_rate"
    favours = None
    if pvalue < alpha and challenger_rate != champion_rate:
        favours = "challenger" if challenger_rate > champion_rate else "champion"
    return SignificanceTest(name, float(statistic), float(pvalue), favours)


def returns_test(
    champion_returns: Sequence[float] | np.ndarray,
    challenger_returns: Sequence[float] | np.ndarray,
    *,
    alpha: float,
) -> SignificanceTest:
    """Two-sided Mann–Whitney U on per-trade returns; the statistic reported is the
    common-language effect size P(challenger > champion) (0.5 = no difference)."""
    challenger = trade_returns(challenger_returns, "challenger returns")
    champion = trade_returns(champion_returns, "champion returns")
    if challenger.size == 0 or champion.size == 0:
        raise DataValidationError("both arms need trades for a returns test", where="ab")
    result = stats.mannwhitneyu(challenger, champion, alternative="two-sided")
    effect = float(result.statistic) / (challenger.size * champion.size)
    pvalue = float(result.pvalue)
    favours = None
    if pvalue < alpha and effect != 0.5:
        favours = "challenger" if effect > 0.5 else "champion"
    return SignificanceTest("mann_whitney_returns", effect, pvalue, favours)


def evaluate(
    champion_returns: Sequence[float] | np.ndarray,
    challenger_returns: Sequence[float] | np.ndarray,
    *,
    config: ABConfig,
    champion_win_probability: Sequence[float | None] | np.ndarray | None = None,
    challenger_win_probability: Sequence[float | None] | np.ndarray | None = None,
) -> ABVerdict:
    """The decision rule of this module applied to the two arms' closed trades."""
    champion = arm_metrics("champion", champion_returns, champion_win_probability)
    challenger = arm_metrics("challenger", challenger_returns, challenger_win_probability)
    fewest = min(champion.trades, challenger.trades)
    if fewest < config.min_trades_per_arm:
        return ABVerdict(
            Verdict.KEEP_COLLECTING,
            f"need {config.min_trades_per_arm} closed trades per arm; champion has "
            f"{champion.trades}, challenger {challenger.trades}",
            champion,
            challenger,
            [],
            config.alpha,
        )
    per_test_alpha = config.alpha / 2  # Bonferroni over the two tests
    tests = [
        win_rate_test(
            champion.wins,
            champion.trades,
            challenger.wins,
            challenger.trades,
            alpha=per_test_alpha,
        ),
        returns_test(champion_returns, challenger_returns, alpha=per_test_alpha),
    ]
    favour = {test.favours for test in tests} - {None}
    described = "; ".join(f"{t.name} p={t.pvalue:.4g}" for t in tests)
    if favour == {"challenger"}:
        verdict, reason = Verdict.PROMOTE, f"challenger significantly better ({described})"
    elif favour == {"champion"}:
        verdict, reason = Verdict.RETIRE, f"challenger significantly worse ({described})"
    elif favour:
        verdict = Verdict.KEEP_COLLECTING
        reason = f"tests disagree ({described}); collecting more trades"
    elif fewest >= config.max_trades_per_arm:
        verdict = Verdict.RETIRE
        reason = (
            f"no significant difference after {fewest} trades per arm ({described}); "
            "keeping the champion"
        )
    else:
        verdict = Verdict.KEEP_COLLECTING
        reason = f"no significant difference yet ({described})"
    return ABVerdict(verdict, reason, champion, challenger, tests, config.alpha)
