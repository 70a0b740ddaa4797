"""LAPACK's complex Schur form and its reordering without the interpreter lock (numba).

`mesoscopic.leads` finds the decaying subspace of a lead at one energy from the Schur form
of its mode problem (``zgees``) reordered by the moduli of the eigenvalues (``ztrsen``).
SciPy's wrappers of both hold the interpreter lock, so the energies that the recursive
Green's functions give to threads were solved one after the other. Here the same LAPACK
routines (SciPy's Cython LAPACK, passed in as function pointers so that numba keeps the
compiled code on disk) are called from compiled functions that release the lock: the same
numbers as SciPy's ``schur`` and ``ztrsen``, side by side in threads.

LAPACK works on Fortran-ordered matrices: a C-ordered array holds the transpose of the
matrix LAPACK sees, so the functions take and return transposes (see each).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._cython_lapack import lapack_function

__all__ = ["LAPACK", "reorder", "schur"]


#: ``(zgees, ztrsen)``: the complex Schur form and its reordering.
LAPACK = (lapack_function("zgees", 15), lapack_function("ztrsen", 15))


@numba.njit(cache=True, nogil=True)
def schur(
    a: np.ndarray, vectors: np.ndarray, values: np.ndarray, gees: Any
) -> int:  # pragma: no cover - compiled; checked against SciPy's schur
    """Complex Schur form ``A = Z T Z^dagger``; returns LAPACK's ``info`` (0: done).

    `a` (n, n), C-ordered, holds ``A^T`` and is overwritten by ``T^T``; `vectors` (n, n)
    receives ``Z^T``, `values` (n,) the eigenvalues (the diagonal of T). As SciPy's
    ``schur(A, output="complex")``: no ordering, a workspace query first.
    """
    n = a.shape[0]
    chars = np.array([ord("V"), ord("N")], dtype=np.uint8)
    # n, leading dimension, sdim, lwork, info
    ints = np.array([n, max(n, 1), 0, -1, 0], dtype=np.int32)
    query = np.zeros(1, dtype=np.complex128)
    rwork = np.zeros(max(n, 1))
    unused = np.zeros(max(n, 1), dtype=np.int32)  # select and bwork: not read without sorting
    gees(
        chars.ctypes, chars[1:].ctypes, unused.ctypes, ints.ctypes, a.ctypes, ints[1:].ctypes,
        ints[2:].ctypes, values.ctypes, vectors.ctypes, ints[1:].ctypes, query.ctypes,
        ints[3:].ctypes, rwork.ctypes, unused.ctypes, ints[4:].ctypes,
    )  # fmt: skip
    if ints[4] != 0:
        return int(ints[4])
    ints[3] = max(int(query[0].real), 1)
    work = np.zeros(ints[3], dtype=np.complex128)
    gees(
        chars.ctypes, chars[1:].ctypes, unused.ctypes, ints.ctypes, a.ctypes, ints[1:].ctypes,
        ints[2:].ctypes, values.ctypes, vectors.ctypes, ints[1:].ctypes, work.ctypes,
        ints[3:].ctypes, rwork.ctypes, unused.ctypes, ints[4:].ctypes,
    )  # fmt: skip
    return int(ints[4])


@numba.njit(cache=True, nogil=True)
def reorder(
    t: np.ndarray, z: np.ndarray, select: np.ndarray, trsen: Any
) -> int:  # pragma: no cover - compiled; checked against SciPy's ztrsen
    """Move the selected eigenvalues to the leading block of a Schur form, in place.

    `t` and `z` hold ``T^T`` and ``Z^T`` as `schur` gives them (C-ordered), `select` (n,)
    int32 flags; as LAPACK's ``ztrsen`` with ``job="N"``, ``compq="V"``. Returns ``info``.
    """
    n = t.shape[0]
    chars = np.array([ord("N"), ord("V")], dtype=np.uint8)
    # n, leading dimension, m, lwork, info
    ints = np.array([n, max(n, 1), 0, 1, 0], dtype=np.int32)
    values = np.zeros(max(n, 1), dtype=np.complex128)
    conditions = np.zeros(2)
    work = np.zeros(1, dtype=np.complex128)
    trsen(
        chars.ctypes, chars[1:].ctypes, select.ctypes, ints.ctypes, t.ctypes, ints[1:].ctypes,
        z.ctypes, ints[1:].ctypes, values.ctypes, ints[2:].ctypes, conditions.ctypes,
        conditions[1:].ctypes, work.ctypes, ints[3:].ctypes, ints[4:].ctypes,
    )  # fmt: skip
    return int(ints[4])
