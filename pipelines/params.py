"""Flow and command parameters as the domain takes them: ISO text to UTC timestamps.
(Kept free of Prefect: the demo imports it before Prefect may be imported.)"""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def utc_timestamp(value: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A parameter (ISO text or a timestamp) as a UTC timestamp; naive means UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
