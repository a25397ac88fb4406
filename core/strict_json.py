"""Strict JSON from Python, numpy and pandas values: the one conversion every report,
proposal and stored summary goes through before `json.dumps(..., allow_nan=False)`.

Conventions: NaN (and NaT) becomes `null`; ±infinity becomes `null`, or the text
`"inf"` / `"-inf"` with `infinity_as_text=True` (a profit factor with no losing trade
is infinite, and a report may want to say so); numpy scalars and arrays become Python
numbers and lists; timestamps, datetimes and dates become ISO 8601 text; mapping keys
become text; tuples become lists. `digits` rounds finite floats."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd


def json_safe(value: Any, *, digits: int | None = None, infinity_as_text: bool = False) -> Any:
    """`value` with everything strict JSON cannot hold converted (see the module)."""

    def convert(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(key): convert(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [convert(inner) for inner in item]
        if isinstance(item, np.ndarray):
            return [convert(inner) for inner in item.tolist()]
        if isinstance(item, np.generic):
            return convert(item.item())
        if item is pd.NaT:
            return None
        if isinstance(item, float):
            if math.isnan(item):
                return None
            if math.isinf(item):
                return ("inf" if item > 0 else "-inf") if infinity_as_text else None
            return round(item, digits) if digits is not None else item
        if isinstance(item, date):  # datetime and pd.Timestamp are dates too
            return item.isoformat()
        return item

    return convert(value)


def dumps_strict(value: Any, **options: Any) -> str:
    """`json.dumps` of `json_safe(value)`; refuses NaN and infinity that slip through."""
    return json.dumps(json_safe(value), allow_nan=False, **options)
