"""Fused Chebyshev kernels of `mesoscopic.kpm`, compiled by numba (``mesoscopic[fast]``).

One Chebyshev step of a block of k vectors is ``c_(n+1) = c_(n-1) + M c_n`` (``M = +-2 H``,
see `mesoscopic.kpm._Chebyshev`). SciPy's sparse-times-dense kernel does the product in
one pass over the rows, and the overlaps the density of states needs take two more passes
over the ``(n, k)`` blocks: for a large system each pass streams the blocks from memory.
Here the step and its overlaps are one pass: each row of ``c_(n+1)`` is made while the
rows of ``c_n`` it needs are in cache, and its overlaps are summed at once.

Two steps share one pass too. Row r of ``c_(n+2) = c_n + M' c_(n+1)`` needs the rows of
``c_(n+1)`` up to ``r + lag`` (``lag``: the largest ``|i - j|`` of a stored entry
``M_ij``), so the second step follows the first ``lag`` rows behind it, writing
``c_(n+2)`` over ``c_n`` where the first step no longer reads it. For a lattice numbered
row by row, ``lag`` is a row of the lattice: the rows between the two steps stay in cache
and the blocks cross the memory bus once per two steps. Any ``lag`` gives the same
numbers (a large one only loses the cache reuse).

Each row of ``c_(n+1)`` starts from the row of ``c_(n-1)`` and adds the products of the
row's entries in their stored order, as SciPy's kernel does: the Chebyshev vectors are the
same numbers either way. The overlaps are summed row after row for each column, so a
vector's moments do not depend on the other vectors of its block.

For the Kubo-Bastin correlator, `chebyshev_series` fills a block's whole series
``T_m(H) V`` in one call and `series_products` applies a sparse operator to every order,
both without the interpreter lock (blocks of vectors run side by side in threads), with the
numbers of SciPy's kernel step by step.

`mesoscopic.kpm` imports this module (and numba) only when a calculation runs, so
``import mesoscopic`` stays fast, and uses SciPy's kernel when numba is missing.
``cache=True`` keeps the compiled code on disk: the compilation (seconds) happens once per
installation, not once per process.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "chebyshev_series",
    "chebyshev_steps_with_overlaps",
    "column_overlaps",
    "lag",
    "series_products",
]


def lag(indptr: np.ndarray, indices: np.ndarray) -> int:
    """``max |i - j|`` over the stored entries ``(i, j)`` of a CSR matrix (0 if none)."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return int(np.max(np.abs(indices - rows))) if len(rows) else 0


@numba.njit(cache=True, fastmath=False, nogil=True)
def chebyshev_steps_with_overlaps(
    indptr: np.ndarray,
    indices: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    steps: int,
    lag: int,
    current: np.ndarray,
    previous: np.ndarray,
    overlaps: np.ndarray,
    rows: np.ndarray,
) -> None:  # pragma: no cover - compiled; checked against the SciPy path
    """One or two Chebyshev steps in one pass, with the overlaps of the density of states.

    ``rows = (a, b, c, d)``: step one makes rows ``a..b-1``, step two rows ``c..d-1`` (all
    rows: ``(0, n, 0, n)``). Threads that share a pass take consecutive row ranges, each
    with its step-two rows ``lag`` rows inside its internal edges, so that no thread reads a
    row another writes; the step-two rows around each edge follow once all have finished.

    Step one: ``previous += M1 @ current`` (``c_(n+1)`` over ``c_(n-1)``), M1 with the
    entries `first`; with ``steps == 2``, step two: ``current += M2 @ previous``
    (``c_(n+2)`` over ``c_n``), M2 with the entries `second` and the same pattern,
    `lag` rows behind step one (`lag` at least ``max |i - j|`` of the pattern).

    All arrays are float64: M real, the blocks C-ordered ``(n, w)`` real views of the
    complex vectors (``w = 2 k``). Adds to ``overlaps`` (shape ``(2 steps, w)``) the
    products ``x . y`` of each column, summed over the rows in order, for ``(x, y)`` =
    ``(c_n, c_n)``, ``(c_(n+1), c_n)`` and, for two steps, ``(c_(n+1), c_(n+1))``,
    ``(c_(n+2), c_(n+1))``; a vector's real overlap is the sum of its two columns.
    """
    n_rows, width = current.shape
    squares = np.zeros(width)
    products = np.zeros(width)
    next_squares = np.zeros(width)
    next_products = np.zeros(width)
    first_row, last_row = max(rows[0], 0), min(rows[1], n_rows)
    second_row, second_last = max(rows[2], 0), min(rows[3], n_rows)
    delay = lag if steps == 2 else 0
    start = min(first_row, second_row + delay) if steps == 2 else first_row
    stop = max(last_row, second_last + delay) if steps == 2 else last_row
    for sweep in range(start, stop):
        if first_row <= sweep < last_row:
            i = sweep
            for p in range(indptr[i], indptr[i + 1]):
                value = first[p]
                column = indices[p]
                for j in range(width):
                    previous[i, j] += value * current[column, j]
            for j in range(width):
                squares[j] += current[i, j] * current[i, j]
            for j in range(width):
                products[j] += previous[i, j] * current[i, j]
        i = sweep - delay
        if steps == 2 and second_row <= i < second_last:
            for p in range(indptr[i], indptr[i + 1]):
                value = second[p]
                column = indices[p]
                for j in range(width):
                    current[i, j] += value * previous[column, j]
            for j in range(width):
                next_squares[j] += previous[i, j] * previous[i, j]
            for j in range(width):
                next_products[j] += current[i, j] * previous[i, j]
    for j in range(width):
        overlaps[0, j] += squares[j]
        overlaps[1, j] += products[j]
        if steps == 2:
            overlaps[2, j] += next_squares[j]
            overlaps[3, j] += next_products[j]


@numba.njit(cache=True, fastmath=False, nogil=True)
def column_overlaps(
    bra: np.ndarray, ket: np.ndarray, overlaps: np.ndarray
) -> None:  # pragma: no cover - compiled; checked against the SciPy path
    """Adds ``bra[i, j] * ket[i, j]`` over the rows i, in order, to ``overlaps[j]`` (float64).

    The sums of `chebyshev_steps_with_overlaps`, for a moment without a step.
    """
    n_rows, width = bra.shape
    sums = np.zeros(width)
    for i in range(n_rows):
        for j in range(width):
            sums[j] += bra[i, j] * ket[i, j]
    for j in range(width):
        overlaps[j] += sums[j]


@numba.njit(cache=True, fastmath=False, nogil=True, inline="always")
def _row_sum(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    block: np.ndarray,
    row: int,
    column: int,
    total: complex,
) -> complex:  # pragma: no cover - compiled
    """``total`` plus the products of a CSR row with a column of `block`, in stored order."""
    for p in range(indptr[row], indptr[row + 1]):
        total += data[p] * block[indices[p], column]
    return total


@numba.njit(cache=True, fastmath=False, nogil=True)
def chebyshev_series(
    indptr: np.ndarray, indices: np.ndarray, doubled: np.ndarray, series: np.ndarray
) -> None:  # pragma: no cover - compiled; checked against the SciPy path
    """Fills ``series[1:]`` with ``T_m(H) V`` for the start block ``series[0] = V``.

    ``doubled`` holds the entries of ``2 H`` (pattern `indptr`, `indices`, unsigned);
    ``series`` is ``(M, n, w)``: complex blocks, or for a real H the real views of the
    complex blocks. Order one is ``(2 H V) / 2``, order m + 1 is ``-T_(m-1) + 2 H T_m``
    with the products of each row added in their stored order: the numbers of SciPy's
    kernel in `mesoscopic.kpm._Chebyshev` (which keeps the blocks with signs; negation is
    exact). Each entry is summed in a register, column by column.
    """
    count, n_rows, width = series.shape
    if count < 2:
        return
    zero = np.zeros(1, dtype=series.dtype)[0]
    start, first = series[0], series[1]
    for i in range(n_rows):
        for j in range(width):
            first[i, j] = _row_sum(indptr, indices, doubled, start, i, j, zero) * 0.5
    for m in range(1, count - 1):
        before, current, after = series[m - 1], series[m], series[m + 1]
        for i in range(n_rows):
            for j in range(width):
                after[i, j] = _row_sum(indptr, indices, doubled, current, i, j, -before[i, j])


@numba.njit(cache=True, fastmath=False, nogil=True)
def series_products(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, series: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled; checked against the SciPy path
    """``out[m] = A @ series[m]`` for every order m (A in CSR, indices unsigned; the
    products of each row added in their stored order, as SciPy's kernel does)."""
    count, n_rows, width = series.shape
    zero = np.zeros(1, dtype=out.dtype)[0]
    for m in range(count):
        block, target = series[m], out[m]
        for i in range(n_rows):
            for j in range(width):
                target[i, j] = _row_sum(indptr, indices, data, block, i, j, zero)
