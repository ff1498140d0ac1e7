"""The async serving layer: the server in parts (the request handler, worker assembly, a
worker's lifecycle, the supervisor of worker processes, log set-up), connection guards,
request bodies, admission (rate limits, load shedding), the warm-path menu cache, shared
generation counters, the access log and telemetry (`presto.serving.telemetry`). May import
`presto.app` and everything below it."""
