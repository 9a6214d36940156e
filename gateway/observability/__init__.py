"""What operators see: structured logs (``logs``) with the redaction every line passes
(``redaction``), the events of a case's life (``case_log``), and Prometheus metrics with bounded
labels (``metrics``)."""
