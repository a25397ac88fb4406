"""Market data from a user's parquet or CSV files."""
