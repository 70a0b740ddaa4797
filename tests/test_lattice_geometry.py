"""Lattice geometry in any length unit: neighbour shells, shapes, wires, symmetries, tags.

Each test compares against a brute-force enumeration or against the same lattice in
another length unit (a geometry that depends on the unit is a bug: SI users write
``a = 1e-9``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import lattice
from mesoscopic.builder import TranslationalSymmetry

SCALES = (1.0, 1e-10)


def _lattices(a: float) -> dict[str, lattice.Monatomic | lattice.Polyatomic]:
    return {
        "square": lattice.square(a, norbs=1),
        "honeycomb": lattice.honeycomb(a, norbs=1),
        # An oblique lattice with a two-site basis: no symmetry hides a wrong shell.
        "general": lattice.general(
            [[a, 0], [0.3 * a, 1.1 * a]], [[0, 0], [0.4 * a, 0.2 * a]], norbs=1
        ),
    }


def _kind_signature(lat: lattice.Monatomic | lattice.Polyatomic, n: int) -> list[tuple]:
    subs = lat.sublattices
    return [(k.delta, subs.index(k.family_a), subs.index(k.family_b)) for k in lat.neighbors(n)]


@pytest.mark.parametrize("name", ["square", "honeycomb", "general"])
def test_neighbor_shells_do_not_depend_on_the_length_unit(name: str) -> None:
    unit, tiny = (_lattices(a)[name] for a in SCALES)
    for n in (1, 2, 3):
        assert _kind_signature(tiny, n) == _kind_signature(unit, n)


@pytest.mark.parametrize("name", ["square", "honeycomb", "general"])
def test_hamiltonian_of_a_flake_does_not_depend_on_the_length_unit(name: str) -> None:
    hamiltonians = []
    for a in SCALES:
        lat = _lattices(a)[name]
        syst = meso.Builder()
        syst[lat.shape(lambda pos, a=a: np.hypot(*pos) < 3.2 * a, (0, 0))] = 0.5
        syst[lat.neighbors(1)] = -1.0
        syst[lat.neighbors(2)] = -0.1
        hamiltonians.append(syst.finalized().hamiltonian_submatrix())
    assert hamiltonians[0].shape == hamiltonians[1].shape
    np.testing.assert_array_equal(hamiltonians[0], hamiltonians[1])


def test_neighbor_shells_of_known_lattices() -> None:
    # Counts of hopping kinds (each pair once) per shell, shell 0 being each site itself.
    assert [len(lattice.honeycomb(1e-10).neighbors(n)) for n in range(5)] == [2, 3, 6, 3, 6]
    assert [len(lattice.chain(1e-10).neighbors(n)) for n in range(4)] == [1, 1, 1, 1]
    tall = lattice.general([(0, 1e8, 0, 0), (0, 0, 1e8, 0)])
    assert [len(tall.neighbors(n)) for n in range(5)] == [1, 2, 2, 2, 4]


@pytest.mark.parametrize("a", [1.0, 1e-10, 1e-13])
def test_closest_is_the_nearest_site_at_any_scale(a: float) -> None:
    lat = lattice.general([[a, 0], [0.5 * a, 0.8 * a]])
    rng = np.random.default_rng(7)
    for pos in rng.uniform(-4 * a, 4 * a, size=(300, 2)):
        tag = lat.closest(pos)
        best = min(
            np.linalg.norm(lat(*t).pos - pos) for t in itertools.product(range(-7, 8), repeat=2)
        )
        assert np.linalg.norm(lat(*tag).pos - pos) <= best * (1 + 1e-9)


def test_array_builder_fill_box_edges_scale_with_the_lattice() -> None:
    counts = []
    for a in SCALES:
        syst = meso.ArrayBuilder()
        counts.append(
            syst.fill(
                lattice.square(a, norbs=1),
                lambda pos: np.ones(len(pos), bool),
                ((0, 0), (5 * a, 3 * a)),
                onsite=0.0,
            )
        )
    assert counts == [24, 24]


# ---- shapes and wires of leads ----------------------------------------------------------


def _fundamental_domain_inside(lat, sym, inside, reach=12):
    """Brute force: sites of the fundamental domain inside the shape, in a large box."""
    found = set()
    for sub in lat.sublattices:
        for tag in itertools.product(range(-reach, reach + 1), repeat=2):
            site = sub(*tag)
            if inside(site.pos):
                found.add(sym.to_fd(site))
    return found


CASES = [
    ("square", (0, 1)),
    ("square", (-1, 0)),
    ("square", (1, 1)),
    ("square", (2, -1)),
    ("honeycomb", (1, 0)),
    ("honeycomb", (1, -1)),
    ("honeycomb", (-1, 2)),
]


@pytest.mark.parametrize(("name", "element"), CASES)
def test_shape_called_with_a_bare_symmetry_fills_one_period(name, element) -> None:
    lat = _lattices(1.0)[name]
    period = lat.sublattices[0].vec(element)
    sym = TranslationalSymmetry(period)
    direction = period / np.linalg.norm(period)

    def strip(pos):  # a strip of half-width 2.2 along the period: invariant under it
        return abs(pos[0] * direction[1] - pos[1] * direction[0]) < 2.2

    sites = list(lat.shape(strip, (0, 0))(sym))
    assert len(sites) == len(set(sites))
    assert set(sites) == _fundamental_domain_inside(lat, sym, strip)
    # The same as a key of a lead Builder with that symmetry.
    lead = meso.Builder(sym)
    lead[lat.shape(strip, (0, 0))] = 0.0
    assert set(lead.sites()) == set(sites)


@pytest.mark.parametrize(("name", "element"), CASES)
def test_wire_runs_along_the_lead_period(name, element) -> None:
    lat = _lattices(1.0)[name]
    period = lat.sublattices[0].vec(element)
    sym = TranslationalSymmetry(period)
    direction = period / np.linalg.norm(period)
    center = np.array([0.3, -0.2])

    def cylinder(pos):
        rel = pos - center
        perp = rel - (rel @ direction) * direction
        return perp @ perp <= 2.5**2

    expected = _fundamental_domain_inside(lat, sym, cylinder)
    assert set(lat.wire(center, 2.5)(sym)) == expected
    lead = meso.Builder(sym)
    lead[lat.wire(center, 2.5)] = 0.0
    assert set(lead.sites()) == expected


def test_wire_needs_a_lead_symmetry() -> None:
    lat = lattice.square()
    with pytest.raises(ValueError, match="TranslationalSymmetry of one period"):
        list(lat.wire((0, 0), 2.0)())
    with pytest.raises(ValueError, match="radius"):
        lat.wire((0, 0), -1.0)


# ---- translational symmetry -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "element"), [("square", (2, 1)), ("square", (-1, 3)), ("honeycomb", (-1, 2))]
)
def test_reversed_symmetry_keeps_the_fundamental_domain(name, element) -> None:
    lat = _lattices(1.0)[name]
    sym = TranslationalSymmetry(lat.sublattices[0].vec(element))
    rsym = sym.reversed()
    np.testing.assert_array_equal(rsym.periods, -sym.periods)
    for sub in lat.sublattices:
        for tag in itertools.product(range(-6, 7), repeat=2):
            site = sub(*tag)
            assert rsym.to_fd(site) == sym.to_fd(site)
            assert rsym.which(site) == -sym.which(site)
            assert rsym.act(1, site) == sym.act(-1, site)
            assert rsym.which(rsym.act(3, site)) == rsym.which(site) + 3


def test_reversed_lead_has_the_same_unit_cell() -> None:
    lat = lattice.honeycomb(norbs=1)
    period = lat.vec((-1, 2))
    across = np.array([period[1], -period[0]]) / np.linalg.norm(period)
    lead = meso.Builder(TranslationalSymmetry(period))
    lead[lat.shape(lambda pos: abs(pos @ across) < 2.6, (0, 0))] = 0.0
    lead[lat.neighbors()] = -1.0
    assert set(lead.reversed().sites()) == set(lead.sites())


def test_group_elements_must_be_whole_periods() -> None:
    lat = lattice.square()
    sym = TranslationalSymmetry((1, 0))
    site = lat(0, 0)
    # As in Kwant, group elements must be of an integer type: even an integral float
    # is refused.
    for element in (1.5, (1.5,), (0.999,), np.float64(0.5), (1.0,), np.float64(-3.0)):
        with pytest.raises(ValueError, match="integer"):
            sym.act(element, site)
    assert sym.act(np.int32(-3), site) == lat(-3, 0)
    assert sym.act(np.array([2]), site) == lat(2, 0)
    assert sym.act((1,), site, lat(5, 5)) == (lat(1, 0), lat(6, 5))
    with pytest.raises(ValueError, match="1 integer"):
        sym.act((1, 0), site)


# ---- tags ---------------------------------------------------------------------------


def test_float_tags_within_rounding_are_rounded() -> None:
    lat = lattice.square()
    assert lat(30.000000000000004, 0) == lat(30, 0)
    assert lat(29.999999999999996, -1.0).tag == (30, -1)
    assert lat(np.float64(3 * 0.1 / 0.01), 2).tag == (30, 2)
    honeycomb = lattice.honeycomb()
    assert honeycomb.b(1e9 + 1e-7, 0).tag == (1_000_000_000, 0)
    for bad in (0.5, 2.01, np.nan, "1"):
        with pytest.raises(ValueError, match="integers"):
            lat(bad, 0)


# repr(site) and repr(family), printed by Kwant 1.5.0 for the same lattices: Kwant scripts
# seed disorder with digest functions of repr(site), so these strings are the realization.
KWANT_REPRS = [
    (
        lambda: lattice.square(),
        (0, 1),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], '', None), "
        "array([0, 1]))",
    ),
    (
        lambda: lattice.square(2.5, name="a", norbs=2),
        (-1, 2),
        "Site(kwant.lattice.Monatomic([[2.5, 0.0], [0.0, 2.5]], [0.0, 0.0], 'a', 2), "
        "array([-1, 2]))",
    ),
    (
        lambda: lattice.chain(norbs=1),
        (-1,),
        "Site(kwant.lattice.Monatomic([[1.0]], [0.0], '', 1), array([-1]))",
    ),
    (
        lambda: lattice.cubic(norbs=1),
        (-1, 2, 2),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "
        "[0.0, 0.0, 0.0], '', 1), array([-1, 2, 2]))",
    ),
    (
        lambda: lattice.honeycomb().sublattices[1],
        (0, 0),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0], [0.5, 0.8660254037844386]], "
        "[0.0, 0.5773502691896258], '1', None), array([0, 0]))",
    ),
    (
        lambda: lattice.honeycomb(0.5, name=["a", "b"], norbs=[1, 2]).b,
        (2, -1),
        "Site(kwant.lattice.Monatomic([[0.5, 0.0], [0.25, 0.4330127018922193]], "
        "[0.0, 0.2886751345948129], 'b', 2), array([2, -1]))",
    ),
    (
        lambda: lattice.kagome(norbs=1).sublattices[2],
        (-1, 2),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0], [0.5, 0.8660254037844386]], "
        "[0.25, 0.4330127018922193], '2', 1), array([-1, 2]))",
    ),
    (
        lambda: lattice.general([[1, 0], [0, 1]], [[0.1, 0.2]]).sublattices[0],
        (0, 0),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0], [0.0, 1.0]], [0.1, 0.2], '0', None), "
        "array([0, 0]))",
    ),
    (
        lambda: lattice.general([[1, 0], [0, 1]], [[0, 0], [0.5, 0.5]], name="x").sublattices[1],
        (0, 0),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0], [0.0, 1.0]], [0.5, 0.5], 'x1', None), "
        "array([0, 0]))",
    ),
    (
        lambda: lattice.Monatomic([[1e-5, 0], [0, 1e-4]], offset=[-0.0, 1 / 3], norbs=1),
        (3, -4),
        "Site(kwant.lattice.Monatomic([[1e-05, 0.0], [0.0, 0.0001]], "
        "[-0.0, 0.3333333333333333], '', 1), array([3, -4]))",
    ),
    (
        lambda: lattice.Monatomic([[1, 0]], offset=[0.3, 0.2], name="q", norbs=3),
        (-1,),
        "Site(kwant.lattice.Monatomic([[1.0, 0.0]], [0.3, 0.2], 'q', 3), array([-1]))",
    ),
]


@pytest.mark.parametrize(("make", "tag", "expected"), KWANT_REPRS)
def test_site_and_family_repr_are_kwants_text(make, tag, expected) -> None:
    family = make()
    site = family(*tag)
    assert repr(site) == expected
    assert repr(family) == expected[len("Site(") : expected.rindex(", array(")]
    # The text determines the family: evaluating it names an equal lattice.
    assert eval(repr(family), {"kwant": meso}) == family


def test_site_and_lattice_str_are_kwants_text() -> None:
    honeycomb = lattice.honeycomb(0.5, name=["a", "b"], norbs=[1, 2])
    assert str(honeycomb) == "<Polyatomic lattice with sublattices a, b>"
    assert str(honeycomb.b(2, -1)) == "<Site [2 -1] of b>"
    assert str(lattice.square(2.5, name="a", norbs=2)) == "<Monatomic lattice a with 2 orbitals>"
    assert str(lattice.Monatomic([[1e-5, 0], [0, 1e-4]], offset=[-0.0, 1 / 3], norbs=1)) == (
        "<unnamed Monatomic lattice, vectors [1e-05 0.0], [0.0 0.0001], origin "
        "[-0.0 0.3333333333333333], with 1 orbitals>"
    )
    assert str(lattice.chain()) == "<unnamed Monatomic lattice, vectors [1.0], origin [0.0]>"


def test_digest_disorder_of_repr_site_is_kwants_realization() -> None:
    # gauss(repr(site)) and uniform(repr(site), salt="4") printed by Kwant 1.5.0.
    lat = lattice.square(norbs=1)
    kwant_values = {
        (0, 1): (-2.481571546592729, 0.6248156597184475),
        (3, -2): (1.4166037479184568, 0.3689857316216102),
    }
    for tag, (gauss, uniform) in kwant_values.items():
        assert meso.digest.gauss(repr(lat(*tag))) == gauss
        assert meso.digest.uniform(repr(lat(*tag)), salt="4") == uniform
