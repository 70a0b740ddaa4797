"""Tests of mesoscopic.landauer: Fermi functions, Landauer integrals, thermoelectrics.

Every check compares with an exact closed form (Sommerfeld integrals of polynomials,
the exponential transmission, the smeared step), a conservation law or sum rule, or
an independent integration method (the adaptive callable path against the sampled
path on the same interpolant).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mesoscopic.landauer import (
    NoConductanceWarning,
    ThermoelectricCoefficients,
    current,
    fermi_derivative,
    fermi_dirac,
    heat_current,
    linear_conductance,
    onsager_integrals,
    thermoelectric_coefficients,
)

PI2_3 = np.pi**2 / 3
# Sommerfeld moments: int x^2 (-f') dx = (pi^2/3) kT^2, int x^4 (-f') dx = (7 pi^4/15) kT^4
M2 = np.pi**2 / 3
M4 = 7 * np.pi**4 / 15


def resonance(energy):
    """Smooth test transmission: a Lorentzian resonance on a smooth background."""
    energy = np.asarray(energy, dtype=float)
    return 0.2 + 0.1 * np.tanh(3 * energy) + 0.6 / (1 + ((energy - 0.05) / 0.08) ** 2)


# ---------------------------------------------------------------------------------
# Fermi-Dirac and its derivative
# ---------------------------------------------------------------------------------


def test_fermi_functions_do_not_overflow():
    x = np.array([-1e6, -800.0, -30.0, 0.0, 30.0, 800.0, 1e6])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        occupation = fermi_dirac(x, 0.0, 1.0)
        broadening = fermi_derivative(x, 0.0, 1.0)
    assert occupation[0] == 1.0 and occupation[-1] == 0.0
    assert broadening[0] == 0.0 and broadening[-1] == 0.0
    assert np.all(np.isfinite(broadening))
    assert broadening[3] == pytest.approx(0.25)
    assert occupation[4] == pytest.approx(1 / (np.exp(30.0) + 1), rel=1e-12)


def test_fermi_dirac_particle_hole_symmetry():
    x = np.linspace(-40, 40, 161)
    mu, kT = 0.3, 0.7
    assert np.allclose(fermi_dirac(mu + x, mu, kT), 1 - fermi_dirac(mu - x, mu, kT), atol=1e-15)


def test_fermi_dirac_is_a_step_at_zero_temperature():
    energy = np.array([-1.0, -1e-300, 0.0, 1e-300, 2.0])
    assert np.array_equal(fermi_dirac(energy, 0.0, 0.0), [1.0, 1.0, 0.5, 0.0, 0.0])
    assert np.array_equal(fermi_dirac([0.4, 0.5, 0.6], 0.5, 0.0), [1.0, 0.5, 0.0])


def test_fermi_derivative_is_minus_the_slope_and_has_unit_area():
    kT, mu = 0.3, -0.2
    energy = np.linspace(mu - 15, mu + 15, 30001)
    slope = np.gradient(fermi_dirac(energy, mu, kT), energy, edge_order=2)
    kernel = fermi_derivative(energy, mu, kT)
    assert np.allclose(kernel, -slope, atol=1e-7)
    assert scipy.integrate.trapezoid(kernel, energy) == pytest.approx(1.0, rel=1e-12)


def test_fermi_derivative_refuses_zero_temperature():
    with pytest.raises(ValueError, match="Dirac delta"):
        fermi_derivative(0.0, 0.0, [0.1, 0.0])


# ---------------------------------------------------------------------------------
# Linear response and thermoelectrics: closed forms
# ---------------------------------------------------------------------------------


def test_wiedemann_franz_for_constant_transmission():
    energy = np.linspace(-1.0, 1.0, 401)
    kT = np.array([0.005, 0.01, 0.02])
    c = thermoelectric_coefficients(energy, np.full(energy.size, 3.0), 0.1, kT, spin_degeneracy=2)
    assert isinstance(c, ThermoelectricCoefficients)
    assert np.allclose(c.lorenz, PI2_3, rtol=1e-8)
    assert np.allclose(c.seebeck, 0.0, atol=1e-12)
    assert np.allclose(c.peltier, 0.0, atol=1e-14)
    assert np.allclose(c.conductance, 6.0, rtol=1e-12)
    # kappa = g_s T (pi^2/3) kT in units of k_B/h x energy
    assert np.allclose(c.thermal_conductance, 2 * 3.0 * PI2_3 * kT, rtol=1e-10)


def test_seebeck_of_exponential_transmission_and_its_mott_limit():
    # For T(E) = exp(E): L_n = e^mu kT^n g^(n)(kT), g(a) = pi a / sin(pi a), hence
    # S = -(1/kT - pi cot(pi kT)) exactly, and Mott's law S -> -(pi^2/3) kT T'/T.
    energy = np.linspace(-1.5, 1.5, 3001)
    kT = np.array([0.004, 0.008, 0.016, 0.032])
    seebeck = thermoelectric_coefficients(energy, np.exp(energy), 0.2, kT).seebeck
    exact = -(1 / kT - np.pi / np.tan(np.pi * kT))
    assert np.allclose(seebeck, exact, rtol=1e-10, atol=0)
    mott = -PI2_3 * kT
    correction = seebeck - mott
    # next order of the Sommerfeld expansion: -(pi^4/45) kT^3
    assert np.allclose(correction[1:] / correction[:-1], 8.0, rtol=2e-3)
    assert np.allclose(correction, -(np.pi**4 / 45) * kT**3, rtol=5e-3)


@pytest.mark.parametrize("kT", [0.005, 0.02])
def test_onsager_integrals_of_cubic_transmission_are_exact(kT):
    # A cubic is reproduced exactly by the spline, and its L_n follow from the
    # Sommerfeld moments of its Taylor expansion at mu.
    a, b, c, d = 1.2, 0.3, -0.2, 0.05  # positive on the grid, as a transmission is
    energy = np.linspace(-1.5, 1.5, 601)
    mu = np.array([-0.6, 0.0, 0.45])
    t0 = a + b * mu + c * mu**2 + d * mu**3
    t1 = b + 2 * c * mu + 3 * d * mu**2
    t2 = 2 * c + 6 * d * mu
    t3 = 6 * d
    expected = [
        t0 + t2 / 2 * M2 * kT**2,
        t1 * M2 * kT**2 + t3 / 6 * M4 * kT**4,
        t0 * M2 * kT**2 + t2 / 2 * M4 * kT**4,
    ]
    transmission = a + b * energy + c * energy**2 + d * energy**3
    integrals = onsager_integrals(energy, transmission, mu, kT, interpolation="cubic")
    assert integrals.shape == (3, 3)
    assert np.allclose(integrals, expected, rtol=1e-10, atol=0)
    g = linear_conductance(energy, transmission, mu, kT, spin_degeneracy=2, interpolation="cubic")
    assert np.allclose(g, 2 * np.asarray(expected[0]), rtol=1e-10)


def test_zero_temperature_limits_are_exact():
    energy = np.linspace(-1.0, 1.0, 11)  # coarse: kT = 0 needs no resolution
    transmission = 1 + energy - energy**3
    mu = np.array([-0.33, 0.0, 0.71])
    integrals = onsager_integrals(energy, transmission, mu, 0.0, interpolation="cubic")
    assert np.allclose(integrals[0], 1 + mu - mu**3, rtol=1e-13)
    assert np.array_equal(integrals[1:], np.zeros((2, 3)))
    c = thermoelectric_coefficients(
        energy, transmission, mu, 0.0, spin_degeneracy=2, interpolation="cubic"
    )
    assert np.allclose(c.conductance, 2 * (1 + mu - mu**3), rtol=1e-13)
    assert np.array_equal(c.seebeck, np.zeros(3))
    assert np.array_equal(c.thermal_conductance, np.zeros(3))
    assert np.allclose(c.lorenz, PI2_3)


def test_figure_of_merit_matches_onsager_integrals():
    # With no phonons, ZT = L1^2 / (L0 L2 - L1^2); a phonon conductance lowers it.
    energy = np.linspace(-1.0, 1.0, 2001)
    transmission = resonance(energy)
    mu, kT = np.array([-0.1, 0.0, 0.12]), 0.01
    l0, l1, l2 = onsager_integrals(energy, transmission, mu, kT)
    c = thermoelectric_coefficients(energy, transmission, mu, kT, spin_degeneracy=2)
    assert np.allclose(c.zt, l1**2 / (l0 * l2 - l1**2), rtol=1e-9)
    assert np.allclose(c.peltier, c.seebeck * kT, rtol=1e-12)
    assert np.allclose(c.lorenz * c.conductance * kT, c.thermal_conductance, rtol=1e-12)
    kappa_ph = 0.5 * c.thermal_conductance
    with_phonons = thermoelectric_coefficients(
        energy, transmission, mu, kT, spin_degeneracy=2, phonon_conductance=kappa_ph
    )
    assert np.allclose(with_phonons.zt, c.zt / 1.5, rtol=1e-12)


def test_vanishing_conductance_gives_nan_ratios_with_a_warning():
    energy = np.linspace(-1.0, 1.0, 201)
    with pytest.warns(NoConductanceWarning, match=r"vanishes at 1 of 1 points .* NaN"):
        c = thermoelectric_coefficients(energy, np.zeros(energy.size), 0.0, 0.02)
    assert c.conductance == 0.0
    assert np.isnan(c.seebeck) and np.isnan(c.lorenz) and np.isnan(c.zt)
    # A gap at kT = 0: NaN and the warning at the point in the gap only.
    gapped = np.where(np.abs(energy) < 0.3, 0.0, 1.0)
    with pytest.warns(NoConductanceWarning, match=r"vanishes at 1 of 2 points"):
        c = thermoelectric_coefficients(energy, gapped, np.array([0.0, 0.5]), 0.0)
    assert np.isnan(c.seebeck[0]) and c.seebeck[1] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoConductanceWarning)
        thermoelectric_coefficients(energy, gapped, 0.5, 0.01)


# ---------------------------------------------------------------------------------
# Step transmission, callables and interpolation
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("breakpoints", [[0.13], None])
def test_thermally_smeared_step(breakpoints):
    step_energy, kT = 0.13, 0.02
    mu = np.linspace(-0.1, 0.4, 11)

    def step(energy):
        return np.where(energy > step_energy, 1.0, 0.0)

    g = linear_conductance(breakpoints, step, mu, kT)
    assert np.allclose(g, fermi_dirac(step_energy, mu, kT), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("interpolation", "interpolant"),
    [
        ("cubic", lambda e, t: scipy.interpolate.CubicSpline(e, t)),
        ("pchip", lambda e, t: scipy.interpolate.PchipInterpolator(e, t)),
        ("linear", lambda e, t: lambda x: np.interp(x, e, t)),
    ],
)
def test_sampled_integrals_are_exact_for_the_interpolant(interpolation, interpolant):
    # Non-uniform grid, rough data, kT equal to the largest spacing: the sampled
    # path must integrate its interpolant as exactly as the adaptive path does. The
    # grid is jittered rather than random, so that the cubic spline through the rough
    # data stays positive (a transmission the callable path accepts).
    rng = np.random.default_rng(7)
    energy = np.linspace(-1.0, 1.0, 3001)
    energy[1:-1] += rng.uniform(-0.3, 0.3, energy.size - 2) * (energy[1] - energy[0])
    samples = 1.0 + 0.5 * np.sin(6 * energy) + 0.3 * rng.random(energy.size)
    function = interpolant(energy, samples)
    kT = np.diff(energy).max()
    mu = np.linspace(-0.3, 0.3, 4)
    options = {"interpolation": interpolation}
    sampled = onsager_integrals(energy, samples, mu, kT, **options)
    adaptive = onsager_integrals(energy, function, mu, kT)
    scale = onsager_integrals(energy, np.abs(samples), mu, kT, orders=(0, 2, 2), **options)
    assert np.all(np.abs(sampled - adaptive) <= 1e-11 * scale)
    i_sampled = current(energy, samples, mu, -0.2, kT, 1.5 * kT, **options)
    i_adaptive = current(energy, function, mu, -0.2, kT, 1.5 * kT)
    assert np.allclose(i_sampled, i_adaptive, rtol=1e-11)
    j_sampled = heat_current(energy, samples, mu, -0.2, 0.0, kT, **options)
    j_adaptive = heat_current(energy, function, mu, -0.2, 0.0, kT)
    assert np.allclose(j_sampled, j_adaptive, rtol=1e-11)


def test_sampled_and_callable_transmission_agree():
    energy = np.linspace(-1.0, 1.0, 4001)
    samples = resonance(energy)
    mu_left = np.linspace(-0.2, 0.2, 7)
    for kT_left, kT_right in [(0.01, 0.01), (0.02, 0.005), (0.0, 0.01), (0.0, 0.0)]:
        args = (mu_left, -0.05, kT_left, kT_right)
        assert np.allclose(
            current(energy, samples, *args), current(None, resonance, *args), rtol=1e-9
        )
        assert np.allclose(
            heat_current(energy, samples, *args),
            heat_current(None, resonance, *args),
            rtol=1e-9,
            atol=1e-15,
        )
    c_sampled = thermoelectric_coefficients(energy, samples, mu_left, 0.01)
    c_callable = thermoelectric_coefficients(None, resonance, mu_left, 0.01)
    assert np.allclose(c_sampled.seebeck, c_callable.seebeck, rtol=1e-8)
    assert np.allclose(c_sampled.lorenz, c_callable.lorenz, rtol=1e-9)


def staircase(energy, thresholds=(-0.52, 0.05, 0.61)):
    """Integer transmission N(E) of a clean wire: one more channel above each threshold."""
    return np.sum(np.asarray(energy)[..., None] > np.asarray(thresholds), axis=-1).astype(float)


def test_default_interpolation_keeps_a_coarse_staircase_inside_zero_to_n():
    # Three channels opening at steps that fall between the samples of a coarse grid: the
    # default interpolant never leaves [0, 3], so neither do G, the currents per unit bias
    # and L0, at any mu and kT (the cubic spline rings to -0.1 and 3.1 here).
    energy = np.linspace(-10.0, 10.0, 101)  # spacing 0.2: kT = 0.2 is resolved, barely
    samples = staircase(energy)
    n_max = samples.max()
    mu = np.linspace(-1.0, 1.0, 401)
    for kT in (0.0, 0.2):
        g = linear_conductance(energy, samples, mu, kT, spin_degeneracy=2)
        assert np.all(g >= 0) and np.all(g <= 2 * n_max * (1 + 1e-12))
        l0 = onsager_integrals(energy, samples, mu[:, None], np.array([kT, 0.0]), orders=(0,))
        assert np.all(l0 >= 0) and np.all(l0 <= n_max * (1 + 1e-12))
        with warnings.catch_warnings():  # below the first step at kT = 0: no conductance
            warnings.simplefilter("ignore", NoConductanceWarning)
            c = thermoelectric_coefficients(energy, samples, mu, kT)
        assert np.all(c.conductance >= 0) and np.all(c.conductance <= n_max * (1 + 1e-12))
    # Current per unit bias is an average of the interpolant over the window.
    bias = 0.05
    for kT in (0.0, 0.2):
        i = current(energy, samples, mu + bias / 2, mu - bias / 2, kT, kT)
        assert np.all(i >= 0) and np.all(i <= n_max * bias * (1 + 1e-12))
    # At kT = 0 the heat kernel (E - mu_L) is <= 0 across the window [mu_R, mu_L]: with
    # 0 <= T <= N the heat current lies between -N bias^2 / 2 and 0.
    j = heat_current(energy, samples, mu + bias / 2, mu - bias / 2, 0.0, 0.0)
    assert np.all(j <= 0) and np.all(j >= -n_max * bias**2 / 2 * (1 + 1e-12))


def test_default_interpolation_converges_on_smooth_transmission():
    # No ringing does not mean no accuracy: on a smooth T(E) the default converges to the
    # exact integral (the callable path, to 1e-10) at least as fast as h^3.
    mu, kT = np.array([-0.1, 0.04, 0.2]), 0.02
    exact = thermoelectric_coefficients(None, resonance, mu, kT)
    errors = []
    for n_points in (201, 401, 801, 1601):
        energy = np.linspace(-1.0, 1.0, n_points)
        sampled = thermoelectric_coefficients(energy, resonance(energy), mu, kT)
        errors.append(np.max(np.abs(sampled.conductance / exact.conductance - 1)))
        seebeck_error = np.max(np.abs(sampled.seebeck - exact.seebeck))
    errors = np.array(errors)
    assert np.all(errors[1:] < errors[:-1] / 7)  # order >= 2.8
    assert errors[-1] < 1e-7 and seebeck_error < 1e-6


def test_negative_transmission_is_refused_and_rounding_is_set_to_zero():
    energy = np.linspace(-1.0, 1.0, 41)
    samples = np.ones((energy.size, 2))
    samples[7, 1] = -0.25
    with pytest.raises(
        ValueError,
        match=r"transmission must be >= 0 .* transmission\[7, 1\] = "
        r"-0\.25 \(at E = -0\.6",
    ):
        linear_conductance(energy, samples, 0.0, 0.05)
    with pytest.raises(ValueError, match=r"got transmission\(E\) = -0\.3 at E = "):
        current(None, lambda e: np.full(e.shape, -0.3), 0.1, 0.0, 0.0, 0.0)
    # A computed zero that came out as -1e-15 is a zero.
    rounding = np.where(energy > 0.0, 1.0, -1e-15)
    assert float(linear_conductance(energy, rounding, -0.5, 0.0)) == 0.0
    assert float(linear_conductance(None, lambda e: -1e-15 + 0 * e, 0.0, 0.01)) == 0.0


def test_several_curves_at_once_and_broadcast_shapes():
    energy = np.linspace(-1.0, 1.0, 1001)
    curves = np.stack([resonance(energy), 2 * energy**2, np.ones(energy.size)], axis=1)
    mu = np.linspace(-0.2, 0.2, 10).reshape(2, 5)
    together = linear_conductance(energy, curves, mu, 0.01)
    assert together.shape == (2, 5, 3)
    for k in range(3):
        alone = linear_conductance(energy, curves[:, k], mu, 0.01)
        assert np.allclose(together[..., k], alone, rtol=1e-14, atol=1e-16)
    bias = np.linspace(-0.3, 0.3, 9)
    i_together = current(energy, curves, bias / 2, -bias / 2, [[0.0], [0.01]], 0.01)
    assert i_together.shape == (2, 9, 3)
    for k in range(3):
        alone = current(energy, curves[:, k], bias / 2, -bias / 2, [[0.0], [0.01]], 0.01)
        assert np.allclose(i_together[..., k], alone, rtol=1e-13, atol=1e-16)
    assert onsager_integrals(energy, curves, mu, 0.01, orders=(1,)).shape == (1, 2, 5, 3)


# ---------------------------------------------------------------------------------
# Current and heat current
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kT", [0.0, 0.003, 0.03])
def test_constant_transmission_current_is_exact(kT):
    energy = np.linspace(-2.0, 2.0, 2001)
    bias = np.concatenate([np.linspace(-0.8, 0.8, 17), [1e-9, -3e-7]])
    mu_left, mu_right = 0.1 + bias / 3, 0.1 - 2 * bias / 3
    i = current(energy, np.full(energy.size, 0.7), mu_left, mu_right, kT, kT)
    assert np.allclose(i, 0.7 * (mu_left - mu_right), rtol=1e-12, atol=0)


def test_small_bias_current_is_the_linear_conductance():
    energy = np.linspace(-1.0, 1.0, 4001)
    samples = resonance(energy)
    mu, kT = np.array([-0.2, 0.05, 0.3]), 0.01
    g = linear_conductance(energy, samples, mu, kT, spin_degeneracy=2)
    for bias in [1e-5, 1e-8]:
        i = current(energy, samples, mu + bias / 2, mu - bias / 2, kT, kT, spin_degeneracy=2)
        assert np.allclose(i / bias, g, rtol=1e-9)


def test_current_is_antisymmetric_under_exchange_of_reservoirs():
    energy = np.linspace(-1.0, 1.0, 2001)
    samples = resonance(energy)
    mu_a, mu_b = np.linspace(-0.2, 0.2, 7), 0.02
    for kT_a, kT_b in [(0.01, 0.01), (0.02, 0.005), (0.0, 0.02), (0.0, 0.0)]:
        forward = current(energy, samples, mu_a, mu_b, kT_a, kT_b)
        backward = current(energy, samples, mu_b, mu_a, kT_b, kT_a)
        assert np.allclose(forward, -backward, rtol=1e-14, atol=1e-17)


def test_heat_current_between_temperatures_at_equal_mu():
    energy = np.linspace(-2.5, 2.5, 5001)
    kT_left, kT_right = np.array([0.05, 0.01, 0.0]), np.array([0.02, 0.03, 0.01])
    j = heat_current(energy, np.full(energy.size, 0.4), 0.3, 0.3, kT_left, kT_right)
    assert np.allclose(j, 0.4 * np.pi**2 / 6 * (kT_left**2 - kT_right**2), rtol=1e-10)
    # no net charge flows for constant transmission at equal chemical potentials
    i = current(energy, np.full(energy.size, 0.4), 0.3, 0.3, kT_left, kT_right)
    assert np.allclose(i, 0.0, atol=1e-15)


def test_energy_is_conserved_between_heat_and_work():
    # Heat leaving the left plus heat leaving the right reservoir is minus the
    # Joule power (mu_L - mu_R) I.
    energy = np.linspace(-1.0, 1.0, 2001)
    samples = resonance(energy)
    mu_left, mu_right = np.linspace(-0.2, 0.2, 6), -0.05
    for kT_left, kT_right in [(0.01, 0.01), (0.02, 0.004), (0.0, 0.0)]:
        i = current(energy, samples, mu_left, mu_right, kT_left, kT_right)
        j_left = heat_current(energy, samples, mu_left, mu_right, kT_left, kT_right)
        j_right = heat_current(energy, samples, mu_right, mu_left, kT_right, kT_left)
        assert np.allclose(j_left + j_right, -(mu_left - mu_right) * i, rtol=1e-11, atol=1e-16)


def test_currents_reproduce_seebeck_and_peltier_coefficients():
    # Linear response of the currents (Onsager): a small temperature difference drives
    # I = (L1 / kT) d(kT) = -S L0 d(kT), and a small bias carries heat J = -Pi I.
    energy = np.linspace(-1.0, 1.0, 4001)
    samples = resonance(energy)
    mu, kT = np.array([-0.1, 0.04, 0.15]), 0.01
    c = thermoelectric_coefficients(energy, samples, mu, kT, spin_degeneracy=2)
    step = 1e-5 * kT
    i_thermal = current(energy, samples, mu, mu, kT + step / 2, kT - step / 2, spin_degeneracy=2)
    assert np.allclose(i_thermal / step, -c.seebeck * c.conductance, rtol=1e-7)
    bias = 1e-6
    args = (mu + bias / 2, mu - bias / 2, kT, kT)
    i = current(energy, samples, *args)
    j = heat_current(energy, samples, *args)
    # heat leaving the left reservoir is measured from mu_L = mu + bias/2
    assert np.allclose(j / i + bias / 2, -c.peltier, rtol=1e-7)


def test_zero_temperature_current_of_a_cubic_is_its_integral():
    energy = np.linspace(-1.0, 1.0, 9)  # coarse grid is fine at kT = 0

    def antiderivative(e):
        return e + e**2 / 2 - e**4 / 4

    samples = 1 + energy - energy**3
    mu_left, mu_right = np.array([0.37, -0.6, 0.11]), np.array([-0.21, 0.9, 0.1100001])
    i = current(energy, samples, mu_left, mu_right, 0.0, 0.0, interpolation="cubic")
    assert np.allclose(i, antiderivative(mu_left) - antiderivative(mu_right), rtol=1e-12)


def test_bias_dependent_transmission():
    # A resonance pulled along by the bias: T(E, V) = T0(E - V/2).
    energy_points = None
    bias = np.array([-0.3, -0.05, 0.0, 0.1, 0.25])
    mu_left, mu_right, kT = 0.02 + bias / 2, 0.02 - bias / 2, 0.01

    def shifted(energy, v):
        return resonance(energy - v / 2)

    i = current(energy_points, shifted, mu_left, mu_right, kT, kT)
    for k, v in enumerate(bias):
        alone = current(None, lambda e, v=v: resonance(e - v / 2), mu_left[k], mu_right[k], kT, kT)
        assert i[k] == pytest.approx(float(alone), rel=1e-10, abs=1e-16)

    # a bias-proportional prefactor scales the bias-independent current exactly
    def scaled(energy, v):
        return (1 + 2 * v) * resonance(energy)

    i_scaled = current(None, scaled, mu_left, mu_right, kT, kT)
    i_plain = current(None, resonance, mu_left, mu_right, kT, kT)
    assert np.allclose(i_scaled, (1 + 2 * bias) * i_plain, rtol=1e-10, atol=1e-16)


def test_scalar_callable_and_numpy_ufunc_transmission():
    mu = np.array([0.0, 0.1])
    g = linear_conductance(None, lambda energy: 1.0, mu, 0.01)
    assert np.allclose(g, 1.0, rtol=1e-10)
    # T(E) = exp(E): G = e^mu pi kT / sin(pi kT)
    g_exp = linear_conductance(None, np.exp, mu, 0.01)
    assert np.allclose(g_exp, np.exp(mu) * np.pi * 0.01 / np.sin(np.pi * 0.01), rtol=1e-10)


# ---------------------------------------------------------------------------------
# Invariants over random transmissions
# ---------------------------------------------------------------------------------

GRID = np.linspace(-1.5, 1.5, 121)
KT_RANDOM = 0.03  # at least the grid spacing 0.025


@settings(max_examples=25, deadline=None)
@given(
    samples=hnp.arrays(float, GRID.size, elements=st.floats(0.0, 5.0)),
    mu_right=st.floats(-0.1, 0.1),
)
def test_power_dissipated_is_non_negative_and_current_monotone(samples, mu_right):
    # pchip keeps non-negative samples non-negative between the grid points, so the
    # integrand T (f_L - f_R) has the sign of the bias everywhere.
    bias = np.linspace(-0.2, 0.2, 41)
    i = current(
        GRID, samples, mu_right + bias, mu_right, KT_RANDOM, KT_RANDOM, interpolation="pchip"
    )
    scale = max(samples.max(), 1.0) * 1e-13
    assert np.all(bias * i >= -scale * np.abs(bias))
    assert np.all(np.diff(i) >= -scale)


@settings(max_examples=25, deadline=None)
@given(samples=hnp.arrays(float, GRID.size, elements=st.floats(0.0, 5.0)))
def test_lorenz_ratio_and_thermal_conductance_are_physical(samples):
    # Cauchy-Schwarz on the positive kernel: L0 L2 >= L1^2, so kappa >= 0 and ZT >= 0.
    c = thermoelectric_coefficients(
        GRID, samples + 1e-3, np.array([-0.2, 0.0, 0.2]), KT_RANDOM, interpolation="linear"
    )
    assert np.all(c.thermal_conductance >= 0)
    assert np.all(c.zt >= 0)
    assert np.all(c.lorenz > 0)


def test_unconverged_adaptive_integral_warns(monkeypatch):
    from mesoscopic import landauer

    monkeypatch.setattr(landauer, "_ADAPTIVE_ROUNDS", 1)
    with pytest.warns(scipy.integrate.IntegrationWarning, match="did not reach relative"):
        linear_conductance(None, lambda e: np.where(e > 0.013, 1.0, 0.0), 0.0, 0.01)


# ---------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------

ENERGY = np.linspace(-1.0, 1.0, 201)
ONES = np.ones(ENERGY.size)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: linear_conductance(ENERGY, ONES, 0.0, -0.01), ValueError, r"kT must be >= 0"),
        (
            lambda: current(ENERGY, ONES, 0.1, 0.0, -1.0, 0.01),
            ValueError,
            r"kT_left must be >= 0.*-1\.0",
        ),
        (
            lambda: linear_conductance(ENERGY.reshape(1, -1), ONES, 0.0, 0.01),
            ValueError,
            r"energies must be a 1-D array, got shape \(1, 201\)",
        ),
        (
            lambda: linear_conductance(ENERGY[::-1], ONES, 0.0, 0.01),
            ValueError,
            r"energies must be strictly increasing",
        ),
        (
            lambda: linear_conductance([0.0, 1.0, 1.0, 2.0], [1, 1, 1, 1], 0.5, 0.0),
            ValueError,
            r"strictly increasing, got energies\[1\] = 1\.0 followed by energies\[2\] = 1\.0",
        ),
        (
            lambda: linear_conductance(
                [0.0, 1.0, 2.0], [1, 1, 1], 0.5, 0.0, interpolation="cubic"
            ),
            ValueError,
            r"at least 4 points for interpolation='cubic', got 3",
        ),
        (
            lambda: linear_conductance([0.0], [1.0], 0.0, 0.0, interpolation="linear"),
            ValueError,
            r"at least 2 points for interpolation='linear', got 1",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES[:-1], 0.0, 0.01),
            ValueError,
            r"transmission must have shape \(n_E, \.\.\.\) with n_E = len\(energies\) = 201"
            r".*got shape \(200,\)",
        ),
        (
            lambda: linear_conductance(ENERGY, np.where(ENERGY > 0, np.nan, 1.0), 0.0, 0.01),
            ValueError,
            r"(?s)transmission must be finite.*contains NaN",
        ),
        (
            lambda: current(ENERGY, ONES, np.nan, 0.0, 0.01, 0.01),
            ValueError,
            r"mu_left must be finite.*NaN",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES, 0.8, 0.01),
            ValueError,
            r"grid covers \[-1, 1\] but .* non-negligible on \[0\.46, 1\.14\] "
            r".*extend the energy grid",
        ),
        (
            lambda: current(ENERGY, ONES, 0.5, -0.5, 0.02, 0.02),
            ValueError,
            r"covers \[-1, 1\] but the window f_L - f_R is non-negligible on \[-1\.18, 1\.18\]",
        ),
        (
            lambda: current(ENERGY, ONES, 1.5, 0.0, 0.0, 0.0),
            ValueError,
            r"non-negligible on \[0, 1\.5\]",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES, 0.0, 0.005),
            ValueError,
            r"cannot resolve the temperature: its largest spacing 0\.01 .* exceeds "
            r"kT = 0\.005; use a grid with spacing <= kT there .* or kT = 0",
        ),
        (
            lambda: current(ENERGY, ONES, 0.1, 0.0, 0.0, 0.001),
            ValueError,
            r"cannot resolve the temperature.*around mu = 0 exceeds kT = 0\.001",
        ),
        (
            lambda: linear_conductance(None, ONES, 0.0, 0.01),
            ValueError,
            r"energies must be given when transmission is an array",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES, 0.0, 0.01, spin_degeneracy=0),
            ValueError,
            r"spin_degeneracy must be 1 .* or 2 .*got 0",
        ),
        (
            lambda: current(ENERGY, ONES, 0.0, 0.0, 0.01, 0.01, spin_degeneracy=2.5),
            ValueError,
            r"spin_degeneracy must be 1 .* or 2 .*got 2\.5",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES, 0.0, 0.01, interpolation="spline"),
            ValueError,
            r"interpolation must be one of 'cubic', 'pchip', 'linear', got 'spline'",
        ),
        (
            lambda: onsager_integrals(ENERGY, ONES, 0.0, 0.01, orders=(0, -1)),
            ValueError,
            r"orders must be a non-empty sequence of integers >= 0, got \(0, -1\)",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES, [0.0, 0.1], [0.01, 0.02, 0.03]),
            ValueError,
            r"must broadcast to a common shape, got shapes mu \(2,\), kT \(3,\)",
        ),
        (
            lambda: thermoelectric_coefficients(ENERGY, ONES, 0.0, 0.02, phonon_conductance=-1.0),
            ValueError,
            r"phonon_conductance must be >= 0, got .*-1\.0",
        ),
        (
            lambda: linear_conductance(None, lambda e, v: e, 0.0, 0.01),
            TypeError,
            r"linear_conductance needs a bias-independent transmission T\(E\)",
        ),
        (
            lambda: current(None, lambda e, v, w: e, 0.0, 0.0, 0.01, 0.01),
            TypeError,
            r"callable T\(E\) or T\(E, bias\); got a callable with 3 required",
        ),
        (
            lambda: linear_conductance(None, lambda e: e[:3], 0.0, 0.01),
            ValueError,
            r"transmission\(E\) must be vectorized",
        ),
        (
            lambda: linear_conductance(None, lambda e: np.where(e > 0.1, np.nan, 1.0), 0.0, 0.01),
            ValueError,
            r"transmission\(E\) returned NaN or inf at E = 0\.1",
        ),
        (
            lambda: linear_conductance(None, lambda e: e + 1j, 0.0, 0.01),
            TypeError,
            r"transmission\(E\) must return real numbers, got complex",
        ),
        (
            lambda: linear_conductance(ENERGY, ONES + 0.5j, 0.0, 0.01),
            TypeError,
            r"transmission must be real",
        ),
        (
            lambda: linear_conductance([0.2, 0.1], lambda e: e, 0.0, 0.01),
            ValueError,
            r"breakpoints\) must be strictly increasing",
        ),
    ],
)
def test_bad_input_is_reported(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_zero_bias_at_zero_temperature_needs_no_grid_but_a_conductance_does():
    grid = np.linspace(0.0, 1.0, 11)
    # mu_L = mu_R outside the grid at kT = 0: an empty window, the current is exactly 0.
    np.testing.assert_array_equal(
        current(grid, grid, np.array([0.3, 5.0]), np.array([0.5, 5.0]), 0.0, 0.0)[1], 0.0
    )
    # ...but the conductance at mu = 5 needs T(5), which the grid does not have.
    with pytest.raises(ValueError, match="extend the energy grid"):
        linear_conductance(grid, grid, 5.0, 0.0)
