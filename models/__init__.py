"""Tradewind models."""
