"""The back-flow walk of one source: from its checkpoint to the end of the export.

Each page is read through :class:`gateway.statuses.export_reader.ExportReader` (the partner's
envelope and credentials, retries from the same cursor, the next page fetched while this one is
handled: at most two pages held, so memory stays flat whatever the export's size), mapped
(:class:`~gateway.backflow.mapper.RecordMapper`), its case results applied
(:func:`~gateway.backflow.apply.apply_results`), then stored with the checkpoint in one
transaction (:meth:`gateway.store.backflow.BackflowStore.store_page`). Nothing about a record's
content is logged (holders are personal data): kinds, counts and cursors only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from gateway.backflow.apply import apply_results
from gateway.backflow.mapper import RecordMapper
from gateway.backflow.settings import BackflowSourceSettings
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.observability.metrics import Metrics
from gateway.statuses.export_reader import ExportEndpoint, ExportReader
from gateway.store import Store
from gateway.store.backflow import BackflowStore, PageResult

log = logging.getLogger("gateway.backflow")


@dataclass
class PullReport:
    source: str
    pages: int = 0
    records: int = 0
    kept: int = 0
    replaced: int = 0
    ignored: int = 0
    batches: int = 0
    statuses: int = 0
    retried: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    done: bool = False


def source_settings(settings: Settings, source: str) -> BackflowSourceSettings:
    sources = settings.backflow.sources
    if source not in sources:
        raise ConfigError(f"no back-flow source {source!r} (configured: "
                          f"{', '.join(sorted(sources)) or 'none'})", file=settings.source_file,
                          key="backflow.sources")
    return sources[source]


def endpoint(settings: Settings, source: str) -> ExportEndpoint:
    """The export of ``source`` as configured: its partner's URL, envelope and credentials."""
    src = source_settings(settings, source)
    p = settings.partners.get(src.partner)
    if p is None:
        raise ConfigError(f"{src.partner!r} is not a partner", file=settings.source_file,
                          key=f"backflow.sources.{source}.partner")
    return ExportEndpoint.of_partner(src.partner, p, src.export_url, page_size=src.page_size,
                                     timeout=src.timeout)


class Puller:
    """Walks one source's export from its checkpoint (module docstring)."""

    def __init__(self, store: Store, settings: Settings, mappings: MappingRegistry,
                 http: aiohttp.ClientSession, source: str, *,
                 on_page: Callable[[PageResult], None] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.src = source_settings(settings, source)
        self.metrics = metrics  # case results applied (gateway_status_changes_total)
        self.source = source
        self.store = store
        self.endpoint = endpoint(settings, source)
        self.http = http
        self.mapper = RecordMapper(mappings, source, settings.path(settings.schemas_dir))
        self.backflow = BackflowStore(store, partner=self.src.push_to,
                                      batch_size=self.src.batch_size)
        self.on_page = on_page

    def _count(self, report: PullReport, res: PageResult) -> None:
        report.pages += 1
        report.records += res.records
        report.kept += res.kept
        report.replaced += res.replaced
        report.ignored += res.ignored
        report.batches += res.batches
        if self.on_page is not None:
            self.on_page(res)

    async def run(self, *, max_pages: int | None = None) -> PullReport:
        """Walk to the end of the export (or ``max_pages`` pages); ExportUnavailable names the
        cursor a failed page stopped at (the checkpoint holds it already)."""
        report = PullReport(self.source)
        t0 = time.perf_counter()
        cp = await self.backflow.checkpoint(self.source)
        reader = ExportReader(self.http, self.endpoint, retries=self.src.page_retries,
                              retry_wait=self.src.retry_wait)
        storing: asyncio.Task[PageResult] | None = None
        try:
            async for page in reader.pages(cp.cursor if cp else None):
                # this page is mapped while the page before is committed (SQLite's writer
                # thread): one page in the database at a time, so the checkpoint stays in order
                mapped = self.mapper.map_page(page.records)
                for reason, n in mapped.invalid.items():
                    report.invalid[reason] = report.invalid.get(reason, 0) + n
                    log.warning("back-flow %s page %d: %d record(s) skipped: %s", self.source,
                                page.number, n, reason)
                report.statuses += await apply_results(self.store, mapped.records,
                                                       push_to=self.src.status_push_to,
                                                       metrics=self.metrics)
                if storing is not None:
                    self._count(report, await storing)
                storing = asyncio.create_task(self.backflow.store_page(
                    self.source, page.cursor, page.next_cursor, mapped.records))
                report.done = page.next_cursor is None
                if max_pages is not None and report.pages + 1 >= max_pages:
                    break
            if storing is not None:
                self._count(report, await storing)
                storing = None
        finally:
            if storing is not None:  # failed or cancelled meanwhile: the page commits or not
                await asyncio.gather(storing, return_exceptions=True)
            report.retried = reader.retried
            report.seconds = time.perf_counter() - t0
        log.info("back-flow %s: %d page(s), %d record(s): %d new, %d replaced, %d ignored, "
                 "%d batch(es), %d case status(es) moved in %.1fs", self.source, report.pages,
                 report.records, report.kept, report.replaced, report.ignored, report.batches,
                 report.statuses, report.seconds)
        return report


__all__ = ["PullReport", "Puller", "endpoint", "source_settings"]
