"""Tradewind features."""
