"""The RGF slice recursion compiled by numba (``mesoscopic[fast]``).

:func:`sweep` runs the same recursion as `mesoscopic.solvers.rgf._sweep` (see there for
the algebra) for a range of batch entries, one entry after the other, without returning to
the interpreter between slices. A slice's step is a few small matrix operations: in NumPy
each costs microseconds of call overhead, which for slices of a few dozen orbitals is as
much as the arithmetic. Here a slice matrix is inverted by a compiled Gauss-Jordan
elimination with partial pivoting (:func:`_gauss_jordan`: on real and imaginary planes,
two columns per pass; 1.8x faster than LAPACK's ``zgetrf`` + ``zgetri`` at 40 orbitals,
1.7x at 100, 1.1x at 512), a larger one by those LAPACK routines (SciPy's Cython LAPACK,
passed in as function pointers so that the compiled code can be kept on disk); the
products are BLAS's (through numba's ``np.dot``), and the rest is loops over entries. The
kernel releases the interpreter lock, so threads run entries side by side.

All inputs are flat arrays with offsets (see :func:`sweep`), so one compiled function
serves every system; ``cache=True`` keeps it on disk. Compiling takes numba about 15 s,
once per installation: so that no call waits for it, :func:`build_in_background` compiles
it in a separate process (``python -m mesoscopic.solvers._rgf_kernel``) while the solvers
use the NumPy recursion, which gives the same numbers up to rounding; the calls after it load the
compiled code from disk (:func:`ready`). `mesoscopic.solvers.rgf` imports this module only
when a sweep runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numba
import numpy as np

from .._cython_lapack import lapack_function

__all__ = ["KINDS", "LAPACK", "build_in_background", "ready", "sweep"]

#: Codes of the coupling kinds in :func:`sweep`'s ``kind`` array.
KINDS = {"zero": 0, "scalar": 1, "diagonal": 2, "dense": 3, "sparse": 4}

#: ``(zgetrf, zgetri)``: LAPACK's complex LU factorization and inverse from the LU.
LAPACK = (lapack_function("zgetrf", 6), lapack_function("zgetri", 7))

#: Largest slice inverted by :func:`_gauss_jordan`; larger ones by LAPACK's blocked LU and
#: inverse, which keep their working set in cache (measured with two threads side by side:
#: Gauss-Jordan 12% faster at 512 orbitals, 8% at 640, 12% slower at 768).
GAUSS_JORDAN_LARGEST = 512


@numba.njit(cache=True, nogil=True)
def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (BLAS), also for empty operands."""
    if a.shape[0] == 0 or a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros((a.shape[0], b.shape[1]), dtype=np.complex128)
    return np.dot(a, b)


@numba.njit(cache=True, nogil=True)
def _invert(a, ipiv, work, ints, getrf, getri):
    """Invert the C-ordered square ``a`` in place; returns LAPACK's ``info`` (0: done).

    A C-ordered matrix is the Fortran-ordered storage of its transpose and
    ``inv(A^T)^T = inv(A)``, so LAPACK works on it in place.
    """
    n = a.shape[0]
    ints[0] = n
    ints[1] = work.size
    ints[2] = 0
    getrf(ints.ctypes, ints.ctypes, a.ctypes, ints.ctypes, ipiv.ctypes, ints[2:].ctypes)
    if ints[2] != 0:
        return ints[2]
    getri(
        ints.ctypes,
        a.ctypes,
        ints.ctypes,
        ipiv.ctypes,
        work.ctypes,
        ints[1:].ctypes,
        ints[2:].ctypes,
    )
    return ints[2]


@numba.njit(cache=True, nogil=True, inline="always")
def _modulus(z: complex) -> float:
    """``|z|`` without hypot's care for overflow (entries are far below 1e154 here)."""
    return math.sqrt(z.real * z.real + z.imag * z.imag)


@numba.njit(cache=True, nogil=True, inline="always")
def _larger(norm: float, total: float) -> float:
    """``max(norm, total)`` for the row sums of a norm, infinite where ``total`` is NaN
    (``max`` alone would drop it): a matrix with a NaN entry has an infinite norm."""
    return max(norm, total) if total == total else math.inf


@numba.njit(cache=True, nogil=True)
def _inf_norm(a: np.ndarray, exact: bool) -> float:
    """``max_i sum_j |a_ij|``; not ``exact``: with ``|re| + |im|`` (at most sqrt(2) more).
    Infinite where an entry is not finite."""
    norm = 0.0
    for i in range(a.shape[0]):
        total = 0.0
        if exact:
            for j in range(a.shape[1]):
                total += _modulus(a[i, j])
        else:
            for j in range(a.shape[1]):
                total += abs(a[i, j].real) + abs(a[i, j].imag)
        norm = _larger(norm, total)
    return norm


@numba.njit(cache=True, nogil=True)
def _copy_bound(a: np.ndarray, out: np.ndarray) -> float:
    """Copy ``a`` into ``out``; returns the bound on ``||a||_inf`` from ``|re| + |im|``."""
    norm = 0.0
    for i in range(a.shape[0]):
        total = 0.0
        for j in range(a.shape[1]):
            z = a[i, j]
            out[i, j] = z
            total += abs(z.real) + abs(z.imag)
        norm = _larger(norm, total)
    return norm


#: Row length of the planes :func:`_gauss_jordan` works on: a multiple of this many
#: numbers, so that the row loops run in whole vector registers.
_LANES = 8


@numba.njit(cache=True, nogil=True)
def _padded(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`_LANES`."""
    return (n + _LANES - 1) // _LANES * _LANES


@numba.njit(cache=True, nogil=True)
def _split_bound(a: np.ndarray, re: np.ndarray, im: np.ndarray) -> float:
    """Copy ``a`` (n x n) into the real and imaginary planes ``re``, ``im`` (n x w, w >= n;
    the columns beyond n set to zero); returns the bound on ``||a||_inf`` from
    ``|re| + |im|``."""
    n = a.shape[0]
    w = re.shape[1]
    norm = 0.0
    for i in range(n):
        total = 0.0
        for j in range(n):
            z = a[i, j]
            re[i, j] = z.real
            im[i, j] = z.imag
            total += abs(z.real) + abs(z.imag)
        for j in range(n, w):
            re[i, j] = 0.0
            im[i, j] = 0.0
        norm = _larger(norm, total)
    return norm


@numba.njit(cache=True, nogil=True, inline="always")
def _pivot_row(re, im, p, k, out_re, out_im):
    """Row ``p`` divided by its entry in column ``k``, that entry replaced by the
    reciprocal (the in-place Gauss-Jordan step's pivot row), into ``out_re``, ``out_im``."""
    a = re[p, k]
    b = im[p, k]
    # 1 / (a + ib) without forming a^2 + b^2, which leaves the floating-point range for
    # pivots beyond 1e+-154 (Smith's division).
    if abs(a) >= abs(b):
        ratio = b / a
        scale = a + b * ratio
        inv_re = 1.0 / scale
        inv_im = -ratio / scale
    else:
        ratio = a / b
        scale = a * ratio + b
        inv_re = ratio / scale
        inv_im = -1.0 / scale
    re[p, k] = 1.0
    im[p, k] = 0.0
    for j in range(re.shape[1]):
        x = re[p, j]
        y = im[p, j]
        out_re[j] = x * inv_re - y * inv_im
        out_im[j] = x * inv_im + y * inv_re


@numba.njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _eliminate_one(re, im, i, k, r_re, r_im):
    """Row ``i`` minus its column-``k`` entry times the pivot row ``r`` (that entry first
    set to zero, so that column ``k`` receives ``-a_ik r_k``)."""
    c_re = re[i, k]
    c_im = im[i, k]
    re[i, k] = 0.0
    im[i, k] = 0.0
    for j in range(re.shape[1]):
        re[i, j] -= c_re * r_re[j] - c_im * r_im[j]
        im[i, j] -= c_re * r_im[j] + c_im * r_re[j]


@numba.njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _eliminate_two(re, im, i, k, r_re, r_im, s_re, s_im):
    """Row ``i`` minus ``a_ik r + a_i,k+1 s`` for the pivot rows ``r``, ``s`` of columns
    ``k`` and ``k + 1`` (both entries first set to zero): two elimination steps in one
    pass over the row."""
    c_re = re[i, k]
    c_im = im[i, k]
    f_re = re[i, k + 1]
    f_im = im[i, k + 1]
    re[i, k] = 0.0
    im[i, k] = 0.0
    re[i, k + 1] = 0.0
    im[i, k + 1] = 0.0
    for j in range(re.shape[1]):
        x = r_re[j]
        y = r_im[j]
        u = s_re[j]
        v = s_im[j]
        re[i, j] -= c_re * x - c_im * y + f_re * u - f_im * v
        im[i, j] -= c_re * y + c_im * x + f_re * v + f_im * u


@numba.njit(cache=True, nogil=True, inline="always")
def _largest_unused(re, im, used, k, t_re, t_im, after_step):
    """The unused row of largest ``|re| + |im|`` in column ``k`` and that size (-1 where
    no size is a number); ``after_step``: column ``k`` as the elimination step of column
    ``k - 1`` with the pivot row's entry ``t`` in column ``k`` leaves it."""
    p = -1
    best = -1.0
    for i in range(re.shape[0]):
        if not used[i]:
            x = re[i, k]
            y = im[i, k]
            if after_step:
                x -= re[i, k - 1] * t_re - im[i, k - 1] * t_im
                y -= re[i, k - 1] * t_im + im[i, k - 1] * t_re
            size = abs(x) + abs(y)
            if size > best:
                best = size
                p = i
    return p, best


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _gauss_jordan(re, im, pivots, used, r_re, r_im, s_re, s_im):
    """Invert the matrix held in the planes ``re``, ``im`` (n x w, zero beyond column n)
    in place by Gauss-Jordan elimination with partial pivoting; returns 0, or ``k + 1``
    where column ``k`` has no nonzero pivot left (singular).

    The pivot of column ``k`` is the unused row of largest ``|re| + |im|`` in that column
    (partial pivoting, sizes measured as LAPACK's ``zgetrf`` does); rows are not
    exchanged: ``pivots[k]`` records the row, and the inverse is ``inv[k, pivots[j]] =
    plane[pivots[k], j]`` (see :func:`_gather_bound`).

    Columns are eliminated two at a time: the pivot of column ``k + 1`` is chosen from
    that column as the step of column ``k`` leaves it, the two pivot rows are made final,
    and every other row takes both steps in one pass (``row - a_ik r' - a_i,k+1 s`` with
    its original entries, ``r'`` the first pivot row after the second step), which halves
    the passes over the matrix. The numbers are those of one column at a time, up to
    rounding. ``8 n^3`` flops, as LU and inverse, at the rate of the row updates
    (vectorized over the padded rows) instead of LAPACK's rate on small matrices.
    """
    n = re.shape[0]
    w = re.shape[1]
    for i in range(n):
        used[i] = False
    k = 0
    while k < n:
        p, best = _largest_unused(re, im, used, k, 0.0, 0.0, False)
        if not best > 0.0:
            return k + 1
        used[p] = True
        pivots[k] = p
        _pivot_row(re, im, p, k, r_re, r_im)
        if k + 1 == n:
            for j in range(w):
                re[p, j] = r_re[j]
                im[p, j] = r_im[j]
            for i in range(n):
                if i != p:
                    _eliminate_one(re, im, i, k, r_re, r_im)
            return 0
        # Column k + 1 as the step of column k leaves it, on the unused rows.
        t_re = r_re[k + 1]
        t_im = r_im[k + 1]
        q, best = _largest_unused(re, im, used, k + 1, t_re, t_im, True)
        if not best > 0.0:
            return k + 2
        used[q] = True
        pivots[k + 1] = q
        _eliminate_one(re, im, q, k, r_re, r_im)
        _pivot_row(re, im, q, k + 1, s_re, s_im)
        # The first pivot row after the step of column k + 1.
        r_re[k + 1] = 0.0
        r_im[k + 1] = 0.0
        for j in range(w):
            r_re[j] -= t_re * s_re[j] - t_im * s_im[j]
            r_im[j] -= t_re * s_im[j] + t_im * s_re[j]
        for j in range(w):
            re[p, j] = r_re[j]
            im[p, j] = r_im[j]
            re[q, j] = s_re[j]
            im[q, j] = s_im[j]
        for i in range(n):
            if i != p and i != q:
                _eliminate_two(re, im, i, k, r_re, r_im, s_re, s_im)
        k += 2
    return 0


@numba.njit(cache=True, nogil=True)
def _gather_bound(re, im, pivots, out) -> float:
    """The inverse from :func:`_gauss_jordan`'s planes into ``out`` (n x n, complex);
    returns the bound on its ``||.||_inf`` from ``|re| + |im|``."""
    n = out.shape[0]
    norm = 0.0
    for k in range(n):
        row = pivots[k]
        total = 0.0
        for j in range(n):
            x = re[row, j]
            y = im[row, j]
            out[k, pivots[j]] = complex(x, y)
            total += abs(x) + abs(y)
        norm = _larger(norm, total)
    return norm


@numba.njit(cache=True, nogil=True)
def _conditioned(a, bound, inverse, inverse_bound, limit) -> bool:
    """Whether ``||A||_inf ||A^-1||_inf`` or the row-equilibrated 1-norm condition number
    is below ``limit`` (NaN is not), as `mesoscopic.solvers.rgf._cpu_inverse` decides.

    A bound of the first from ``|re| + |im|`` (cheaper than moduli, at most twice the
    number; ``bound`` and ``inverse_bound`` are those of ``a`` and ``inverse``) settles
    almost every matrix; the exact numbers decide the others. A matrix or inverse with an
    entry that is not finite (infinite bound) is not conditioned.
    """
    if not (bound < math.inf and inverse_bound < math.inf):
        return False
    if bound * inverse_bound < limit:
        return True
    if _inf_norm(a, True) * _inf_norm(inverse, True) < limit:
        return True
    n = a.shape[0]
    rows = np.empty(n)
    for i in range(n):
        peak = 0.0
        for j in range(n):
            peak = max(peak, _modulus(a[i, j]))
        rows[i] = max(peak, 2.2250738585072014e-308)
    equilibrated = np.zeros(n)
    columns = np.zeros(n)
    for i in range(n):
        for j in range(n):
            equilibrated[j] += _modulus(a[i, j]) / rows[i]
            columns[j] += _modulus(inverse[i, j])
    condition = 0.0
    for j in range(n):
        condition = max(condition, columns[j] * rows[j])
    return condition * equilibrated.max() < limit


@numba.njit(cache=True, nogil=True)
def _workspace(largest: int, gauss_jordan_largest: int):
    """The buffers :func:`_inverse_into` takes for matrices of up to ``largest``
    orbitals."""
    small = min(largest, gauss_jordan_largest)
    wide = _padded(small)
    return (
        np.empty(small * wide),
        np.empty(small * wide),
        np.empty(small, dtype=np.int64),
        np.empty(small, dtype=np.bool_),
        np.empty((4, wide)),
        np.empty(largest, dtype=np.int32),
        np.empty(64 * largest, dtype=np.complex128),
        np.zeros(3, dtype=np.int32),
    )


@numba.njit(cache=True, nogil=True)
def _inverse_into(matrix, green, workspace, getrf, getri, limit, gauss_jordan_largest) -> bool:
    """Write the inverse of ``matrix`` (n x n, kept as it is) into ``green``; returns
    whether it can be used: not singular, finite, and conditioned below ``limit``
    (:func:`_conditioned`).

    ``workspace`` is ``(plane_re, plane_im, pivots, used, pivot_rows, ipiv, work, ints)``
    (:func:`_workspace`). Up to ``gauss_jordan_largest`` orbitals by :func:`_gauss_jordan`
    in the first five, larger matrices in place by LAPACK's ``getrf`` and ``getri`` with
    the last three (as :func:`_invert` takes them).
    """
    plane_re, plane_im, pivots, used, pivot_rows, ipiv, work, ints = workspace
    n = matrix.shape[0]
    if n <= gauss_jordan_largest:
        w = _padded(n)
        re = plane_re[: n * w].reshape((n, w))
        im = plane_im[: n * w].reshape((n, w))
        bound = _split_bound(matrix, re, im)
        r_re = pivot_rows[0, :w]
        r_im = pivot_rows[1, :w]
        s_re = pivot_rows[2, :w]
        s_im = pivot_rows[3, :w]
        if _gauss_jordan(re, im, pivots, used, r_re, r_im, s_re, s_im):
            return False
        inverse_bound = _gather_bound(re, im, pivots, green)
    else:
        bound = _copy_bound(matrix, green)
        if _invert(green, ipiv, work, ints, getrf, getri):
            return False
        inverse_bound = _inf_norm(green, False)
    return _conditioned(matrix, bound, green, inverse_bound, limit)


@numba.njit(cache=True, nogil=True)
def _couple_into(out, kind, g, data, vs, hs, ptr, idx, n):
    """``out = -V^dagger g V`` for the coupling ``V`` (n_prev, n).

    ``V`` is stored at ``data[vs:]`` and its conjugate transpose at ``data[hs:]`` (a
    scalar, a diagonal, or dense in C order); a sparse ``V``'s values are at ``vs`` plus
    their index's position in ``idx``, its row pointers ``ptr``. Kind 0 (no coupling)
    gives zeros.
    """
    if kind == 1:
        weight = -(data[vs] * data[hs]).real
        for i in range(n):
            for j in range(n):
                out[i, j] = weight * g[i, j]
    elif kind == 2:
        for i in range(n):
            left = -data[hs + i]
            for j in range(n):
                out[i, j] = left * g[i, j] * data[vs + j]
    elif kind in (3, 4):
        out[:, :] = -_vdag_times(
            kind, _times_v(kind, g, data, vs, ptr, idx, n), data, vs, hs, ptr, idx, n
        )
    else:
        out[:, :] = 0


@numba.njit(cache=True, nogil=True)
def _vdag_times(kind, x, data, vs, hs, ptr, idx, n):
    """``V^dagger x`` for x of shape (n_prev, w) -> (n, w) (storage as in :func:`_couple_into`)."""
    n_prev, w = x.shape
    out = np.zeros((n, w), dtype=np.complex128)
    if kind == 1:
        value = data[hs]
        for i in range(n):
            for c in range(w):
                out[i, c] = value * x[i, c]
    elif kind == 2:
        for i in range(n):
            value = data[hs + i]
            for c in range(w):
                out[i, c] = value * x[i, c]
    elif kind == 3:
        out = _product(data[hs : hs + n_prev * n].reshape((n, n_prev)), x)
    elif kind == 4:
        for i in range(n_prev):
            for k in range(ptr[i], ptr[i + 1]):
                j = idx[k]
                value = data[vs + k].conjugate()
                for c in range(w):
                    out[j, c] += value * x[i, c]
    return out


@numba.njit(cache=True, nogil=True)
def _times_v(kind, p, data, vs, ptr, idx, n):
    """``p V`` for p of shape (h, n_prev) -> (h, n) (storage as in :func:`_couple_into`)."""
    h, n_prev = p.shape
    out = np.zeros((h, n), dtype=np.complex128)
    if kind == 1:
        value = data[vs]
        for r in range(h):
            for j in range(n):
                out[r, j] = p[r, j] * value
    elif kind == 2:
        for r in range(h):
            for j in range(n):
                out[r, j] = p[r, j] * data[vs + j]
    elif kind == 3:
        out = _product(p, data[vs : vs + n_prev * n].reshape((n_prev, n)))
    elif kind == 4:
        for i in range(n_prev):
            for k in range(ptr[i], ptr[i + 1]):
                j = idx[k]
                value = data[vs + k]
                for r in range(h):
                    out[r, j] += p[r, i] * value
    return out


@numba.njit(cache=True, nogil=True)
def _rescale(x: np.ndarray, flush: complex) -> tuple[float, float]:
    """Divide ``x`` by a power of two near its largest modulus (exact), then flush
    subnormal parts; returns the exponent removed and the factor applied."""
    if x.size == 0:
        return 0.0, 1.0
    peak = 0.0
    for value in x.ravel():
        peak = max(peak, _modulus(value))
    exponent = math.frexp(peak if peak > 0 else 1.0)[1]
    factor = math.ldexp(1.0, -exponent)
    flat = x.reshape(x.size)
    for k in range(flat.size):
        flat[k] = (flat[k] * factor + flush) - flush
    return float(exponent), factor


@numba.njit(cache=True, nogil=True)
def _rescale_lead(x, blocks, has_block, pairs, side, lead, flush):
    """:func:`_rescale` a lead's columns (``side`` 1) or rows (0) and the blocks made with
    them; returns the exponent removed."""
    exponent, factor = _rescale(x, flush)
    for p in range(pairs.shape[0]):
        if has_block[p] and pairs[p, side] == lead:
            blocks[p] *= factor
    return exponent


@numba.njit(cache=True, nogil=True)
def _gather(source, rows, columns):
    """``source[rows][:, columns]`` as a new C-ordered array (index arrays)."""
    out = np.empty((rows.size, columns.size), dtype=np.complex128)
    for i in range(rows.size):
        for j in range(columns.size):
            out[i, j] = source[rows[i], columns[j]]
    return out


@numba.njit(cache=True, nogil=True)
def sweep(
    energies,
    elements,
    sizes,
    order,
    template_data,
    template_start,
    template_stride,
    template_of_slice,
    diagonal_data,
    diagonal_start,
    diagonal_stride,
    kind,
    coupling_data,
    coupling_v,
    coupling_h,
    coupling_stride,
    sparse_ptr,
    sparse_ptr_start,
    sparse_idx,
    step_coupling,
    lead_position,
    lead_ptr,
    lead_order,
    local_idx,
    local_start,
    sigma_data,
    sigma_start,
    column_data,
    column_start,
    column_width,
    row_data,
    row_start,
    row_height,
    pairs,
    block_data,
    block_start,
    exponents,
    keep_state,
    state_green,
    state_cols,
    state_rows,
    state_exponents,
    status,
    first,
    last,
    rescale_interval,
    flush_interval,
    flush,
    limit,
    getrf,
    getri,
):
    """The recursion for batch entries ``first <= b < last``; returns the flops.

    The slices are taken in the order ``order`` (a position's slice); slice ``s`` has
    ``sizes[s]`` orbitals. Its off-diagonal template ``t = template_of_slice[s]`` (n x n,
    C order) starts at ``template_start[t] + e * template_stride[t]`` for the entry's
    parameter element ``e = elements[b]`` (stride 0: shared; -1: a zero template), its
    diagonal (n) at ``diagonal_start[s] + e * diagonal_stride[s]``. The step into position
    ``j > 0`` couples the slices by coupling ``c = step_coupling[j]``, ``V = <previous|H|
    this>``, of kind ``kind[c]`` (:data:`KINDS`): ``V`` is stored at ``coupling_v[c] + e *
    coupling_stride[c]`` and ``V^dagger`` at ``coupling_h[c] + e * coupling_stride[c]`` (the
    scalar, the diagonal, or the matrix in C order), a sparse ``V``'s values at its column
    indices' positions in ``sparse_idx`` (plus ``coupling_v[c]``), its row pointers from
    ``sparse_ptr[sparse_ptr_start[c]]`` on.

    Lead ``k`` joins at position ``lead_position[k]`` (beyond the last: not in this sweep)
    on its slice's local orbitals ``local_idx[local_start[k]:local_start[k + 1]]`` (a of
    them); ``lead_order[lead_ptr[j]:lead_ptr[j + 1]]`` lists the leads of position ``j``.
    Per entry a lead has a self-energy (a x a) at ``sigma_start[k] + b a^2``, columns
    (a x column_width[k]) and conjugated rows (row_height[k] x a), each at its start plus
    ``b`` times its size (width or height 0: not needed). Pair ``p = (i, m)``'s block
    ``rows_i^dagger G_im columns_m 2^-exponents[p, b]`` goes to ``block_data[block_start[p]
    + b size]``. With ``keep_state``, the last position's ``G`` (n x n), every lead's
    ``G columns`` (n x width) and ``rows^dagger G`` (height x n), and their exponents
    (``state_exponents[0 or 1, k, b]``, columns and rows) are kept for joining two sweeps.
    ``status[b]`` becomes 1 where a slice matrix is singular or worse conditioned than
    ``limit``.
    """
    num_positions = order.size
    num_leads = lead_position.size
    num_pairs = pairs.shape[0]
    largest = sizes.max()
    flops = 0.0
    empty = np.zeros((0, 0), dtype=np.complex128)
    n_last = sizes[order[num_positions - 1]]
    batch = energies.size
    # A slice's matrix is built in ``built_slab`` (reading the previous slice's G^L in
    # ``slab``) and its inverse written over ``slab``: through the planes of
    # :func:`_gauss_jordan`, or, for the largest slices, in place by LAPACK.
    built_slab = np.empty(largest * largest, dtype=np.complex128)
    slab = np.empty(largest * largest, dtype=np.complex128)
    workspace = _workspace(largest, GAUSS_JORDAN_LARGEST)
    for b in range(first, last):
        energy = energies[b]
        element = elements[b]
        cols = [empty for _ in range(num_leads)]
        rows = [empty for _ in range(num_leads)]
        moved = [empty for _ in range(num_leads)]
        has_col = np.zeros(num_leads, dtype=np.bool_)
        has_row = np.zeros(num_leads, dtype=np.bool_)
        col_exp = np.zeros(num_leads)
        row_exp = np.zeros(num_leads)
        blocks = [empty for _ in range(num_pairs)]
        has_block = np.zeros(num_pairs, dtype=np.bool_)
        green = empty
        n_prev = 0
        for j in range(num_positions):
            s = order[j]
            n = sizes[s]
            c = step_coupling[j]
            vs = hs = 0
            ptr = sparse_ptr[:1]
            matrix = built_slab[: n * n].reshape((n, n))
            if j > 0:
                vs = coupling_v[c] + element * coupling_stride[c]
                hs = coupling_h[c] + element * coupling_stride[c]
                ptr = sparse_ptr[sparse_ptr_start[c] : sparse_ptr_start[c] + n_prev + 1]
                _couple_into(matrix, kind[c], green, coupling_data, vs, hs, ptr, sparse_idx, n)
            else:
                matrix[:, :] = 0
            t = template_of_slice[s]
            if template_stride[t] >= 0:
                tstart = template_start[t] + element * template_stride[t]
                template = template_data[tstart : tstart + n * n].reshape((n, n))
                for i in range(n):
                    for k in range(n):
                        matrix[i, k] -= template[i, k]
            dstart = diagonal_start[s] + element * diagonal_stride[s]
            for i in range(n):
                matrix[i, i] += energy - diagonal_data[dstart + i]
            for q in range(lead_ptr[j], lead_ptr[j + 1]):
                k = lead_order[q]
                local = local_idx[local_start[k] : local_start[k + 1]]
                a = local.size
                sstart = sigma_start[k] + b * a * a
                sigma = sigma_data[sstart : sstart + a * a].reshape((a, a))
                for i in range(a):
                    for r in range(a):
                        matrix[local[i], local[r]] -= sigma[i, r]
            green = slab[: n * n].reshape((n, n))
            if not _inverse_into(
                matrix, green, workspace, getrf, getri, limit, GAUSS_JORDAN_LARGEST
            ):
                status[b] = 1
                break
            flops += 8.0 * n**3
            if j > 0:
                for m in range(num_leads):
                    if has_col[m]:
                        moved[m] = _vdag_times(
                            kind[c], cols[m], coupling_data, vs, hs, ptr, sparse_idx, n
                        )
                        cols[m] = _product(green, moved[m])
                        flops += 8.0 * n * n * moved[m].shape[1]
                for i in range(num_leads):
                    if has_row[i]:
                        shifted = _times_v(kind[c], rows[i], coupling_data, vs, ptr, sparse_idx, n)
                        rows[i] = _product(shifted, green)
                        flops += 8.0 * rows[i].shape[0] * n * n
                for p in range(num_pairs):
                    i, m = pairs[p, 0], pairs[p, 1]
                    if has_block[p] and has_row[i] and has_col[m]:
                        blocks[p] += _product(rows[i], moved[m])
                        flops += 8.0 * rows[i].shape[0] * n * moved[m].shape[1]
            everything = np.arange(n)
            for q in range(lead_ptr[j], lead_ptr[j + 1]):
                k = lead_order[q]
                local = local_idx[local_start[k] : local_start[k + 1]]
                a = local.size
                w = column_width[k]
                if w > 0:
                    cstart = column_start[k] + b * a * w
                    columns = column_data[cstart : cstart + a * w].reshape((a, w))
                    cols[k] = _product(_gather(green, everything, local), columns)
                    has_col[k] = True
                    col_exp[k] = 0.0
                    flops += 8.0 * n * a * w
                h = row_height[k]
                if h > 0:
                    rstart = row_start[k] + b * h * a
                    conj_rows = row_data[rstart : rstart + h * a].reshape((h, a))
                    rows[k] = _product(conj_rows, _gather(green, local, everything))
                    has_row[k] = True
                    row_exp[k] = 0.0
                    flops += 8.0 * h * a * n
            for p in range(num_pairs):
                i, m = pairs[p, 0], pairs[p, 1]
                if has_block[p] or lead_position[i] > j or lead_position[m] > j:
                    continue
                # Both leads are present from this position on; one of them sits in it.
                if lead_position[m] == j:
                    local = local_idx[local_start[m] : local_start[m + 1]]
                    a = local.size
                    w = column_width[m]
                    cstart = column_start[m] + b * a * w
                    columns = column_data[cstart : cstart + a * w].reshape((a, w))
                    height = rows[i].shape[0]
                    blocks[p] = _product(_gather(rows[i], np.arange(height), local), columns)
                else:
                    local = local_idx[local_start[i] : local_start[i + 1]]
                    a = local.size
                    h = row_height[i]
                    rstart = row_start[i] + b * h * a
                    conj_rows = row_data[rstart : rstart + h * a].reshape((h, a))
                    width = cols[m].shape[1]
                    blocks[p] = _product(conj_rows, _gather(cols[m], local, np.arange(width)))
                has_block[p] = True
                flops += 8.0 * blocks[p].shape[0] * a * blocks[p].shape[1]
            if (j + 1) % flush_interval == 0:
                for i in range(n):
                    for k in range(n):
                        green[i, k] = (green[i, k] + flush) - flush
            if (j + 1) % rescale_interval == 0 or j == num_positions - 1:
                for k in range(num_leads):
                    if has_col[k]:
                        col_exp[k] += _rescale_lead(cols[k], blocks, has_block, pairs, 1, k, flush)
                    if has_row[k]:
                        row_exp[k] += _rescale_lead(rows[k], blocks, has_block, pairs, 0, k, flush)
            n_prev = n
        if status[b] != 0:
            continue
        for p in range(num_pairs):
            i, m = pairs[p, 0], pairs[p, 1]
            height = row_height[i]
            width = column_width[m]
            bstart = block_start[p] + b * height * width
            out = block_data[bstart : bstart + height * width].reshape((height, width))
            out[:, :] = blocks[p]
            exponents[p, b] = row_exp[i] + col_exp[m]
        if keep_state:
            # Per lead k, all entries' (n x width_k) columns, then those of lead k + 1.
            gstart = b * n_last * n_last
            state_green[gstart : gstart + n_last * n_last] = green.ravel()
            col_state = 0
            row_state = 0
            for k in range(num_leads):
                size = n_last * column_width[k]
                if size > 0:
                    cstart = col_state + b * size
                    state_cols[cstart : cstart + size] = cols[k].ravel()
                col_state += size * batch
                size = row_height[k] * n_last
                if size > 0:
                    rstart = row_state + b * size
                    state_rows[rstart : rstart + size] = rows[k].ravel()
                row_state += size * batch
                state_exponents[0, k, b] = col_exp[k]
                state_exponents[1, k, b] = row_exp[k]
    return flops


def ready() -> bool:
    """Whether :func:`sweep` runs without compiling: compiled in this process, or on disk
    for this source and machine."""
    compiled: Any = sweep
    if getattr(compiled, "overloads", None):
        return True
    try:
        return bool(compiled._cache._cache_file._load_index())
    except Exception:  # numba's cache layout differs: find out by compiling
        return False


_BUILD_LOCK = threading.Lock()
_BUILD_STARTED = False
#: A build marker older than this (seconds) is from a build that died.
_STALE_BUILD = 600.0


def build_in_background() -> bool:
    """Start compiling :func:`sweep` in a separate process, once per process; returns whether
    a build was started.

    A marker file in the temporary directory keeps processes started together (workers,
    parallel tests) from compiling side by side; one older than ten minutes is ignored.
    """
    global _BUILD_STARTED
    with _BUILD_LOCK:
        if _BUILD_STARTED:
            return False
        _BUILD_STARTED = True
    if not sys.executable or getattr(sys, "frozen", False):
        return False  # an embedded interpreter or a frozen application: nothing to start
    user = os.getuid() if hasattr(os, "getuid") else os.getpid()
    marker = os.path.join(tempfile.gettempdir(), f"mesoscopic-rgf-kernel-{user}.build")
    try:
        if time.time() - os.path.getmtime(marker) < _STALE_BUILD:
            return False
    except OSError:
        pass
    # The child imports this package from where this process found it.
    paths = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    try:
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
    except OSError:
        return False
    try:
        subprocess.Popen(
            [sys.executable, "-m", "mesoscopic.solvers._rgf_kernel", marker],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            os.remove(marker)
        return False
    return True


def compile_now() -> None:
    """Compile (or load) :func:`sweep` in this process, on a three-site chain."""
    from . import rgf

    chain = -(np.eye(3, k=1) + np.eye(3, k=-1)).astype(complex)
    cell, hop = np.zeros((1, 1), dtype=complex), -np.ones((1, 1), dtype=complex)
    ends = [np.array([0]), np.array([2])]
    lead, other = (rgf.LeadData(cell, hop, end, np.array([0])) for end in ends)
    previous = os.environ.get("MESOSCOPIC_RGF_KERNEL")
    os.environ["MESOSCOPIC_RGF_KERNEL"] = "compiled"
    try:
        rgf.prepare(chain, [lead, other]).transmission([0.3])
    finally:
        if previous is None:
            del os.environ["MESOSCOPIC_RGF_KERNEL"]
        else:
            os.environ["MESOSCOPIC_RGF_KERNEL"] = previous


if __name__ == "__main__":
    try:
        compile_now()
    finally:
        if len(sys.argv) > 1:
            with contextlib.suppress(OSError):
                os.remove(sys.argv[1])
