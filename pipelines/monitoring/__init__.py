"""Monitoring logic for the live platform: drift and calibration statistics (`drift`) and
alert records, sinks and deduplication (`alerts`). Pure and unit-testable; the monitor flow
in `pipelines/flows/monitor.py` feeds them data."""
