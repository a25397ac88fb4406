"""Closed trades from the feature store join the training events at their signal bar
(the bar before the entry fill), without double-counting strategy signals."""

from __future__ import annotations

import pandas as pd

from models.datasets import add_trade_events


def test_trade_entries_become_events_at_the_signal_bar() -> None:
    stamps = pd.date_range("2021-03-01", periods=5, freq="D", tz="UTC")
    bars = pd.DataFrame({"symbol": "AAA", "timestamp": stamps})
    signals = pd.DataFrame({"symbol": ["AAA"], "timestamp": [stamps[1]], "side": ["buy"],
                            "strategy": ["momentum"], "price": [10.0], "reason": ["cross"]})
    trades = pd.DataFrame({
        "symbol": ["AAA", "AAA", "ZZZ"],
        # entries fill at the open of the bar after the signal
        "entry_time": [stamps[2], stamps[4] + pd.Timedelta(hours=14, minutes=30), stamps[3]],
        "side": ["buy", "BUY", "buy"],
        "strategy": ["momentum", "breakout", "momentum"],
    })
    events = add_trade_events(signals, trades, bars)
    assert len(events) == 2  # the first trade is the known momentum signal; ZZZ has no bars
    added = events.iloc[1]
    assert added["timestamp"] == stamps[4]
    assert added["side"] == "buy"
    assert added["reason"] == "closed trade"
