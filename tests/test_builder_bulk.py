"""The Builder's array store gives exactly what its dictionaries give.

A finite Builder keeps its sites and hoppings in arrays until an operation needs the
dictionaries (see ``mesoscopic._bulk``). Each script here runs twice, once as written and
once with the dictionaries from the start, and everything observable must be identical:
the finalized System (sites, order, positions, orbitals, every term group, leads,
interfaces, paddings, the Hamiltonian) and the Builder's own contents and their order.
"""

from __future__ import annotations

import cmath
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic.builder import HermConjOfFunc


def _builder(dictionaries: bool, **kwargs: Any) -> meso.Builder:
    syst = meso.Builder(**kwargs)
    if dictionaries:
        syst._materialize()
        assert syst._bulk is None
    return syst


def _same_value(a: Any, b: Any) -> bool:
    if callable(a) or callable(b):
        # The two runs define their value functions anew: the same code, other objects.
        if isinstance(a, HermConjOfFunc) and isinstance(b, HermConjOfFunc):
            a, b = a.function, b.function
        return getattr(a, "__code__", a) is getattr(b, "__code__", b)
    return np.array_equal(np.asarray(a), np.asarray(b))


def _sites_of_group(group: Any) -> Any:
    if group.vectorized:
        return [(s.family, np.asarray(s.tags).tolist()) for s in group.sites]
    return list(group.sites)


def _assert_same_groups(ga: Any, gb: Any) -> None:
    assert len(ga) == len(gb)
    for a, b in zip(ga, gb):
        assert np.array_equal(a.rows, b.rows)
        assert np.array_equal(a.cols, b.cols)
        assert a.shape == b.shape and a.vectorized == b.vectorized and a.conj == b.conj
        assert _same_value(a.value, b.value)
        assert _sites_of_group(a) == _sites_of_group(b)


def _assert_same_system(fa: Any, fb: Any, params: dict[str, Any]) -> None:
    assert tuple(fa.sites) == tuple(fb.sites)
    assert np.array_equal(fa.pos, fb.pos)
    assert np.array_equal(fa.norbs, fb.norbs)
    _assert_same_groups(fa._onsite, fb._onsite)
    _assert_same_groups(fa._hoppings, fb._hoppings)
    assert len(fa.leads) == len(fb.leads)
    for ia, ib in zip(fa.lead_interfaces, fb.lead_interfaces):
        assert np.array_equal(ia, ib)
    for pa, pb in zip(fa.lead_paddings, fb.lead_paddings):
        assert np.array_equal(pa, pb)
    for la, lb in zip(fa.leads, fb.leads):
        assert tuple(la.sites) == tuple(lb.sites)
    ha = fa.hamiltonian_submatrix(params=params, sparse=True).toarray()
    hb = fb.hamiltonian_submatrix(params=params, sparse=True).toarray()
    assert np.array_equal(ha, hb)


def _assert_same_builder(a: meso.Builder, b: meso.Builder) -> None:
    assert list(a.sites()) == list(b.sites())
    for (site_a, va), (site_b, vb) in zip(a.site_value_pairs(), b.site_value_pairs()):
        assert site_a == site_b and _same_value(va, vb)
    pairs_a, pairs_b = list(a.hopping_value_pairs()), list(b.hopping_value_pairs())
    assert [p for p, _ in pairs_a] == [p for p, _ in pairs_b]
    for (_, va), (_, vb) in zip(pairs_a, pairs_b):
        assert _same_value(va, vb)
    assert len(a.leads) == len(b.leads)
    for la, lb in zip(a.leads, b.leads):
        assert list(la.interface) == list(lb.interface)
        assert list(la.padding) == list(lb.padding)


def _check(script: Callable[[bool], meso.Builder], params: dict[str, Any] | None = None) -> None:
    bulk, dicts = script(False), script(True)
    assert bulk._bulk is not None, "the script was meant to stay in the array store"
    _assert_same_system(bulk.finalized(), dicts.finalized(), params or {})
    _assert_same_builder(bulk, dicts)


def _square_with_leads(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.square(norbs=1)
    syst = _builder(dictionaries)
    syst[(lat(x, y) for x in range(12) for y in range(7))] = 4
    syst[lat.neighbors()] = -1
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(7))] = 4
    lead[lat.neighbors()] = -1
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


def _disk_with_ribbons(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.honeycomb(norbs=1)
    syst = _builder(dictionaries)
    syst[lat.shape(lambda p: p[0] ** 2 + p[1] ** 2 < 9.3**2, (0, 0))] = 0.1
    syst[lat.neighbors()] = -1
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
    lead[lat.shape(lambda p: abs(p[1]) < 3.7, (0, 0))] = 0.1
    lead[lat.neighbors()] = -1
    syst.attach_lead(lead, add_cells=2)
    syst.attach_lead(lead.reversed())
    # A lead along another lattice direction, through the curved edge.
    lead2 = meso.Builder(meso.TranslationalSymmetry(lat.vec((0, 1))))
    lead2[lat.shape(lambda p: abs(p[0]) < 2.1, (0, 0))] = 0.1
    lead2[lat.neighbors()] = -1
    syst.attach_lead(lead2)
    return syst


def _functions_and_orbitals(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.honeycomb(norbs=2, name=["a", "b"])
    sz = np.diag([1.0, -1.0])

    def onsite(site, mu, B):
        return (4 - mu) * np.eye(2) + B * site.pos[0] * sz

    def hop(a, b, phi):
        return -np.eye(2) * cmath.exp(1j * phi * (a.pos[0] + b.pos[0]) * (b.pos[1] - a.pos[1]))

    syst = _builder(dictionaries)
    syst[lat.shape(lambda p: abs(p[0]) < 6 and abs(p[1]) < 4, (0, 0))] = onsite
    syst[lat.neighbors()] = hop
    # Overwrites: a site value, some hoppings in the other direction, a conjugate.
    a, b = lat.a(0, 0), lat.b(0, 0)
    syst[a] = 2 * np.eye(2)
    syst[lat.b(1, 0), lat.a(1, 0)] = -0.5 * np.eye(2)
    syst[lat.b(2, 0), lat.a(2, 0)] = HermConjOfFunc(hop)
    syst[[lat.a(3, 0), lat.a(3, 1)]] = sz
    syst[lat.neighbors(2)] = -0.1j * sz
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((1, 0))))
    lead[lat.shape(lambda p: abs(p[1]) < 4, (0, 0))] = onsite
    lead[lat.neighbors()] = hop
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    assert a in syst and (a, b) in syst
    return syst


def _vectorized(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.square(norbs=1)

    def onsite(site, U):
        return U * np.cos(site.pos[:, 0])

    def hop(a, b, t):
        return -t * np.ones(len(a))

    syst = _builder(dictionaries, vectorize=True)
    syst[(lat(x, y) for x in range(9) for y in range(5))] = onsite
    syst[lat.neighbors()] = hop
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)), vectorize=True)
    lead[(lat(0, y) for y in range(5))] = 4
    lead[lat.neighbors()] = hop
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


def _mixed_families(dictionaries: bool) -> meso.Builder:
    square = meso.lattice.square(norbs=1, name="s")
    cubic = meso.lattice.cubic(norbs=1, name="c")
    chain = meso.lattice.chain(norbs=1, name="h")
    syst = _builder(dictionaries)
    syst[(cubic(x, y, z) for x in range(4) for y in range(3) for z in range(2))] = 6
    syst[cubic.neighbors()] = -1
    syst[(square(x, y) for x in range(-3, 0) for y in range(3))] = 4
    syst[square.neighbors()] = -1
    syst[(chain(x) for x in range(5, 9))] = 2
    syst[chain.neighbors()] = -1
    # Hoppings between families, one by one and as a list.
    syst[square(-1, 0), cubic(0, 0, 0)] = -0.5
    syst[[(chain(5), cubic(3, y, 0)) for y in range(3)]] = -0.3
    syst[meso.builder.HoppingKind((0, 1), square, square)] = -0.9  # overwrite
    lead = meso.Builder(meso.TranslationalSymmetry((0, 0, 1)))
    lead[(cubic(x, y, 0) for x in range(4) for y in range(3))] = 6
    lead[cubic.neighbors()] = -1
    syst.attach_lead(lead)
    lead2 = meso.Builder(meso.TranslationalSymmetry((1,)))
    lead2[chain(0)] = 2
    lead2[chain.neighbors()] = -1
    syst.attach_lead(lead2)
    return syst


def _holes_and_dangling(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.honeycomb(norbs=1)
    syst = _builder(dictionaries)
    syst[lat.shape(lambda p: abs(p[0]) < 8 and abs(p[1]) < 5, (0, 0))] = 0
    syst[lat.neighbors()] = -1
    # An antidot, removed as Kwant scripts do, then the dangling sites it leaves.
    del syst[(s for s in lat.shape(lambda p: p[0] ** 2 + p[1] ** 2 < 2.5**2, (0, 0))())]
    del syst[lat.a(3, 1)]
    syst.eradicate_dangling()
    syst[lat.a(3, 1)] = 0.5  # back, without its hoppings
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
    lead[lat.shape(lambda p: abs(p[1]) < 5, (0, 0))] = 0
    lead[lat.neighbors()] = -1
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


@pytest.mark.parametrize(
    "script, params",
    [
        (_square_with_leads, {}),
        (_disk_with_ribbons, {}),
        (_functions_and_orbitals, {"mu": 0.3, "B": 0.2, "phi": 0.05}),
        (_vectorized, {"U": 0.7, "t": 1.1}),
        (_mixed_families, {}),
        (_holes_and_dangling, {}),
    ],
)
def test_array_store_matches_dictionaries(script, params):
    _check(script, params)


def test_transmission_agrees_between_stores():
    fa = _disk_with_ribbons(False).finalized()
    fb = _disk_with_ribbons(True).finalized()
    for energy in (-0.7, 0.35, 1.2):
        ta = meso.smatrix(fa, energy).transmission(1, 0)
        tb = meso.smatrix(fb, energy).transmission(1, 0)
        assert ta == tb


def test_site_by_site_script_stays_in_the_store():
    """Kwant's tutorial loop: a site, then its hoppings to the sites before it, one by one
    (and a lookup): the store finds the new sites without merging its arrays, and the
    result is the dictionaries' result."""

    def script(dictionaries: bool) -> meso.Builder:
        lat = meso.lattice.square(norbs=1)
        syst = _builder(dictionaries)
        for x in range(30):
            for y in range(4):
                syst[lat(x, y)] = 4 if lat(x, y - 1) in syst else 3
                if y:
                    syst[lat(x, y), lat(x, y - 1)] = -1
                if x:
                    syst[lat(x - 1, y), lat(x, y)] = -1j
            syst[lat(x, 0)] = 2.5  # set again: keeps its place
            syst[lat(x, 1), lat(x, 0)] = -2  # set again, the other way round
        return syst

    bulk, dicts = script(False), script(True)
    assert bulk._bulk is not None and bulk._bulk.small_merges == 0
    _assert_same_system(bulk.finalized(), dicts.finalized(), {})
    _assert_same_builder(bulk, dicts)


def test_lookups_between_bulk_assignments_turn_to_dictionaries():
    """Lists of sites alternating with lookups would merge the arrays at every step: the
    Builder turns to its dictionaries, with the same result."""

    def script(dictionaries: bool) -> meso.Builder:
        lat = meso.lattice.square(norbs=1)
        syst = _builder(dictionaries)
        for x in range(40):
            syst[[lat(x, y) for y in range(3)]] = 4
            if x:
                syst[lat(x, 0), lat(x - 1, 0)] = -1
        return syst

    bulk, dicts = script(False), script(True)
    assert bulk._bulk is None
    _assert_same_system(bulk.finalized(), dicts.finalized(), {})
    _assert_same_builder(bulk, dicts)


def test_lookups_and_lengths_in_the_array_store():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(5) for y in range(5))] = 4
    syst[lat.neighbors()] = -1
    assert syst._bulk is not None
    assert len(syst) == 25 + 40
    assert lat(2, 2) in syst and lat(5, 5) not in syst
    assert syst[lat(1, 1)] == 4
    assert syst[lat(1, 1), lat(0, 1)] == -1
    assert (lat(0, 0), lat(1, 1)) not in syst
    syst[lat(1, 1), lat(0, 1)] = 1j
    assert syst[lat(0, 1), lat(1, 1)] == -1j  # the conjugate, read the other way
    assert "25 sites, 40 hoppings" in repr(syst)
    assert syst._bulk is not None
    with pytest.raises(KeyError, match="is not in the Builder"):
        syst[lat(9, 9)]
    with pytest.raises(KeyError, match="is not in the Builder"):
        syst[lat(0, 0), lat(2, 2)]


@pytest.mark.parametrize("dictionaries", [False, True])
def test_errors_are_the_same(dictionaries):
    lat = meso.lattice.square(norbs=1)
    syst = _builder(dictionaries)
    syst[(lat(x, 0) for x in range(3))] = 1
    with pytest.raises(KeyError, match=r"site Site\(.*\(5, 0\)\) is not in the Builder"):
        syst[[(lat(0, 0), lat(1, 0)), (lat(1, 0), lat(5, 0))]] = -1
    # The hopping before the bad one is set, as when they are set one by one.
    assert (lat(0, 0), lat(1, 0)) in syst
    with pytest.raises(ValueError, match="connects a site to itself"):
        syst[meso.builder.HoppingKind((0, 0), lat)] = -1
    with pytest.raises(TypeError, match="not a site"):
        syst[[lat(0, 0), (lat(0, 0), lat(1, 0))]] = 2
    lead = meso.Builder(meso.TranslationalSymmetry((0, 1)))
    lead[(lat(x, 0) for x in range(-1, 5))] = 1
    lead[lat.neighbors()] = -1
    with pytest.raises(ValueError, match="does not cut"):
        syst.attach_lead(lead)
    far = meso.Builder(meso.TranslationalSymmetry((0, 1)))
    far[meso.lattice.square(norbs=1, name="other")(0, 0)] = 1
    far[meso.lattice.square(norbs=1, name="other").neighbors()] = -1
    with pytest.raises(ValueError, match="does not overlap"):
        syst.attach_lead(far)


def test_tags_too_large_for_integer_keys():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    big = 2**40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        syst[[lat(0, 0), lat(big, big), lat(-big, 1)]] = 1
        syst[lat(1, 0)] = 2
        assert lat(big, big) in syst
    syst[lat.neighbors()] = -1
    assert len(list(syst.hoppings())) == 1
    assert syst.finalized().sites[0] == lat(-big, 1)


@pytest.mark.parametrize("dictionaries", [False, True])
def test_deleting_an_absent_site(dictionaries):
    lat = meso.lattice.chain(norbs=1)
    syst = _builder(dictionaries)
    syst[(lat(x) for x in range(5))] = 1
    syst[lat.neighbors()] = -1
    with pytest.raises(KeyError, match=r"\(7,\)\) is not in the Builder"):
        del syst[[lat(0), lat(7), lat(1)]]
    assert sorted(s.tag[0] for s in syst.sites()) == [1, 2, 3, 4]
    with pytest.raises(KeyError, match="is not in the Builder"):
        del syst[[lat(2), lat(2)]]
    assert sorted(s.tag[0] for s in syst.sites()) == [1, 3, 4]
    assert list(syst.hoppings()) == [(lat(4), lat(3))]


def _fill_script(dictionaries: bool) -> meso.Builder:
    lat = meso.lattice.honeycomb(norbs=1)
    template = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    template[lat.a(0, 0)] = 0.3
    template[lat.b(0, 0)] = -0.3

    def hop(a, b, t):
        return -t

    template[lat.neighbors()] = hop
    template[lat.neighbors(2)] = -0.05j
    syst = _builder(dictionaries)
    syst[lat.a(0, 0)] = 1.5  # already here: kept, and linked to the filled sites
    added = syst.fill(
        template, lambda s: s.pos[0] ** 2 / 4 + s.pos[1] ** 2 < 36, lat.a(1, 0), max_sites=5000
    )
    syst.fill(template, lambda s: abs(s.pos[0] - 14) < 3 and abs(s.pos[1]) < 2, (14, 0))
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
    lead.fill(template, lambda s: abs(s.pos[1]) < 3, (0, 0))
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    syst._added = added  # type: ignore[attr-defined]
    return syst


def test_fill_into_the_array_store_adds_what_the_walk_adds():
    bulk, dicts = _fill_script(False), _fill_script(True)
    assert bulk._bulk is not None
    assert sorted(bulk._added) == sorted(dicts._added)
    fa, fb = bulk.finalized(), dicts.finalized()
    assert tuple(fa.sites) == tuple(fb.sites)
    params = {"t": 1.3}
    ha = fa.hamiltonian_submatrix(params=params, sparse=True).toarray()
    hb = fb.hamiltonian_submatrix(params=params, sparse=True).toarray()
    assert np.array_equal(ha, hb)
    for ia, ib in zip(fa.lead_interfaces, fb.lead_interfaces):
        assert np.array_equal(ia, ib)
    assert dict(bulk.site_value_pairs()) == dict(dicts.site_value_pairs())
    pairs_a = {frozenset(p): (p, v) for p, v in bulk.hopping_value_pairs()}
    pairs_b = {frozenset(p): (p, v) for p, v in dicts.hopping_value_pairs()}
    assert pairs_a.keys() == pairs_b.keys()
    for key, (pa, va) in pairs_a.items():
        pb, vb = pairs_b[key]
        assert pa == pb and _same_value(va, vb)


@pytest.mark.parametrize("dictionaries", [False, True])
def test_fill_beyond_max_sites(dictionaries):
    lat = meso.lattice.square(norbs=1)
    template = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    template[lat(0, 0)] = 4
    template[lat.neighbors()] = -1
    syst = _builder(dictionaries)
    with pytest.raises(RuntimeError, match="without closing the shape"):
        syst.fill(template, lambda s: True, lat(0, 0), max_sites=300)


@pytest.mark.parametrize("dictionaries", [False, True])
def test_fill_of_a_single_site_and_of_nothing(dictionaries):
    """Walks whose front finds nothing new: a shape holding only the start site, and a
    start already in the Builder."""
    lat = meso.lattice.square(norbs=1)
    template = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    template[lat(0, 0)] = 4
    template[lat.neighbors()] = -1
    syst = _builder(dictionaries)
    added = syst.fill(template, lambda s: s.tag == (2, 3), lat(2, 3))
    assert added == [lat(2, 3)] and list(syst.sites()) == [lat(2, 3)]
    with pytest.warns(RuntimeWarning, match="already in this Builder"):
        assert syst.fill(template, lambda s: True, lat(2, 3)) == []
    # A template without hoppings, periodic in one of three directions.
    cubic = meso.lattice.cubic(norbs=1)
    lonely = meso.Builder(meso.TranslationalSymmetry((3, 1, -2)))
    lonely[cubic(0, 0, 0)] = None
    other = _builder(dictionaries)
    assert other.fill(lonely, lambda s: True, cubic(3, 1, -2)) == [cubic(3, 1, -2)]
    assert len(other) == 1


def test_tags_beyond_int64_go_to_the_dictionaries():
    """A tag that no int64 holds moves the Builder to its dictionaries; nothing is lost."""
    lat = meso.lattice.square(norbs=1)
    for first in (lat(2**70, 0), lat(0, 0)):
        syst = meso.Builder()
        syst[(lat(x, 1) for x in range(3))] = 2
        syst[first] = 1
        syst[lat(2**70, 0) if first == lat(0, 0) else lat(0, 0)] = 1
        syst[[lat(2**80, 5), lat(1, 1)]] = 3
        assert len(syst) == 6
        assert syst[lat(2**70, 0)] == 1 and syst[lat(2**80, 5)] == 3 and syst[lat(0, 1)] == 2
        assert len(syst.finalized().sites) == 6


@pytest.mark.parametrize("dictionaries", [False, True])
def test_hoppings_to_a_new_site_after_sites_set_in_bulk(dictionaries):
    """A site set alone after sites set in bulk, then hoppings to it in a list that fails
    later on: the hoppings before the failure are set, to the right sites. (The store's
    number for the new site went stale when the bulk sites were merged in between.)"""
    lat = meso.lattice.square(norbs=1)
    syst = _builder(dictionaries)
    syst[lat.shape(lambda p: p[0] ** 2 + p[1] ** 2 < 16, (0, 0))] = 1.5
    syst[lat(1, 2)] = 2.0
    with pytest.raises(KeyError, match="is not in the Builder"):
        syst[[(lat(1, 2), lat(0, 1)), (lat(-3, -3), lat(3, 3))]] = -0.3
    assert syst[lat(1, 2), lat(0, 1)] == -0.3
    assert len(syst) == 46
    syst[lat(2, 2)] = 2.0
    syst[lat(2, 2), lat(1, 2)] = -1
    fsys = syst.finalized()
    ham = fsys.hamiltonian_submatrix()
    index = fsys.id_by_site
    assert ham[index[lat(2, 2)], index[lat(1, 2)]] == -1
    assert ham[index[lat(1, 2)], index[lat(0, 1)]] == -0.3


def _random_script(seed: int, dictionaries: bool) -> tuple[meso.Builder, list[Any]]:
    """Random Builder operations (sites, lists, shapes, hopping kinds, hoppings one by one
    and in lists, conjugated values, deletions, dangling sites, lookups, a lead), with the
    errors they raise: what a script does, in any order."""
    import random

    rnd = random.Random(seed)
    if seed % 2:
        lat: Any = meso.lattice.honeycomb(norbs=1, name=["a", "b"])
        families = lat.sublattices
        period = lat.vec((-1, 0))
    else:
        lat = meso.lattice.square(norbs=1)
        families = [lat]
        period = (-1, 0)

    def site() -> Any:
        return rnd.choice(families)(rnd.randint(-3, 3), rnd.randint(-3, 3))

    def hop(a, b, t):
        return -t

    syst = _builder(dictionaries)
    log: list[Any] = []
    for _ in range(rnd.randint(5, 40)):
        op = rnd.random()
        try:
            if op < 0.25:
                value = rnd.choice([1.0, 2.0, 3.5])
                syst[site()] = value
            elif op < 0.4:
                value = rnd.choice([0.5, 4.0])
                syst[[site() for _ in range(rnd.randint(0, 10))]] = value
            elif op < 0.5:
                radius = rnd.choice([2, 3, 4])
                syst[lat.shape(lambda p, r=radius: p[0] ** 2 + p[1] ** 2 < r**2, (0, 0))] = 1.5
            elif op < 0.62:
                syst[lat.neighbors()] = rnd.choice([-1.0, hop])
            elif op < 0.72:
                a, b = site(), site()
                syst[a, b] = rnd.choice([-0.5, -0.7j])
            elif op < 0.78:
                syst[[(site(), site()) for _ in range(rnd.randint(1, 12))]] = -0.3
            elif op < 0.84:
                del syst[site()]
            elif op < 0.88:
                del syst[[site() for _ in range(3)]]
            elif op < 0.92:
                syst.eradicate_dangling()
            elif op < 0.96:
                s = site()
                present = s in syst
                log.append(("site", present, syst[s] if present else None))
            elif op < 0.99:
                a, b = site(), site()
                log.append(("hopping", (a, b) in syst))
                if (a, b) in syst:
                    syst[b, a] = syst[a, b]  # a conjugate, set back
            else:
                lead = meso.Builder(meso.TranslationalSymmetry(period))
                lead[lat.shape(lambda p: abs(p[1]) < 1.1, (0, 0))] = 0.5
                lead[lat.neighbors()] = -1
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    log.append(("lead", sorted(syst.attach_lead(lead))))
        except (KeyError, ValueError, TypeError) as error:
            log.append((type(error).__name__, str(error)))
    log.append(len(syst))
    return syst, log


@pytest.mark.parametrize("seed", range(40))
def test_random_operations_give_what_the_dictionaries_give(seed):
    bulk, log_bulk = _random_script(seed, False)
    dicts, log_dicts = _random_script(seed, True)
    assert log_bulk == log_dicts
    try:
        fa = bulk.finalized()
    except ValueError as error:
        with pytest.raises(ValueError, match=re.escape(str(error)[:40])):
            dicts.finalized()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", meso.system.UnusedParameterWarning)
            _assert_same_system(fa, dicts.finalized(), {"t": 1.0})
    _assert_same_builder(bulk, dicts)
