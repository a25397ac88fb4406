"""The embedded sample market data: real daily bars shipped inside PyPI packages."""
