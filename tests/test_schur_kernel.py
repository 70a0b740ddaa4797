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
@pytest.mark.parametrize("n", [1, 2, 7, 48, 121])
def test_eigen_kernel_takes_zgeevs_steps_and_keeps_the_schur_form(n):
    rng = np.random.default_rng(10 + n)
    matrix = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    matrix[:, 0] *= 300.0  # badly scaled: the balancing scales rows and columns
    matrix[n // 2] *= 1e-3
    kernels = leads._schur_kernels()
    values, vectors, form = leads._compiled_eigen(kernels, matrix, inverted=False)
    reference_values, reference_vectors = la.eig(matrix)
    # The same LAPACK steps as zgeev (balancing, Hessenberg and Schur form); the
    # eigenvectors of the triangular factor by ztrevc instead of zgeev's blocked ztrevc3.
    np.testing.assert_allclose(values, reference_values, rtol=1e-13, atol=0)
    np.testing.assert_allclose(vectors, reference_vectors, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=0), 1.0, rtol=1e-14)
    scale = np.max(np.abs(matrix))
    assert np.max(np.abs(matrix @ vectors - vectors * values)) < 1e-12 * n * scale
    # The Schur form is of the balanced matrix: same eigenvalues, unitary Z.
    np.testing.assert_array_equal(np.diag(form.t), values)
    np.testing.assert_allclose(form.z.conj().T @ form.z, np.eye(n), atol=1e-13 * n)
    assert np.all(np.tril(form.t, -1) == 0)
    # The reordered form gives an orthonormal basis of the matrix's invariant subspace.
    select = np.abs(values) <= np.median(np.abs(values))
    count = int(select.sum())
    basis = form.subspace(select)
    np.testing.assert_allclose(basis.conj().T @ basis, np.eye(count), atol=1e-13 * n)
    inside = basis.conj().T @ matrix @ basis
    assert np.max(np.abs(matrix @ basis - basis @ inside)) < 1e-11 * n * scale
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(inside)), np.sort_complex(values[select]),
        atol=1e-9 * scale,
    )  # fmt: skip


@needs_numba
def test_lead_modes_agree_with_scipys_schur_form_and_are_the_same_from_threads(monkeypatch):
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
    # Threads side by side (the compiled calls release the interpreter lock): bit for bit.
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
    for ours, other in zip(compiled, threaded, strict=True):
        np.testing.assert_array_equal(other[1].selfenergy, ours[1].selfenergy)
        np.testing.assert_array_equal(other[0].wave_functions, ours[0].wave_functions)
    # NumPy's eig and SciPy's Schur form of the unbalanced matrix: the same to rounding.
    monkeypatch.setattr(leads, "_COMPILED_SCHUR", False)
    reference = solve_all()
    for ours, theirs in zip(compiled, reference, strict=True):
        np.testing.assert_allclose(ours[1].selfenergy, theirs[1].selfenergy, atol=1e-11)
        np.testing.assert_allclose(
            np.abs(ours[0].wave_functions), np.abs(theirs[0].wave_functions), atol=1e-10
        )


def test_interpreter_stages_take_turns_and_are_released_on_errors():
    stages = leads._InterpreterStages()
    order: list[str] = []
    inside = threading.Event()
    may_leave = threading.Event()

    def first() -> None:
        with stages.stage():
            order.append("first in")
            with stages.stage():  # nested: part of the same turn
                order.append("first nested")
            with stages.outside():  # the other thread's turn may run now
                inside.set()
                may_leave.wait(5)
            order.append("first back")

    def second() -> None:
        inside.wait(5)
        with stages.stage():
            order.append("second in")
            may_leave.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first nested", "second in", "first back"]
    with stages.outside():  # outside a turn: nothing to give
        pass
    with pytest.raises(RuntimeError), stages.stage():
        raise RuntimeError("released")
    acquired = stages._lock.acquire(timeout=1)  # the failed turn let go of the lock
    assert acquired
    stages._lock.release()
