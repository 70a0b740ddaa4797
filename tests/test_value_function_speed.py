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


def onsite(site, disorder):
    x, y = site.tag
    return 4.0 + disorder[x, y]


def hopping(site1, site2, phi):
    (x1, y1), (x2, y2) = site1.pos, site2.pos
    return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)


def wire_in_field(width: int = 3, length: int = 4) -> tuple[object, object, object]:
    """A square-lattice wire with Python value functions (onsite disorder, Peierls)."""
    lat = meso.lattice.square(norbs=1)
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


# --------------------------------------------------------------------------------------
# Values remembered between evaluations
# --------------------------------------------------------------------------------------


def counted_wire(width: int = 3, length: int = 4):
    """The wire in a field, counting the calls of its two value functions."""
    calls = {"onsite": 0, "hopping": 0}
    lat = meso.lattice.square(norbs=1)

    def onsite(site, disorder):
        calls["onsite"] += 1
        x, y = site.tag
        return 4.0 + disorder[x, y]

    def hopping(site1, site2, phi):
        calls["hopping"] += 1
        (x1, y1), (x2, y2) = site1.pos, site2.pos
        return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = hopping
    return syst.finalized(), onsite, hopping, calls


def test_unchanged_parameters_reuse_values_and_changed_ones_reevaluate():
    fsys, onsite, hopping, calls = counted_wire()
    n_sites, n_hoppings = len(fsys.sites), len(fsys.hopping_indices[0])
    disorder = np.random.default_rng(5).uniform(-1, 1, (4, 3))
    params = dict(disorder=disorder, phi=0.2)
    first = fsys.hamiltonian_submatrix(params=params)
    assert calls == {"onsite": n_sites, "hopping": n_hoppings}

    # The same values (a new dict, an equal copy of the array): nothing is called.
    np.testing.assert_array_equal(
        fsys.hamiltonian_submatrix(params=dict(disorder=disorder.copy(), phi=0.2)), first
    )
    assert calls == {"onsite": n_sites, "hopping": n_hoppings}

    # A new disorder realization in the same field: only the onsite function runs.
    other = dict(disorder=disorder + 1.0, phi=0.2)
    h = fsys.hamiltonian_submatrix(params=other)
    assert calls == {"onsite": 2 * n_sites, "hopping": n_hoppings}
    np.testing.assert_array_equal(h, hamiltonian_by_hand(fsys, onsite, hopping, other))

    # The array modified in place is a changed parameter.
    disorder[1, 2] += 0.5
    before = dict(calls)
    h = fsys.hamiltonian_submatrix(params=params)
    assert calls == {"onsite": before["onsite"] + n_sites, "hopping": before["hopping"]}
    np.testing.assert_array_equal(h, hamiltonian_by_hand(fsys, onsite, hopping, params))

    # A changed field re-evaluates the hoppings; -0.0 is not 0.0 to a pure function.
    for phi in (0.3, 0.0, -0.0):
        before = calls["hopping"]
        fsys.hamiltonian_submatrix(params=dict(params, phi=phi))
        assert calls["hopping"] == before + n_hoppings
    # An int is not the float of the same value (a function may tell them apart).
    before = calls["hopping"]
    fsys.hamiltonian_submatrix(params=dict(params, phi=0))
    assert calls["hopping"] == before + n_hoppings


def test_values_are_remembered_in_a_disorder_loop_through_the_solver():
    lat = meso.lattice.square(norbs=1)
    calls = {"hopping": 0}

    def hopping(a, b, phi):
        calls["hopping"] += 1
        return -np.exp(-1j * phi * (a.pos[0] - b.pos[0]) * (a.pos[1] + b.pos[1]) / 2)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(5) for y in range(3))] = lambda site, disorder: disorder[
        site.tag
    ]
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 0.0
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    rng = np.random.default_rng(2)
    transmissions, counts = [], []
    for _ in range(3):
        params = dict(disorder=rng.uniform(-0.5, 0.5, (5, 3)), phi=0.05)
        transmissions.append(meso.smatrix(fsys, 1.0, params=params).transmission(1, 0))
        counts.append(calls["hopping"])
    assert counts[0] > 0 and counts[1] == counts[2] == counts[0]
    assert len(set(transmissions)) == 3  # the disorder did change


def test_no_reuse_for_functions_without_parameters_or_with_stateful_ones():
    lat = meso.lattice.chain(norbs=1)
    state = {"shift": 0.0}

    def reads_a_global(site):
        return state["shift"]

    def draws(site, rng):
        return rng.uniform()

    def takes_a_list(site, values):
        return values[site.tag[0]]

    for value, params in [
        (reads_a_global, {}),
        (draws, {"rng": np.random.default_rng(1)}),
        (takes_a_list, {"values": [0.0, 1.0]}),
    ]:
        syst = meso.Builder()
        syst[(lat(x) for x in range(2))] = value
        fsys = syst.finalized()
        first = fsys.hamiltonian_submatrix(params=params)
        state["shift"] = 1.0
        if value is takes_a_list:
            params["values"][0] = 2.0
        second = fsys.hamiltonian_submatrix(params=params)
        assert not np.array_equal(first, second), value.__name__
        state["shift"] = 0.0


def test_objects_compare_by_identity_and_tuples_by_value():
    lat = meso.lattice.chain(norbs=1)
    calls = []

    def onsite(site, potential, offset):
        calls.append(site)
        return potential(site.tag[0]) + offset[0]

    syst = meso.Builder()
    syst[(lat(x) for x in range(3))] = onsite
    fsys = syst.finalized()

    def potential(x):
        return 0.5 * x

    fsys.hamiltonian_submatrix(params=dict(potential=potential, offset=(1.0, "a")))
    fsys.hamiltonian_submatrix(params=dict(potential=potential, offset=(1.0, "a")))
    assert len(calls) == 3
    h = fsys.hamiltonian_submatrix(params=dict(potential=lambda x: 0.5 * x, offset=(1.0, "a")))
    assert len(calls) == 6
    np.testing.assert_array_equal(np.diag(h).real, [1.0, 1.5, 2.0])
    fsys.hamiltonian_submatrix(params=dict(potential=potential, offset=(2.0, "a")))
    assert len(calls) == 9


def test_remembered_values_are_read_only_and_not_pickled():
    fsys, _, _ = wire_in_field()
    params = dict(disorder=np.zeros((4, 3)), phi=0.1)
    reference = fsys.hamiltonian_submatrix(params=params)
    group = fsys._onsite[0]
    blocks = group.blocks(params)
    with pytest.raises(ValueError, match="read-only"):
        blocks[0, 0, 0] = 1.0
    copy = pickle.loads(pickle.dumps(fsys))
    assert all(g._memo is None for g in copy._onsite + copy._hoppings)
    assert hash(fsys) == hash(fsys) and fsys.content_digest() == copy.content_digest()
    with pytest.raises(AttributeError, match="immutable"):
        group._memo = None
    np.testing.assert_array_equal(fsys.hamiltonian_submatrix(params=params), reference)


def test_vectorized_function_returning_its_own_array_is_not_frozen():
    lat = meso.lattice.chain(norbs=1)
    own = np.arange(4.0) + 0j

    def onsites(sites, scale):
        return own * scale

    def same_array(sites, scale):
        return own

    for value in (onsites, same_array):
        syst = meso.Builder(vectorize=True)
        syst[(lat(x) for x in range(4))] = value
        fsys = syst.finalized()
        np.testing.assert_array_equal(
            np.diag(fsys.hamiltonian_submatrix(params={"scale": 1.0})), own
        )
        own[0] = 7.0  # still the caller's writeable array
        np.testing.assert_array_equal(
            np.diag(fsys.hamiltonian_submatrix(params={"scale": 2.0})),
            own * (2.0 if value is onsites else 1.0),
        )
        own[0] = 0.0
