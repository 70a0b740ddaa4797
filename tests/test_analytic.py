"""Closed-form transport results checked against independent calculations.

Each formula is compared with a different method written here: numerical
integration of the Schrödinger equation, site-by-site transfer matrices, lattice
Green's functions, rate (master) equations, numerical quadrature and numerical
energy derivatives of scattering matrices.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad, solve_ivp
from scipy.optimize import brentq, minimize_scalar

from mesoscopic import analytic, constants
from mesoscopic.analytic import (
    breit_wigner_transmission,
    cavity_density_of_states,
    cavity_reflection_amplitude,
    chain_barrier_transmission,
    chain_impurity_transmission,
    charge_relaxation_resistance,
    contact_resistance,
    delta_barrier_transmission,
    electrochemical_capacitance,
    fabry_perot_average_transmission,
    fabry_perot_finesse,
    fabry_perot_peak_transmission,
    fabry_perot_transmission,
    four_terminal_resistance,
    hard_wall_conductance,
    hard_wall_open_channels,
    hard_wall_subband_energies,
    luttinger_ac_conductance,
    luttinger_bulk_conductance,
    luttinger_contact_reflection,
    luttinger_wire_conductance,
    metallic_dot_conductance,
    quantum_hall_conductance,
    rectangular_barrier_transmission,
    saddle_point_conductance,
    saddle_point_transmission,
    sequential_tunneling_conductance,
    two_terminal_resistance,
    wigner_smith_dos,
)

GAAS = 0.067
# hbar^2 / (2 m_e) in meV nm^2, computed here from SI constants independently of the package.
HBAR2_2ME = sc.hbar**2 / (2 * sc.m_e) / (1e-3 * sc.e) * 1e18

probabilities = st.floats(0.0, 1.0, allow_nan=False)
open_probabilities = st.floats(1e-6, 1.0, allow_nan=False)


def test_public_api_is_exported():
    for name in analytic.__all__:
        assert callable(getattr(analytic, name))
    assert len(set(analytic.__all__)) == len(analytic.__all__)


# --------------------------------------------------------------------------------------
# Hard-wall strip
# --------------------------------------------------------------------------------------


def test_subband_energies_match_si_formula():
    width_nm = 80.0
    energies = hard_wall_subband_energies(width_nm, num_subbands=4, effective_mass=GAAS)
    n = np.arange(1, 5)
    expected_joule = (sc.hbar * n * np.pi / (width_nm * 1e-9)) ** 2 / (2 * GAAS * sc.m_e)
    np.testing.assert_allclose(energies, expected_joule / (1e-3 * sc.e), rtol=1e-12)
    assert hard_wall_subband_energies([50.0, 100.0], num_subbands=3).shape == (2, 3)


def test_open_channels_exactly_at_threshold_is_closed():
    energies = hard_wall_subband_energies(123.4, num_subbands=40)
    count_at = hard_wall_open_channels(energies, 123.4)
    np.testing.assert_array_equal(count_at, np.arange(40))
    just_above = hard_wall_open_channels(np.nextafter(energies, np.inf), 123.4)
    np.testing.assert_array_equal(just_above, np.arange(1, 41))


@settings(max_examples=60, deadline=None)
@given(
    energy=st.floats(-5.0, 200.0, allow_nan=False),
    width=st.floats(5.0, 500.0, allow_nan=False),
)
def test_open_channels_equals_brute_force_count(energy, width):
    thresholds = hard_wall_subband_energies(width, num_subbands=400)
    assert thresholds[-1] > energy  # enough subbands for a brute-force count
    assert int(hard_wall_open_channels(energy, width)) == int(np.sum(thresholds < energy))


def test_hard_wall_conductance_is_staircase():
    e1 = float(hard_wall_subband_energies(100.0, num_subbands=1)[0])
    energies = e1 * np.array([0.5, 2.0, 5.0, 10.0, 17.0])
    np.testing.assert_array_equal(
        hard_wall_conductance(energies, 100.0, spin_degeneracy=2), [0, 2, 4, 6, 8]
    )
    np.testing.assert_array_equal(
        hard_wall_conductance(energies, 100.0, spin_degeneracy=1), [0, 1, 2, 3, 4]
    )


def test_waveguide_bad_input():
    with pytest.raises(ValueError, match=r"width must be > 0, got .*0\.0"):
        hard_wall_open_channels(1.0, 0.0)
    with pytest.raises(ValueError, match="num_subbands must be a positive integer, got 0"):
        hard_wall_subband_energies(10.0, num_subbands=0)
    with pytest.raises(TypeError, match="num_subbands must be a positive integer"):
        hard_wall_subband_energies(10.0, num_subbands=2.5)
    with pytest.raises(ValueError, match="effective_mass must be > 0"):
        hard_wall_subband_energies(10.0, num_subbands=2, effective_mass=-1.0)
    with pytest.raises(ValueError, match=r"spin_degeneracy must be 1 .* or 2 .*got 3"):
        hard_wall_conductance(1.0, 100.0, spin_degeneracy=3)
    with pytest.raises(TypeError, match="energy must be real"):
        hard_wall_open_channels(1.0 + 1j, 100.0)


# --------------------------------------------------------------------------------------
# Continuum barriers: numerical integration of the Schrödinger equation
# --------------------------------------------------------------------------------------


def numerical_rectangular_transmission(energy, height, width, mass=GAAS):
    """Integrate psi'' = (V - E)/c psi through the barrier from the outgoing wave back."""
    c = HBAR2_2ME / mass
    k = np.sqrt(energy / c)

    def rhs(_x, y):
        return [y[1], (height - energy) / c * y[0]]

    psi_out = np.exp(1j * k * width)
    sol = solve_ivp(
        rhs, (width, 0.0), [psi_out, 1j * k * psi_out], rtol=1e-11, atol=1e-13, method="DOP853"
    )
    psi0, dpsi0 = sol.y[0, -1], sol.y[1, -1]
    incident = 0.5 * (psi0 + dpsi0 / (1j * k))
    return 1.0 / abs(incident) ** 2


@pytest.mark.parametrize(
    ("energy", "height", "width"),
    [
        (2.0, 10.0, 8.0),  # tunnelling
        (9.9, 10.0, 20.0),
        (10.0, 10.0, 20.0),  # E = V0 exactly
        (10.1, 10.0, 20.0),
        (25.0, 10.0, 30.0),  # over-barrier oscillations
        (3.0, -20.0, 15.0),  # square well
    ],
)
def test_rectangular_barrier_matches_numerical_integration(energy, height, width):
    exact = float(rectangular_barrier_transmission(energy, height, width))
    numerical = numerical_rectangular_transmission(energy, height, width)
    assert exact == pytest.approx(numerical, rel=1e-7)


def test_rectangular_barrier_is_smooth_through_e_equals_v0():
    v0, a = 10.0, 20.0
    at = float(rectangular_barrier_transmission(v0, v0, a))
    c = HBAR2_2ME / GAAS
    assert at == pytest.approx(1.0 / (1.0 + v0 * a**2 / (4 * c)), rel=1e-14)
    around = rectangular_barrier_transmission(v0 + np.array([-1e-9, 1e-9]), v0, a)
    np.testing.assert_allclose(around, at, rtol=1e-8)
    assert np.all(np.isfinite(around))


def test_rectangular_barrier_resonances_are_perfect():
    v0, a = 10.0, 20.0
    c = HBAR2_2ME / GAAS
    n = np.arange(1, 4)
    energies = v0 + c * (n * np.pi / a) ** 2  # q a = n pi
    np.testing.assert_allclose(rectangular_barrier_transmission(energies, v0, a), 1.0, atol=1e-13)


def test_deep_tunnelling_is_finite_and_matches_wkb_asymptote():
    v0, energy = 100.0, 40.0
    c = HBAR2_2ME / GAAS
    kappa = np.sqrt((v0 - energy) / c)
    widths = np.array([15.0, 19.99 / kappa, 20.01 / kappa, 30.0 / kappa, 300.0 / kappa])
    t = rectangular_barrier_transmission(energy, v0, widths)
    # For kappa a >> 1, T -> 16 E (V0 - E) / V0^2 exp(-2 kappa a) (1 + O(exp(-2 kappa a))).
    asymptote = 16 * energy * (v0 - energy) / v0**2 * np.exp(-2 * kappa * widths[1:])
    np.testing.assert_allclose(t[1:], asymptote, rtol=1e-12)
    assert np.all(t > 0)
    numerical = numerical_rectangular_transmission(energy, v0, widths[0])
    assert t[0] == pytest.approx(numerical, rel=1e-6)


def test_delta_barrier_is_limit_of_narrow_rectangle():
    alpha = 40.0  # meV nm
    energies = np.array([0.5, 3.0, 12.0, 50.0])
    narrow = 1e-5
    rect = rectangular_barrier_transmission(energies, alpha / narrow, narrow)
    np.testing.assert_allclose(delta_barrier_transmission(energies, alpha), rect, rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    energy=st.floats(-10.0, 100.0, allow_nan=False),
    alpha=st.floats(-200.0, 200.0, allow_nan=False),
    height=st.floats(-50.0, 200.0, allow_nan=False),
    width=st.floats(0.0, 200.0, allow_nan=False),
)
def test_barrier_transmissions_are_probabilities(energy, alpha, height, width):
    td = float(delta_barrier_transmission(energy, alpha))
    tr = float(rectangular_barrier_transmission(energy, height, width))
    assert 0.0 <= td <= 1.0
    assert 0.0 <= tr <= 1.0
    assert td == float(delta_barrier_transmission(energy, -alpha))
    if energy <= 0:
        assert td == tr == 0.0


def test_barrier_bad_input():
    with pytest.raises(ValueError, match=r"width must be >= 0, got .*-1\.0"):
        rectangular_barrier_transmission(1.0, 2.0, -1.0)
    with pytest.raises(ValueError, match="height must be finite"):
        rectangular_barrier_transmission(1.0, np.nan, 1.0)
    with pytest.raises(TypeError, match="strength must be a real number"):
        delta_barrier_transmission(1.0, "strong")
    with pytest.raises(ValueError, match=r"effective_mass must be > 0, got .*0\.0"):
        delta_barrier_transmission(1.0, 1.0, effective_mass=0.0)


# --------------------------------------------------------------------------------------
# Tight-binding chain: site-by-site transfer matrices and lattice Green's functions
# --------------------------------------------------------------------------------------


def transfer_matrix_transmission(energy, onsite, t=1.0):
    """Propagate psi backwards site by site from the outgoing wave and read off T."""
    k = np.arccos(-energy / (2 * t))
    length = len(onsite)
    psi_next, psi = np.exp(1j * k * (length + 1)), np.exp(1j * k * length)
    for j in range(length, 0, -1):  # psi_{j-1} = ((V_j - E)/t) psi_j - psi_{j+1}
        psi_next, psi = psi, (onsite[j - 1] - energy) / t * psi - psi_next
    psi1, psi0 = psi_next, psi
    incident = (psi1 - psi0 * np.exp(-1j * k)) / (2j * np.sin(k))
    return 1.0 / abs(incident) ** 2


def green_function_transmission(energy, onsite, t=1.0):
    """T = Gamma_L Gamma_R |G_{L1}|^2 with exact semi-infinite-chain self-energies."""
    k = np.arccos(-energy / (2 * t))
    length = len(onsite)
    hamiltonian = np.diag(np.asarray(onsite, dtype=complex))
    hamiltonian -= t * (np.eye(length, k=1) + np.eye(length, k=-1))
    sigma = -t * np.exp(1j * k)
    hamiltonian[0, 0] += sigma
    hamiltonian[-1, -1] += sigma
    green = np.linalg.inv(energy * np.eye(length) - hamiltonian)
    gamma = 2 * t * np.sin(k)
    return gamma**2 * abs(green[-1, 0]) ** 2


@pytest.mark.parametrize(
    ("energy", "height", "length"),
    [
        (0.0, 3.0, 5),  # evanescent in the barrier
        (-1.5, 2.5, 12),
        (1.0, 0.5, 7),  # inside the barrier's band
        (1.9, 3.0, 40),  # barrier band edge region
        (-0.3, -1.0, 9),  # well
        (0.7, 4.5, 60),  # long evanescent barrier
    ],
)
def test_chain_barrier_matches_transfer_matrix_and_green_function(energy, height, length):
    exact = float(chain_barrier_transmission(energy, height, length))
    onsite = np.full(length, height)
    assert exact == pytest.approx(transfer_matrix_transmission(energy, onsite), rel=1e-9)
    assert exact == pytest.approx(green_function_transmission(energy, onsite), rel=1e-7)


@settings(max_examples=50, deadline=None)
@given(
    energy=st.floats(-1.99, 1.99, allow_nan=False),
    height=st.floats(-4.0, 4.0, allow_nan=False),
    length=st.integers(0, 25),
    hopping=st.floats(0.5, 3.0, allow_nan=False),
)
def test_chain_barrier_property(energy, height, length, hopping):
    e, v = energy * hopping, height * hopping
    exact = float(chain_barrier_transmission(e, v, length, hopping=hopping))
    assert 0.0 <= exact <= 1.0
    numerical = transfer_matrix_transmission(e, np.full(length, v), t=hopping)
    assert exact == pytest.approx(numerical, rel=1e-7, abs=1e-14)


def test_single_impurity_formula_and_length_one_barrier():
    energies = np.linspace(-1.95, 1.95, 13)
    eps = 0.8
    k = np.arccos(-energies / 2)
    expected = 1.0 / (1.0 + (eps / (2 * np.sin(k))) ** 2)
    np.testing.assert_allclose(chain_impurity_transmission(energies, eps), expected, rtol=1e-12)
    np.testing.assert_allclose(chain_barrier_transmission(energies, eps, 1), expected, rtol=1e-12)
    numerical = [green_function_transmission(e, [eps]) for e in energies]
    np.testing.assert_allclose(expected, numerical, rtol=1e-10)


def test_chain_barrier_resonances_and_trivial_cases():
    length, v = 6, 0.7
    n = np.arange(1, length)
    energies = v - 2 * np.cos(n * np.pi / length)  # sin(L theta) = 0
    inside = np.abs(energies) < 2
    np.testing.assert_allclose(
        chain_barrier_transmission(energies[inside], v, length), 1.0, atol=1e-12
    )
    np.testing.assert_array_equal(chain_barrier_transmission([0.3, -1.2], 2.0, 0), [1.0, 1.0])
    np.testing.assert_array_equal(chain_barrier_transmission([0.3, -1.2], 0.0, 9), [1.0, 1.0])


def test_chain_outside_lead_band_is_zero():
    energies = np.array([-3.0, -2.0, 2.0, 2.5])
    np.testing.assert_array_equal(chain_barrier_transmission(energies, 1.0, 4), 0.0)
    np.testing.assert_array_equal(chain_impurity_transmission(energies, 1.0), 0.0)
    np.testing.assert_array_equal(chain_impurity_transmission(energies, 0.0), 0.0)


def test_chain_bad_input():
    with pytest.raises(ValueError, match="length must be a non-negative integer, got -1"):
        chain_barrier_transmission(0.0, 1.0, -1)
    with pytest.raises(TypeError, match="length must be a non-negative integer"):
        chain_barrier_transmission(0.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="hopping must be > 0"):
        chain_impurity_transmission(0.0, 1.0, hopping=-1.0)


# --------------------------------------------------------------------------------------
# Fabry-Pérot
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("t1", "t2"), [(0.5, 0.5), (0.1, 0.7), (0.02, 0.9), (1.0, 0.3)])
def test_fabry_perot_phase_average_by_quadrature(t1, t2):
    average, _ = quad(lambda phi: float(fabry_perot_transmission(phi, t1, t2)), 0, 2 * np.pi)
    expected = float(fabry_perot_average_transmission(t1, t2))
    assert average / (2 * np.pi) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(t1=open_probabilities, t2=open_probabilities)
def test_phase_averaged_scatterers_add_like_series_resistors(t1, t2):
    averaged = four_terminal_resistance(
        fabry_perot_average_transmission(t1, t2), spin_degeneracy=2
    )
    parts = four_terminal_resistance([t1, t2], spin_degeneracy=2).sum()
    assert float(averaged) == pytest.approx(float(parts), rel=1e-9, abs=1e-15)


@settings(max_examples=50, deadline=None)
@given(phase=st.floats(-20.0, 20.0, allow_nan=False), t1=probabilities, t2=probabilities)
def test_fabry_perot_bounds(phase, t1, t2):
    value = float(fabry_perot_transmission(phase, t1, t2))
    peak = float(fabry_perot_peak_transmission(t1, t2))
    assert 0.0 <= value <= peak * (1 + 1e-14)
    assert peak <= 1.0


def test_fabry_perot_from_two_delta_barriers():
    """Compose two delta-barrier S-matrices numerically and compare with T_eff(phi)."""
    c = HBAR2_2ME / GAAS
    alpha, separation = 30.0, 60.0
    for energy in [0.8, 2.3, 5.1, 11.0]:
        k = np.sqrt(energy / c)
        u = alpha / c
        r = u / (2j * k - u)  # psi'(0+) - psi'(0-) = (alpha / c) psi(0)
        t = 2j * k / (2j * k - u)

        def plane_wave_transfer(position, r=r, t=t, k=k):
            # (A, B) of A e^{ikx} + B e^{-ikx} on the left -> right, for a delta at position.
            shift = np.diag([np.exp(1j * k * position), np.exp(-1j * k * position)])
            # Symmetric scatterer: B_L = r A_L + t B_R and A_R = t A_L + r B_R.
            local = np.array([[t - r * r / t, r / t], [-r / t, 1 / t]])
            return np.linalg.inv(shift) @ local @ shift

        total = plane_wave_transfer(separation) @ plane_wave_transfer(0.0)
        numerical = abs(1 / total[1, 1]) ** 2
        single = abs(t) ** 2
        assert single == pytest.approx(float(delta_barrier_transmission(energy, alpha)), rel=1e-13)
        phase = 2 * k * separation + 2 * np.angle(r)
        assert float(fabry_perot_transmission(phase, single, single)) == pytest.approx(
            numerical, rel=1e-10
        )


def test_fabry_perot_special_cases():
    assert float(fabry_perot_transmission(1.3, 0.0, 0.0)) == 0.0
    np.testing.assert_allclose(fabry_perot_transmission(np.linspace(0, 6, 7), 1.0, 0.37), 0.37)
    np.testing.assert_allclose(fabry_perot_peak_transmission([0.01, 0.3], [0.01, 0.3]), 1.0)
    assert float(fabry_perot_average_transmission(0.0, 0.0)) == 0.0
    assert float(fabry_perot_finesse(0.0, 0.0)) == np.inf
    assert float(fabry_perot_finesse(1.0, 0.5)) == 0.0


def test_finesse_gives_half_width():
    t1, t2 = 0.004, 0.006
    finesse = float(fabry_perot_finesse(t1, t2))
    ratio = fabry_perot_transmission(np.pi / finesse, t1, t2) / fabry_perot_peak_transmission(
        t1, t2
    )
    assert float(ratio) == pytest.approx(0.5, abs=1e-4)


def test_fabry_perot_bad_input():
    with pytest.raises(ValueError, match=r"t1 must lie in \[0, 1\] \(a probability\), got 1\.2"):
        fabry_perot_transmission(0.0, 1.2, 0.5)
    with pytest.raises(ValueError, match="t2 must lie in"):
        fabry_perot_average_transmission(0.5, -0.1)


# --------------------------------------------------------------------------------------
# Saddle-point QPC
# --------------------------------------------------------------------------------------

SADDLE = {"barrier_height": 0.3, "hbar_omega_x": 0.05, "hbar_omega_y": 1.0}


def test_qpc_integer_plateaus_for_steep_confinement():
    plateau_energies = SADDLE["barrier_height"] + np.arange(1, 6) * SADDLE["hbar_omega_y"]
    g = saddle_point_conductance(plateau_energies, spin_degeneracy=2, **SADDLE)
    np.testing.assert_allclose(g, 2 * np.arange(1, 6), atol=1e-12)
    total = saddle_point_conductance(plateau_energies, spin_degeneracy=1, **SADDLE)
    np.testing.assert_allclose(total, np.arange(1, 6), atol=1e-12)


def test_qpc_each_mode_is_half_open_at_its_barrier_top():
    n = np.arange(6)
    tops = SADDLE["barrier_height"] + SADDLE["hbar_omega_y"] * (n + 0.5)
    modes = saddle_point_transmission(tops, num_modes=6, **SADDLE)
    np.testing.assert_allclose(np.diag(modes), 0.5, atol=1e-13)


def test_qpc_zeeman_half_plateaus():
    zeeman = 0.5 * SADDLE["hbar_omega_y"]
    # Thresholds of the two species: V0 + (n + 1/2) hbar w_y -+ E_z/2; midpoints between them.
    energies = SADDLE["barrier_height"] + 0.5 * np.arange(1, 9) * SADDLE["hbar_omega_y"]
    g = saddle_point_conductance(energies, zeeman_energy=zeeman, **SADDLE)
    np.testing.assert_allclose(g, np.arange(1, 9), atol=1e-12)
    without = saddle_point_conductance(energies, zeeman_energy=0.0, **SADDLE)
    np.testing.assert_allclose(
        without, saddle_point_conductance(energies, spin_degeneracy=2, **SADDLE), rtol=1e-15
    )
    flipped = saddle_point_conductance(energies, zeeman_energy=-zeeman, **SADDLE)
    np.testing.assert_array_equal(flipped, g)


def test_qpc_conductance_is_sum_of_modes_and_automatic_mode_count_is_exact():
    energies = np.linspace(-1.0, 6.0, 57)
    modes = saddle_point_transmission(energies, num_modes=40, **SADDLE)
    auto = saddle_point_conductance(energies, spin_degeneracy=1, **SADDLE)
    np.testing.assert_allclose(auto, modes.sum(axis=-1), rtol=1e-15, atol=1e-300)
    assert np.all(np.diff(auto) >= 0)
    zeeman = 0.2
    split = saddle_point_conductance(energies, zeeman_energy=zeeman, **SADDLE)
    shifted = saddle_point_transmission(energies + zeeman / 2, num_modes=40, **SADDLE).sum(-1)
    shifted += saddle_point_transmission(energies - zeeman / 2, num_modes=40, **SADDLE).sum(-1)
    np.testing.assert_allclose(split, shifted, rtol=1e-15)


def numerical_parabolic_barrier_transmission(eps, half_range=12.0):
    """Integrate -psi''/2 - x^2 psi/2 = eps psi and match WKB waves at x = -X and x = +X.

    With p(x) = sqrt(x^2 + 2 eps), the waves p^(-1/2) exp(+-i int p dx) carry unit flux and
    solve the equation up to corrections of order 1/X^4.
    """
    p = np.sqrt(half_range**2 + 2 * eps)
    dp = half_range / p  # dp/dx at x = +X; it is -dp at x = -X

    def rhs(x, y):
        return [y[1], -(x**2 + 2 * eps) * y[0]]

    start = p**-0.5
    sol = solve_ivp(
        rhs,
        (half_range, -half_range),
        [start, (1j * p - dp / (2 * p)) * start],
        rtol=1e-11,
        atol=1e-13,
        method="DOP853",
    )
    psi, dpsi = sol.y[0, -1], sol.y[1, -1]
    # At x = -X: psi = (A u_+ + B u_-) with u_+- = p^(-1/2), u_+-' = (+-i p + dp/(2p)) p^(-1/2).
    basis = p**-0.5 * np.array([[1.0, 1.0], [1j * p + dp / (2 * p), -1j * p + dp / (2 * p)]])
    incident, _reflected = np.linalg.solve(basis, [psi, dpsi])
    return 1.0 / abs(incident) ** 2


@pytest.mark.parametrize("eps", [-0.8, -0.25, 0.0, 0.3, 0.9])
def test_kemble_formula_against_numerical_parabolic_barrier(eps):
    """The 2 pi in T = 1/(1 + exp(-2 pi eps)), checked by integrating the wave equation."""
    hwx, hwy, v0 = 0.1, 1.0, 0.0
    energy = v0 + 0.5 * hwy + eps * hwx  # mode 0 at dimensionless energy eps
    exact = saddle_point_transmission(
        energy, barrier_height=v0, hbar_omega_x=hwx, hbar_omega_y=hwy, num_modes=1
    )[0]
    assert exact == pytest.approx(numerical_parabolic_barrier_transmission(eps), abs=1e-4)


def test_qpc_bad_input():
    with pytest.raises(ValueError, match="give exactly one of spin_degeneracy"):
        saddle_point_conductance(1.0, **SADDLE)
    with pytest.raises(ValueError, match="give exactly one of spin_degeneracy"):
        saddle_point_conductance(1.0, spin_degeneracy=2, zeeman_energy=0.1, **SADDLE)
    with pytest.raises(ValueError, match=r"hbar_omega_x must be > 0, got .*0\.0"):
        saddle_point_transmission(
            1.0, barrier_height=0.0, hbar_omega_x=0.0, hbar_omega_y=1.0, num_modes=2
        )
    with pytest.raises(ValueError, match="num_modes must be a positive integer, got 0"):
        saddle_point_transmission(1.0, num_modes=0, **SADDLE)
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        saddle_point_conductance(1.0, spin_degeneracy=0, **SADDLE)


# --------------------------------------------------------------------------------------
# Resistances
# --------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(t=st.floats(1e-8, 1.0, allow_nan=False), g_s=st.sampled_from([1, 2]))
def test_two_terminal_is_contact_plus_four_terminal(t, g_s):
    r2 = float(two_terminal_resistance(t, spin_degeneracy=g_s))
    rc = float(contact_resistance(1, spin_degeneracy=g_s))
    r4 = float(four_terminal_resistance(t, spin_degeneracy=g_s))
    assert r2 == pytest.approx(rc + r4, rel=1e-12)
    assert r4 >= 0.0


def test_contact_resistance_values():
    ohm = contact_resistance([1, 2, 4], spin_degeneracy=2) * constants.R_K
    np.testing.assert_allclose(ohm, sc.h / (2 * sc.e**2) / np.array([1, 2, 4]), rtol=1e-14)
    assert float(contact_resistance(3, spin_degeneracy=1)) == pytest.approx(1 / 3)
    # N perfect channels: the two-terminal resistance is all contact resistance.
    assert float(two_terminal_resistance(1.0, spin_degeneracy=2)) == float(
        contact_resistance(1, spin_degeneracy=2)
    )
    assert float(four_terminal_resistance(1.0, spin_degeneracy=1)) == 0.0
    assert float(two_terminal_resistance(0.0, spin_degeneracy=2)) == np.inf


def test_resistance_bad_input():
    with pytest.raises(ValueError, match=r"num_channels must be whole numbers >= 1, got 0\.0"):
        contact_resistance(0, spin_degeneracy=2)
    with pytest.raises(ValueError, match=r"num_channels must be whole numbers >= 1, got 1\.5"):
        contact_resistance(1.5, spin_degeneracy=2)
    with pytest.raises(ValueError, match=r"transmission must lie in \[0, 1\]"):
        two_terminal_resistance(1.5, spin_degeneracy=2)
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        four_terminal_resistance(0.5, spin_degeneracy=True)


# --------------------------------------------------------------------------------------
# Quantum Hall
# --------------------------------------------------------------------------------------


def minus_fermi_derivative(energy, kT):
    return 1.0 / (4 * kT * np.cosh(energy / (2 * kT)) ** 2)


@pytest.mark.parametrize(("kT", "gap"), [(0.05, 0.3), (0.2, 0.3), (1.0, -0.4), (0.3, 0.0)])
def test_quantum_hall_equals_landauer_integral_of_step(kT, gap):
    n = 3

    def integrand(energy):
        return (n + (energy > gap)) * minus_fermi_derivative(energy, kT)

    integral, _ = quad(integrand, -40 * kT, 40 * kT, points=[gap], epsabs=1e-13)
    g = float(quantum_hall_conductance(kT, num_channels=n, gap=gap))
    assert g == pytest.approx(integral, rel=1e-9)


def test_quantum_hall_limits():
    np.testing.assert_array_equal(
        quantum_hall_conductance(0.0, num_channels=[1, 2], gap=0.5), [1, 2]
    )
    assert float(quantum_hall_conductance(0.0, num_channels=1, gap=-0.5)) == 2.0
    assert float(quantum_hall_conductance(1e9, num_channels=4, gap=1.0)) == pytest.approx(4.5)
    # Deep on the plateau: no overflow, exact N.
    assert float(quantum_hall_conductance(1e-6, num_channels=2, gap=1.0)) == 2.0


def test_quantum_hall_bad_input():
    with pytest.raises(ValueError, match="kT must be >= 0"):
        quantum_hall_conductance(-0.1, num_channels=1, gap=1.0)
    with pytest.raises(ValueError, match=r"num_channels must be whole numbers >= 0, got -1\.0"):
        quantum_hall_conductance(0.1, num_channels=-1, gap=1.0)


# --------------------------------------------------------------------------------------
# Resonances and Coulomb blockade
# --------------------------------------------------------------------------------------


def test_breit_wigner_peak_width_and_area():
    gl, gr, eps = 0.3, 0.1, 1.5
    total = gl + gr
    peak = float(breit_wigner_transmission(eps, level=eps, gamma_left=gl, gamma_right=gr))
    assert peak == pytest.approx(4 * gl * gr / total**2, rel=1e-14)
    half = breit_wigner_transmission(eps + total / 2, level=eps, gamma_left=gl, gamma_right=gr)
    assert float(half) == pytest.approx(peak / 2, rel=1e-14)
    area, _ = quad(
        lambda e: float(breit_wigner_transmission(e, level=eps, gamma_left=gl, gamma_right=gr)),
        -np.inf,
        np.inf,
    )
    assert area == pytest.approx(2 * np.pi * gl * gr / total, rel=1e-8)
    assert float(breit_wigner_transmission(0.0, level=0.0, gamma_left=0.0, gamma_right=0.0)) == 0


def master_equation_current(bias, *, level, kT, gamma_left, gamma_right, degeneracy):
    """Stationary current (units e/hbar) of a level with `degeneracy` states, one electron max."""
    mu_left, mu_right = bias / 2, -bias / 2
    f_left = 1.0 / (np.exp((level - mu_left) / kT) + 1.0)
    f_right = 1.0 / (np.exp((level - mu_right) / kT) + 1.0)
    size = degeneracy + 1  # state 0: empty; states 1..d: one electron in spin state s
    rates = np.zeros((size, size))  # rates[to, from]
    for s in range(1, size):
        rates[s, 0] = gamma_left * f_left + gamma_right * f_right
        rates[0, s] = gamma_left * (1 - f_left) + gamma_right * (1 - f_right)
    generator = rates - np.diag(rates.sum(axis=0))
    system = np.vstack([generator, np.ones(size)])
    rhs = np.zeros(size + 1)
    rhs[-1] = 1.0
    prob = np.linalg.lstsq(system, rhs, rcond=None)[0]
    into_dot = sum(gamma_left * f_left * prob[0] for _ in range(degeneracy))
    out_of_dot = sum(gamma_left * (1 - f_left) * prob[s] for s in range(1, size))
    return into_dot - out_of_dot


@pytest.mark.parametrize("degeneracy", [1, 2])
@pytest.mark.parametrize("detuning", [-2.0, -0.4, 0.0, 0.35, 1.1, 3.0])
def test_sequential_tunneling_matches_master_equation(degeneracy, detuning):
    kT, gl, gr = 0.5, 0.013, 0.029
    step = 1e-5
    current = {
        sign: master_equation_current(
            sign * step,
            level=detuning,
            kT=kT,
            gamma_left=gl,
            gamma_right=gr,
            degeneracy=degeneracy,
        )
        for sign in (1, -1)
    }
    # The current comes out in units of e/hbar (broadenings are hbar * rates), so
    # G = (e^2/hbar) dI/d(eV) = (e^2/h) 2 pi dI/d(eV).
    numerical = 2 * np.pi * (current[1] - current[-1]) / (2 * step)
    g = sequential_tunneling_conductance(
        detuning, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=degeneracy
    )
    assert float(g) == pytest.approx(numerical, rel=1e-7)


def test_sequential_peak_is_thermal_average_of_breit_wigner():
    """Gamma << kT: the coherent Landauer integral of one spin species gives the same peak."""
    kT, gl, gr = 1.0, 2e-5, 6e-5
    for detuning in [0.0, 0.7, -1.9]:

        def integrand(energy, detuning=detuning):
            transmission = breit_wigner_transmission(
                energy, level=detuning, gamma_left=gl, gamma_right=gr
            )
            return float(transmission) * minus_fermi_derivative(energy, kT)

        integral, _ = quad(
            integrand, detuning - 1, detuning + 1, points=[detuning], limit=400, epsabs=0
        )
        # Beyond |E - eps| = 1 the Lorentzian holds a fraction ~Gamma/pi ~ 3e-5 of its weight.
        expected = integral
        g = sequential_tunneling_conductance(
            detuning, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=1
        )
        assert float(g) == pytest.approx(expected, rel=2e-4)


def test_coulomb_peak_height_scales_as_inverse_temperature_and_width_as_kt():
    gl, gr = 0.01, 0.02
    temperatures = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    heights = sequential_tunneling_conductance(
        0.0, kT=temperatures, gamma_left=gl, gamma_right=gr, spin_degeneracy=1
    )
    np.testing.assert_allclose(heights * temperatures, np.pi / 2 * gl * gr / (gl + gr), rtol=1e-14)
    for kT in temperatures:
        peak = float(
            sequential_tunneling_conductance(
                0.0, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=1
            )
        )

        def excess(x, kT=kT, peak=peak):
            g = sequential_tunneling_conductance(
                x, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=1
            )
            return float(g) - peak / 2

        half_width = brentq(excess, 0.0, 10 * kT, xtol=1e-14)
        assert 2 * half_width / kT == pytest.approx(3.5255, abs=1e-4)
        assert 2 * half_width / kT == pytest.approx(4 * np.log(1 + np.sqrt(2)), rel=1e-10)


def test_spin_degenerate_peak_shift_and_height():
    kT, gl, gr = 1.0, 0.01, 0.01

    def minus_g(x):
        return -float(
            sequential_tunneling_conductance(
                x, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=2
            )
        )

    best = minimize_scalar(minus_g, bracket=(-1.0, 0.0, 1.0), tol=1e-12)
    assert best.x == pytest.approx(0.5 * np.log(2) * kT, abs=1e-5)
    single = sequential_tunneling_conductance(
        0.0, kT=kT, gamma_left=gl, gamma_right=gr, spin_degeneracy=1
    )
    assert -best.fun / float(single) == pytest.approx(8 * (3 - 2 * np.sqrt(2)), rel=1e-9)


def orthodox_master_equation_conductance(detuning, *, kT, g_left, g_right, charging):
    """Linear conductance of a metallic dot from rate equations over several charge states."""
    # E(n) = charging (n - n_g)^2 with n_g chosen so that E(1) - E(0) = detuning.
    n_g = 0.5 - detuning / (2 * charging)
    states = np.arange(-3, 5)

    def rate(cost, conductance):
        return conductance * cost / np.expm1(cost / kT)

    def current(bias):
        size = len(states)
        rates = np.zeros((size, size))
        energy = charging * (states - n_g) ** 2
        for i in range(size - 1):
            add = energy[i + 1] - energy[i]
            for g, mu in ((g_left, bias / 2), (g_right, -bias / 2)):
                rates[i + 1, i] += rate(add - mu, g)
                rates[i, i + 1] += rate(-(add - mu), g)
        generator = rates - np.diag(rates.sum(axis=0))
        system = np.vstack([generator, np.ones(size)])
        rhs = np.zeros(size + 1)
        rhs[-1] = 1.0
        prob = np.linalg.lstsq(system, rhs, rcond=None)[0]
        total = 0.0
        for i in range(size - 1):
            add = energy[i + 1] - energy[i]
            total += rate(add - bias / 2, g_left) * prob[i]
            total -= rate(-(add - bias / 2), g_left) * prob[i + 1]
        return total

    step = 1e-4 * kT
    return (current(step) - current(-step)) / (2 * step)


@pytest.mark.parametrize("detuning", [-0.1, -0.03, 0.0, 0.012, 0.05])
def test_metallic_dot_peak_matches_orthodox_master_equation(detuning):
    kT, gl, gr, charging = 0.02, 0.3, 0.7, 1.0
    numerical = orthodox_master_equation_conductance(
        detuning, kT=kT, g_left=gl, g_right=gr, charging=charging
    )
    g = metallic_dot_conductance(detuning, kT=kT, conductance_left=gl, conductance_right=gr)
    assert float(g) == pytest.approx(numerical, rel=1e-7)


def test_metallic_peak_height_is_temperature_independent_and_width_is_4_355_kt():
    gl, gr = 2.0, 3.0
    temperatures = np.array([0.01, 0.1, 1.0])
    heights = metallic_dot_conductance(
        0.0, kT=temperatures, conductance_left=gl, conductance_right=gr
    )
    np.testing.assert_allclose(heights, gl * gr / (2 * (gl + gr)), rtol=1e-15)
    kT = 0.1
    half_width = brentq(
        lambda x: (
            float(metallic_dot_conductance(x, kT=kT, conductance_left=gl, conductance_right=gr))
            - heights[0] / 2
        ),
        0.0,
        10 * kT,
        xtol=1e-14,
    )
    assert 2 * half_width / kT == pytest.approx(4.3546, abs=1e-4)
    cold = metallic_dot_conductance(
        [-0.1, 0.0, 0.1], kT=0.0, conductance_left=gl, conductance_right=gr
    )
    np.testing.assert_array_equal(cold, [0.0, heights[0], 0.0])
    far = metallic_dot_conductance(1e4, kT=1.0, conductance_left=gl, conductance_right=gr)
    assert float(far) == 0.0


def test_resonance_bad_input():
    with pytest.raises(ValueError, match=r"kT must be > 0, got .*0\.0"):
        sequential_tunneling_conductance(
            0.0, kT=0.0, gamma_left=0.1, gamma_right=0.1, spin_degeneracy=1
        )
    with pytest.raises(ValueError, match="gamma_left \\+ gamma_right must be > 0"):
        sequential_tunneling_conductance(
            0.0, kT=1.0, gamma_left=0.0, gamma_right=0.0, spin_degeneracy=1
        )
    with pytest.raises(ValueError, match=r"gamma_right must be >= 0, got .*-0\.1"):
        breit_wigner_transmission(0.0, level=0.0, gamma_left=0.1, gamma_right=-0.1)
    with pytest.raises(ValueError, match="conductance_left \\+ conductance_right must be > 0"):
        metallic_dot_conductance(0.0, kT=1.0, conductance_left=0.0, conductance_right=0.0)


# --------------------------------------------------------------------------------------
# Mesoscopic capacitor
# --------------------------------------------------------------------------------------


def numerical_derivative(function, energy, step):
    return (function(energy + step) - function(energy - step)) / (2 * step)


def test_cavity_is_unitary_and_its_dos_matches_numerical_derivative():
    spacing = 0.7
    energies = np.linspace(-1.0, 1.0, 23)
    for transmission in [0.05, 0.4, 0.95, 1.0]:

        def r(e, transmission=transmission):
            return cavity_reflection_amplitude(e, transmission=transmission, level_spacing=spacing)

        np.testing.assert_allclose(np.abs(r(energies)), 1.0, rtol=1e-13)
        dr = numerical_derivative(r, energies, 1e-6 * spacing)
        numerical = (np.conj(r(energies)) * dr / (2j * np.pi)).real
        dos = cavity_density_of_states(energies, transmission=transmission, level_spacing=spacing)
        np.testing.assert_allclose(dos, numerical, rtol=1e-6)


@pytest.mark.parametrize("transmission", [0.02, 0.3, 1.0])
def test_cavity_dos_holds_one_state_per_level_spacing(transmission):
    spacing = 2.5
    states, _ = quad(
        lambda e: float(
            cavity_density_of_states(e, transmission=transmission, level_spacing=spacing)
        ),
        0.0,
        spacing,
        points=[0.0],
        limit=200,
    )
    assert states == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("transmission", [0.01, 0.2, 0.5, 0.8, 0.999])
def test_single_channel_charge_relaxation_resistance_is_universal(transmission):
    spacing = 1.0
    rng = np.random.default_rng(7)
    for energy in rng.uniform(-1.0, 1.0, size=5):

        def s(e, energy=energy):
            r = cavity_reflection_amplitude(e, transmission=transmission, level_spacing=spacing)
            return np.reshape(r, (1, 1))

        ds = numerical_derivative(s, energy, 1e-7)
        nu = wigner_smith_dos(s(energy), ds)
        assert float(nu[0]) > 0
        r_q = float(charge_relaxation_resistance(nu, spin_degeneracy=1))
        assert r_q == pytest.approx(0.5, rel=1e-12)
        assert r_q * constants.R_K == pytest.approx(sc.h / (2 * sc.e**2), rel=1e-9)


def test_two_channel_charge_relaxation_resistance_from_mixed_s_matrix():
    rng = np.random.default_rng(2024)
    unitary, _ = np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))
    transmissions, spacings = (0.3, 0.8), (1.0, 0.37)

    def s(e):
        reflections = [
            cavity_reflection_amplitude(e, transmission=t, level_spacing=d)
            for t, d in zip(transmissions, spacings, strict=True)
        ]
        return unitary @ np.diag(reflections) @ unitary.conj().T

    energy = 0.21
    nu = wigner_smith_dos(s(energy), numerical_derivative(s, energy, 1e-7))
    channel_dos = np.sort(
        [
            float(cavity_density_of_states(energy, transmission=t, level_spacing=d))
            for t, d in zip(transmissions, spacings, strict=True)
        ]
    )
    np.testing.assert_allclose(nu, channel_dos, rtol=1e-7)
    expected = np.sum(channel_dos**2) / (2 * np.sum(channel_dos) ** 2)
    r_q = float(charge_relaxation_resistance(nu, spin_degeneracy=1))
    assert r_q == pytest.approx(expected, rel=1e-7)
    assert 0.25 <= r_q <= 0.5
    # N identical channels: h / (2 N e^2); a spin-degenerate channel counts as two.
    assert float(charge_relaxation_resistance([0.4, 0.4, 0.4], spin_degeneracy=1)) == (
        pytest.approx(1 / 6)
    )
    assert float(charge_relaxation_resistance([0.4], spin_degeneracy=2)) == pytest.approx(0.25)


def test_electrochemical_capacitance_is_series_combination():
    nu, e_g = np.array([0.1, 1.0, 7.0]), 0.6
    c_mu = electrochemical_capacitance(nu, geometric_charging_energy=e_g)
    np.testing.assert_allclose(1 / c_mu, e_g + 1 / nu, rtol=1e-14)
    np.testing.assert_allclose(electrochemical_capacitance(nu, geometric_charging_energy=0.0), nu)


def test_capacitor_bad_input():
    with pytest.raises(ValueError, match="sum to zero"):
        charge_relaxation_resistance([1.0, -1.0], spin_degeneracy=1)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., N\) with N >= 1"):
        charge_relaxation_resistance(1.0, spin_degeneracy=1)
    with pytest.raises(ValueError, match="must have the same shape"):
        wigner_smith_dos(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match=r"s_matrix must have shape \(\.\.\., N, N\)"):
        wigner_smith_dos(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="transmission must be > 0"):
        cavity_density_of_states(0.0, transmission=0.0, level_spacing=1.0)
    with pytest.raises(ValueError, match="level_spacing must be > 0"):
        cavity_reflection_amplitude(0.0, transmission=0.5, level_spacing=0.0)


# --------------------------------------------------------------------------------------
# Luttinger liquid
# --------------------------------------------------------------------------------------


def numerical_plasmon_transmission(omega, profile, v_f=1.0):
    """Solve the charge wave equation d/dx((u/g) dphi/dx) + w^2/(u g) phi = 0 piecewise.

    `profile` lists (x_start, x_end, g) segments of the wire; leads with g = 1 on both sides.
    phi and (u/g) dphi/dx are continuous. Returns phi_transmitted(right end) /
    phi_incident(left end), the current transmission amplitude.
    """
    regions = [(1.0,)] + [(g,) for (_a, _b, g) in profile] + [(1.0,)]
    interfaces = [profile[0][0]] + [b for (_a, b, _g) in profile]

    def matching(x, g):
        kappa = omega * g / v_f  # u = v_F / g
        return np.array(
            [
                [np.exp(1j * kappa * x), np.exp(-1j * kappa * x)],
                [np.exp(1j * kappa * x) / g, -np.exp(-1j * kappa * x) / g],
            ]
        )

    total = np.eye(2, dtype=complex)
    for x, (g_before,), (g_after,) in zip(interfaces, regions[:-1], regions[1:], strict=True):
        total = np.linalg.solve(matching(x, g_after), matching(x, g_before)) @ total
    incoming = 1.0
    reflected = -total[1, 0] * incoming / total[1, 1]
    transmitted = total[0, 0] * incoming + total[0, 1] * reflected
    start, end = interfaces[0], interfaces[-1]
    return (
        transmitted
        * np.exp(1j * omega * end / v_f)
        / (incoming * np.exp(1j * omega * start / v_f))
    )


@pytest.mark.parametrize("g", [0.25, 0.6, 1.0, 1.7])
def test_luttinger_ac_conductance_matches_wave_equation(g):
    length, v_f = 3.0, 1.3
    omegas = np.linspace(0.01, 6.0, 11)
    numerical = [numerical_plasmon_transmission(w, [(0.0, length, g)], v_f) for w in omegas]
    exact = luttinger_ac_conductance(
        omegas, g=g, length=length, fermi_velocity=v_f, spin_degeneracy=1
    )
    np.testing.assert_allclose(exact, numerical, rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    g=st.floats(0.05, 5.0, allow_nan=False),
    length=st.floats(0.0, 100.0, allow_nan=False),
    g_s=st.sampled_from([1, 2]),
)
def test_luttinger_dc_conductance_is_independent_of_g(g, length, g_s):
    dc = luttinger_ac_conductance(0.0, g=g, length=length, fermi_velocity=1.0, spin_degeneracy=g_s)
    assert complex(dc) == pytest.approx(g_s, rel=1e-12)
    assert float(luttinger_wire_conductance(g, spin_degeneracy=g_s)) == g_s
    assert float(luttinger_bulk_conductance(g, spin_degeneracy=g_s)) == pytest.approx(g_s * g)


def test_dc_transmission_is_perfect_for_any_interaction_profile():
    rng = np.random.default_rng(11)
    edges = np.cumsum(rng.uniform(0.2, 1.0, size=6))
    profile = [
        (a, b, g) for a, b, g in zip(edges[:-1], edges[1:], rng.uniform(0.2, 2.0, 5), strict=True)
    ]
    assert numerical_plasmon_transmission(1e-9, profile) == pytest.approx(1.0, abs=1e-8)


def test_free_electrons_propagate_without_reflection():
    omegas = np.linspace(-5.0, 5.0, 21)
    length, v_f = 2.0, 0.8
    g = luttinger_ac_conductance(
        omegas, g=1.0, length=length, fermi_velocity=v_f, spin_degeneracy=2
    )
    np.testing.assert_allclose(g, 2 * np.exp(1j * omegas * length / v_f), rtol=1e-14)
    np.testing.assert_allclose(np.abs(g), 2.0, rtol=1e-14)


@pytest.mark.parametrize("g", [0.2, 0.5, 0.9, 1.5])
def test_luttinger_period_average_and_minimum_relate_to_g(g):
    length, v_f = 1.0, 1.0
    period = np.pi * v_f / (g * length)  # |G| repeats when w tau advances by pi

    def modulus_squared(w):
        return (
            abs(
                complex(
                    luttinger_ac_conductance(
                        w, g=g, length=length, fermi_velocity=v_f, spin_degeneracy=1
                    )
                )
            )
            ** 2
        )

    average, _ = quad(modulus_squared, 0.0, period, limit=200)
    contact = 1 - float(luttinger_contact_reflection(g)) ** 2
    assert contact == pytest.approx(4 * g / (1 + g) ** 2, rel=1e-14)
    assert average / period == pytest.approx(2 * g / (1 + g**2), rel=1e-9)
    assert average / period == pytest.approx(
        float(fabry_perot_average_transmission(contact, contact)), rel=1e-9
    )
    assert np.sqrt(modulus_squared(period / 2)) == pytest.approx(2 * g / (1 + g**2), rel=1e-12)


def test_luttinger_bad_input():
    with pytest.raises(ValueError, match=r"g must be > 0, got .*0\.0"):
        luttinger_ac_conductance(1.0, g=0.0, length=1.0, fermi_velocity=1.0, spin_degeneracy=1)
    with pytest.raises(ValueError, match="fermi_velocity must be > 0"):
        luttinger_ac_conductance(1.0, g=0.5, length=1.0, fermi_velocity=-1.0, spin_degeneracy=1)
    with pytest.raises(ValueError, match="length must be >= 0"):
        luttinger_ac_conductance(1.0, g=0.5, length=-1.0, fermi_velocity=1.0, spin_degeneracy=1)
    with pytest.raises(ValueError, match=r"g must be > 0, got .*-0\.5"):
        luttinger_contact_reflection(-0.5)
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        luttinger_wire_conductance(0.5, spin_degeneracy=4)
