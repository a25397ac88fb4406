"""Settings: environment and YAML sources, unknown keys named, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import AlpacaCredentials, load_settings


def test_defaults_are_paper_trading_with_the_documented_limits(workdir: Path) -> None:
    settings = load_settings()
    assert settings.broker.kind == "simulated"
    assert settings.broker.allow_live is False
    assert settings.risk.max_position_pct == pytest.approx(0.10)
    assert settings.risk.daily_loss_halt_pct == pytest.approx(0.02)
    assert settings.models.win_probability_gate == pytest.approx(0.65)
    assert settings.models.challenger_share == pytest.approx(0.20)
    assert settings.paths.mlflow_tracking_uri == "sqlite:///mlruns/mlflow.db"


def test_environment_overrides_nested_values(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEWIND_RISK__MAX_POSITION_PCT", "0.05")
    monkeypatch.setenv("TRADEWIND_PATHS__DATA_DIR", "elsewhere")
    settings = load_settings()
    assert settings.risk.max_position_pct == pytest.approx(0.05)
    assert settings.paths.bars_dir == Path("elsewhere") / "bars"


def test_yaml_file_is_read_and_environment_wins_over_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "tradewind.yaml").write_text(
        "risk:\n  max_positions: 4\n  max_position_pct: 0.08\nseed: 7\n"
    )
    monkeypatch.setenv("TRADEWIND_RISK__MAX_POSITIONS", "6")
    settings = load_settings()
    assert settings.risk.max_positions == 6
    assert settings.risk.max_position_pct == pytest.approx(0.08)
    assert settings.seed == 7


def test_an_unknown_yaml_key_is_rejected_by_name(workdir: Path) -> None:
    (workdir / "tradewind.yaml").write_text("risk:\n  max_postion_pct: 0.08\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'risk\.max_postion_pct'"):
        load_settings()


def test_a_bad_value_names_the_setting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIND_RISK__MAX_POSITION_PCT", "1.5")
    with pytest.raises(ConfigError, match=r"setting 'risk\.max_position_pct'"):
        load_settings()


def test_a_named_config_file_must_exist(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIND_CONFIG", str(workdir / "missing.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_the_short_api_token_variable_fills_the_serving_token(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEWIND_API_TOKEN", "t0ken-value")
    settings = load_settings()
    assert settings.serving.api_token is not None
    assert settings.serving.api_token.get_secret_value() == "t0ken-value"
    assert "t0ken-value" not in repr(settings)
    assert "t0ken-value" not in settings.model_dump_json()


def test_alpaca_keys_never_show_and_live_needs_both_flags(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKEXAMPLEKEY")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s3cr3t-example")
    credentials = AlpacaCredentials()
    assert credentials.paper is True
    shown = f"{credentials!r} {credentials}"
    assert "PKEXAMPLEKEY" not in shown
    assert "s3cr3t-example" not in shown
    assert credentials.require(allow_live=False) == ("PKEXAMPLEKEY", "s3cr3t-example", True)

    monkeypatch.setenv("ALPACA_PAPER", "false")
    live = AlpacaCredentials()
    with pytest.raises(ConfigError, match="ALLOW_LIVE"):
        live.require(allow_live=False)
    assert live.require(allow_live=True)[2] is False


def test_missing_alpaca_keys_are_named(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        AlpacaCredentials().require(allow_live=False)
