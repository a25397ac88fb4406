"""Where the flows' fan-out tasks run, chosen by configuration (`settings.compute`): a
flow declared with `ComputeTaskRunner()` runs its submitted tasks on Prefect's local
runner (threads, or the flow's own choice) unless `compute.dask_address`
(`TRADEWIND_COMPUTE__DASK_ADDRESS`) names a Dask scheduler; then on that cluster through
prefect-dask. The runner is picked when a flow run starts, so the same flow code serves
both. How work is cut (`symbol_shards`, trial batches) never depends on the runner, so
both give the same results.

Dask workers report their task runs to the flow's Prefect API: a configured server, or
the temporary one this process started (its address is passed on to the workers)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, Self

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from core.settings import load_settings


class ComputeTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """Prefect's local runner (`local`, threads by default) or a Dask cluster, by the
    settings at the start of each flow run."""

    def __init__(self, local: Callable[[], TaskRunner[Any]] = ThreadPoolTaskRunner) -> None:
        super().__init__()
        self._local = local
        self._inner: TaskRunner[Any] | None = None
        self._stack = contextlib.ExitStack()

    def duplicate(self) -> Self:
        return type(self)(self._local)

    def __enter__(self) -> Self:
        super().__enter__()
        address = load_settings().compute.dask_address
        if address:
            from prefect_dask import DaskTaskRunner

            self._stack.enter_context(_api_for_workers())
            inner: TaskRunner[Any] = DaskTaskRunner(address=address)
        else:
            inner = self._local()
        self._inner = self._stack.enter_context(inner)
        self.logger.debug("tasks run on %s", address or type(inner).__name__)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner = None
        self._stack.__exit__(*exc)
        self._stack = contextlib.ExitStack()
        super().__exit__(*exc)

    def submit(self, task: Any, parameters: dict[str, Any],
               wait_for: Iterable[PrefectFuture[Any]] | None = None,
               dependencies: dict[str, set[Any]] | None = None) -> PrefectFuture[Any]:
        if self._inner is None:
            raise RuntimeError("the task runner must be started before submitting work")
        return self._inner.submit(task, parameters, wait_for, dependencies)


@contextlib.contextmanager
def _api_for_workers() -> Any:
    """Name this process's temporary Prefect server in the settings the tasks carry to
    the workers, so they report there instead of starting servers of their own."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Only a process that started a temporary server has imported its module.
    module = sys.modules.get("prefect.server.api.server")
    server = module.SubprocessASGIServer() if module else None
    if PREFECT_API_URL.value() or server is None or not server.running:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


def symbol_shards(symbols: Iterable[str], per_shard: int | None) -> list[list[str]]:
    """Sorted symbols cut into consecutive shards of `per_shard` (one shard for None)."""
    ordered = sorted(set(symbols))
    size = per_shard or max(len(ordered), 1)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)] or [[]]


def results(futures: Iterable[PrefectFuture[Any]]) -> list[Any]:
    """The futures' results, in submission order."""
    return [future.result() for future in list(futures)]
