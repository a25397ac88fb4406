"""`tradewind demo`: the whole platform, offline, on the embedded S&P 500 set.

1. ingest the bars of the development symbols (the models learn from them) and of the
   held-out symbols (the engine trades them; `core.universe`), compute the feature
   catalogue and materialize Feast;
2. collect trades with the ungated engine over the training years (development symbols);
3. train and register the four models (they become champions);
4. start the BentoML model service as a subprocess (`tradewind serve`);
5. trade the held-out symbols over the later years through the engine, which consults
   the service over HTTP for every signal, while the `retrain` flow runs on its triggers
   and `evaluate_ab` promotes, retires or rolls back; the same bars replayed ungated are
   the baseline;
6. run the walk-forward evaluation (`evaluate` flow) on the same symbols;
7. write `reports/demo/report.json` and `report.html`; 8. say where to look.

Every stage is a Prefect flow (or a task of the `demo` flow) recorded in the persistent
local Prefect database under the data dir, and every model, retrain comparison, A/B
verdict and evaluation is in MLflow. Re-running is clean: the stores are idempotent
upserts, MLflow gets new runs and versions, and the demo's own journal, decision log and
log file under `<data_dir>/demo/` start afresh.

The demo's settings (printed at the start; ordinary settings overrides): retrain every
`retrain_every_trades` (10; production 100) closed trades or on a schedule, challenger
share 50% (production 20%), A/B after `min_trades_per_arm` trades per arm, win-probability
gate 0.5 (production 0.65).

Modules: `plan` (what runs, the demo's settings), `run` (`run_demo`: the Prefect home and
the log file, then the flow), `flow` (the `demo` flow and its tasks), `loop` (gated trading
with retraining and A/B), `narration` (the terminal story), `report` (the report)."""
