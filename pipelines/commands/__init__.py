"""Sub-commands of `tradewind`, one module per area."""
