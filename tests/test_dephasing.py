"""Büttiker probes on tight-binding systems: mesoscopic.dephasing.

What is exact and what is not, in the wide-band probe model used here:

* The probe transmissions are the Caroli formula with the probes' self-energies; a wide-band
  probe whose self-energy equals that of a real lead at the same energy *is* that lead, so the
  whole transmission matrix must agree with ``meso.smatrix`` on the system with the real lead
  (to rounding). Büttiker's one-probe formula then follows exactly.
* Uniform probes along a chain: ``R = (h/e^2) (1 + L / (2 l_phi))`` with ``l_phi = v / eta``
  up to O((eta / v)^2): an isotropically re-emitting probe backscatters half of what it absorbs.
* A double barrier with probes in the well: the probes remove the coherent multiple
  reflections, but each probe also re-emits isotropically, so the fully dephased well is itself
  a (small) ohmic resistor. The strongly dephased result is the classical series of three
  incoherent scatterers, ``1/T - 1 = (1/T1 - 1) + (1/T_well - 1) + (1/T2 - 1)``, up to
  corrections of first order in eta / v (each barrier now borders an absorbing medium, not a
  clean lead); it becomes the two-barrier series-resistor (phase-averaged Fabry-Pérot) value
  ``T1 T2 / (T1 + T2 - T1 T2)`` only when the well's own resistance ``L / (2 l_phi)`` is
  negligible next to the barriers' ``1/T_i``. No choice of probes makes it exact: a
  Büttiker probe randomizes the direction as well as the phase.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mesoscopic as meso
from mesoscopic import analytic, dephasing, landauer, network
from model_systems import square_wire

pytestmark = [
    pytest.mark.filterwarnings("error::mesoscopic.network.CurrentConservationWarning"),
    pytest.mark.filterwarnings("error::mesoscopic.network.EnergyGridWarning"),
]


# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------


def chain_lead(lat, direction=-1):
    lead = meso.Builder(meso.TranslationalSymmetry((direction, 0)))
    lead[lat(0, 0)] = 0.0
    lead[lat.neighbors()] = -1.0
    return lead


def chain(length, onsite=0.0):
    """A chain along x on a square lattice (so that side leads along y can be attached)."""
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[(lat(x, 0) for x in range(length))] = onsite
    syst[lat.neighbors()] = -1.0
    syst.attach_lead(chain_lead(lat))
    syst.attach_lead(chain_lead(lat).reversed())
    return syst, lat


def double_barrier(well, height, barrier=2):
    """Chain with two barriers of `barrier` sites at onsite `height` around a clean well."""
    total = 2 * barrier + well

    def onsite(site):
        x = site.tag[0]
        return height if x < barrier or x >= barrier + well else 0.0

    syst, _ = chain(total, onsite)
    return syst.finalized(), list(range(barrier, barrier + well))


def side_lead_system(probe_x=3, length=7):
    """A disordered chain with a third, semi-infinite chain lead attached along +y at probe_x.

    The probe site's onsite energy is a parameter, so that the real part of the side lead's
    self-energy can be reproduced on the same system without the side lead.
    """
    rng = np.random.default_rng(7)
    disorder = rng.uniform(-0.6, 0.6, size=length)

    def onsite(site, shift):
        x = site.tag[0]
        return disorder[x] + (shift if x == probe_x else 0.0)

    def build(with_side_lead):
        syst, lat = chain(length, onsite)
        if with_side_lead:
            side = meso.Builder(meso.TranslationalSymmetry((0, 1)))
            side[lat(probe_x, 0)] = 0.0
            side[lat.neighbors()] = -1.0
            syst.attach_lead(side)
        return syst.finalized(), lat

    return build(True), build(False)


def smatrix_transmissions(fsys, energy, params=None):
    s = meso.smatrix(fsys, energy, params=params)
    n = len(fsys.leads)
    return np.array([[s.transmission(i, j) for j in range(n)] for i in range(n)])


def side_lead_selfenergy(energy):
    """Retarded self-energy of a semi-infinite chain (hopping -1) on the site it attaches to."""
    return 0.5 * (energy - 1j * np.sqrt(4.0 - energy**2))


# --------------------------------------------------------------------------------------------
# The transmission matrix against the wave-function-matching solver
# --------------------------------------------------------------------------------------------


def test_caroli_matrix_of_real_leads_matches_smatrix():
    (three_leads, _), _ = side_lead_system()
    for energy in (-1.3, -0.2, 0.7, 1.6):
        ours = dephasing.probe_transmission(three_leads, energy, [], eta=0.0, params={"shift": 0})
        exact = smatrix_transmissions(three_leads, energy, {"shift": 0.0})
        np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-12)


def test_wide_band_probe_equal_to_a_real_lead_reproduces_its_smatrix():
    """A probe with Sigma_p = Sigma_lead(E) at one energy is the real lead at that energy."""
    (three_leads, _), (two_leads, lat) = side_lead_system(probe_x=3)
    for energy in (-1.5, -0.4, 0.0, 0.9, 1.7):
        sigma = side_lead_selfenergy(energy)
        # Re Sigma goes into the onsite energy, -2 Im Sigma is the probe coupling eta.
        params = {"shift": sigma.real}
        probe = dephasing.probe_transmission(
            two_leads, energy, [lat(3, 0)], eta=-2 * sigma.imag, params=params
        )
        exact = smatrix_transmissions(three_leads, energy, {"shift": 0.0})
        np.testing.assert_allclose(probe, exact, rtol=0, atol=1e-12)

        # Büttiker's formula for one floating probe, from the real three-lead S-matrix.
        buttiker = exact[1, 0] + exact[2, 0] * exact[1, 2] / (exact[0, 2] + exact[1, 2])
        effective = dephasing.dephased_transmission(
            two_leads, energy, [lat(3, 0)], eta=-2 * sigma.imag, params=params
        )
        assert abs(effective[1, 0] - buttiker) < 1e-12
        assert abs(effective[0, 1] - buttiker) < 1e-12
        assert abs(effective[0, 0] + effective[1, 0] - 1.0) < 1e-12


def test_vanishing_coupling_recovers_the_coherent_smatrix():
    _, (two_leads, _) = side_lead_system()
    params = {"shift": 0.0}
    energy = 0.35
    exact = smatrix_transmissions(two_leads, energy, params)
    decoupled = dephasing.probe_transmission(two_leads, energy, [2, 3, 4], eta=0.0, params=params)
    np.testing.assert_allclose(decoupled[:2, :2], exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(decoupled[2:, :2], 0.0, atol=0)
    np.testing.assert_allclose(np.diag(decoupled)[2:], 1.0, atol=0)  # full reflection
    effective = dephasing.dephased_transmission(
        two_leads, energy, [2, 3, 4], eta=0.0, params=params
    )
    np.testing.assert_allclose(effective, exact, rtol=0, atol=1e-12)
    # A weak coupling changes the coherent result only to first order in eta.
    eta = 1e-7
    weak = dephasing.dephased_transmission(two_leads, energy, [2, 3, 4], eta=eta, params=params)
    assert 0 < np.max(np.abs(weak - exact)) < 10 * eta


def onsite_disorder(seed, shape, strength):
    values = np.random.default_rng(seed).uniform(-strength / 2, strength / 2, size=shape)

    def onsite(site):
        return 4.0 + values[site.tag[0], site.tag[1]]

    return onsite


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    energy=st.floats(0.3, 3.5),
    eta=st.floats(0.0, 3.0),
    flux=st.floats(-0.2, 0.2),
)
def test_current_conservation_and_reciprocity_with_probes(seed, energy, eta, flux):
    """sum_q T_qp = sum_q T_pq = N_p for leads and probes; T_pq(B) = T_qp(-B)."""
    length, width = 6, 3
    lat = meso.lattice.square(1.0, norbs=1)
    onsite = onsite_disorder(seed, (length, width), 2.0)
    fsys = square_wire(width, length, onsite, lat=lat).finalized(magnetic_flux="phi")
    sites = [lat(x, y) for x in (1, 3, 4) for y in range(width)]
    couplings = eta * np.linspace(0.5, 1.5, len(sites))
    plus = dephasing.probe_transmission(fsys, energy, sites, eta=couplings, params={"phi": flux})
    minus = dephasing.probe_transmission(fsys, energy, sites, eta=couplings, params={"phi": -flux})
    channels = meso.smatrix(fsys, energy, params={"phi": flux}).num_propagating(0)
    expected = np.array([channels, channels] + [1] * len(sites), dtype=float)
    for matrix in (plus, minus):
        np.testing.assert_allclose(matrix.sum(axis=0), expected, rtol=0, atol=1e-10)
        np.testing.assert_allclose(matrix.sum(axis=1), expected, rtol=0, atol=1e-10)
        assert np.all(matrix > -1e-12)
    np.testing.assert_allclose(plus, minus.T, rtol=0, atol=1e-10)


def test_probe_on_a_multi_orbital_site_has_one_channel_per_orbital():
    lat = meso.lattice.chain(norbs=2)
    syst = meso.Builder()
    hopping = np.array([[-1.0, 0.3], [0.3, -0.8]])
    syst[(lat(i) for i in range(4))] = np.array([[0.2, 0.4], [0.4, -0.3]])
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = np.zeros((2, 2))
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    T = dephasing.probe_transmission(syst.finalized(), 0.3, [1, 2], eta=[0.7, 1.9])
    channels = T.sum(axis=0)
    np.testing.assert_allclose(channels[2:], [2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(T.sum(axis=1), channels, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Ballistic to ohmic
# --------------------------------------------------------------------------------------------


def dephased_chain_resistance(length, eta, energy=0.0):
    fsys = chain(length)[0].finalized()
    effective = dephasing.dephased_transmission(fsys, energy, range(length), eta=eta)
    return 1.0 / effective[1, 0]  # units of h/e^2 (one spin-resolved channel)


def test_resistance_of_a_dephased_chain_grows_linearly_with_length():
    eta, energy = 0.1, 0.0
    velocity = 2 * np.sin(np.arccos(-energy / 2))  # dE/dk of E = -2 cos k
    dephasing_length = velocity / eta  # 20 sites
    lengths = np.array([100, 140, 200, 260])  # 5 to 13 dephasing lengths
    resistance = np.array([dephased_chain_resistance(n, eta, energy) for n in lengths])
    slopes = np.diff(resistance) / np.diff(lengths)
    assert np.ptp(slopes) / np.mean(slopes) < 1e-3  # constant slope: ohmic
    # An escaping electron is re-emitted forwards or backwards with equal weight, so the
    # backscattering length is twice the dephasing length (up to O((eta / v)^2)).
    assert abs(np.mean(slopes) * 2 * dephasing_length - 1) < 1e-2
    # The intercept is the contact resistance of one channel, h/e^2.
    intercept = resistance[0] - slopes[0] * lengths[0]
    assert abs(intercept - 1.0) < 1e-2


def test_ballistic_limit_leaves_only_the_contact_resistance():
    assert dephased_chain_resistance(150, 0.0) == pytest.approx(1.0, abs=1e-12)
    weak = dephased_chain_resistance(150, 1e-6)
    assert 0 < weak - 1.0 < 1e-4  # 150 sites << l_phi = 2e6 sites: ballistic


# --------------------------------------------------------------------------------------------
# Fabry-Pérot resonances washed out by dephasing
# --------------------------------------------------------------------------------------------


def test_fabry_perot_resonances_wash_out_into_the_incoherent_series_result():
    height, barrier, well = 3.0, 2, 100
    fsys, well_sites = double_barrier(well, height, barrier)
    energies = np.linspace(-0.1, 0.1, 31)  # three Fabry-Pérot periods (pi v / well)
    t_barrier = analytic.chain_barrier_transmission(energies, height, barrier)
    series = analytic.fabry_perot_average_transmission(t_barrier, t_barrier)

    coherent = dephasing.dephased_transmission(fsys, energies, well_sites, eta=0.0)[:, 1, 0]
    exact = [meso.smatrix(fsys, e).transmission(1, 0) for e in energies]
    np.testing.assert_allclose(coherent, exact, rtol=0, atol=1e-12)

    amplitudes = []
    for eta in (0.0, 0.005, 0.02, 0.05, 0.2):
        dephased = dephasing.dephased_transmission(fsys, energies, well_sites, eta=eta)[:, 1, 0]
        amplitudes.append(np.ptp(dephased / series))
    assert np.all(np.diff(amplitudes) < 0), amplitudes
    assert amplitudes[0] > 5 and amplitudes[-1] < 1e-2  # peaks 1/series ~ 20, sampled

    # Strong dephasing: l_phi = 10 sites, no coherent round trip across 100 sites is left.
    eta = 0.2
    dephased = dephasing.dephased_transmission(fsys, energies, well_sites, eta=eta)[:, 1, 0]
    clean_well = chain(well)[0].finalized()
    t_well = dephasing.dephased_transmission(clean_well, energies, range(well), eta=eta)[:, 1, 0]
    three_resistors = 1 / (1 + 2 * (1 / t_barrier - 1) + (1 / t_well - 1))
    assert np.max(np.abs(dephased / three_resistors - 1)) < 0.06
    # The well adds L / (2 l_phi) = 5 to the barriers' 2 (1/T1 - 1) ~ 42: within ~15% of the
    # two-barrier series-resistor value, far from the coherent peaks (a factor 20 above it).
    assert np.max(np.abs(dephased / series - 1)) < 0.15


def test_opaque_barriers_approach_the_two_barrier_series_resistor_linearly_in_eta():
    """Barrier resistances >> the well's: T -> T1 T2 / (T1 + T2 - T1 T2) as eta / v -> 0.

    The well is kept 8 dephasing lengths long (eta L = 16), so no coherence crosses it and its
    own resistance L / (2 l_phi) = 4 h/e^2 stays fixed, ~0.3% of the barriers' 2/T1. What is
    left beyond the incoherent series of barrier, well and barrier is the change of each
    barrier's transmission by the absorbing medium next to it, first order in eta / v.
    """
    height, barrier = 4.0, 3
    energies = np.linspace(-0.1, 0.1, 5)
    t_barrier = analytic.chain_barrier_transmission(energies, height, barrier)
    series = analytic.fabry_perot_average_transmission(t_barrier, t_barrier)
    assert np.max(t_barrier) < 2e-3
    from_three, from_series = [], []
    for eta in (0.2, 0.1, 0.05):
        well = round(16 / eta)
        fsys, well_sites = double_barrier(well, height, barrier)
        dephased = dephasing.dephased_transmission(fsys, energies, well_sites, eta=eta)[:, 1, 0]
        clean_well = chain(well)[0].finalized()
        t_well = dephasing.dephased_transmission(clean_well, energies, range(well), eta=eta)
        three_resistors = 1 / (1 + 2 * (1 / t_barrier - 1) + (1 / t_well[:, 1, 0] - 1))
        from_three.append(np.max(np.abs(dephased / three_resistors - 1)))
        from_series.append(np.max(np.abs(dephased / series - 1)))
    ratios = np.array(from_three[:-1]) / np.array(from_three[1:])
    assert np.all((ratios > 1.7) & (ratios < 2.2)), from_three
    assert from_series[-1] < 0.015


# --------------------------------------------------------------------------------------------
# Finite temperature and bias
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_double_barrier():
    return double_barrier(6, 1.5, 1)


def test_elastic_dephasing_probes_at_finite_bias_integrate_the_effective_transmission(
    short_double_barrier,
):
    fsys, sites = short_double_barrier
    mu_left, mu_right, kT = 0.15, -0.05, 0.01
    energies = np.linspace(-0.4, 0.55, 96)
    solution = dephasing.dephased_transport(
        fsys, sites, eta=0.3, mu=[mu_left, mu_right], kT=kT, energies=energies
    )
    effective = dephasing.dephased_transmission(fsys, energies, sites, eta=0.3)[:, 1, 0]
    window = landauer.fermi_dirac(energies, mu_left, kT) - landauer.fermi_dirac(
        energies, mu_right, kT
    )
    expected = np.trapezoid(effective * window, energies)
    assert solution.charge_current[0] == pytest.approx(expected, rel=1e-10)
    assert abs(solution.charge_current[0] + solution.charge_current[1]) < 1e-12
    assert solution.max_residual < 1e-10


def test_voltage_probes_in_linear_response_eliminate_the_thermal_average(short_double_barrier):
    """Inelastic probes: the Schur complement of the thermally averaged conductance matrix."""
    fsys, sites = short_double_barrier
    kT, bias = 0.02, 1e-6
    energies = np.linspace(-0.8, 0.8, 161)
    solution = dephasing.dephased_transport(
        fsys, sites, eta=0.3, mu=[bias / 2, -bias / 2], kT=kT, kind="voltage", energies=energies
    )
    transmission = np.array(
        [dephasing.probe_transmission(fsys, e, sites, eta=0.3) for e in energies]
    )
    occupation = landauer.fermi_dirac(energies, 0.0, kT)
    weight = occupation * (1 - occupation) / kT  # -df/dE
    probes = list(range(2, 2 + len(sites)))
    averaged = np.trapezoid(transmission * weight[:, None, None], energies, axis=0)
    inelastic = network.eliminate_probes(averaged, probes)[1, 0]
    elastic = np.trapezoid(
        network.eliminate_probes(transmission, probes)[:, 1, 0] * weight, energies
    )
    assert solution.charge_current[0] / bias == pytest.approx(inelastic, rel=1e-5)
    # The two kinds of probe differ where T(E) varies within kT (here near a resonance).
    assert abs(inelastic - elastic) > 1e-4


def test_automatic_energy_grid_and_default_probe_temperature(short_double_barrier):
    fsys, sites = short_double_barrier
    solution = dephasing.dephased_transport(
        fsys, sites[:2], eta=0.5, mu={0: 0.02, 1: -0.02}, kT=0.05, kind="voltage"
    )
    window = landauer.THERMAL_WINDOW_KT * 0.05
    assert solution.energies[0] <= 0.02 - window + 1e-12
    assert solution.energies[-1] >= 0.02 + window - 1e-12
    np.testing.assert_allclose(solution.kT[2:], 0.05)
    assert abs(solution.charge_current.sum()) < 1e-12
    assert -0.02 < solution.mu[2] < 0.02


def test_thermal_probes_conserve_charge_and_energy(short_double_barrier):
    fsys, sites = short_double_barrier
    solution = dephasing.dephased_transport(
        fsys,
        sites[:3],
        eta=0.4,
        mu=[0.0, 0.0],
        kT=[0.03, 0.01],
        kind="thermal",
        energies=np.linspace(-1.3, 1.3, 261),
    )
    assert abs(solution.charge_current.sum()) < 1e-12
    assert abs(solution.energy_current.sum()) < 1e-12
    assert solution.max_residual < 1e-10
    # Without bias there is no Joule heat: the probes' temperatures lie between the leads'.
    assert np.all((solution.kT[2:] > 0.01) & (solution.kT[2:] < 0.03))


def test_no_open_channel_gives_zero_effective_transmission(short_double_barrier):
    fsys, sites = short_double_barrier
    outside_band = dephasing.dephased_transmission(fsys, [2.5, -2.3], sites, eta=0.5)
    np.testing.assert_array_equal(outside_band, 0.0)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_clear_messages(short_double_barrier):
    fsys, _ = short_double_barrier
    other_lattice = meso.lattice.square(1.0, norbs=1)
    with pytest.raises(ValueError, match=r"is not a site of the scattering region"):
        dephasing.probe_transmission(fsys, 0.1, [other_lattice(50, 0)], eta=0.1)
    with pytest.raises(ValueError, match=r"site index 99 does not exist; this system has sites"):
        dephasing.probe_transmission(fsys, 0.1, [99], eta=0.1)
    with pytest.raises(ValueError, match=r"eta must be >= 0 .* got -0.5"):
        dephasing.probe_transmission(fsys, 0.1, [2], eta=-0.5)
    with pytest.raises(ValueError, match=r"eta must be >= 0"):
        dephasing.dephased_transmission(fsys, [0.1], [2, 3], eta=[0.1, -0.1])
    with pytest.raises(ValueError, match=r"one coupling per probe, shape \(2,\)"):
        dephasing.probe_transmission(fsys, 0.1, [2, 3], eta=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"repeats site indices \[2\]"):
        dephasing.probe_transmission(fsys, 0.1, [2, 2], eta=0.1)
    with pytest.raises(ValueError, match=r"selects no site"):
        dephasing.probe_transmission(fsys, 0.1, lambda site: False, eta=0.1)
    with pytest.raises(TypeError, match=r"sites must be a site of the system"):
        dephasing.probe_transmission(fsys, 0.1, ["a"], eta=0.1)
    with pytest.raises(TypeError, match=r"needs a finalized system"):
        dephasing.probe_transmission(object(), 0.1, [2], eta=0.1)
    with pytest.raises(TypeError, match=r"energy must be a real number"):
        dephasing.probe_transmission(fsys, [0.1, 0.2], [2], eta=0.1)
    with pytest.raises(ValueError, match=r"kind must be one of"):
        dephasing.dephased_transport(fsys, [2], eta=0.1, mu=0.0, kT=0.01, kind="inelastic")
    with pytest.raises(ValueError, match=r"eta must be > 0 for dephased_transport"):
        dephasing.dephased_transport(fsys, [2], eta=0.0, mu=0.0, kT=0.01)
    with pytest.raises(ValueError, match=r"kT must be >= 0"):
        dephasing.dephased_transport(fsys, [2], eta=0.1, mu=0.0, kT=[0.01, -0.01])
    with pytest.raises(ValueError, match=r"give the voltage probes' temperature as probe_kT"):
        dephasing.dephased_transport(fsys, [2], eta=0.1, mu=0.0, kT=[0.01, 0.02], kind="voltage")
    with pytest.raises(ValueError, match=r"mu must give a value for every lead 0..1"):
        dephasing.dephased_transport(fsys, [2], eta=0.1, mu={0: 0.0}, kT=0.01)


# --------------------------------------------------------------------------------------------
# Probes are self-energy leads solved by the ordinary solvers
# --------------------------------------------------------------------------------------------


def test_probe_transmission_is_the_dense_caroli_matrix_of_leads_and_wide_band_probes():
    fsys, _ = double_barrier(4, 1.5, barrier=1)
    probes, etas = [1, 2, 4], np.array([0.3, 0.0, 0.7])  # one decoupled probe
    energy = 0.4
    t = dephasing.probe_transmission(fsys, energy, probes, eta=etas)
    # Independent: dense G with the leads' exact self-energies and -i eta/2 on probe sites.
    h = fsys.hamiltonian_submatrix()
    sigmas = []
    for k, lead in enumerate(fsys.leads):
        orbs, cell = fsys.lead_interface_orbitals(k)
        s = np.zeros_like(h)
        s[np.ix_(orbs, orbs)] = lead.selfenergy(energy)[np.ix_(cell, cell)]
        sigmas.append(s)
    for site, eta in zip(probes, etas):
        s = np.zeros_like(h)
        s[site, site] = -0.5j * eta
        sigmas.append(s)
    green = np.linalg.inv(energy * np.eye(len(h)) - h - sum(sigmas))
    gammas = [1j * (s - s.conj().T) for s in sigmas]
    expected = np.array(
        [[np.trace(gi @ green @ gj @ green.conj().T).real for gj in gammas] for gi in gammas]
    )
    off = ~np.eye(len(gammas), dtype=bool)
    np.testing.assert_allclose(t[off], expected[off], atol=1e-13)
    assert t[3, 3] == 1.0  # the decoupled probe reflects its one channel
    # The same matrix from the batched solvers on the system with the probes as leads.
    probe_leads = [
        meso.system.SelfEnergyLead(lambda e, eta=eta: [[-0.5j * eta]], [fsys.sites[s]])
        for s, eta in zip(probes, etas)
        if eta > 0
    ]
    probed = fsys.with_leads(probe_leads)
    for solver in ("sparse", "rgf"):
        batch = meso.batch.transmission(probed, [energy], solver=solver)[0]
        keep = [0, 1, 2, 4]
        np.testing.assert_allclose(t[np.ix_(keep, keep)], batch, atol=1e-13)


def test_dephasing_solves_no_linear_system_of_its_own():
    import inspect

    source = inspect.getsource(dephasing)
    for solve in ("splu", "spsolve", "linalg.solve", "linalg.inv", "scipy.sparse"):
        assert solve not in source, f"dephasing calls {solve}; use the solvers"
