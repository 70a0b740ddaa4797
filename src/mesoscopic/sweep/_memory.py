"""Memory estimates: a sweep whose results would not fit is refused before it computes."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Sequence

# Per observable call: its flag, its index and the index's copies in the chunk lists.
_BOOKKEEPING_BYTES_PER_CALL = 24


def check_memory(
    n_points: int, n_calls: int, bytes_per_point: int | None, *, grid: Sequence[int] = ()
) -> None:
    """Refuse a sweep whose results would not fit in the memory available now.

    The results are held twice while they are assembled (the chunks and the dataset).
    Without `bytes_per_point` (before the first result), one byte per point is the
    lower bound used.
    """
    available = _available_memory()
    if available is None:
        return
    per_point = 1 if bytes_per_point is None else max(int(bytes_per_point), 1)
    needed = 2 * n_points * per_point + n_calls * _BOOKKEEPING_BYTES_PER_CALL
    if needed <= available:
        return
    shape = " x ".join(map(str, grid))
    if bytes_per_point is None:
        size = (
            f"at least {_format_bytes(needed)} (one byte per point, held twice while assembling)"
        )
    else:
        size = f"about {_format_bytes(needed)} (held twice while assembling)"
    raise ValueError(
        f"the sweep has {n_points} points"
        + (f" ({shape} grid values)" if len(grid) > 1 else "")
        + (f" of {per_point} bytes each" if bytes_per_point is not None else "")
        + f" and its results would need {size} of memory, more than the "
        f"{_format_bytes(available)} available; sweep fewer points, or split the grid "
        "into several sweeps"
    )


def _available_memory() -> int | None:
    """Bytes of memory available to this process now, or None when unknown."""
    available = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # the total where "free" is unknown
        if available is None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                available = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
    # A container's own limit (cgroup v2) may be lower than the machine's memory.
    with contextlib.suppress(OSError, ValueError):
        limit = pathlib.Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = pathlib.Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            left = max(int(limit) - int(used), 0)
            available = left if available is None else min(available, left)
    return available


def _format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
