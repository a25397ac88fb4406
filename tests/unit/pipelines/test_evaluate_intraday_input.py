"""Bad input to `tradewind evaluate --timeframe 1Min` ends in one clear error: a daily
file, an unknown symbol, too few sessions for the folds (read from real bars, before any
training), and the options that belong to the other timeframe."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, DataValidationError
from core.settings import load_settings
from pipelines.flows.evaluate import intraday_folds
from tests.conftest import shared_file
from tests.unit.pipelines.cli_runner import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluate")
    minutes = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    spy = minutes[(minutes["symbol"] == "SPY") & (minutes["timestamp"] < "2021-07-17")]
    daily = pd.read_parquet(shared_file("spy_daily_2008_2017.parquet"))
    paths = {"minutes": folder / "spy.parquet", "daily": folder / "daily.parquet"}
    spy.to_parquet(paths["minutes"])
    daily.drop(columns=["adj_close"]).to_parquet(paths["daily"])
    return paths


def folds(source: Path | str, **overrides: object) -> list:
    arguments: dict = {"source": str(source), "timeframe": "1Min", "symbols": ["SPY"],
                       "fold_sessions": 2, "fold_starts": None, "embargo_bars": 5,
                       "settings": load_settings()} | overrides
    return intraday_folds(**arguments)[2]


def test_the_minute_file_folds_by_sessions(files: dict[str, Path]) -> None:
    found = folds(files["minutes"])
    assert [f.label for f in found] == ["2021-07-09", "2021-07-13", "2021-07-15"]
    assert all(a.end < b.start for a, b in itertools.pairwise(found))
    assert all(f.train_end < f.start for f in found)


@pytest.mark.parametrize(("source", "overrides", "error", "message"), [
    ("daily", {}, DataValidationError, "1Min bars cannot be made"),
    ("minutes", {"symbols": ["NOSUCH"]}, DataValidationError, "no bars for NOSUCH"),
    ("minutes", {"fold_sessions": 5}, DataValidationError, "too few sessions for 3 folds"),
    ("minutes", {"fold_starts": ["2021-07-16"]}, DataValidationError,
     "too few sessions for a fold of 2"),
    ("sp500", {}, ConfigError, "needs --source a minute-bar"),
    ("minutes", {"symbols": ["TLT"]}, ConfigError, "every requested symbol is held out"),
    ("minutes", {"symbols": None}, ConfigError, "add --symbols SPY"),
])
def test_bad_input_is_one_clear_error(files: dict[str, Path], source: str, overrides: dict,
                                      error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        folds(files.get(source, source), **overrides)


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--fold-days", "3"], "--fold-days is for intraday timeframes"),
    (["evaluate", "--timeframe", "1Min", "--folds", "2021"], "first sessions as dates"),
    (["evaluate", "--timeframe", "2Min"], "unknown timeframe '2Min'"),
    (["evaluate", "--timeframe", "1Min", "--max-training-symbols", "3"], "is for daily bars"),
])
def test_options_of_the_other_timeframe_are_one_error_line(argv: list[str], message: str
                                                           ) -> None:
    outcome = run_cli(*argv)
    assert outcome.code == 2
    assert len(outcome.error_lines) == 1
    assert message in outcome.error_lines[0]
