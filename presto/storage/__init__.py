"""Storage: the SQLAlchemy models, engine and session set-up, the database circuit breaker,
and Alembic migrations. May import `presto.errors` and `presto.config` only."""
