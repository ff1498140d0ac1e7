"""The keys in `app.config` through which the server tells `/readyz`
(`presto.api.health_routes`) what only it knows, so the server sets them without importing
a route module."""

# The key in `app.config` of the bound `/readyz` waits for the database.
READINESS_TIMEOUT = "PRESTO_READINESS_TIMEOUT"
# The key in `app.config` of a callable naming the helper processes (the publisher) that
# cannot stay up; set by the server that runs them.
FAILING_PROCESSES = "PRESTO_FAILING_PROCESSES"
# The key in `app.config` of a callable giving the connections beside the pool's state:
# (why the worker is not ready, or None; a note on the database, or None).
CONNECTION_ROLES = "PRESTO_CONNECTION_ROLES"
