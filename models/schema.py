"""What each model outputs and which serialized types it is allowed to contain: the
constants shared by the training code (which writes them) and `models.loading` (which
reads them), so the two cannot drift apart."""

from __future__ import annotations

from features.catalogue import CATALOGUE

SIGNAL_QUALITY = "signal_quality"
EXIT_OPTIMIZER = "exit_optimizer"
REGIME_CLASSIFIER = "regime_classifier"
RISK_PREDICTOR = "risk_predictor"

EXIT_COLUMNS: tuple[str, ...] = ("stop_loss_atr", "take_profit_atr")
REGIME_COLUMNS: tuple[str, ...] = ("trending", "ranging", "volatile", "calm")
DRAWDOWN_COLUMNS: tuple[str, ...] = (
    "expected_drawdown_pct",
    "drawdown_p10_pct",
    "drawdown_p90_pct",
)

# Every feature a client may send with a signal: the feature catalogue, (name, description,
# unit) in catalogue order. The service names each in its request schema; the served models
# take a subset, and the rest are accepted and reported as ignored.
CATALOGUE_FEATURES: tuple[tuple[str, str, str], ...] = tuple(
    (spec.name, spec.description, spec.unit) for spec in CATALOGUE
)

# The signal's strategy reaches the signal models as one-hot columns the service derives
# from the signal itself (clients never send them).
STRATEGY_PREFIX = "strategy_"


def strategy_column(strategy: str) -> str:
    return f"{STRATEGY_PREFIX}{strategy}"


def strategy_indicators(strategy: str, strategies: list[str]) -> list[float]:
    """1.0 at `strategy`'s position among `strategies`, 0.0 elsewhere (all zero for a
    strategy the model never saw)."""
    return [1.0 if name == strategy else 0.0 for name in strategies]


def is_strategy_column(name: str) -> bool:
    return name.startswith(STRATEGY_PREFIX)


# Bounds the exit model's answers are clipped to (ATR multiples): a stop tighter than
# half an ATR is noise, a target beyond ten ATR is never reached inside the time limit.
STOP_LOSS_ATR_RANGE: tuple[float, float] = (0.5, 6.0)
TAKE_PROFIT_ATR_RANGE: tuple[float, float] = (0.5, 10.0)

# skops refuses to load any type not listed here. These are exactly the types inside the
# fitted estimators below (checked when logging): nothing else is ever trusted.
SIGNAL_QUALITY_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
)
RISK_PREDICTOR_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "numpy.random._mt19937.MT19937",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.PinballLoss",
    "sklearn.tree._tree.Tree",
    "models.risk.DrawdownQuantileModel",
)

# Artifacts stored next to a model (MLflow `extra_files`), read back by `models.loading`.
ONNX_FILE = "forest.onnx"
RISK_ONNX_FILES: tuple[str, ...] = (
    "drawdown_expected.onnx", "drawdown_p10.onnx", "drawdown_p90.onnx")
OOD_FILE = "ood_detector.json"
POLICY_FILE = "policy.json"
CALIBRATION_FILE = "calibration.json"  # the signal model's estimator kind and Platt map
XGBOOST_FILE = "booster.ubj"
REGIME_SKILL_FILE = "regime_skill.json"  # out-of-time macro-F1 vs the majority baseline
INPUTS_FILE = "model_inputs.json"  # ordered input columns when the signature has none
