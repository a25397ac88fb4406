"""Alpaca adapters: market data (`data.py`), execution (`execution.py`), settings (`config.py`)."""
