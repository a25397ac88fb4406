"""The vendored S&P 500 daily set: the broad embedded default market data."""
