"""Lattices, the Builder, ArrayBuilder and finalized systems."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import lattice
from model_systems import square_wire


def wire(width=4, length=6, onsite=4.0):
    """The lattice and a `width` x `length` wire built on it, with leads on both ends."""
    lat = lattice.square(1.0, norbs=1)
    return lat, square_wire(width, length, onsite, lat=lat)


# ---- lattices ------------------------------------------------------------------------


def test_honeycomb_geometry_matches_convention():
    lat = lattice.honeycomb(2.0)
    _, b = lat.sublattices
    np.testing.assert_allclose(lat.prim_vecs, [[2, 0], [1, np.sqrt(3)]])
    np.testing.assert_allclose(b(0, 0).pos, [0, 2 / np.sqrt(3)])
    for kind in lat.neighbors():
        d = kind.family_a(*kind.delta).pos - kind.family_b(0, 0).pos
        assert np.isclose(np.linalg.norm(d), 2 / np.sqrt(3))
    second = lat.neighbors(2)
    assert len(second) == 6
    for kind in second:
        assert kind.family_a is kind.family_b
        d = kind.family_a(*kind.delta).pos - kind.family_b(0, 0).pos
        assert np.isclose(np.linalg.norm(d), 2.0)


@pytest.mark.parametrize(
    ("make", "n", "count", "distance"),
    [
        (lattice.square, 1, 2, 1.0),
        (lattice.square, 2, 2, np.sqrt(2)),
        (lattice.square, 3, 2, 2.0),
        (lattice.cubic, 1, 3, 1.0),
        (lattice.triangular, 1, 3, 1.0),
        (lattice.chain, 1, 1, 1.0),
        (lattice.kagome, 1, 6, 0.5),
    ],
)
def test_neighbor_shells(make, n, count, distance):
    lat = make()
    kinds = lat.neighbors(n)
    assert len(kinds) == count
    for kind in kinds:
        tag0 = (0,) * len(kind.delta)
        d = kind.family_a(*kind.delta).pos - kind.family_b(*tag0).pos
        assert np.isclose(np.linalg.norm(d), distance)


def test_shape_flood_fill_counts_disc_sites():
    lat = lattice.square()
    disc = lat.shape(lambda p: p @ p <= 10.0, (0, 0))
    sites = list(disc())
    expected = sum(1 for x in range(-4, 5) for y in range(-4, 5) if x * x + y * y <= 10)
    assert len(sites) == expected == len(set(sites))


def test_bad_lattice_input():
    with pytest.raises(ValueError, match="linearly independent"):
        lattice.general([[1, 0], [2, 0]])
    with pytest.raises(ValueError, match="norbs must be a positive integer"):
        lattice.square(norbs=0)
    with pytest.raises(ValueError, match="takes 2 integer coordinates"):
        lattice.square()(1, 2, 3)
    with pytest.raises(ValueError, match="must be integers"):
        lattice.square()(1.5, 2)


# ---- Builder semantics -----------------------------------------------------------------


def test_hopping_sets_hermitian_conjugate():
    lat = lattice.chain()
    syst = meso.Builder()
    syst[lat(0)] = 0
    syst[lat(1)] = 0
    syst[lat(0), lat(1)] = 1 + 2j
    assert syst[lat(1), lat(0)] == 1 - 2j
    ham = syst.finalized().hamiltonian_submatrix()
    assert ham[0, 1] == 1 + 2j and ham[1, 0] == 1 - 2j
    syst[lat(1), lat(0)] = 3.0  # overwrites the same bond
    assert len(list(syst.hoppings())) == 1
    assert syst[lat(0), lat(1)] == 3.0


def test_matrix_hopping_conjugate_transpose():
    lat = lattice.chain(norbs=2)
    syst = meso.Builder()
    syst[lat(0)] = np.eye(2)
    syst[lat(1)] = np.eye(2)
    t = np.array([[1, 2j], [3, 4]])
    syst[lat(1), lat(0)] = t
    np.testing.assert_array_equal(syst[lat(0), lat(1)], t.conj().T)
    ham = syst.finalized().hamiltonian_submatrix()
    np.testing.assert_array_equal(ham[2:4, 0:2], t)
    np.testing.assert_allclose(ham, ham.conj().T)


def test_delete_site_removes_its_hoppings():
    lat = lattice.square()
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(3))] = 0
    syst[lat.neighbors()] = -1
    assert len(list(syst.hoppings())) == 12
    del syst[lat(1, 1)]
    assert lat(1, 1) not in syst
    assert len(list(syst.hoppings())) == 8
    assert syst.degree(lat(0, 1)) == 2


def test_hopping_kind_lists_and_sets():
    lat = lattice.square()
    syst = meso.Builder()
    syst[(lat(x, 0) for x in range(5))] = 0
    kind = meso.HoppingKind((1, 0), lat)
    assert len(list(kind(syst))) == 4
    syst[kind] = -2
    assert syst[lat(3, 0), lat(2, 0)] == -2


def test_value_functions_receive_sites_and_named_params():
    lat = lattice.chain()
    syst = meso.Builder()
    syst[(lat(i) for i in range(3))] = lambda site, v0, slope: v0 + slope * site.pos[0]
    syst[lat.neighbors()] = lambda a, b, t: -t
    fsys = syst.finalized()
    assert fsys.parameters == {"v0", "slope", "t"}
    with pytest.warns(meso.UnusedParameterWarning, match="'extra'"):
        ham = fsys.hamiltonian_submatrix(params={"v0": 1.0, "slope": 0.5, "t": 2.0, "extra": 9})
    np.testing.assert_allclose(np.diag(ham).real, [1.0, 1.5, 2.0])
    assert ham[1, 0] == -2.0
    with pytest.raises(ValueError, match="missing parameter 'slope'"):
        fsys.hamiltonian_submatrix(params={"v0": 1.0, "t": 1.0})


def test_vectorized_builder_matches_plain_builder():
    def onsite(site, v):
        return 4 + v * np.cos(site.pos[..., 0])

    def hop(a, b, t):
        return -t * np.exp(0.1j * (a.pos[..., 1] - b.pos[..., 1]))

    hams = []
    for vectorize in (False, True):
        lat = lattice.square(norbs=1)
        syst = meso.Builder(vectorize=vectorize)
        syst[(lat(x, y) for x in range(5) for y in range(3))] = onsite
        syst[lat.neighbors()] = hop
        hams.append(syst.finalized().hamiltonian_submatrix(params={"v": 0.3, "t": 1.1}))
    np.testing.assert_allclose(hams[0], hams[1], atol=1e-14)


def test_array_builder_matches_builder():
    lat, syst = wire(width=5, length=7, onsite=lambda s, v: 4 + v * s.pos[0] ** 2)
    fsys = syst.finalized()
    arr = meso.ArrayBuilder()
    arr.fill(
        lat,
        lambda p: np.ones(len(p), bool),
        ((0, 0), (6, 4)),
        onsite=lambda s, v: 4 + v * s.pos[:, 0] ** 2,
    )
    arr.add_hoppings(lat.neighbors(), -1.0)
    for lead in syst.leads:
        arr.attach_lead(lead.builder)
    fsys2 = arr.finalized()
    order = [fsys2.sites.index(s) for s in fsys.sites]
    h1 = fsys.hamiltonian_submatrix(params={"v": 0.2})
    h2 = fsys2.hamiltonian_submatrix(params={"v": 0.2})[np.ix_(order, order)]
    np.testing.assert_allclose(h1, h2)
    for k in range(2):
        assert [fsys.sites[i] for i in fsys.lead_interfaces[k]] == [
            fsys2.sites[i] for i in fsys2.lead_interfaces[k]
        ]


# ---- leads ---------------------------------------------------------------------------


def test_lead_cell_and_inter_cell_hopping():
    _, syst = wire(width=3)
    lead = syst.finalized().leads[0]
    np.testing.assert_allclose(lead.cell_hamiltonian(), [[4, -1, 0], [-1, 4, -1], [0, -1, 4]])
    np.testing.assert_allclose(lead.hopping_away(), -np.eye(3))


def test_attach_lead_extends_ragged_region():
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    # A staircase edge: the lead (4 sites wide) meets columns of different heights.
    syst[(lat(x, y) for y in range(4) for x in range(0, 3 + y))] = 4
    syst[lat.neighbors()] = -1
    lead = meso.Builder(meso.TranslationalSymmetry((1, 0)))
    lead[(lat(0, y) for y in range(4))] = 4
    lead[lat.neighbors()] = -1
    n_before = len(list(syst.sites()))
    added = syst.attach_lead(lead)
    assert len(added) == 6  # fills the missing triangle up to the column x = 5
    assert len(list(syst.sites())) == n_before + 6
    fsys = syst.finalized()
    assert sorted(fsys.sites[i].tag for i in fsys.lead_interfaces[0]) == [(5, y) for y in range(4)]


def test_lead_errors():
    lat = lattice.square()
    syst = meso.Builder()
    syst[lat(0, 0)] = 0
    with pytest.raises(ValueError, match="needs a Builder with a TranslationalSymmetry"):
        syst.attach_lead(meso.Builder())
    far = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    far[lat(0, 0)] = 0
    far[lat(0, 0), lat(2, 0)] = -1
    with pytest.raises(ValueError, match="spans 2 periods"):
        far.finalized()
    with pytest.raises(ValueError, match="not a lattice vector"):
        meso.TranslationalSymmetry((0.5, 0)).which(lat(0, 0))
    # As in Kwant, a lead without hoppings between its cells is a warning; it has no modes
    # and no self-energy, and a system it is attached to is refused (it couples to nothing).
    lonely = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lonely[lat(0, 0)] = 0
    with pytest.warns(RuntimeWarning, match="unit cells are disconnected"):
        flonely = lonely.finalized()
    assert flonely.interface_sites.size == 0
    assert flonely.modes(0.5)[1].nmodes == 0
    np.testing.assert_array_equal(flonely.selfenergy(0.5), 0)
    syst = meso.Builder()
    syst[lat(0, 0)] = 0
    syst.attach_lead(lonely)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="couples to nothing"):
        syst.finalized()


# ---- bad input -----------------------------------------------------------------------


def test_builder_errors_name_the_problem():
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    syst[lat(0, 0)] = 0
    with pytest.raises(KeyError, match=r"site Site\('', \(5, 5\)\) is not in the Builder"):
        syst[lat(0, 0), lat(5, 5)] = -1
    with pytest.raises(TypeError, match="Builder keys are"):
        syst["a"] = 1
    with pytest.raises(ValueError, match="connects a site to itself"):
        syst[lat(0, 0), lat(0, 0)] = 1


def test_value_errors_are_reported_when_the_hamiltonian_is_evaluated():
    # As in Kwant: assignment takes any number or matrix; a value that does not fit the
    # sites' norbs, or a non-Hermitian onsite, is an error of the evaluated Hamiltonian,
    # naming the site, its position and what was expected.
    chain2 = lattice.chain(norbs=2)
    syst = meso.Builder()
    syst[chain2(0)] = non_hermitian = [[0, 1], [2, 0]]
    assert syst[chain2(0)] is non_hermitian
    fsys = syst.finalized()
    with pytest.raises(ValueError, match=r"onsite value of Site\('', \(0,\)\).* not Hermitian"):
        fsys.hamiltonian_submatrix()
    # A constant that breaks Hermiticity is found for every site it is given to.
    square = lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(square(x, 0) for x in range(3))] = 1j
    syst[square.neighbors()] = -1
    message = r"Site\('', \(0, 0\)\) at position \(0\.0, 0\.0\) is not Hermitian"
    with pytest.raises(ValueError, match=message):
        syst.finalized().hamiltonian_submatrix()
    # A constant matrix on a one-orbital family makes a two-orbital site (as in Kwant, with
    # a warning); a hopping that fits neither site is refused, and replacing the matrix
    # before finalizing is no error.
    syst = meso.Builder()
    syst[square(0, 0)] = np.eye(2)
    syst[square(1, 0)] = 0
    syst[square(0, 0), square(1, 0)] = [[1, 2], [3, 4]]
    with pytest.warns(RuntimeWarning, match="declares norbs=1"):
        fsys = syst.finalized()
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(2, 1\)"):
        fsys.hamiltonian_submatrix()
    syst[square(0, 0)] = 0.5
    with pytest.raises(ValueError, match=r"hopping value of .*shape \(2, 2\), expected"):
        syst.finalized().hamiltonian_submatrix()
    syst[square(0, 0), square(1, 0)] = -1j
    np.testing.assert_allclose(syst.finalized().hamiltonian_submatrix(), [[0.5, -1j], [1j, 0]])
    # A lead's non-Hermitian cell is refused where its bands are computed.
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    chain = lattice.chain(norbs=1)
    lead[chain(0)] = 1j
    lead[chain(0), chain(1)] = np.exp(0.2j)
    with pytest.raises(ValueError, match="not Hermitian"):
        meso.physics.Bands(lead.finalized())


def test_builder_keeps_values_as_given():
    fam = lattice.chain(norbs=2)
    m = np.array([[1, 2], [3j, 4j]])
    syst = meso.Builder()
    syst[fam(0)] = syst[fam(1)] = m
    assert syst[fam(1)] is m
    syst[fam(0), fam(1)] = m
    assert syst[fam(0), fam(1)] is m
    np.testing.assert_array_equal(syst[fam(1), fam(0)], m.conj().T)


def test_non_hermitian_onsite_function_is_reported():
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = lambda site: 1j
    with pytest.raises(ValueError, match="not Hermitian"):
        syst.finalized().hamiltonian_submatrix()


def test_disconnected_site_is_kept():
    # As in Kwant; that it does not conduct is tested in test_kwant_parity_more.
    lat, syst = wire()
    syst[lat(20, 20)] = 0
    assert lat(20, 20) in syst.finalized().id_by_site


def test_spin_degeneracy_is_validated():
    _, syst = wire()
    assert syst.finalized(spin_degeneracy=2).spin_degeneracy == 2
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        syst.finalized(spin_degeneracy=3)


def test_slices_are_block_tridiagonal():
    _, syst = wire(width=4, length=9)
    fsys = syst.finalized()
    slices = fsys.slices()
    layer = np.empty(len(fsys.sites), int)
    for k, s in enumerate(slices):
        layer[s] = k
    i, j = fsys.hopping_indices
    assert np.all(np.abs(layer[i] - layer[j]) <= 1)
    assert set(fsys.lead_interfaces[0]) == set(slices[0])
    assert len(slices) == 9


def test_substituted_renames_parameters_of_value_functions():
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(2))] = lambda site, v, shift=0.0: v + shift
    syst[lat.neighbors()] = lambda a, b, t: -t
    renamed = syst.substituted(v="v_dot", t="t_dot")
    fsys = renamed.finalized()
    assert fsys.parameters == {"v_dot", "shift", "t_dot"}
    ham = fsys.hamiltonian_submatrix(params={"v_dot": 2.0, "t_dot": 0.5, "shift": 1.0})
    np.testing.assert_allclose(ham.real, [[3.0, -0.5], [-0.5, 3.0]])
    # The original is unchanged.
    assert syst.finalized().parameters == {"v", "shift", "t"}
    with pytest.raises(ValueError, match="valid identifier"):
        syst.substituted(v="not a name")


def test_key_function_of_the_builder_selects_hoppings_as_in_kwant():
    # Kwant's Aharonov-Bohm tutorial idiom: a function of the builder yields the hoppings
    # that cross a branch cut, and only those get the phase.
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[lat.shape(lambda pos: 3**2 < pos[0] ** 2 + pos[1] ** 2 < 7**2, (0, 4))] = 4.0
    syst[lat.neighbors()] = -1.0

    def across_cut(builder):
        for hop in meso.HoppingKind((1, 0), lat, lat)(builder):
            if hop[0].tag[1] < 0 and hop[0].tag[0] == 1:
                yield hop

    cut = list(across_cut(syst))
    assert sorted(hop[0].tag[1] for hop in cut) == [-6, -5, -4]  # the lower arm at x = 0, 1
    syst[across_cut] = lambda a, b, phi: -np.exp(1j * phi)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[lat.shape(lambda pos: -2 < pos[1] < 2, (0, 0))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    assert fsys.parameters == frozenset({"phi"})

    def t(phi):
        return meso.smatrix(fsys, 0.7, params={"phi": phi}).transmission(1, 0)

    assert t(0.4 + 2 * np.pi) == pytest.approx(t(0.4), abs=1e-10)
    assert t(-0.4) == pytest.approx(t(0.4), abs=1e-10)  # two-terminal Onsager
    assert abs(t(np.pi) - t(0.0)) > 1e-2  # the flux through the ring matters
    with pytest.raises(TypeError, match="functions of the builder"):
        syst[42] = 1.0


def square_template(lat):
    template = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    template[lat(0, 0)] = 4.0
    template[lat.neighbors()] = -1.0
    return template


def test_fill_from_a_template_builds_the_same_system_as_by_hand():
    lat = meso.lattice.square(1.0, norbs=1)
    filled = meso.Builder()
    added = filled.fill(
        square_template(lat), lambda s: 0 <= s.tag[0] < 12 and 0 <= s.tag[1] < 5, lat(3, 2)
    )
    assert len(added) == 60
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead.fill(square_template(lat), lambda s: 0 <= s.tag[1] < 5, (0.2, 0.1))
    assert sorted(s.tag for s in lead.sites()) == [(0, y) for y in range(5)]
    by_hand = meso.Builder()
    by_hand[(lat(x, y) for x in range(12) for y in range(5))] = 4.0
    by_hand[lat.neighbors()] = -1.0
    hand_lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    hand_lead[(lat(0, y) for y in range(5))] = 4.0
    hand_lead[lat.neighbors()] = -1.0
    systems = []
    for syst, lead_builder in ((filled, lead), (by_hand, hand_lead)):
        syst.attach_lead(lead_builder)
        syst.attach_lead(lead_builder.reversed())
        systems.append(syst.finalized())
    hamiltonians = []
    for f in systems:
        order = sorted(range(len(f.sites)), key=lambda i: f.sites[i].tag)
        h = f.hamiltonian_submatrix(sparse=False)
        hamiltonians.append(h[np.ix_(order, order)])
    np.testing.assert_array_equal(hamiltonians[0], hamiltonians[1])
    for energy in (0.4, 1.3):
        t = [meso.smatrix(f, energy).transmission(1, 0) for f in systems]
        assert t[0] == pytest.approx(t[1], abs=1e-12)
    # Filling again from a site already present adds nothing, with a warning (as Kwant).
    with pytest.warns(RuntimeWarning, match="already in this Builder"):
        assert filled.fill(square_template(lat), lambda s: True, lat(0, 0)) == []


def test_fill_errors_name_the_problem():
    lat = meso.lattice.square(1.0, norbs=1)
    template = square_template(lat)
    with pytest.warns(RuntimeWarning, match="outside the shape"):
        assert meso.Builder().fill(template, lambda s: s.tag[0] > 5, lat(0, 0)) == []
    with pytest.raises(RuntimeError, match="without closing the shape"):
        meso.Builder().fill(template, lambda s: True, lat(0, 0), max_sites=50.0)
    with pytest.raises(ValueError, match="max_sites must be positive"):
        meso.Builder().fill(template, lambda s: True, lat(0, 0), max_sites=0)
    with pytest.raises(TypeError, match="template must be a Builder"):
        meso.Builder().fill("square", lambda s: True, lat(0, 0))
    other = meso.lattice.square(1.0, name="other", norbs=1)
    with pytest.warns(RuntimeWarning, match="not in the template"):
        assert meso.Builder().fill(template, lambda s: True, other(0, 0)) == []
    assert meso.Builder().fill(template, lambda s: True, []) == []
    # A lead is filled in its fundamental domain, and fill reports those sites.
    lead = meso.Builder(meso.TranslationalSymmetry((-2, 0)))
    added = lead.fill(template, lambda s: 0 <= s.tag[1] < 3, lat(5, 1))
    assert sorted(s.tag for s in added) == sorted(s.tag for s in lead.sites())
    assert len(added) == 6
    with pytest.raises(ValueError, match="cannot be finalized"):
        template.finalized()
    syst = meso.Builder()
    syst[lat(0, 0)] = 4.0
    with pytest.raises(ValueError, match="one period"):
        syst.attach_lead(template)
    with pytest.raises(ValueError, match="linearly independent"):
        meso.TranslationalSymmetry((1, 0), (2, 0))


def test_system_hamiltonian_method_as_in_kwant():
    lat = meso.lattice.square(1.0, norbs=2)
    syst = meso.Builder()
    syst[(lat(x, 0) for x in range(3))] = lambda site, b: b * np.diag([1.0, -1.0])
    syst[lat.neighbors()] = -np.eye(2)
    fsys = syst.finalized()
    k = fsys.sites.index(lat(2, 0))
    np.testing.assert_array_equal(fsys.pos[k], [2.0, 0.0])
    np.testing.assert_allclose(fsys.hamiltonian(k, k, params={"b": 0.3}), np.diag([0.3, -0.3]))
    j = fsys.sites.index(lat(1, 0))
    np.testing.assert_allclose(fsys.hamiltonian(k, j, params={"b": 0.3}), -np.eye(2))
    np.testing.assert_allclose(fsys.hamiltonian(0, k, params={"b": 0.3}), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="out of range"):
        fsys.hamiltonian(0, 3, params={"b": 0.3})


def test_add_site_family_chooses_the_lead_cell_and_checks_its_vectors():
    lat = meso.lattice.honeycomb(norbs=1)
    sym = meso.TranslationalSymmetry(lat.vec((-1, 0)))
    sym.add_site_family(lat.a, other_vectors=[(-1, 2)])
    # Domains are cut along (-1, 2) instead of the unit vector (0, 1).
    assert sym.which(lat.a(-1, 2)) == (0,) and sym.which(lat.a(0, 1)) == (-1,)
    assert meso.TranslationalSymmetry(lat.vec((-1, 0))).which(lat.a(0, 1)) == (0,)
    assert sym.reversed().which(lat.a(1, -2)) == (0,)
    with pytest.raises(ValueError, match="do not form a basis"):
        meso.TranslationalSymmetry(lat.vec((-1, 0))).add_site_family(lat.b, [(2, 0)])
    with pytest.raises(ValueError, match="integer vector"):
        meso.TranslationalSymmetry(lat.vec((-1, 0))).add_site_family(lat.b, [(0.5, 1)])
    with pytest.raises(ValueError, match="already in use"):
        sym.add_site_family(lat.a)


def test_key_functions_expand_like_any_key():
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = 0.0
    syst[lambda builder: (lat(0, 0), lat(1, 0))] = -2.0  # one hopping, not two sites
    assert syst[lat(0, 0)] == 0.0 and syst[lat(0, 0), lat(1, 0)] == -2.0
    syst[lambda builder: lat(2, 1)] = 5.0  # one site
    assert syst[lat(2, 1)] == 5.0

    def bottom_row(builder):
        return [h for h in meso.HoppingKind((1, 0), lat)(builder) if h[0].tag[1] == 0]

    syst[[bottom_row]] = -1.0  # a key function inside a list
    assert syst[lat(1, 0), lat(2, 0)] == -1.0 and (lat(1, 1), lat(2, 1)) not in syst
    with pytest.raises(TypeError, match="a lattice is not a Builder key"):
        syst[lat] = 1.0


# ---- hopping assignment semantics (ArrayBuilder as Builder) --------------------------


def _array_and_plain(lat, width, length, assignments):
    """The same rectangle through ArrayBuilder and Builder, with hoppings set in order."""
    arr = meso.ArrayBuilder()
    arr.fill(lat, lambda p: np.ones(len(p), bool), ((0, 0), (length - 1, width - 1)), onsite=0.5)
    plain = meso.Builder()
    plain[(lat(x, y) for x in range(length) for y in range(width))] = 0.5
    for kinds, value in assignments:
        arr.add_hoppings(kinds, value)
        plain[kinds] = value
    f_arr, f_plain = arr.finalized(), plain.finalized()
    order = [f_arr.sites.index(s) for s in f_plain.sites]
    return (
        f_arr.hamiltonian_submatrix()[np.ix_(order, order)],
        f_plain.hamiltonian_submatrix(),
    )


def test_array_builder_add_hoppings_sets_like_the_builder():
    lat = lattice.square(norbs=1)
    x_bond = meso.builder.HoppingKind((1, 0), lat)
    x_bond_reversed = meso.builder.HoppingKind((-1, 0), lat)
    cases = [
        [(lat.neighbors(), -1.0), (lat.neighbors(), -1.0)],  # twice: still -1, not -2
        [(lat.neighbors(), -1.0), (x_bond, -2.0)],  # a later value replaces
        [(x_bond, -1.0), (x_bond_reversed, -3.0j)],  # the same bonds, other orientation
    ]
    for assignments in cases:
        h_arr, h_plain = _array_and_plain(lat, 3, 4, assignments)
        np.testing.assert_array_equal(h_arr, h_plain)
    h_arr, _ = _array_and_plain(lat, 3, 4, cases[0])
    assert h_arr[0, 1] in (-1.0, 0.0) and np.count_nonzero(h_arr == -2.0) == 0


def test_array_builder_refuses_a_hopping_from_a_site_to_itself():
    lat = lattice.square(norbs=1)
    arr = meso.ArrayBuilder()
    arr.fill(lat, lambda p: np.ones(len(p), bool), ((0, 0), (2, 2)), onsite=0.0)
    with pytest.raises(ValueError, match=r"joins every site to itself.*onsite"):
        arr.add_hoppings(meso.builder.HoppingKind((0, 0), lat), 1.0)
    plain = meso.Builder()
    plain[lat(0, 0)] = 0.0
    with pytest.raises(ValueError, match="to itself"):
        plain[meso.builder.HoppingKind((0, 0), lat)] = 1.0
    # Between two sublattices a zero delta is an ordinary hopping.
    graphene = lattice.honeycomb(norbs=1)
    arr = meso.ArrayBuilder()
    arr.fill(graphene, lambda p: np.hypot(*p.T) < 2.1, ((-3, -3), (3, 3)), onsite=0.0)
    assert arr.add_hoppings(meso.builder.HoppingKind((0, 0), graphene.a, graphene.b), 1.0) > 0


# ---- attaching leads to ragged regions -------------------------------------------------


def _open_channels(width, energy):
    """Open subbands of a clean square-lattice strip (onsite 0, hopping -1)."""
    transverse = -2 * np.cos(np.arange(1, width + 1) * np.pi / (width + 1))
    return int(np.sum(np.abs(energy - transverse) < 2))


@pytest.mark.parametrize("builder_kind", ["Builder", "ArrayBuilder"])
def test_attach_lead_completes_a_ragged_wire_end(builder_kind):
    """A clean wire whose ends are staircases: attaching the leads fills in the missing
    sites, which makes a perfect wire with integer transmission."""
    lat = lattice.square(norbs=1)
    width, length = 5, 9

    def ragged(x, y):  # staircases at both ends; the full rectangle is 0 <= x < length
        return y <= x < length - (width - 1 - y) // 2

    tags = [(x, y) for x in range(length) for y in range(width) if ragged(x, y)]
    if builder_kind == "Builder":
        syst = meso.Builder()
        syst[(lat(*t) for t in tags)] = 0.0
        syst[lat.neighbors()] = -1.0
    else:
        syst = meso.ArrayBuilder()
        syst.add_sites(lat, tags, 0.0)
        syst.add_hoppings(lat.neighbors(), -1.0)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 0.0
    lead[lat.neighbors()] = -1.0
    added = syst.attach_lead(lead) + syst.attach_lead(lead.reversed())
    assert len(tags) + len(added) == width * length
    assert set(tags) | {s.tag for s in added} == {
        (x, y) for x in range(length) for y in range(width)
    }
    fsys = syst.finalized()
    for energy in (-3.1, -1.7, 0.4, 1.3):
        t = meso.smatrix(fsys, energy).transmission(1, 0)
        assert t == pytest.approx(_open_channels(width, energy), abs=1e-9)


def _graphene_disc(graphene, builder_kind, lead_period):
    normal = np.array([lead_period[1], -lead_period[0]]) / np.linalg.norm(lead_period)
    lead = meso.Builder(meso.TranslationalSymmetry(lead_period))
    lead[graphene.shape(lambda p: abs(p @ normal) < 2.6, (0, 0))] = 0.3
    lead[graphene.neighbors()] = -1.0
    if builder_kind == "Builder":
        syst = meso.Builder()
        syst[graphene.shape(lambda p: p @ p < 30, (0, 0))] = 0.3
        syst[graphene.neighbors()] = -1.0
    else:
        syst = meso.ArrayBuilder()
        syst.fill(graphene, lambda p: np.sum(p * p, axis=1) < 30, ((-6, -6), (6, 6)), onsite=0.3)
        syst.add_hoppings(graphene.neighbors(), -1.0)
    added = syst.attach_lead(lead) + syst.attach_lead(lead.reversed())
    return syst.finalized(), added


@pytest.mark.parametrize("period", [(-1.0, 0.0), (-1.0, np.sqrt(3))])
def test_array_builder_extends_ragged_regions_as_the_builder_does(period):
    graphene = lattice.honeycomb(norbs=1)
    (f_plain, added_plain), (f_arr, added_arr) = (
        _graphene_disc(graphene, kind, period) for kind in ("Builder", "ArrayBuilder")
    )
    assert set(added_arr) == set(added_plain) and added_plain
    assert set(f_arr.sites) == set(f_plain.sites)
    for energy in (0.1, 1.3):
        s_plain, s_arr = meso.smatrix(f_plain, energy), meso.smatrix(f_arr, energy)
        assert s_arr.transmission(1, 0) == pytest.approx(s_plain.transmission(1, 0), abs=1e-10)
        # Unitarity: every incoming mode leaves through some lead.
        for lead in (0, 1):
            total = s_plain.transmission(0, lead) + s_plain.transmission(1, lead)
            assert total == pytest.approx(s_plain.num_propagating(lead), abs=1e-9)


def test_moving_a_lead_cell_into_the_region_keeps_the_transmission():
    """add_cells=1 moves one lead cell into the scattering region: the same Hamiltonian.

    The graphene disc's edge leaves a lead site of the interface cell joined to the
    region only through a site the region already has; it must not become a dangling
    site of the region (which would change the transmission).
    """
    graphene = lattice.honeycomb(norbs=1)
    transmissions = []
    for add_cells in (0, 1, 2):
        syst = meso.Builder()
        syst[graphene.shape(lambda p: p @ p < 30, (0, 0))] = 0.0
        syst[graphene.neighbors()] = -1.0
        lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        lead[graphene.shape(lambda p: abs(p[1]) <= 2.5, (0, 0))] = 0.0
        lead[graphene.neighbors()] = -1.0
        syst.attach_lead(lead, add_cells=add_cells)
        syst.attach_lead(lead.reversed())
        fsys = syst.finalized()
        transmissions.append([meso.smatrix(fsys, e).transmission(1, 0) for e in (-2.7, -1.9)])
    np.testing.assert_allclose(transmissions[1], transmissions[0], atol=1e-10)
    np.testing.assert_allclose(transmissions[2], transmissions[0], atol=1e-10)


def test_attach_lead_refuses_a_lead_the_region_does_not_cut():
    lat = lattice.square(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(6))] = 0.0  # wider than the region
    lead[lat.neighbors()] = -1.0
    for builder_kind in ("Builder", "ArrayBuilder"):
        if builder_kind == "Builder":
            syst = meso.Builder()
            syst[(lat(x, y) for x in range(4) for y in range(3))] = 0.0
            syst[lat.neighbors()] = -1.0
        else:
            syst = meso.ArrayBuilder()
            syst.fill(lat, lambda p: np.ones(len(p), bool), ((0, 0), (3, 2)), onsite=0.0)
            syst.add_hoppings(lat.neighbors(), -1.0)
        with pytest.raises(ValueError, match="does not cut it"):
            syst.attach_lead(lead)


# ---- leads attached on the same side ---------------------------------------------------


def test_warns_when_a_lead_lies_on_top_of_another():
    lat, syst = wire(width=3, length=5)
    lead = syst.leads[0].builder
    with pytest.warns(UserWarning, match=r"leads 0 and 2 .*same side.*reversed"):
        syst.attach_lead(lead)
    arr = meso.ArrayBuilder()
    arr.fill(lat, lambda p: np.ones(len(p), bool), ((0, 0), (4, 2)), onsite=4.0)
    arr.add_hoppings(lat.neighbors(), -1.0)
    arr.attach_lead(lead)
    with pytest.warns(UserWarning, match="leads 0 and 1"):
        arr.attach_lead(lead)


def test_no_warning_for_parallel_leads_at_different_places():
    """A Hall bar: two leads on top and two at the bottom point the same way."""
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(12) for y in range(4))] = 4.0
    syst[lat.neighbors()] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x0 in (2, 7):
            top = meso.Builder(meso.TranslationalSymmetry((0, 1)))
            top[(lat(x0 + dx, 0) for dx in range(3))] = 4.0
            top[lat.neighbors()] = -1.0
            syst.attach_lead(top)
            syst.attach_lead(top.reversed())
        side = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        side[(lat(0, y) for y in range(4))] = 4.0
        side[lat.neighbors()] = -1.0
        syst.attach_lead(side)
        syst.attach_lead(side.reversed())
    assert len(syst.leads) == 6
    fsys = syst.finalized()
    conductance = meso.smatrix(fsys, 1.0).conductance_matrix()
    np.testing.assert_allclose(conductance.sum(axis=0), 0, atol=1e-9)


def test_ragged_lead_attaches_at_the_outermost_region_cell_as_kwant():
    """A honeycomb disc whose edge leaves the lead's outermost cell incomplete.

    As in Kwant, the lead attaches to the region's outermost cell along it: attach_lead adds
    no site beyond it, the interface is the sites that hop into the lead, and moving one more
    lead cell into the region (add_cells=1) keeps the transmission.
    """
    lat = lattice.honeycomb(norbs=1)

    def disc_with_leads(add_cells):
        syst = meso.Builder()
        syst[lat.shape(lambda p: p[0] ** 2 + p[1] ** 2 < 4.5**2, (0, 0))] = 0.0
        syst[lat.neighbors()] = -1.0
        lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
        lead[lat.shape(lambda p: abs(p[1]) < 3.4, (0, 0))] = 0.0
        lead[lat.neighbors()] = -1.0
        outermost = []
        for each in (lead, lead.reversed()):
            sym = each.symmetry
            outermost.append(max(sym.which(s) for s in syst.sites()))
            added = syst.attach_lead(each, add_cells=add_cells)
            assert max(sym.which(s) for s in added) <= outermost[-1] + (add_cells,)
        return syst.finalized()

    fsys = disc_with_leads(0)
    for k, flead in enumerate(fsys.leads):
        hop = flead.hopping_away()
        coupled = np.flatnonzero(np.abs(hop).sum(axis=1))
        np.testing.assert_array_equal(coupled, flead.interface_sites)
        assert len(flead.interface_sites) < len(flead.sites)  # a partial interface
        sys_orbs, cell_orbs = fsys.lead_interface_orbitals(k)
        np.testing.assert_array_equal(cell_orbs, flead.interface_sites)
        assert len(sys_orbs) == len(cell_orbs)
    longer = disc_with_leads(1)
    for energy in (0.4, 0.9):
        s0, s1 = meso.smatrix(fsys, energy), meso.smatrix(longer, energy)
        assert s0.transmission(1, 0) == pytest.approx(s1.transmission(1, 0), abs=1e-10)
        assert s0.transmission(1, 0) + s0.transmission(0, 0) == pytest.approx(
            s0.num_propagating(0), abs=1e-10
        )
