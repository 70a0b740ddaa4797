"""Kwant's builder and lattice vocabulary: families equal by value, sites as pairs, tags with
arithmetic, symmetry groups, Builder.expand/closest/update and BuilderLead.padding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

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
    assert meso.Builder(none).symmetry is None


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
