"""The service's configuration from Tradewind's settings and the serving env knobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from serving.config import ServiceConfig


def test_defaults_follow_the_settings(workdir: Path) -> None:
    config = ServiceConfig.from_env(load_settings())
    assert config.tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert config.decision_log == Path("data/decisions.db")
    assert config.routing.challenger_share == pytest.approx(0.2)
    assert config.routing.shadow is False
    assert config.api_token is None


def test_environment_overrides(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIND_MODELS__CHALLENGER_SHARE", "0.35")
    monkeypatch.setenv("TRADEWIND_AB_SHADOW", "yes")
    monkeypatch.setenv("TRADEWIND_DECISION_LOG", str(workdir / "log.db"))
    monkeypatch.setenv("TRADEWIND_RELOAD_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("TRADEWIND_API_TOKEN", "s3cret")
    config = ServiceConfig.from_env(load_settings())
    assert config.routing.challenger_share == pytest.approx(0.35)
    assert config.routing.shadow is True
    assert config.decision_log == workdir / "log.db"
    assert config.reload_interval_seconds == 0
    assert config.api_token is not None
    assert "s3cret" not in repr(config)


def test_the_decision_log_may_be_a_database_url(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://tradewind@db.example:5432/decisions"
    monkeypatch.setenv("TRADEWIND_DECISION_LOG", url)
    assert ServiceConfig.from_env(load_settings()).decision_log == url  # kept whole


@pytest.mark.parametrize(
    ("name", "value"),
    [("TRADEWIND_AB_SHADOW", "maybe"), ("TRADEWIND_RELOAD_INTERVAL_SECONDS", "-1"),
     ("TRADEWIND_RELOAD_INTERVAL_SECONDS", "soon")],
)
def test_bad_knobs_are_config_errors_naming_them(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        ServiceConfig.from_env(load_settings())
