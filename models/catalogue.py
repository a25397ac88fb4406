"""The four models by registered name, in their training order: the one place that maps a
name to its `TrainableModel` class."""

from __future__ import annotations

from core.errors import ConfigError
from core.settings import Settings
from models.exit_optimizer import ExitOptimizerModel
from models.policy import PolicyConfig
from models.regime import RegimeModel
from models.registry import MODEL_NAMES
from models.risk import RiskModel
from models.signal_quality import SignalQualityConfig, SignalQualityModel
from models.template import TrainableModel

MODEL_CLASSES: dict[str, type[TrainableModel]] = {
    model.name: model
    for model in (SignalQualityModel, ExitOptimizerModel, RegimeModel, RiskModel)
}


def model_for(name: str, settings: Settings | None = None) -> TrainableModel:
    """A fresh model object for a registered name: default configuration, but the
    decision policy fitted with the signal model follows `settings` when given."""
    if name not in MODEL_CLASSES:
        raise ConfigError(
            f"unknown model '{name}'; choose from {', '.join(MODEL_NAMES)}", where="models"
        )
    if name == SignalQualityModel.name and settings is not None:
        return SignalQualityModel(
            SignalQualityConfig(policy=PolicyConfig.from_settings(settings)))
    return MODEL_CLASSES[name]()


def models_for(
    names: list[str] | tuple[str, ...] | None = None, settings: Settings | None = None
) -> list[TrainableModel]:
    """Model objects for `names` (all four, in training order, when None)."""
    return [model_for(name, settings) for name in (names or MODEL_NAMES)]
