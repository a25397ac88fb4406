"""Real daily bars (bokeh-sampledata AAPL and MSFT, first sessions of 2010) for the paper
exchange's unit tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.integration.exchange_support import sample_bars


@pytest.fixture(scope="session")
def bars() -> pd.DataFrame:
    return sample_bars()
