"""HTTP handlers of the gateway's own API (cases, operations)."""
