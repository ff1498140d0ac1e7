"""The async serving layer: the aiohttp server on uvloop, the warm-path menu cache, shared
generation counters and the access log. May import `presto.app` and everything below it."""
