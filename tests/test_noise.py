"""Shot and thermal noise from the S-matrix: exact limits, sum rules, Fano factors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.stats import unitary_group

import mesoscopic as meso
from mesoscopic import batch, landauer, noise, transport
from mesoscopic.leads import PropagatingModes
from mesoscopic.linear_response import ConvergenceWarning
from mesoscopic.scattering import SMatrix
from mesoscopic.solvers import SolverOptions
from model_systems import chain_with_leads, square_wire

# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------


def _modes(count: int) -> PropagatingModes:
    return PropagatingModes(
        wave_functions=np.eye(max(count, 1), 2 * count, dtype=complex),
        momenta=np.concatenate([-0.5 * np.ones(count), 0.5 * np.ones(count)]),
        velocities=np.concatenate([-np.ones(count), np.ones(count)]),
        block_nmodes=(count,),
        blocks=np.zeros(2 * count, dtype=np.int64),
    )


def constant_smatrices(unitary, counts, energies, *, spin_degeneracy=1):
    """The same (energy-independent) S-matrix at every energy of a grid."""
    info = tuple(_modes(c) for c in counts)
    return [
        SMatrix(data=unitary, energy=e, lead_info=info, spin_degeneracy=spin_degeneracy)
        for e in energies
    ]


def breit_wigner_smatrices(energies, gamma_left, gamma_right):
    """Exactly unitary two-lead S-matrix of one resonant level at E = 0.

    ``S = 1 - i w w^T / (E + i Gamma/2)`` with ``w = (sqrt(G_L), sqrt(G_R))``:
    ``T(E) = G_L G_R / (E^2 + Gamma^2 / 4)``.
    """
    w = np.sqrt([gamma_left, gamma_right])
    gamma = gamma_left + gamma_right
    info = (_modes(1), _modes(1))
    return [
        SMatrix(
            data=np.eye(2) - 1j * np.outer(w, w) / (e + 0.5j * gamma), energy=e, lead_info=info
        )
        for e in energies
    ]


def disorder(seed, strength, width, length):
    """Box-distributed onsite energies, indexed [x, y], reproducible from the seed."""
    return {"pot": strength * np.random.default_rng(seed).uniform(-0.5, 0.5, (length, width))}


def disordered_square(width, length, *, three_terminal=False, flux=False):
    """Square-lattice region (onsite 4 + disorder, hopping -1) with two or three leads."""
    lat = meso.lattice.square(1.0, norbs=1)

    def onsite(site, pot):
        x, y = site.tag
        return 4.0 + pot[x, y]

    syst = square_wire(width, length, onsite, lat=lat)
    if three_terminal:
        top = meso.Builder(meso.TranslationalSymmetry((0, 1)))
        top[(lat(x, 0) for x in range(1, length - 1))] = 4.0
        top[lat.neighbors()] = -1.0
        syst.attach_lead(top)
    return syst.finalized(magnetic_flux="phi") if flux else syst.finalized()


@pytest.fixture(scope="module")
def three_terminal():
    return disordered_square(5, 6, three_terminal=True)


def transmission_samples(smatrices):
    return np.array([s.transmission_matrix() for s in smatrices])


def conductance_samples(smatrices):
    return np.array([s.conductance_matrix(spin_degeneracy=1) for s in smatrices])


# --------------------------------------------------------------------------------------------
# Zero temperature: sum_n T_n (1 - T_n)
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    left=st.integers(1, 4),
    right=st.integers(1, 4),
    bias=st.floats(-0.5, 0.5),
    interpolation=st.sampled_from(["cubic", "pchip", "linear"]),
)
def test_zero_temperature_noise_is_two_bias_sum_T_one_minus_T(
    seed, left, right, bias, interpolation
):
    u = unitary_group.rvs(left + right, random_state=seed)
    grid = np.linspace(-0.6, 0.6, 7)
    smatrices = constant_smatrices(u, (left, right), grid)
    eigen = noise.transmission_eigenvalues(smatrices[0], 1, 0)
    expected = 2.0 * abs(bias) * np.sum(eigen * (1.0 - eigen))
    full = noise.noise_matrix(
        smatrices, mu=[0.5 * bias, -0.5 * bias], kT=0.0, interpolation=interpolation
    )
    np.testing.assert_allclose(full, expected * np.array([[1, -1], [-1, 1]]), atol=1e-12)
    single = noise.shot_noise_matrix(smatrices[0], mu=[0.5 * bias, -0.5 * bias])
    np.testing.assert_allclose(single, full, atol=1e-12)
    doubled = noise.noise_matrix(smatrices, mu=[bias, 0.0], kT=0.0, spin_degeneracy=2)
    np.testing.assert_allclose(doubled[0, 0], 2.0 * expected, atol=1e-12)


def test_zero_temperature_noise_of_a_disordered_wire_integrates_sum_T_one_minus_T():
    """Energy-dependent S: S = 2 int_{mu_R}^{mu_L} sum_n T_n(E) (1 - T_n(E)) dE."""
    fsys = disordered_square(4, 8)
    params = disorder(3, 2.0, 4, 8)
    grid = np.linspace(1.0, 1.6, 25)
    smatrices = [meso.smatrix(fsys, e, params=params) for e in grid]
    ours = noise.noise_matrix(smatrices, mu=[1.5, 1.1], kT=0.0)
    per_energy = []
    for s in smatrices:
        eigen = noise.transmission_eigenvalues(s, 1, 0)
        per_energy.append(np.sum(eigen * (1.0 - eigen)))
    spline = scipy.interpolate.CubicSpline(grid, per_energy, bc_type="not-a-knot")
    reference, _ = scipy.integrate.quad(spline, 1.1, 1.5, epsabs=1e-14, epsrel=1e-13, limit=200)
    assert reference > 0.02  # a noisy conductor, not a trivial zero
    np.testing.assert_allclose(ours[0, 0], 2.0 * reference, rtol=1e-10)
    np.testing.assert_allclose(ours, ours[0, 0] * np.array([[1, -1], [-1, 1]]), atol=1e-12)


def test_noise_matrix_of_system_equals_noise_of_its_smatrices(three_terminal):
    params = disorder(1, 1.0, 5, 6)
    grid = np.linspace(1.0, 1.5, 9)
    direct = noise.noise_matrix_of_system(
        three_terminal, grid, mu=[1.4, 1.1, 1.2], kT=[0.0, 0.001, 0.002], params=params
    )
    smatrices = [meso.smatrix(three_terminal, e, params=params) for e in grid]
    np.testing.assert_allclose(
        direct, noise.noise_matrix(smatrices, mu=[1.4, 1.1, 1.2], kT=[0, 0.001, 0.002])
    )


def test_noise_of_a_system_comes_from_one_batched_rgf_solve(three_terminal, monkeypatch):
    """The S-matrices come from meso.smatrices (RGF over the grid), not energy by energy."""
    params = disorder(2, 1.5, 5, 6)
    grid = np.linspace(1.0, 1.5, 9)
    mu, kT = [1.4, 1.1, 1.2], [0.0, 0.001, 0.002]
    per_energy = noise.noise_matrix(
        [meso.smatrix(three_terminal, e, params=params) for e in grid], mu=mu, kT=kT
    )
    calls = []
    original = batch.smatrices

    def spy(*args, **kwargs):
        stats: dict = {}
        calls.append((kwargs.get("options"), stats))
        return original(*args, stats=stats, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("the single-energy smatrix must not be called")

    monkeypatch.setattr(batch, "smatrices", spy)
    monkeypatch.setattr(transport, "smatrix", forbidden)
    options = SolverOptions(solver="rgf", chunk_size=4)
    batched = noise.noise_matrix_of_system(
        three_terminal, grid, mu=mu, kT=kT, params=params, options=options
    )
    [(passed, stats)] = calls
    assert passed == options
    assert stats["solver"] == "rgf" and stats["num_energies"] == grid.size
    assert stats["chunk_size"] == 4 and stats["sparse_fallback_energies"] == 0
    assert np.abs(per_energy).max() > 1e-3  # a noisy conductor
    np.testing.assert_allclose(batched, per_energy, rtol=0, atol=1e-10 * np.abs(per_energy).max())


def test_noise_of_a_system_refuses_a_bad_grid_before_solving(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("no S-matrix should be computed for a bad grid")

    monkeypatch.setattr(batch, "smatrices", forbidden)
    fsys = chain_with_leads(1, 0.0).finalized()
    with pytest.raises(ValueError, match=r"strictly increasing, got energies\[1\] = 0\.1"):
        noise.noise_matrix_of_system(fsys, [0.0, 0.1, 0.1, 0.2], mu=0.0, kT=0.0)
    with pytest.raises(ValueError, match="solver must be one of"):
        noise.noise_matrix_of_system(fsys, [0.0, 0.1], mu=0.0, kT=0.0, options={"solver": "x"})


# --------------------------------------------------------------------------------------------
# Equilibrium: Johnson-Nyquist
# --------------------------------------------------------------------------------------------


def test_johnson_nyquist_noise_is_four_kT_G(three_terminal):
    """At equal chemical potentials S_ij = 2 kT (G_ij + G_ji), G thermally averaged."""
    kT, mu = 0.02, 1.3
    grid = np.linspace(mu - 0.7, mu + 0.7, 71)
    params = disorder(7, 1.5, 5, 6)
    smatrices = [meso.smatrix(three_terminal, e, params=params) for e in grid]
    ours = noise.noise_matrix(smatrices, mu=mu, kT=kT)
    # The thermal average is linear: average the (non-negative) transmissions T_ij, i != j,
    # and build G_ij = -T_ij, G_ii = sum_j T_ij from them.
    off_diagonal = ~np.eye(3, dtype=bool)
    samples = np.where(off_diagonal, -conductance_samples(smatrices), 0.0)
    # Same interpolant as noise_matrix's default, so the identity holds to rounding.
    averaged = landauer.linear_conductance(grid, samples, mu, kT, interpolation="cubic")
    g = np.diag(averaged.sum(axis=1)) - averaged
    np.testing.assert_allclose(ours, 2.0 * kT * (g + g.T), rtol=0, atol=1e-12)
    assert np.min(np.abs(g[off_diagonal])) > 0.05  # all terminals coupled

    # Two terminals: S = 4 kT G with G = int T(E) (-df/dE) dE, here for a chain with a
    # rectangular barrier (T rising from 0.1 to 0.9 across the thermal window).
    barrier = chain_with_leads(3, 1.5).finalized()
    grid = np.linspace(-0.7, 0.7, 71)
    smatrices = [meso.smatrix(barrier, e) for e in grid]
    transmission = np.array([s.transmission(1, 0) for s in smatrices])
    conductance = landauer.linear_conductance(grid, transmission, 0.0, kT, interpolation="cubic")
    ours = noise.noise_matrix(smatrices, mu=0.0, kT=kT)
    np.testing.assert_allclose(ours[0, 0], 4.0 * kT * conductance, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# Finite temperature and bias
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bias", "kT"), [(0.2, 0.01), (0.05, 0.02), (0.3, 0.1), (1e-4, 0.01)])
def test_finite_bias_and_temperature_follow_the_coth_formula(bias, kT):
    """Energy-independent S (Blanter-Büttiker eq. (64)):

    S = 2 [2 kT sum T_n^2 + eV coth(eV / 2kT) sum T_n (1 - T_n)] (units e^2/h x energy).
    """
    u = unitary_group.rvs(5, random_state=11)
    grid = np.linspace(-4.0, 4.0, 9)
    smatrices = constant_smatrices(u, (2, 3), grid)
    eigen = noise.transmission_eigenvalues(smatrices[0], 1, 0)
    ours = noise.noise_matrix(smatrices, mu=[0.5 * bias, -0.5 * bias], kT=kT)
    x = bias / (2.0 * kT)
    expected = 2.0 * (
        2.0 * kT * np.sum(eigen**2) + bias / np.tanh(x) * np.sum(eigen * (1.0 - eigen))
    )
    np.testing.assert_allclose(ours[0, 0], expected, rtol=1e-11)


def test_tunnel_junction_noise_crosses_from_johnson_to_schottky():
    """One channel of small constant T: S = 2 e I coth(eV / 2kT) up to O(T)."""
    transmission, kT = 1e-4, 0.01
    t, r = np.sqrt(transmission), np.sqrt(1.0 - transmission)
    grid = np.linspace(-2.0, 2.0, 5)
    smatrices = constant_smatrices(np.array([[r, 1j * t], [1j * t, r]]), (1, 1), grid)
    for bias in (1e-3, 0.01, 0.05, 0.2, 0.5):
        ours = noise.noise_matrix(smatrices, mu=[bias, 0.0], kT=kT)[0, 0]
        current = transmission * bias  # units of e/h x energy
        schottky = 2.0 * current / np.tanh(bias / (2.0 * kT))
        assert abs(ours / schottky - 1.0) < 2 * transmission
    johnson = noise.noise_matrix(smatrices, mu=0.0, kT=kT)[0, 0]
    np.testing.assert_allclose(johnson, 4.0 * kT * transmission, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Sum rules and positivity
# --------------------------------------------------------------------------------------------


def test_sum_rules_of_a_three_terminal_conductor(three_terminal):
    grid = np.linspace(0.9, 1.9, 41)
    params = disorder(5, 1.0, 5, 6)
    smatrices = [meso.smatrix(three_terminal, e, params=params) for e in grid]
    result = noise.noise_matrix(smatrices, mu=[1.5, 1.3, 1.35], kT=[0.003, 0.001, 0.0])
    assert np.max(np.abs(result)) > 0.01
    np.testing.assert_allclose(result.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(result.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(result, result.T, atol=1e-14)
    assert np.all(np.diag(result) > 0)
    assert np.all(result[~np.eye(3, dtype=bool)] < 0)  # Büttiker: cross-correlations <= 0
    assert np.min(np.linalg.eigvalsh(result)) > -1e-12


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    counts=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    data=st.data(),
)
def test_noise_matrix_is_a_conserving_covariance(seed, counts, data):
    u = unitary_group.rvs(sum(counts), random_state=seed)
    smatrices = constant_smatrices(u, counts, np.linspace(-1.5, 1.5, 6))
    n = len(counts)
    mu = data.draw(st.lists(st.floats(-0.3, 0.3), min_size=n, max_size=n))
    kT = data.draw(st.lists(st.floats(0.0, 0.02), min_size=n, max_size=n))
    result = noise.noise_matrix(smatrices, mu=mu, kT=kT)
    np.testing.assert_allclose(result.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(result.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(result, result.T, atol=1e-14)
    assert np.min(np.linalg.eigvalsh(result)) > -1e-12


# --------------------------------------------------------------------------------------------
# Fano factors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gamma_left", "gamma_right"), [(0.1, 0.1), (0.05, 0.15)])
def test_breit_wigner_resonance_energy_averaged_fano_factor(gamma_left, gamma_right):
    """Exact: S / (2 I) over a bias window [-W, W] around one Breit-Wigner level.

    With T = A / (E^2 + b^2), A = G_L G_R, b = Gamma/2:
    int T = 2 (A/b) arctan(W/b) and int T^2 = A^2 [W/(b^2 (W^2 + b^2)) + arctan(W/b)/b^3],
    so F = 1 - int T^2 / int T -> (G_L^2 + G_R^2) / Gamma^2 for W >> Gamma: 1/2 when
    symmetric (Blanter-Büttiker section 4.2). At the peak of a symmetric resonance F = 0.
    """
    half_width = 1.0
    grid = np.linspace(-half_width, half_width, 4001)
    smatrices = breit_wigner_smatrices(grid, gamma_left, gamma_right)
    ours = noise.noise_matrix(smatrices, mu=[half_width, -half_width], kT=0.0)
    transmission = np.array([s.transmission(1, 0) for s in smatrices])
    current = landauer.current(grid, transmission, half_width, -half_width, 0.0, 0.0)
    a, b = gamma_left * gamma_right, 0.5 * (gamma_left + gamma_right)
    angle = np.arctan(half_width / b)
    int_t = 2.0 * a / b * angle
    int_t2 = a**2 * (half_width / (b**2 * (half_width**2 + b**2)) + angle / b**3)
    np.testing.assert_allclose(float(current), int_t, rtol=1e-8)
    np.testing.assert_allclose(ours[0, 0] / (2.0 * current), 1.0 - int_t2 / int_t, rtol=1e-8)
    # The closed form tends to (G_L^2 + G_R^2) / Gamma^2 as the window opens.
    wide = 1e6
    angle = np.arctan(wide / b)
    limit = 1.0 - a * (wide / (b**2 * (wide**2 + b**2)) + angle / b**3) / (2.0 / b * angle)
    gamma = gamma_left + gamma_right
    assert abs(limit - (gamma_left**2 + gamma_right**2) / gamma**2) < 1e-6
    if gamma_left == gamma_right:
        peak = breit_wigner_smatrices([0.0], gamma_left, gamma_right)[0]
        assert noise.fano_factor(peak, 1, 0) < 1e-14


def test_tight_binding_double_barrier_has_fano_factor_one_half():
    """Two identical opaque barriers on a chain, noise integrated over whole resonances.

    Between two antiresonances the energy average samples the Fabry-Pérot phase uniformly,
    so F equals the phase-averaged value 1 - T1 T2 (1 + R1 R2) / (1 - R1 R2)^2 (de Jong and
    Beenakker), which for identical barriers of transmission tau is 1/2 - O(tau^2). tau(E)
    changes by ~3 % over the window, hence the 1e-3 tolerance on the phase average.
    """
    length, height = 10, 4.0
    fsys = chain_with_leads(
        length + 2, lambda site, v: v if site.tag[0] in (0, length + 1) else 0.0
    ).finalized()
    params = {"v": height}

    def transmission(energy):
        return meso.smatrix(fsys, energy, params=params).transmission(1, 0)

    low = minimize_scalar(transmission, bracket=(-0.75, -0.6, -0.45), tol=1e-10).x
    high = minimize_scalar(transmission, bracket=(0.35, 0.5, 0.65), tol=1e-10).x
    grid = np.linspace(low, high, 120)
    smatrices = [meso.smatrix(fsys, e, params=params) for e in grid]
    samples = np.array([s.transmission(1, 0) for s in smatrices])
    assert samples.max() > 0.97 and samples.min() < 0.02  # two full resonances inside

    shot = noise.noise_matrix(smatrices, mu=[high, low], kT=0.0)[0, 0]
    current = landauer.current(grid, samples, high, low, 0.0, 0.0)
    fano = shot / (2.0 * current)

    barrier = chain_with_leads(1, lambda site, v: v).finalized()
    tau = meso.smatrix(barrier, 0.5 * (low + high), params=params).transmission(1, 0)
    reflection = 1.0 - tau
    phase_average = 1.0 - tau**2 * (1 + reflection**2) / (1 - reflection**2) ** 2
    assert 0.15 < tau < 0.25
    assert abs(fano - phase_average) < 1e-3
    assert abs(fano - 0.5) < 0.01
    # On a resonance of the symmetric double barrier T -> 1 and the noise vanishes.
    nearest = grid[int(np.argmax(samples))]
    step = grid[1] - grid[0]
    top = minimize_scalar(
        lambda e: -transmission(e), bracket=(nearest - step, nearest, nearest + step), tol=1e-10
    ).x
    assert noise.fano_factor(meso.smatrix(fsys, top, params=params), 1, 0) < 1e-3


def test_diffusive_wire_fano_factor_is_one_third():
    """F -> 1/3 for a disordered wire (Beenakker and Büttiker, PRB 46, 1889 (1992)).

    Square lattice W = 30, L = 60, box disorder of width 1.5 t, energies 2.8 t and 3.2 t
    above the band bottom (19 and 21 channels): G ~ 4.8 e^2/h, so the mean free path
    l ~ L / 3 and the localization length ~ 2 N l ~ 800 >> L. A weak field (flux 0.0015
    h/e per plaquette: ~3 flux quanta through the wire, cyclotron radius ~ 100 >> W)
    breaks time-reversal symmetry, which removes the weak-localization corrections of
    order 1/g to G and to the noise; what remains, O(l/L)^3 ~ 0.005 from the ballistic
    ends, is within the statistical error of 15 seeds (3 sigma ~ 0.013). (With 400
    samples this ensemble gives F = 0.330 +- 0.003.)
    """
    fsys = disordered_square(30, 60, flux=True)
    per_seed = []
    every = []
    for seed in range(15):
        params = {**disorder(seed, 1.5, 30, 60), "phi": 0.0015}
        smatrices = [meso.smatrix(fsys, e, params=params) for e in (2.8, 3.2)]
        per_seed.append(noise.fano_factor(smatrices, 1, 0))
        every.extend(smatrices)
    per_seed = np.array(per_seed)
    mean = per_seed.mean()
    error = per_seed.std(ddof=1) / np.sqrt(per_seed.size)
    assert error < 0.006
    assert abs(mean - 1.0 / 3.0) < 3.0 * error
    assert abs(noise.fano_factor(every, 1, 0) - 1.0 / 3.0) < 3.0 * error
    conductance = np.mean([s.transmission(1, 0) for s in every])
    assert 3.0 < conductance < 7.0  # diffusive: many channels, several mean free paths


def test_transmission_eigenvalues_are_those_of_t_dagger_t(three_terminal):
    s = meso.smatrix(three_terminal, 1.4, params=disorder(2, 1.0, 5, 6))
    for to_lead, from_lead in [(1, 0), (0, 1), (2, 0), (0, 2)]:
        eigen = noise.transmission_eigenvalues(s, to_lead, from_lead)
        assert eigen.shape == (s.num_propagating(from_lead),)
        assert np.all(np.diff(eigen) <= 0) and np.all((eigen >= 0) & (eigen <= 1))
        np.testing.assert_allclose(eigen.sum(), s.transmission(to_lead, from_lead), atol=1e-12)
        t = s.submatrix(to_lead, from_lead)
        reference = np.sort(np.linalg.eigvalsh(t.conj().T @ t))[::-1]
        np.testing.assert_allclose(eigen, np.clip(reference, 0, 1), atol=1e-12)
    two = meso.smatrix(disordered_square(4, 6), 1.2, params=disorder(0, 1.0, 4, 6))
    np.testing.assert_allclose(
        noise.transmission_eigenvalues(two, 0, 0),
        np.sort(1.0 - noise.transmission_eigenvalues(two, 1, 0)),
        atol=1e-12,
    )


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors():
    u = unitary_group.rvs(2, random_state=0)
    grid = np.linspace(-0.5, 0.5, 6)
    smatrices = constant_smatrices(u, (1, 1), grid)
    with pytest.raises(ValueError, match=r"kT must be >= 0.*-0\.1"):
        noise.noise_matrix(smatrices, mu=0.0, kT=-0.1)
    with pytest.raises(ValueError, match=r"grid covers \[-0\.5, 0\.5\].*Fermi window"):
        noise.noise_matrix(smatrices, mu=[0.0, 0.0], kT=0.02)
    with pytest.raises(ValueError, match=r"grid covers.*\[-0\.2, 0\.7\]"):
        noise.noise_matrix(smatrices, mu=[0.7, -0.2], kT=0.0)
    with pytest.raises(ValueError, match=r"mu must be a scalar or have one entry per terminal"):
        noise.noise_matrix(smatrices, mu=[0.0, 0.1, 0.2], kT=0.0)
    with pytest.raises(ValueError, match="strictly increasing energies"):
        noise.noise_matrix(smatrices[::-1], mu=0.0, kT=0.0)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        noise.noise_matrix(smatrices, mu=0.0, kT=0.0, interpolation="spline")
    with pytest.raises(ValueError, match="needs at least 4 energies"):
        noise.noise_matrix(smatrices[:3], mu=[-0.4, -0.2], kT=0.0)
    with pytest.raises(TypeError, match="sequence of SMatrix"):
        noise.noise_matrix(smatrices[0], mu=0.0, kT=0.0)
    with pytest.raises(ValueError, match="smatrices is empty"):
        noise.noise_matrix([], mu=0.0, kT=0.0)
    with pytest.raises(TypeError, match=r"smatrices\[1\] must be an SMatrix"):
        noise.noise_matrix([smatrices[0], np.eye(2)], mu=0.0, kT=0.0)
    mixed = smatrices[:3] + constant_smatrices(np.eye(3), (1, 1, 1), grid[3:])
    with pytest.raises(ValueError, match=r"smatrices\[3\] has 3"):
        noise.noise_matrix(mixed, mu=0.0, kT=0.0)
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        noise.shot_noise_matrix(smatrices[0], mu=[0.0, 0.1], spin_degeneracy=3)
    with pytest.raises(ValueError, match=r"to_lead 2 does not exist; valid values are 0\.\.1"):
        noise.transmission_eigenvalues(smatrices[0], 2, 0)
    with pytest.raises(ValueError, match=r"from_lead -1 does not exist"):
        noise.fano_factor(smatrices[0], 1, -1)
    with pytest.raises(TypeError, match=r"to_lead must be an integer, got 1\.0"):
        noise.fano_factor(smatrices[0], 1.0, 0)
    closed = constant_smatrices(np.eye(2), (1, 1), grid)
    with pytest.raises(ValueError, match="Fano factor is undefined"):
        noise.fano_factor(closed, 1, 0)
    with pytest.raises(ValueError, match="at least one SMatrix"):
        noise.fano_factor([], 1, 0)
    partial = SMatrix(data=u[:, :1], energy=0.0, lead_info=(_modes(1), _modes(1)), in_leads=[0])
    with pytest.raises(ValueError, match="S-matrix of all leads"):
        noise.shot_noise_matrix(partial, mu=[0.0, 0.1])
    with pytest.raises(ValueError, match="energies must be a 1-D array"):
        noise.noise_matrix_of_system(
            chain_with_leads(1, 0.0).finalized(), [[0.0, 0.1]], mu=0.0, kT=0.0
        )


# --------------------------------------------------------------------------------------------
# The adaptive energy grid of noise_matrix_of_system
# --------------------------------------------------------------------------------------------


def test_adaptive_noise_matches_a_dense_fixed_grid():
    """Three reservoirs at different mu and kT (one at kT = 0): the grid chosen by the
    engine gives the noise of a dense uniform grid (cubic, spacing kT/2 of the coldest
    warm reservoir; S(E) varies on a scale ~0.05 here), from fewer energies."""
    fsys = disordered_square(3, 4, three_terminal=True)
    params = disorder(1, 1.0, 3, 4)
    mu, kT = [1.22, 1.2, 1.21], [0.0, 0.002, 0.003]
    dense = np.linspace(1.21 - 34 * 0.003, 1.21 + 34 * 0.003, 205)
    reference = noise.noise_matrix_of_system(
        fsys, dense, mu=mu, kT=kT, params=params, interpolation="cubic"
    )
    calls = []
    original = batch.smatrices

    def spy(system, energies, *args, **kwargs):
        calls.append(np.size(energies))
        return original(system, energies, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "smatrices", spy)
        adaptive = noise.noise_matrix_of_system(fsys, mu=mu, kT=kT, params=params, tol=1e-7)
    assert np.abs(reference).max() > 5e-3  # a noisy conductor
    np.testing.assert_allclose(adaptive, reference, rtol=0, atol=1e-7 * np.abs(reference).max())
    assert len(calls) >= 2 and sum(calls) < dense.size  # one batched call per round
    np.testing.assert_allclose(adaptive.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(adaptive, adaptive.T, atol=1e-14)


def test_adaptive_noise_at_equilibrium_is_four_kT_G_of_meso_conductance():
    """Johnson-Nyquist on the engine's grid, against meso.conductance's own grid, for a
    barrier whose T(E) rises across the window and a clean wire with a channel opening."""
    kT = 0.02
    barrier = chain_with_leads(3, 1.5).finalized()
    S = noise.noise_matrix_of_system(barrier, mu=0.0, kT=kT, tol=1e-7)
    G = float(meso.conductance(barrier, 0.0, kT).conductance)
    assert 0.05 < G < 0.95
    np.testing.assert_allclose(S, 4 * kT * G * np.array([[1, -1], [-1, 1]]), rtol=1e-6)
    wire = square_wire(3, 2).finalized(spin_degeneracy=2)
    threshold = 2 - 2 * np.cos(2 * np.pi / 4)  # the second subband opens here
    S = noise.noise_matrix_of_system(wire, mu=threshold + 0.3 * kT, kT=kT, tol=1e-7)
    G = float(meso.conductance(wire, threshold + 0.3 * kT, kT).conductance)
    assert 2.0 < G < 4.0  # half-open second channel, spin degenerate
    np.testing.assert_allclose(S[0, 0], 4 * kT * G, rtol=1e-6)


def test_adaptive_shot_noise_at_zero_temperature_is_the_fano_factor():
    """kT -> 0 and a small bias V: S = 2 e V G F with F the Fano factor at the Fermi energy;
    at kT > 0 the crossover S = g_s [4 kT sum T_n^2 + 2 V coth(V / 2kT) sum T_n (1 - T_n)]
    of Blanter and Büttiker (S(E) constant over the window, here to ~1e-8)."""
    fsys = chain_with_leads(3, 1.5).finalized(spin_degeneracy=2)
    V = 1e-4
    at_fermi = meso.smatrix(fsys, 0.0)
    fano = noise.fano_factor(at_fermi, 1, 0)
    eigen = noise.transmission_eigenvalues(at_fermi, 1, 0)
    conductance = 2 * float(np.sum(eigen))
    assert 0.1 < fano < 0.9
    S = noise.noise_matrix_of_system(fsys, mu=[V / 2, -V / 2], kT=0.0)
    np.testing.assert_allclose(S[0, 0], 2 * V * conductance * fano, rtol=1e-7)
    for kT in (1e-7, 1e-5):
        S = noise.noise_matrix_of_system(fsys, mu=[V / 2, -V / 2], kT=kT)
        crossover = 2 * (
            4 * kT * np.sum(eigen**2) + 2 * V * np.sum(eigen * (1 - eigen)) / np.tanh(V / (2 * kT))
        )
        np.testing.assert_allclose(S[0, 0], crossover, rtol=1e-7)
    # A clean chain is noiseless at zero temperature.
    clean = noise.noise_matrix_of_system(
        chain_with_leads(3, 0.0).finalized(), mu=[0.1, -0.1], kT=0.0
    )
    assert np.abs(clean).max() < 1e-12
    assert np.all(noise.noise_matrix_of_system(fsys, mu=0.3, kT=0.0) == 0.0)


def test_adaptive_noise_refuses_bad_settings_and_warns_when_short(monkeypatch):
    fsys = chain_with_leads(3, 1.5).finalized()
    with pytest.raises(ValueError, match=r"tol must be > 0, got -1.0"):
        noise.noise_matrix_of_system(fsys, mu=0.0, kT=0.01, tol=-1.0)
    with pytest.raises(ValueError, match=r"max_points must be an integer >= 16, got 4"):
        noise.noise_matrix_of_system(fsys, mu=0.0, kT=0.01, max_points=4)
    with pytest.raises(ValueError, match=r"interpolation must be one of"):
        noise.noise_matrix_of_system(fsys, mu=0.0, kT=0.01, interpolation="spline")
    with pytest.raises(TypeError, match=r"noise_matrix_of_system needs a finalized system"):
        noise.noise_matrix_of_system(chain_with_leads(3, 1.5), mu=0.0, kT=0.01)
    with pytest.warns(ConvergenceWarning, match=r"did not reach tol=1e-12 within max_points=200"):
        noise.noise_matrix_of_system(fsys, mu=0.0, kT=0.01, tol=1e-12, max_points=200)
