"""Transport and message security: TLS contexts, request signing schemes, caller identities."""
