"""Kwant behaviours found by Kwant's own test suite: disconnected sites, leads without
inter-cell hoppings, the site layout of a finalized lead, precalculated and self-energy-only
leads. Each test checks the behaviour against exact results or an independent method."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import mesoscopic as meso
from model_systems import square_wire

# ---- sites that are not connected to the rest ------------------------------------------


def _wire_with_islands(*, islands: bool):
    """A 3 x 4 wire (onsite 4, hopping -1); with `islands`, also a lone site at onsite 1
    and a disconnected dimer (onsites 1.5, hopping -1: levels 0.5 and 2.5) far away."""
    lat = meso.lattice.square(1.0, norbs=1)
    syst = square_wire(3, 4, 4.0, lat=lat)
    if islands:
        syst[lat(20, 20)] = 1.0
        syst[lat(30, 30)] = syst[lat(31, 30)] = 1.5
        syst[lat(30, 30), lat(31, 30)] = -1.0
    return lat, syst


def test_disconnected_sites_are_allowed_and_do_not_conduct():
    """Sites without a path to a lead (as Kwant allows) change no transmission, even at the
    energy of their own bound state (E = 1: the lone site; E = 0.5, 2.5: the dimer), where the
    whole scattering matrix E - H - Sigma is singular."""
    lat, syst = _wire_with_islands(islands=True)
    fsys = syst.finalized()
    _, clean = _wire_with_islands(islands=False)
    fclean = clean.finalized()
    for energy in (1.0, 0.5, 2.5):
        expected = meso.smatrix(fclean, energy).data
        np.testing.assert_allclose(meso.smatrix(fsys, energy).data, expected, atol=1e-10)
        for solver in ("sparse", "rgf"):
            t = meso.transmission(fsys, [energy], 1, 0, solver=solver)
            np.testing.assert_allclose(t, [meso.smatrix(fclean, energy).transmission(1, 0)])
    # Scattering states vanish on the islands (no source reaches them).
    psi = meso.wave_function(fsys, 1.0)
    for site in (lat(20, 20), lat(30, 30), lat(31, 30)):
        index = fsys.id_by_site[site]
        assert np.all(psi(0)[:, index] == 0) and np.all(psi(1)[:, index] == 0)
    ldos = meso.ldos(fsys, 1.0)
    assert ldos[fsys.id_by_site[lat(20, 20)]] == 0
    # The Green's function between the leads is that of the wire alone.
    np.testing.assert_allclose(
        meso.greens_function(fsys, 1.0).data, meso.greens_function(fclean, 1.0).data, atol=1e-10
    )


def test_padding_keeps_sites_outside_the_path_of_the_lead():
    """A lead given with padding sites (some not hopping to anything), as in Kwant: the
    finalized system lists the padding sites that are in it, sorted."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = 0.0
    lead = meso.Builder(meso.TranslationalSymmetry(lat.prim_vecs[0]))
    lead[lat(0)] = 0.0
    lead[lat(0), lat(1)] = -1.0
    padding = [lat(3), lat(0), lat(9)]
    syst.leads.append(meso.builder.BuilderLead(lead, [lat(0)], padding))
    fsys = syst.finalized()
    assert [fsys.sites[i] for i in fsys.lead_paddings[0]] == [lat(0), lat(3)]
    # The lone site 0 couples only to the lead: total reflection, |r| = 1.
    s = meso.smatrix(fsys, 0.3).data
    np.testing.assert_allclose(np.abs(s), [[1.0]])


# ---- orbitals of a site whose constant value contradicts its family's norbs -------------


def test_constant_onsite_value_gives_the_site_its_orbitals():
    """As Kwant's Hamiltonian: a 2 x 2 constant onsite on a norbs=1 family makes a
    2-orbital site (with a warning naming the overruled norbs); hoppings must then fit."""
    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[chain(0)] = np.array([[0, 1j], [-1j, 0]])
    syst[chain(1)] = np.array([[1]])
    syst[chain(1), chain(0)] = np.array([[1, 2j]])
    with pytest.warns(RuntimeWarning, match="declares norbs=1"):
        fsys = syst.finalized()
    assert fsys.norbs.tolist() == [2, 1]
    expected = np.array([[0, 1j, 1], [-1j, 0, -2j], [1, 2j, 1]])
    np.testing.assert_array_equal(fsys.hamiltonian_submatrix(), expected)
    np.testing.assert_array_equal(fsys.hamiltonian_submatrix(sparse=True).toarray(), expected)
    # A hopping whose shape fits neither site's orbitals is still refused.
    syst[chain(0), chain(1)] = np.array([[1, 2]])
    with pytest.warns(RuntimeWarning):
        bad = syst.finalized()
    with pytest.raises(ValueError, match="has shape"):
        bad.hamiltonian_submatrix()


def test_scalar_values_on_a_multi_orbital_lattice_are_one_orbital():
    """Scalars on a norbs=5 square lattice (Kwant's test systems do this): one orbital per
    site, so a clean 3-wide wire has the plateaus of the one-orbital wire: at E = -3
    (hopping -1, onsite 0) one channel is open, at E = 0.1 three are."""

    def wire(norbs):
        lat = meso.lattice.square(norbs=norbs)
        syst = meso.Builder()
        lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        syst[(lat(i, j) for i in range(3) for j in range(3))] = 0
        lead[(lat(0, j) for j in range(3))] = 0
        syst[lat.neighbors()] = -1
        lead[lat.neighbors()] = -1
        syst.attach_lead(lead)
        syst.attach_lead(lead.reversed())
        return syst

    with pytest.warns(RuntimeWarning, match="declares norbs=5"):
        fsys = wire(5).finalized()
    assert fsys.norbs.tolist() == [1] * 9
    for energy, channels in ((-3.0, 1), (0.1, 3)):
        assert meso.smatrix(fsys, energy).transmission(1, 0) == pytest.approx(channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wire(1).finalized()  # no warning where norbs and values agree


# ---- leads replaced on a finalized system; precalculated leads --------------------------


class _SelfEnergyOnly:
    """A lead in Kwant's form with only a self-energy (as Kwant's own tests write one)."""

    def __init__(self, lead, parameters=()):
        self.lead = lead
        self.parameters = frozenset(parameters)
        self.calls = []

    def selfenergy(self, energy, args=(), *, params=None):
        self.calls.append((args, params))
        return self.lead.selfenergy(energy)


def _two_lead_wire():
    lat = meso.lattice.square(1.0, norbs=1)
    return square_wire(2, 3, lambda site, v: 4.0 + v * site.tag[0], lat=lat)


def test_a_lead_of_a_finalized_system_can_be_replaced():
    """fsys.leads[k] = lead, as in Kwant: a self-energy-only lead gives the Green's
    function of the original lead (its self-energy is the same), the parameters follow
    the leads, and a copy of the system keeps its own leads."""
    fsys = _two_lead_wire().finalized()
    params = {"v": 0.3}
    reference = meso.smatrix(fsys, 1.2, params=params).transmission(1, 0)
    original = fsys.leads[1]
    kept = copy.copy(fsys)
    replacement = _SelfEnergyOnly(original, ["gamma"])
    fsys.leads[1] = replacement
    assert isinstance(fsys.leads[1], meso.system.SelfEnergyLead)
    assert not fsys.leads[1].has_modes and fsys.leads[1].has_selfenergy
    assert "gamma" in fsys.parameters and "gamma" not in kept.parameters
    assert kept.leads[1] is original
    gf = meso.greens_function(fsys, 1.2, params={"v": 0.3, "gamma": 0})
    assert gf.transmission(1, 0) == pytest.approx(reference, abs=1e-10)
    assert replacement.calls[-1] == ((), {"v": 0.3, "gamma": 0})
    # Back to a builder lead: the system is the original one again.
    fsys.leads[1] = original
    assert fsys.parameters == kept.parameters
    assert meso.smatrix(fsys, 1.2, params=params).transmission(1, 0) == pytest.approx(reference)


def test_replacing_a_lead_checks_the_new_lead():
    fsys = _two_lead_wire().finalized()
    narrow = square_wire(1, 3).finalized().leads[0]
    with pytest.raises(ValueError, match="does not fit its interface"):
        fsys.leads[0] = narrow
    lat = meso.lattice.square(1.0, norbs=1)
    elsewhere = meso.system.SelfEnergyLead(lambda e: -0.5j * np.eye(2), [lat(1, 0), lat(1, 1)])
    with pytest.raises(ValueError, match="interface sites"):
        fsys.leads[0] = elsewhere
    with pytest.raises(TypeError, match="must be a lead"):
        fsys.leads[0] = "lead"
    with pytest.raises(IndexError, match="lead 2 does not exist"):
        fsys.leads[2] = fsys.leads[0]
    with pytest.raises(AttributeError, match="immutable"):
        fsys.leads = ()


def test_precalculated_leads_hold_what_was_asked():
    """As Kwant's: what='modes' keeps no self-energy, what='selfenergy' no modes; the
    stored values are the lead's own, and another energy computes them again."""
    fsys = _two_lead_wire().finalized()
    params = {"v": 0.1}
    modes_only = fsys.precalculate(1.5, what="modes", params=params)
    sigma_only = fsys.precalculate(1.5, what="selfenergy", params=params)
    both = fsys.precalculate(1.5, what="all", params=params)
    assert [(lead.has_modes, lead.has_selfenergy) for lead in modes_only.leads] == [
        (True, False)
    ] * 2
    assert [(lead.has_modes, lead.has_selfenergy) for lead in sigma_only.leads] == [
        (False, True)
    ] * 2
    assert all(lead.has_modes and lead.has_selfenergy for lead in both.leads)
    with pytest.raises(ValueError, match="only its modes"):
        modes_only.leads[0].selfenergy(1.5)
    np.testing.assert_allclose(
        sigma_only.leads[0].selfenergy(1.5), fsys.leads[0].selfenergy(1.5, params=params)
    )
    np.testing.assert_allclose(
        both.leads[0].selfenergy(1.5), fsys.leads[0].selfenergy(1.5, params=params)
    )
    with pytest.warns(RuntimeWarning, match="computed again"):
        sigma = sigma_only.leads[0].selfenergy(2.5)
    np.testing.assert_allclose(sigma, fsys.leads[0].selfenergy(2.5, params=params))
    with pytest.raises(ValueError, match="known only by its self-energy"):
        sigma_only.precalculate(1.5, what="modes")


def test_lead_use_is_checked_as_kwant_does():
    """The rule the solvers apply (ValueError, and NotImplementedError as Kwant's ldos):
    modes are needed from every lead an S-matrix or a scattering state uses, the
    self-energy from every lead of a Green's function."""
    from mesoscopic.system import LeadWithoutModesError, _check_lead_use

    fsys = _two_lead_wire().finalized()
    fsys.leads[0] = _SelfEnergyOnly(fsys.leads[0])
    _check_lead_use(fsys, [1], "modes", "the scattering matrix")
    _check_lead_use(fsys, None, "selfenergy", "the Green's function")
    with pytest.raises(LeadWithoutModesError, match="lead 0 is known only by its self-energy"):
        _check_lead_use(fsys, None, "modes", "the scattering matrix")
    assert issubclass(LeadWithoutModesError, ValueError)
    assert issubclass(LeadWithoutModesError, NotImplementedError)
    modes_only = _two_lead_wire().finalized().precalculate(1.5, what="modes", params={"v": 0})
    with pytest.raises(ValueError, match="lead 0 holds only its modes"):
        _check_lead_use(modes_only, None, "selfenergy", "the Green's function")


def test_the_solvers_apply_the_lead_use_rule():
    """smatrix, greens_function, wave_function and ldos refuse a lead that lacks what they
    need (as Kwant's solvers), and give the reference numbers on the paths that are allowed."""
    fsys = square_wire(2, 3, 4.0).finalized()
    reference = meso.smatrix(fsys, 2.0)
    sigma_only = fsys.precalculate(2.0, what="selfenergy")
    with pytest.raises(ValueError, match="lead 0 is known only by its self-energy"):
        meso.smatrix(sigma_only, 2.0)
    with pytest.raises(NotImplementedError, match="known only by its self-energy"):
        meso.ldos(sigma_only, 2.0)
    gf = meso.greens_function(sigma_only, 2.0)
    assert gf.transmission(1, 0) == pytest.approx(reference.transmission(1, 0), abs=1e-10)
    modes_only = fsys.precalculate(2.0, what="modes")
    with pytest.raises(ValueError, match="lead 0 holds only its modes"):
        meso.greens_function(modes_only, 2.0)
    np.testing.assert_allclose(meso.smatrix(modes_only, 2.0).data, reference.data, atol=1e-12)
    fsys.leads[0] = _SelfEnergyOnly(fsys.leads[0])
    S11 = meso.smatrix(fsys, 2.0, in_leads=[1], out_leads=[1])
    np.testing.assert_allclose(S11.data, reference.submatrix(1, 1), atol=1e-12)
    psi = meso.wave_function(fsys, 2.0)
    with pytest.raises(ValueError, match="lead 0 is known only by its self-energy"):
        psi(0)
    assert psi(1).shape[1] == fsys.num_orbitals


# ---- a finalized lead's graph, as Kwant's ------------------------------------------------


def _ragged_lead():
    """A lead of period 2 along x, cell sites (0, y), (1, y) for y < 2, hoppings inside the
    cell and to both neighbouring cells given in both orders, each a distinct object."""
    lat = meso.lattice.square(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((2, 0)))
    lead[(lat(x, y) for x in range(2) for y in range(2))] = 0.5
    values = iter(complex(1, k) for k in range(10))
    lead[lat(0, 0), lat(0, 1)] = next(values)
    lead[lat(1, 1), lat(0, 1)] = next(values)
    lead[lat(1, 0), lat(2, 0)] = next(values)  # into the next cell
    lead[lat(-1, 1), lat(0, 1)] = next(values)  # from the previous cell
    lead[lat(1, 1), lat(3, 1)] = next(values)  # two-site jump into the next cell
    return lat, lead


def test_lead_graph_holds_each_hopping_once_with_its_value():
    """Nodes: the cell, then the copies in the previous cell of the sites that hop into
    the next cell (Kwant's numbering, that of InfiniteSystem.hamiltonian); every Builder
    hopping is one edge pair, its value on the direction the Builder holds it."""
    _, lead = _ragged_lead()
    flead = lead.finalized()
    sym = lead.symmetry
    n = flead.cell_size
    cell = list(flead.sites[:n])
    nodes = cell + [sym.act((-1,), cell[int(i)]) for i in flead.interface_sites]
    graph = flead.graph
    assert graph.num_nodes == len(nodes) == n + 2
    expected = set()
    for (a, b), value in lead.hopping_value_pairs():
        if sym.which(b)[0] == 1:  # shift back one cell: a becomes a copy
            a, b = sym.act((-1,), a), sym.to_fd(b)
        expected.add((a, b, id(value)))
    found, reverse = set(), 0
    for edge, (tail, head) in enumerate(graph):
        value = flead.hoppings[edge][0]
        if value is meso.system.Other:
            reverse += 1
        else:
            found.add((nodes[tail], nodes[head], id(value)))
    assert found == expected and reverse == len(expected) == graph.num_edges // 2
    for edge, (tail, head) in enumerate(graph):  # the values are the Hamiltonian's
        value = flead.hoppings[edge][0]
        if value is not meso.system.Other:
            assert flead.hamiltonian(tail, head) == value
    assert [pair[0] for pair in flead.onsites] == [0.5] * n
    assert all(flead.id_by_site[site] == i for i, site in enumerate(flead.sites))


def test_interface_order_and_builder_lead_interfaces_are_checked():
    """Kwant's InfiniteSystem(builder, interface_order) accepts only the lead's own
    (sorted) interface; a BuilderLead whose interface is not the lead's is refused."""
    lat, lead = _ragged_lead()
    flead = lead.finalized()
    interface = [lead.symmetry.act((-1,), flead.sites[int(i)]) for i in flead.interface_sites]
    with pytest.warns(DeprecationWarning):
        same = meso.system.InfiniteSystem(lead, interface)
    assert same.sites == flead.sites
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="sorted"):
        meso.system.InfiniteSystem(lead, interface[::-1])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="once"):
        meso.system.InfiniteSystem(lead, interface * 2)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(-2, 0) for y in range(2))] = 0
    syst[lat.neighbors()] = -1
    syst.leads.append(meso.builder.BuilderLead(lead, interface * 2))
    with pytest.raises(ValueError, match="interface of lead 0"):
        syst.finalized()
    syst.leads[-1] = meso.builder.BuilderLead(lead, interface)
    fsys = syst.finalized()
    assert [fsys.sites[i] for i in fsys.lead_interfaces[0]] == interface
