"""HTTP API: one blueprint module per resource, plus the error handlers.
May import `presto.schemas`, `presto.schema_fields`, `presto.services`, `presto.storage`
and the modules under every layer; never `presto.app` or `presto.serving`."""
