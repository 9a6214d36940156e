"""What a process costs, read from ``/proc`` (Linux): resident memory and CPU time.

The benchmarks run the gateway, the simulators, the database and the load generator on the same
cores, so a rate alone does not say who was busy: :class:`CpuMeter` takes the CPU seconds of
each process at the start and the end of a phase and gives each one's share of the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (``VmRSS`` of ``/proc/<pid>/status``), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid} (a zombie?)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` used so far (``/proc/<pid>/stat`` utime + stime);
    0.0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
    return (int(fields[11]) + int(fields[12])) / _TICKS


def pids_named(name: str) -> list[int]:
    """Processes whose command name (``/proc/<pid>/comm``) is ``name``, e.g. ``postgres``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    out.append(int(d.name))
            except OSError:
                continue
    return out


@dataclass
class CpuMeter:
    """CPU seconds of named groups of processes over one phase; :meth:`shares` in % of the
    machine (all cores = 100 %). A group given by command name (``postgres``) is looked up again
    at the end, so backends started during the phase count (from zero)."""

    groups: dict[str, list[int]]
    by_name: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        import time
        self._t0 = time.monotonic()
        self._start = {pid: cpu_seconds(pid) for pids in self._all().values() for pid in pids}

    def _all(self) -> dict[str, list[int]]:
        return {**self.groups, **{n: pids_named(n) for n in self.by_name}}

    def shares(self) -> dict[str, float]:
        import time
        wall = time.monotonic() - self._t0
        out = {}
        for group, pids in self._all().items():
            used = sum(cpu_seconds(p) - self._start.get(p, 0.0) for p in pids)
            out[group] = 100 * used / wall / (os.cpu_count() or 1)
        return out
