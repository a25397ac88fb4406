"""Numeric samples as the monitoring statistics take them: finite values only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def finite_values(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    """The finite values of a 1-D sample (NaN and ±inf dropped), as float64."""
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]
