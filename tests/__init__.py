"""presto's test suite: every database test runs on SQLite and on PostgreSQL."""
