"""meso.conductance: the adaptive energy grid against exact thermal averages.

References are independent of the grid logic: closed-form subband staircases, an exact
transfer-matrix transmission of a 1-D chain integrated by landauer's adaptive quadrature, and
dense uniform grids.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import landauer, models, network, thermoelectric
from mesoscopic.linear_response import ConvergenceWarning, energy_grid
from model_systems import chain_with_leads


def wire(width: int, length: int = 2, *, spin_degeneracy: int = 1, gate=None):
    """Square-lattice wire (onsite 4, hopping -1); subband edges 2 - 2 cos(n pi / (W + 1))."""
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()

    def onsite(site, gate=0.0):
        x, y = site.pos
        # A smooth saddle: the constriction of a quantum point contact.
        envelope = np.exp(-((x - (length - 1) / 2) ** 2) / 8.0)
        return 4.0 + gate * envelope * (2 * y / (width - 1) - 1) ** 2

    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite if gate else 4.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(spin_degeneracy=spin_degeneracy)


def subband_edges(width: int) -> np.ndarray:
    n = np.arange(1, width + 1)
    return 2.0 - 2.0 * np.cos(n * np.pi / (width + 1))


def fermi_staircase(edges, mu, kT):
    """sum_n 1 / (1 + exp((E_n - mu) / kT)), overflow-free."""
    x = (edges[:, None, None] - mu[None, :, None]) / kT[None, None, :]
    return np.sum(0.5 * (1.0 - np.tanh(0.5 * x)), axis=0)


def chain(potential):
    """A chain with onsite energies `potential` between two clean leads."""
    return chain_with_leads(len(potential), lambda site: potential[site.tag[0]]).finalized()


def chain_transmission(potential, energy):
    """Exact T(E) of a chain (hopping -1, leads at zero potential) by the transfer matrix.

    With psi_j = exp(i k j) in the right lead, psi_{j-1} = (V_j - E) psi_j - psi_{j+1}
    gives the left-lead amplitudes A exp(i k j) + B exp(-i k j); T = 1 / |A|^2.
    """
    energy = np.asarray(energy, dtype=float)
    k = np.arccos(-energy / 2)
    n = len(potential)
    after, here = np.exp(1j * k * (n + 1)), np.exp(1j * k * n)
    for j in range(n, -1, -1):
        v = potential[j] if j < n else 0.0
        after, here = here, (v - energy) * here - after
    # here = psi_{-1}, after = psi_0
    amplitude = (after * np.exp(1j * k) - here) / (2j * np.sin(k))
    return 1.0 / np.abs(amplitude) ** 2


def double_barrier(thickness: int, height: float) -> list[float]:
    return [0.0] + [height] * thickness + [0.0] * 3 + [height] * thickness + [0.0]


def resonance(potential, low, high):
    """Energy and width (FWHM) of the sharpest peak of the exact T(E) in [low, high]."""
    energies = np.linspace(low, high, 2_000_001)
    values = chain_transmission(potential, energies)
    peak = int(np.argmax(values))
    step = energies[1] - energies[0]
    centre = energies[peak]
    for _ in range(60):  # golden-free bisection on the slope: the peak to rounding
        step /= 2
        left, right = chain_transmission(potential, [centre - step, centre + step])
        centre += step if right > left else -step if left > right else 0.0
    top = float(chain_transmission(potential, centre))
    above = energies[(values > top / 2)]
    return centre, float(above.max() - above.min()), top


def exact_conductance(potential, mu, kT, centre, width):
    """Thermal average of the exact T(E) on a grid of kT/40, geometric near the resonance.

    Around the resonance the points lie at ``centre ± width * 10^(-3..5)`` (up to kT), so
    the peak is sampled ~500 times per decade of distance; a cubic spline through them is
    exact to far below the tolerances tested.
    """
    window = landauer.THERMAL_WINDOW_KT * kT
    uniform = np.arange(mu.min() - window - kT, mu.max() + window + kT, kT / 40)
    distance = width * np.logspace(-3, 5, 4000)
    distance = distance[distance < kT]
    near = np.concatenate([centre - distance, [centre], centre + distance])
    uniform = uniform[np.abs(uniform - centre) > distance[-1]]
    grid = np.unique(np.concatenate([uniform, near]))
    return landauer.linear_conductance(
        grid, chain_transmission(potential, grid), mu, kT, interpolation="cubic"
    )


# --------------------------------------------------------------------------------------------
# Clean wire: the Fermi-smeared staircase
# --------------------------------------------------------------------------------------------


def test_clean_wire_is_the_fermi_smeared_staircase_far_below_and_near_thresholds():
    width = 4
    edges = subband_edges(width)
    fsys = wire(width)
    mu = np.sort(
        np.concatenate([edges[:2] + d for d in (-0.02, -1e-3, 0.0, 1e-3, 0.02)] + [[1.0]])
    )
    kT = np.array([1e-4, 2e-3, 0.01])  # far below the subband spacing, and up to near it
    result = meso.conductance(fsys, mu, kT)
    expected = fermi_staircase(edges, mu, kT)
    np.testing.assert_allclose(result.conductance.values, expected, rtol=0, atol=1e-6)
    assert result.conductance.dims == ("mu", "kT")
    assert result.conductance.attrs["units"] == "e^2/h"
    assert result.attrs["spin_degeneracy"] == 1
    assert bool(result.converged)
    assert float(result.error_estimate.max()) <= 1e-8


def test_spin_degeneracy_doubles_the_staircase_and_is_recorded():
    width = 3
    fsys = wire(width, spin_degeneracy=2)
    edges = subband_edges(width)
    result = meso.conductance(fsys, [edges[0], 1.0], 0.01)
    expected = 2 * fermi_staircase(edges, np.array([edges[0], 1.0]), np.array([0.01]))[:, 0]
    np.testing.assert_allclose(result.conductance.values, expected, atol=2e-6)
    assert result.conductance.attrs["spin_degeneracy"] == 2
    assert result.conductance.dims == ("mu",)  # kT was a number: a scalar coordinate
    assert float(result.kT) == 0.01


def test_zero_temperature_is_the_transmission_at_mu():
    fsys = wire(3)
    result = meso.conductance(fsys, [0.3, 1.0, 2.5], [0.0, 0.01])
    at_mu = meso.transmission(fsys, [0.3, 1.0, 2.5], 1, 0)
    np.testing.assert_allclose(result.conductance.values[:, 0], at_mu, atol=1e-12)


# --------------------------------------------------------------------------------------------
# A smooth quantum point contact against a dense-grid reference
# --------------------------------------------------------------------------------------------


def test_qpc_matches_a_dense_grid_reference():
    width, length = 5, 10
    fsys = wire(width, length, gate=True)
    params = {"gate": 1.5}
    kT = 0.01
    mu = np.array([0.55, 0.62, 0.7])
    # No lead band edge within 34 kT of these mu (edges 0.268, 1, 2, ...): T(E) is smooth
    # there, and a uniform grid of kT/20 with a cubic spline is a reference to ~1e-9.
    dense = np.arange(mu.min() - 35 * kT, mu.max() + 35 * kT, kT / 20)
    reference = landauer.linear_conductance(
        dense,
        meso.transmission(fsys, dense, 1, 0, params=params),
        mu,
        kT,
        interpolation="cubic",
    )
    assert np.ptp(reference) > 0.1  # the constriction makes T(E) vary across the windows
    result = meso.conductance(fsys, mu, kT, params=params)
    np.testing.assert_allclose(result.conductance.values, reference, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Sharp resonances inside the window, not at a lead band edge
# --------------------------------------------------------------------------------------------


def test_resonance_much_narrower_than_kT_is_found_by_refinement():
    potential = double_barrier(3, 4.0)
    centre, width, top = resonance(potential, -1.52, -1.50)
    kT = 0.005
    assert width < 0.01 * kT and top > 0.99  # a resonance 1/100 of kT, narrower than the grid
    mu = np.array([centre - 0.01, centre, centre + 0.013])
    expected = exact_conductance(potential, mu, kT, centre, width)
    fsys = chain(potential)
    # Refinement alone, without the bound-state seeds.
    result = meso.conductance(fsys, mu, kT, resonance_orbitals=0)
    np.testing.assert_allclose(result.conductance.values, expected, atol=1e-6)
    # A fixed grid of spacing kT/2 misses it by far; the thermoelectric response on its
    # adaptive grid (the same engine, without the seeds) finds it.
    grid = energy_grid(mu, kT)
    fixed = thermoelectric.thermoelectric_response(fsys, mu, kT, energies=grid).conductance
    assert np.max(np.abs(fixed.values - expected)) > 1e-4
    adaptive = thermoelectric.thermoelectric_response(fsys, mu, kT, resonance_orbitals=0)
    np.testing.assert_allclose(adaptive.conductance.values, expected, atol=1e-6)


def test_resonance_narrower_than_any_sample_can_see_is_seeded_by_the_bound_states():
    potential = double_barrier(4, 5.0)
    centre, width, top = resonance(potential, -1.50, -1.49)
    kT = 0.005
    assert width < 1e-4 * kT and top > 0.99
    mu = np.array([centre - 0.004, centre, centre + 0.01])
    expected = exact_conductance(potential, mu, kT, centre, width)
    assert expected[1] > 2e-5  # the resonance alone carries this much
    fsys = chain(potential)
    result = meso.conductance(fsys, mu, kT)
    np.testing.assert_allclose(result.conductance.values, expected, atol=1e-6)
    # Without the seeds no sample comes close enough to see it: the grid converges to the
    # background and the resonance is lost (why the seeds exist).
    blind = meso.conductance(fsys, mu, kT, resonance_orbitals=0)
    assert abs(float(blind.conductance[1]) - expected[1]) > 1e-5


# --------------------------------------------------------------------------------------------
# Multi-terminal: steps at the band edges of another lead
# --------------------------------------------------------------------------------------------


def test_three_terminal_matrix_has_the_steps_of_every_lead():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(4) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    main = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    main[(lat(0, y) for y in range(3))] = 4.0
    main[lat.neighbors()] = -1.0
    side = meso.Builder(meso.TranslationalSymmetry((0, 1)))
    side[(lat(x, 0) for x in range(1, 3))] = 4.0
    side[lat.neighbors()] = -1.0
    syst.attach_lead(main)
    syst.attach_lead(main.reversed())
    syst.attach_lead(side)
    fsys = syst.finalized()
    kT = 0.002
    # The side lead (width 2) opens channels at 2 - 2 cos(n pi / 3) = 1 and 3: T_10 jumps.
    mu = np.array([0.995, 1.0, 1.004])
    result = meso.conductance(fsys, mu, kT, matrix=True)
    g = result.conductance.values
    assert g.shape == (3, 3, 3) and result.conductance.dims == ("mu", "to_lead", "from_lead")
    np.testing.assert_allclose(g.sum(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(g.sum(axis=-2), 0.0, atol=1e-8)
    edges = np.concatenate([subband_edges(3), subband_edges(2)])
    breakpoints = np.sort(np.concatenate([edges - 1e-9, edges + 1e-9]))

    def t10(e):
        return meso.transmission(fsys, e, 1, 0)

    reference = landauer.linear_conductance(breakpoints, t10, mu, kT)
    np.testing.assert_allclose(-g[:, 1, 0], reference, atol=1e-6)
    pair = meso.conductance(fsys, mu, kT, leads=(1, 0))
    np.testing.assert_allclose(pair.conductance.values, -g[:, 1, 0], atol=1e-7)
    assert (pair.attrs["to_lead"], pair.attrs["from_lead"]) == (1, 0)


# --------------------------------------------------------------------------------------------
# Batches over parameters
# --------------------------------------------------------------------------------------------


def test_sweep_and_list_of_params_equal_single_calls():
    fsys = wire(4, 6, gate=True)
    gates = [0.5, 2.0]
    mu, kT = [0.4, 0.9], 0.02
    swept = meso.conductance(fsys, mu, kT, sweep={"gate": gates})
    assert swept.conductance.dims == ("gate", "mu")
    listed = meso.conductance(fsys, mu, kT, params=[{"gate": g} for g in gates])
    assert listed.conductance.dims == ("batch", "mu")
    for k, gate in enumerate(gates):
        single = meso.conductance(fsys, mu, kT, params={"gate": gate}).conductance.values
        np.testing.assert_allclose(swept.conductance.sel(gate=gate).values, single, atol=1e-12)
        np.testing.assert_allclose(listed.conductance[k].values, single, atol=1e-12)
    assert swept.energy_points.dims == ("gate",)


def test_bad_input_is_named():
    fsys = wire(3)
    with pytest.raises(ValueError, match=r"lead 5 does not exist; this system has leads 0..1"):
        meso.conductance(fsys, 0.5, 0.01, leads=(5, 0))
    with pytest.raises(ValueError, match=r"two different leads \(to_lead, from_lead\)"):
        meso.conductance(fsys, 0.5, 0.01, leads=(1, 1))
    with pytest.raises(ValueError, match="kT must be >= 0"):
        meso.conductance(fsys, 0.5, -0.01)
    with pytest.raises(ValueError, match="'gate' is given both in params and in sweep"):
        meso.conductance(fsys, 0.5, 0.01, params={"gate": 1.0}, sweep={"gate": [1.0]})
    with pytest.raises(ValueError, match=r"sweep\['gate'\] must be a non-empty 1-D array"):
        meso.conductance(fsys, 0.5, 0.01, sweep={"gate": [[1.0]]})
    with pytest.raises(TypeError, match="params must be a dict"):
        meso.conductance(fsys, 0.5, 0.01, params="gate")
    with pytest.raises(ValueError, match="tol must be > 0"):
        meso.conductance(fsys, 0.5, 0.01, tol=0.0)


def test_point_budget_warns_with_the_batch_index():
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    pattern = double_barrier(3, 1.0)
    for j, v in enumerate(pattern):
        syst[lat(j)] = lambda site, height, v=v: v * height
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    # Height 0: a clean chain, T = 1 flat; height 4: a resonance 4e-5 wide needs many points.
    with pytest.warns(ConvergenceWarning, match=r"1 of 2 batch elements \(batch indices \(1,\)\)"):
        result = meso.conductance(
            fsys, -1.5113, 0.005, sweep={"height": [0.0, 4.0]}, max_points=200
        )
    assert result.converged.values.tolist() == [True, False]
    assert float(result.error_estimate[1]) > 1e-8
    assert int(result.energy_points[1]) <= 200


# --------------------------------------------------------------------------------------------
# One thermal window everywhere; coverage errors that print enough digits
# --------------------------------------------------------------------------------------------


def test_one_window_width_for_every_integral():
    assert landauer.THERMAL_WINDOW_KT == 34.0
    mu, kT = 0.0, 0.01
    E = energy_grid(mu, kT)
    assert E[0] == pytest.approx(-34 * kT) and E[-1] == pytest.approx(34 * kT)
    ones = np.ones_like(E)
    # The thermoelectric coefficients (orders 0..2) accept the same window as the conductance.
    c = landauer.thermoelectric_coefficients(E, ones, mu, kT)
    assert c.lorenz == pytest.approx(np.pi**2 / 3, rel=1e-11)
    assert float(landauer.linear_conductance(E, ones, mu, kT)) == pytest.approx(1.0, abs=1e-13)
    with pytest.raises(ValueError, match="window_kT must be >= 34"):
        energy_grid(mu, kT, window_kT=30)


def test_a_grid_short_of_the_window_by_rounding_or_a_small_bias_is_accepted():
    mu, kT = 0.3, 0.007
    low, high = mu - 34 * kT, mu + 34 * kT
    grid = np.linspace(np.nextafter(low, 1.0), np.nextafter(high, 0.0), 200)
    assert grid[0] > low and grid[-1] < high
    g = landauer.linear_conductance(grid, np.ones_like(grid), mu, kT)
    assert float(g) == pytest.approx(1.0, abs=1e-13)
    # The thermoelectric grid reused for a current at a bias far below kT.
    grid = energy_grid(mu, kT)
    current = landauer.current(grid, np.ones_like(grid), mu + 1e-7, mu - 1e-7, kT, kT)
    assert float(current) == pytest.approx(2e-7, rel=1e-9)


def test_coverage_error_prints_intervals_that_differ():
    mu, kT = 1000.3, 0.007  # a large mu: six digits cannot tell the ends apart
    high = mu + 34 * kT
    grid = np.linspace(mu - 34 * kT, high - 0.1 * kT, 200)  # short by 0.1 kT: a real miss
    with pytest.raises(ValueError) as caught:
        landauer.linear_conductance(grid, np.ones_like(grid), mu, kT)
    message = str(caught.value)
    covers, needed = re.findall(r"\[([^\]]+)\]", message)[:2]
    assert covers != needed, message
    assert "falls short by 0.0007 above" in message


# --------------------------------------------------------------------------------------------
# Network quantities at temperature: the conductance matrix as the road
# --------------------------------------------------------------------------------------------


def test_hall_resistance_of_a_quantum_hall_bar_at_finite_temperature_is_on_its_plateau():
    """conductance(matrix=True) at kT > 0 goes as it is into the network functions: on the
    nu = 1 plateau (Landau levels 0 and 1 near 0.5 and 1.5 at phi = 0.08, so the window
    mu ± 34 kT holds edge states only) R_xy = h/e^2 and R_xx = 0, with the thermal smearing
    of the arms' scattering averaged away by the Büttiker formulas."""
    fsys = models.hall_bar(12, 8, arm=3)
    params = {"phi": 0.08, "disorder": 0.0, "seed": 0}
    G = meso.conductance(fsys, 1.0, 0.01, params=params, matrix=True, tol=1e-7)
    assert G.conductance.dims == ("to_lead", "from_lead") and bool(G.converged)
    g = G.conductance.values
    r_xy = float(network.hall_resistance(g, current=(0, 1), voltage=(2, 4)))
    r_xx = float(network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 3)))
    assert r_xy == pytest.approx(1.0, abs=1e-6)
    assert abs(r_xx) < 1e-5
    # The arms scatter: the transmissions are far from a perfect edge-channel network.
    assert 0.01 < -g[3, 0] < 0.5
