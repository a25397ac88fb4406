"""Tradewind's Feast repository: the entity, data sources, push sources and feature
views (`definitions.py`) and the configuration template (`feature_store.yaml.template`).
Registry, online store and offline files live under the data directory, not here."""
