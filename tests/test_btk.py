"""BTK normal-metal / superconductor junction: analytic formulas and the lattice model.

The lattice model is checked against the exact closed-form solution of the same chain
(:func:`mesoscopic.analytic.btk_chain_reflection`, derived by hand, no scattering solver),
which in turn reduces to the textbook BTK formulas as Delta / t -> 0.
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import analytic, batch
from mesoscopic.analytic import btk

BARRIERS = (0.0, 0.5, 1.0, 1.5)
ENERGIES = (0.2, 0.81, 1.21, 2.0)  # E / Delta
FERMI_ENERGY = 1.0  # E_F / t


def lattice_reflection(fsys, ratio, z, x, *, hopping=1.0, exchange=0.0):
    """(A, B) of the lattice model and of the exact chain formula at E = x Delta."""
    delta = ratio * hopping
    e_f = FERMI_ENERGY * hopping
    barrier = btk.btk_barrier_height(z, e_f, hopping=hopping)
    params = {"fermi_energy": e_f, "delta": delta, "barrier": barrier, "exchange": exchange}
    s = meso.smatrix(fsys, x * delta, params=params)
    assert s.num_propagating((0, 0)) == 1
    computed = (s.transmission((0, 1), (0, 0)), s.transmission((0, 0), (0, 0)))
    exact = btk.btk_chain_reflection(
        x * delta, delta=delta, fermi_energy=e_f, barrier=barrier, hopping=hopping,
        exchange=exchange,
    )  # fmt: skip
    return computed, exact


# --- analytic --------------------------------------------------------------------------------


def test_textbook_limits():
    a, b = analytic.btk_reflection([0.0, 0.5, 0.99], 1.0, 0.0)
    assert np.allclose(a, 1.0) and np.allclose(b, 0.0)
    # Tunnel limit inside the gap and the normal state far above it.
    assert analytic.btk_conductance(0.3, 1.0, 50.0) < 1e-6
    g = analytic.btk_conductance(1e6, 1.0, [0.0, 0.5, 1.0, 1.5])
    assert np.allclose(g, 1 / (1 + np.array([0.0, 0.5, 1.0, 1.5]) ** 2), atol=1e-10)
    # Continuous through E = Delta, symmetric in E.
    for z in BARRIERS:
        below, above = analytic.btk_reflection([1 - 1e-9, 1 + 1e-9], 1.0, z)[0]
        assert abs(below - above) < 1e-3
    assert np.allclose(
        analytic.btk_conductance(-0.7, 1.0, 0.8), analytic.btk_conductance(0.7, 1.0, 0.8)
    )


def test_textbook_conservation_above_gap():
    """A + B + transmitted quasiparticles = 1, with the transmitted part from BTK's C + D."""
    x = np.linspace(1.01, 5, 50)
    for z in BARRIERS:
        a, b = analytic.btk_reflection(x, 1.0, z)
        assert np.all((a >= 0) & (b >= 0) & (a + b <= 1 + 1e-14))
        # Above the gap with Z = 0 there is no normal reflection.
        if z == 0:
            assert np.all(b == 0)


def test_polarized_current():
    e = np.array([0.3, 0.9, 1.5, 3.0])
    z = 0.7
    unpolarized = analytic.btk_conductance(e, 1.0, z)
    polarized = analytic.btk_conductance(e, 1.0, z, polarization=1.0)
    assert np.all(polarized[:2] == 0)  # no Andreev reflection of a fully polarized current
    mixed = analytic.btk_conductance(e, 1.0, z, polarization=0.4)
    assert np.allclose(mixed, 0.6 * unpolarized + 0.4 * polarized)
    with pytest.raises(ValueError, match="polarization must lie in"):
        analytic.btk_conductance(0.5, 1.0, 0.0, polarization=1.2)


@pytest.mark.parametrize("z", BARRIERS)
def test_chain_reduces_to_textbook(z):
    """The exact chain solution tends to BTK as Delta / t -> 0, the error linear in Delta/t."""
    errors = []
    for ratio in (1e-4, 1e-6):
        u = btk.btk_barrier_height(z, FERMI_ENERGY)
        for x in ENERGIES:
            chain = btk.btk_chain_reflection(
                x * ratio, delta=ratio, fermi_energy=FERMI_ENERGY, barrier=u
            )
            textbook = analytic.btk_reflection(x, 1.0, z)
            errors.append(max(abs(chain[0] - textbook[0]), abs(chain[1] - textbook[1])))
    coarse, fine = max(errors[:4]), max(errors[4:])
    assert fine < 1e-5
    assert fine <= 1.5e-2 * coarse + 1e-13


def chain_by_matching(energy, delta, barrier, *, digits=50):
    """(A, B) of the BTK chain (t = 1) by wave matching at site 0, in ``digits`` digits.

    Independent of the closed form: each side's Bloch factors are the roots of
    ``lambda + 1 / lambda = c`` with ``c`` from the block's dispersion, the branch picked by
    the retarded rule (at ``E + i eta`` the waves leaving the junction decay), and the four
    amplitudes (r_e, r_h, t_1, t_2) solve continuity at site 0 and its Schrodinger equation.
    """
    mp = pytest.importorskip("mpmath")
    with mp.workdps(digits):
        e, gap, u = mp.mpf(energy), mp.mpf(delta), mp.mpf(barrier)
        xi0 = 2 - mp.mpf(FERMI_ENERGY)
        eta = mp.mpf(10) ** (-digits // 2)

        def factor(c, *, leaving_right):
            def roots(z):
                root = mp.sqrt(c(z) ** 2 - 4)
                return ((c(z) + root) / 2, (c(z) - root) / 2)

            retarded = sorted(roots(e + 1j * eta), key=abs)[0 if leaving_right else 1]
            return min(roots(e), key=lambda lam: abs(lam - retarded))

        def c_electron(z):
            return xi0 - z

        def c_hole(z):
            return xi0 + z

        lam_re = factor(c_electron, leaving_right=False)  # reflected electron
        lam_rh = factor(c_hole, leaving_right=False)  # reflected hole
        quasi = []
        for sign in (1, -1):
            lam = factor(
                lambda z, s=sign: xi0 + s * mp.sqrt(z * z - gap * gap), leaving_right=True
            )
            quasi.append((lam, (gap, lam + 1 / lam - (xi0 - e))))  # (lambda, (u, v))
        (l1, x1), (l2, x2) = quasi
        onsite_e, onsite_h = xi0 + u - e, -xi0 - u - e
        m = mp.matrix(
            [
                [1, 0, -x1[0], -x2[0]],
                [0, 1, -x1[1], -x2[1]],
                [onsite_e - 1 / lam_re, 0, -x1[0] * l1, -x2[0] * l2],
                [0, onsite_h + 1 / lam_rh, x1[1] * l1, x2[1] * l2],
            ]
        )
        rhs = mp.matrix([-1, 0, -(onsite_e - lam_re), 0])  # incoming electron 1 / lam_re
        r_e, r_h = mp.lu_solve(m, rhs)[:2]
        speed_ratio = mp.sqrt(4 - c_hole(e) ** 2) / mp.sqrt(4 - c_electron(e) ** 2)
        return float(abs(r_h) ** 2 * speed_ratio), float(abs(r_e) ** 2)


@pytest.mark.parametrize("ratio", [1e-2, 1e-8])
def test_chain_formula_matches_high_precision_matching(ratio):
    """The closed form keeps full accuracy at tiny gaps: against 50-digit wave matching."""
    for z in BARRIERS:
        u = btk.btk_barrier_height(z, FERMI_ENERGY)
        for x in ENERGIES:
            exact = chain_by_matching(x * ratio, ratio, u)
            formula = btk.btk_chain_reflection(
                x * ratio, delta=ratio, fermi_energy=FERMI_ENERGY, barrier=u
            )
            assert formula == pytest.approx(exact, abs=1e-14)


def test_chain_conserves_probability_inside_gap():
    for z in BARRIERS:
        for ratio in (1e-2, 1e-8):
            u = btk.btk_barrier_height(z, FERMI_ENERGY)
            a, b = btk.btk_chain_reflection(
                0.5 * ratio, delta=ratio, fermi_energy=FERMI_ENERGY, barrier=u
            )
            assert abs(a + b - 1) < 1e-13


def test_half_metal_chain_tends_to_polarized_formula():
    for z in (0.0, 1.0):
        u = btk.btk_barrier_height(z, FERMI_ENERGY)
        a, b = btk.btk_chain_reflection(
            1.5e-8, delta=1e-8, fermi_energy=FERMI_ENERGY, barrier=u, exchange=1e6
        )
        assert a == 0.0
        expected = analytic.btk_conductance(1.5, 1.0, z, polarization=1.0)
        assert abs((1 - b) - expected) < 1e-5


def test_barrier_strength_round_trip_and_normal_state():
    u = btk.btk_barrier_height(1.3, FERMI_ENERGY, hopping=2.0)
    assert btk.btk_barrier_strength(u, FERMI_ENERGY, hopping=2.0) == pytest.approx(1.3)
    # The single-site barrier transmits 1 / (1 + Z^2) at the Fermi energy (normal state).
    t_chain = analytic.chain_impurity_transmission(FERMI_ENERGY - 2 * 2.0, u, hopping=2.0)
    assert float(t_chain) == pytest.approx(1 / (1 + 1.3**2), rel=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="fermi_energy must lie inside the band"):
        btk.btk_barrier_height(1.0, 5.0)
    with pytest.raises(ValueError, match="differ from delta"):
        btk.btk_chain_reflection(1e-3, delta=1e-3, fermi_energy=1.0, barrier=0.0)
    with pytest.raises(ValueError, match="must be in the band"):
        btk.btk_chain_reflection(2.0, delta=1e-3, fermi_energy=1.0, barrier=0.0)
    with pytest.raises(ValueError, match="delta"):
        analytic.btk_reflection(0.1, -1.0, 0.0)


# --- lattice model -----------------------------------------------------------------------------


def test_model_matches_exact_chain_at_moderate_gap():
    fsys = meso.models.btk_junction()
    for z in BARRIERS:
        for x in ENERGIES:
            computed, exact = lattice_reflection(fsys, 1e-2, z, x)
            assert computed == pytest.approx(exact, abs=1e-8)


@pytest.mark.parametrize("ratio", [1e-2, 1e-8])
def test_model_matches_exact_chain_on_the_grid(ratio):
    """A and B to 1e-10 for every Z and E / Delta of the grid, at Delta / t = 1e-2 and 1e-8.

    At 1e-8 the electron- and hole-like solutions of the superconducting lead are 1e-8
    apart in k: in double precision alone their mixture (and the energy, rounded in
    ``h - E``) is off by eps t / Delta, 3e-8 in A and B; the lead modes refine them in
    extended precision. The exact chain formula is itself accurate to rounding (checked
    against a 50-digit evaluation when it was written). Both solvers: sparse and RGF.
    """
    fsys = meso.models.btk_junction()
    worst = 0.0
    for z in BARRIERS:
        barrier = btk.btk_barrier_height(z, FERMI_ENERGY)
        params = {"fermi_energy": FERMI_ENERGY, "delta": ratio, "barrier": barrier}
        energies = np.array(ENERGIES) * ratio
        stats: dict = {}
        by_rgf = batch.smatrices(fsys, energies, params=params, solver="rgf", stats=stats)
        assert stats["solver"] == "rgf" and stats["sparse_fallback_energies"] == 0
        for energy, s_rgf in zip(energies, by_rgf, strict=True):
            s = meso.smatrix(fsys, energy, params=params)
            exact = btk.btk_chain_reflection(
                energy, delta=ratio, fermi_energy=FERMI_ENERGY, barrier=barrier
            )
            for result in (s, s_rgf):
                computed = (
                    result.transmission((0, 1), (0, 0)),
                    result.transmission((0, 0), (0, 0)),
                )
                worst = max(worst, *np.abs(np.subtract(computed, exact)))
    assert worst < 1e-10


def test_model_in_atomic_units():
    """The junction of the issue: t ~ 1.4e3 Hartree, Delta ~ 9.2e-6 Hartree (6.6e-9 t)."""
    bohr_nm = 0.0529177210903
    hopping = 1 / (2 * (0.001 / bohr_nm) ** 2)
    ratio = 0.25 / 27211.386245988 / hopping
    fsys = meso.models.btk_junction(hopping=hopping)
    for z, x in ((1.5, 0.81), (0.0, 1.21), (1.0, 0.81)):
        computed, exact = lattice_reflection(fsys, ratio, z, x, hopping=hopping)
        assert computed == pytest.approx(exact, abs=1e-10)


def test_model_conductance_plateau_and_polarization():
    fsys = meso.models.btk_junction()
    ratio = 1e-2
    (a, b), (a_exact, b_exact) = lattice_reflection(fsys, ratio, 0.0, 0.5)
    # The Andreev plateau, up to lattice corrections of order (Delta / E_F)^2.
    assert 1 - b + a == pytest.approx(1 - b_exact + a_exact, abs=1e-10)
    assert 1 - b + a == pytest.approx(2.0, abs=1e-3)
    # Half metal: the hole band lies above the Fermi level, no Andreev reflection.
    (a, b), exact = lattice_reflection(fsys, ratio, 1.0, 1.5, exchange=3.0)
    assert a == pytest.approx(0.0, abs=1e-12)
    assert b == pytest.approx(exact[1], abs=1e-8)
