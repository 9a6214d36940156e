"""The way out to partners: the worker that claims due deliveries, maps, sends and records each
attempt (``worker``), and the per-partner gates it asks first — the shared circuit breaker and
this instance's limits (``gates``)."""
