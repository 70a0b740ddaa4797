"""The compiled RGF recursion (numba) against the NumPy recursion and the sparse solver.

On the CPU the slice recursion runs compiled (`mesoscopic.solvers._rgf_kernel`) unless
``MESOSCOPIC_RGF_KERNEL=numpy``; with fewer energies than threads a single energy is swept
from both ends at once and the halves are joined by the Dyson equation. Every road must give
the same numbers: here each test runs the roads side by side and proves which one ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.leads import LeadData
from mesoscopic.solvers import _rgf_kernel, rgf, sparse
from mesoscopic.transport import lead_data
from reference.systems import SYSTEMS, make_spin_orbit_wire, make_wire_in_field

TOLERANCE = 1e-11


class Counted:
    """Counts the calls of a function it forwards to."""

    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def roads(monkeypatch):
    """``solve(road, threads, function)``: the function's result on that road, and the
    numbers of compiled sweeps and two-sided joins it made."""
    sweeps = Counted(_rgf_kernel.sweep)
    joins = Counted(rgf._join)
    monkeypatch.setattr(_rgf_kernel, "sweep", sweeps)
    monkeypatch.setattr(rgf, "_join", joins)

    def solve(road, threads, function):
        monkeypatch.setenv("MESOSCOPIC_RGF_KERNEL", road)
        monkeypatch.setenv("MESOSCOPIC_THREADS", str(threads))
        sweeps.calls = joins.calls = 0
        result = function()
        return result, sweeps.calls, joins.calls

    return solve


def same_smatrices(a, b, tolerance=TOLERANCE):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.data.shape == y.data.shape
        np.testing.assert_allclose(x.data, y.data, rtol=0, atol=tolerance)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_reference_systems_on_every_road(roads, name):
    fsys, params, energies = SYSTEMS[name](meso)

    def run():
        return batch.smatrices(fsys, energies, params=params, solver="rgf")

    reference, sweeps, _ = roads("numpy", 1, run)
    assert sweeps == 0
    compiled, sweeps, joins = roads("compiled", 1, run)
    assert sweeps > 0 and joins == 0
    same_smatrices(compiled, reference)
    # One energy at a time with two threads: swept from both ends where the leads allow.
    for k, energy in enumerate(energies):
        one, sweeps, joins = roads(
            "compiled",
            2,
            lambda e=energy: batch.smatrices(fsys, [e], params=params, solver="rgf"),
        )
        assert sweeps > 0
        same_smatrices(one, reference[k : k + 1])


def test_a_wire_in_a_field_swept_from_both_ends_is_the_sparse_solver(roads):
    fsys, params, energies = make_wire_in_field(meso, length=40, width=9)
    for energy in energies:
        fast, sweeps, joins = roads(
            "compiled", 2, lambda e=energy: meso.smatrix(fsys, e, params=params)
        )
        assert (sweeps, joins) == (2, 1)
        ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
        expected = sparse.scattering_matrix(ham, lead_data(fsys, params=params), energy)
        np.testing.assert_allclose(fast.data, expected.data, rtol=0, atol=1e-10)
        t, _, joins = roads(
            "compiled", 2, lambda e=energy: meso.transmission(fsys, e, 1, 0, params=params)
        )
        assert joins == 1
        assert t == pytest.approx(expected.transmission(1, 0), abs=1e-10)


def test_a_hall_bar_with_leads_along_its_sides(roads):
    # Leads attached in the middle of the slicing: one sweep from the first slice.
    fsys = meso.models.hall_bar(16, 6, terminals=6, arm=2)
    params = dict(phi=0.03, disorder=0.5, seed=2)
    energies = [0.4, 0.9]

    def run():
        return batch.smatrices(fsys, energies, params=params, solver="rgf")

    reference, _, _ = roads("numpy", 1, run)
    for threads in (1, 2):
        compiled, sweeps, joins = roads("compiled", threads, run)
        assert sweeps > 0 and joins == 0
        same_smatrices(compiled, reference)


@pytest.mark.parametrize("threads", [1, 2])
def test_parameter_batches_with_couplings_per_element(roads, threads):
    # Rashba strength per element: the couplings differ between elements (dense per element);
    # the field per element: diagonal couplings per element.
    fsys, params, energies = make_spin_orbit_wire(meso, width=8, length=6)
    elements = [dict(params, alpha=a) for a in (0.1, 0.3, 0.5)]
    wire, wire_params, wire_energies = make_wire_in_field(meso, length=12, width=5)
    fields = [dict(wire_params, phi=p) for p in (0.01, 0.05, 0.2)]
    for syst, batch_params, e in ((fsys, elements, energies), (wire, fields, wire_energies)):

        def run(syst=syst, batch_params=batch_params, e=e):
            return batch.transmission(syst, e, 1, 0, params=batch_params, solver="rgf")

        reference, _, _ = roads("numpy", 1, run)
        compiled, sweeps, _ = roads("compiled", threads, run)
        assert sweeps > 0
        np.testing.assert_allclose(compiled, reference, rtol=0, atol=TOLERANCE)


def test_sparse_spin_orbit_couplings_from_both_ends(roads):
    fsys, params, energies = make_spin_orbit_wire(meso, width=30, length=10)
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    leads = lead_data(fsys, params=params)
    problem = rgf.prepare(ham, leads)
    assert {c.kind for c in problem._blocks.couplings} == {"sparse"}
    for energy in energies[:2]:
        fast, _, joins = roads("compiled", 2, lambda e=energy: problem.smatrices([e])[0])
        assert joins == 1
        expected = sparse.scattering_matrix(ham, leads, energy)
        np.testing.assert_allclose(fast.data, expected.data, rtol=0, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_singular_slice_goes_to_the_sparse_solver(roads, threads):
    ribbon = meso.models.graphene_ribbon(8, 10.0, edge="armchair")
    params = {"potential": 0.0}
    energies = [0.0, 0.1, 0.3]
    expected = batch.transmission(ribbon, energies, params=params, solver="sparse")
    for energy, value in zip(energies, expected):
        stats: dict = {}
        t, sweeps, _ = roads(
            "compiled",
            threads,
            lambda e=energy, stats=stats: batch.transmission(
                ribbon, [e], params=params, solver="rgf", stats=stats
            ),
        )
        assert sweeps > 0
        np.testing.assert_allclose(t[0], value, atol=1e-12)
        assert stats["sparse_fallback_energies"] == (energy == 0.0)


@pytest.mark.parametrize(("road", "threads"), [("numpy", 1), ("compiled", 1), ("compiled", 2)])
def test_transmissions_that_break_current_conservation_go_to_the_sparse_solver(
    road, threads, roads
):
    # Just above the zigzag edge states' energy the left part of the ribbon has nearly
    # degenerate edge states, and the recursion's Caroli transmission is off by up to 1e-9
    # from the sparse solver (which smatrix, checking unitarity, agrees with) at energies
    # from 1e-4 to 5e-4 (which of them depends on each road's rounding). The transmission
    # breaks current conservation as much: T_10 from lead 1's own block (the identity
    # i (G - G^dagger) = G Gamma G^dagger) disagrees, and the energy is solved again.
    fsys = meso.models.graphene_ribbon(24, 60.0)
    params = {"potential": 0.0}
    energies = [1e-4, 1.5e-4, 2.1e-4, 5e-4, 0.3]
    expected = batch.transmission(fsys, energies, params=params, solver="sparse")
    stats: dict = {}
    t, sweeps, joins = roads(
        road,
        threads,
        lambda: batch.transmission(fsys, energies, params=params, solver="rgf", stats=stats),
    )
    assert (sweeps > 0) == (road == "compiled") and joins == 0
    assert 1 <= stats["sparse_fallback_energies"] <= 4
    # The energies kept break current conservation by less than the threshold, and are
    # off by as much.
    np.testing.assert_allclose(t, expected, rtol=0, atol=2 * rgf._RECHECK_TRANSMISSION)
    # One energy on two threads is swept from both ends, with other rounding (3e-11 here,
    # left as it is): the check holds it to 1e-10 there too.
    one, _, joins = roads(
        road,
        threads,
        lambda: batch.transmission(fsys, energies[:1], params=params, solver="rgf"),
    )
    assert joins == (threads == 2)
    np.testing.assert_allclose(one, expected[:1], rtol=0, atol=1e-10)
    # Far from the edge states nothing is solved again.
    roads(
        road,
        threads,
        lambda: batch.transmission(fsys, [0.3], params=params, solver="rgf", stats=stats),
    )
    assert stats["sparse_fallback_energies"] == 0


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_ordinary_transmissions_conserve_current_to_rounding(name):
    fsys, params, energies = SYSTEMS[name](meso)
    problem = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True),
        lead_data(fsys, params=params),
    )
    checked = []
    original = rgf._transmission_from_blocks

    def recorded(*args):
        result, broken = original(*args)
        checked.append(broken)
        return result, broken

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rgf, "_transmission_from_blocks", recorded)
        stats: dict = {}
        problem.transmission(energies, stats=stats)
    broken = np.concatenate(checked)
    assert broken.size == len(energies)
    assert broken.max() < 1e-11
    assert stats["sparse_fallback_energies"] == 0


def test_a_bad_recursion_name_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv("MESOSCOPIC_RGF_KERNEL", "fortran")
    fsys, params, energies = make_wire_in_field(meso, length=6, width=3)
    with pytest.raises(ValueError, match=r"MESOSCOPIC_RGF_KERNEL='fortran'.*'compiled'.*'numpy'"):
        batch.transmission(fsys, energies, params=params, solver="rgf")


def kernel_inverse(matrix):
    """The compiled sweep's inversion of ``matrix``: (info, inverse, bounds of the two
    inf-norms)."""
    matrix = np.ascontiguousarray(matrix, dtype=complex)
    n = matrix.shape[0]
    wide = _rgf_kernel._padded(n)
    re = np.full((n, wide), np.nan)  # the padding must be set by the kernel
    im = np.full((n, wide), np.nan)
    bound = _rgf_kernel._split_bound(matrix, re, im)
    pivots = np.empty(n, dtype=np.int64)
    rows = np.full((4, wide), np.nan)
    info = _rgf_kernel._gauss_jordan(re, im, pivots, np.empty(n, dtype=bool), *rows)
    inverse = np.full((n, n), np.nan, dtype=complex)
    inverse_bound = _rgf_kernel._gather_bound(re, im, pivots, inverse) if info == 0 else 0.0
    return info, inverse, bound, inverse_bound


def backward_error(matrix, inverse):
    n = matrix.shape[0]
    scale = np.linalg.norm(matrix, 1) * np.linalg.norm(inverse, 1)
    left = np.linalg.norm(inverse @ matrix - np.eye(n), 1)
    return max(np.linalg.norm(matrix @ inverse - np.eye(n), 1), left) / scale


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 16, 39, 40, 41, 64, 101])
def test_the_kernels_gauss_jordan_inverts_as_lapack_does(n):
    rng = np.random.default_rng(n)
    eps = np.finfo(float).eps
    graded = np.logspace(0, 8, n)[:, None] * np.logspace(0, -5, n)[None, :]
    permuted = np.eye(n)[rng.permutation(n)] * (1 + 1j)  # every pivot off the diagonal
    for matrix in (
        rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)),
        (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) * graded,
        permuted,
        permuted + 1e-300 * np.eye(n),  # an unpivoted elimination divides by 1e-300
    ):
        info, inverse, bound, inverse_bound = kernel_inverse(matrix)
        assert info == 0
        reference = np.linalg.inv(matrix)
        # As accurate as LAPACK's LU and inverse: backward error at rounding level, and
        # the entries as close to LAPACK's as the condition number allows.
        assert backward_error(matrix, inverse) < 10 * n * eps
        assert backward_error(matrix, inverse) < 10 * max(backward_error(matrix, reference), eps)
        condition = np.linalg.cond(matrix, np.inf)
        error = np.abs(inverse - reference).max() / np.abs(reference).max()
        assert error < 100 * n * eps * condition
        # The bounds from |re| + |im| for the condition test.
        for a, b in ((matrix, bound), (inverse, inverse_bound)):
            exact = np.abs(a).sum(axis=1).max()
            assert exact <= b * (1 + 1e-15) and b <= np.sqrt(2) * exact * (1 + 1e-15)


def usable_inverse(matrix, gauss_jordan_largest=_rgf_kernel.GAUSS_JORDAN_LARGEST):
    """The sweep's slice inversion (Gauss-Jordan up to ``gauss_jordan_largest`` orbitals,
    LAPACK beyond): (whether the sweep uses the inverse, the inverse)."""
    matrix = np.ascontiguousarray(matrix, dtype=complex)
    n = matrix.shape[0]
    green = np.zeros((n, n), dtype=complex)
    usable = _rgf_kernel._inverse_into(
        matrix,
        green,
        _rgf_kernel._workspace(n, gauss_jordan_largest),
        *_rgf_kernel.LAPACK,
        1.0 / rgf._SLICE_RCOND,
        gauss_jordan_largest,
    )
    return usable, green


@pytest.mark.parametrize("largest", [_rgf_kernel.GAUSS_JORDAN_LARGEST, 0])
def test_a_slice_whose_inverse_is_not_finite_goes_to_the_sparse_solver(largest):
    # Inverses that overflow inside the elimination (finite matrices), and matrices with a
    # NaN or an infinite entry: never used, on the Gauss-Jordan and the LAPACK road (the
    # norms of the condition test took the largest of the finite rows before).
    n = 8
    lower = np.tril(np.ones((120, 120)), -1) + 1e-3 * np.eye(120)  # inverse ~ 1e3^120
    hostile = [
        np.array([[1, 1e308], [1, -1e308]]),
        np.triu(-np.ones((n, n)), 1) + 1e-60 * np.eye(n),
        lower,
        np.array([[np.nan]]),
        np.diag([1.0, np.nan, 1.0]),
        np.diag([1.0, 1.0, np.inf]),
        np.eye(3) + np.array([[0, 0, 0], [0, 0, np.inf], [0, 0, 0]]),
    ]
    for matrix in hostile:
        assert not usable_inverse(matrix, largest)[0]
    # An ordinary matrix is inverted and used on both roads (on LAPACK's: through the
    # Cython pointers, which take 32-bit integers; a wrong interface would not invert).
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(5, 5)) + 1j * rng.normal(size=(5, 5)) + 4 * np.eye(5)
    usable, inverse = usable_inverse(matrix, largest)
    assert usable
    np.testing.assert_allclose(inverse @ matrix, np.eye(5), atol=1e-13)


@pytest.mark.parametrize("scale", [1e-170, 2e-162, 1e-160, 1e155, 1e300])
def test_gauss_jordan_pivots_far_from_one_are_exact(scale):
    # The reciprocal of a pivot is taken without squaring its modulus (which leaves the
    # floating-point range beyond 1e+-154 and gave zeros or a division by zero).
    rng = np.random.default_rng(3)
    matrix = (rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))) * scale
    usable, inverse = usable_inverse(matrix)
    assert usable
    reference = np.linalg.inv(matrix)
    assert np.abs(inverse - reference).max() < 1e-13 * np.abs(reference).max()


def test_slices_beyond_gauss_jordans_size_are_inverted_by_lapack(roads):
    # A 3-slice wire one orbital wider than the kernel's Gauss-Jordan takes: LAPACK's LU
    # and inverse in the same sweep, the same S-matrix as the sparse solver.
    width = _rgf_kernel.GAUSS_JORDAN_LARGEST + 1
    fsys, _, _ = make_wire_in_field(meso, length=3, width=width)
    params = {"phi": 0.0, "w": 1.5}  # no field: the leads' modes in closed form
    stats: dict = {}
    fast, sweeps, _ = roads(
        "compiled",
        1,
        lambda: batch.smatrices(fsys, [0.7], params=params, solver="rgf", stats=stats),
    )
    assert sweeps > 0 and stats["sparse_fallback_energies"] == 0
    expected = batch.smatrices(fsys, [0.7], params=params, solver="sparse")
    same_smatrices(fast, expected)


def test_the_kernels_gauss_jordan_names_the_column_without_a_pivot():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(6, 6)) + 1j * rng.normal(size=(6, 6))
    exact = matrix.copy()
    exact[:, 3] = 0  # no pivot at all in column 3
    assert kernel_inverse(exact)[0] == 4
    exact = matrix.copy()
    exact[:, 4] = 0  # the second column of a pair
    assert kernel_inverse(exact)[0] == 5
    assert kernel_inverse(np.zeros((1, 1)))[0] == 1
    # NaN is no pivot: the sweep marks the entry for the sparse solver.
    assert kernel_inverse(np.full((3, 3), np.nan))[0] == 1


def test_by_default_an_uncompiled_kernel_is_built_aside_while_numpy_solves(monkeypatch):
    monkeypatch.setenv("MESOSCOPIC_RGF_KERNEL", "auto")
    started = Counted(lambda: True)
    monkeypatch.setattr(_rgf_kernel, "ready", lambda: False)
    monkeypatch.setattr(_rgf_kernel, "build_in_background", started)
    sweeps = Counted(_rgf_kernel.sweep)
    monkeypatch.setattr(_rgf_kernel, "sweep", sweeps)
    fsys, params, energies = make_wire_in_field(meso, length=8, width=4)
    t = batch.transmission(fsys, energies, 1, 0, params=params, solver="rgf")
    assert sweeps.calls == 0 and started.calls >= 1
    monkeypatch.setattr(_rgf_kernel, "ready", lambda: True)  # the build has finished
    again = batch.transmission(fsys, energies, 1, 0, params=params, solver="rgf")
    assert sweeps.calls > 0
    np.testing.assert_allclose(again, t, rtol=0, atol=TOLERANCE)


def test_the_background_build_starts_once_and_not_beside_another(monkeypatch, tmp_path):
    launched = []
    monkeypatch.setattr(_rgf_kernel.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(_rgf_kernel.subprocess, "Popen", lambda args, **kw: launched.append(args))
    monkeypatch.setattr(_rgf_kernel, "_BUILD_STARTED", False)
    assert _rgf_kernel.build_in_background()
    assert not _rgf_kernel.build_in_background()  # once per process
    assert len(launched) == 1 and launched[0][1:3] == ["-m", "mesoscopic.solvers._rgf_kernel"]
    marker = launched[0][3]
    monkeypatch.setattr(_rgf_kernel, "_BUILD_STARTED", False)  # another process, same time
    assert not _rgf_kernel.build_in_background()
    old = time.time() - 2 * _rgf_kernel._STALE_BUILD  # a build that died long ago
    os.utime(marker, (old, old))
    monkeypatch.setattr(_rgf_kernel, "_BUILD_STARTED", False)
    assert _rgf_kernel.build_in_background() and len(launched) == 2


def test_the_build_process_compiles_and_removes_its_marker(tmp_path):
    marker = tmp_path / "build"
    marker.write_text("1")
    subprocess.run(
        [sys.executable, "-m", "mesoscopic.solvers._rgf_kernel", str(marker)],
        check=True,
        timeout=300,
    )
    assert not marker.exists()
    assert _rgf_kernel.ready()


def test_more_threads_sweep_several_energies_from_both_ends(roads):
    fsys, params, energies = make_wire_in_field(meso, length=30, width=6)
    expected, _, _ = roads("numpy", 1, lambda: batch.smatrices(fsys, energies, params=params))
    fast, sweeps, joins = roads(
        "compiled", 2 * len(energies), lambda: batch.smatrices(fsys, energies, params=params)
    )
    assert joins == 1 and sweeps == 2 * len(energies)  # each energy's two halves
    same_smatrices(fast, expected)


def test_a_half_without_an_open_lead_is_not_swept_alone(roads):
    # One lead: the far half of a two-sided sweep would be a closed box, whose eigenvalues
    # make the join lose digits; the sweep from the lead's end keeps them.
    chain = -(np.eye(60, k=1) + np.eye(60, k=-1)) + np.diag(np.linspace(-0.3, 0.3, 60))
    lead = LeadData(np.zeros((1, 1)), -np.eye(1), np.array([0]), np.array([0]))
    problem = rgf.prepare(chain, [lead])
    for energy in (0.31, 1.2):
        fast, sweeps, joins = roads("compiled", 2, lambda e=energy: problem.smatrices([e])[0])
        assert sweeps == 1 and joins == 0
        expected = sparse.scattering_matrix(chain, [lead], energy)
        np.testing.assert_allclose(fast.data, expected.data, rtol=0, atol=1e-12)


def test_no_background_build_without_an_interpreter_to_start(monkeypatch, tmp_path):
    monkeypatch.setattr(_rgf_kernel.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(_rgf_kernel, "_BUILD_STARTED", False)
    monkeypatch.setattr(_rgf_kernel.sys, "executable", None)
    assert not _rgf_kernel.build_in_background()
    assert not list(tmp_path.iterdir())  # no marker left to stop other processes

    def refuse(*args, **kwargs):
        raise TypeError("not an executable")

    monkeypatch.setattr(_rgf_kernel.sys, "executable", "python-that-fails")
    monkeypatch.setattr(_rgf_kernel.subprocess, "Popen", refuse)
    monkeypatch.setattr(_rgf_kernel, "_BUILD_STARTED", False)
    assert not _rgf_kernel.build_in_background()
    assert not list(tmp_path.iterdir())
