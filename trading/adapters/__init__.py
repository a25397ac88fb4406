"""Tradewind adapters."""
