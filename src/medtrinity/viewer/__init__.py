"""`medtrinity view DIR`: a local, read-only web viewer over a build's Parquet shards (DuckDB queries)."""
