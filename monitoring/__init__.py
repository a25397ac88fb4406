"""The model lifecycle's domain, apart from any orchestration: A/B statistics and verdicts
(`ab`), the champion's rollback floor (`rollback`), what the verdict does to the registry
(`lifecycle`), drift, calibration and latency figures (`drift`, `calibration`, `latency`),
closed trades joined to the decisions that opened them (`outcomes`), the alert policy and
its sinks (`alerts`, `sinks`, `policy`), the retrain trigger (`trigger`) and the store of
A/B outcomes (`store`). It imports `core` and `models` only; the flows in `pipelines/` read
the journal and the decision log and hand the frames in."""
