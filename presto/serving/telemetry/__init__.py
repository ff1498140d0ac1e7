"""Telemetry of a worker: what the protections count (`counters`), the Prometheus metric
families and their batched counting (`instruments`), route-template labels (`routes`) and
the worker's `/metrics` (`metrics`). May import `presto.storage` and everything below it,
and the menu cache whose state it reports (`presto.serving.cache`)."""
