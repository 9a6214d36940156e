"""The ``backflow`` block of the configuration (imported by :mod:`gateway.config`, so this module
imports nothing of the gateway's)::

    backflow:
      sources:
        national:                      # a source name; records and checkpoint are kept per source
          partner: national            # whose URL, envelope and credentials ask the export
          export_url: /api/v1/data/backflow/export   # relative to the partner's URL
          interval: 300                # seconds between scheduled walks (first after first_delay)
          page_size: 5000
          batch_size: 1000             # records per batch to the city platform
          push_to: city-backflow       # the partner that receives the batches (the outbox)
          status_push_to: city         # a case result's status change is pushed here (or null)

No source: no scheduled pull (``gateway backflow run`` still needs one configured).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BackflowSourceSettings(_Frozen):
    partner: str = "national"
    export_url: str = "/api/v1/data/backflow/export"
    interval: float = Field(300.0, gt=0)
    page_size: int = Field(5000, ge=1, le=10_000)
    batch_size: int = Field(1000, ge=1, le=5000)
    push_to: str = "city-backflow"
    status_push_to: str | None = None
    timeout: float = Field(60.0, gt=0)
    page_retries: int = Field(5, ge=0)
    retry_wait: float = Field(1.0, gt=0)


class BackflowSettings(_Frozen):
    first_delay: float = Field(10.0, ge=0)
    sources: dict[str, BackflowSourceSettings] = Field(default_factory=dict)


__all__ = ["BackflowSettings", "BackflowSourceSettings"]
