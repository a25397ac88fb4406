"""Reloading the served model sets: load beside the old ones, swap whole, keep the old
ones when a load fails, and say why."""

from __future__ import annotations

import pytest

from core.errors import ModelUnavailableError
from serving.model_slots import ModelSlots
from tests.unit.serving.fakes import FormulaModelSet

NAMES = ("signal_quality", "exit_optimizer", "regime_classifier", "risk_predictor")


class FakeRegistry:
    """Aliases per model, and which versions fail to load."""

    def __init__(self) -> None:
        self.aliases: dict[str, dict[str, str]] = {name: {"champion": "1"} for name in NAMES}
        self.broken: set[str] = set()
        self.loads = 0

    def point(self, alias: str, version: str | None) -> None:
        for found in self.aliases.values():
            if version is None:
                found.pop(alias, None)
            else:
                found[alias] = version

    def read(self, tracking_uri: str) -> dict[str, dict[str, str]]:
        return {name: dict(found) for name, found in self.aliases.items()}

    def load(self, tracking_uri: str, alias: str) -> FormulaModelSet:
        self.loads += 1
        version = self.aliases["signal_quality"][alias]
        if version in self.broken:
            raise ModelUnavailableError(f"cannot load version {version}", where="signal_quality")
        model_set = FormulaModelSet(version)
        # Like models.loading's fallback: the challenger arm takes champions where needed.
        model_set.versions = {
            name: found.get(alias, found["champion"]) for name, found in self.aliases.items()
        }
        return model_set


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def _slots(registry: FakeRegistry) -> ModelSlots:
    return ModelSlots("sqlite:///unused.db", loader=registry.load, alias_reader=registry.read)


def test_first_load_then_nothing_to_do_until_aliases_move(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    assert not slots.ready
    with pytest.raises(ModelUnavailableError, match="no champion"):
        slots.current()
    assert slots.reload().reloaded
    first = slots.current()
    assert first.champion.versions["signal_quality"] == "1"
    assert not slots.reload().reloaded
    assert slots.current() is first
    registry.point("champion", "2")
    registry.point("challenger", "3")
    assert slots.reload().reloaded
    swapped = slots.current()
    assert swapped is not first
    assert swapped.champion.versions["signal_quality"] == "2"
    assert swapped.challenger is not None
    assert swapped.challenger.versions["signal_quality"] == "3"
    # The set read before the swap is untouched: in-flight requests finish on it.
    assert first.champion.versions["signal_quality"] == "1"


def test_a_broken_challenger_keeps_the_champion_and_reports_why(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    slots.reload()
    registry.point("challenger", "5")
    registry.broken.add("5")
    result = slots.reload()
    assert result.error is not None
    assert "challenger" in result.error
    assert "cannot load version 5" in result.error
    assert slots.current().challenger is None
    assert slots.current().champion.versions["signal_quality"] == "1"
    assert slots.status()["last_reload_error"] == result.error
    # Retried on the next check; cleared once the registry points at what serves.
    registry.point("challenger", None)
    assert slots.reload().error is None
    assert slots.status()["last_reload_error"] is None


def test_a_broken_new_champion_leaves_the_old_one_serving(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    slots.reload()
    registry.point("champion", "7")
    registry.broken.add("7")
    result = slots.reload()
    assert result.error is not None
    assert "champion" in result.error
    assert slots.current().champion.versions["signal_quality"] == "1"
    registry.broken.clear()
    assert slots.reload().reloaded
    assert slots.current().champion.versions["signal_quality"] == "7"


def test_a_retired_challenger_is_dropped(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    registry.point("challenger", "2")
    slots.reload()
    assert slots.current().challenger is not None
    registry.point("challenger", None)
    slots.reload()
    assert slots.current().challenger is None


def test_an_unreadable_registry_keeps_serving(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    slots.reload()

    def down(tracking_uri: str) -> dict[str, dict[str, str]]:
        raise OSError("database is locked")

    slots._alias_reader = down
    result = slots.reload()
    assert result.error is not None
    assert "registry" in result.error
    assert slots.current().champion.versions["signal_quality"] == "1"


def test_passwords_in_the_tracking_uri_are_not_reported(registry: FakeRegistry) -> None:
    slots = ModelSlots("postgresql://tradewind:hunter2@db:5432/mlflow",
                       loader=registry.load, alias_reader=registry.read)
    assert "hunter2" not in str(slots.status())


def test_a_partial_challenger_arm_follows_champion_moves(registry: FakeRegistry) -> None:
    slots = _slots(registry)
    registry.aliases["signal_quality"]["challenger"] = "2"  # only one model has a challenger
    slots.reload()
    arm = slots.current().challenger
    assert arm is not None
    assert arm.versions["signal_quality"] == "2"
    assert arm.versions["risk_predictor"] == "1"
    registry.aliases["risk_predictor"]["champion"] = "3"
    assert slots.reload().reloaded
    arm = slots.current().challenger
    assert arm is not None
    assert arm.versions["risk_predictor"] == "3"
    assert arm.versions["signal_quality"] == "2"
