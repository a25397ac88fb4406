"""Stored features cannot quietly go wrong: `features compute --store` without an index
series would write missing market features over good stored ones; it is refused (one
clear error, nothing written) unless `--overwrite-missing` says so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.errors import DataValidationError
from core.settings import PathSettings
from features.store import FeatureStore
from pipelines.cli import app
from trading.adapters.sample.data import SampleMarketData

runner = CliRunner()


@pytest.fixture
def bar_files(workdir: Path) -> tuple[Path, Path]:
    bars = SampleMarketData().history(None)
    bars = bars[bars["timestamp"].between("2011-01-01", "2011-12-31")]
    stocks, index = workdir / "bars.parquet", workdir / "spx.parquet"
    bars[bars["symbol"].isin(["AAPL", "MSFT"])].to_parquet(stocks)
    bars[bars["symbol"] == "SPX"].to_parquet(index)
    return stocks, index


def _compute(*extra: str) -> object:
    return runner.invoke(app, ["features", "compute", "--input", "bars.parquet", "--output",
                               "features.parquet", "--store", *extra])


def _stored() -> pd.DataFrame:
    return FeatureStore(PathSettings(data_dir=Path("data"))).read_features()


def test_missing_market_features_never_replace_stored_ones_unless_told(
    bar_files: tuple[Path, Path],
) -> None:
    assert _compute("--index", str(bar_files[1])).exit_code == 0
    good = _stored()
    assert good["mkt_trend"].notna().sum() > 50

    refused = _compute()  # no index series: every market feature is missing
    assert isinstance(refused.exception, DataValidationError)
    message = str(refused.exception)
    assert "would replace" in message
    assert "mkt_" in message
    assert "--overwrite-missing" in message
    assert "nothing was written" in message
    pd.testing.assert_frame_equal(_stored(), good)

    told = _compute("--overwrite-missing")
    assert told.exit_code == 0, told.output
    assert _stored()["mkt_trend"].isna().all()


def test_new_rows_with_gaps_are_stored(bar_files: tuple[Path, Path]) -> None:
    result = _compute()  # nothing stored yet: nothing good to lose
    assert result.exit_code == 0, result.output
    assert len(_stored()) > 400
