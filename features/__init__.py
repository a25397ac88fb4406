"""Tradewind features: the catalogue (`catalogue`), pure transforms from bars to features
(`technical`, `market`, `sentiment`, `temporal`, `position`; batch `compute`, live
`streaming` (constant time per bar), the old window recompute `incremental`), the symbol
→ sector map (`sectors`), trade outcome labels (`outcomes`), the bar store (`bar_store`)
and the Feast feature store (`store`, `repo/`)."""
