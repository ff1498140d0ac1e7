"""HTTP API: one blueprint module per resource, plus the error handlers."""
