"""The compiled Schur form of the lead solver against SciPy's (the same LAPACK routines)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.linalg as la
from scipy.linalg import lapack

import mesoscopic as meso
from mesoscopic import leads

needs_numba = pytest.mark.skipif(
    leads._schur_kernels() is None, reason="the compiled Schur form needs numba"
)


@needs_numba
@pytest.mark.parametrize("n", [1, 2, 7, 48, 121])
def test_schur_form_and_reordering_are_scipys_bit_for_bit(n, monkeypatch):
    rng = np.random.default_rng(n)
    matrix = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    t, z = leads._schur_form(matrix)
    t_ref, z_ref = la.schur(matrix, output="complex")
    np.testing.assert_array_equal(t, t_ref)
    np.testing.assert_array_equal(z, z_ref)
    np.testing.assert_allclose(z @ t @ z.conj().T, matrix, atol=1e-12 * n)
    select = np.abs(np.diag(t)) < np.median(np.abs(np.diag(t)))
    reordered = leads._reordered_schur(t, z, select)
    expected = lapack.ztrsen(select.astype(np.int32), t, z, job="N")[1]
    np.testing.assert_array_equal(reordered, expected)
    # The leading columns span the invariant subspace of the selected eigenvalues.
    count = int(select.sum())
    basis = reordered[:, :count]
    inside = np.linalg.lstsq(basis, matrix @ basis, rcond=None)[0]
    np.testing.assert_allclose(basis @ inside, matrix @ basis, atol=1e-10 * n)
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(inside)), np.sort_complex(np.diag(t)[select]),
        atol=1e-9,
    )  # fmt: skip
    # The input is not changed, and the SciPy road gives the same.
    monkeypatch.setattr(leads, "_COMPILED_SCHUR", False)
    t_scipy, z_scipy = leads._schur_form(matrix)
    np.testing.assert_array_equal(t_scipy, t)
    np.testing.assert_array_equal(z_scipy, z)
    np.testing.assert_array_equal(leads._reordered_schur(t, z, select), reordered)


def zigzag_lead(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell Hamiltonian and hopping of a graphene zigzag ribbon (its decaying solutions
    need the Schur form: many are nearly parallel)."""
    lat = meso.lattice.honeycomb(1.0, norbs=1)
    low, high = -1 / (2 * np.sqrt(3)) - 0.1, (width - 1) * np.sqrt(3) / 2 + 0.1
    lead = meso.Builder(meso.TranslationalSymmetry((-1.0, 0.0)))
    lead[lat.shape(lambda p: low < p[1] < high, (0.1, 0.1))] = 0.0
    lead[lat.neighbors()] = -1.0
    fin = lead.finalized()
    return fin.cell_hamiltonian(), fin.hopping_away()


@needs_numba
def test_lead_modes_are_the_same_with_scipys_schur_form_also_from_threads(monkeypatch):
    h, v = zigzag_lead(24)
    energies = np.linspace(0.05, 0.8, 32)[::4]

    def solve_all():
        leads._MODES_CACHE.clear()
        leads._EIGEN_CACHE.clear()
        return [leads._modes_at_energy(h, v, e) for e in energies]

    calls = []
    original = leads._reordered_schur
    monkeypatch.setattr(leads, "_reordered_schur", lambda *a: calls.append(1) or original(*a))
    compiled = solve_all()
    assert calls, "the zigzag lead's decaying subspace comes from its Schur form"
    # Threads side by side (the compiled calls release the interpreter lock).
    threaded: list = [None] * len(energies)

    def solve(k: int) -> None:
        threaded[k] = leads._modes_at_energy(h, v, energies[k])

    leads._MODES_CACHE.clear()
    leads._EIGEN_CACHE.clear()
    workers = [threading.Thread(target=solve, args=(k,)) for k in range(len(energies))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    monkeypatch.setattr(leads, "_COMPILED_SCHUR", False)
    reference = solve_all()
    for ours, theirs, other in zip(compiled, reference, threaded, strict=True):
        for result in (ours, other):
            np.testing.assert_array_equal(result[1].selfenergy, theirs[1].selfenergy)
            np.testing.assert_array_equal(result[0].wave_functions, theirs[0].wave_functions)
