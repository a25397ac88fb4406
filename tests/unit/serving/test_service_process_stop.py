"""`ServiceProcess.stop` ends the whole tree of a service that behaves as BentoML's does:
a main process (circus) that drops the SIGTERMs landing while it starts its workers, and
workers in sessions of their own that the group's signal never reaches. The stand-in is a
small Python program, so the timing is the test's, not a real server's start-up."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from core.process_tree import process_ended
from serving.process import ServiceProcess

# The main process writes the worker's pid and, once it takes SIGTERM, stops its worker
# and exits, as circus does once it has started.
SERVICE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    ignore_for = float(sys.argv[1])
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                              start_new_session=True)
    open(sys.argv[2], "w").write(str(worker.pid))

    def on_term(signum, frame):
        if time.monotonic() - started >= ignore_for:
            worker.terminate()
            worker.wait()
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        time.sleep(0.05)
    """
)


def launched(tmp_path: Path, ignore_for: float, stop_timeout: float = 30.0) -> tuple[
    ServiceProcess, psutil.Process
]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    pid_file = tmp_path / "worker.pid"
    service = ServiceProcess(
        [sys.executable, str(script), str(ignore_for), str(pid_file)],
        port=0,
        log_path=tmp_path / "service.log",
        stop_timeout=stop_timeout,
    )
    service.launch()
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()
        time.sleep(0.05)  # polling a child process's start-up, with a deadline
    return service, psutil.Process(int(pid_file.read_text()))


def test_a_stop_dropped_while_the_service_starts_is_sent_again(tmp_path: Path) -> None:
    service, worker = launched(tmp_path, ignore_for=2.0)
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 15  # the SIGTERM sent again, not the 30 s deadline
    assert service.exit_code == 0
    assert process_ended(worker)


def test_a_service_that_never_stops_is_killed_with_its_tree(tmp_path: Path) -> None:
    service, worker = launched(tmp_path, ignore_for=3600.0, stop_timeout=2.0)
    service.stop()
    assert service.exit_code == -9
    assert process_ended(worker)


def test_an_interrupt_while_stopping_kills_the_tree_and_goes_on(tmp_path: Path) -> None:
    service, worker = launched(tmp_path, ignore_for=3600.0)
    process = service._process
    assert process is not None
    waits = 0
    real_wait = process.wait

    def interrupted_wait(timeout: float | None = None) -> int:
        nonlocal waits
        waits += 1
        if waits == 1:  # a second Ctrl-C while the stop waits
            raise KeyboardInterrupt
        return real_wait(timeout)

    process.wait = interrupted_wait  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        service.stop()
    assert process.returncode == -9
    assert process_ended(worker)
