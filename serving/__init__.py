"""Tradewind serving."""
