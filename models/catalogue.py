"""The four models by registered name, in their training order: the one place that maps a
name to its `TrainableModel` class."""

from __future__ import annotations

from core.errors import ConfigError
from models.exit_optimizer import ExitOptimizerModel
from models.regime import RegimeModel
from models.registry import MODEL_NAMES
from models.risk import RiskModel
from models.signal_quality import SignalQualityModel
from models.template import TrainableModel

MODEL_CLASSES: dict[str, type[TrainableModel]] = {
    model.name: model
    for model in (SignalQualityModel, ExitOptimizerModel, RegimeModel, RiskModel)
}


def model_for(name: str) -> TrainableModel:
    """A fresh model object (default configuration) for a registered name."""
    if name not in MODEL_CLASSES:
        raise ConfigError(
            f"unknown model '{name}'; choose from {', '.join(MODEL_NAMES)}", where="models"
        )
    return MODEL_CLASSES[name]()


def models_for(names: list[str] | tuple[str, ...] | None = None) -> list[TrainableModel]:
    """Model objects for `names` (all four, in training order, when None)."""
    return [model_for(name) for name in (names or MODEL_NAMES)]
