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
