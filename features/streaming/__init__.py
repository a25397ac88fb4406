"""Streaming features: the catalogue's bar-derived features from per-symbol state updated
in constant time per bar, equal to the batch computation (`features.compute`)."""

from features.streaming.features import StreamingFeatures

__all__ = ["StreamingFeatures"]
