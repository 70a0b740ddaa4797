"""LAPACK's complex eigenproblem and Schur forms without the interpreter lock (numba).

`mesoscopic.leads` solves a lead's mode problem at one energy as a standard eigenproblem
and, where its decaying solutions are nearly parallel, finds their subspace from a Schur
form reordered by the moduli of the eigenvalues (``ztrsen``). SciPy's wrappers hold the
interpreter lock, so the energies that the recursive Green's functions give to threads
were solved one after the other. Here the same LAPACK routines (SciPy's Cython LAPACK,
passed in as function pointers so that numba keeps the compiled code on disk) are called
from compiled functions that release the lock: `schur` and `reorder` give the same numbers
as SciPy's ``schur`` and ``ztrsen``; `eigen` takes ``zgeev``'s steps (balancing, Hessenberg
form, Schur form, eigenvectors of the triangular factor, back-transformation) and keeps the
Schur form of the balanced matrix, so the eigenvectors and the reordered Schur form come
from one decomposition instead of two.

LAPACK works on Fortran-ordered matrices: a C-ordered array holds the transpose of the
matrix LAPACK sees, so the functions take and return transposes (see each).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._cython_lapack import lapack_function

__all__ = ["EIGEN", "LAPACK", "back_transform", "eigen", "reorder", "schur"]


#: ``(zgees, ztrsen)``: the complex Schur form and its reordering.
LAPACK = (lapack_function("zgees", 15), lapack_function("ztrsen", 15))
#: ``(zgebal, zgehrd, zunghr, zhseqr, ztrevc, zgebak)``: ``zgeev``'s steps.
EIGEN = (
    lapack_function("zgebal", 8),
    lapack_function("zgehrd", 9),
    lapack_function("zunghr", 9),
    lapack_function("zhseqr", 13),
    lapack_function("ztrevc", 15),
    lapack_function("zgebak", 10),
)


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


@numba.njit(cache=True, nogil=True)
def eigen(
    a: np.ndarray,
    schur_vectors: np.ndarray,
    vectors: np.ndarray,
    values: np.ndarray,
    scale: np.ndarray,
    bounds: np.ndarray,
    gebal: Any,
    gehrd: Any,
    unghr: Any,
    hseqr: Any,
    trevc: Any,
    gebak: Any,
) -> int:  # pragma: no cover - compiled; checked against SciPy's eig and schur
    """Eigenvalues, right eigenvectors and the Schur form of the balanced matrix.

    LAPACK's ``zgeev`` steps: balance ``B = D^-1 P^T A P D`` (``zgebal``, permuting and
    scaling), Hessenberg form and its unitary factor, Schur form ``B = Z T Z^dagger``
    (``zhseqr``), eigenvectors of ``T`` back-transformed by ``Z`` (``ztrevc``) and by the
    balancing (``zgebak``). `a` (n, n), C-ordered, holds ``A^T`` and is overwritten by
    ``T^T``; `schur_vectors` receives ``Z^T``, `vectors` the eigenvectors (transposed, one
    row each, not normalized), `values` the eigenvalues, `scale` and `bounds` (two int32:
    ``ilo``, ``ihi``) the balancing as ``zgebal`` gives it. Returns the first nonzero
    ``info``, or 0.
    """
    n = a.shape[0]
    chars = np.array([ord("B"), ord("S"), ord("V"), ord("R")], dtype=np.uint8)
    # n, leading dimension, lwork, info, columns, one, columns found
    ints = np.array([n, max(n, 1), -1, 0, n, 1, 0], dtype=np.int32)
    ilo, ihi = bounds[0:], bounds[1:]
    gebal(
        chars.ctypes, ints.ctypes, a.ctypes, ints[1:].ctypes, ilo.ctypes, ihi.ctypes,
        scale.ctypes, ints[3:].ctypes,
    )  # fmt: skip
    if ints[3] != 0:
        return int(ints[3])
    tau = np.zeros(max(n - 1, 1), dtype=np.complex128)
    query = np.zeros(1, dtype=np.complex128)
    size = 2 * n
    ints[2] = -1
    gehrd(
        ints.ctypes, ilo.ctypes, ihi.ctypes, a.ctypes, ints[1:].ctypes, tau.ctypes,
        query.ctypes, ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    size = max(size, int(query[0].real))
    ints[2] = -1
    unghr(
        ints.ctypes, ilo.ctypes, ihi.ctypes, schur_vectors.ctypes, ints[1:].ctypes,
        tau.ctypes, query.ctypes, ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    size = max(size, int(query[0].real))
    ints[2] = -1
    hseqr(
        chars[1:].ctypes, chars[2:].ctypes, ints.ctypes, ilo.ctypes, ihi.ctypes, a.ctypes,
        ints[1:].ctypes, values.ctypes, schur_vectors.ctypes, ints[1:].ctypes, query.ctypes,
        ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    size = max(size, int(query[0].real), 1)
    work = np.zeros(size, dtype=np.complex128)
    ints[2] = size
    ints[3] = 0
    gehrd(
        ints.ctypes, ilo.ctypes, ihi.ctypes, a.ctypes, ints[1:].ctypes, tau.ctypes,
        work.ctypes, ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    if ints[3] != 0:
        return int(ints[3])
    schur_vectors[:, :] = a  # the reflectors, below the subdiagonal
    unghr(
        ints.ctypes, ilo.ctypes, ihi.ctypes, schur_vectors.ctypes, ints[1:].ctypes,
        tau.ctypes, work.ctypes, ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    if ints[3] != 0:
        return int(ints[3])
    hseqr(
        chars[1:].ctypes, chars[2:].ctypes, ints.ctypes, ilo.ctypes, ihi.ctypes, a.ctypes,
        ints[1:].ctypes, values.ctypes, schur_vectors.ctypes, ints[1:].ctypes, work.ctypes,
        ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    if ints[3] != 0:
        return int(ints[3])
    vectors[:, :] = schur_vectors
    unused = np.zeros(max(n, 1), dtype=np.int32)  # select: not read for all vectors
    left = np.zeros(1, dtype=np.complex128)  # not referenced for right vectors
    rwork = np.zeros(max(n, 1))
    # side "R", howmny "B" (all, back-transformed): chars[3], chars[0]
    trevc(
        chars[3:].ctypes, chars.ctypes, unused.ctypes, ints.ctypes, a.ctypes, ints[1:].ctypes,
        left.ctypes, ints[5:].ctypes, vectors.ctypes, ints[1:].ctypes, ints[4:].ctypes,
        ints[6:].ctypes, work.ctypes, rwork.ctypes, ints[3:].ctypes,
    )  # fmt: skip
    if ints[3] != 0:
        return int(ints[3])
    gebak(
        chars.ctypes, chars[3:].ctypes, ints.ctypes, ilo.ctypes, ihi.ctypes, scale.ctypes,
        ints[4:].ctypes, vectors.ctypes, ints[1:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    return int(ints[3])


@numba.njit(cache=True, nogil=True)
def back_transform(
    scale: np.ndarray, bounds: np.ndarray, v: np.ndarray, gebak: Any
) -> int:  # pragma: no cover - compiled; checked against the balancing it undoes
    """Vectors of the balanced matrix to vectors of the matrix (``zgebak``), in place.

    `v` (m, n), C-ordered, holds m vectors as rows; `scale` and `bounds` as `eigen` gives
    them. Returns LAPACK's ``info``.
    """
    m, n = v.shape
    chars = np.array([ord("B"), ord("R")], dtype=np.uint8)
    ints = np.array([n, m, max(n, 1), 0], dtype=np.int32)
    gebak(
        chars.ctypes, chars[1:].ctypes, ints.ctypes, bounds.ctypes, bounds[1:].ctypes,
        scale.ctypes, ints[1:].ctypes, v.ctypes, ints[2:].ctypes, ints[3:].ctypes,
    )  # fmt: skip
    return int(ints[3])
