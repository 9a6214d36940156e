"""What a process costs, read from ``/proc`` (Linux): resident memory and CPU time.

The benchmarks run the gateway, the simulators, the database and the load generator on the same
cores, so a rate alone does not say who was busy: :class:`CpuMeter` takes the CPU seconds of
each process at the start and the end of a phase and gives each one's share of the machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
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


def pids_matching(match: Callable[[str], bool]) -> list[int]:
    """Processes whose command line (``/proc/<pid>/cmdline``, arguments joined by spaces)
    satisfies ``match``; e.g. the PostgreSQL backends of one database, whose command line is
    ``postgres: 15/main: USER DATABASE HOST(PORT) STATE``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match(cmdline):
                out.append(int(d.name))
    return out


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot (``/proc/stat``, first line); idle and
    iowait count as not busy."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - fields[3] - fields[4], total


@dataclass
class CpuMeter:
    """CPU seconds of groups of processes over one phase; :meth:`shares` in % of the machine
    (all cores = 100 %). A group given by a command-line test (``matching``) is looked up again
    at the end, so processes started during the phase count (from zero)."""

    groups: dict[str, list[int]]
    matching: dict[str, Callable[[str], bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import time
        self._t0 = time.monotonic()
        self._start = {pid: cpu_seconds(pid) for pids in self._all().values() for pid in pids}
        self._machine = machine_jiffies()

    def _all(self) -> dict[str, list[int]]:
        return {**self.groups, **{g: pids_matching(m) for g, m in self.matching.items()}}

    def shares(self) -> dict[str, float]:
        import time
        wall = time.monotonic() - self._t0
        out = {}
        for group, pids in self._all().items():
            used = sum(cpu_seconds(p) - self._start.get(p, 0.0) for p in pids)
            out[group] = 100 * used / wall / (os.cpu_count() or 1)
        return out

    def machine_busy(self) -> float:
        """Share of the machine busy since the start (every process, ours or not), %."""
        busy, total = machine_jiffies()
        return 100 * (busy - self._machine[0]) / max(1, total - self._machine[1])
