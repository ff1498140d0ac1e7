"""The async serving layer: the aiohttp server on uvloop, connection guards, request bodies,
admission (rate limits, load shedding), the warm-path menu cache, shared generation counters
and the access log. May import `presto.app` and everything below it."""
