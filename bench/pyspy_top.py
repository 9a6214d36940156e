"""The top of a py-spy profile: where a process spent its samples, as a short table.

``py-spy record --format raw`` (what ``bench_wire.py --profile`` writes) gives one line per
distinct stack, ``frame;frame;… count``. This prints, for the busy samples only (a thread
waiting in ``select``/``epoll`` or on a lock is idle, not cost), the share of samples that were
*in* each function (inclusive: anywhere on the stack) and *at* it (self: the innermost frame), so
the table answers "what would a change here save".

    .venv/bin/python bench/pyspy_top.py /tmp/prof/intake0-1234.txt            # top 30
    .venv/bin/python bench/pyspy_top.py /tmp/prof/intake0-1234.txt --match gateway/ --top 40
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

#: innermost frames that mean "waiting", not working
IDLE = re.compile(r"^(select|poll|epoll_wait|_worker|wait|acquire|_wait_for_tstate_lock|"
                  r"run_forever|_run_once|_connection_worker_thread|get)\b|\(selectors\.py|"
                  r"\(threading\.py:\d+\)$|\(queue\.py:\d+\)$")


def frame_name(frame: str) -> str:
    """``fn (path/to/module.py:123)`` → ``fn (module.py)``: lines merged per function."""
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    fn, path = m.groups()
    parts = path.split("/")
    short = "/".join(parts[-2:]) if "gateway" in parts or "aiohttp" in parts else parts[-1]
    return f"{fn} ({short})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--match", default="", help="only functions whose name contains this")
    ap.add_argument("--skip", default="create_app,_find_and_load",
                    help="leave out stacks with a frame containing any of these (comma-separated;"
                         " by default start-up: building the app, imports)")
    a = ap.parse_args()
    incl: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    skip = [s for s in a.skip.split(",") if s]
    for line in a.profile.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames or any(s in f for s in skip for f in frames):
            continue
        count = int(n)
        if IDLE.search(frames[-1]):
            idle += count
            continue
        busy += count
        own[frame_name(frames[-1])] += count
        for name in {frame_name(f) for f in frames}:
            incl[name] += count
    print(f"samples: {busy} busy, {idle} idle (a thread waiting); shares are of busy samples")
    print(f"{'inclusive':>9} {'self':>6}  function")
    shown = 0
    for name, count in incl.most_common():
        if a.match not in name:
            continue
        print(f"{100 * count / busy:8.1f}% {100 * own[name] / busy:5.1f}%  {name}")
        shown += 1
        if shown >= a.top:
            break


if __name__ == "__main__":
    main()
