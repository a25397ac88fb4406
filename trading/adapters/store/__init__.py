"""Market data from Tradewind's own offline bar store (`features.bar_store`)."""
