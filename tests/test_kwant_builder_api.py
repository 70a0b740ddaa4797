"""Kwant's builder and lattice vocabulary: families equal by value, sites as pairs, tags with
arithmetic, symmetry groups, Builder.expand/closest/update and BuilderLead.padding."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import mesoscopic as meso
from mesoscopic import builder, lattice


def _wire(lat: lattice.Monatomic, length: int) -> meso.Builder:
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    return syst


def _lead(lat: lattice.Monatomic) -> meso.Builder:
    lead = meso.Builder(lattice.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    return lead


def test_two_square_lattices_are_one_family() -> None:
    a, b = lattice.square(norbs=1), lattice.square(norbs=1)
    assert a == b and hash(a) == hash(b)
    assert a(1, 2) == b(1, 2) and hash(a(1, 2)) == hash(b(1, 2))
    assert lattice.square(name="x", norbs=1) != a
    assert lattice.square(norbs=2) != a
    assert lattice.square(2.0, norbs=1) != a
    syst = meso.Builder()
    syst[a(0, 0)] = 1.5
    assert syst[b(0, 0)] == 1.5


def test_system_and_lead_from_two_helpers_give_a_perfect_wire() -> None:
    # A clean wire of 3 channels: each lead built with its own lattice() call.
    syst = _wire(lattice.square(norbs=1), 4)
    syst.attach_lead(_lead(lattice.square(norbs=1)))
    syst.attach_lead(_lead(lattice.square(norbs=1)).reversed())
    smat = meso.smatrix(syst.finalized(), 4.0)
    assert smat.transmission(1, 0) == pytest.approx(3.0, abs=1e-10)


def test_families_sort_by_canonical_form_and_survive_pickling() -> None:
    a, b = lattice.square(name="a", norbs=1), lattice.square(name="b", norbs=1)
    assert (a < b) == (a.canonical_repr < b.canonical_repr)
    assert sorted([b(0, 0), a(1, 0), a(0, 0)]) == [a(0, 0), a(1, 0), b(0, 0)]
    site = pickle.loads(pickle.dumps(a(3, -1)))
    assert site == a(3, -1) and site.family == a
    syst = meso.Builder()
    syst[a(3, -1)] = 2.0
    assert syst[site] == 2.0


def test_site_is_a_family_tag_pair_with_tag_arithmetic() -> None:
    lat = lattice.square(norbs=1)
    site = lat(4, 7)
    family, tag = site
    assert family == lat and tag == (4, 7)
    assert tuple(site) == (lat, (4, 7)) and site == (lat, (4, 7))
    assert hash(site) == hash((lat, (4, 7)))
    assert lat(4, 7).tag - lat(1, 2).tag == (3, 5)
    assert -site.tag + 1 == (-3, -6)
    assert site.tag == np.array([4, 7]) and site.tag.dtype is int
    assert lat.closest((3.9, 7.2)) == np.array([4, 7])


def test_which_is_a_group_element_and_act_refuses_floats() -> None:
    lat = lattice.square(norbs=1)
    sym = lattice.TranslationalSymmetry((2, 0))
    assert sym.which(lat(5, 1)) == (2,)
    assert sym.act(sym.which(lat(5, 1)), sym.to_fd(lat(5, 1))) == lat(5, 1)
    with pytest.raises(ValueError, match="integer type"):
        sym.act((1.0,), lat(0, 0))


def test_symmetry_subgroups() -> None:
    sym = lattice.TranslationalSymmetry((1, 0), (0, 2))
    none = builder.NoSymmetry()
    assert none.has_subgroup(none) and sym.has_subgroup(none)
    assert not none.has_subgroup(sym)
    sub = sym.subgroup((2, 1))
    np.testing.assert_allclose(sub.periods, [[2, 2]])
    assert sym.has_subgroup(sub) and not sub.has_subgroup(sym)
    assert not sym.has_subgroup(lattice.TranslationalSymmetry((0.5, 0)))
    with pytest.raises(ValueError, match="linearly independent"):
        sym.subgroup((1, 0), (2, 0))
    assert isinstance(sym, builder.Symmetry) and isinstance(none, lattice.Symmetry)
    # Kept as given (Kwant's), while the Builder stays finite: it finalizes to a System.
    finite = meso.Builder(none)
    assert isinstance(finite.symmetry, builder.NoSymmetry)
    chain = lattice.chain(norbs=1)
    finite[(chain(i) for i in range(3))] = 0.5
    finite[chain.neighbors()] = -1.0
    assert len(list(chain.shape(lambda pos: abs(pos[0]) < 2, (0,))(finite))) == 3
    np.testing.assert_allclose(
        np.linalg.eigvalsh(finite.finalized().hamiltonian_submatrix()),
        0.5 - 2 * np.cos(np.pi * np.arange(1, 4) / 4),
    )


def test_norbs_that_is_not_a_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="norbs"):
        lattice.general(np.identity(2), norbs=[])
    with pytest.raises(ValueError, match="norbs"):
        lattice.general(np.identity(2), np.identity(2), norbs=1.5)


def test_hopping_kinds_equal_by_value_and_checked() -> None:
    assert builder.HoppingKind((1, 0), lattice.square()) == builder.HoppingKind(
        (1, 0), lattice.square()
    )
    with pytest.raises(ValueError, match="coordinates"):
        builder.HoppingKind((1, 0, 0), lattice.square())


def test_expand_closest_update_and_padding() -> None:
    lat = lattice.square(norbs=1)
    syst = _wire(lat, 3)
    assert len(list(syst.expand(lat.neighbors()))) == len(list(syst.hoppings()))
    assert syst.closest((1.8, 5.0)) == lat(2, 2)
    lead = _lead(lat)
    # The lead's periodic continuation holds the closest site far away.
    assert lead.closest((-40.2, 1.1)) == lat(-40, 1)
    added = syst.attach_lead(lead, add_cells=2)
    assert syst.leads[0].padding == sorted(added) and len(added) == 6
    other = _wire(lat, 1)
    other.attach_lead(_lead(lat).reversed())
    syst.update(other)
    assert len(syst.leads) == 2
    with pytest.raises(ValueError, match="equal symmetries"):
        syst.update(_lead(lat))


class _StrideSymmetry(builder.Symmetry):
    """A user-defined symmetry: translations of the first tag entry by `stride`."""

    def __init__(self, stride: int) -> None:
        self.stride = stride

    @property
    def num_directions(self) -> int:
        return 1

    def which(self, site: lattice.Site) -> tuple[int]:
        return (site.tag[0] // self.stride,)

    def act(self, element, a, b=None):  # type: ignore[no-untyped-def]
        shift = self.stride * int(element[0])

        def moved(site: lattice.Site) -> lattice.Site:
            return site.family(site.tag[0] + shift, *site.tag[1:])

        return moved(a) if b is None else (moved(a), moved(b))

    def has_subgroup(self, other: builder.Symmetry) -> bool:
        if isinstance(other, builder.NoSymmetry):
            return True
        return isinstance(other, _StrideSymmetry) and other.stride % self.stride == 0

    def subgroup(self, *generators):  # type: ignore[no-untyped-def]
        ((n,),) = generators
        return _StrideSymmetry(n * self.stride)


def _open_channels(energy: float, width: int) -> int:
    """Right-moving channels of a clean square-lattice strip (onsite 4, hopping -1)."""
    transverse = 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    return int(np.sum(np.abs(energy - 4 + transverse) < 2))


def test_a_user_defined_symmetry_makes_leads_like_a_translational_one() -> None:
    lat = lattice.square(norbs=1)
    energies = (0.6, 1.3, 2.5)
    results = []
    for make in (lambda s: _StrideSymmetry(s), lambda s: lattice.TranslationalSymmetry((s, 0))):
        syst = _wire(lat, 4)
        for stride in (-1, 1):
            lead = meso.Builder(make(stride))
            lead[(lat(0, y) for y in range(3))] = 4.0
            lead[lat.neighbors()] = -1.0
            syst.attach_lead(lead)
        fsys = syst.finalized()
        results.append([meso.smatrix(fsys, e).transmission(1, 0) for e in energies])
    expected = [_open_channels(e, 3) for e in energies]
    np.testing.assert_allclose(results[0], expected, atol=1e-9)
    np.testing.assert_allclose(results[0], results[1], atol=1e-12)


def test_a_builder_with_a_user_symmetry_stores_one_domain() -> None:
    lat = lattice.square(norbs=1)
    lead = meso.Builder(_StrideSymmetry(2))
    lead[lat(5, 0)] = 1.0  # stored as its image lat(1, 0) of the fundamental domain
    lead[lat(4, 0)] = 2.0
    lead[lat(3, 0), lat(4, 0)] = -1.0
    assert sorted(s.tag for s in lead.sites()) == [(0, 0), (1, 0)]
    assert lead[lat(-1, 0)] == 1.0
    assert lead[lat(2, 0), lat(1, 0)] == -1.0  # the same hopping, two periods away
    assert sorted(n.tag for n in lead.neighbors(lat(0, 0))) == [(-1, 0)]


def test_hopping_kind_on_a_lead_yields_hoppings_from_its_domain() -> None:
    lat = lattice.square(norbs=1)
    sym = lattice.TranslationalSymmetry((2, 0))
    lead = meso.Builder(sym)
    lead[(lat(x, y) for x in range(2) for y in range(2))] = 0
    hops = list(builder.HoppingKind((1, 0), lat)(lead))
    # Two per row: (1, y) <- (0, y) inside the domain and (0, y) <- (-1, y) across it.
    assert len(hops) == 4
    for a, b in hops:
        assert sym.to_fd(a) == a
        assert tuple(np.subtract(a.tag, b.tag)) == (1, 0)


class _NamedFamily(lattice.SiteFamily):
    """Sites labelled by names: a family without real-space positions."""

    def __init__(self) -> None:
        super().__init__("_NamedFamily()", "named", 1)

    def normalize_tag(self, tag):  # type: ignore[no-untyped-def]
        return tuple(str(t) for t in tag)


def test_sites_without_positions_can_be_finalized() -> None:
    fam = _NamedFamily()
    syst = meso.Builder()
    syst[fam("left")] = 0.5
    syst[fam("right")] = lambda site, v: v
    syst[fam("left"), fam("right")] = -1.0
    fsys = syst.finalized()
    assert fsys.pos.shape == (2, 0)
    ham = fsys.hamiltonian_submatrix(params={"v": 0.5})
    # A dimer: levels 0.5 -+ 1.
    np.testing.assert_allclose(np.linalg.eigvalsh(ham), [-0.5, 1.5], atol=1e-14)


def test_a_lead_with_longer_range_hoppings_gets_a_longer_period() -> None:
    lat = lattice.chain(norbs=1)
    t1, t2 = -1.0, -0.3
    syst = meso.Builder()
    syst[(lat(x) for x in range(6))] = 0.0
    syst[lat.neighbors()] = t1
    syst[builder.HoppingKind((2,), lat)] = t2
    for stride in (-1, 1):
        lead = meso.Builder(lattice.TranslationalSymmetry((stride,)))
        lead[lat(0)] = 0.0
        lead[lat(1), lat(0)] = t1
        lead[lat(2), lat(0)] = t2
        syst.attach_lead(lead)
    assert [len(list(bl.builder.sites())) for bl in syst.leads] == [2, 2]
    np.testing.assert_allclose(np.abs(syst.leads[0].builder.symmetry.periods), [[2.0]])
    fsys = syst.finalized()
    # A clean system transmits every right-moving band crossing of
    # E(k) = 2 t1 cos k + 2 t2 cos 2k.
    k = np.linspace(-np.pi, np.pi, 200001)
    band = 2 * t1 * np.cos(k) + 2 * t2 * np.cos(2 * k)
    for energy in (-1.5, 0.9, 1.42):  # two right-movers near the band top at 1.42
        above = band > energy
        rising = int(np.sum(~above[:-1] & above[1:]))  # dE/dk > 0: right-moving
        assert rising == (2 if energy > 1.4 else 1)
        assert meso.smatrix(fsys, energy).transmission(1, 0) == pytest.approx(rising, abs=1e-8)


def test_a_lead_with_an_empty_interface_is_refused_at_finalization() -> None:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = 0.0
    lead = meso.Builder(lattice.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.leads.append(builder.BuilderLead(lead, ()))
    with pytest.raises(ValueError, match="empty interface"):
        syst.finalized()


def _chain_with_parameters(symmetry: lattice.TranslationalSymmetry | None = None) -> meso.Builder:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder(symmetry)
    syst[(lat(x) for x in range(3))] = lambda site, p1, p2: p1 + 2 * p2
    syst[lat.neighbors()] = lambda a, b, p1, p2: p1 - p2 + 0.5j
    return syst


def test_deprecated_positional_args_match_params() -> None:
    fsys = _chain_with_parameters().finalized()
    lead = _chain_with_parameters(lattice.TranslationalSymmetry((-3,))).finalized()
    by_name = {"p1": 2.0, "p2": -1.0}
    calls = (
        fsys.hamiltonian_submatrix,
        lead.cell_hamiltonian,
        lead.inter_cell_hopping,
        lambda **kw: lead.selfenergy(0.3, **kw),
    )
    for call in calls:
        with pytest.warns(DeprecationWarning, match="params="):
            old = call(args=(2.0, -1.0))
        np.testing.assert_array_equal(old, call(params=by_name))
    with pytest.warns(DeprecationWarning):
        assert fsys.hamiltonian(1, 0, 2.0, -1.0) == pytest.approx(3.0 + 0.5j)  # <1|H|0>
    with pytest.raises(TypeError, match="not both"):
        fsys.hamiltonian(0, 0, 2.0, -1.0, params=by_name)
    # A missing parameter is a TypeError (as in Kwant) and a ValueError (as before).
    for error in (TypeError, ValueError):
        with pytest.raises(error, match="missing parameter 'p2'"):
            fsys.hamiltonian_submatrix(params={"p1": 1.0})


def test_lead_hamiltonian_numbers_the_previous_cell_after_the_cell() -> None:
    lat = lattice.chain(norbs=1)
    t = -1.0 + 0.2j
    lead = meso.Builder(lattice.TranslationalSymmetry((1,)))
    lead[lat(0)] = 0.3
    lead[lat(1), lat(0)] = t  # <x + 1|H|x> = t
    flead = lead.finalized()
    assert flead.cell_size == 1 and list(flead.interface_sites) == [0]
    # Site 1 is the copy of site 0 one period back.
    assert flead.hamiltonian(0, 0) == pytest.approx(0.3)
    assert flead.hamiltonian(1, 1) == pytest.approx(0.3)
    assert flead.hamiltonian(0, 1) == pytest.approx(t)
    assert flead.hamiltonian(1, 0) == pytest.approx(np.conj(t))
    with pytest.raises(ValueError, match="out of range"):
        flead.hamiltonian(0, 2)


def test_function_leads_with_kwants_older_signature() -> None:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(4))] = 0.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(lattice.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    flead = syst.finalized().leads[1]
    interface = [lat(3)]
    seen = []

    def old_style(energy, args):  # type: ignore[no-untyped-def]
        seen.append(args)
        return flead.selfenergy(energy)

    syst.leads[1] = builder.SelfEnergyLead(old_style, interface, ())
    fsys = syst.finalized()
    # A clean chain transmits perfectly inside its band.
    assert meso.smatrix(fsys, 0.7).transmission(1, 0) == pytest.approx(1.0, abs=1e-10)
    assert seen and all(args == () for args in seen)


def test_a_one_element_vector_is_a_one_orbital_value() -> None:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(2))] = lambda site, v: site.pos + v  # shape (1,)
    syst[lat.neighbors()] = -1.0
    ham = syst.finalized().hamiltonian_submatrix(params={"v": 0.5})
    np.testing.assert_allclose(ham, [[0.5, -1.0], [-1.0, 1.5]])


def test_reversed_hoppings_are_hermitian_conjugates_of_the_stored_value() -> None:
    lat = lattice.chain(norbs=2)
    syst = meso.Builder()
    syst[(lat(x) for x in range(2))] = np.eye(2)
    matrix = [[1, 2j], [3 + 1j, 4j]]

    def hop(a, b):  # type: ignore[no-untyped-def]
        return matrix

    syst[lat(1), lat(0)] = hop
    back = syst[lat(0), lat(1)]
    assert isinstance(back, builder.HermConjOfFunc) and back.function is hop
    np.testing.assert_array_equal(back(lat(0), lat(1)), np.conj(np.transpose(matrix)))
    # Assigning the conjugate back stores the original function the other way round.
    syst[lat(0), lat(1)] = back
    assert syst[lat(1), lat(0)] is hop
    syst[lat(1), lat(0)] = matrix
    np.testing.assert_array_equal(syst[lat(0), lat(1)], np.conj(np.transpose(matrix)))
    # None is a placeholder value (e.g. in a fill template) and stays None.
    syst[lat(1), lat(0)] = None
    assert syst[lat(0), lat(1)] is None


def test_fill_copies_hoppings_as_stored_and_starts_at_the_closest_site() -> None:
    lat = lattice.square(norbs=1)
    original = meso.Builder()
    original[(lat(x, y) for x in range(1, 4) for y in range(3))] = 0.5
    for k, (a, b) in enumerate(original.expand(lat.neighbors())):
        original[a, b] = 0.1 * k + 0.3j
    clone = meso.Builder()
    # (0, 0) is not a site of the original: the walk starts at its closest site.
    clone.fill(original, lambda site: True, (0.0, 0.0))
    assert set(clone.site_value_pairs()) == set(original.site_value_pairs())
    assert set(clone.hopping_value_pairs()) == set(original.hopping_value_pairs())
    spectrum = np.linalg.eigvalsh(original.finalized().hamiltonian_submatrix())
    np.testing.assert_allclose(
        np.linalg.eigvalsh(clone.finalized().hamiltonian_submatrix()), spectrum, atol=1e-13
    )


def test_substituted_refuses_clashes_and_warns_about_unknown_names() -> None:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(3))] = lambda site, a, b: a + b
    syst[lat.neighbors()] = lambda first, second, b, c: b - c
    with pytest.raises(ValueError, match="two arguments named 'a'"):
        syst.substituted(b="a")
    with pytest.raises(ValueError, match="two arguments named 'site'"):
        syst.substituted(a="site")
    with pytest.warns(RuntimeWarning, match="unknown"):
        syst.substituted(unknown="x")
    # 'first' names a site argument of the hopping only: the onsite may take it.
    renamed = syst.substituted(a="first")
    assert renamed.finalized().parameters == {"first", "b", "c"}
    lead = meso.Builder(lattice.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    with pytest.raises(ValueError, match="leads attached"):
        syst.substituted(a="d")


def test_bad_keys_raise_kwants_error_types() -> None:
    lat = lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[[lat(0), lat(1)]] = 0.0
    syst[lat(0), lat(1)] = -1.0

    def assign(key):  # type: ignore[no-untyped-def]
        syst[key] = 0.0

    single = (syst.__contains__, syst.__getitem__, assign, syst.__delitem__)
    cases = [
        (TypeError, [7, (0, 1), (lat(0), 7)]),
        (IndexError, [(lat(0),), (lat(0), lat(1), lat(2))]),  # tuples are hoppings
        (ValueError, [(lat(1), lat(1))]),
    ]
    for error, keys in cases:
        for key in keys:
            for operation in single:
                with pytest.raises(error):
                    operation(key)
    for key in ([lat(0), (lat(1),)], [(lat(0), lat(1)), lat(1)], [lat(0), 7]):
        with pytest.raises(TypeError, match="sequence of"):
            assign(key)
    with pytest.raises(KeyError):
        syst[lat(0), lat(5)]
    for bad in (7, (lat(0), lat(1)), [lat(0)]):
        with pytest.raises(TypeError, match="expected a site"):
            syst.degree(bad)
    with pytest.raises(KeyError):
        syst.degree(lat(9))
    # Nothing was changed by the refused keys.
    assert sorted(s.tag for s in syst.sites()) == [(0,), (1,)]
    assert syst[lat(1), lat(0)] == -1.0


def test_precalculated_leads_give_the_same_scattering_matrix() -> None:
    lat = lattice.square(norbs=1)
    rng = np.random.default_rng(7)
    syst = meso.Builder()
    for x in range(5):
        for y in range(3):
            syst[lat(x, y)] = 4.0 + 0.8 * (rng.random() - 0.5)
    syst[lat.neighbors()] = lambda a, b, t: -t
    lead = meso.Builder(lattice.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = lambda a, b, t: -t
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    energy, params = 1.1, {"t": 1.0}
    reference = meso.smatrix(fsys, energy, params=params)
    with_modes = fsys.precalculate(energy, params=params, what="all")
    assert all(isinstance(flead, meso.system.ModesLead) for flead in with_modes.leads)
    np.testing.assert_allclose(
        meso.smatrix(with_modes, energy, params=params).data, reference.data, atol=1e-12
    )
    only_sigma = fsys.precalculate(energy, params=params, leads=[1], what="selfenergy")
    assert isinstance(only_sigma.leads[0], meso.system.InfiniteSystem)
    assert isinstance(only_sigma.leads[1], meso.system.SelfEnergyLead)
    assert not only_sigma.leads[1].has_modes  # as Kwant's: no S-matrix elements for it
    transmission = meso.greens_function(only_sigma, energy, params=params).transmission(1, 0)
    assert transmission == pytest.approx(reference.transmission(1, 0), abs=1e-10)
    # At another energy the leads are computed again (Kwant would reuse these values).
    with pytest.warns(RuntimeWarning, match=r"precalculated at energy 1\.1"):
        again = meso.smatrix(with_modes, 0.5, params=params)
    fresh = meso.smatrix(fsys, 0.5, params=params)
    assert again.transmission(1, 0) == pytest.approx(fresh.transmission(1, 0), abs=1e-12)
    with pytest.raises(ValueError, match="what must be"):
        fsys.precalculate(energy, params=params, what="everything")


def test_lead_paddings_are_the_sites_attach_lead_added() -> None:
    lat = lattice.square(norbs=1)

    # A ragged left edge: the corners of column 0 are missing.
    tags = [(x, y) for x in range(4) for y in range(3) if x > 0 or y == 1]
    syst = meso.Builder()
    syst[[lat(*tag) for tag in tags]] = 4.0
    syst[lat.neighbors()] = -1.0
    array_syst = meso.ArrayBuilder()
    array_syst.add_sites(lat, tags, 4.0)
    array_syst.add_hoppings(lat.neighbors(), -1.0)
    for target in (syst, array_syst):
        for period in ((-1, 0), (1, 0)):
            lead = meso.Builder(lattice.TranslationalSymmetry(period))
            lead[(lat(0, y) for y in range(3))] = 4.0
            lead[lat.neighbors()] = -1.0
            target.attach_lead(lead)
    for fsys in (syst.finalized(), array_syst.finalized()):
        padded = [sorted(fsys.sites[i].tag for i in p) for p in fsys.lead_paddings]
        # attach_lead completed the ragged column with the lead's sites.
        assert padded == [[(0, 0), (0, 2)], []]
        assert all(not p.flags.writeable for p in fsys.lead_paddings)
    fsys = syst.finalized()
    probe = meso.system.SelfEnergyLead(lambda energy: [[-0.1j]], [lat(2, 1)])
    assert len(fsys.with_leads([probe]).lead_paddings[2]) == 0


def test_builder_sites_is_a_sized_live_view() -> None:
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    sites = syst.sites()
    syst[(lat(i, 0) for i in range(4))] = 0.0
    assert len(sites) == 4 and lat(2, 0) in sites
    assert set(sites) == {lat(i, 0) for i in range(4)}
    del syst[lat(0, 0)]
    assert len(syst.sites()) == 3


def test_lattices_have_kwant_private_prim_vecs() -> None:
    honeycomb = lattice.honeycomb(norbs=1)
    np.testing.assert_allclose(honeycomb._prim_vecs, [[1, 0], [0.5, np.sqrt(3) / 2]])
    for sub in honeycomb.sublattices:
        np.testing.assert_allclose(sub._prim_vecs, honeycomb.prim_vecs)
    np.testing.assert_allclose(lattice.square(2.0, norbs=1)._prim_vecs, 2 * np.eye(2))


def test_hamiltonian_submatrix_blocks_by_site_index() -> None:
    # Two orbitals on one family, one on the other: each block is the Builder's value.
    pair, single = lattice.chain(norbs=2, name="p"), lattice.chain(norbs=1, name="s")
    syst = meso.Builder()
    syst[pair(0)] = np.array([[0.0, 1j], [-1j, 0.0]])
    syst[single(1)] = lambda site, v: v
    syst[single(2)] = 2.0
    syst[single(1), pair(0)] = np.array([[1.0, 2j]])
    syst[single(2), single(1)] = 3j
    fsys = syst.finalized()
    index = {site: k for k, site in enumerate(fsys.sites)}
    p0, s1, s2 = index[pair(0)], index[single(1)], index[single(2)]
    params = {"v": 0.5}
    full = fsys.hamiltonian_submatrix(params=params)
    np.testing.assert_allclose(full, full.conj().T)
    block, to_norb, from_norb = fsys.hamiltonian_submatrix(
        (), [s1, s2], [p0], return_norb=True, params=params
    )
    np.testing.assert_array_equal(block, [[1.0, 2j], [0.0, 0.0]])
    assert to_norb.tolist() == [1, 1] and from_norb.tolist() == [2]
    coo = fsys.hamiltonian_submatrix((), [s2], [s1, p0], sparse=True, params=params)
    assert coo.format == "coo"
    np.testing.assert_array_equal(coo.toarray(), [[3j, 0, 0]])
    whole = fsys.hamiltonian_submatrix(sparse=True, params=params)
    assert whole.format == "coo"
    np.testing.assert_array_equal(whole.toarray(), full)
    # Kwant's onsites: (value, parameter names or None) per site.
    assert fsys.onsites[s1][1] == ("v",) and fsys.onsites[s2] == (2.0, None)
    assert fsys.hamiltonian(s2, s1, params=params) == 3j
    with pytest.raises(IndexError, match="site index 3"):
        fsys.hamiltonian_submatrix(to_sites=[3], params=params)
    with pytest.raises(TypeError, match="site indices"):
        fsys.hamiltonian_submatrix(to_sites=[pair(0)], params=params)


def test_system_graph_is_kwants_two_way_graph() -> None:
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = 0.0
    syst[lat.neighbors()] = lambda a, b, t: -t
    syst[lat(2, 1), lat(0, 0)] = 0.5  # a long-range hopping, given in one direction
    fsys = syst.finalized()
    graph = fsys.graph
    i, j = fsys.hopping_indices
    n_hoppings = 7 + 1
    assert len(i) == n_hoppings and graph.num_nodes == 6
    assert graph.num_edges == 2 * n_hoppings
    edges = list(graph)
    # Every hopping in both directions, once, numbered by tail and then head.
    assert sorted(edges) == edges
    assert set(edges) == set(zip(i.tolist(), j.tolist())) | set(zip(j.tolist(), i.tolist()))
    for node in range(graph.num_nodes):
        ids = graph.out_edge_ids(node)
        assert [graph.tail(int(e)) for e in ids] == [node] * len(ids)
        assert graph.out_neighbors(node).tolist() == [graph.head(int(e)) for e in ids]
        for e in graph.in_edge_ids(node):
            assert graph.head(int(e)) == node
        # The degree is the number of non-zero off-diagonal entries of the row.
        ham = fsys.hamiltonian_submatrix(params={"t": 1.0})
        assert len(ids) == np.count_nonzero(np.delete(ham[node], node))
    a, b = fsys.id_by_site[lat(2, 1)], fsys.id_by_site[lat(0, 0)]
    assert graph.has_edge(a, b) and graph.has_edge(b, a)
    assert edges[graph.first_edge_id(a, b)] == (a, b)
    with pytest.raises(KeyError, match="no edge"):
        graph.first_edge_id(a, a)
    # Kwant's hoppings: the value on the edge it was set for, Other on its reverse.
    assert fsys.hoppings[graph.first_edge_id(a, b)] == (0.5, None)
    assert fsys.hoppings[graph.first_edge_id(b, a)] == (builder.Other, ())
    values = [value for value, _ in fsys.hoppings]
    assert values.count(builder.Other) == n_hoppings
    for (tail, head), (value, names) in zip(edges, fsys.hoppings):
        if value is not builder.Other:
            key = (fsys.sites[tail], fsys.sites[head])
            assert syst[key] is value and (names is None or names == ("t",))


@pytest.mark.parametrize("array_builder", [False, True])
def test_families_of_different_dimensions_in_one_system(array_builder: bool) -> None:
    square, chain = lattice.square(norbs=1), lattice.chain(norbs=1, name="wire")
    if array_builder:
        syst: Any = meso.ArrayBuilder()
        syst.add_sites(square, [(x, y) for x in range(2) for y in range(2)], 2.0)
        syst.add_sites(chain, [(5,)], 1.0)
        syst.add_hoppings(square.neighbors(), -1.0)
        fsys = syst.finalized()
    else:
        syst = meso.Builder()
        syst[(square(x, y) for x in range(2) for y in range(2))] = 2.0
        syst[chain(5)] = 1.0
        syst[square.neighbors()] = -1.0
        syst[chain(5), square(1, 1)] = -0.5
        fsys = syst.finalized()
    assert fsys.pos.shape == (5, 2)
    for k, site in enumerate(fsys.sites):
        # The chain's 1-d position takes the first coordinate; site.pos keeps its own.
        np.testing.assert_array_equal(fsys.pos[k, : len(site.pos)], site.pos)
        assert np.all(fsys.pos[k, len(site.pos) :] == 0)
    density = meso.operator.Density(fsys)
    np.testing.assert_allclose(density(np.ones(5)), np.ones(5))


def test_finalized_sites_are_sorted_as_kwants() -> None:
    a, b = lattice.honeycomb(norbs=1).sublattices
    tags = [(2, 0), (0, 1), (1, 0), (0, 0)]
    syst = meso.Builder()
    for tag in tags:  # added in no particular order, B before A
        syst[b(*tag)] = 0.0
        syst[a(*tag)] = 0.0
    syst[lattice.honeycomb(norbs=1).neighbors()] = -1.0
    fsys = syst.finalized()
    # By family (its Kwant text: sublattice '0' before '1') and then by tag.
    expected = [a(*t) for t in sorted(tags)] + [b(*t) for t in sorted(tags)]
    assert list(fsys.sites) == expected
    np.testing.assert_array_equal(fsys.pos, [site.pos for site in expected])


def test_hamiltonian_element_calls_only_its_own_value_function() -> None:
    chain = lattice.chain(norbs=1)
    calls: list[Any] = []

    def onsite(site: Any, v: float) -> float:
        calls.append(site.tag)
        return v * site.tag[0]

    def hopping(a: Any, b: Any, t: float) -> complex:
        calls.append((a.tag, b.tag))
        return -t * 1j

    def broken(site: Any) -> float:
        raise ZeroDivisionError

    syst = meso.Builder()
    syst[(chain(x) for x in range(3))] = onsite
    syst[chain(3)] = broken
    syst[chain.neighbors()] = hopping
    fsys = syst.finalized()
    index = fsys.id_by_site
    i, j = index[chain(1)], index[chain(2)]
    assert fsys.hamiltonian(i, i, params={"v": 2.0, "t": 1.0}) == 2.0
    assert fsys.hamiltonian(j, i, params={"v": 2.0, "t": 1.0}) == -1j
    assert fsys.hamiltonian(i, j, params={"v": 2.0, "t": 1.0}) == 1j
    assert calls == [(1,), ((2,), (1,)), ((2,), (1,))]
    broken_site = index[chain(3)]
    with pytest.raises(meso.system.UserCodeError, match='value function "broken"'):
        fsys.hamiltonian(broken_site, broken_site, params={"v": 2.0, "t": 1.0})


def test_inter_cell_hopping_is_kwants_and_hopping_away_its_dagger():
    # Kwant 1.5 prints [[-1j]] for this lead: <m+1|H|m>, cells numbered away from the
    # system (here towards -x); hopping_away is <m|H|m+1>, the solvers' convention.
    import mesoscopic as kwant

    lat = kwant.lattice.chain(norbs=1)
    lead = kwant.Builder(kwant.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.5
    lead[lat(1), lat(0)] = 1j
    flead = lead.finalized()
    np.testing.assert_array_equal(flead.inter_cell_hopping(), [[-1j]])
    np.testing.assert_array_equal(flead.hopping_away(), [[1j]])
    np.testing.assert_array_equal(flead.inter_cell_hopping(sparse=True).toarray(), [[-1j]])
    # Kwant's Bloch Hamiltonian h + hop e^{-ik} + h.c. is the band physics.Bands gives.
    h, hop = flead.cell_hamiltonian(), flead.inter_cell_hopping()
    for k in (-2.0, 0.3, 1.1):
        bloch = h + hop * np.exp(-1j * k) + hop.conj().T * np.exp(1j * k)
        np.testing.assert_allclose(kwant.physics.Bands(flead)(k), np.linalg.eigvalsh(bloch))


# ---- add_peierls_phase -------------------------------------------------------------


def _peierls_wire(hopping: Any, with_leads: bool = True) -> meso.Builder:
    lat = lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(5) for y in range(4))] = 4.0
    syst[lat.neighbors()] = hopping
    if with_leads:
        lead = meso.Builder(lattice.TranslationalSymmetry((-1, 0)))
        lead[(lat(0, y) for y in range(4))] = 4.0
        lead[lat.neighbors()] = -1.0
        syst.attach_lead(lead)
        syst.attach_lead(lead.reversed())
    return syst


def test_add_peierls_phase_parameters_and_zero_field() -> None:
    fsyst, phases = builder.add_peierls_phase(_peierls_wire(lambda a, b, t: -t))
    assert isinstance(fsyst, builder.FiniteSystem)
    params = phases(0, 0, 0)
    assert sorted(params) == ["phi", "phi_lead0", "phi_lead1"]
    # Without field the phases are all 1: the S-matrix is the plain system's.
    plain = _peierls_wire(-1.0).finalized()
    s = meso.smatrix(fsyst, 1.0, params=dict(t=1.0, **params)).data
    np.testing.assert_allclose(s, meso.smatrix(plain, 1.0).data, atol=1e-12)
    _alone, phase_alone = builder.add_peierls_phase(_peierls_wire(-1.0, with_leads=False))
    assert list(phase_alone(0.3)) == ["phi"]
    no_gauge = builder.add_peierls_phase(_peierls_wire(-1.0), "peierls", fix_gauge=False)
    assert "peierls_lead1" in no_gauge.leads[1].parameters


def test_add_peierls_phase_matches_uniform_field_of_finalized() -> None:
    # Two independent constructions of a uniform field: the spectrum of the closed
    # system (gauge invariant) agrees, and so does the two-terminal transmission. The
    # gauge's field unit phi_0/l**2 makes a loop's phase exp(i pi B area), finalized's
    # magnetic_flux f makes it exp(2 pi i f area): B = 2 f.
    fsyst, phases = builder.add_peierls_phase(_peierls_wire(-1.0, with_leads=False))
    ref = _peierls_wire(-1.0, with_leads=False).finalized(magnetic_flux="f")
    for field in (0.1, 0.37):
        h = fsyst.hamiltonian_submatrix(params=phases(field))
        h_ref = ref.hamiltonian_submatrix(params=dict(f=field / 2))
        assert not np.allclose(h.imag, 0)
        np.testing.assert_allclose(np.linalg.eigvalsh(h), np.linalg.eigvalsh(h_ref), atol=1e-10)
    fsyst, phases = builder.add_peierls_phase(_peierls_wire(-1.0))
    ref = _peierls_wire(-1.0).finalized(magnetic_flux="f")
    for field in (0.2, 0.5):
        got = meso.smatrix(fsyst, 1.3, params=phases(field, field, field))
        want = meso.smatrix(ref, 1.3, params=dict(f=field / 2))
        s = got.data
        np.testing.assert_allclose(s.conj().T @ s, np.eye(len(s)), atol=1e-10)
        assert got.transmission(1, 0) == pytest.approx(want.transmission(1, 0), abs=1e-10)


def test_add_peierls_phase_vectorized_and_errors() -> None:
    lat = lattice.square(norbs=2)
    syst = meso.Builder(vectorize=True)
    syst[(lat(x, y) for x in range(3) for y in range(3))] = np.eye(2)
    syst[lat.neighbors()] = -np.eye(2)
    plain = meso.Builder()
    plain[(lat(x, y) for x in range(3) for y in range(3))] = np.eye(2)
    plain[lat.neighbors()] = -np.eye(2)
    fsyst, phases = builder.add_peierls_phase(syst)
    fplain, plain_phases = builder.add_peierls_phase(plain)
    h = fsyst.hamiltonian_submatrix(params=phases(0.3))
    np.testing.assert_allclose(h, fplain.hamiltonian_submatrix(params=plain_phases(0.3)))
    taken = meso.Builder()
    taken[lat(0, 0)] = np.eye(2)
    taken[lat(1, 0)] = np.eye(2)
    taken[lat(0, 0), lat(1, 0)] = lambda a, b, phi: phi * np.eye(2)
    with pytest.raises(ValueError, match="already takes a parameter 'phi'"):
        builder.add_peierls_phase(taken)
    with pytest.raises(ValueError, match="peierls_parameter"):
        builder.add_peierls_phase(plain, "not a name")
    with pytest.raises(TypeError, match="needs a Builder"):
        builder.add_peierls_phase(fplain)


# ---- discrete symmetries of a finalized Builder ---------------------------------------


def test_onsite_discrete_symmetry_validates_the_hamiltonian() -> None:
    from mesoscopic.physics.symmetry import _onsite_discrete_symmetry

    sz = np.diag([1.0, -1.0])
    sy = np.array([[0, -1j], [1j, 0]])
    lat = lattice.square(norbs=2)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = lambda site, mu: mu * np.eye(2)
    syst[lat.neighbors()] = -np.eye(2)
    fsyst = syst.finalized()
    sym = _onsite_discrete_symmetry(
        fsyst.sites,
        fsyst.norbs,
        conservation_law=lambda site, s: s * sz,
        time_reversal={lat: 1j * sy},
        params=dict(s=1, mu=0.3),
    )
    assert sym.projectors is not None and len(sym.projectors) == 2
    n = sum(fsyst.norbs)
    # The projectors split the orbitals into spin down (eigenvalue -1) and up, site by site.
    down, up = (p.toarray() for p in sym.projectors)
    np.testing.assert_allclose(down.conj().T @ down, np.eye(n // 2))
    assert np.allclose(abs(down).sum(axis=1), np.tile([0, 1], n // 2))
    assert np.allclose(abs(up).sum(axis=1), np.tile([1, 0], n // 2))
    h = fsyst.hamiltonian_submatrix(params=dict(mu=0.3))
    assert sym.validate(h) == []
    # A spin-flipping field breaks the conservation law; an imaginary spin-independent
    # hopping breaks time reversal.
    assert "Conservation law" in sym.validate(h + np.kron(np.eye(n // 2), [[0, 1], [1, 0]]))
    k = np.zeros((n, n), complex)
    k[0, 2] = k[1, 3] = 1j
    assert "Time reversal" in sym.validate(h + k + k.conj().T)


def test_onsite_discrete_symmetry_refuses_bad_laws() -> None:
    from mesoscopic.physics.symmetry import _onsite_discrete_symmetry

    lat = lattice.chain(norbs=2)
    sites, norbs = [lat(0), lat(1)], [2, 2]
    with pytest.raises(ValueError, match="integer eigenvalues"):
        _onsite_discrete_symmetry(sites, norbs, np.diag([0.5, -0.5]))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        _onsite_discrete_symmetry(sites, norbs, np.eye(3))
    with pytest.raises(ValueError, match="parameter 'b'"):
        _onsite_discrete_symmetry(sites, norbs, lambda site, b: b, params={"a": 1})
    with pytest.raises(ValueError, match="no value for the family"):
        _onsite_discrete_symmetry(sites, norbs, {lattice.chain(norbs=1, name="x"): 1})
    # A number is that number times the identity: one block.
    [proj] = _onsite_discrete_symmetry(sites, norbs, 1).projectors
    np.testing.assert_allclose(proj.toarray(), np.eye(4))


def test_finalized_systems_keep_the_builders_discrete_symmetries():
    import mesoscopic as kwant

    sz = np.diag([1.0, -1.0])
    sy = np.array([[0, -1j], [1j, 0]])
    lat = kwant.lattice.chain(norbs=2)
    syst = kwant.Builder(conservation_law=-sz, time_reversal=1j * sy)
    syst[(lat(x) for x in range(4))] = 0.3 * np.eye(2)
    syst[lat.neighbors()] = -np.eye(2)
    fsys = syst.finalized()
    symmetry = fsys.discrete_symmetry()
    assert isinstance(symmetry, kwant.physics.DiscreteSymmetry)
    assert len(symmetry.projectors) == 2  # the two spin blocks
    h = fsys.hamiltonian_submatrix(sparse=True)
    assert symmetry.validate(h) == []
    # A Zeeman term breaks time reversal (and keeps the conservation law).
    zeeman = h + sp.kron(sp.eye(4), 0.2 * sz)
    assert symmetry.validate(zeeman) == ["Time reversal"]
    # A spin-flip term breaks the conservation law: validate names it.
    flip = kwant.Builder(conservation_law=-sz)
    flip[(lat(x) for x in range(2))] = np.array([[0, 0.1], [0.1, 0]])
    flip[lat.neighbors()] = -np.eye(2)
    broken = flip.finalized()
    report = broken.discrete_symmetry().validate(broken.hamiltonian_submatrix(sparse=True))
    assert "Conservation law" in report
