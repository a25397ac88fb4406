"""Tradewind trading."""
