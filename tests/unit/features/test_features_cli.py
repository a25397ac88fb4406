"""`tradewind features list/compute` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from core.errors import NotFoundError
from core.types import BAR_COLUMNS
from pipelines.cli import app

runner = CliRunner()


def test_list_json_names_every_feature_with_its_group() -> None:
    result = runner.invoke(app, ["features", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert len(listed) >= 55
    assert {"technical", "market", "sentiment", "temporal", "position"} == {
        item["group"] for item in listed
    }
    assert all(item["name"] for item in listed)


def test_compute_takes_the_index_from_a_separate_file(
    workdir: Path, sp500_daily: pd.DataFrame, spy_daily: pd.DataFrame
) -> None:
    sp500_daily.loc[sp500_daily["symbol"].isin(["AAPL", "XOM"])].to_parquet("bars.parquet")
    spy_daily.loc[:, list(BAR_COLUMNS)].to_csv("spy.csv", index=False)
    result = runner.invoke(
        app,
        [
            "features",
            "compute",
            "--input",
            "bars.parquet",
            "--output",
            "out/f.parquet",
            "--index",
            "spy.csv",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(workdir / "out" / "f.parquet")
    assert set(frame["symbol"]) == {"AAPL", "XOM"}
    assert frame["mkt_return_20"].notna().sum() > 2_000


def test_missing_input_is_a_clear_error(workdir: Path) -> None:
    result = runner.invoke(
        app, ["features", "compute", "--input", "nope.parquet", "--output", "x.parquet"]
    )
    assert isinstance(result.exception, NotFoundError)
    assert "nope.parquet" in str(result.exception)
