"""Coulomb blockade in the sequential-tunnelling (orthodox) regime.

Checks exact closed forms (Beenakker's single-level peak, the spin-degenerate peak,
the classical Kulik-Shekhter peak), linear response against finite differences of
the current, current conservation and detailed balance, and the geometry of the
Coulomb diamonds (closing points, edge slopes set by the capacitances, heights,
excited-state lines).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar

from mesoscopic import coulomb as cb
from mesoscopic.landauer import fermi_dirac


def fermi(x):
    return 0.5 * (1.0 - np.tanh(0.5 * np.asarray(x, dtype=float)))


# --------------------------------------------------------------------------------------
# Single level, Gamma << kT << level spacing (Beenakker 1991)
# --------------------------------------------------------------------------------------


def beenakker_peak(delta, kT, gamma_left, gamma_right):
    """(e^2/h) (2 pi / 4 kT) Gamma_L Gamma_R / Gamma cosh^-2(delta / 2 kT)."""
    series = gamma_left * gamma_right / (gamma_left + gamma_right)
    return 2.0 * np.pi / (4.0 * kT) * series / np.cosh(delta / (2.0 * kT)) ** 2


@pytest.mark.parametrize("kT", [0.01, 0.03, 0.1])
def test_single_level_lineshape_is_beenakker(kT):
    gamma_left, gamma_right = 1e-3, 3e-3
    dot = cb.QuantumDot(
        [0.2], [[gamma_left], [gamma_right]], charging_energy=1.0, gate_lever_arm=0.5
    )
    gates = cb.degeneracy_gates(dot)[0] + np.linspace(-12, 12, 97) * kT / 0.5
    delta = 0.2 + 0.5 - 0.5 * gates  # addition energy of the level above mu = 0
    got = cb.linear_conductance(dot, gate=gates, kT=kT)
    np.testing.assert_allclose(
        got, beenakker_peak(delta, kT, gamma_left, gamma_right), rtol=1e-10, atol=0
    )
    # The same from the current of the full master equation at a small bias.
    np.testing.assert_allclose(
        finite_difference_conductance(dot, gates, kT, 0.5), got, rtol=1e-6, atol=0
    )


def test_peak_height_times_temperature_is_constant_with_other_levels():
    # Three levels 1 E_C apart: corrections from the other levels ~exp(-spacing/kT).
    gamma_left, gamma_right, e_c = 1e-3, 2e-3, 1.0
    dot = cb.QuantumDot(
        [0.0, 1.0, 2.0], [[gamma_left] * 3, [gamma_right] * 3], charging_energy=e_c
    )
    expected = np.pi / 2 * gamma_left * gamma_right / (gamma_left + gamma_right)
    gamma = gamma_left + gamma_right
    for peak in cb.degeneracy_gates(dot):
        for kT in np.geomspace(10 * gamma, e_c / 10, 5):
            height = cb.linear_conductance(dot, gate=peak, kT=kT)
            assert abs(height * kT / expected - 1) < 0.01
            # The spinless peak sits at the degeneracy point.
            sides = cb.linear_conductance(dot, gate=peak + np.array([-0.1, 0.1]) * kT, kT=kT)
            assert np.all(sides < height)


def test_single_level_full_width_at_half_maximum():
    kT, lever = 0.02, 0.4
    dot = cb.QuantumDot([0.0], [[1e-3], [1e-3]], charging_energy=1.0, gate_lever_arm=lever)
    peak = cb.degeneracy_gates(dot)[0]
    top = float(cb.linear_conductance(dot, gate=peak, kT=kT))

    def half(g):
        return float(cb.linear_conductance(dot, gate=g, kT=kT)) - top / 2

    width = brentq(half, peak, peak + 10 * kT / lever, xtol=1e-14) - brentq(
        half, peak - 10 * kT / lever, peak, xtol=1e-14
    )
    # cosh^-2(x / 2) = 1/2 at x = 2 ln(1 + sqrt 2): FWHM = 4 ln(1 + sqrt 2) kT = 3.525 kT.
    assert width * lever / kT == pytest.approx(4 * math.log(1 + math.sqrt(2)), rel=1e-9)
    assert width * lever / kT == pytest.approx(3.525, abs=1e-3)


def test_spin_degenerate_level_peaks_shift_and_grow():
    """One spin-degenerate orbital, E_C >> kT: states 0, up, down, up-down.

    Rate equations give for the 0 <-> 1 transition (f = f(delta_1))
        G = (2 pi / kT) (Gamma_L Gamma_R / Gamma) 2 f (1 - f) / (1 + f),
    maximal at delta_1 = kT ln(2) / 2 with height 8 sqrt(2) / (4 + 3 sqrt(2)) = 1.3726
    times the spinless one; the 1 <-> 2 transition is its particle-hole mirror,
        G = (2 pi / kT) (Gamma_L Gamma_R / Gamma) 2 f (1 - f) / (2 - f),  f = f(delta_2),
    maximal at delta_2 = -kT ln(2) / 2.
    """
    gamma_left, gamma_right, e_c, kT = 2e-3, 1e-3, 1.0, 0.02
    series = gamma_left * gamma_right / (gamma_left + gamma_right)
    dot = cb.QuantumDot([0.1], [[gamma_left], [gamma_right]], charging_energy=e_c, degeneracy=2)
    first, second = cb.degeneracy_gates(dot)
    offsets = np.linspace(-10, 10, 81) * kT
    f1 = fermi(-offsets / kT)  # delta_1 = first - gate = -offset
    got1 = cb.linear_conductance(dot, gate=first + offsets, kT=kT)
    np.testing.assert_allclose(
        got1, 2 * np.pi / kT * series * 2 * f1 * (1 - f1) / (1 + f1), rtol=1e-9
    )
    got2 = cb.linear_conductance(dot, gate=second + offsets, kT=kT)
    np.testing.assert_allclose(
        got2, 2 * np.pi / kT * series * 2 * f1 * (1 - f1) / (2 - f1), rtol=1e-9
    )
    for peak, shift in ((first, -0.5 * kT * math.log(2)), (second, 0.5 * kT * math.log(2))):
        best = minimize_scalar(
            lambda g: -float(cb.linear_conductance(dot, gate=g, kT=kT)),
            bracket=(peak - kT, peak, peak + kT),
            tol=1e-10,
        )
        assert best.x - peak == pytest.approx(shift, abs=1e-4 * kT)
        ratio = -best.fun / (np.pi / (2 * kT) * series)
        assert ratio == pytest.approx(8 * math.sqrt(2) / (4 + 3 * math.sqrt(2)), rel=1e-7)


def test_peaks_of_a_fourfold_degenerate_level():
    # n-th electron into a d-fold level (two-state rate equations with degeneracies
    # C(d, n-1) and C(d, n)): peak at addition energy (kT/2) ln((d - n + 1) / n).
    kT, d = 0.01, 4
    dot = cb.QuantumDot([0.0], [[1e-4], [2e-4]], charging_energy=1.0, degeneracy=d)
    for n, closing in enumerate(cb.degeneracy_gates(dot), start=1):
        best = minimize_scalar(
            lambda g: -float(cb.linear_conductance(dot, gate=g, kT=kT)),
            bounds=(closing - 3 * kT, closing + 3 * kT),
            method="bounded",
            options={"xatol": 1e-9 * kT},
        )
        assert closing - best.x == pytest.approx(
            0.5 * kT * math.log((d - n + 1) / n), abs=1e-4 * kT
        )


# --------------------------------------------------------------------------------------
# Metallic (orthodox) regime, level spacing << kT << E_C
# --------------------------------------------------------------------------------------


def test_metallic_peak_height_is_temperature_independent_and_lineshape_classical():
    g_left, g_right, e_c, lever = 0.08, 0.02, 1.0, 0.3
    dot = cb.MetallicDot(
        [g_left, g_right], charging_energy=e_c, gate_lever_arm=lever, lead_lever_arms=[0.2, 0.1]
    )
    peak = cb.degeneracy_gates(dot, charges=[3])[0]
    height = g_left * g_right / (2 * (g_left + g_right))
    for kT in (e_c / 100, e_c / 30, e_c / 10):
        assert cb.linear_conductance(dot, gate=peak, kT=kT) == pytest.approx(height, rel=0.01)
    # Lineshape (delta/kT) / sinh(delta/kT); the neighbouring transitions, E_C away, add
    # tails ~exp(-(E_C - |delta|)/kT).
    for kT, rtol in ((e_c / 100, 1e-9), (e_c / 30, 1e-5)):
        u = np.linspace(-8, 8, 65)  # delta / kT, delta = E_C (N - 1/2) - alpha_g gate
        got = cb.linear_conductance(dot, gate=peak - u * kT / lever, kT=kT)
        with np.errstate(invalid="ignore"):
            shape = np.where(u == 0, 1.0, u / np.sinh(u))
        np.testing.assert_allclose(got / height, shape, rtol=rtol)


def test_metallic_full_width_at_half_maximum():
    dot = cb.MetallicDot([0.1, 0.1], charging_energy=1.0)
    kT = 0.01
    top = float(cb.linear_conductance(dot, gate=0.5, kT=kT))
    right = brentq(lambda g: cb.linear_conductance(dot, gate=g, kT=kT) - top / 2, 0.5, 0.6)
    # x / sinh x = 1/2 at x = 2.1773: FWHM = 4.3546 kT.
    x_half = brentq(lambda x: x / math.sinh(x) - 0.5, 1.0, 3.0)
    assert 2 * (right - 0.5) / kT == pytest.approx(2 * x_half, rel=1e-8)
    assert 2 * x_half == pytest.approx(4.3546, abs=1e-4)


# --------------------------------------------------------------------------------------
# Linear response: closed form against finite differences of the current
# --------------------------------------------------------------------------------------


def finite_difference_conductance(dot, gate, kT, bias_fraction, step=1e-6):
    up = cb.current(dot, gate=gate, kT=kT, bias=step, bias_fraction=bias_fraction)[..., 0]
    down = cb.current(dot, gate=gate, kT=kT, bias=-step, bias_fraction=bias_fraction)[..., 0]
    return (up - down) / (2 * step)


@pytest.mark.parametrize("bias_fraction", [0.0, 0.5, 1.0])
def test_linear_conductance_matches_finite_difference_quantum_dot(bias_fraction):
    dot = cb.QuantumDot(
        [0.0, 0.13, 0.3],
        [[0.01, 0.03, 0.005], [0.02, 0.01, 0.02]],
        charging_energy=1.0,
        gate_lever_arm=0.4,
        lead_lever_arms=[0.2, 0.3],
        degeneracy=[2, 1, 1],
    )
    gates = np.linspace(-1, 10, 45)
    for kT in (0.03, 0.3):
        exact = cb.linear_conductance(dot, gate=gates, kT=kT)
        numeric = finite_difference_conductance(dot, gates, kT, bias_fraction)
        np.testing.assert_allclose(numeric, exact, rtol=1e-6, atol=1e-8 * exact.max())


@pytest.mark.parametrize("kT", [0.02, 0.5, 3.0])
def test_linear_conductance_matches_finite_difference_metallic(kT):
    dot = cb.MetallicDot(
        [0.3, 0.1], charging_energy=1.0, gate_lever_arm=0.3, lead_lever_arms=[0.1, 0.4]
    )
    gates = np.linspace(-2, 8, 41)
    exact = cb.linear_conductance(dot, gate=gates, kT=kT)
    numeric = finite_difference_conductance(dot, gates, kT, 1.0)
    np.testing.assert_allclose(numeric, exact, rtol=1e-6, atol=1e-8 * exact.max())


def test_three_lead_conductance_matrix():
    dot = cb.QuantumDot(
        [0.0, 0.4],
        [[0.01, 0.02], [0.02, 0.005], [0.005, 0.01]],
        charging_energy=0.8,
        gate_lever_arm=0.5,
        lead_lever_arms=[0.1, 0.2, 0.1],
        degeneracy=2,
    )
    gate, kT, step = 1.3, 0.05, 1e-6
    matrix = cb.conductance_matrix(dot, gate=gate, kT=kT)
    numeric = np.empty((3, 3))
    for j in range(3):
        mu = np.zeros((2, 3))
        mu[0, j], mu[1, j] = step, -step
        currents = cb.current(dot, gate=gate, kT=kT, lead_potentials=mu)
        numeric[:, j] = (currents[0] - currents[1]) / (2 * step)
    np.testing.assert_allclose(numeric, matrix, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(matrix.sum(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(matrix.sum(axis=1), 0, atol=1e-15)
    np.testing.assert_allclose(matrix, matrix.T, rtol=1e-13)
    assert np.all(np.diag(matrix) > 0)


# --------------------------------------------------------------------------------------
# Conservation laws and detailed balance
# --------------------------------------------------------------------------------------


@st.composite
def quantum_dots(draw):
    n_levels = draw(st.integers(1, 3))
    n_leads = draw(st.integers(2, 3))
    levels = draw(st.lists(st.floats(-1, 1), min_size=n_levels, max_size=n_levels))
    couplings = draw(
        st.lists(st.floats(1e-4, 1e-2), min_size=n_leads * n_levels, max_size=n_leads * n_levels)
    )
    degeneracy = draw(st.lists(st.integers(1, 2), min_size=n_levels, max_size=n_levels))
    arms = draw(st.lists(st.floats(0, 0.2), min_size=n_leads + 1, max_size=n_leads + 1))
    return cb.QuantumDot(
        levels,
        np.reshape(couplings, (n_leads, n_levels)),
        charging_energy=draw(st.floats(0, 2)),
        gate_lever_arm=0.2 + arms[0],
        lead_lever_arms=arms[1:],
        degeneracy=degeneracy,
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    dot=quantum_dots(),
    potentials=st.lists(st.floats(-2, 2), min_size=3, max_size=3),
    gate=st.floats(-3, 8),
    kT=st.floats(1e-3, 0.5),
)
def test_current_conservation_and_probabilities(dot, potentials, gate, kT):
    mu = np.array(potentials[: dot.n_leads])
    state = cb.stationary_state(dot, gate=gate, kT=kT, lead_potentials=mu)
    assert np.all(state.probabilities >= 0)
    assert state.probabilities.sum() == pytest.approx(1, abs=1e-14)
    largest = np.abs(state.currents).max()
    scale = 2 * np.pi * dot.couplings.sum()
    assert abs(state.currents.sum()) <= 1e-12 * largest + 1e-14 * scale


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    conductances=st.lists(st.floats(0.0, 0.5), min_size=2, max_size=2).filter(
        lambda g: max(g) > 1e-3
    ),
    bias=st.floats(-5, 5),
    gate=st.floats(-10, 10),
    kT=st.floats(1e-3, 2.0),
    bias_fraction=st.floats(0, 1),
)
def test_metallic_current_conservation(conductances, bias, gate, kT, bias_fraction):
    dot = cb.MetallicDot(
        conductances, charging_energy=1.0, gate_lever_arm=0.5, lead_lever_arms=[0.2, 0.1]
    )
    state = cb.stationary_state(dot, gate=gate, kT=kT, bias=bias, bias_fraction=bias_fraction)
    assert np.all(state.probabilities >= 0)
    assert state.probabilities.sum() == pytest.approx(1, abs=1e-14)
    # Rounding of O(1) probabilities leaves ~1e-16 of the natural current scale.
    scale = sum(conductances) * (1.0 + abs(bias) + kT)
    assert abs(state.currents.sum()) <= 1e-12 * np.abs(state.currents).max() + 1e-14 * scale
    # Nonlinear current flows down the potential: mu_0 > mu_1 drives electrons in at lead 0.
    assert state.currents[0] * np.sign(bias) >= -1e-14 * scale


@settings(max_examples=40, deadline=None, derandomize=True)
@given(dot=quantum_dots(), mu=st.floats(-1, 1), gate=st.floats(-3, 8), kT=st.floats(0.01, 0.5))
def test_equilibrium_is_grand_canonical_and_carries_no_current(dot, mu, gate, kT):
    potentials = np.full(dot.n_leads, mu)
    state = cb.stationary_state(dot, gate=gate, kT=kT, lead_potentials=potentials)
    occupied = state.configurations
    n = occupied.sum(axis=1)
    energy = (
        occupied @ dot.levels[state.spin_orbital_levels]
        + 0.5 * dot.charging_energy * n**2
        - dot.gate_lever_arm * gate * n
        + n * (dot.lead_lever_arms @ potentials)
        - mu * n
    )
    weights = np.exp(-(energy - energy.min()) / kT)
    np.testing.assert_allclose(state.probabilities, weights / weights.sum(), rtol=1e-8, atol=1e-14)
    assert np.abs(state.currents).max() <= 1e-13 * 2 * np.pi * dot.couplings.sum()


def test_single_level_occupation_is_fermi_dirac_at_zero_bias():
    dot = cb.QuantumDot(
        [0.1],
        [[0.002], [0.005]],
        charging_energy=0.7,
        gate_lever_arm=0.6,
        lead_lever_arms=[0.1, 0.2],
    )
    gates = np.linspace(-1, 2, 31)
    mu, kT = 0.15, 0.05
    state = cb.stationary_state(dot, gate=gates, kT=kT, lead_potentials=[mu, mu])
    addition = 0.1 + 0.7 / 2 - 0.6 * gates + (0.1 + 0.2) * mu
    np.testing.assert_allclose(
        state.level_occupation[:, 0], fermi_dirac(addition, mu, kT), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(state.currents, 0, atol=1e-16)


def test_metallic_zero_bias_current_vanishes_and_charge_is_thermal():
    dot = cb.MetallicDot([0.1, 0.3], charging_energy=1.0, gate_lever_arm=0.5)
    gates = np.linspace(-3, 3, 25)
    kT = 0.4
    state = cb.stationary_state(dot, gate=gates, kT=kT)
    assert np.abs(state.currents).max() < 1e-15
    n = np.arange(-30, 31)
    weights = np.exp(-(0.5 * n[None, :] ** 2 - 0.5 * gates[:, None] * n[None, :]) / kT)
    expected = (weights * n).sum(axis=1) / weights.sum(axis=1)
    np.testing.assert_allclose(state.mean_charge, expected, rtol=1e-12, atol=1e-12)


def test_tiny_temperature_is_robust():
    # N = 1 of a spin-degenerate orbital is deep in blockade: both spin states have
    # exit rates that underflow; the kT -> 0 limit splits them evenly.
    dot = cb.QuantumDot([0.0], [[0.01], [0.02]], charging_energy=1.0, degeneracy=2)
    center = cb.degeneracy_gates(dot).mean()
    for kT in (0.0, 1e-12, 1e-4):
        state = cb.stationary_state(dot, gate=center, kT=kT, bias=0.2)
        np.testing.assert_allclose(state.probabilities, [0, 0.5, 0.5, 0], atol=1e-15)
        assert np.abs(state.currents).max() < 1e-30
    # Outside blockade the kT = 0 current is the rate-equation plateau.
    kT0 = cb.current(dot, gate=0.3, kT=0.0, bias=2.0)
    tiny = cb.current(dot, gate=0.3, kT=1e-9, bias=2.0)
    np.testing.assert_allclose(kT0, tiny, rtol=1e-12)
    gamma_left, gamma_right = 0.01, 0.02  # in: 2 Gamma_L, out: Gamma_R
    plateau = 2 * np.pi * 2 * gamma_left * gamma_right / (2 * gamma_left + gamma_right)
    assert kT0[0] == pytest.approx(plateau, rel=1e-12)


# --------------------------------------------------------------------------------------
# Coulomb diamonds
# --------------------------------------------------------------------------------------


def half_step_gate(dot, bias, inside, outside, kT):
    """Gate between `inside` (blockaded) and `outside` where the current is half its value
    at `outside`."""
    target = 0.5 * abs(cb.current(dot, gate=outside, kT=kT, bias=bias, bias_fraction=1.0)[0])

    def excess(g):
        return abs(cb.current(dot, gate=g, kT=kT, bias=bias, bias_fraction=1.0)[0]) - target

    return brentq(excess, inside, outside, xtol=1e-12)


def test_diamond_edges_follow_the_capacitances_and_close_at_degeneracy_points():
    # C_0 = 0.2, C_1 = 0.3, C_g = 0.4, C_self = 0.1: C = 1, E_C = 1 (energy units).
    dot = cb.QuantumDot.from_capacitances(
        [0.0, 0.25],
        [[0.01, 0.01], [0.01, 0.01]],
        lead_capacitances=[0.2, 0.3],
        gate_capacitance=0.4,
        self_capacitance=0.1,
    )
    alpha_g, alpha_0 = 0.4, 0.2
    slope_lead0, slope_lead1 = cb.diamond_edge_slopes(dot, bias_fraction=1.0)
    assert slope_lead0 == pytest.approx(-0.4 / (1.0 - 0.2))  # -C_g / (C - C_0)
    assert slope_lead1 == pytest.approx(0.4 / 0.2)  # C_g / C_0
    mu1, mu2 = cb.electrochemical_potentials(dot)
    g1, g2 = cb.degeneracy_gates(dot)
    height = cb.addition_energies(dot)[0]
    assert height == pytest.approx(1.25)
    kT = 2e-4
    margin = 60 * kT / alpha_g
    lower, upper = [], []
    biases = np.array([-0.9, -0.6, -0.3, 0.3, 0.6, 0.9]) * height
    for v in biases:
        # The N = 1 diamond at bias v (mu_0 = v, mu_1 = 0): blockaded between the lines
        # mu1 - alpha_g g + alpha_0 v = min(v, 0) and mu2 - alpha_g g + alpha_0 v = max(v, 0).
        left = (mu1 + alpha_0 * v - min(v, 0.0)) / alpha_g
        right = (mu2 + alpha_0 * v - max(v, 0.0)) / alpha_g
        middle = 0.5 * (left + right)
        assert abs(cb.current(dot, gate=middle, kT=kT, bias=v, bias_fraction=1.0)[0]) < 1e-30
        lower.append(half_step_gate(dot, v, middle, left - margin, kT))
        upper.append(half_step_gate(dot, v, middle, right + margin, kT))
        assert lower[-1] == pytest.approx(left, abs=5 * kT / alpha_g)
        assert upper[-1] == pytest.approx(right, abs=5 * kT / alpha_g)
    lower, upper = np.array(lower), np.array(upper)
    positive = biases > 0
    # Edges through lead 1 (mu_dot = mu_1 = 0) and through lead 0 (mu_dot = mu_0 = v).
    fits = {
        "lead1_left": np.polyfit(lower[positive], biases[positive], 1),
        "lead0_right": np.polyfit(upper[positive], biases[positive], 1),
        "lead0_left": np.polyfit(lower[~positive], biases[~positive], 1),
        "lead1_right": np.polyfit(upper[~positive], biases[~positive], 1),
    }
    assert fits["lead1_left"][0] == pytest.approx(slope_lead1, rel=2e-3)
    assert fits["lead1_right"][0] == pytest.approx(slope_lead1, rel=2e-3)
    assert fits["lead0_left"][0] == pytest.approx(slope_lead0, rel=2e-3)
    assert fits["lead0_right"][0] == pytest.approx(slope_lead0, rel=2e-3)
    # Each pair of edges meets at zero bias exactly at a degeneracy point.
    for name, closing in (
        ("lead1_left", g1),
        ("lead0_left", g1),
        ("lead0_right", g2),
        ("lead1_right", g2),
    ):
        slope, intercept = fits[name]
        assert -intercept / slope == pytest.approx(closing, abs=3 * kT / alpha_g)


def test_diamonds_close_at_degeneracy_points_in_linear_response():
    dot = cb.QuantumDot(
        [0.0, 0.3],
        [[0.001, 0.002], [0.002, 0.001]],
        charging_energy=1.0,
        gate_lever_arm=0.5,
        lead_lever_arms=[0.1, 0.2],
        degeneracy=2,
    )
    kT = 1e-3
    gates = cb.degeneracy_gates(dot)
    bias = 0.2 * kT
    at_peak = cb.current(dot, gate=gates, kT=kT, bias=bias)[:, 0]
    assert np.all(at_peak > 0.05 * bias * cb.linear_conductance(dot, gate=gates, kT=kT))
    centers = 0.5 * (gates[1:] + gates[:-1])
    inside = cb.current(dot, gate=centers, kT=kT, bias=bias)[:, 0]
    assert np.all(np.abs(inside) < 1e-50)


def test_diamond_height_is_the_charging_energy_without_level_spacing():
    e_c = 1.0
    dot = cb.MetallicDot.from_capacitances(
        [0.05, 0.05], lead_capacitances=[0.3, 0.2], gate_capacitance=0.5
    )
    assert dot.charging_energy == pytest.approx(e_c)
    kT = 1e-4
    # Vertex of the N = 0 diamond with lead 1 grounded: alpha_g g = mu_dot(0) + alpha_0 E_C.
    vertex = (cb.electrochemical_potentials(dot, charges=[0])[0] + 0.3 * e_c) / 0.5
    below = cb.current(dot, gate=vertex, kT=kT, bias=0.97 * e_c, bias_fraction=1.0)[0]
    above = cb.current(dot, gate=vertex, kT=kT, bias=1.03 * e_c, bias_fraction=1.0)[0]
    assert abs(below) < 1e-12
    assert above > 1e-4
    # Above E_C no gate blockades the current; just below it some gate does.
    gates = np.linspace(-2, 2, 801)
    sweep_above = cb.current(dot, gate=gates, kT=kT, bias=1.03 * e_c, bias_fraction=1.0)
    assert sweep_above[:, 0].min() > 1e-4
    sweep_below = cb.current(dot, gate=gates, kT=kT, bias=0.97 * e_c, bias_fraction=1.0)
    assert sweep_below[:, 0].min() < 1e-12
    # A spin-degenerate orbital: the diamond inside one orbital is E_C high.
    spinful = cb.QuantumDot([0.0, 0.4], [0.01, 0.01], charging_energy=e_c, degeneracy=2)
    np.testing.assert_allclose(cb.addition_energies(spinful), [e_c, e_c + 0.4, e_c])


def test_excited_state_line_outside_the_diamond():
    spacing, kT = 0.3, 0.01
    dot = cb.QuantumDot([0.0, spacing], [[0.001, 0.002], [0.001, 0.001]], charging_energy=1.0)
    gate = 0.3  # ground-state addition energy 0.5 - gate = 0.2 above the leads
    onset = cb.electrochemical_potentials(dot)[0] - gate
    biases = np.linspace(0.0, 0.9, 901)
    diagram = cb.stability_diagram(dot, [gate], biases, kT=kT, bias_fraction=1.0)
    didv = diagram.differential_conductance[:, 0]
    peaks = np.flatnonzero((didv[1:-1] > didv[:-2]) & (didv[1:-1] > didv[2:])) + 1
    peaks = peaks[didv[peaks] > 0.05 * didv.max()]
    positions = biases[peaks]
    assert positions.size == 2
    assert positions[0] == pytest.approx(onset, abs=0.2 * kT)
    assert positions[1] == pytest.approx(onset + spacing, abs=0.5 * kT)
    # The excited state opens a second channel: the current rises from
    # 2 pi Gamma_L Gamma_R / Gamma to the two-channel plateau (one electron at a time).
    plateau_one = 2 * np.pi * 0.001 * 0.001 / 0.002
    rate_in, rate_out = 2 * np.pi * 0.003, 2 * np.pi * 0.001  # both levels empty out at R
    plateau_two = rate_in * rate_out / (rate_in + rate_out)
    assert diagram.current[350, 0] == pytest.approx(plateau_one, rel=1e-5)
    assert diagram.current[-1, 0] == pytest.approx(plateau_two, rel=1e-6)


def test_stability_diagram_shapes_and_symmetry():
    dot = cb.MetallicDot([0.1, 0.1], charging_energy=1.0, gate_lever_arm=0.5)
    gates = np.linspace(-1, 3, 41)
    biases = np.linspace(-1.5, 1.5, 31)
    diagram = cb.stability_diagram(dot, gates, biases, kT=0.02)
    assert diagram.current.shape == diagram.differential_conductance.shape == (31, 41)
    # Symmetric junctions and a symmetric bias: I(-V) = -I(V) at every gate.
    np.testing.assert_allclose(diagram.current[::-1], -diagram.current, atol=1e-14)
    # dI/dV agrees with the slope of the current on a grid much finer than kT.
    fine = np.linspace(-1.5, 1.5, 3001)
    sweep = cb.stability_diagram(dot, gates[::10], fine, kT=0.02)
    np.testing.assert_allclose(
        np.gradient(sweep.current, fine, axis=0)[1:-1],
        sweep.differential_conductance[1:-1],
        rtol=1e-3,
        atol=1e-4 * np.abs(sweep.differential_conductance).max(),
    )


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_bad_dots_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="at least one level"):
        cb.QuantumDot([], [[], []], charging_energy=1.0)
    with pytest.raises(ValueError, match=r"couplings must be >= 0.*-0\.1"):
        cb.QuantumDot([0.0], [[0.1], [-0.1]], charging_energy=1.0)
    with pytest.raises(ValueError, match=r"couplings must have shape \(n_leads, 2\)"):
        cb.QuantumDot([0.0, 1.0], [[0.1, 0.1, 0.1]], charging_energy=1.0)
    with pytest.raises(ValueError, match=r"charging_energy must be >= 0.*-1\.0"):
        cb.QuantumDot([0.0], [0.1, 0.1], charging_energy=-1.0)
    with pytest.raises(ValueError, match="charging_energy must be > 0"):
        cb.MetallicDot([0.1, 0.1], charging_energy=0.0)
    with pytest.raises(ValueError, match="level 1 is coupled to no lead"):
        cb.QuantumDot([0.0, 1.0], [[0.1, 0.0], [0.1, 0.0]], charging_energy=1.0)
    with pytest.raises(ValueError, match=r"degeneracy must be an integer or have shape \(2,\)"):
        cb.QuantumDot([0.0, 1.0], [0.1, 0.1], charging_energy=1.0, degeneracy=[1, 2, 2])
    with pytest.raises(ValueError, match="limited to 12"):
        cb.QuantumDot(np.arange(7.0), [0.1, 0.1], charging_energy=1.0, degeneracy=2)
    with pytest.raises(ValueError, match=r"lead_lever_arms must have shape \(2,\)"):
        cb.QuantumDot([0.0], [0.1, 0.1], charging_energy=1.0, lead_lever_arms=[0.1])
    with pytest.raises(ValueError, match="must be <= 1"):
        cb.QuantumDot(
            [0.0], [0.1, 0.1], charging_energy=1.0, gate_lever_arm=0.6, lead_lever_arms=[0.3, 0.3]
        )
    with pytest.raises(ValueError, match=r"conductances must be >= 0.*-0\.2"):
        cb.MetallicDot([0.1, -0.2], charging_energy=1.0)
    with pytest.raises(ValueError, match="levels must be finite"):
        cb.QuantumDot([np.nan], [0.1, 0.1], charging_energy=1.0)
    with pytest.raises(ValueError, match="gate_capacitance must be > 0"):
        cb.QuantumDot.from_capacitances(
            [0.0], [0.1, 0.1], lead_capacitances=[1, 1], gate_capacitance=0.0
        )


def test_bad_solver_inputs_are_rejected_with_clear_messages():
    dot = cb.QuantumDot([0.0], [0.01, 0.01], charging_energy=1.0)
    with pytest.raises(ValueError, match=r"kT must be >= 0.*-0\.1"):
        cb.current(dot, gate=0.0, kT=-0.1)
    with pytest.raises(ValueError, match="kT must be finite"):
        cb.current(dot, gate=0.0, kT=np.nan)
    with pytest.raises(ValueError, match="kT must be > 0 for the linear conductance"):
        cb.linear_conductance(dot, gate=0.0, kT=0.0)
    with pytest.raises(ValueError, match=r"lead_potentials must have shape \(\.\.\., 2\)"):
        cb.current(dot, gate=0.0, kT=0.1, lead_potentials=[0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="do not broadcast"):
        cb.current(dot, gate=np.zeros(3), kT=np.full(4, 0.1))
    with pytest.raises(ValueError, match="either lead_potentials= or bias="):
        cb.current(dot, gate=0.0, kT=0.1, lead_potentials=[0, 0], bias=0.1)
    with pytest.raises(ValueError, match="bias_fraction must be in"):
        cb.current(dot, gate=0.0, kT=0.1, bias=0.1, bias_fraction=1.5)
    three = cb.QuantumDot([0.0], [0.01, 0.01, 0.01], charging_energy=1.0)
    with pytest.raises(ValueError, match="bias= needs a two-lead dot"):
        cb.current(three, gate=0.0, kT=0.1, bias=0.1)
    with pytest.raises(ValueError, match="use conductance_matrix"):
        cb.linear_conductance(three, gate=0.0, kT=0.1)
    with pytest.raises(TypeError, match="QuantumDot or a MetallicDot"):
        cb.current("dot", gate=0.0, kT=0.1)
    with pytest.raises(ValueError, match="charges= is required"):
        cb.degeneracy_gates(cb.MetallicDot([0.1, 0.1], charging_energy=1.0))
    with pytest.raises(ValueError, match="gates must be a non-empty 1-D array"):
        cb.stability_diagram(dot, [], [0.0], kT=0.1)
