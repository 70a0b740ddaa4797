"""Input validation shared by the public modules.

Every check raises an error that names the offending argument, the value seen and
what would be valid, so that user mistakes never surface as a traceback from deep
inside NumPy.
"""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _show(value: Any) -> str:
    """Short representation of a value for an error message (sites by name and tag)."""
    from .lattice import _described

    text = _described(value)
    return text if len(text) <= 80 else text[:77] + "..."


def real_array(value: ArrayLike, name: str, *, finite: bool = True) -> NDArray[np.float64]:
    """Return `value` as a float array, rejecting complex, non-numeric and (optionally) NaN/inf."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested sequences and the like
        raise TypeError(
            f"{name} must be a real number or array of real numbers, got {_show(value)}"
        ) from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"{name} must be a real number or array of real numbers, got {_show(value)}"
        )
    if np.iscomplexobj(arr):
        if np.any(arr.imag != 0):
            raise TypeError(f"{name} must be real, got complex values {_show(value)}")
        arr = arr.real
    arr = arr.astype(float, copy=False)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {_show(value)} (contains NaN or inf)")
    return arr


def temperature(
    value: ArrayLike, name: str = "kT", *, nonzero_because: str = ""
) -> NDArray[np.float64]:
    """Validate a thermal energy kT >= 0 (array or scalar).

    With `nonzero_because` (the reason, for the message) kT = 0 is refused too.
    """
    arr = real_array(value, name)
    if np.any(arr < 0):
        bad = float(arr[arr < 0].flat[0])
        raise ValueError(f"{name} must be >= 0 (a thermal energy k_B T), got {bad!r}")
    if nonzero_because and np.any(arr == 0):
        raise ValueError(f"{name} must be > 0 {nonzero_because}, got 0.0")
    return arr


def positive(value: ArrayLike, name: str, *, allow_zero: bool = False) -> NDArray[np.float64]:
    """Validate a strictly positive (or non-negative) real quantity."""
    arr = real_array(value, name)
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        first = float(arr[bad].flat[0])
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {need}, got {first!r}")
    return arr


def square_matrix(value: ArrayLike, name: str, *, batched: bool = True) -> NDArray[np.float64]:
    """Validate a real (..., N, N) matrix."""
    arr = real_array(value, name)
    if arr.ndim < 2 or (not batched and arr.ndim != 2):
        want = "(N, N) or (..., N, N)" if batched else "(N, N)"
        raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}")
    if arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be square in its last two axes, got shape {arr.shape}")
    return arr


def spin_degeneracy(value: Any, name: str = "spin_degeneracy") -> int:
    """The package's one rule for a spin degeneracy: 1 or 2.

    1 for spin-resolved channels (spinless models, or spin written as explicit orbitals),
    2 for spin-degenerate channels of a model written without spin. Integers and floats
    equal to them (``2.0``, as read from a file) are accepted; anything else is refused.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        valid = False
    else:
        valid = float(value) in (1.0, 2.0)
    if not valid:
        raise ValueError(
            f"{name} must be 1 (spin-resolved channels: spinless, or spin as explicit "
            f"orbitals) or 2 (spin-degenerate channels), got {_show(value)}"
        )
    return int(value)


def lead_pair(leads: Any, n_leads: int, order: str, same: str) -> tuple[int, int]:
    """Two different lead indices of a system with `n_leads` leads.

    `order` names the pair in messages, e.g. ``"(to_lead, from_lead)"``; `same` ends the
    message for two equal leads (what to use instead).
    """
    try:
        first, second = leads
    except (TypeError, ValueError):
        raise TypeError(
            f"leads must be a pair {order} of lead indices, got {_show(leads)}"
        ) from None
    pair = []
    for lead in (first, second):
        if isinstance(lead, bool) or not isinstance(lead, numbers.Integral):
            raise TypeError(f"leads must hold lead indices (int), got {_show(leads)}")
        if not 0 <= int(lead) < n_leads:
            raise ValueError(f"lead {lead} does not exist; this system has leads 0..{n_leads - 1}")
        pair.append(int(lead))
    if pair[0] == pair[1]:
        raise ValueError(f"leads must be two different leads {order}, got {tuple(pair)}; {same}")
    return pair[0], pair[1]


def positive_int(value: Any, name: str, *, minimum: int = 1, also: str = "") -> int:
    """Validate an integer ``>= minimum`` (bools and non-integral numbers are refused).

    `also` extends the description of what is valid in the message (e.g. ``" or None"``
    where the caller accepts None itself).
    """
    valid = {1: "a positive integer", 0: "a non-negative integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {valid}{also}, got {_show(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {valid}{also}, got {value!r}")
    return int(value)


def real_energy(value: Any, name: str = "energy") -> float:
    """Validate one real, finite energy (a number or a 0-d array; complex only if real)."""
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real number, got {_show(value)}")
    try:
        number = complex(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {_show(value)}") from exc
    if number.imag != 0:
        raise ValueError(f"{name} must be real, got {_show(value)}")
    if not np.isfinite(number.real):
        raise ValueError(f"{name} must be finite, got {_show(value)}")
    return float(number.real)


def finalized_system(value: Any, what: str, *, min_leads: int = 0, lead: bool = False) -> Any:
    """Validate a finalized finite system (:class:`mesoscopic.System`) with enough leads.

    With ``lead=True`` a finalized lead (:class:`mesoscopic.InfiniteSystem`) is accepted
    too. `what` names the function that needs it, for the message. Returns `value`.
    """
    from .system import InfiniteSystem, System

    if lead and isinstance(value, InfiniteSystem):
        return value
    if not isinstance(value, System):
        hint = (
            "; call .finalized() on the Builder first"
            if hasattr(value, "finalized")
            else " (Builder.finalized())"
        )
        raise TypeError(f"{what} needs a finalized system{hint}, got {type(value).__name__}")
    if len(value.leads) < min_leads:
        needed = "one lead" if min_leads == 1 else f"{min_leads} leads"
        raise ValueError(
            f"{what} needs a system with at least {needed}, this one has {len(value.leads)}; "
            "attach leads before finalizing"
        )
    return value


def index(value: Any, size: int, what: str) -> int:
    """Validate an integer index into range(size); negative indices are not accepted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {_show(value)}")
    if not 0 <= int(value) < size:
        raise ValueError(f"{what} {value} does not exist; valid values are 0..{size - 1}")
    return int(value)


#: Fraction of the available memory (``MemAvailable`` of /proc/meminfo) that one dense
#: allocation may take before :func:`memory` refuses it; the rest stays for the copies and
#: workspaces that follow and for the machine's other work.
MEMORY_FRACTION = 0.8


def available_memory() -> int | None:
    """Physical memory available to new allocations, in bytes, or None when unknown.

    Reads ``MemAvailable`` from /proc/meminfo (free memory plus reclaimable caches),
    else the free pages from ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(nbytes: float) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1, e.g. ``'14.9 TiB'``."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def memory(nbytes: float, what: str, *, alternative: str = "") -> None:
    """Refuse an allocation of `nbytes` that would not fit in memory, before it happens.

    Raises MemoryError when `nbytes` exceeds ``MEMORY_FRACTION`` of
    :func:`available_memory`, naming `what` is being allocated, the bytes needed and
    available, and `alternative` (a sentence saying what to do instead). Does nothing
    when the available memory is unknown.
    """
    available = available_memory()
    if available is None or nbytes <= MEMORY_FRACTION * available:
        return
    text = (
        f"{what} needs {format_bytes(nbytes)}, more than {MEMORY_FRACTION:.0%} of the "
        f"{format_bytes(available)} of memory available"
    )
    raise MemoryError(f"{text}; {alternative}" if alternative else text)


def user_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that points at the first caller outside
    this package, so a warning names the user's line however deep it was raised."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def energy_grid(
    value: ArrayLike, name: str = "energies", *, min_points: int = 1, reason: str = ""
) -> NDArray[np.float64]:
    """Validate a strictly increasing 1-D grid of real, finite energies.

    `reason` ends the message for too few points (e.g. ``" for interpolation='cubic'"``).
    The message for a grid that is not increasing names the first offending pair.
    """
    grid = real_array(value, name)
    if grid.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {grid.shape}")
    if grid.size < min_points:
        raise ValueError(f"{name} must have at least {min_points} points{reason}, got {grid.size}")
    steps = np.diff(grid)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0))
        raise ValueError(
            f"{name} must be strictly increasing, got {name}[{bad}] = {float(grid[bad])!r} "
            f"followed by {name}[{bad + 1}] = {float(grid[bad + 1])!r}"
        )
    return grid


def real_vector(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """Validate a real, finite number or 1-D array; returns a 1-D array (a number: length 1)."""
    values = real_array(value, name)
    if values.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D array, got shape {values.shape}")
    return np.atleast_1d(values)
