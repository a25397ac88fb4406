"""A process and everything it started, found and ended: for stopping child servers whose
own children run in sessions of their own (BentoML's circus workers), which a signal to
the process group does not reach, and which become orphans, no longer found from their
parent, once it has died. Callers record the tree while it is whole."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

import psutil


def process_tree(pid: int, *, include_root: bool = True) -> dict[int, psutil.Process]:
    """The process and its descendants now, by pid (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.Error:
        return {}
    return {p.pid: p for p in ([root] if include_root else []) + children}


def process_ended(process: psutil.Process) -> bool:
    """True once the process has exited (a zombie counts: it runs no more)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or its pid now another's
        return True


def still_running(tree: Iterable[psutil.Process], *, wait: float) -> list[psutil.Process]:
    """The processes of `tree` not ended within `wait` seconds (an orphan's zombie has
    ended: its new parent may be slow to reap it)."""
    procs = list(tree)
    deadline = time.monotonic() + wait
    while True:
        alive = [p for p in procs if not process_ended(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)  # polling processes the caller has asked to end, with a deadline


def kill_all(tree: Iterable[psutil.Process], *, wait: float = 10.0) -> None:
    """SIGKILL to each process still alive, then wait up to `wait` s for them to end."""
    procs = list(tree)
    for process in procs:
        with contextlib.suppress(psutil.Error):
            process.kill()
    still_running(procs, wait=wait)


def end_all(tree: Iterable[psutil.Process], *, grace: float) -> None:
    """SIGTERM to each process, `grace` seconds to end, then SIGKILL to the rest."""
    procs = list(tree)
    for process in procs:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    kill_all(still_running(procs, wait=grace))
