"""`tradewind serve` never opens the model service beyond loopback without a token: one
clear line, exit code 2, before `bentoml serve` is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.7.7"])
def test_serve_refuses_beyond_loopback_without_a_token(
    workdir: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--host", host])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # the console wraps at its width
    assert err.count("error:") == 1
    assert f"would listen on {host}, beyond loopback, without a token" in err


def test_the_settings_host_is_checked_too(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEWIND_SERVING__HOST", "0.0.0.0")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve"])
    assert exit_info.value.code == 2
    assert "beyond loopback" in " ".join(capsys.readouterr().err.split())


def test_sigterm_is_taken_as_ctrl_c_inside_and_restored_after() -> None:
    """The handler is called directly: a real SIGTERM to pytest would end the run if the
    handler were missing (`tradewind ui`'s integration test sends a real one)."""
    import signal

    from pipelines.runtime import sigterm_as_ctrl_c

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_ctrl_c():
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGTERM) is before
