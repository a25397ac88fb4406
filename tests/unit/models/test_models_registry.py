"""Registry lifecycle on a real MLflow SQLite store: first version becomes champion,
challenger → champion with the old champion kept as previous, rollback, and reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core.errors import ConfigError, NotFoundError
from models.registry import ModelRegistry
from models.tracker import MlflowTracker


def _register_version(tracker: MlflowTracker, registry: ModelRegistry, name: str) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    with tracker.run(name, "test", {"purpose": "registry test"}) as run:
        logged = run.log_model(
            "sklearn", model, serialization_format="skops", pip_requirements=["scikit-learn"]
        )
    return registry.register(name, logged.model_uri, run_id=logged.run_id, model_card="card")


@pytest.fixture
def store(tmp_path: Path) -> tuple[MlflowTracker, ModelRegistry]:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    return MlflowTracker(uri, tmp_path / "mlruns" / "artifacts"), ModelRegistry(uri)


def test_promote_and_rollback_round_trip(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    first = _register_version(tracker, registry, "signal_quality")
    assert registry.aliases("signal_quality") == {"champion": first}

    second = _register_version(tracker, registry, "signal_quality")
    assert registry.aliases("signal_quality") == {"champion": first}  # not auto-promoted
    registry.set_challenger("signal_quality", second, "better out-of-time AUC")
    assert registry.aliases("signal_quality") == {"champion": first, "challenger": second}

    after_promote = registry.promote("signal_quality", "won the A/B test")
    assert after_promote == {"champion": second, "previous": first}

    after_rollback = registry.rollback("signal_quality", "live win rate degraded")
    assert after_rollback == {"champion": first}

    versions = {info.version: info for info in registry.versions("signal_quality")}
    assert versions[second].tags["promoted_reason"] == "won the A/B test"
    assert versions[second].tags["rolled_back_reason"] == "live win rate degraded"
    assert versions[first].tags["restored_reason"] == "live win rate degraded"
    assert versions[first].description == "card"

    with pytest.raises(NotFoundError, match="no previous"):
        registry.rollback("signal_quality", "again")


def test_challenger_rules(store: tuple[MlflowTracker, ModelRegistry]) -> None:
    tracker, registry = store
    first = _register_version(tracker, registry, "risk_predictor")
    with pytest.raises(ConfigError, match="already the champion"):
        registry.set_challenger("risk_predictor", first, "no")
    with pytest.raises(NotFoundError, match="no challenger"):
        registry.promote("risk_predictor", "nothing to promote")
    second = _register_version(tracker, registry, "risk_predictor")
    registry.set_challenger("risk_predictor", second, "trial")
    assert registry.retire_challenger("risk_predictor", "lost") == {"champion": first}
    with pytest.raises(NotFoundError, match="no version 99"):
        registry.set_challenger("risk_predictor", "99", "missing")
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        registry.aliases("nope")
