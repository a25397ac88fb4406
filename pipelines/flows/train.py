"""The `train` flow: the four models on a point-in-time training set, through the one
training entry point (`pipelines.training`: MODELS' template with its walk-forward split,
purge and embargo, MLflow logging and registration). The first registered version of each
model becomes `champion`; with `make_champion` a re-trained version becomes champion too.

The training set: every signal the ungated strategies produce over the window, joined to
the features known at its signal bar and labelled by the triple barrier on the bars after
it (`models.datasets.build_training_data`), plus the per-date market frame the regime
model learns from. Bars before the window only warm the indicators up. The retrain flow
runs the same two tasks (`pipelines.tasks`) without registering."""

from __future__ import annotations

from typing import Any

from prefect import flow

from core.settings import load_settings
from pipelines.tasks import prepare_training_data, train_one


@flow(name="train", log_prints=True)
def train_flow(
    start: str | None = None,
    end: str | None = None,
    symbols: list[str] | None = None,
    models: list[str] | None = None,
    make_champion: bool = False,
    source: str = "sample",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and register the four models on [start, end]. The first version of a model
    becomes champion; `make_champion` also makes a re-trained version champion."""
    from models.catalogue import models_for
    from models.registry import ModelRegistry

    overrides = overrides or {}
    settings = load_settings(**overrides)
    wanted = list(symbols or settings.symbols)
    names = [model.name for model in models_for(models)]
    data: Any = prepare_training_data(wanted, start, end, overrides)
    trained: dict[str, dict[str, Any]] = {}
    for name in names:
        trained[name] = train_one(name, data, True, overrides, source)
    if make_champion:
        registry = ModelRegistry(settings.paths.mlflow_tracking_uri)
        reason = "freshly trained by the train flow"
        for name, info in trained.items():
            version = info.get("version")
            info["aliases"] = registry.make_champion(name, version, reason) if version else {}
    return {"models": trained, "events": len(data.events), "window": [start, end]}
