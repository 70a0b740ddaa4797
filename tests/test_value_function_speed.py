"""Evaluation of per-site value functions in bulk: same values, same errors, cached values.

A term group calls its value function once per term in a tight loop and converts all
values at once; these tests pin that the result is exactly the term-by-term evaluation
(and a Hamiltonian written out by hand), that errors still name the failing term, and
that the remembered values of a group are reused only while its parameters are unchanged.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic.system import TermGroup, UserCodeError


def wire_in_field(width: int = 3, length: int = 4) -> tuple[object, object, object]:
    """A square-lattice wire with Python value functions (onsite disorder, Peierls)."""
    lat = meso.lattice.square(norbs=1)

    def onsite(site, disorder):
        x, y = site.tag
        return 4.0 + disorder[x, y]

    def hopping(site1, site2, phi):
        (x1, y1), (x2, y2) = site1.pos, site2.pos
        return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = hopping
    return syst.finalized(), onsite, hopping


def hamiltonian_by_hand(fsys, onsite, hopping, params) -> np.ndarray:
    """The Hamiltonian written element by element from the value functions."""
    n = len(fsys.sites)
    h = np.zeros((n, n), complex)
    for i, site in enumerate(fsys.sites):
        h[i, i] = onsite(site, params["disorder"])
    for i, j in zip(*fsys.hopping_indices):
        value = hopping(fsys.sites[i], fsys.sites[j], params["phi"])
        h[i, j] = value
        h[j, i] = np.conj(value)
    return h


def test_hamiltonian_is_the_one_written_by_hand():
    fsys, onsite, hopping = wire_in_field()
    params = dict(disorder=np.random.default_rng(3).uniform(-1, 1, (4, 3)), phi=0.3)
    np.testing.assert_array_equal(
        fsys.hamiltonian_submatrix(params=params),
        hamiltonian_by_hand(fsys, onsite, hopping, params),
    )


# Values a scalar value function may return for one-orbital sites, and what the
# term-by-term path makes of them.
ONE_ORBITAL_VALUES = {
    "float": lambda k: 0.5 * k,
    "int": lambda k: k,
    "bool": lambda k: bool(k % 2),
    "complex": lambda k: complex(k, -k),
    "numpy scalar": lambda k: np.float64(k) * 1j,
    "0-d array": lambda k: np.array(0.25 * k),
    "one-element vector": lambda k: np.array([k + 1.0]),
    "1 x 1 matrix": lambda k: [[k - 1.0]],
    "mixed scalars and matrices": lambda k: k if k % 2 else np.array([[2.0 * k]]),
}


def chain_group(value, n: int = 6, shape=(1, 1), onsite: bool = True) -> TermGroup:
    lat = meso.lattice.chain(norbs=shape[0])
    sites = [lat(k) for k in range(n)] if onsite else [(lat(k + 1), lat(k)) for k in range(n)]
    rows = list(range(n)) if onsite else list(range(1, n + 1))
    return TermGroup(rows, list(range(n)), value, shape, sites, onsite=onsite)


@pytest.mark.parametrize("kind", sorted(ONE_ORBITAL_VALUES))
@pytest.mark.parametrize("onsite", [True, False])
def test_bulk_values_equal_term_by_term(kind, onsite):
    make = ONE_ORBITAL_VALUES[kind]
    if onsite:

        def value(site, scale):
            return make(site.tag[0]) if scale == 1 else None

    else:

        def value(a, b, scale):
            return make(b.tag[0]) if scale == 1 else None

    group = chain_group(value, onsite=onsite)
    fast = group.blocks({"scale": 1})
    np.testing.assert_array_equal(fast, group._blocks_term_by_term({"scale": 1}))
    assert fast.shape == (6, 1, 1) and fast.dtype == complex


def test_bulk_matrix_values_equal_term_by_term():
    def value(site, t):
        k = site.tag[0]
        return [[t * k, 1j * k], [-1j * k, -t]] if k % 2 else np.array([[k, 0], [0, t]])

    group = chain_group(value, shape=(2, 2))
    np.testing.assert_array_equal(group.blocks({"t": 0.5}), group._blocks_term_by_term({"t": 0.5}))


def error_text(call) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "bad, expected",
    [
        (lambda: 1 / 0, "ZeroDivisionError"),
        (lambda: "1.0", "must be a number or a matrix of numbers, got '1.0'"),
        (lambda: None, "lack a return statement"),
        (lambda: float("nan"), "values must be finite"),
        (lambda: np.array([[1.0, np.inf]]), "has shape (1, 2), expected (1, 1)"),
        (lambda: np.array([[np.inf]]), "contains NaN or inf"),
    ],
)
def test_error_in_one_term_names_that_term(bad, expected):
    """A failure at the fourth term reads as it did when every term was called alone."""

    def value(site, t):
        return bad() if site.tag[0] == 3 else t

    group = chain_group(value)
    kind, message = error_text(lambda: group.blocks({"t": 1.0}))
    assert (kind, message) == error_text(lambda: group._blocks_term_by_term({"t": 1.0}))
    assert expected in message and "(3,)" in message
    if expected == "ZeroDivisionError":
        assert kind is UserCodeError and "t=1.0" in message


# --------------------------------------------------------------------------------------
# Site positions
# --------------------------------------------------------------------------------------


def test_site_position_is_computed_once_and_handed_out_as_a_copy():
    lat = meso.lattice.square(norbs=1)
    compute = lat.pos
    calls = []

    def counting_pos(tag):
        calls.append(tag)
        return compute(tag)

    lat.pos = counting_pos
    site = lat(3, -2)
    first = site.pos
    np.testing.assert_array_equal(first, [3.0, -2.0])
    first += 10.0  # the caller's own array
    np.testing.assert_array_equal(site.pos, [3.0, -2.0])
    assert len(calls) == 1
    plain = meso.lattice.square(norbs=1)(3, -2)
    _ = plain.pos
    copy = pickle.loads(pickle.dumps(plain))
    assert copy == plain == site and hash(copy) == hash(plain) == hash(site)
    np.testing.assert_array_equal(copy.pos, [3.0, -2.0])
    with pytest.raises(AttributeError, match="immutable"):
        site._pos = np.zeros(2)


def test_site_position_of_a_family_without_positions_still_raises():
    family = meso.lattice.SiteFamily("no positions", "plain", 1)
    with pytest.raises(NotImplementedError, match="no positions"):
        _ = family(1, 2).pos
