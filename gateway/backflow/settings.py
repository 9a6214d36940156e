"""The ``backflow`` block of the configuration. The models live in :mod:`gateway.config` (the
settings layer imports nothing above it); this module names them for the back-flow code::

    backflow:
      first_delay: 10                  # seconds after start-up before the first scheduled walk
      sources:
        national:                      # a source name; records and checkpoint are kept per source
          partner: national            # whose URL, envelope and credentials ask the export
          export_url: /api/v1/data/backflow/export   # relative to the partner's URL
          interval: 5m                 # between scheduled walks
          page_size: 5000
          batch_size: 1000             # records per batch to the city platform
          push_to: city-backflow       # the partner that receives the batches (the outbox)
          status_push_to: city         # a case result's status change is pushed here (or null)

No source: no scheduled pull (``gateway backflow run`` needs one configured too).
"""

from __future__ import annotations

from gateway.config import BackflowSettings, BackflowSourceSettings

__all__ = ["BackflowSettings", "BackflowSourceSettings"]
