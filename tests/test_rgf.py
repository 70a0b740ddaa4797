"""Recursive Green's functions batched over energies: agreement, physics, batching, errors.

The RGF code is written against an array module; these tests run it with NumPy. The same
checks run on a GPU in test_gpu.py.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import mesoscopic as meso
from mesoscopic import analytic, batch, network
from mesoscopic.leads import LeadData
from mesoscopic.leads import _selfenergy_at_energy as selfenergy
from mesoscopic.solvers import _backend, rgf, sparse
from mesoscopic.solvers._slicing import slice_orbitals
from mesoscopic.transport import lead_data
from model_systems import (
    attach_wire_leads,
    barrier_chain,
    hall_bar,
    spin_barrier_wire,
    square_wire,
)
from reference.systems import SYSTEMS

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "reference" / "kwant_reference.json").read_text()
)
HAS_GPU_STACK = importlib.util.find_spec("cupy") is not None


# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------


def disordered_wire(width, length, strength, seed):
    values = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(length, width))

    def onsite(site):
        return 4.0 + strength * values[site.tag]

    return square_wire(width, length, onsite=onsite).finalized()


def disordered_hall_bar(width=10, length=24, arm=4):
    """Six terminals: 0 left, 1 right, 2/3 top, 4/5 bottom; field by ``magnetic_flux``."""
    values = np.random.default_rng(11).uniform(-0.5, 0.5, size=(length, width + 4))

    def onsite(site, w):
        x, y = site.tag
        return 4.0 + w * values[x, y + 2]

    return hall_bar(width, length, arm, onsite).finalized(magnetic_flux="phi")


def armchair_ribbon(dimer_lines=7, cells=3):
    lat = meso.lattice.honeycomb(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((0, np.sqrt(3))))
    lead[lat.shape(lambda p: -0.01 <= p[0] < dimer_lines / 2 - 0.01, (0, 0))] = 0.0
    lead[lat.neighbors()] = -1.0
    syst = meso.Builder()
    for n in range(cells):
        for site in lead.sites():
            syst[lead.symmetry.act(-n, site)] = lambda site, v: v * np.cos(site.pos[0])
    syst[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def rgf_only(function, fsys, energies, **options):
    """``batch.transmission`` or ``batch.smatrices`` by the recursion alone.

    A cross-check against the sparse solver proves nothing if the RGF handed its energies
    to that same solver (its fallback for singular slices): none may have been.
    """
    stats: dict = {}
    result = function(fsys, energies, solver="rgf", stats=stats, **options)
    assert stats["solver"] == "rgf"
    assert stats["sparse_fallback_energies"] == 0
    return result


def rgf_and_sparse(fsys, energies, params=None):
    """T from the RGF (transmission only and full S) and from the sparse solver."""
    t_rgf = rgf_only(batch.transmission, fsys, energies, params=params)
    s_rgf = rgf_only(batch.smatrices, fsys, energies, params=params)
    s_sparse = batch.smatrices(fsys, energies, params=params, solver="sparse")
    return t_rgf, s_rgf, s_sparse


def assert_same(fsys, energies, params=None, atol=1e-10):
    t_rgf, s_rgf, s_sparse = rgf_and_sparse(fsys, energies, params)
    np.testing.assert_allclose(t_rgf, s_sparse.transmission_matrix(), rtol=0, atol=atol)
    for a, b in zip(s_rgf, s_sparse):
        assert a.data.shape == b.data.shape
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=atol)
    assert s_rgf.check_unitarity().max() < 1e-10
    return t_rgf


# --------------------------------------------------------------------------------------------
# Agreement with the sparse solver and with Kwant
# --------------------------------------------------------------------------------------------


def test_clean_wire_transmits_its_open_channels():
    width = 6
    fsys = square_wire(width, 9).finalized()
    energies = np.array([0.3, 0.9, 1.7, 2.6, 3.3])
    bottoms = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    channels = [int(np.sum(np.abs(e - bottoms - 2) < 2)) for e in energies]
    t = assert_same(fsys, energies)
    np.testing.assert_allclose(t[:, 1, 0], channels, atol=1e-12)
    np.testing.assert_allclose(t[:, 0, 0], 0, atol=1e-12)


def test_disordered_wire_agrees_with_sparse_solver_and_is_reciprocal():
    fsys = disordered_wire(8, 25, strength=2.0, seed=3)
    t = assert_same(fsys, np.linspace(0.2, 2.4, 7))
    assert np.all(t[:, 1, 0] > 0)
    np.testing.assert_allclose(t[:, 1, 0], t[:, 0, 1], atol=1e-12)
    np.testing.assert_allclose(t.sum(axis=1), t.sum(axis=2), atol=1e-10)


def test_six_terminal_hall_bar_in_a_field():
    fsys = disordered_hall_bar()
    params = {"phi": 0.05, "w": 1.0}
    energies = [0.5, 0.9, 1.3]
    t = assert_same(fsys, energies, params)
    # Side leads sit in middle slices of the slicing.
    problem = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)
    )
    slices = problem.slicing.lead_slices
    assert sum(0 < s < problem.slicing.num_slices - 1 for s in slices) >= 2
    # Magnetic field: T is not symmetric, but rows and columns add up to open channels.
    assert np.max(np.abs(t - t.transpose(0, 2, 1))) > 1e-3
    np.testing.assert_allclose(t.sum(axis=1), t.sum(axis=2), atol=1e-10)
    # Onsager-Casimir: G(B) = G(-B)^T.
    t_minus = batch.transmission(fsys, energies, params={**params, "phi": -0.05}, solver="rgf")
    np.testing.assert_allclose(t, t_minus.transpose(0, 2, 1), atol=1e-10)


def test_quantum_hall_plateau_from_batched_transmission():
    fsys = disordered_hall_bar(width=14, length=32, arm=6)
    t = batch.transmission(fsys, [0.9], params={"phi": 0.08, "w": 0.3}, solver="rgf")[0]
    channels = np.diag(t) + t.sum(axis=0) - np.diag(t)
    g = np.diag(channels) - t
    r_xy = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 4))
    assert abs(abs(r_xy) - 1) < 1e-6


def test_graphene_armchair_ribbon():
    fsys = armchair_ribbon()
    assert_same(fsys, [0.1, 0.6, 1.2], params={"v": 0.2})


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_kwant_reference_systems(name):
    fsys, params, energies = SYSTEMS[name](meso)
    stored = REFERENCE["systems"][name]["results"]
    t = rgf_only(batch.transmission, fsys, energies, params=params)
    s = rgf_only(batch.smatrices, fsys, energies, params=params)
    s_sparse = batch.smatrices(fsys, energies, params=params, solver="sparse")
    for k, entry in enumerate(stored):
        np.testing.assert_allclose(t[k], entry["transmission"], rtol=0, atol=1e-8)
        assert [s[k].num_propagating(i) for i in range(len(fsys.leads))] == entry[
            "num_propagating"
        ]
        np.testing.assert_allclose(s[k].data, s_sparse[k].data, rtol=0, atol=1e-10)
    np.testing.assert_allclose(t, s_sparse.transmission_matrix(), rtol=0, atol=1e-10)
    assert s.check_unitarity().max() < 1e-10


def test_spin_blocks_are_kept_in_batched_smatrices():
    syst = spin_barrier_wire(3, 6, start=2, stop=4)
    result = batch.smatrices(syst.finalized(), [0.8, 1.4], solver="rgf")
    up, down = result.transmission((1, 0), (0, 0)), result.transmission((1, 1), (0, 1))
    np.testing.assert_allclose(up + down, result.transmission(1, 0), atol=1e-12)
    np.testing.assert_allclose(result.transmission((1, 1), (0, 0)), 0, atol=1e-14)
    assert np.all(up > down)


# --------------------------------------------------------------------------------------------
# Long systems: stable through deep tunnelling
# --------------------------------------------------------------------------------------------


def test_long_wire_with_a_tunnel_barrier_matches_the_closed_form():
    """20 x 2000 wire; a 330-column barrier makes T ~ 1e-250 (the decaying wave loses 250
    orders of magnitude); the transverse modes decouple into chains with the closed form."""
    width, length, height, start, barrier = 20, 2000, 1.2, 800, 330

    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.ArrayBuilder()
    syst.fill(
        lat,
        lambda pos: np.ones(len(pos), bool),
        ((0, 0), (length - 1, width - 1)),
        onsite=lambda s: (
            4.0 + height * ((s.tags[:, 0] >= start) & (s.tags[:, 0] < start + barrier))
        ),
    )
    syst.add_hoppings(lat.neighbors(), -1.0)
    attach_wire_leads(syst, lat, width)
    fsys = syst.finalized()
    energies = np.array([0.3, 0.4, 0.6])
    t = batch.transmission(fsys, energies, 1, 0, solver="rgf")
    transverse = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    exact = sum(
        analytic.chain_barrier_transmission(energies - 2 - e_m, height, barrier)
        for e_m in transverse
    )
    assert np.all(exact > 1e-300) and np.all(exact < 1e-200)
    np.testing.assert_allclose(t, exact, rtol=1e-8, atol=0)


def test_impenetrable_barrier_underflows_to_zero_cleanly():
    syst = barrier_chain(1e6, 200, margin=100)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        t = batch.transmission(syst.finalized(), [0.0, 1.0], solver="rgf")
    np.testing.assert_array_equal(t[:, 1, 0], 0.0)
    np.testing.assert_allclose(t[:, 0, 0], 1.0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Batching, chunking, processes
# --------------------------------------------------------------------------------------------


def test_batched_equals_energy_by_energy_in_any_order():
    fsys = disordered_wire(7, 15, strength=1.5, seed=8)
    energies = np.array([1.9, 0.3, 1.1, 0.7, 2.5])
    together = rgf_only(batch.transmission, fsys, energies)
    alone = np.array([batch.transmission(fsys, [e], solver="rgf")[0] for e in energies])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-13)
    chunked = batch.transmission(fsys, energies, solver="rgf", chunk_size=2)
    np.testing.assert_allclose(together, chunked, rtol=0, atol=1e-13)
    single = [meso.smatrix(fsys, e).transmission(1, 0) for e in energies]
    np.testing.assert_allclose(together[:, 1, 0], single, atol=1e-10)


def test_process_pool_gives_identical_results():
    fsys = disordered_wire(6, 12, strength=1.0, seed=2)
    energies = np.linspace(0.2, 2.0, 6)
    serial = rgf_only(batch.transmission, fsys, energies, chunk_size=3)
    pooled = rgf_only(batch.transmission, fsys, energies, chunk_size=3, workers=2)
    np.testing.assert_array_equal(serial, pooled)
    s_pooled = batch.smatrices(fsys, energies, solver="sparse", workers=2)
    np.testing.assert_allclose(s_pooled.transmission_matrix(), serial, atol=1e-10)


def test_smatrix_batch_is_a_sequence_with_vectorized_readouts():
    fsys = square_wire(3, 4, onsite=lambda site, v: 4.0 + v * (site.tag[0] == 1)).finalized()
    result = batch.smatrices(fsys, [0.5, 1.5, 2.5], params={"v": 0.7})
    assert len(result) == 3 and isinstance(result[1], meso.SMatrix)
    assert [s.energy for s in result] == [0.5, 1.5, 2.5]
    assert len(result[1:]) == 2 and result[1:].energies.tolist() == [1.5, 2.5]
    np.testing.assert_array_equal(result.num_propagating(0), [0, 1, 2])
    g = result.conductance_matrix()
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(
        result.transmission(1, 0), [s.transmission(1, 0) for s in result], atol=0
    )


def test_labelled_result_carries_energies_and_leads():
    fsys = square_wire(3, 4).finalized()
    labelled = batch.transmission(fsys, [1.0, 2.5], labelled=True)
    assert labelled.dims == ("energy", "to_lead", "from_lead")
    assert labelled.sel(energy=2.5, to_lead=1, from_lead=0).item() == pytest.approx(2.0)
    pair = batch.transmission(fsys, [1.0, 2.5], 1, 0, labelled=True)
    assert pair.dims == ("energy",)


def test_stats_count_the_work():
    fsys = square_wire(5, 10).finalized()
    stats: dict = {}
    h = fsys.hamiltonian_submatrix(sparse=True)
    # Not 1.0 or 2.0: those are subband edges, where the Green's function of a clean wire is
    # singular (the sparse solver takes them, see the subband-edge test below).
    rgf.transmission_matrices(h, lead_data(fsys), [1.1, 2.1], stats=stats)
    assert stats["sparse_fallback_energies"] == 0
    # Ten 5 x 5 inverses per energy at 8 n^3 flops each, plus the lead projections.
    assert stats["flops"] >= 2 * 10 * 8 * 5**3
    assert stats["num_slices"] == 10 and stats["max_slice"] == 5
    assert stats["closed_form_leads"] == (True, True)
    # A memory budget of 3.5 energies splits 10 energies into chunks of 3.
    problem = rgf.prepare(h, lead_data(fsys))
    limit = 3.5 * problem.memory_per_energy()
    chunked = problem.transmission(np.linspace(0.5, 1.5, 10), memory_limit=limit, stats=stats)
    assert stats["chunk_size"] == 3 and stats["num_chunks"] == 4
    whole = problem.transmission(np.linspace(0.5, 1.5, 10))
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-13)


# --------------------------------------------------------------------------------------------
# Lead self-energies for a batch of energies
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
    energies=st.lists(st.floats(-6, 6), min_size=1, max_size=4),
)
def test_closed_form_selfenergy_equals_eigenmode_method(n, seed, energies):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    onsite = rng.uniform(-2, 2, n)
    hopping = rng.uniform(0.3, 1.5, n) * np.exp(2j * np.pi * rng.random(n))
    h = basis @ np.diag(onsite) @ basis.conj().T
    h = (h + h.conj().T) / 2
    hop = basis @ np.diag(hopping) @ basis.conj().T
    # Stay away from band edges, where the mode count is decided by a tolerance.
    edges = np.concatenate([onsite - 2 * abs(hopping), onsite + 2 * abs(hopping)])
    energies = [e for e in energies if np.min(np.abs(e - edges)) > 1e-6]
    if not energies:
        return
    assert rgf.closed_form_lead(h, hop) is not None
    fast = rgf.lead_selfenergies(h, hop, energies, method="closed_form")
    exact = np.array([selfenergy(h, hop, e) for e in energies])
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-10)


@pytest.mark.parametrize("offset", [0.0, 1e-12, -1e-12, 1e-9, -1e-9])
def test_closed_form_leads_agree_with_the_sparse_solver_at_subband_edges(offset):
    # A disordered square wire: its leads are independent chains, solved in closed form by
    # the RGF. At a subband edge sqrt(z - 2 tau) turns the rounding of z into 1e-8 in the
    # self-energy and the channel count into a coin toss; T differed from the sparse solver
    # by up to 1e-5 within 1e-12 of an edge. Next to an edge the exact modes are used, with
    # the threshold convention of the mode solver (open strictly inside the band only).
    fsys = disordered_wire(5, 3, 1.0, seed=3)
    h_sys, leads = _inputs(fsys)
    assert rgf.prepare(h_sys, leads).closed_form[0] is not None
    subbands = np.linalg.eigvalsh(leads[0].h_cell)
    energies = np.concatenate([subbands - 2, subbands + 2]) + offset
    stats: dict = {}
    t_rgf = rgf.transmission_matrices(h_sys, leads, energies, stats=stats)
    assert stats["sparse_fallback_energies"] == 0  # disorder: no singular slice at the edges
    for energy, t in zip(energies, t_rgf):
        s = sparse.scattering_matrix(h_sys, leads, energy)
        np.testing.assert_allclose(t, s.transmission_matrix(), rtol=0, atol=1e-10)
        assert s.check_unitarity() < 1e-10
    sigma = rgf.lead_selfenergies(leads[0].h_cell, leads[0].hop, energies)
    exact = [selfenergy(leads[0].h_cell, leads[0].hop, e) for e in energies]
    np.testing.assert_allclose(sigma, exact, rtol=0, atol=1e-12)


def test_clean_wire_exactly_at_a_subband_edge_is_solved_by_the_sparse_solver():
    # With the band-edge solution among the decaying ones, the self-energy of the closed
    # channel is real and E - H - Sigma of a clean wire is singular at its subband edges
    # (the edge state is a solution of the whole wire): the RGF hands those energies over.
    fsys = square_wire(5, 10).finalized()
    stats: dict = {}
    t = batch.transmission(fsys, [1.0, 1.5, 2.0], 1, 0, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 2
    np.testing.assert_allclose(t, [1.0, 2.0, 2.0], rtol=0, atol=1e-12)


def test_closed_form_is_used_only_for_commuting_leads():
    h = 4 * np.eye(3) - (np.eye(3, k=1) + np.eye(3, k=-1))
    assert rgf.closed_form_lead(h, -np.eye(3)) is not None
    assert rgf.closed_form_lead(h, -np.diag([1.0, 1.2, 1.0])) is None  # does not commute
    assert rgf.closed_form_lead(h, -np.diag([1.0, 0.0, 0.0])) is None  # singular
    with pytest.raises(ValueError, match="closed form needs"):
        rgf.lead_selfenergies(h, -np.diag([1.0, 1.2, 1.0]), [1.0], method="closed_form")
    auto = rgf.lead_selfenergies(h, -np.diag([1.0, 1.2, 1.0]), [0.5, 1.5])
    exact = [selfenergy(h, -np.diag([1.0, 1.2, 1.0]), e) for e in (0.5, 1.5)]
    np.testing.assert_allclose(auto, exact, atol=1e-12)
    # Square-lattice leads qualify; leads in a field or with spin-orbit coupling do not.
    problem = rgf.prepare(*_inputs(square_wire(4, 3).finalized()))
    assert all(c is not None for c in problem.closed_form)
    fsys, params, _ = SYSTEMS["spin_orbit_wire"](meso)
    problem = rgf.prepare(*_inputs(fsys, params))
    assert all(c is None for c in problem.closed_form)


def _inputs(fsys, params=None):
    return fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)


# --------------------------------------------------------------------------------------------
# Slicing
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    width=st.integers(1, 6),
    length=st.integers(1, 8),
    holes=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), max_size=6),
    side_lead=st.booleans(),
)
def test_slicing_is_block_tridiagonal_with_each_interface_in_one_slice(
    width, length, holes, side_lead
):
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    sites = {(x, y) for x in range(length) for y in range(width)}
    # Holes anywhere except the columns the leads attach to.
    sites -= {(x, y) for x, y in holes if 0 < x < length - 1}
    for x, y in sites:
        syst[lat(x, y)] = 4.0
    syst[lat.neighbors()] = -1.0
    attach_wire_leads(syst, lat, width)
    if side_lead and all((x, width - 1) in sites for x in range(length)):
        top = meso.Builder(meso.TranslationalSymmetry((0, 1)))
        top[(lat(x, 0) for x in range(length))] = 4.0
        top[lat.neighbors()] = -1.0
        syst.attach_lead(top)
    fsys = syst.finalized()  # holes may cut off parts no lead reaches, as Kwant allows
    h = fsys.hamiltonian_submatrix(sparse=True)
    interfaces = [fsys.lead_interface_orbitals(k)[0] for k in range(len(fsys.leads))]
    slicing = slice_orbitals(h, interfaces)
    slice_of = np.full(h.shape[0], -1)
    for s, orbs in enumerate(slicing.slices):
        slice_of[orbs] = s
    # Exactly the orbitals no lead reaches are left out of the slices.
    _, label = sp.csgraph.connected_components(h != 0, directed=False)
    reached = np.isin(label, label[np.concatenate(interfaces)])
    np.testing.assert_array_equal(np.sort(slicing.dropped), np.flatnonzero(~reached))
    assert np.all(slice_of[reached] >= 0) and np.all(slice_of[~reached] < 0)
    coo = h.tocoo()
    keep = reached[coo.row]
    coo = sp.coo_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=h.shape)
    assert np.all(np.abs(slice_of[coo.row] - slice_of[coo.col]) <= 1)
    for k, orbs in enumerate(interfaces):
        assert set(slice_of[orbs]) == {slicing.lead_slices[k]}


def test_wire_slices_are_its_columns_and_the_leads_sit_at_the_ends():
    fsys = square_wire(5, 7).finalized()
    slicing = rgf.prepare(*_inputs(fsys)).slicing
    assert slicing.num_slices == 7 and slicing.max_size == 5
    assert sorted(slicing.lead_slices) == [0, 6]
    x = fsys.pos[:, 0]
    assert all(len(set(x[s])) == 1 for s in slicing.slices)


def test_auto_falls_back_to_sparse_for_a_system_that_slices_badly(monkeypatch):
    # A star: every leaf is two hops from lead 0, so one slice holds nearly everything.
    size = 30
    h = sp.lil_matrix((size + 1, size + 1), dtype=complex)
    h[0, 1:] = -0.3
    h[1:, 0] = -0.3
    leads = [LeadData([[0.0]], [[-1.0]], [k], [0]) for k in (1, 2)]
    problem = rgf.prepare(h.tocsr(), leads)
    assert problem.slicing.max_size > size / 2
    monkeypatch.setattr(batch, "AUTO_SMALL_SYSTEM", 10)
    assert batch._rgf_problem("auto", h.tocsr(), leads, "cpu", None) is None
    assert batch._rgf_problem("rgf", h.tocsr(), leads, "cpu", None) is not None
    stats: dict = {}
    np.testing.assert_allclose(
        problem.transmission([0.3, 1.1], stats=stats),
        [sparse.scattering_matrix(h, leads, e).transmission_matrix() for e in (0.3, 1.1)],
        atol=1e-12,
    )
    assert stats["sparse_fallback_energies"] == 0


def test_orbitals_coupled_to_no_lead_are_left_out():
    # Orbital 3 is isolated; it cannot change the scattering.
    h = np.zeros((4, 4), dtype=complex)
    h[0, 1] = h[1, 0] = h[1, 2] = h[2, 1] = -1.0
    h[3, 3] = 0.5
    leads = [LeadData([[0.0]], [[-1.0]], [0], [0]), LeadData([[0.0]], [[-1.0]], [2], [0])]
    problem = rgf.prepare(h, leads)
    assert problem.slicing.dropped.tolist() == [3]
    t = problem.transmission([0.2, 0.5])
    np.testing.assert_allclose(t[:, 1, 0], 1.0, atol=1e-12)


def test_a_single_lead_reflects_everything():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(4) for y in range(3))] = 4.3
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    fsys = syst.finalized()
    t = batch.transmission(fsys, [1.0, 2.5], solver="rgf")
    np.testing.assert_allclose(t[:, 0, 0], [1.0, 2.0], atol=1e-12)
    s = batch.smatrices(fsys, [1.0, 2.5], solver="rgf")
    assert s.check_unitarity().max() < 1e-12


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_bad_input_is_reported_clearly():
    fsys = square_wire(3, 4).finalized()
    with pytest.raises(ValueError, match="solver must be one of"):
        batch.transmission(fsys, [1.0], solver="mumps")
    with pytest.raises(ValueError, match="device must be one of"):
        batch.transmission(fsys, [1.0], device="tpu")
    with pytest.raises(ValueError, match="energies must be finite, got nan at index 1"):
        batch.transmission(fsys, [1.0, np.nan])
    with pytest.raises(ValueError, match="energies is empty"):
        batch.transmission(fsys, [])
    with pytest.raises(TypeError, match="energies must be real"):
        batch.smatrices(fsys, [1.0 + 0.5j])
    with pytest.raises(ValueError, match="energies must be a 1-D array"):
        batch.transmission(fsys, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="give both to_lead and from_lead"):
        batch.transmission(fsys, [1.0], 1)
    with pytest.raises(ValueError, match="lead 2 does not exist"):
        batch.transmission(fsys, [1.0], 2, 0)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        batch.transmission(fsys, [1.0], workers=0)
    with pytest.raises(ValueError, match="runs on the CPU only"):
        batch.transmission(fsys, [1.0], solver="sparse", device="gpu")
    with pytest.raises(TypeError, match="finalized system"):
        batch.transmission(object(), [1.0])
    with pytest.raises(MemoryError, match=r"one energy needs about .* MiB"):
        batch.transmission(fsys, [1.0], solver="rgf", memory_limit=1000)


@pytest.mark.skipif(HAS_GPU_STACK, reason="CuPy is installed; see test_gpu.py")
def test_gpu_without_cupy_is_a_clear_error():
    fsys = square_wire(3, 4).finalized()
    with pytest.raises(RuntimeError, match=r"device='gpu' needs CuPy and a CUDA GPU"):
        batch.transmission(fsys, [1.0], device="gpu")
    with pytest.raises(RuntimeError, match=r"pip install 'mesoscopic\[gpu\]'"):
        _backend.array_module("gpu")


def test_energy_with_a_singular_slice_is_solved_exactly():
    # At the charge-neutrality point of a bearded graphene ribbon (E equal to the region's
    # potential) the part of the flake left of some slice binds a zero mode: that slice's
    # partial Green's function has a pole although the whole system has none. Such
    # energies go to the sparse solver; the others stay in the batch.
    fsys = meso.models.graphene_ribbon(4, 6.0, edge="bearded")
    params = {"potential": 0.1}
    problem = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)
    )
    blocks = rgf._DeviceBlocks(np, problem._blocks)
    with pytest.raises(rgf._SingularSlice):
        rgf._recursion(problem, np.array([0.1]), False, np, blocks)
    energies = np.array([0.3, 0.1, 0.05, 0.1])
    reference = [meso.smatrix(fsys, e, params=params) for e in energies]
    stats: dict = {}
    t = batch.transmission(fsys, energies, params=params, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 2  # both copies of E = 0.1, and only they
    np.testing.assert_allclose(t, [s.transmission_matrix() for s in reference], rtol=0, atol=1e-10)
    s_rgf = batch.smatrices(fsys, energies, params=params, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 2
    for s, ref in zip(s_rgf, reference):
        np.testing.assert_allclose(s.data, ref.data, rtol=0, atol=1e-10)
        assert s.check_unitarity() < 1e-10


def test_bound_state_of_the_whole_system_goes_to_the_sparse_solver_and_drops_out():
    # Two orbitals at 0.25 hanging off the middle of a chain with equal hoppings: their
    # antisymmetric combination decouples, a bound state of the whole system at E = 0.25
    # (in the continuum: no channel sees it). The recursion meets a singular slice there;
    # the sparse solver leaves the bound state out, so T is its limit from either side.
    h = np.zeros((5, 5))
    h[[0, 1], [1, 2]] = h[[1, 2], [0, 1]] = -1.0
    h[3, 3] = h[4, 4] = 0.25
    h[1, 3] = h[3, 1] = h[1, 4] = h[4, 1] = -0.5
    left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    right = LeadData([[0.0]], [[-1.0]], interface_sys=[2], interface_cell=[0])
    stats: dict = {}
    around = [0.25 - 1e-6, 0.25, 0.25 + 1e-6]
    t = rgf.transmission_matrices(h, [left, right], around, stats=stats)
    assert stats["sparse_fallback_energies"] == 1
    np.testing.assert_allclose(t[1], (t[0] + t[2]) / 2, atol=1e-10)
    s = sparse.scattering_matrix(h, [left, right], 0.25)
    np.testing.assert_allclose(s.data.conj().T @ s.data, np.eye(2), atol=1e-13)
    stats = {}
    t = rgf.transmission_matrices(h, [left, right], [0.1, 0.3], stats=stats)
    assert stats["sparse_fallback_energies"] == 0
    for k, energy in enumerate([0.1, 0.3]):
        exact = sparse.scattering_matrix(h, [left, right], energy).transmission_matrix()
        np.testing.assert_allclose(t[k], exact, atol=1e-12)


def test_nearly_singular_slice_is_detected_by_its_condition_number():
    # A clean metallic armchair ribbon (width 8) transmits its one channel perfectly at
    # E = 0. There a partial system left of a slice has a zero mode, but rounding leaves
    # no zero pivot: the inverse would be finite and T wrong by ~1. The slice's 1-norm
    # condition number (1e23 here) sends the energy to the sparse solver.
    fsys = meso.models.graphene_ribbon(8, 10.0, edge="armchair")
    params = {"potential": 0.0}
    problem = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)
    )
    with pytest.raises(rgf._SingularSlice):
        rgf._recursion(problem, np.array([0.0]), False, np, rgf._DeviceBlocks(np, problem._blocks))
    stats: dict = {}
    t = batch.transmission(fsys, [0.0, 0.1], 1, 0, params=params, solver="rgf", stats=stats)
    np.testing.assert_allclose(t, [1.0, 1.0], atol=1e-12)
    assert stats["sparse_fallback_energies"] == 1


def test_device_inverse_checks_conditioning_like_the_cpu_one(monkeypatch):
    # The GPU path's batched inverse, run here with NumPy standing in for CuPy.
    fsys = meso.models.graphene_ribbon(8, 10.0, edge="armchair")
    params = {"potential": 0.0}
    expected = batch.transmission(fsys, [0.0, 0.1, 0.3], params=params, solver="sparse")
    monkeypatch.setattr(rgf, "_cpu_inverse", rgf._device_inverse(np))
    stats: dict = {}
    t = batch.transmission(fsys, [0.0, 0.1, 0.3], params=params, solver="rgf", stats=stats)
    np.testing.assert_allclose(t, expected, atol=1e-12)
    assert stats["sparse_fallback_energies"] == 1  # E = 0 only


def test_hard_wall_sites_stay_in_the_recursion_and_singular_energies_leave_together():
    # Orbitals pushed out by a huge potential (a hard wall of 1e10) make slice matrices with
    # entries 1e10 apart, which is no reason to leave the recursion: the conditioning test
    # equilibrates the rows.
    lat = meso.lattice.square(1.0, norbs=1)
    syst = square_wire(
        4, 30, lambda site: 1e10 if 10 <= site.tag[0] < 20 and site.tag[1] == 0 else 4.0, lat=lat
    )
    fsys = syst.finalized()
    energies = np.linspace(0.2, 1.8, 40)
    stats = {}
    problem = rgf.prepare(fsys.hamiltonian_submatrix(sparse=True), lead_data(fsys))
    t = problem.transmission(energies, stats=stats)
    assert stats["flops"] > 0
    assert stats["sparse_fallback_energies"] == 0
    expected = [meso.smatrix(fsys, e).transmission_matrix() for e in energies[::8]]
    np.testing.assert_allclose(t[::8], expected, atol=1e-10)
    # Many energies at a singular slice in one chunk go to the sparse solver together.
    ribbon = meso.models.graphene_ribbon(8, 10.0, edge="armchair")
    many = np.tile([0.0, 0.1], 300)
    t = batch.transmission(
        ribbon, many, 1, 0, params={"potential": 0.0}, chunk_size=600, stats=stats
    )
    np.testing.assert_allclose(t, 1.0, atol=1e-12)
    assert stats["solver"] == "rgf" and stats["sparse_fallback_energies"] == 300
