"""Session fixtures of the serving integration tests: tiny real models trained once, and
one `bentoml serve` shared by the test modules (each sets the aliases it needs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.serving.harness import (
    MODEL_NAMES,
    TOKEN,
    Server,
    TrainedModels,
    fill_online_store,
    register_copy,
    set_alias,
    train_tiny_models,
)


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> TrainedModels:
    """Trained once per test session; version 1 champion, version 2 a registered copy."""
    trained = train_tiny_models(tmp_path_factory.mktemp("serving-models"))
    for name in MODEL_NAMES:
        register_copy(trained.tracking_uri, name)
    return trained


@pytest.fixture(scope="session")
def serving_server(
    trained_models: TrainedModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One `bentoml serve` for the serving tests: auth on, shadow mode on, 20% challenger
    share, aliases polled every second. Each test module sets the aliases it needs with
    `serve_versions` (so no module depends on another having run)."""
    set_alias(trained_models.tracking_uri, "champion", dict.fromkeys(MODEL_NAMES, "1"))
    server = Server(
        trained_models.tracking_uri,
        tmp_path_factory.mktemp("serving"),
        env={
            "TRADEWIND_API_TOKEN": TOKEN,
            "TRADEWIND_AB_SHADOW": "true",
            "TRADEWIND_MODELS__CHALLENGER_SHARE": "0.2",
            "TRADEWIND_RELOAD_INTERVAL_SECONDS": "1",
        },
    )
    fill_online_store(server.workdir / "data", trained_models.features)
    with server.running():
        yield server


