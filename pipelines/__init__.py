"""Tradewind pipelines."""
