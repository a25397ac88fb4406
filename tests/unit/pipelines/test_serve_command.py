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


class _InterruptedWhileCollected:
    """Raises a Ctrl-C's interrupt from `__del__`, where Python drops exceptions: the
    situation of a SIGTERM that lands while a garbage-collection callback runs."""

    def __del__(self) -> None:
        raise KeyboardInterrupt


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_that_python_drops_is_delivered_again_as_sigterm() -> None:
    import gc
    import time

    from pipelines.runtime import sigterm_as_ctrl_c

    def drop_an_interrupt_then_wait() -> None:
        with sigterm_as_ctrl_c():
            _InterruptedWhileCollected()  # dropped at once: "Exception ignored in ..."
            gc.collect()
            time.sleep(10)  # the SIGTERM sent again interrupts this (else the test fails)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        drop_an_interrupt_then_wait()
    assert time.monotonic() - started < 8  # the sleep was interrupted, not waited out


SWALLOWS_EVERY_INTERRUPT = """
import gc, subprocess, sys, time
from pipelines.runtime import sigterm_as_ctrl_c

class Dropped:
    def __del__(self):
        raise KeyboardInterrupt

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
with sigterm_as_ctrl_c(grace=1.0):
    Dropped()
    gc.collect()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a library that swallows every interrupt
        try:
            time.sleep(0.05)
        except BaseException:
            pass
"""


def test_a_command_that_keeps_losing_the_interrupt_is_stopped_by_the_watchdog(
    tmp_path: Path,
) -> None:
    """The re-sent SIGTERM is lost too (or swallowed): `grace` seconds after the first
    loss the watchdog ends what the command started and exits 130."""
    import os
    import subprocess
    import sys

    import psutil

    from core.process_tree import process_ended

    script = tmp_path / "swallow.py"
    script.write_text(SWALLOWS_EVERY_INTERRUPT)
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=50, check=False)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "SIGTERM: still running 1 s later" in done.stderr
    try:
        child = psutil.Process(int(done.stdout.split()[0]))
    except psutil.NoSuchProcess:
        return  # gone and reaped
    assert process_ended(child)


def test_only_interrupts_count_and_prefects_ends_the_command_as_ctrl_c_does() -> None:
    from pipelines.runtime import _is_interrupt

    class TerminationSignal(BaseException):  # Prefect's, by name
        pass

    assert _is_interrupt(KeyboardInterrupt)
    assert _is_interrupt(TerminationSignal)
    from pipelines.runtime import sigterm_as_ctrl_c

    def prefect_stops_the_flow() -> None:
        with sigterm_as_ctrl_c():
            raise TerminationSignal

    with pytest.raises(KeyboardInterrupt):  # ends as Ctrl-C does, not with a traceback
        prefect_stops_the_flow()
    assert not _is_interrupt(ValueError)
    assert not _is_interrupt(SystemExit)
    assert not _is_interrupt(None)
