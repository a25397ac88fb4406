"""The local Alpaca-compatible paper exchange: the matching engine behind Alpaca's trading
API over HTTP and WebSocket (`app.py`), replaying bars from the offline store."""
