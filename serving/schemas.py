"""The model service's wire format: strict request and response models.

Every request is checked before any model sees it. A missing or unknown feature, a NaN or
infinite number, a wrong type, a negative price or an unknown side is refused with a 4xx
answer whose `detail[].loc` names the offending field; nothing is coerced or guessed.
Structural checks (types, NaN, sides, prices, names) live in the pydantic models: the
request schema names every catalogue feature as an optional property, so a fuzzer or a
client generator can build requests from it. Which of them the served models take depends
on the models, so `check_features` checks them against the loaded model set's columns: a
catalogue feature the models do not take is accepted and reported as ignored, a name outside
the catalogue is refused."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, create_model

from core.errors import DataValidationError
from core.types import Decision, Regime, Side, Signal
from models.schema import CATALOGUE_FEATURES

# A feature value: a finite JSON number (int or float), or `null` for a value that is
# missing by design (e.g. `sent_mean_1d` without news), which the tree models take as
# missing. JSON has no NaN: the non-standard NaN/Infinity tokens, booleans and strings are
# refused.
FeatureValue = Annotated[float, Strict(), Field(allow_inf_nan=False)] | None
Variant = Literal["champion", "challenger"]
# A bar timeframe (`core.bars.TIMEFRAMES`, spelled out so the schema lists it as an enum).
Timeframe = Literal["1Min", "5Min", "15Min", "1Hour", "1Day"]

# The feature the exit model's ATR multiples are applied to (price units).
ATR_FEATURE = "atr_14"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SignalIn(_Strict):
    """A strategy's signal as the engine sends it."""

    symbol: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z][A-Za-z0-9.\-]*$")
    side: Literal["buy", "sell"]
    strategy: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime
    price: float = Field(gt=0, allow_inf_nan=False)
    reason: str = Field("", max_length=500)

    @classmethod
    def from_signal(cls, signal: Signal) -> SignalIn:
        return cls(
            symbol=signal.symbol,
            side=signal.side.value,
            strategy=signal.strategy,
            timestamp=signal.timestamp,
            price=float(signal.price),
            reason=signal.reason,
        )

    def to_signal(self) -> Signal:
        return Signal(
            symbol=self.symbol,
            side=Side(self.side),
            timestamp=self.timestamp,
            strategy=self.strategy,
            price=self.price,
            reason=self.reason,
        )


# Every name a request's `features` may carry (the catalogue).
KNOWN_FEATURES: frozenset[str] = frozenset(name for name, _, _ in CATALOGUE_FEATURES)

if TYPE_CHECKING:
    FeaturesIn = BaseModel
else:
    # One optional property per catalogue feature: absent means "not sent", null means
    # "missing by design"; any other name is refused (extra="forbid").
    FeaturesIn = create_model(
        "Features",
        __config__=ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False),
        __doc__="A signal's features by catalogue name (`GET /models` -> `accepted_features` "
        "lists the ones the served models take; others are accepted and ignored).",
        **{
            name: (FeatureValue, Field(None, description=f"{description} ({unit})"))
            for name, description, unit in CATALOGUE_FEATURES
        },
    )


def decide_example() -> dict[str, Any]:
    features: dict[str, float | None] = {name: 0.0 for name, _, _ in CATALOGUE_FEATURES}
    features.update({ATR_FEATURE: 1.4, "rsi_14": 61.2, "sent_mean_1d": None})
    signal = {"symbol": "AAPL", "side": "buy", "strategy": "momentum",
              "timestamp": "2013-05-02T20:00:00Z", "price": 60.5, "reason": ""}
    return {"signal": signal, "features": features}


class DecideRequest(_Strict):
    """`POST /decide` and the per-model endpoints. `features` may be left out: the
    service then reads the symbol's latest features from the online feature store.
    `timeframe` is the bars the signal comes from: a request for another timeframe than
    the served models were trained on (`GET /models` -> `timeframe`) is refused with 409;
    left out, it is not checked."""

    signal: SignalIn
    features: FeaturesIn | None = None
    timeframe: Timeframe | None = Field(
        None, description="The bar timeframe of the signal; must be the served models' one."
    )

    def feature_values(self) -> dict[str, float | None] | None:
        """The features the client sent (a null one as None), or None when it sent none."""
        given = self.features
        if given is None:
            return None
        return {name: getattr(given, name) for name in given.model_fields_set}


class DecisionOut(BaseModel):
    """What the models say about one signal and what the policy decided (`POST /decide`).

    `action` is `enter` or `skip`; a skip names one `reason` category (`ev`, `gate`,
    `ood`, `regime`) with a human `reason_detail`. `size_fraction` is the share of equity
    to put in the position (0 when skipped), `threshold` the win probability the policy
    asked for, `expected_value` the trade's expected net return per unit of capital.
    `stop_loss_*` / `take_profit_*` are the exits to trade with (the policy's fixed exits
    by default); `model_stop_loss_atr` / `model_take_profit_atr` are the exit model's own
    answer, for information. `regime` is the regime model's answer; `policy_regime` the
    regime the policy used (`regime_source`: `model` when the model beat its baseline out
    of time, else `rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str
    signal_id: str
    variant: Variant
    model_versions: dict[str, str]
    action: Literal["enter", "skip"]
    reason: Literal["", "ev", "gate", "ood", "regime"]
    reason_detail: str
    expected_value: float | None
    threshold: float | None
    size_fraction: float
    win_probability: float
    stop_loss_atr: float
    take_profit_atr: float
    stop_loss_price: float
    take_profit_price: float
    model_stop_loss_atr: float
    model_take_profit_atr: float
    regime: str
    regime_probabilities: dict[str, float]
    policy_regime: str | None
    regime_source: Literal["model", "rules"]
    expected_drawdown_pct: float
    drawdown_p10_pct: float
    drawdown_p90_pct: float
    out_of_distribution: bool
    shadowed: bool = False  # the challenger also predicted on this decision (logged only)
    latency_ms: float
    decided_at: datetime
    # Catalogue features the request carried that the deciding models do not take.
    ignored_features: list[str] = Field(default_factory=list)


class SignalQualityOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant
    model_version: str
    win_probability: float
    out_of_distribution: bool


class ExitOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant
    model_version: str
    stop_loss_atr: float
    take_profit_atr: float
    stop_loss_price: float
    take_profit_price: float


class RegimeOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant
    model_version: str
    regime: str
    regime_probabilities: dict[str, float]


class RiskOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant
    model_version: str
    expected_drawdown_pct: float
    drawdown_p10_pct: float
    drawdown_p90_pct: float


class ReloadOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reloaded: bool
    champion: dict[str, str]
    challenger: dict[str, str] | None
    error: str | None


class FeatureError(DataValidationError):
    """A request's features do not match what the served models take. `field` is the
    dotted location of the first offending field (e.g. `features.rsi_14`)."""

    def __init__(self, message: str, *, field: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message, where=field)
        self.field = field
        self.problems = problems


def check_features(
    features: Mapping[str, float | None],
    expected: Sequence[str],
    accepted: Collection[str] = (),
    known: Collection[str] = KNOWN_FEATURES,
) -> list[float]:
    """The feature values in the models' column order (`None` → NaN, missing by design),
    or a `FeatureError` listing every missing and unknown name, and any infinite or
    non-numeric value (callers that bypass the pydantic models, such as the in-process
    client, pass Python floats: NaN there means missing, like JSON `null`). `accepted`
    names more features that are not unknown though this call does not use them (the
    other A/B arm's inputs); so does `known`, the catalogue (`ignored_features` lists the
    ones a request carried in vain)."""
    problems: list[dict[str, Any]] = []
    for name in expected:
        if name not in features:
            problems.append(_problem(name, "missing", f"feature '{name}' is missing"))
    expected_set = set(expected)
    for name in features:
        if name not in expected_set and name not in accepted and name not in known:
            problems.append(
                _problem(name, "unknown", f"feature '{name}' is not one the models take")
            )
    for name in expected:
        value = features.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(
                _problem(name, "type", f"feature '{name}' must be a number, got {value!r}")
            )
        elif math.isinf(value):
            problems.append(
                _problem(name, "not_finite", f"feature '{name}' must be finite, got {value}")
            )
    if ATR_FEATURE in features and not problems:
        atr_value = features[ATR_FEATURE]
        atr = math.nan if atr_value is None else float(atr_value)
        if not atr > 0:
            problems.append(
                _problem(
                    ATR_FEATURE,
                    "not_positive",
                    f"feature '{ATR_FEATURE}' must be a number > 0 to place exits, got {atr}",
                )
            )
    if problems:
        first = problems[0]
        message = "; ".join(p["msg"] for p in problems[:10])
        if len(problems) > 10:
            message += f"; and {len(problems) - 10} more"
        raise FeatureError(message, field=".".join(first["loc"]), problems=problems)
    return [_as_float(features[name]) for name in expected]


def ignored_features(
    features: Collection[str], expected: Collection[str]
) -> list[str]:
    """The names a request carried that the deciding models do not take."""
    return sorted(name for name in features if name not in expected)


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def error_body(error: FeatureError | DataValidationError) -> dict[str, Any]:
    """The JSON body of a 4xx answer, shaped like BentoML's own validation errors
    (`error` plus `detail[]` with `loc`, `msg`, `type`), so clients parse one format."""
    if isinstance(error, FeatureError):
        return {"error": error.message, "field": error.field, "detail": error.problems}
    field = error.where or "request"
    return {
        "error": error.message,
        "field": field,
        "detail": [{"loc": field.split("."), "msg": error.message, "type": "value_error"}],
    }


def _problem(name: str, kind: str, message: str) -> dict[str, Any]:
    return {"loc": ["features", name], "msg": message, "type": kind}


def to_decision(answer: DecisionOut, signal: Signal, *, source: str) -> Decision:
    """The engine's `Decision` from the service's answer."""
    return Decision(
        decision_id=answer.decision_id,
        signal=signal,
        win_probability=answer.win_probability,
        stop_loss_price=answer.stop_loss_price,
        take_profit_price=answer.take_profit_price,
        regime=Regime(answer.regime) if answer.regime in _REGIMES else None,
        expected_drawdown_pct=answer.expected_drawdown_pct,
        variant=answer.variant,
        model_versions=dict(answer.model_versions),
        regime_probabilities=dict(answer.regime_probabilities),
        out_of_distribution=answer.out_of_distribution,
        source=source,
        action=answer.action,
        reason=answer.reason,
        reason_detail=answer.reason_detail,
        expected_value=answer.expected_value,
        threshold=answer.threshold,
        size_fraction=answer.size_fraction,
    )


_REGIMES = frozenset(regime.value for regime in Regime)
