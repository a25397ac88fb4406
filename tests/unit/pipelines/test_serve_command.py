"""`tradewind serve` never opens the model service beyond loopback without a token: one
clear line, exit code 2, before `bentoml serve` is started."""

from __future__ import annotations

import os
import subprocess
import sys
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


# Each case runs as a command does, in a process of its own: in pytest's process, late in a
# whole run, the re-sent signal once did not cut this sleep short (a state a command does
# not start with; `sigterm_blocked_in` covers the likeliest cause, a blocked SIGTERM).
DROPS_ONE_INTERRUPT = """
import gc, time
from pipelines.runtime import sigterm_as_ctrl_c

class Dropped:  # raises Ctrl-C's interrupt from __del__, where Python drops exceptions
    def __del__(self):
        raise KeyboardInterrupt

started = time.monotonic()
try:
    with sigterm_as_ctrl_c():
        Dropped()
        gc.collect()
        time.sleep(10)  # the SIGTERM sent again interrupts this
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - started:.2f} s")
"""

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


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "command.py"
    path.write_text(script)
    root = Path(__file__).resolve().parents[3]
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=50, check=False)


def test_an_interrupt_that_python_drops_is_delivered_again_as_sigterm(tmp_path: Path) -> None:
    done = _run(DROPS_ONE_INTERRUPT, tmp_path)
    assert "Exception ignored" in done.stderr  # the first one was dropped
    assert done.stdout.startswith("interrupted after"), done.stderr[-2000:]
    assert float(done.stdout.split()[2]) < 8  # the sleep was cut short, not waited out


def test_a_blocked_sigterm_is_seen_in_the_threads_signal_mask() -> None:
    import signal
    import threading

    from pipelines.runtime import sigterm_blocked_in

    me = threading.get_native_id()
    assert not sigterm_blocked_in(me)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        assert sigterm_blocked_in(me)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    assert not sigterm_blocked_in(me)
    assert not sigterm_blocked_in(None)


def test_a_command_that_keeps_losing_the_interrupt_is_stopped_by_the_watchdog(
    tmp_path: Path,
) -> None:
    """The re-sent SIGTERM is lost too (or swallowed): `grace` seconds after the first
    loss the watchdog ends what the command started and exits 130."""
    import psutil

    from core.process_tree import process_ended

    done = _run(SWALLOWS_EVERY_INTERRUPT, tmp_path)
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
