"""Domain services: the menu's rules and use cases (read, write, keys, entity tags, limits).
May import `presto.storage`, `presto.errors` and `presto.config`; never `api` or `serving`."""
