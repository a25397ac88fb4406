"""The flows' runner choice and the work's cut (`pipelines.compute`): the runner follows
`compute.dask_address` when a flow run starts; shards never depend on the runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines.compute import ComputeTaskRunner, symbol_shards


def test_symbols_are_cut_into_sorted_consecutive_shards() -> None:
    assert symbol_shards(["MSFT", "AAPL", "IBM", "GOOG", "AAPL"], 3) == [
        ["AAPL", "GOOG", "IBM"], ["MSFT"]]
    assert symbol_shards(["MSFT", "AAPL"], None) == [["AAPL", "MSFT"]]  # one shard
    assert symbol_shards([], 5) == [[]]


def test_the_runner_is_chosen_when_a_run_starts(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dask import DaskTaskRunner

    declared = ComputeTaskRunner(local=lambda: ThreadPoolTaskRunner(max_workers=3))
    with declared.duplicate() as runner:  # the flow's own local runner
        assert isinstance(runner._inner, ThreadPoolTaskRunner)
        assert runner._inner._max_workers == 3
    assert runner._inner is None
    monkeypatch.setenv("TRADEWIND_COMPUTE__DASK_ADDRESS", "tcp://127.0.0.1:1")
    with ComputeTaskRunner().duplicate() as runner:  # Dask connects on the first task only
        assert isinstance(runner._inner, DaskTaskRunner)
        assert runner._inner.address == "tcp://127.0.0.1:1"
    monkeypatch.delenv("TRADEWIND_COMPUTE__DASK_ADDRESS")
    with ComputeTaskRunner() as runner:
        assert isinstance(runner._inner, ThreadPoolTaskRunner)


def test_submitting_before_the_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="started"):
        ComputeTaskRunner().submit(None, {})
