"""Prefect flows: ingest, collect_trades, train, retrain (the learning loop) and the
operations flows (evaluate_ab, monitor, optimize)."""
