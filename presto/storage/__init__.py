"""Storage: the SQLAlchemy models, engine and session set-up, and Alembic migrations.
May import `presto.errors` and `presto.config` only."""
