"""Transmissions of systems made of independent parts, solved part by part.

A spinful wire without spin-orbit coupling is two wires, one per spin; the transmission is
the sum over the parts. Every comparison is against the sparse solver on the whole system.
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.leads import LeadData
from mesoscopic.solvers import _parts, sparse
from mesoscopic.transport import lead_data
from reference.systems import finalized_with_wire_leads, make_spin_orbit_wire

TOLERANCE = 1e-10


def whole(fsys, energies, params):
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    leads = lead_data(fsys, params=params)
    return np.array(
        [sparse.scattering_matrix(ham, leads, e).transmission_matrix() for e in energies]
    )


@pytest.mark.parametrize("solver", ["auto", "rgf", "sparse"])
def test_a_wire_without_spin_orbit_coupling_is_two_wires(solver):
    fsys, params, energies = make_spin_orbit_wire(meso, width=5, length=7)
    free = dict(params, alpha=0.0)  # Zeeman only: spin is conserved
    stats: dict = {}
    t = batch.transmission(fsys, energies, params=free, solver=solver, stats=stats)
    assert stats["independent_parts"] == 2
    np.testing.assert_allclose(t, whole(fsys, energies, free), atol=TOLERANCE, rtol=0)
    # The Zeeman field splits the spins: the parts carry different numbers of channels.
    up, down = (
        batch.transmission(fsys, energies, 1, 0, params=dict(free, ez=ez)) for ez in (0.3, -0.3)
    )
    assert not np.allclose(up, batch.transmission(fsys, energies, 1, 0, params=free))
    np.testing.assert_allclose(up, down, atol=TOLERANCE)  # the two spins exchange roles
    # With spin-orbit coupling the spins mix: one problem.
    stats = {}
    mixed = batch.transmission(fsys, energies, params=params, solver=solver, stats=stats)
    assert "independent_parts" not in stats
    np.testing.assert_allclose(mixed, whole(fsys, energies, params), atol=TOLERANCE, rtol=0)


def test_parameter_batches_split_where_no_element_couples_the_parts():
    fsys, params, energies = make_spin_orbit_wire(meso, width=4, length=6)
    elements = [dict(params, alpha=0.0, ez=ez) for ez in (0.0, 0.2, 0.5)]
    stats: dict = {}
    t = batch.transmission(fsys, energies, 1, 0, params=elements, stats=stats)
    assert t.shape == (3, len(energies)) and stats["independent_parts"] == 2
    for k, p in enumerate(elements):
        np.testing.assert_allclose(t[k], whole(fsys, energies, p)[:, 1, 0], atol=TOLERANCE)
    # One element with spin-orbit coupling joins the parts for the whole batch.
    stats = {}
    joined = [*elements, dict(params, alpha=0.2)]
    t = batch.transmission(fsys, energies, 1, 0, params=joined, stats=stats)
    assert "independent_parts" not in stats
    np.testing.assert_allclose(t[-1], whole(fsys, energies, joined[-1])[:, 1, 0], atol=TOLERANCE)


def test_an_island_joined_to_no_lead_is_left_out():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(6) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    syst[lat(2, 6)] = 1.0  # a site far from the others: no hopping reaches it
    fsys = finalized_with_wire_leads(meso, syst, lat, 3)
    energies = [0.7, 1.9]
    stats: dict = {}
    t = batch.transmission(fsys, energies, stats=stats)
    assert stats["independent_parts"] == 1
    np.testing.assert_allclose(t, whole(fsys, energies, None), atol=TOLERANCE)
    # At the island's own energy the whole system is singular; without it, it is not.
    t_at_island = batch.transmission(fsys, [1.0], 1, 0)
    assert np.isfinite(t_at_island).all()


def chain_lead(n, interface):
    return LeadData(np.zeros((n, n)), -np.eye(n), np.asarray(interface), np.arange(n))


def test_problems_that_stay_whole():
    ham = np.diag([0.1, -0.2])  # two orbitals, not coupled
    two = [chain_lead(1, [0]), chain_lead(1, [1])]
    parts = _parts.independent_parts([ham], [two])
    assert parts is not None and len(parts) == 2
    # A lead orbital joined to no orbital of the scattering region (one that does not hop:
    # a flat band of the lead): its part would need the modes of the whole lead.
    dangling = LeadData(np.zeros((2, 2)), -np.diag([1.0, 0.0]), np.array([0]), np.array([0]))
    assert _parts.independent_parts([ham], [[dangling, chain_lead(1, [1])]]) is None
    # A conservation law, or a coupled system: whole.
    projected = LeadData(
        np.zeros((1, 1)), -np.eye(1), np.array([0]), np.array([0]), projectors=(np.eye(1),)
    )
    assert _parts.independent_parts([ham], [[projected, two[1]]]) is None
    coupled = ham + 0.3 * (np.eye(2, k=1) + np.eye(2, k=-1))
    assert _parts.independent_parts([coupled], [two]) is None
    # A part's leads keep their orbitals' order and interface.
    first, second = parts
    assert first.leads.tolist() == [0] and second.leads.tolist() == [1]
    (sub,) = second.lead_data(two)
    assert sub.interface_sys.tolist() == [0] and sub.interface_cell.tolist() == [0]
