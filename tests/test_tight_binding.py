"""Physics of finalized tight-binding systems, end to end through meso.smatrix."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import analytic, network
from model_systems import chain_with_leads, hall_bar, spin_barrier_wire, square_wire


def open_channels(energy, width):
    """Subbands of a hard-wall square-lattice strip (onsite 4, hopping -1) open at energy."""
    bottoms = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    return int(np.sum(np.abs(energy - bottoms - 2) < 2))


def test_clean_wire_transmits_every_open_channel():
    width = 8
    fsys = square_wire(width, 10).finalized()
    bottoms = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    edges = np.concatenate([bottoms, bottoms + 4])
    for energy in np.linspace(0.05, 7.95, 41):
        if np.min(np.abs(energy - edges)) < 1e-3:
            continue
        s = meso.smatrix(fsys, energy)
        n = open_channels(energy, width)
        assert s.num_propagating(0) == n
        assert abs(s.transmission(1, 0) - n) < 1e-12
        assert abs(s.transmission(0, 0)) < 1e-12


def test_chain_barrier_matches_closed_form():
    height, length = 0.7, 5

    def onsite(site, v):
        return v if 3 <= site.tag[0] < 3 + length else 0.0

    fsys = chain_with_leads(12, onsite).finalized()
    energies = np.linspace(-1.95, 1.95, 27)
    ours = [meso.smatrix(fsys, e, params={"v": height}).transmission(1, 0) for e in energies]
    exact = analytic.chain_barrier_transmission(energies, height, length, hopping=1.0)
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-12)


def test_disordered_wire_is_unitary_and_reciprocal():
    rng = np.random.default_rng(42)
    disorder = {}

    def onsite(site):
        return 4.0 + disorder.setdefault(site, rng.uniform(-1.5, 1.5))

    fsys = square_wire(12, 40, onsite=onsite).finalized()
    for energy in (0.4, 1.3, 2.2):
        s = meso.smatrix(fsys, energy)
        assert s.check_unitarity() < 1e-10
        assert abs(s.transmission(1, 0) - s.transmission(0, 1)) < 1e-10
        g = s.conductance_matrix()
        np.testing.assert_allclose(g.sum(axis=0), 0, atol=1e-10)
        assert 0 < s.transmission(1, 0) < s.num_propagating(0)


def disordered_hall_bar(width=14, length=36, arm=6):
    """Six-terminal Hall bar: 0 left, 1 right, 2/3 top (left/right), 4/5 bottom."""

    def onsite(site, w, seed):
        x, y = site.tag
        return 4.0 + w * (np.random.default_rng([seed, x + 99, y + 99]).random() - 0.5)

    return hall_bar(width, length, arm, onsite).finalized(magnetic_flux="phi")


@pytest.mark.parametrize(("energy", "n_edge", "tolerance"), [(0.9, 1, 1e-10), (1.7, 2, 1e-7)])
def test_quantum_hall_plateaus_in_a_hall_bar(energy, n_edge, tolerance):
    fsys = disordered_hall_bar(width=18, length=40, arm=10)
    params = {"phi": 0.08, "w": 0.5, "seed": 3}
    s = meso.smatrix(fsys, energy, params=params)
    assert [s.num_propagating(i) for i in range(6)] == [n_edge] * 6
    g = s.conductance_matrix()
    r_xy = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 4))
    r_xx = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 3))
    # Units h/e^2: the plateau is 1/n and the longitudinal resistance vanishes, up to
    # tunnelling between opposite edges, exponentially small in width / magnetic length.
    assert abs(abs(r_xy) - 1 / n_edge) < tolerance
    assert abs(r_xx) < 10 * tolerance
    # Reversing the field reverses the Hall voltage.
    s_minus = meso.smatrix(fsys, energy, params={**params, "phi": -0.08})
    r_minus = network.four_terminal_resistance(
        s_minus.conductance_matrix(), current=(0, 1), voltage=(2, 4)
    )
    assert abs(r_minus + r_xy) < 2 * tolerance


def test_hall_plateau_deviation_shrinks_with_width():
    deviations = []
    for width in (14, 18):
        fsys = disordered_hall_bar(width=width, length=40, arm=10)
        s = meso.smatrix(fsys, 1.7, params={"phi": 0.08, "w": 0.5, "seed": 3})
        r_xy = network.four_terminal_resistance(
            s.conductance_matrix(), current=(0, 1), voltage=(2, 4)
        )
        deviations.append(abs(abs(r_xy) - 0.5))
    assert deviations[1] < deviations[0] / 10


def test_onsager_casimir_reciprocity_in_field():
    fsys = disordered_hall_bar(width=8, length=20, arm=4)
    params = {"phi": 0.013, "w": 2.0, "seed": 1}
    for energy in (0.7, 1.4):
        plus = meso.smatrix(fsys, energy, params=params)
        minus = meso.smatrix(fsys, energy, params={**params, "phi": -0.013})
        check = network.check_onsager(
            plus.conductance_matrix(), minus.conductance_matrix(), atol=1e-10
        )
        assert check.ok, str(check)
        # Away from the reciprocal point the matrix is genuinely non-symmetric.
        t = plus.transmission_matrix()
        assert np.max(np.abs(t - t.T)) > 1e-3


def test_gauge_choice_does_not_change_transmission():
    """Translating the whole device changes every Peierls phase but no observable."""

    def shifted(dx, dy):
        lat = meso.lattice.square(norbs=1)
        syst = meso.Builder()
        syst[(lat(x + dx, y + dy) for x in range(10) for y in range(6))] = 4.0
        syst[(lat(x + dx, y + dy) for x in range(3, 6) for y in range(6, 8))] = 4.0
        syst[lat.neighbors()] = -1.0
        left = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        left[(lat(0, y + dy) for y in range(6))] = 4.0
        up = meso.Builder(meso.TranslationalSymmetry((0, 1)))
        up[(lat(x + dx, 0) for x in range(3, 6))] = 4.0
        for lead in (left, up, left.reversed()):
            lead[lat.neighbors()] = -1.0
            syst.attach_lead(lead)
        fsys = syst.finalized(magnetic_flux="phi")
        return meso.smatrix(fsys, 1.2, params={"phi": 0.07}).transmission_matrix()

    reference = shifted(0, 0)
    for dx, dy in [(5, -3), (-17, 11)]:
        np.testing.assert_allclose(shifted(dx, dy), reference, atol=1e-12)


GRAPHENE = meso.lattice.honeycomb(norbs=1)


def graphene_lead(symmetry, inside):
    lat = GRAPHENE
    lead = meso.Builder(meso.TranslationalSymmetry(symmetry))
    lead[lat.shape(inside, (0, 0))] = 0.0
    lead[lat.neighbors()] = -1.0
    return lead


def ribbon(lead, length_cells=4):
    """A clean ribbon: a few lead cells as the scattering region, with both leads."""
    lat = GRAPHENE
    syst = meso.Builder()
    sym = lead.symmetry
    for n in range(length_cells):
        for site in lead.sites():
            syst[sym.act(-n, site)] = 0.0
    syst[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def test_zigzag_ribbon_has_a_single_channel_around_zero_energy():
    lead = graphene_lead((-1, 0), lambda p: 0 <= p[1] < 5.0)  # 6 zigzag chains
    fsys = ribbon(lead)
    for energy in (0.1, 0.3, 0.5):
        s = meso.smatrix(fsys, energy)
        assert s.num_propagating(0) == 1
        assert abs(s.transmission(1, 0) - 1) < 1e-10


@pytest.mark.parametrize("dimer_lines", range(4, 12))
def test_armchair_metallic_width_rule(dimer_lines):
    lead = graphene_lead((0, np.sqrt(3)), lambda p: -0.01 <= p[0] < dimer_lines / 2 - 0.01)
    fsys = ribbon(lead, length_cells=2)
    s = meso.smatrix(fsys, 0.02)
    metallic = dimer_lines % 3 == 2
    assert s.num_propagating(0) == (1 if metallic else 0)
    assert abs(s.transmission(1, 0) - (1.0 if metallic else 0.0)) < 1e-10


def test_group_velocity_times_density_of_states_is_universal():
    """v * dN/dE per channel equals 1/(2 pi) (1/h with hbar = 1): the origin of G0."""
    fsys = square_wire(5, 3).finalized()
    lead = fsys.leads[0]
    energy = 1.7
    modes, _ = lead.modes(energy)
    bands = meso.physics.Bands(lead)
    for k, v in zip(modes.momenta, modes.velocities):
        energies, velocities = bands(k, derivative_order=1)
        band = np.argmin(np.abs(energies - energy))
        assert abs(velocities[band] - v) < 1e-8
        dos_per_mode = 1 / (2 * np.pi * abs(velocities[band]))
        assert abs(abs(v) * dos_per_mode - 1 / (2 * np.pi)) < 1e-12


def test_spin_degeneracy_doubles_conductance_only():
    syst = square_wire(4, 5)
    s1 = meso.smatrix(syst.finalized(), 1.0)
    s2 = meso.smatrix(syst.finalized(spin_degeneracy=2), 1.0)
    assert s1.transmission(1, 0) == pytest.approx(s2.transmission(1, 0), abs=1e-14)
    np.testing.assert_allclose(s2.conductance_matrix(), 2 * s1.conductance_matrix())


def test_scattering_state_currents_add_up_to_transmission():
    rng = np.random.default_rng(5)
    values = rng.uniform(-1, 1, size=(12, 5))
    fsys = square_wire(5, 12, onsite=lambda site: 4.0 + values[site.tag]).finalized()
    energy = 1.1
    psi = meso.wave_function(fsys, energy)(0)
    currents = meso.bond_currents(fsys, psi)
    i, j = fsys.hopping_indices
    x = fsys.pos[:, 0]
    cut = (x[i] == 7) & (x[j] == 6)
    transmitted = meso.smatrix(fsys, energy).transmission(1, 0)
    assert abs(currents[cut].sum() - transmitted) < 1e-10
    ldos = meso.ldos(fsys, energy)
    assert ldos.shape == (fsys.num_orbitals,) and np.all(ldos > 0)


def test_solver_errors_name_the_problem():
    fsys = square_wire(3, 4, onsite=lambda site, gate: 4 + gate).finalized()
    with pytest.raises(ValueError, match="missing parameter 'gate'"):
        meso.smatrix(fsys, 1.0)
    with pytest.raises(ValueError, match="energy must be finite"):
        meso.smatrix(fsys, np.nan, params={"gate": 0})
    with pytest.raises(ValueError, match="lead 2 does not exist"):
        meso.smatrix(fsys, 1.0, params={"gate": 0}).transmission(2, 0)
    with pytest.raises(TypeError, match="finalized system"):
        meso.smatrix(square_wire(3, 4), 1.0)


def test_energy_exactly_at_a_band_edge_is_finite():
    width = 4
    fsys = square_wire(width, 5).finalized()
    edge = 2 - 2 * np.cos(np.pi / (width + 1))
    s = meso.smatrix(fsys, edge)
    # The mode at the band edge has zero velocity and is not counted (as in Kwant).
    assert s.num_propagating(0) == 0
    assert np.all(np.isfinite(s.data))
    s_above = meso.smatrix(fsys, edge + 1e-6)
    assert s_above.num_propagating(0) == 1
    assert abs(s_above.transmission(1, 0) - 1) < 1e-8


def test_conservation_law_resolves_spin_blocks():
    """A wire with spin-dependent scattering but no spin flips: blocks by sigma_z."""
    fsys = spin_barrier_wire(4, 9, start=3, stop=6).finalized()
    s = meso.smatrix(fsys, 1.2)
    # Block 0 has the smallest eigenvalue of -sigma_z: spin up.
    up, down = s.transmission((1, 0), (0, 0)), s.transmission((1, 1), (0, 1))
    assert s.transmission((1, 1), (0, 0)) == 0 and s.transmission((1, 0), (0, 1)) == 0
    assert abs(up + down - s.transmission(1, 0)) < 1e-12
    assert up > down > 0  # the lower barrier (spin up) transmits more

    def spinless(height):
        syst = square_wire(4, 9, lambda site: 4 + (height if 3 <= site.tag[0] < 6 else 0))
        return meso.smatrix(syst.finalized(), 1.2).transmission(1, 0)

    assert abs(up - spinless(0.3)) < 1e-10
    assert abs(down - spinless(1.1)) < 1e-10
