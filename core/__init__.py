"""Tradewind core."""
