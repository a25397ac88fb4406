"""`tradewind demo`: the whole platform, offline, on the embedded sample data.

1. ingest the sample bars, compute the feature catalogue and materialize Feast;
2. collect trades with the ungated engine over the training years;
3. train and register the four models (they become champions);
4. start the BentoML model service as a subprocess (`tradewind serve`);
5. trade the later years through the engine, which consults the service over HTTP for
   every signal (simulated broker), while the `retrain` flow runs on its triggers (every
   N closed trades counted from the journal, and on a schedule in replay time), a better
   candidate enters A/B as challenger, and OPERATIONS' `evaluate_ab` flow promotes,
   retires or rolls back; the same years are also replayed ungated as the baseline;
6. write `reports/demo/report.json` and `reports/demo/report.html`;
7. say where to look.

Every stage is a Prefect flow (or a task of the `demo` flow) recorded in the persistent
local Prefect database under the data dir, so the runs are in the Prefect UI afterwards
(`tradewind ui`), and every model, retrain comparison and A/B verdict is in MLflow.

Re-running is clean: the bar store, Feast and the trade collection are idempotent upserts;
MLflow gets new runs and versions (the freshly trained versions become champion through
the registry's promote path, recording why); the demo's own journal and decision log
under `<data_dir>/demo/` are started afresh each run, so no trade is counted twice.

Settings the demo changes, and why (all through ordinary settings overrides, printed at
the start): on ~4 symbols of daily bars the strategies give only a few dozen trades in six
years, so the retrain trigger is every `retrain_every_trades` (default 10, production 100)
closed trades, the challenger share is 50% (production 20%), the A/B needs
`min_trades_per_arm` trades per arm, and the win-probability gate is 0.5 (production
0.65, which on this small sample would block every entry: the out-of-time probabilities
cluster near the base rate).

Modules: `plan` (what runs, the demo's settings), `run` (`run_demo`: the Prefect home,
then the flow), `flow` (the `demo` flow and its tasks), `loop` (gated trading with
retraining and A/B), `narration` (the terminal story), `report` and `page` (the report)."""
