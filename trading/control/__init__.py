"""The engine's control plane: the HTTP API and live dashboard served by `tradewind
trade` itself, the operator's controls (pause, resume, flatten, close, cancel), the
engine's alerts and terminal story, the persisted session baseline of the daily-loss
halt, the retrain trigger on the trade count, and the MCP tools over the same API.

Nothing here trades: the engine (`trading.engine`) and the live runner
(`trading.service`) do; this package watches them (`observed.py`, `events.py`), reads
the journal (`reads.py`) and steers them through the same calls an operator would
(`actions.py`). Composition happens in `pipelines/commands/trading.py`."""
