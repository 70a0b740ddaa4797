"""Tests of mesoscopic.leads: bands, unit-current modes and exact lead self-energies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as la
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mesoscopic
from mesoscopic.leads import Bands, LeadData, bands
from mesoscopic.leads import _modes_at_energy as modes
from mesoscopic.leads import _selfenergy_at_energy as selfenergy

# --------------------------------------------------------------------------------------------
# Leads written by hand
# --------------------------------------------------------------------------------------------


def chain(t: float = 1.0, onsite: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """1D chain: E = onsite - 2 t cos k."""
    return np.array([[onsite]]), np.array([[-t]])


def strip(width: int, *, tx: float = 1.0, ty: float = 1.0, onsite=None):
    """Square-lattice strip lead (hard walls), hopping -tx along the lead and -ty across."""
    h = -ty * (np.eye(width, k=1) + np.eye(width, k=-1))
    if onsite is not None:
        h = h + np.diag(onsite)
    return h, -tx * np.eye(width)


def strip_subbands(width: int, ty: float = 1.0) -> np.ndarray:
    """Transverse energies of a hard-wall strip."""
    return -2 * ty * np.cos(np.arange(1, width + 1) * np.pi / (width + 1))


def side_coupled_chain(tau: float = 0.5, eps_d: float = 0.3):
    """Chain with a dangling orbital on every site: hop has rank 1 (orbital 1 never hops)."""
    return np.array([[0.0, tau], [tau, eps_d]]), np.array([[-1.0, 0.0], [0.0, 0.0]])


def honeycomb_cell(kind: str, width: int):
    """Graphene ribbon cell (nearest-neighbour hopping -1, Kwant's honeycomb geometry)."""
    a1, a2 = np.array([1.0, 0.0]), np.array([0.5, np.sqrt(3) / 2])
    basis = [np.zeros(2), np.array([0.0, 1 / np.sqrt(3)])]
    if kind == "zigzag":
        period = a1
        positions = [j * a2 + b for j in range(width) for b in basis]
        positions = [np.array([p[0] % 1.0, p[1]]) for p in positions]
    else:  # armchair: period sqrt(3) across the zigzag direction
        period = np.array([0.0, np.sqrt(3)])
        positions = [
            i * a1 + j * a2 + b
            for i in range(-3 * width, 3 * width)
            for j in range(-3 * width, 3 * width)
            for b in basis
            if -1e-9 <= (i * a1 + j * a2 + b)[1] < np.sqrt(3) - 1e-9
            and -1e-9 <= (i * a1 + j * a2 + b)[0] < width - 1e-9
        ]
    pos = np.array(positions)
    bond = 1 / np.sqrt(3)
    inside = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1)
    across = np.linalg.norm(pos[:, None] - (pos[None, :] + period), axis=-1)
    return -1.0 * (np.abs(inside - bond) < 1e-6), -1.0 * (np.abs(across - bond) < 1e-6)


def random_lead(n: int, rank: int, seed: int):
    """Random complex lead with a hopping of the given rank."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    left = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
    right = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
    return (h + h.conj().T) / 2, left @ right.conj().T / np.sqrt(n)


LEADS = {
    "chain": chain(),
    "strip": strip(5),
    "side_coupled": side_coupled_chain(),
    "zigzag": honeycomb_cell("zigzag", 4),
    "armchair": honeycomb_cell("armchair", 4),
    "rank1_multiorbital": random_lead(4, 1, seed=3),
    "random_full_rank": random_lead(3, 3, seed=5),
}
# Energies well away from band edges and flat bands of the leads above.
ENERGIES = [-1.3, -0.45, 0.2, 0.77, 1.6]


# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------


def sancho_rubio_selfenergy(h, hop, energy, eta=1e-9, iterations=80):
    """Self-energy from the surface Green's function by decimation at E + i eta.

    Lopez Sancho, Lopez Sancho and Rubio, J. Phys. F 15, 851 (1985).
    """
    z = (energy + 1j * eta) * np.eye(h.shape[0])
    surface, bulk = h.astype(complex), h.astype(complex)
    forward, backward = hop.astype(complex), hop.conj().T.astype(complex)
    for _ in range(iterations):
        g = la.inv(z - bulk)
        fgb, bgf = forward @ g @ backward, backward @ g @ forward
        surface, bulk = surface + fgb, bulk + fgb + bgf
        forward, backward = forward @ g @ forward, backward @ g @ backward
    return hop @ la.inv(z - surface) @ hop.conj().T


def current_matrix(prop, hop):
    """Particle current between cells 0 and 1 of every pair of propagating modes.

    J[a, b] = i (phi_a^+ hop phi_b lambda_b - phi_a^+ hop^+ phi_b conj(lambda_a)), the form
    whose diagonal is the current -2 Im(psi_0^+ hop psi_1) of each mode.
    """
    lam = np.exp(1j * prop.momenta)
    phi = prop.wave_functions
    forward = phi.conj().T @ hop @ phi * lam[None, :]
    backward = phi.conj().T @ hop.conj().T @ phi * lam.conj()[:, None]
    return 1j * (forward - backward)


def chain_selfenergy(energy, t=1.0):
    """Closed form retarded self-energy of a semi-infinite chain (hopping -t)."""
    if abs(energy) <= 2 * t:
        return (energy - 1j * np.sqrt(4 * t**2 - energy**2)) / 2
    return (energy - np.sign(energy) * np.sqrt(energy**2 - 4 * t**2)) / 2


# --------------------------------------------------------------------------------------------
# Bands
# --------------------------------------------------------------------------------------------


def test_chain_bands_and_velocities_closed_form():
    ks = np.linspace(-np.pi, np.pi, 41)
    h, hop = chain(t=1.3, onsite=0.2)
    np.testing.assert_allclose(bands(h, hop, ks)[:, 0], 0.2 - 2.6 * np.cos(ks), atol=1e-13)
    band = Bands(h, hop)
    for k in ks:
        energy, velocity = band(k, derivative_order=1)
        assert energy[0] == pytest.approx(0.2 - 2.6 * np.cos(k), abs=1e-13)
        assert velocity[0] == pytest.approx(2.6 * np.sin(k), abs=1e-13)
        np.testing.assert_allclose(band(k), energy, atol=1e-14)


@pytest.mark.parametrize("name", ["strip", "zigzag", "random_full_rank", "rank1_multiorbital"])
def test_band_velocities_are_finite_difference_derivatives(name):
    h, hop = LEADS[name]
    band = Bands(h, hop)
    step = 1e-5
    for k in [-2.1, -0.7, 0.4, 1.9]:
        energies, velocities = band(k, derivative_order=1)
        if np.min(np.diff(energies)) < 1e-3:
            continue  # finite differences of sorted bands fail at crossings
        slope = (bands(h, hop, [k + step])[0] - bands(h, hop, [k - step])[0]) / (2 * step)
        np.testing.assert_allclose(velocities, slope, atol=1e-8)


def test_degenerate_band_velocities_diagonalize_the_velocity_operator():
    # Two copies of a chain with opposite-sign hopping cross at k = pi/2 where E = 0;
    # there the degenerate pair must get velocities +2 and -2, not their average.
    h = np.zeros((2, 2))
    hop = np.diag([-1.0, 1.0])
    rotation = np.array([[1, 1], [1, -1]]) / np.sqrt(2)  # hide the block structure
    energies, velocities = Bands(rotation @ h @ rotation, rotation @ hop @ rotation)(
        np.pi / 2, derivative_order=1
    )
    np.testing.assert_allclose(energies, [0, 0], atol=1e-14)
    np.testing.assert_allclose(velocities, [-2, 2], atol=1e-13)


def test_bands_input_errors():
    with pytest.raises(ValueError, match="h_cell must be Hermitian"):
        bands([[0, 1], [2, 0]], np.eye(2), [0.0])
    with pytest.raises(ValueError, match="hop must have the shape of h_cell"):
        bands(np.eye(2), np.eye(3), [0.0])
    with pytest.raises(ValueError, match="momenta must be finite"):
        bands(np.eye(1), np.eye(1), [np.nan])
    with pytest.raises(ValueError, match="derivative_order must be 0 or 1"):
        Bands(np.eye(1), np.eye(1))(0.0, derivative_order=2)


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", np.linspace(0.05, np.pi - 0.05, 9))
def test_chain_modes_closed_form(k):
    t = 0.8
    h, hop = chain(t=t)
    energy = -2 * t * np.cos(k)
    prop, stab = modes(h, hop, energy)
    assert prop.num_modes == 1
    np.testing.assert_allclose(prop.momenta, [-k, k], atol=1e-12)
    np.testing.assert_allclose(
        prop.velocities, [-2 * t * np.sin(k), 2 * t * np.sin(k)], rtol=1e-12
    )
    np.testing.assert_allclose(np.abs(prop.wave_functions[0]) ** 2, 1 / (2 * t * np.sin(k)))
    # Sigma = hop e^{ik} for the outgoing wave, the textbook -t e^{ik}.
    assert stab.selfenergy[0, 0] == pytest.approx(-t * np.exp(1j * k), abs=1e-12)


@pytest.mark.parametrize("energy", [-3.1, -2.0000001, 2.5, 40.0])
def test_chain_selfenergy_outside_the_band_is_real(energy):
    sigma = selfenergy(*chain(), energy)
    assert sigma[0, 0] == pytest.approx(chain_selfenergy(energy), abs=1e-11)
    assert modes(*chain(), energy)[0].num_modes == 0


@pytest.mark.parametrize("name", list(LEADS))
@pytest.mark.parametrize("energy", ENERGIES)
def test_modes_are_bloch_solutions_with_band_velocities(name, energy):
    h, hop = LEADS[name]
    prop, _ = modes(h, hop, energy)
    band = Bands(h, hop)
    m = prop.num_modes
    assert np.all(prop.velocities[:m] < 0) and np.all(prop.velocities[m:] > 0)
    for j, k in enumerate(prop.momenta):
        phi = prop.wave_functions[:, j]
        bloch = h + hop * np.exp(1j * k) + hop.conj().T * np.exp(-1j * k)
        residual = np.linalg.norm(bloch @ phi - energy * phi) / np.linalg.norm(phi)
        assert residual < 1e-10
        energies, velocities = band(k, derivative_order=1)
        at_energy = np.abs(energies - energy) < 1e-9
        assert np.any(at_energy)
        # Degenerate Hellmann-Feynman: the mode velocity is one of the band velocities at E.
        assert np.min(np.abs(velocities[at_energy] - prop.velocities[j])) < 1e-9


@pytest.mark.parametrize("name", list(LEADS))
@pytest.mark.parametrize("energy", ENERGIES)
def test_mode_count_equals_band_crossings(name, energy):
    h, hop = LEADS[name]
    ks = np.linspace(-np.pi, np.pi, 4001)
    energies = bands(h, hop, ks)
    crossings = np.sum(np.diff(np.sign(energies - energy), axis=0) != 0)
    assert 2 * modes(h, hop, energy)[0].num_modes == crossings


@pytest.mark.parametrize("name", list(LEADS))
@pytest.mark.parametrize("energy", ENERGIES)
def test_unit_current_normalization_with_the_current_operator(name, energy):
    h, hop = LEADS[name]
    prop, _ = modes(h, hop, energy)
    expected = np.diag(np.sign(prop.velocities))
    np.testing.assert_allclose(current_matrix(prop, hop), expected, atol=1e-10)
    np.testing.assert_allclose(
        np.abs(prop.velocities) * np.sum(np.abs(prop.wave_functions) ** 2, axis=0), 1, rtol=1e-10
    )


def test_degenerate_modes_are_current_orthogonal():
    # A spin-degenerate strip written without projectors: every k carries two modes.
    h, hop = strip(4)
    h2, hop2 = np.kron(h, np.eye(2)), np.kron(hop, np.eye(2))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8)))
    h2, hop2 = q @ h2 @ q.conj().T, q @ hop2 @ q.conj().T  # scramble the orbital basis
    prop, _ = modes(h2, hop2, -1.1)
    assert prop.num_modes == 2 * modes(h, hop, -1.1)[0].num_modes
    np.testing.assert_allclose(
        current_matrix(prop, hop2), np.diag(np.sign(prop.velocities)), atol=1e-10
    )
    # Each degenerate pair shares its momentum and velocity.
    out = slice(prop.num_modes, None)
    np.testing.assert_allclose(prop.momenta[out][::2], prop.momenta[out][1::2], atol=1e-12)
    np.testing.assert_allclose(prop.velocities[out][::2], prop.velocities[out][1::2], atol=1e-10)


@pytest.mark.parametrize("name", ["chain", "strip", "zigzag", "rank1_multiorbital"])
def test_density_of_states_times_velocity_is_universal(name):
    # Each channel contributes (1/2pi) dk/dE states per unit length and energy; times its
    # velocity this is 1/(2 pi) (hbar = 1), the cancellation behind G0 = e^2/h per channel.
    h, hop = LEADS[name]
    energy, step = 0.2, 1e-6
    lower, upper = modes(h, hop, energy - step)[0], modes(h, hop, energy + step)[0]
    prop = modes(h, hop, energy)[0]
    for j in range(prop.num_modes, 2 * prop.num_modes):  # outgoing modes, k increasing with E
        k = prop.momenta[j]
        k_lower = lower.momenta[np.argmin(np.abs(np.angle(np.exp(1j * (lower.momenta - k)))))]
        k_upper = upper.momenta[np.argmin(np.abs(np.angle(np.exp(1j * (upper.momenta - k)))))]
        dk_de = np.angle(np.exp(1j * (k_upper - k_lower))) / (2 * step)
        density_per_mode = dk_de / (2 * np.pi)
        assert density_per_mode * prop.velocities[j] == pytest.approx(1 / (2 * np.pi), rel=1e-6)


# --------------------------------------------------------------------------------------------
# Self-energy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LEADS))
@pytest.mark.parametrize("energy", [-1.3, 0.2, 1.6])
def test_selfenergy_matches_sancho_rubio_decimation(name, energy):
    h, hop = LEADS[name]
    reference = sancho_rubio_selfenergy(np.asarray(h, complex), np.asarray(hop, complex), energy)
    np.testing.assert_allclose(selfenergy(h, hop, energy), reference, atol=2e-6)


@pytest.mark.parametrize("name", list(LEADS))
@pytest.mark.parametrize("energy", ENERGIES)
def test_selfenergy_is_exact_fixed_point_and_gamma_comes_from_incoming_modes(name, energy):
    h, hop = LEADS[name]
    prop, stab = modes(h, hop, energy)
    sigma = stab.selfenergy
    n = h.shape[0]
    # Dyson: the lead seen from cell -1 is hop (E - h - Sigma)^{-1} hop^dagger, exactly.
    dyson = hop @ la.solve(energy * np.eye(n) - h - sigma, hop.conj().T)
    np.testing.assert_allclose(sigma, dyson, atol=1e-11)
    # Gamma = i (Sigma - Sigma^+) = sum over incoming modes of s s^+ with
    # s = hop phi - Sigma phi e^{-ik}: hop psi_0 of the lead's hard-wall scattering states.
    gamma = 1j * (sigma - sigma.conj().T)
    m = prop.num_modes
    phi, k = prop.wave_functions[:, :m], prop.momenta[:m]
    sources = hop @ phi - sigma @ phi * np.exp(-1j * k)
    np.testing.assert_allclose(gamma, sources @ sources.conj().T, atol=1e-11)
    np.testing.assert_allclose(stab.sources, sources, atol=1e-11)
    # Im Sigma = -Gamma/2 is negative semidefinite with one positive direction per channel.
    eigenvalues = np.linalg.eigvalsh(gamma)
    assert eigenvalues.min() > -1e-11
    assert np.sum(eigenvalues > 1e-8) == m


def test_gamma_of_the_chain_is_the_velocity():
    # 1D chain: Gamma = -2 Im Sigma = 2 t sin k = v (hbar = 1, unit cell length).
    for k in [0.3, 1.2, 2.9]:
        prop, stab = modes(*chain(), -2 * np.cos(k))
        gamma = -2 * stab.selfenergy.imag[0, 0]
        assert gamma == pytest.approx(prop.velocities[1], rel=1e-12)


def test_strip_selfenergy_closed_form_per_subband():
    width, energy = 7, -0.9
    h, hop = strip(width)
    subbands = strip_subbands(width)
    y = np.arange(1, width + 1)
    profile = np.sqrt(2 / (width + 1)) * np.sin(np.outer(y, y) * np.pi / (width + 1))
    expected = profile @ np.diag([chain_selfenergy(energy - e) for e in subbands]) @ profile
    np.testing.assert_allclose(selfenergy(h, hop, energy), expected, atol=1e-13)


# --------------------------------------------------------------------------------------------
# Singular hoppings, band edges, strongly evanescent modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("energy", [-1.7, -0.4, 0.6, 1.5])
def test_side_coupled_orbital_dispersion(energy):
    # Orbital 1 never hops to the next cell; eliminating it gives
    # E - tau^2 / (E - eps_d) = -2 cos k.
    tau, eps_d = 0.5, 0.3
    prop, _ = modes(*side_coupled_chain(tau, eps_d), energy)
    effective = energy - tau**2 / (energy - eps_d)
    if abs(effective) < 2:
        k = np.arccos(-effective / 2)
        np.testing.assert_allclose(prop.momenta, [-k, k], atol=1e-12)
    else:
        assert prop.num_modes == 0


def test_zero_hopping_lead_has_no_modes():
    prop, stab = modes(np.diag([0.1, -0.4]), np.zeros((2, 2)), 0.3)
    assert prop.num_modes == 0 and prop.wave_functions.shape == (2, 0)
    np.testing.assert_array_equal(stab.selfenergy, np.zeros((2, 2)))


def test_graphene_ribbon_hoppings_are_singular():
    for kind in ("zigzag", "armchair"):
        h, hop = honeycomb_cell(kind, 4)
        assert np.linalg.matrix_rank(hop) < h.shape[0] / 2 + 1
        assert np.linalg.matrix_rank(hop) > 0


@pytest.mark.parametrize("edge", ["bottom", "top"])
def test_chain_exactly_at_band_edge(edge):
    energy = -2.0 if edge == "bottom" else 2.0
    prop, stab = modes(*chain(), energy)
    # The merging k = +0/-0 pair carries no current: not a propagating mode (as in Kwant).
    assert prop.num_modes == 0
    assert np.all(np.isfinite(stab.selfenergy))
    assert stab.selfenergy[0, 0] == pytest.approx(energy / 2, abs=1e-12)


@pytest.mark.parametrize("subband", [0, 1, 3])
def test_strip_exactly_at_subband_bottom(subband):
    width = 6
    h, hop = strip(width)
    energy = strip_subbands(width)[subband] - 2
    prop, stab = modes(h, hop, energy)
    assert prop.num_modes == subband  # the subband opening at this energy is not counted
    assert np.all(np.isfinite(prop.wave_functions)) and np.all(np.isfinite(stab.selfenergy))
    n = h.shape[0]
    dyson = hop @ la.solve(energy * np.eye(n) - h - stab.selfenergy, hop.conj().T)
    np.testing.assert_allclose(stab.selfenergy, dyson, atol=1e-10)
    sigma_below = selfenergy(h, hop, energy - 1e-10)  # the self-energy is continuous there
    np.testing.assert_allclose(stab.selfenergy, sigma_below, atol=1e-4)


@pytest.mark.parametrize("energy", [-0.999999, 0.999999])
def test_slow_mode_whose_shifted_pencil_is_exactly_singular(energy):
    # Strip of 3 sites, hopping 0.5: E = -+(1 - 1e-6) lies 1e-6 inside the band of the middle
    # subband (k near 0 or pi, |v| = 1.4e-3). Checking that this slow mode is resolved from
    # its partner factorizes the pencil shifted by its own eigenvalue, which here is singular
    # to the last bit: the check must not end in SciPy's "array must not contain infs".
    h, hop = strip(3, tx=0.5, ty=0.5)
    prop, stab = modes(h, hop, energy)
    subbands = strip_subbands(3, ty=0.5)
    assert prop.num_modes == int(np.sum(np.abs(energy - subbands) < 1.0)) == 2
    np.testing.assert_allclose(np.sort(np.abs(prop.velocities))[:2], np.sqrt(2e-6), rtol=1e-4)
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-9
    )
    gamma = 1j * (stab.selfenergy - stab.selfenergy.conj().T)
    np.testing.assert_allclose(gamma, stab.sources @ stab.sources.conj().T, atol=1e-12)


def band_extremum(h, hop, k_guess: float, band: int, sign: float) -> tuple[float, float]:
    """``(k, E)`` of the extremum of band ``band`` near ``k_guess`` (sign +1: a minimum)."""
    from scipy import optimize

    def energy(k: float) -> float:
        return float(sign * Bands(h, hop)(k)[band])

    found = optimize.minimize_scalar(
        energy, bounds=(k_guess - 0.05, k_guess + 0.05), method="bounded",
        options={"xatol": 1e-13},
    )  # fmt: skip
    return float(found.x), sign * float(found.fun)


@pytest.mark.parametrize("seed", [5, 11])
@pytest.mark.parametrize("offset", [1e-12, 1e-13])
def test_slow_modes_a_hair_inside_a_band_are_open_with_exact_currents(seed, offset):
    # Two solutions next to a band extremum at a generic k: 1e-12 inside the band they are
    # propagating (|v| ~ 1e-6), but their pencil eigenvectors are nearly parallel and
    # carried velocities wrong by 1e-4 (or lost the mode): Gamma = sources sources^dagger
    # and the unit currents then failed by 1e-5. As in Kwant, a channel is open wherever
    # the band reaches the energy with nonzero velocity.
    h, hop = random_lead(3, 3, seed=seed)
    ks = np.linspace(-np.pi, np.pi, 721)
    table = bands(h, hop, ks)
    band = 1
    sign = 1.0 if seed == 5 else -1.0  # a minimum of band 1 (seed 5), a maximum (seed 11)
    i = int(np.argmin(sign * table[:, band]))
    k_edge, e_edge = band_extremum(h, hop, ks[i], band, sign)
    energy = e_edge + sign * offset  # inside the band
    prop, stab = modes(h, hop, energy)
    crossings = int(np.sum(np.diff(np.sign(bands(h, hop, ks) - energy), axis=0) != 0))
    assert 2 * prop.num_modes == crossings + 2  # the two slow modes (not resolved on the grid)
    # Their speed is that of the parabola through the extremum, sqrt(2 |E''| offset), up to
    # the rounding of the band energies (~1e-15, here in the reference edge too) relative
    # to the depth: dv / v = dE / (2 offset).
    step = 1e-3
    near = bands(h, hop, [k_edge - step, k_edge, k_edge + step])[:, band]
    curvature = abs(near[0] - 2 * near[1] + near[2]) / step**2
    slow = np.sort(np.abs(prop.velocities))[:2]
    np.testing.assert_allclose(slow, np.sqrt(2 * curvature * offset), rtol=1e-14 / offset)
    # Unit currents and no cross currents where the S-matrix measures the flux, between
    # cell -1 and cell 0 (the reduced amplitudes alpha = A^dagger psi_{-1}, beta =
    # B^dagger psi_0): Gram-Schmidt in the current form makes them exact there.
    m = stab.num_modes
    alpha = np.hstack([stab.alpha_in, stab.alpha_out[:, :m]])
    beta = np.hstack([stab.beta_in, stab.beta_out[:, :m]])
    interface = 1j * (alpha.conj().T @ beta - beta.conj().T @ alpha)
    np.testing.assert_allclose(interface, np.diag([-1.0] * m + [1.0] * m), atol=1e-9)
    gamma = 1j * (stab.selfenergy - stab.selfenergy.conj().T)
    np.testing.assert_allclose(gamma, stab.sources @ stab.sources.conj().T, atol=1e-11)
    # Continued into the lead as Bloch waves the two slow modes are exact only to the
    # rounding of their energies: two Bloch solutions whose energies differ by dE carry a
    # cross current dE S_ab / (k_a - k_b), here dE / (4 offset) after unit-current
    # normalization (seed 11 at 1e-12: 4e-6), which no choice of the pair avoids in double
    # precision. That is the bound checked on the currents between cells 0 and 1.
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-14 / offset
    )


def test_strongly_evanescent_modes_of_a_long_supercell():
    # A strip lead described with a 24-site-long unit cell: its evanescent solutions decay
    # by |lambda| = exp(-24 kappa) per cell, down to 1e-17. The self-energy on the last column
    # must be the ordinary strip's, to full precision.
    width, length, energy = 12, 24, -3.6
    h1, hop1 = strip(width)
    n = width * length
    h = np.kron(np.eye(length), h1) - np.kron(
        np.eye(length, k=1) + np.eye(length, k=-1), np.eye(width)
    )
    hop = np.zeros((n, n))
    hop[-width:, :width] = hop1
    ratio = (strip_subbands(width) - energy) / 2
    kappa = np.arccosh(ratio[ratio > 1])  # decay rates of the closed subbands, per site
    assert np.exp(-length * kappa.max()) < 1e-16
    prop, stab = modes(h, hop, energy)
    assert prop.num_modes == modes(h1, hop1, energy)[0].num_modes
    assert np.all(np.isfinite(stab.alpha_out)) and np.all(np.isfinite(stab.beta_out))
    np.testing.assert_allclose(
        stab.selfenergy[-width:, -width:], selfenergy(h1, hop1, energy), atol=1e-12
    )


def test_wide_strip_near_band_bottom():
    width = 100
    h, hop = strip(width)
    energy = strip_subbands(width)[2] - 2 + 1e-4  # three channels, 97 evanescent subbands
    prop, stab = modes(h, hop, energy)
    assert prop.num_modes == 3
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-9
    )
    sources = stab.sources
    gamma = 1j * (stab.selfenergy - stab.selfenergy.conj().T)
    np.testing.assert_allclose(gamma, sources @ sources.conj().T, atol=1e-12)


def test_exceptional_point_of_the_complex_band_structure():
    # Chain with next-nearest-neighbour hopping t' = 0.1, written with a two-site cell (a
    # rank-2 hop). Above the band two evanescent solutions merge where dE/dk = 0 at complex k
    # (cos k = -t / (4 t'), so E = 2.7): their eigenvectors coincide, and the decaying
    # subspace must come from a stable basis rather than from the eigenvectors.
    t, t2, energy = 1.0, 0.1, 2.7
    h = np.array([[0.0, -t], [-t, 0.0]])
    hop = np.array([[-t2, 0.0], [-t, -t2]])
    prop, stab = modes(h, hop, energy)
    assert prop.num_modes == 0
    sigma = stab.selfenergy
    np.testing.assert_allclose(sigma, sancho_rubio_selfenergy(h, hop, energy), atol=1e-8)
    assert np.abs(sigma.imag).max() < 1e-12  # no states, no broadening
    dyson = hop @ la.solve(energy * np.eye(2) - h - sigma, hop.conj().T)
    np.testing.assert_allclose(sigma, dyson, atol=1e-13)


def test_energy_on_a_flat_band_is_an_error():
    # Orbital 1 is decoupled from everything: a flat band at its onsite energy.
    h, hop = np.diag([0.0, 0.5]), np.diag([-1.0, 0.0])
    assert modes(h, hop, 0.4)[0].num_modes == 1
    with pytest.raises(ValueError, match="flat band"):
        modes(h, hop, 0.5)


# --------------------------------------------------------------------------------------------
# Conservation laws
# --------------------------------------------------------------------------------------------


def spinful_strip(width=4, zeeman=0.3):
    h, hop = strip(width)
    hs = np.kron(h, np.eye(2)) + np.kron(np.eye(width), zeeman * np.diag([1.0, -1.0]))
    up = np.kron(np.eye(width), [[1.0], [0.0]])
    down = np.kron(np.eye(width), [[0.0], [1.0]])
    return hs, np.kron(hop, np.eye(2)), [up, down]


def test_projectors_resolve_modes_by_block():
    zeeman, energy = 0.3, -2.5
    h, hop, projectors = spinful_strip(zeeman=zeeman)
    prop, stab = modes(h, hop, energy, projectors=projectors)
    plain_h, plain_hop = strip(4)
    counts = tuple(modes(plain_h, plain_hop, energy - s * zeeman)[0].num_modes for s in (1, -1))
    assert prop.block_nmodes == counts and counts[0] != counts[1]
    m = prop.num_modes
    np.testing.assert_array_equal(prop.blocks[:m], np.repeat([0, 1], counts))
    np.testing.assert_array_equal(prop.blocks[m:], np.repeat([0, 1], counts))
    for j, block in enumerate(prop.blocks):
        other = projectors[1 - block]
        assert np.linalg.norm(other.T @ prop.wave_functions[:, j]) < 1e-12
    np.testing.assert_allclose(stab.selfenergy, selfenergy(h, hop, energy), atol=1e-12)


def test_projector_errors():
    h, hop, (up, down) = spinful_strip()
    with pytest.raises(ValueError, match="orthonormal"):
        modes(h, hop, 0.1, projectors=[2 * up, down])
    with pytest.raises(ValueError, match="span all 8 cell orbitals"):
        modes(h, hop, 0.1, projectors=[up])
    flip = np.kron(np.eye(4), [[0.0, 0.2], [0.2, 0.0]])
    with pytest.raises(ValueError, match="h_cell couples different projector blocks"):
        modes(h + flip, hop, 0.1, projectors=[up, down])
    with pytest.raises(TypeError, match="list of"):
        modes(h, hop, 0.1, projectors=up)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def test_mode_input_errors():
    with pytest.raises(ValueError, match="energy must be finite"):
        modes(*chain(), np.nan)
    with pytest.raises(TypeError, match="energy must be a real number"):
        modes(*chain(), [0.1, 0.2])
    with pytest.raises(ValueError, match="h_cell must be square"):
        modes(np.zeros((2, 3)), np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="h_cell must be Hermitian"):
        modes([[0, 1j], [1j, 0]], np.eye(2), 0.0)
    with pytest.raises(ValueError, match="hop must be finite"):
        modes(np.eye(1), [[np.inf]], 0.0)


def test_lead_data_validation():
    h, hop = np.zeros((2, 2)), np.diag([-1.0, -1.0])
    lead = LeadData(h, hop, interface_sys=[4, 7], interface_cell=[0, 1])
    assert lead.num_orbitals == 2 and not lead.hop.flags.writeable
    with pytest.raises(ValueError, match=r"hop has nonzero rows \[1\] that are not listed"):
        LeadData(h, hop, interface_sys=[4], interface_cell=[0])
    with pytest.raises(ValueError, match="same length"):
        LeadData(h, hop, interface_sys=[4], interface_cell=[0, 1])
    with pytest.raises(ValueError, match="interface_cell contains 2"):
        LeadData(h, hop, interface_sys=[4, 5], interface_cell=[0, 2])
    with pytest.raises(ValueError, match="repeated"):
        LeadData(h, hop, interface_sys=[4, 4], interface_cell=[0, 1])
    with pytest.raises(ValueError, match="interface_sys contains -1"):
        LeadData(h, hop, interface_sys=[-1, 4], interface_cell=[0, 1])
    # Rows of hop that are zero need no interface orbital (a singular hopping).
    singular = LeadData(h, np.diag([-1.0, 0.0]), interface_sys=[3], interface_cell=[0])
    assert singular.modes(0.5)[0].num_modes == 1


# --------------------------------------------------------------------------------------------
# Invariants over random leads
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 4),
    rank_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    energy=st.floats(-3.0, 3.0),
)
def test_random_lead_invariants(n, rank_fraction, seed, energy):
    rank = max(1, round(rank_fraction * n))
    h, hop = random_lead(n, rank, seed)
    prop, stab = modes(h, hop, energy)
    # Stay away from band edges, where unit-current normalization amplifies rounding.
    assume(prop.num_modes == 0 or np.min(np.abs(prop.velocities)) > 1e-3)
    m = prop.num_modes
    assert prop.wave_functions.shape == (n, 2 * m)
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-8
    )
    sigma = stab.selfenergy
    dyson = hop @ la.solve(energy * np.eye(n) - h - sigma, hop.conj().T)
    np.testing.assert_allclose(sigma, dyson, atol=1e-8 * max(1.0, np.abs(sigma).max()))
    gamma = 1j * (sigma - sigma.conj().T)
    np.testing.assert_allclose(gamma, stab.sources @ stab.sources.conj().T, atol=1e-8)
    assert np.linalg.eigvalsh(gamma).min() > -1e-9


# --------------------------------------------------------------------------------------------
# Graphene ribbons with bearded edges: band edges that share k with crossing bands
# --------------------------------------------------------------------------------------------


def bearded_ribbon(ymax: float):
    """Lead builder and clean two-terminal ribbon of the honeycomb lattice, 0 <= y < ymax.

    With translations along (1, 0) both edges are bearded (sites with a single neighbour):
    ymax = 3.0 gives a 7-site cell (4 + 3 sites, hence a flat band at E = 0), ymax = 5.0 a
    12-site cell.
    """
    lat = mesoscopic.lattice.honeycomb(norbs=1)
    lead = mesoscopic.Builder(mesoscopic.TranslationalSymmetry((-1, 0)))
    lead[lat.shape(lambda pos: 0 <= pos[1] < ymax, (0, 0))] = 0
    lead[lat.neighbors()] = -1
    ribbon = mesoscopic.Builder()
    ribbon[lat.shape(lambda pos: 0 <= pos[0] < 2 and 0 <= pos[1] < ymax, (0, 0))] = 0
    ribbon[lat.neighbors()] = -1
    ribbon.attach_lead(lead)
    ribbon.attach_lead(lead.reversed())
    return lead.finalized(), ribbon.finalized()


def test_band_edge_at_a_crossing_of_two_other_bands():
    # 7-site bearded cell at E = 1: at k = pi three bands meet, two crossing E with
    # velocities -+1/sqrt(2) and one with a minimum E = 1 + (k - pi)^2 / 2 (a band edge:
    # four solutions with three eigenvectors). Another band crosses E at k = +-pi/2 with
    # velocity -+1/2. As everywhere, the band edge mode (zero velocity) is not propagating,
    # so E = 1 has the two channels of E = 1 - 0 and a third one opens above it. (Kwant 1.5
    # reports three channels at exactly E = 1 with velocities that are no band velocities,
    # and a non-unitary S-matrix there.)
    lead, ribbon = bearded_ribbon(3.0)
    h, hop = lead.cell_hamiltonian(), lead.hopping_away()
    at_k_pi, velocities = Bands(h, hop)(np.pi, derivative_order=1)
    np.testing.assert_allclose(at_k_pi[4:], 1.0, atol=1e-13)
    np.testing.assert_allclose(
        np.sort(velocities[4:]), [-np.sqrt(0.5), 0, np.sqrt(0.5)], atol=1e-13
    )
    prop, stab = lead.modes(1.0)
    assert prop.num_modes == 2
    # Kwant's order: incoming by increasing, outgoing by decreasing momentum in [-pi, pi).
    expected_momenta = [np.pi, np.pi / 2, -np.pi / 2, np.pi]
    momentum_errors = np.angle(np.exp(1j * (prop.momenta - expected_momenta)))
    np.testing.assert_allclose(momentum_errors, 0, atol=1e-12)
    np.testing.assert_allclose(
        prop.velocities, [-np.sqrt(0.5), -0.5, 0.5, np.sqrt(0.5)], atol=1e-12
    )
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-12
    )
    dyson = hop @ la.solve(np.eye(7) - h - stab.selfenergy, hop.conj().T)
    np.testing.assert_allclose(stab.selfenergy, dyson, atol=1e-12)
    # The self-energy is continuous across the edge (from the side without the new channel).
    np.testing.assert_allclose(stab.selfenergy, lead.selfenergy(1.0 - 1e-12), atol=1e-5)
    assert lead.modes(1.0 - 1e-9)[0].num_modes == 2
    assert lead.modes(1.0 + 1e-6)[0].num_modes == 3
    for energy in (1.0, -1.0):  # E -> -E is a symmetry of the bipartite lattice
        s = mesoscopic.smatrix(ribbon, energy)
        assert s.num_propagating(0) == s.num_propagating(1) == 2
        assert s.check_unitarity() < 1e-10
        assert s.transmission(1, 0) == pytest.approx(2.0, abs=1e-10)  # clean ribbon


def test_bands_crossing_at_close_momenta_stay_exact_bloch_solutions():
    # Slightly above E = 1 the two bands crossing at k = pi cross E at k = pi -+ 1.4e-7,
    # closer than DEGENERACY_TOLERANCE: each mode must still solve the Bloch equation at its
    # own k, and the modes must carry no cross current.
    lead, _ = bearded_ribbon(3.0)
    h, hop = lead.cell_hamiltonian(), lead.hopping_away()
    energy = 1.0 + 1e-7
    prop, _ = lead.modes(energy)
    assert prop.num_modes == 3
    for k, phi in zip(prop.momenta, prop.wave_functions.T, strict=True):
        bloch = h + hop * np.exp(1j * k) + hop.conj().T * np.exp(-1j * k)
        assert np.linalg.norm(bloch @ phi - energy * phi) < 1e-11 * np.linalg.norm(phi)
    np.testing.assert_allclose(
        current_matrix(prop, hop), np.diag(np.sign(prop.velocities)), atol=1e-8
    )


def test_energy_on_the_flat_band_of_an_unbalanced_ribbon_is_an_error():
    lead, _ = bearded_ribbon(3.0)  # 4 + 3 sites per cell: a zero-energy band at every k
    assert np.allclose(lead_bands(lead)[:, 3], 0, atol=1e-12)
    with pytest.raises(ValueError, match=r"energy 0\.0 lies on a flat band"):
        lead.modes(0.0)


def lead_bands(lead, num_k: int = 2000):
    """Sorted bands of a finalized lead on a periodic grid of ``num_k`` momenta."""
    ks = np.linspace(-np.pi, np.pi, num_k, endpoint=False)
    return bands(lead.cell_hamiltonian(), lead.hopping_away(), ks)


def upward_crossings(energies_k: np.ndarray, energy: float) -> int:
    """Crossings of ``energy`` by the bands with dE/dk > 0, on a periodic k grid."""
    below = energies_k < energy
    return int(np.sum(below & ~np.roll(below, -1, axis=0)))


def band_extrema(energies_k: np.ndarray) -> np.ndarray:
    """Local extrema (including flat stretches) of the sorted bands on a periodic k grid."""
    forward = np.roll(energies_k, -1, axis=0) - energies_k
    backward = energies_k - np.roll(energies_k, 1, axis=0)
    return energies_k[forward * backward <= 0]


@pytest.mark.parametrize("ymax", [3.0, 5.0])
def test_bearded_ribbon_energy_scan(ymax):
    # The flat band (7-site cell only) is the one energy that may raise; elsewhere the number
    # of channels is the number of bands crossing E upwards, and the clean ribbon transmits
    # every channel with a unitary S-matrix, at band edges and band crossings included (the
    # S-matrix at every other energy of the grid and at E = +-1, to keep the test fast).
    lead, ribbon = bearded_ribbon(ymax)
    energies_k = lead_bands(lead, num_k=12000)
    extrema = band_extrema(energies_k)
    scan = np.concatenate([np.linspace(-3, 3, 201)[1:-1], [-1.0, 1.0]])
    flat_levels = energies_k.mean(axis=0)[np.ptp(energies_k, axis=0) < 1e-12]
    flat = [e for e in scan if np.any(np.abs(flat_levels - e) < 1e-12)]
    assert flat == ([0.0] if ymax == 3.0 else [])
    checked = 0
    for index, energy in enumerate(scan):
        if energy in flat:
            with pytest.raises(ValueError, match="flat band"):
                lead.modes(energy)
            continue
        num_modes = lead.modes(energy)[0].num_modes
        if np.min(np.abs(extrema - energy)) > 1e-6:
            assert num_modes == upward_crossings(energies_k, energy)
            checked += 1
        if index % 2 == 0 or abs(energy) == 1.0:
            s = mesoscopic.smatrix(ribbon, energy)
            assert s.num_propagating(0) == s.num_propagating(1) == num_modes
            assert s.check_unitarity() < 1e-10
            assert s.transmission(1, 0) == pytest.approx(num_modes, abs=1e-8)
    assert checked > 150


# --------------------------------------------------------------------------------------------
# Quantum spin Hall ribbon: a bound state of the semi-infinite lead at E = 0
# --------------------------------------------------------------------------------------------

BHZ_PARAMS = {"mass": -0.5, "disorder": 0.0, "seed": 1}


def bhz_lead(width: int):
    lead = mesoscopic.models.bhz_ribbon(width, 2).leads[0]
    return lead.cell_hamiltonian(BHZ_PARAMS), lead.hopping_away(BHZ_PARAMS)


@pytest.mark.parametrize("width", [8, 24])
def test_bhz_lead_end_state_is_a_pole_of_the_selfenergy_at_zero_energy(width):
    # The hybridized helical edges form a gapped 1D Dirac system (gap 2 x 8.7e-3 for width 8,
    # 2 x 1.2e-3 for width 24) whose end binds a Kramers pair pinned at E = 0 by the
    # particle-hole symmetry of the model (D = 0): Sigma(E) ~ R / E. At E = 0 itself the
    # modes are those of E + POLE_ENERGY_SHIFT ||hop||, continuous with both sides.
    h, hop = bhz_lead(width)
    n = h.shape[0]
    gap = bands(h, hop, [0.0])[0][n // 2]
    assert 1e-3 < gap < 1e-2
    sigma_1, sigma_2 = selfenergy(h, hop, 1e-9), selfenergy(h, hop, 2e-9)
    assert np.abs(sigma_1).max() > 1e4
    np.testing.assert_allclose(2 * sigma_2, sigma_1, rtol=0, atol=1e-4 * np.abs(sigma_1).max())
    prop, stab = modes(h, hop, 0.0)
    assert prop.num_modes == 0 == modes(h, hop, 1e-9)[0].num_modes
    shift = mesoscopic.leads.POLE_ENERGY_SHIFT * np.linalg.norm(hop, 2)
    np.testing.assert_allclose(stab.selfenergy, selfenergy(h, hop, shift), rtol=1e-12)
    s = mesoscopic.smatrix(mesoscopic.models.bhz_ribbon(width, 6), 0.0, params=BHZ_PARAMS)
    assert s.num_propagating(0) == s.num_propagating(1) == 0


def test_scattering_through_energy_of_a_lead_end_state_is_continuous():
    # Lead: the width-8 BHZ ribbon lead (end state at E = 0) next to a 3-wide strip (three
    # open channels), coupled by a random Hermitian term in the middle cell of a 3-cell
    # device, so that the pole direction of Sigma matters for the device.
    from mesoscopic.solvers.sparse import scattering_matrix

    h_bhz, hop_bhz = bhz_lead(8)
    h_strip, hop_strip = strip(3)
    h, hop = la.block_diag(h_bhz, h_strip), la.block_diag(hop_bhz, hop_strip)
    n, cells = h.shape[0], 3
    h_sys = (
        np.kron(np.eye(cells), h)
        + np.kron(np.eye(cells, k=1), hop)
        + np.kron(np.eye(cells, k=-1), hop.conj().T)
    )
    rng = np.random.default_rng(0)
    coupling = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h_sys[n : 2 * n, n : 2 * n] += 0.3 * (coupling + coupling.conj().T)
    cell = np.arange(n)
    leads = [
        LeadData(h, hop.conj().T, interface_sys=cell, interface_cell=cell),
        LeadData(h, hop, interface_sys=cell + (cells - 1) * n, interface_cell=cell),
    ]
    probabilities = {}
    for energy in (0.0, 1e-9, -1e-9):
        s = scattering_matrix(h_sys, leads, energy)
        assert s.num_propagating(0) == s.num_propagating(1) == 3
        # Rounding grows as 1 / (distance to the pole): about 1e-8 at 1e-9 of the hopping.
        assert s.check_unitarity() < 1e-7
        probabilities[energy] = np.abs(np.asarray(s.data)) ** 2
    for energy in (1e-9, -1e-9):
        np.testing.assert_allclose(probabilities[0.0], probabilities[energy], atol=1e-6)


def test_bhz_lead_with_a_tiny_hybridization_gap_has_no_modes_inside_it():
    # At width 50 (mass -1) the two helical edges hybridize into a gap of only 2 x 1.6e-6:
    # inside it the solutions are evanescent with |lambda| within ~3e-6 of 1, closer than the
    # moduli's own rounding near merging pairs. The band structure of the Hermitian H(k)
    # (an independent method, accurate to rounding of the energies) tells where a band is.
    lead = mesoscopic.models.bhz_ribbon(50, 2).leads[0]
    params = {"mass": -1.0}
    h, hop = lead.cell_hamiltonian(params), lead.hopping_away(params)
    n = h.shape[0]
    ks = np.linspace(-1e-3, 1e-3, 201)
    half_gap = float(np.min(np.abs(bands(h, hop, ks))))
    assert 1e-6 < half_gap < 3e-6
    assert np.argmin(np.min(np.abs(bands(h, hop, ks)), axis=1)) == 100  # the gap is at k = 0
    for fraction, expected in [(0.0, 0), (0.8, 0), (1.2, 2), (5.0, 2)]:
        energy = fraction * half_gap
        prop, stab = modes(h, hop, energy)
        assert prop.num_modes == expected, fraction
        if fraction:  # E = 0 is the lead's end-state pole, computed at a shifted energy
            dyson = hop @ la.solve(energy * np.eye(n) - h - stab.selfenergy, hop.conj().T)
            scale = np.abs(stab.selfenergy).max()
            np.testing.assert_allclose(stab.selfenergy, dyson, atol=1e-6 * scale)


def test_mirror_leads_share_modes_deterministically_and_thread_safely():
    # The two ends of a ribbon have hoppings hop and hop^dagger: one eigenproblem serves
    # both (kept in a small cache). Results must not depend on the order of calls, on the
    # cache, or on threads computing at the same time.
    from concurrent.futures import ThreadPoolExecutor

    from mesoscopic import leads as leads_module

    fsys = mesoscopic.models.graphene_ribbon(6, 6.0)
    params = {"potential": 0.05}
    energies = np.linspace(0.1, 0.9, 5)

    def smatrix_data(energy):
        return np.asarray(mesoscopic.smatrix(fsys, energy, params=params).data)

    leads_module._EIGEN_CACHE.clear()
    leads_module._MODES_CACHE.clear()
    leads_module._RECENT_MODES.clear()
    reference = [smatrix_data(e) for e in energies]
    leads_module._EIGEN_CACHE.clear()
    leads_module._MODES_CACHE.clear()
    leads_module._RECENT_MODES.clear()
    reversed_order = [smatrix_data(e) for e in energies[::-1]][::-1]
    for a, b in zip(reference, reversed_order):
        np.testing.assert_array_equal(a, b)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(smatrix_data, list(energies) * 4))
    for k, data in enumerate(threaded):
        np.testing.assert_array_equal(data, reference[k % len(energies)])
    lead_0, lead_1 = (lead for lead in mesoscopic.transport.lead_data(fsys, params=params))
    np.testing.assert_array_equal(lead_1.hop, lead_0.hop.conj().T)  # a mirror pair indeed


def test_complex_conjugate_lead_shares_the_modes_to_the_last_bit():
    # The lead of the reversed field is the complex conjugate: its modes are the conjugate
    # solutions (k -> -k, incoming and outgoing exchanged) and its self-energy the
    # transpose. Both are read off one computation, so that a channel a hair inside its
    # band (where T moves by T / (2 depth) per unit of energy) rounds the same way for
    # both field directions: reciprocity T_ij(B) = T_ji(-B) depends on it.
    rng = np.random.default_rng(7)
    h = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    h = (h + h.conj().T) / 2
    hop = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    ks = np.linspace(-np.pi, np.pi, 2001)
    band = bands(h, hop, ks)[:, 1]
    minimum = int(np.argmin(band))
    edge = float(band[minimum])
    for energy in (edge + 1e-3, edge + 1e-12):
        prop, stab = modes(h, hop, energy)
        prop_c, stab_c = modes(h.conj(), hop.conj(), energy)
        n = prop.num_modes
        assert prop_c.num_modes == n > 0
        flipped = np.sort(np.where(-prop.momenta[n:] <= -np.pi, np.pi, -prop.momenta[n:]))
        np.testing.assert_array_equal(np.sort(prop_c.momenta[:n]), flipped)
        np.testing.assert_array_equal(
            np.sort(prop_c.velocities[:n]), np.sort(-prop.velocities[n:])
        )
        in_c = prop_c.wave_functions[:, :n]
        out_conj = prop.wave_functions[:, n:].conj()
        matched = [np.min(np.max(np.abs(out_conj - w[:, None]), axis=0)) for w in in_c.T]
        assert max(matched) == 0.0  # the same bits, not the same to rounding
        np.testing.assert_allclose(stab_c.selfenergy, stab.selfenergy.T, atol=1e-13)


def _random_lead(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return (h + h.conj().T) / 2, rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))


def _field_strip(width: int = 4, flux: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Strip in a magnetic field (Peierls phases along the lead) with a complex h_cell."""
    h = strip(width)[0] + 0.2j * (np.eye(width, k=2) - np.eye(width, k=-2))
    return h, -np.diag(np.exp(1j * flux * np.arange(width)))


def _mirror_cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    h, hop = _random_lead(7, 3)
    edge = float(np.min(bands(h, hop, np.linspace(-np.pi, np.pi, 2001))[:, 1]))
    multi_h, multi_hop = _random_lead(11, 4)  # four orbitals, rank-deficient hopping
    multi_hop[:, 3] = 0.0
    return [
        ("complex", h, hop, 0.3),
        ("complex, 1e-3 inside a band edge", h, hop, edge + 1e-3),
        ("complex, 1e-12 inside a band edge", h, hop, edge + 1e-12),
        ("complex, 1e-12 outside a band edge", h, hop, edge - 1e-12),
        ("magnetic field", *_field_strip(), -1.1),
        ("multi-orbital, rank 3", multi_h, multi_hop, 0.2),
        ("zigzag ribbon", *honeycomb_cell("zigzag", 4), 0.4),
    ]


@pytest.mark.parametrize("case", _mirror_cases(), ids=lambda case: case[0])
def test_mirror_lead_modes_read_off_its_image_equal_an_independent_solution(case, monkeypatch):
    # A lead with hopping hop^dagger (the other end of a wire) has this lead's Bloch
    # solutions with k -> -k: incoming and outgoing modes, and decaying and growing
    # solutions, exchange roles. Its modes are read off the other lead's computation;
    # here they are compared with its own, independent solution (sharing switched off):
    # the same momenta, velocities and self-energy, the same wave functions up to a phase
    # per mode (the phase convention of a mode is free), and so the same S-matrix of a
    # disordered device between the two, to rounding.
    from mesoscopic import leads as leads_module
    from mesoscopic.solvers.sparse import scattering_matrix

    _, h, hop, energy = case
    n, cells = h.shape[0], 3
    dagger = hop.conj().T
    # Not the complex-conjugate lead either (read off by conjugation):
    assert not (np.array_equal(h, h.conj()) and np.array_equal(dagger, hop.conj()))
    h_sys = (
        np.kron(np.eye(cells), h)
        + np.kron(np.eye(cells, k=1), hop)
        + np.kron(np.eye(cells, k=-1), dagger)
        + 0j
    )
    rng = np.random.default_rng(0)
    disorder = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h_sys[n : 2 * n, n : 2 * n] += 0.3 * (disorder + disorder.conj().T)
    cell = np.arange(n)
    pair = [
        LeadData(h, dagger, interface_sys=cell, interface_cell=cell),
        LeadData(h, hop, interface_sys=cell + (cells - 1) * n, interface_cell=cell),
    ]
    solved = []
    original = leads_module._solve_block

    def counted(*args, **kwargs):
        solved.append(kwargs["mirror"])
        return original(*args, **kwargs)

    monkeypatch.setattr(leads_module, "_solve_block", counted)
    results = {}
    for share in (True, False):
        monkeypatch.setattr(leads_module, "_SHARE_MIRROR_MODES", share)
        leads_module._EIGEN_CACHE.clear()
        leads_module._MODES_CACHE.clear()
        leads_module._RECENT_MODES.clear()
        solved.clear()
        lead_modes = [lead.modes(energy) for lead in pair]
        # Both roads ran: one solution for the pair, or one for each lead.
        assert solved == ([True] if share else [False, False])
        leads_module._MODES_CACHE.clear()
        leads_module._RECENT_MODES.clear()
        results[share] = lead_modes, np.asarray(scattering_matrix(h_sys, pair, energy).data)
    (shared_modes, s_shared), (own_modes, s_own) = results[True], results[False]
    phases = []
    for (prop, stab), (prop_own, stab_own) in zip(shared_modes, own_modes, strict=True):
        assert prop.num_modes == prop_own.num_modes > 0
        np.testing.assert_array_equal(prop.momenta, prop_own.momenta)
        scale = np.linalg.norm(hop, 2)
        np.testing.assert_allclose(prop.velocities, prop_own.velocities, rtol=1e-12)
        np.testing.assert_allclose(stab.selfenergy, stab_own.selfenergy, atol=1e-12 * scale)
        waves, waves_own = prop.wave_functions, prop_own.wave_functions
        overlap = np.einsum("ij,ij->j", waves_own.conj(), waves)
        norms = np.linalg.norm(waves_own, axis=0) ** 2
        np.testing.assert_allclose(np.abs(overlap), norms, rtol=1e-12)
        phases.append(overlap / np.abs(overlap))
    half = [p.size // 2 for p in phases]
    out = np.concatenate([p[h:] for p, h in zip(phases, half, strict=True)])
    into = np.concatenate([p[:h] for p, h in zip(phases, half, strict=True)])
    np.testing.assert_allclose(out[:, None] * s_shared * into.conj()[None, :], s_own, atol=1e-12)
    assert np.abs(s_own.conj().T @ s_own - np.eye(s_own.shape[0])).max() < 1e-10


def test_identical_and_mirror_leads_are_solved_once_per_energy(monkeypatch):
    # The arms of a Hall bar are often one lead (same cell and hopping) attached in several
    # places, or its mirror image: one solution per energy serves them all, whatever the
    # order in which they are asked for, and gives what each would on its own.
    from mesoscopic import leads as leads_module

    h, hop = _random_lead(5, 3)
    calls = []
    original = leads_module._solve_block

    def counted(*args, **kwargs):
        calls.append(kwargs["mirror"])
        return original(*args, **kwargs)

    monkeypatch.setattr(leads_module, "_solve_block", counted)
    order = [(h, hop), (h, hop.conj().T), (h, hop), (h, hop.conj().T)]
    for energy in (0.1, 0.4):
        leads_module._MODES_CACHE.clear()
        leads_module._RECENT_MODES.clear()
        alone = [selfenergy(*lead, energy) for lead in order[:2]]
        for first in (0, 1):
            leads_module._MODES_CACHE.clear()
            leads_module._RECENT_MODES.clear()
            calls.clear()
            together = [selfenergy(*lead, energy) for lead in order[first:] + order[:first]]
            assert len(calls) == 1
            for k, sigma in enumerate(together):
                np.testing.assert_array_equal(sigma, alone[(k + first) % 2])
