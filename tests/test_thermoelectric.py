"""Thermoelectric response of tight-binding devices: mesoscopic.thermoelectric."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mesoscopic as meso
from mesoscopic import analytic, batch, landauer, thermoelectric
from mesoscopic.linear_response import ConvergenceWarning
from mesoscopic.solvers import SolverOptions
from model_systems import barrier_chain, chain_with_leads, square_wire


@pytest.fixture(scope="module")
def tunnel_barrier():
    """Three sites at 3t: T(E) ~ 7e-3 at E = 0, smooth, d ln T / dE ~ 1.5 / t."""
    return barrier_chain(3.0, 3).finalized()


# --------------------------------------------------------------------------------------------
# Low temperature: the Mott formula
# --------------------------------------------------------------------------------------------


def test_mott_formula_is_the_low_temperature_limit(tunnel_barrier):
    height, length, mu = 3.0, 3, 0.0
    temperatures = np.array([0.02, 0.01, 0.005])
    result = thermoelectric.thermoelectric_response(
        tunnel_barrier, mu, temperatures, points_per_kT=1
    )
    # d ln T / dE from the closed form of the chain barrier, independent of the solver.
    step = 1e-4
    log_slope = (
        np.log(analytic.chain_barrier_transmission(mu + step, height, length))
        - np.log(analytic.chain_barrier_transmission(mu - step, height, length))
    ) / (2 * step)
    mott = -(np.pi**2) / 3 * temperatures * log_slope
    seebeck = result.seebeck.values
    assert np.all(seebeck < 0)  # T(E) rises with energy: electron-like
    relative_error = np.abs(seebeck / mott - 1)
    # Sommerfeld corrections are of order (kT / delta)^2: halving kT divides them by 4.
    np.testing.assert_allclose(relative_error[:-1] / relative_error[1:], 4.0, rtol=0.05)
    assert relative_error[-1] < 1e-4
    # The same formula on the interpolated T(E) agrees with the closed-form derivative.
    on_grid = thermoelectric.mott_seebeck(
        result.energy.values, result.transmission.values, mu, temperatures
    )
    np.testing.assert_allclose(on_grid, mott, rtol=1e-7)


# --------------------------------------------------------------------------------------------
# A plateau: Wiedemann-Franz
# --------------------------------------------------------------------------------------------


def test_wiedemann_franz_on_a_conductance_plateau():
    width = 4
    fsys = square_wire(width, 3).finalized(spin_degeneracy=2)
    bottoms = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    mu = 0.5 * (bottoms[0] + bottoms[1])  # one open subband
    kT = 0.01  # mu +- 40 kT stays on the plateau
    assert bottoms[0] < mu - 40 * kT and mu + 40 * kT < bottoms[1]
    result = thermoelectric.thermoelectric_response(fsys, mu, kT)
    assert result.attrs["spin_degeneracy"] == 2
    assert float(result.conductance) == pytest.approx(2.0, abs=1e-10)
    assert abs(float(result.lorenz) - np.pi**2 / 3) < 1e-6
    assert abs(float(result.seebeck)) < 1e-8
    # kappa = L G T with the spin degeneracy in both G and kappa.
    assert float(result.thermal_conductance) == pytest.approx(np.pi**2 / 3 * 2 * kT, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Electron-like and hole-like steps
# --------------------------------------------------------------------------------------------


def test_thermopower_sign_flips_between_electron_and_hole_like_steps():
    """Below the band of a barrier T rises (S < 0); above the band of a well it falls (S > 0).

    The chain is bipartite: flipping the sign of every other orbital maps H to -H, so a
    barrier V at energy E transmits like a well -V at -E, and S(mu, V) = -S(-mu, -V) exactly.
    """
    mu = np.array([-1.3, -1.2])
    kT = np.array([0.01, 0.02])
    barrier = thermoelectric.thermoelectric_response(
        barrier_chain(1.0, 4).finalized(), mu, kT, points_per_kT=1
    )
    well = thermoelectric.thermoelectric_response(
        barrier_chain(-1.0, 4).finalized(), -mu, kT, points_per_kT=1
    )
    assert np.all(barrier.seebeck.values < 0)  # below the barrier's band bottom at E = -1
    assert np.all(well.seebeck.values > 0)  # above the well's band top at E = +1
    np.testing.assert_allclose(well.seebeck.values, -barrier.seebeck.values, rtol=1e-9)
    np.testing.assert_allclose(well.conductance.values, barrier.conductance.values, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# Onsager reciprocity from the currents
# --------------------------------------------------------------------------------------------


def test_peltier_equals_seebeck_times_temperature_from_independent_currents(tunnel_barrier):
    """Heat carried per charge at zero dT equals the open-circuit voltage per dT times T.

    Both sides come from landauer.current and landauer.heat_current driven by a small bias or
    a small temperature difference: the Onsager relation L12 = L21 between two experiments.
    """
    mu, kT = 0.1, 0.02
    result = thermoelectric.thermoelectric_response(tunnel_barrier, mu, kT)
    energies, transmission = result.energy.values, result.transmission.values
    d_mu, d_kT = 1e-6, 1e-6
    # Peltier: heat current / electric current at equal temperatures (electrons: charge -e).
    particle = landauer.current(energies, transmission, mu + d_mu / 2, mu - d_mu / 2, kT, kT)
    heat = (
        landauer.heat_current(energies, transmission, mu + d_mu / 2, mu - d_mu / 2, kT, kT)
        + 0.5 * d_mu * particle
    )  # heat measured from the mean chemical potential
    peltier = -float(heat / particle)
    # Seebeck: the open-circuit mu_hot - mu_cold that cancels the current a temperature
    # difference drives, per unit kT_hot - kT_cold (in k_B/e; -e V = mu for electrons).
    thermal = landauer.current(energies, transmission, mu, mu, kT + d_kT / 2, kT - d_kT / 2)
    seebeck = -float((thermal / d_kT) / (particle / d_mu))
    assert seebeck == pytest.approx(float(result.seebeck), rel=1e-6)
    assert peltier == pytest.approx(float(result.peltier), rel=1e-6)
    assert peltier == pytest.approx(seebeck * kT, rel=1e-6)


def test_figure_of_merit_and_units(tunnel_barrier):
    mu = np.array([0.0, 0.1])
    kT = np.array([0.01, 0.02])
    bare = thermoelectric.thermoelectric_response(tunnel_barrier, mu, kT, points_per_kT=1)
    with_phonons = thermoelectric.thermoelectric_response(
        tunnel_barrier, mu, kT, phonon_conductance=1e-3, energies=bare.energy.values
    )
    s, g, kappa = bare.seebeck, bare.conductance, bare.thermal_conductance
    kt = bare.kT
    np.testing.assert_allclose(bare.zt, s**2 * g * kt / kappa, rtol=1e-12)
    np.testing.assert_allclose(with_phonons.zt, s**2 * g * kt / (kappa + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(bare.peltier, s * kt, rtol=1e-12)
    assert bare.seebeck.dims == ("mu", "kT") and bare.sizes["mu"] == 2
    units = {name: bare[name].attrs["units"] for name in bare.data_vars}
    assert units["seebeck"] == "k_B/e" and units["conductance"] == "e^2/h"
    assert units["lorenz"] == "(k_B/e)^2" and units["zt"] == "1"


# --------------------------------------------------------------------------------------------
# Energy grid and transmission
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    mu=st.lists(st.floats(-3, 3), min_size=1, max_size=6),
    kT=st.lists(st.floats(1e-3, 0.2), min_size=1, max_size=4),
    density=st.floats(1, 4),
)
def test_energy_grid_covers_and_resolves_every_window(mu, kT, density):
    grid = thermoelectric.energy_grid(mu, kT, points_per_kT=density)
    spacing = np.diff(grid)
    # No two knots a rounding error apart (nearly coincident window edges are merged), which
    # would spoil the spline through T(E).
    assert np.min(spacing) >= 0.25 * min(kT) / density
    middle = 0.5 * (grid[1:] + grid[:-1])
    for centre in mu:
        for thermal in kT:
            assert grid[0] <= centre - landauer.THERMAL_WINDOW_KT * thermal + 1e-12
            assert grid[-1] >= centre + landauer.THERMAL_WINDOW_KT * thermal - 1e-12
            inside = np.abs(middle - centre) < landauer.THERMAL_WINDOW_KT * thermal
            assert np.all(spacing[inside] <= thermal / density * (1 + 1e-9))


def test_response_uses_the_transmission_from_from_lead_into_to_lead(tunnel_barrier):
    result = thermoelectric.thermoelectric_response(
        tunnel_barrier, 0.0, 0.01, to_lead=0, from_lead=1
    )
    assert (result.attrs["to_lead"], result.attrs["from_lead"]) == (0, 1)
    energies = result["energy"].values[:: max(1, result.sizes["energy"] // 7)]
    per_energy = [meso.smatrix(tunnel_barrier, e).transmission(0, 1) for e in energies]
    np.testing.assert_allclose(
        result["transmission"].sel(energy=energies).values, per_energy, rtol=0, atol=1e-12
    )
    assert 0 < float(result.conductance) < 1


def test_deprecated_leads_keeps_its_source_drain_meaning_and_warns(tunnel_barrier):
    new = thermoelectric.thermoelectric_response(tunnel_barrier, 0.0, 0.01, to_lead=0, from_lead=1)
    with pytest.warns(DeprecationWarning, match=r"Use to_lead=0, from_lead=1 instead"):
        old = thermoelectric.thermoelectric_response(tunnel_barrier, 0.0, 0.01, leads=(1, 0))
    assert (old.attrs["source_lead"], old.attrs["drain_lead"]) == (1, 0)
    assert (old.attrs["to_lead"], old.attrs["from_lead"]) == (0, 1)
    np.testing.assert_array_equal(old.conductance.values, new.conductance.values)
    energies = np.linspace(-1.0, 1.0, 5)
    with pytest.warns(DeprecationWarning, match=r"transmission_curve\(leads=\(source, drain\)\)"):
        curve = thermoelectric.transmission_curve(tunnel_barrier, energies, leads=(1, 0))
    np.testing.assert_array_equal(
        curve, thermoelectric.transmission_curve(tunnel_barrier, energies, to_lead=0, from_lead=1)
    )
    with pytest.raises(TypeError, match=r"either to_lead= and from_lead= or the deprecated"):
        thermoelectric.transmission_curve(tunnel_barrier, energies, leads=(1, 0), to_lead=0)


def test_transmission_curve_matches_the_closed_form(tunnel_barrier):
    energies = np.linspace(-1.9, 1.9, 9)
    exact = analytic.chain_barrier_transmission(energies, 3.0, 3)
    np.testing.assert_allclose(
        thermoelectric.transmission_curve(tunnel_barrier, energies), exact, rtol=1e-10, atol=0
    )


@pytest.mark.parametrize("solver", ["rgf", "sparse"])
def test_response_takes_the_solver_options_to_one_batched_call_per_round(
    tunnel_barrier, solver, monkeypatch
):
    calls = []
    original = batch.transmission

    def spy(system, energies, *args, **kwargs):
        stats: dict = {}
        calls.append((np.size(energies), kwargs.get("options"), stats))
        return original(system, energies, *args, stats=stats, **kwargs)

    monkeypatch.setattr(batch, "transmission", spy)
    options = SolverOptions(solver=solver, chunk_size=16)
    result = thermoelectric.thermoelectric_response(
        tunnel_barrier, 0.0, 0.01, to_lead=0, from_lead=1, options=options
    )
    # The starting grid, then one call per refinement round; every energy computed once.
    assert len(calls) >= 2
    assert sum(size for size, _, _ in calls) == result.sizes["energy"]
    assert calls[0][0] > 100  # the whole starting grid in one call
    for _, passed, stats in calls:
        assert passed is options
        assert stats["solver"] == solver and stats["sparse_fallback_energies"] == 0
        if solver == "rgf":
            assert stats["chunk_size"] == 16
    # A given grid is the fixed path: one call, no refinement.
    before = len(calls)
    fixed = thermoelectric.thermoelectric_response(
        tunnel_barrier, 0.0, 0.01, energies=thermoelectric.energy_grid(0.0, 0.01), options=options
    )
    assert len(calls) == before + 1 and calls[-1][0] == fixed.sizes["energy"]
    energies = result["energy"].values[:: max(1, result.sizes["energy"] // 7)]
    exact = analytic.chain_barrier_transmission(energies, 3.0, 3)
    np.testing.assert_allclose(
        result["transmission"].sel(energy=energies).values, exact, rtol=1e-10, atol=0
    )


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_clear_messages(tunnel_barrier):
    response = thermoelectric.thermoelectric_response
    with pytest.raises(ValueError, match=r"kT must be > 0 for thermoelectric coefficients"):
        response(tunnel_barrier, 0.0, [0.01, 0.0])
    with pytest.raises(ValueError, match=r"kT must be >= 0 .* got -0.01"):
        response(tunnel_barrier, 0.0, -0.01)
    with pytest.raises(ValueError, match=r"mu must be finite"):
        response(tunnel_barrier, np.nan, 0.01)
    with pytest.raises(ValueError, match=r"lead 2 does not exist; this system has leads 0..1"):
        response(tunnel_barrier, 0.0, 0.01, to_lead=2)
    with pytest.raises(ValueError, match=r"two different leads \(to_lead, from_lead\)"):
        response(tunnel_barrier, 0.0, 0.01, to_lead=1, from_lead=1)
    with pytest.raises(TypeError, match=r"leads must hold lead indices \(int\)"):
        response(tunnel_barrier, 0.0, 0.01, from_lead=0.0)
    with pytest.raises(ValueError, match=r"lead 2 does not exist; this system has leads 0..1"):
        response(tunnel_barrier, 0.0, 0.01, leads=(0, 2))
    with pytest.raises(TypeError, match=r"pair \(source, drain\)"):
        response(tunnel_barrier, 0.0, 0.01, leads=0)
    with pytest.raises(ValueError, match=r"max_points must be an integer >= 16, got 8"):
        response(tunnel_barrier, 0.0, 0.01, max_points=8)
    with pytest.raises(ValueError, match=r"tol must be > 0, got 0.0"):
        response(tunnel_barrier, 0.0, 0.01, tol=0.0)
    with pytest.raises(ValueError, match=r"interpolation must be one of"):
        response(tunnel_barrier, 0.0, 0.01, interpolation="spline")
    with pytest.raises(
        ValueError, match=r"energies must be strictly increasing, got energies\[1\]"
    ):
        response(tunnel_barrier, 0.0, 0.01, energies=[-1.0, 1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"phonon_conductance must be >= 0"):
        response(tunnel_barrier, 0.0, 0.01, phonon_conductance=-1.0)
    with pytest.raises(ValueError, match=r"extend the energy grid"):
        response(tunnel_barrier, 0.0, 0.01, energies=np.linspace(-0.1, 0.1, 101))
    with pytest.raises(ValueError, match=r"points_per_kT must be >= 1"):
        thermoelectric.energy_grid(0.0, 0.01, points_per_kT=0.5)
    with pytest.raises(TypeError, match=r"needs a finalized system"):
        response("wire", 0.0, 0.01)
    with pytest.raises(ValueError, match=r"mu must lie inside the energy grid"):
        thermoelectric.mott_seebeck(np.linspace(0, 1, 11), np.ones(11), 2.0, 0.01)


# --------------------------------------------------------------------------------------------
# Steps of T(E) at the band edges of the leads
# --------------------------------------------------------------------------------------------


def smeared_staircase(openings, closings, mu, kT):
    """Exact L0 and L1 of an integer staircase T(E) = #{n: open_n < E < close_n}.

    A channel open above e contributes int_e^inf (E - mu)^j (-df/dE) dE: f(e) for j = 0 and
    (e - mu) f(e) + kT ln(1 + exp(-(e - mu)/kT)) for j = 1.
    """

    def above(e):
        x = (np.asarray(e)[:, None] - mu) / kT
        occupation = 0.5 * (1 - np.tanh(x / 2))
        first = (np.asarray(e)[:, None] - mu) * occupation + kT * np.logaddexp(0.0, -x)
        return occupation.sum(axis=0), first.sum(axis=0)

    (l0_open, l1_open), (l0_close, l1_close) = above(openings), above(closings)
    return l0_open - l0_close, l1_open - l1_close


@pytest.mark.parametrize("kT", [0.002, 0.005, 0.02])
def test_clean_wire_staircase_is_exact_at_and_around_a_threshold(kT):
    """T(E) of a clean wire is the integer number of open subbands, with thresholds at the
    transverse energies 4 - 2 cos(pi n / (W + 1)) -+ 2: G and S are the Fermi-smeared
    staircase exactly, with mu on a threshold, just below and just above it."""
    width = 4
    fsys = square_wire(width, 3).finalized()
    transverse = 4 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    openings, closings = transverse - 2, transverse + 2
    threshold = openings[1]
    mu = threshold + np.array([-3 * kT, -1e-7, 0.0, 1e-7, 0.5 * kT, 3 * kT])
    result = thermoelectric.thermoelectric_response(fsys, mu, kT)
    l0, l1 = smeared_staircase(openings, closings, mu, kT)
    np.testing.assert_allclose(result.conductance.values, l0, rtol=1e-8)
    np.testing.assert_allclose(result.seebeck.values, -l1 / (kT * l0), rtol=1e-6)
    # The thresholds in reach are in the grid, each sampled on both sides and never on it.
    edges = np.concatenate([openings, closings])
    in_grid = edges[(edges >= result.energy[0].item()) & (edges <= result.energy[-1].item())]
    np.testing.assert_allclose(np.sort(result.step.values), np.sort(in_grid), atol=1e-12)
    grid = result.energy.values
    for edge in in_grid:
        assert np.min(np.abs(grid - edge)) > 1e-9
        assert np.sum(np.abs(grid - edge) < 1e-6) == 2


def test_band_edges_away_from_the_zone_centre_and_boundary_are_found():
    """A chain with next-nearest hopping t2 = 1/2 has E(k) = -2 cos k - cos 2k: a minimum -3
    at k = 0, a local minimum 1 at k = pi and maxima 3/2 at cos k = -1/2, off any simple
    momentum grid. The clean chain transmits one channel on (-3, 1), two on (1, 3/2)."""
    lat = meso.lattice.chain(norbs=1)

    def nnn_chain(builder, sites):
        builder[(lat(i) for i in sites)] = 0.0
        builder[lat.neighbors()] = -1.0
        builder[lat.neighbors(2)] = -0.5

    syst = meso.Builder()
    nnn_chain(syst, range(6))
    lead = meso.Builder(meso.TranslationalSymmetry((-2,)))
    nnn_chain(lead, range(2))
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    kT = 0.004
    mu = np.array([1.0, 1.5 - kT, 1.5, 1.5 + 0.1 * kT])
    result = thermoelectric.thermoelectric_response(fsys, mu, kT)
    assert np.any(np.abs(result.step.values - 1.5) < 1e-12)
    assert np.any(np.abs(result.step.values - 1.0) < 1e-12)
    l0, l1 = smeared_staircase([-3.0, 1.0], [1.5, 1.5], mu, kT)
    np.testing.assert_allclose(result.conductance.values, l0, rtol=1e-8)
    np.testing.assert_allclose(result.seebeck.values, -l1 / (kT * l0), rtol=1e-6)


def test_given_steps_enter_a_given_grid_and_the_mott_formula_respects_them():
    fsys = square_wire(4, 3).finalized()
    transverse = 4 - 2 * np.cos(np.pi * np.arange(1, 5) / 5)
    mu, kT = transverse[1] - 2 + 0.05, 0.005  # one smeared threshold 10 kT below mu
    coarse = np.linspace(mu - 0.25, mu + 0.25, 201)  # spacing kT / 2, a point on the edge
    result = thermoelectric.thermoelectric_response(fsys, mu, kT, energies=coarse, steps=[mu])
    assert np.sum(np.abs(result.energy.values - mu) < 1e-6) == 2
    l0, _ = smeared_staircase(transverse - 2, transverse + 2, np.array([mu]), kT)
    assert float(result.conductance) == pytest.approx(l0[0], rel=1e-8)
    # On a plateau T' = 0, so the Mott thermopower vanishes, right next to the threshold
    # too; one spline through the jump there would ring.
    near = transverse[1] - 2 + np.array([-0.003, 0.003])
    mott = thermoelectric.mott_seebeck(
        result.energy.values, result.transmission.values, near, kT, steps=result.step
    )
    np.testing.assert_allclose(mott, 0.0, atol=1e-9)
    ringing = thermoelectric.mott_seebeck(
        result.energy.values, result.transmission.values, near, kT
    )
    assert np.max(np.abs(ringing)) > 1e-4


# --------------------------------------------------------------------------------------------
# The adaptive grid: a resonance much narrower than kT, and the exact staircase
# --------------------------------------------------------------------------------------------


def double_barrier_chain(thickness: int, height: float):
    """A chain with two barriers and a three-site well: sharp resonances below the band."""
    potential = [0.0] + [height] * thickness + [0.0] * 3 + [height] * thickness + [0.0]
    return chain_with_leads(len(potential), lambda site: potential[site.tag[0]]).finalized()


def test_resonance_much_narrower_than_kT_matches_a_brute_force_dense_grid():
    """A double-barrier level of width ~1e-3 kT: the adaptive grid finds and resolves it
    (with and without the bound-state seeds), the fixed grid of kT/2 does not; the
    reference is a dense grid, uniform at kT/40 and geometric around the peak."""
    fsys = double_barrier_chain(3, 4.0)
    kT = 0.005
    scan = np.linspace(-1.52, -1.50, 4001)
    values = batch.transmission(fsys, scan, 1, 0)
    centre = float(scan[np.argmax(values)])
    step = scan[1] - scan[0]
    assert values.max() > 0.5 and np.sum(values > 0.5 * values.max()) * step < 0.01 * kT
    mu = np.array([centre - 0.01, centre, centre + 0.013])
    temperatures = np.array([kT, 2 * kT])
    window = 40 * 2 * kT
    uniform = np.arange(mu.min() - window, mu.max() + window, kT / 40)
    distance = 1e-9 * np.logspace(0, 7, 3000)
    near = np.concatenate([centre - distance, [centre], centre + distance])
    dense = np.unique(np.concatenate([uniform[np.abs(uniform - centre) > 1e-2], near]))
    reference = landauer.thermoelectric_coefficients(
        dense,
        batch.transmission(fsys, dense, 1, 0),
        mu[:, None],
        temperatures[None, :],
        interpolation="cubic",
    )
    fixed = thermoelectric.thermoelectric_response(
        fsys, mu, temperatures, energies=thermoelectric.energy_grid(mu, temperatures)
    )
    assert np.max(np.abs(fixed.conductance.values - reference.conductance)) > 1e-4
    for orbitals in (0, 2000):
        result = thermoelectric.thermoelectric_response(
            fsys, mu, temperatures, resonance_orbitals=orbitals, tol=1e-8
        )
        assert result.attrs["converged"] and float(result.error_estimate.max()) <= 1e-8
        np.testing.assert_allclose(result.conductance, reference.conductance, rtol=1e-6)
        # S passes through zero at the resonance: compare it on the scale of its values.
        np.testing.assert_allclose(result.seebeck, reference.seebeck, rtol=1e-6, atol=1e-7)
        # kappa ~ 1e-5 kT here: the promise is an error below tol in L2 / kT^2, i.e. ~tol kT.
        np.testing.assert_allclose(
            result.thermal_conductance, reference.thermal_conductance, rtol=1e-6, atol=1e-11
        )
    assert np.max(np.abs(fixed.thermal_conductance.values - reference.thermal_conductance)) > 1e-9


def _staircase_l2(openings, closings, mu, kT):
    """Exact L2 = int T(E) (E - mu)^2 (-df/dE) dE of an integer staircase (see above).

    A channel open above e contributes kT^2 A(x), x = (e - mu)/kT, with, for x >= 0,
    A(x) = x^2 f(x) + 2 [x ln(1 + e^-x) - Li2(-e^-x)], and A(x) = pi^2/3 - A(-x) below.
    """
    from scipy.special import expit, spence

    def tail(x):
        u = np.abs(x)
        value = u**2 * expit(-u) + 2 * (u * np.log1p(np.exp(-u)) - spence(1 + np.exp(-u)))
        return np.where(x >= 0, value, np.pi**2 / 3 - value)

    def above(e):
        return tail((np.asarray(e)[:, None] - mu) / kT).sum(axis=0)

    return kT**2 * (above(openings) - above(closings))


@pytest.mark.parametrize("kT", [0.002, 0.02])
def test_clean_wire_staircase_gives_the_exact_heat_conductance(kT):
    """G, S and kappa of the Fermi-smeared staircase to 1e-6, across a threshold."""
    width = 4
    fsys = square_wire(width, 3).finalized()
    transverse = 4 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    openings, closings = transverse - 2, transverse + 2
    mu = openings[1] + np.array([-3 * kT, 0.0, 0.5 * kT, 3 * kT])
    result = thermoelectric.thermoelectric_response(fsys, mu, kT)
    l0, l1 = smeared_staircase(openings, closings, mu, kT)
    l2 = _staircase_l2(openings, closings, mu, kT)
    np.testing.assert_allclose(result.conductance.values, l0, rtol=1e-6)
    np.testing.assert_allclose(result.seebeck.values, -l1 / (kT * l0), rtol=1e-6)
    kappa = (l2 - l1**2 / l0) / kT
    np.testing.assert_allclose(result.thermal_conductance.values, kappa, rtol=1e-6)
    assert result.attrs["converged"]


def test_adaptive_grid_warns_when_it_runs_out_of_points(tunnel_barrier):
    with pytest.warns(ConvergenceWarning, match=r"did not reach tol=1e-12 within max_points=200"):
        result = thermoelectric.thermoelectric_response(
            tunnel_barrier, [0.0, 0.1], 0.01, tol=1e-12, max_points=200
        )
    assert result.attrs["converged"] is False and result.sizes["energy"] <= 200
    assert float(result.error_estimate.max()) > 1e-12
