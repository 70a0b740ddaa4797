"""Mesoscopic capacitor: Wigner-Smith delay times, densities of states, C_mu and R_q."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import unitary_group

import mesoscopic as meso
from mesoscopic import analytic, batch, capacitor, transport
from mesoscopic.leads import PropagatingModes
from mesoscopic.scattering import SMatrix
from mesoscopic.solvers import SolverOptions
from model_systems import chain_with_leads

# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------


def chain_lead(lat, onsite=0.0):
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = onsite
    lead[lat.neighbors()] = -1.0
    return lead


def chain_cavity(length, *, spin_degeneracy=1):
    """Sites 0..length-1 of a chain (hopping -1) closed after the last one.

    Site 0 is the barrier (onsite ``barrier``) to the lead at x <= -1, sites 1.. the cavity
    (onsite ``gate``).
    """
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()

    def onsite(site, barrier, gate):
        return barrier if site.tag[0] == 0 else gate

    syst[(lat(x) for x in range(length))] = onsite
    syst[lat.neighbors()] = -1.0
    syst.attach_lead(chain_lead(lat))
    return syst.finalized(spin_degeneracy=spin_degeneracy)


def exact_cavity_dos(energy, length, barrier, gate):
    """(1/2 pi) d arg r / dE of `chain_cavity`, differentiated exactly (forward mode).

    In the cavity psi_x = sin(q (length - x)) with E = gate - 2 cos q; the barrier and lead
    equations give psi at x = -1, -2 (lead cells m = 0, 1), matched to
    a exp(-i k m) + b exp(i k m) with E = -2 cos k; r = b / a.
    """
    q = np.arccos((gate - energy) / 2)
    dq = 1 / (2 * np.sin(q))
    k = np.arccos(-energy / 2)
    dk = 1 / (2 * np.sin(k))
    p0, dp0 = np.sin(q * length), np.cos(q * length) * length * dq
    p1, dp1 = np.sin(q * (length - 1)), np.cos(q * (length - 1)) * (length - 1) * dq
    m0 = (barrier - energy) * p0 - p1
    dm0 = -p0 + (barrier - energy) * dp0 - dp1
    m1 = -energy * m0 - p0
    dm1 = -m0 - energy * dm0 - dp0
    up, down = np.exp(1j * k), np.exp(-1j * k)
    den, dden = up - down, 1j * dk * (up + down)
    num, dnum = m1 - m0 * down, dm1 - dm0 * down + m0 * 1j * dk * down
    b = num / den
    db = (dnum * den - num * dden) / den**2
    a, da = m0 - b, dm0 - db
    r, dr = b / a, (db * a - b * da) / a**2
    return (dr / r).imag / (2 * np.pi)


def square_dot(*, spin_degeneracy=1):
    """A 7 x 5 square-lattice dot (onsite 4 + gate) behind one barrier site (onsite 4 + V).

    The lead is a single chain (onsite 4, band [2, 6]) at y = 2: one channel.
    """
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()

    def dot(site, gate):
        return 4.0 + gate

    syst[(lat(x, y) for x in range(1, 8) for y in range(5))] = dot
    syst[lat(0, 2)] = lambda site, barrier: 4.0 + barrier
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[lat(0, 2)] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    return syst.finalized(spin_degeneracy=spin_degeneracy)


def barrier_between_two_leads():
    """The dot's contact alone: the barrier site between two chain leads (onsite 4)."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = lambda site, barrier: 4.0 + barrier
    syst.attach_lead(chain_lead(lat, 4.0))
    syst.attach_lead(chain_lead(lat, 4.0).reversed())
    return syst.finalized()


def two_channel_cavity(length):
    """A chain of two-orbital sites, the orbitals uncoupled: two cavities behind barriers
    (site 0, onsite diag(barrier_a, barrier_b)) sharing one lead with two degenerate
    channels. Each orbital alone is `chain_cavity`."""
    lat = meso.lattice.chain(norbs=2)
    syst = meso.Builder()

    def onsite(site, barrier_a, barrier_b, gate_a, gate_b):
        if site.tag[0] == 0:
            return np.diag([barrier_a, barrier_b])
        return np.diag([gate_a, gate_b])

    syst[(lat(x) for x in range(length))] = onsite
    syst[lat.neighbors()] = -np.eye(2)
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = np.zeros((2, 2))
    lead[lat.neighbors()] = -np.eye(2)
    syst.attach_lead(lead)
    return syst.finalized()


def single_channel_modes(phase_in=0.0, phase_out=0.0):
    return PropagatingModes(
        wave_functions=np.array([[np.exp(1j * phase_in), np.exp(1j * phase_out)]]),
        momenta=np.array([-0.5, 0.5]),
        velocities=np.array([-1.0, 1.0]),
        block_nmodes=(1,),
        blocks=np.zeros(2, dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------
# Delay times and densities of states
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("barrier", [0.5, 2.0, 6.0])
def test_chain_cavity_density_of_states_matches_exact_phase_derivative(barrier):
    length, gate = 20, 0.2
    fsys = chain_cavity(length)
    for energy in (-0.3, 0.1, 0.7):
        params = {"barrier": barrier, "gate": gate}
        ours = capacitor.density_of_states(fsys, energy, params=params)
        exact = exact_cavity_dos(energy, length, barrier, gate)
        np.testing.assert_allclose(ours, exact, rtol=1e-8)
        times = capacitor.delay_times(fsys, energy, params=params)
        np.testing.assert_allclose(times, [2 * np.pi * exact], rtol=1e-8)


def test_delay_is_independent_of_the_mode_phases_of_the_solver():
    """Closed form of Gabelli et al.: r(E) of a cavity behind a QPC, with the phases of the
    incoming and outgoing modes redrawn at random at every energy the derivative needs."""
    rng = np.random.default_rng(5)
    transmission, spacing = 0.3, 0.5

    def scattering(energy):
        r = analytic.cavity_reflection_amplitude(
            energy, transmission=transmission, level_spacing=spacing
        )
        phase_in, phase_out = rng.uniform(0, 2 * np.pi, 2)
        # Modes phi e^{i a}: amplitudes pick up e^{-i a}, so r -> r e^{i (a_in - a_out)}.
        data = np.array([[r * np.exp(1j * (phase_in - phase_out))]])
        modes = single_channel_modes(phase_in, phase_out)
        return SMatrix(data=data, energy=energy, lead_info=(modes,))

    for energy in np.linspace(-0.2, 0.3, 7):
        ours = capacitor.density_of_states(scattering, energy, step=1e-4)
        exact = analytic.cavity_density_of_states(
            energy, transmission=transmission, level_spacing=spacing
        )
        np.testing.assert_allclose(ours, exact, rtol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), energy=st.floats(-0.2, 0.2))
def test_delay_times_are_independent_of_the_basis_of_degenerate_modes(seed, energy):
    """Two degenerate channels whose mode basis is rotated at random at every energy."""
    rng = np.random.default_rng(seed)
    transmissions, spacing = (0.2, 0.7), 0.4

    def scattering(e):
        diagonal = np.diag(
            [
                analytic.cavity_reflection_amplitude(e, transmission=t, level_spacing=spacing)
                for t in transmissions
            ]
        )
        rotation_in, rotation_out = unitary_group.rvs(2, size=2, random_state=rng)
        # The solver's modes are the physical ones mixed by W: amplitudes a = W^dagger a_phys.
        data = rotation_out.conj().T @ diagonal @ rotation_in
        modes = PropagatingModes(
            wave_functions=np.hstack([rotation_in, rotation_out]),
            momenta=np.array([-0.5, -0.5, 0.5, 0.5]),
            velocities=np.array([-1.0, -1.0, 1.0, 1.0]),
            block_nmodes=(2,),
            blocks=np.zeros(4, dtype=np.int64),
        )
        return SMatrix(data=data, energy=e, lead_info=(modes,))

    times = capacitor.delay_times(scattering, energy, step=1e-5)
    exact = [
        2
        * np.pi
        * analytic.cavity_density_of_states(energy, transmission=t, level_spacing=spacing)
        for t in transmissions
    ]
    np.testing.assert_allclose(times, np.sort(exact), rtol=1e-7)


def test_partial_densities_of_states_of_a_clean_chain_are_the_transit_time():
    """A clean chain of n sites: t = exp(i k (n + 1)), so nu[1, 0] = (n + 1) / (2 pi v)."""
    n = 5
    fsys = chain_with_leads(n, 0.0).finalized()
    for energy in (-1.2, 0.3, 1.5):
        velocity = np.sqrt(4 - energy**2)
        nu = capacitor.partial_densities_of_states(fsys, energy)
        expected = (n + 1) / (2 * np.pi * velocity)
        np.testing.assert_allclose(nu, [[0, expected], [expected, 0]], atol=1e-10)


def test_partial_densities_of_states_sum_to_the_total_and_are_reciprocal():
    syst = chain_with_leads(8, lambda site: 1.5 if site.tag[0] in (0, 7) else 0.1)
    fsys = syst.finalized(spin_degeneracy=2)
    nu = capacitor.partial_densities_of_states(fsys, 0.4)
    total = capacitor.density_of_states(fsys, 0.4)
    np.testing.assert_allclose(nu.sum(), total, rtol=1e-10)
    np.testing.assert_allclose(nu, nu.T, atol=1e-9)  # time-reversal symmetric system
    assert np.all(nu > 0)
    times = capacitor.delay_times(fsys, 0.4)
    np.testing.assert_allclose(2 * times.sum() / (2 * np.pi), total, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Charge-relaxation resistance and capacitance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("qpc_transmission", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_single_channel_charge_relaxation_resistance_is_h_over_2e2(qpc_transmission):
    """Büttiker-Thomas-Prêtre: R_q = h/2e^2 for one channel, at any QPC transmission."""
    energy, gate = 3.7, 0.05
    # Chain impurity: T = v^2 / (v^2 + V^2), v = 2 sin k, E - 4 = -2 cos k.
    velocity = np.sqrt(4 - (energy - 4) ** 2)
    height = velocity * np.sqrt((1 - qpc_transmission) / qpc_transmission)
    contact = meso.smatrix(barrier_between_two_leads(), energy, params={"barrier": height})
    np.testing.assert_allclose(contact.transmission(1, 0), qpc_transmission, rtol=1e-10)

    params = {"barrier": height, "gate": gate}
    response = capacitor.mesoscopic_capacitor(
        square_dot(), energy, geometric_charging_energy=0.5, params=params
    )
    assert response.delay_times.shape == (1,) and response.delay_times[0] > 0
    assert abs(response.charge_relaxation_resistance - 0.5) < 1e-6
    assert (
        abs(capacitor.charge_relaxation_resistance(square_dot(), energy, params=params) - 0.5)
        < 1e-6
    )
    spinful = capacitor.charge_relaxation_resistance(
        square_dot(spin_degeneracy=2), energy, params=params
    )
    assert abs(spinful - 0.25) < 1e-6

    # The chain cavity behind the same kind of contact, checked against its exact DOS.
    cavity = chain_cavity(15)
    chain_energy = energy - 4.0
    chain_height = velocity * np.sqrt((1 - qpc_transmission) / qpc_transmission)
    chain_params = {"barrier": chain_height, "gate": 0.1}
    chain_response = capacitor.mesoscopic_capacitor(
        cavity, chain_energy, geometric_charging_energy=0.0, params=chain_params
    )
    assert abs(chain_response.charge_relaxation_resistance - 0.5) < 1e-6
    exact = exact_cavity_dos(chain_energy, 15, chain_height, 0.1)
    np.testing.assert_allclose(chain_response.density_of_states, exact, rtol=1e-8)


def test_two_channels_give_the_btp_average():
    """R_q = (nu_a^2 + nu_b^2) / 2 (nu_a + nu_b)^2 from two independent cavities; two
    identical cavities (degenerate delay times) give exactly h / 4e^2."""
    length, energy = 12, 0.35
    one = {"barrier": 2.0, "gate": 0.1}
    other = {"barrier": 1.0, "gate": -0.15}
    nu_a = capacitor.density_of_states(chain_cavity(length), energy, params=one)
    nu_b = capacitor.density_of_states(chain_cavity(length), energy, params=other)
    params = {
        "barrier_a": one["barrier"],
        "gate_a": one["gate"],
        "barrier_b": other["barrier"],
        "gate_b": other["gate"],
    }
    fsys = two_channel_cavity(length)
    combined = capacitor.mesoscopic_capacitor(
        fsys, energy, geometric_charging_energy=0.0, params=params
    )
    np.testing.assert_allclose(combined.delay_times, 2 * np.pi * np.sort([nu_a, nu_b]), rtol=1e-8)
    expected = (nu_a**2 + nu_b**2) / (2 * (nu_a + nu_b) ** 2)
    np.testing.assert_allclose(combined.charge_relaxation_resistance, expected, rtol=1e-8)
    assert expected < 0.45

    twins = {**params, "barrier_b": one["barrier"], "gate_b": one["gate"]}
    response = capacitor.mesoscopic_capacitor(
        fsys, energy, geometric_charging_energy=0.0, params=twins
    )
    np.testing.assert_allclose(response.delay_times, 2 * np.pi * np.array([nu_a, nu_a]), rtol=1e-8)
    assert abs(response.charge_relaxation_resistance - 0.25) < 1e-9


def test_electrochemical_capacitance_and_admittance():
    fsys = chain_cavity(12)
    params = {"barrier": 1.5, "gate": 0.0}
    response = capacitor.mesoscopic_capacitor(
        fsys, 0.2, geometric_charging_energy=0.3, params=params
    )
    dos = capacitor.density_of_states(fsys, 0.2, params=params)
    np.testing.assert_allclose(response.density_of_states, dos, rtol=1e-12)
    # 1 / C_mu = 1 / C + 1 / (e^2 D) with e^2 / C = 0.3.
    np.testing.assert_allclose(1 / response.electrochemical_capacitance, 0.3 + 1 / dos)
    np.testing.assert_allclose(
        response.electrochemical_capacitance,
        analytic.electrochemical_capacitance(dos, geometric_charging_energy=0.3),
    )
    np.testing.assert_allclose(
        capacitor.electrochemical_capacitance(
            fsys, 0.2, geometric_charging_energy=0.0, params=params
        ),
        dos,
        rtol=1e-12,
    )
    # Low-frequency admittance: agrees with the RC circuit -i w C / (1 - i w R C) to O(w^3).
    c, r = response.electrochemical_capacitance, response.charge_relaxation_resistance
    for hbar_omega in (1e-3, 1e-4):
        x = 2 * np.pi * hbar_omega * c
        circuit = -1j * x / (1 - 1j * x * r)
        ours = response.admittance(hbar_omega)
        assert abs(ours - circuit) < 2 * (x**3) * r**2
        assert ours.real > 0 and ours.imag < 0  # dissipative, capacitive
    np.testing.assert_allclose(response.rc_time, 2 * np.pi * r * c)
    np.testing.assert_allclose(
        capacitor.low_frequency_admittance([0.0, 0.01], capacitance=2.0, resistance=0.5),
        [0, -1j * 2 * np.pi * 0.02 + (2 * np.pi * 0.02) ** 2 * 0.5],
    )


def test_density_of_states_oscillates_with_the_gate():
    """Nearly closed cavity: the DOS peaks each time a level crosses the Fermi energy.

    The 9 cavity sites alone have levels gate - 2 cos(n pi / 10); at E = 0 the gate window
    [-0.8, 0.8] holds three of them (gate = -0.618, 0, 0.618), shifted by the barrier's
    coupling by less than 0.1.
    """
    fsys = chain_cavity(10)
    gates = np.linspace(-0.8, 0.8, 41)
    dos = np.array(
        [capacitor.density_of_states(fsys, 0.0, params={"barrier": 3.0, "gate": g}) for g in gates]
    )
    peaks = gates[np.flatnonzero((dos[1:-1] > dos[:-2]) & (dos[1:-1] > dos[2:])) + 1]
    levels = 2 * np.cos(np.arange(4, 7) * np.pi / 10)
    assert peaks.size == 3
    np.testing.assert_allclose(np.sort(peaks), np.sort(levels), atol=0.1)
    assert dos.max() / dos.min() > 20


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_a_system_goes_through_one_batched_rgf_solve(monkeypatch):
    """The five finite-difference energies come from one meso.smatrices call (RGF), and the
    result is that of meso.smatrix energy by energy."""
    fsys = square_dot()
    params = {"gate": -0.35, "barrier": 1.2}
    energy = 2.9
    per_energy = capacitor.wigner_smith_matrix(
        lambda e: meso.smatrix(fsys, e, params=params), energy
    )
    calls = []
    original = batch.smatrices

    def spy(system, energies, **kwargs):
        stats: dict = {}
        calls.append((np.array(energies), kwargs.get("options"), stats))
        return original(system, energies, stats=stats, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("the single-energy smatrix must not be called")

    monkeypatch.setattr(batch, "smatrices", spy)
    monkeypatch.setattr(transport, "smatrix", forbidden)
    options = SolverOptions(solver="rgf")
    batched = capacitor.wigner_smith_matrix(fsys, energy, params=params, options=options)
    [(energies, passed, stats)] = calls
    h = 1e-4
    np.testing.assert_allclose(np.sort(energies), energy + np.array([-h, -h / 2, 0, h / 2, h]))
    assert passed is options
    assert stats["solver"] == "rgf" and stats["sparse_fallback_energies"] == 0
    scale = np.abs(per_energy).max()
    assert scale > 1.0  # a resonant dot: long delays
    np.testing.assert_allclose(batched, per_energy, rtol=0, atol=1e-10 * scale)
    response = capacitor.mesoscopic_capacitor(
        fsys, energy, geometric_charging_energy=0.5, params=params, options={"solver": "rgf"}
    )
    np.testing.assert_allclose(response.delay_times, np.linalg.eigvalsh(per_energy), rtol=1e-10)


def test_bad_input_gives_clear_errors():
    two_leads = chain_with_leads(3, 0.0).finalized()
    with pytest.raises(ValueError, match=r"exactly one lead.*got 2 leads"):
        capacitor.mesoscopic_capacitor(two_leads, 0.0, geometric_charging_energy=0.0)
    with pytest.raises(ValueError, match=r"exactly one lead.*got 2 leads"):
        capacitor.charge_relaxation_resistance(two_leads, 0.0)

    lat = meso.lattice.chain(norbs=1)
    closed = meso.Builder()
    closed[lat(0)] = 0.0
    with pytest.raises(ValueError, match="no leads"):
        capacitor.density_of_states(closed.finalized(), 0.0)

    fsys = chain_cavity(5)
    params = {"barrier": 1.0, "gate": 0.0}
    with pytest.raises(ValueError, match=r"geometric_charging_energy must be >= 0, got -1\.0"):
        capacitor.mesoscopic_capacitor(fsys, 0.0, geometric_charging_energy=-1.0, params=params)
    with pytest.raises(ValueError, match="step must be a positive"):
        capacitor.delay_times(fsys, 0.0, params=params, step=0.0)
    with pytest.raises(TypeError, match="step must be a positive real number"):
        capacitor.delay_times(fsys, 0.0, params=params, step="small")
    with pytest.raises(ValueError, match="energy must be finite"):
        capacitor.delay_times(fsys, float("nan"), params=params)
    with pytest.raises(ValueError, match=r"open channels.*band edge.*reduce step"):
        capacitor.delay_times(fsys, 2.0 - 1e-5, params=params)
    with pytest.warns(RuntimeWarning, match="does not resolve"):
        capacitor.delay_times(fsys, 0.3, params=params, step=0.5)
    with pytest.raises(TypeError, match=r"finalized System .* or a function of energy"):
        capacitor.delay_times("not a system", 0.0)
    with pytest.raises(TypeError, match="must return an SMatrix"):
        capacitor.delay_times(lambda e: np.eye(1), 0.0)
    with pytest.raises(TypeError, match="params applies to a finalized System only"):
        capacitor.delay_times(lambda e: meso.smatrix(fsys, e, params=params), 0.0, params={})
    with pytest.raises(TypeError, match="options applies to a finalized System only"):
        capacitor.delay_times(
            lambda e: meso.smatrix(fsys, e, params=params), 0.0, options=SolverOptions()
        )
    with pytest.raises(ValueError, match="solver must be one of"):
        capacitor.delay_times(fsys, 0.0, params=params, options={"solver": "lu"})
    with pytest.raises(ValueError, match="capacitance must be >= 0"):
        capacitor.low_frequency_admittance(0.1, capacitance=-1.0, resistance=0.5)
    partial = lambda e: meso.smatrix(two_leads, e, in_leads=[0])  # noqa: E731
    with pytest.raises(ValueError, match="needs the S-matrix of all leads"):
        capacitor.density_of_states(partial, 0.0)
