"""Process-level plumbing the commands, flows and the demo share: the persistent local
Prefect database under the data dir (so flow runs outlive the process and show in
`tradewind ui`), a free port, and the command line of a child model service (run with
`serving.process.ServiceProcess`), and SIGTERM taken as Ctrl-C by the commands that start
child servers.

Prefect reads its settings when it is first imported, so `prefect_environment` must be
applied to `os.environ` before anything imports prefect in this process; `use_prefect_home`
also enters `temporary_settings` for the case where prefect was imported already."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from core.errors import ConfigError


def prefect_home(data_dir: Path) -> Path:
    """Where the local Prefect API database lives: `<data_dir>/prefect`."""
    return (data_dir / "prefect").resolve()


def prefect_environment(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The Prefect settings that point flow runs at the persistent local database
    `<data_dir>/prefect/prefect.db` (the one `tradewind ui` serves), or at `database_url`
    (`paths.prefect_database_url`, e.g. `postgresql+asyncpg://…`) when given."""
    home = prefect_home(data_dir)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # Flows run against a temporary in-process API server on that database.
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # 20 s: too short when busy
        # Offline machine: no telemetry (its failed sends also contend for the database).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@contextlib.contextmanager
def use_prefect_home(
    data_dir: Path, *, console_level: str | None = None, database_url: str | None = None
) -> Iterator[None]:
    """Run the block with Prefect recording into `<data_dir>/prefect/prefect.db` (or the
    database at `database_url`)."""
    env = prefect_environment(data_dir, database_url)
    if console_level:
        env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = console_level
    prefect_home(data_dir).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    if os.environ.get("PREFECT_API_URL"):
        # A running Prefect server was chosen explicitly: record there instead.
        yield
        return
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_HOME: env["PREFECT_HOME"],
            PREFECT_API_DATABASE_CONNECTION_URL: env["PREFECT_API_DATABASE_CONNECTION_URL"],
        }
    ):
        yield


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(host: str, port: int, *, where: str) -> None:
    """A ConfigError saying what to do when `host:port` cannot be listened on (another
    process holds it, or the address is not this machine's), before anything starts."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what runs "
                "there or pick another --port",
                where=where,
            ) from None


def model_service_command(port: int) -> list[str]:
    """`tradewind serve --port PORT` in this interpreter, for a child model service."""
    return [sys.executable, "-c", "from pipelines.cli import main; main()", "serve",
            "--port", str(port)]


@contextlib.contextmanager
def sigterm_as_ctrl_c(*, grace: float = 20.0) -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, so a command's
    own clean-up (stopping its child servers) runs for a service manager's stop too;
    Python's default for SIGTERM ends the process with no clean-up at all.

    An interrupt raised by a signal handler is lost when Python happens to be running a
    garbage-collection callback or a `__del__` at that moment (it prints "Exception
    ignored in ..." and goes on): inside a Prefect flow, whose own SIGTERM handler raises
    `TerminationSignal`, a demo could ignore a SIGTERM and run to its end. Such a lost
    interrupt is caught by `sys.unraisablehook` and the SIGTERM sent again to the main
    thread while the block lasts. Where it keeps being lost (XGBoost builds its matrices
    in ctypes callbacks, which drop exceptions too) or is swallowed, a watchdog started at
    the first loss ends it: `grace` seconds later, if the block is still running, every
    process the command started gets SIGTERM, then SIGKILL, and the process exits 130. A
    `TerminationSignal` leaving the block becomes KeyboardInterrupt: the command ends as
    on Ctrl-C ("aborted", exit 130), not with Prefect's traceback."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    previous_hook = sys.unraisablehook
    main_thread = threading.main_thread()
    inside = threading.Lock()  # held while the block is being left
    active = True

    def resend() -> None:
        # A real signal to the main thread, so a blocking call it sits in is interrupted
        # (to the process when the main thread blocks SIGTERM: another thread takes it and
        # Python runs the handler in the main thread soon after); only while the block's
        # handlers are installed (never to Python's default, which would end the process
        # with no clean-up).
        with inside:
            if not active:
                return
            if main_thread.ident is None or sigterm_blocked_in(main_thread.native_id):
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                signal.pthread_kill(main_thread.ident, signal.SIGTERM)

    left = threading.Event()
    watchdog = threading.Thread(target=_stop_if_still_running, args=(left, grace),
                                name="sigterm-watchdog", daemon=True)

    def redeliver_lost_interrupt(unraisable: Any) -> None:
        if _is_interrupt(unraisable.exc_type):
            later = threading.Timer(0.1, resend)  # out of the garbage collector first
            later.daemon = True
            later.start()
            if not watchdog.is_alive() and not left.is_set():
                with contextlib.suppress(RuntimeError):  # started already
                    watchdog.start()
        previous_hook(unraisable)

    sys.unraisablehook = redeliver_lost_interrupt
    try:
        yield
    except BaseException as exc:  # Prefect's TerminationSignal leaves as Ctrl-C's interrupt
        if _is_interrupt(type(exc)) and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        with inside:
            active = False
        left.set()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)


def sigterm_blocked_in(thread_id: int | None) -> bool:
    """Whether the thread (its native id) blocks SIGTERM now, read from /proc (native
    libraries may leave a thread's signal mask changed); False when it cannot be read."""
    if thread_id is None:
        return False
    try:
        status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def _stop_if_still_running(left: threading.Event, grace: float) -> None:
    """The watchdog of a lost SIGTERM: unless the command has left its block within
    `grace` seconds, end every process it started and exit as Ctrl-C would (130)."""
    if left.wait(grace):
        return
    from core.process_tree import end_all, process_tree

    sys.stderr.write(f"SIGTERM: still running {grace:.0f} s later; stopping the processes "
                     "it started and exiting\n")
    sys.stderr.flush()
    end_all(process_tree(os.getpid(), include_root=False).values(), grace=5.0)
    sys.stdout.flush()
    os._exit(130)


def _is_interrupt(kind: type[BaseException] | None) -> bool:
    """Ctrl-C's KeyboardInterrupt, or Prefect's TerminationSignal (named, not imported:
    Prefect must not be imported before its settings are in the environment)."""
    if kind is None:
        return False
    return issubclass(kind, KeyboardInterrupt) or any(
        base.__name__ == "TerminationSignal" for base in kind.__mro__
    )
