"""Value functions written for one site, called once with columns of all sites when safe.

Every test compares the Hamiltonian against the same system evaluated site by site
(``MESOSCOPIC_VECTORIZE=0``) and checks which road ran by counting the function's calls.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import _autovec

WIDTH, LENGTH = 9, 12  # 108 sites, 195 hoppings: above the column threshold
rng_global = np.random.default_rng(11)
calls_seen: list[int] = []


@pytest.fixture
def column_calls(monkeypatch):
    """Outcomes of the column evaluations (True: used, False: refused), in order."""
    outcomes: list[bool] = []
    original = _autovec.evaluate_columns

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        outcomes.append(result is not None)
        return result

    monkeypatch.setattr(_autovec, "evaluate_columns", spy)
    return outcomes


def build(onsite, hopping=None, norbs=1):
    lat = meso.lattice.square(norbs=norbs)
    if hopping is None:
        hopping = -np.eye(norbs) if norbs > 1 else -1.0
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(LENGTH) for y in range(WIDTH))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(WIDTH))] = 4.0 * np.eye(norbs) if norbs > 1 else 4.0
    lead[lat.neighbors()] = -1.0 * np.eye(norbs) if norbs > 1 else -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def forget_values(fsys):
    """Drop the values each term group keeps from its last evaluation (so the next one
    calls the value functions again)."""
    for group in (*fsys._onsite, *fsys._hoppings):
        object.__setattr__(group, "_memo", None)


def both_roads(monkeypatch, fsys, params):
    """The Hamiltonian by column calls where allowed, and site by site."""
    forget_values(fsys)
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "1")
    fast = fsys.hamiltonian_submatrix(params=params, sparse=True).toarray()
    forget_values(fsys)
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "0")
    slow = fsys.hamiltonian_submatrix(params=params, sparse=True).toarray()
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "1")
    forget_values(fsys)
    return fast, slow


def gaussian_bump(x, y, width):
    return np.exp(-((x - 5.0) ** 2 + (y - 4.0) ** 2) / width**2)


def onsite_kwant_style(site, V, disorder, width=2.0):
    x, y = site.pos
    i, j = site.tag
    return 4.0 + V * gaussian_bump(x, y, width) + disorder[i, j]


def peierls(site1, site2, phi):
    (x1, y1), (x2, y2) = site1.pos, site2.pos
    return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)


def test_kwant_style_functions_are_called_once_with_the_same_numbers(monkeypatch, column_calls):
    fsys = build(onsite_kwant_style, peierls)
    disorder = np.random.default_rng(0).uniform(-1, 1, (LENGTH, WIDTH))
    params = dict(V=0.7, disorder=disorder, phi=0.13)
    fast, slow = both_roads(monkeypatch, fsys, params)
    # Onsite and both hopping directions of the system went by columns (the leads' groups
    # are below the threshold).
    assert column_calls and all(column_calls)
    assert len(column_calls) >= 2
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)
    assert np.abs(slow).max() > 1


def test_transport_through_column_calls_equals_site_by_site(monkeypatch):
    fsys = build(onsite_kwant_style, peierls)
    disorder = np.random.default_rng(1).uniform(-1, 1, (LENGTH, WIDTH))
    params = dict(V=0.4, disorder=disorder, phi=0.05)
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "1")
    fast = meso.smatrix(fsys, 1.1, params=params)
    forget_values(fsys)
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "0")
    slow = meso.smatrix(fsys, 1.1, params=params)
    np.testing.assert_allclose(fast.data, slow.data, rtol=0, atol=1e-12)


def onsite_global_rng(site, W):
    return 4.0 + W * (rng_global.uniform() - 0.5)


def onsite_counter(site, W):
    calls_seen.append(1)
    return 4.0 + W


def onsite_param_rng(site, rng):
    return 4.0 + rng.uniform()


def onsite_branch(site, V):
    x, _ = site.pos
    if x > 5:
        return 4.0 + V
    return 4.0


def onsite_size_trick(site, V):
    # Would run on columns with the wrong values (pos.size is 2 per site, 2 n for the
    # columns): shape, size and ndim are never read by a column call.
    return 4.0 + V * site.pos[0] * site.pos.size


def onsite_sum_trick(site, V):
    # Runs on columns and returns one value per site, but the wrong ones where the two
    # booleans from positions hold together (NumPy's or; also per site, as np.bool_): here
    # equal, so the column call must be accepted and agree.
    x, y = site.pos
    return 4.0 + V * ((x > 2) + (y > 1))


def onsite_family(site, V):
    return 4.0 + (V if site.family.name == "" else 0.0)


def onsite_math(site, V):
    x, _ = site.pos
    return 4.0 + V * math.cos(x)


@pytest.mark.parametrize(
    "onsite, params, column",
    [
        (onsite_global_rng, dict(W=1.0), False),  # reads an RNG object: never columns
        (onsite_counter, dict(W=1.0), False),  # calls a method of a global list
        (onsite_param_rng, dict(rng=None), False),  # a parameter object's method
        (onsite_branch, dict(V=0.5), True),  # columns tried, fail on the branch
        (onsite_size_trick, dict(V=0.5), False),  # reads pos.size: never columns
        (onsite_family, dict(V=0.5), False),  # reads site.family: never columns
        (onsite_math, dict(V=0.5), True),  # math.cos of an array raises: refused
    ],
)
def test_functions_that_cannot_take_columns_are_called_site_by_site(
    monkeypatch, column_calls, onsite, params, column
):
    assert _autovec.is_column_safe(onsite) is column
    if "rng" in params:
        params = dict(rng=np.random.default_rng(3))
        assert not _autovec.params_are_safe(params)
    fsys = build(onsite)
    if onsite is onsite_global_rng:
        # Site by site in both roads: the same stream of random numbers, in the same order.
        global rng_global
        rng_global = np.random.default_rng(11)
        monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "1")
        fast = fsys.hamiltonian_submatrix(params=params, sparse=True).toarray()
        rng_global = np.random.default_rng(11)
        forget_values(fsys)
        monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "0")
        slow = fsys.hamiltonian_submatrix(params=params, sparse=True).toarray()
    else:
        if "rng" in params:
            fast = fsys.hamiltonian_submatrix(
                params=dict(rng=np.random.default_rng(3)), sparse=True
            ).toarray()
            slow = fsys.hamiltonian_submatrix(
                params=dict(rng=np.random.default_rng(3)), sparse=True
            ).toarray()
        else:
            fast, slow = both_roads(monkeypatch, fsys, params)
    np.testing.assert_array_equal(fast, slow)
    # Tried (and refused) only where the code allows it.
    assert column_calls == ([False] if column and "rng" not in params else [])


def test_a_counter_sees_every_site(monkeypatch):
    calls_seen.clear()
    fsys = build(onsite_counter)
    fsys.hamiltonian_submatrix(params=dict(W=0.5), sparse=True)
    assert len(calls_seen) == WIDTH * LENGTH


def test_helper_functions_and_function_parameters_are_followed(monkeypatch, column_calls):
    def potential(x, y, V):
        return V * np.tanh(x - 3.0) + 0.1 * y

    def onsite(site, V, shape):
        x, y = site.pos
        return 4.0 + potential(x, y, V) * shape(x)

    def smooth(x):
        return 1.0 / (1.0 + np.exp(-x))

    assert _autovec.is_column_safe(onsite)
    fsys = build(onsite)
    params = dict(V=0.3, shape=smooth)
    assert _autovec.params_are_safe(params)
    fast, slow = both_roads(monkeypatch, fsys, params)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)
    assert column_calls == [True]

    log: list[float] = []

    def noisy(x):
        log.append(1.0)  # not allowed in a column call
        return x

    assert not _autovec.params_are_safe(dict(V=0.3, shape=noisy))
    fsys.hamiltonian_submatrix(params=dict(V=0.3, shape=noisy), sparse=True)
    assert len(log) == WIDTH * LENGTH


def test_matrix_valued_functions(monkeypatch):
    sz = np.diag([1.0, -1.0])
    s0 = np.eye(2)

    def constant_matrix(site, B):  # independent of the site: one value for all
        return 4.0 * s0 + B * sz

    def site_dependent(site, B):  # scalar * matrix with arrays: refused, site by site
        x, _ = site.pos
        return 4.0 * s0 + B * x * sz

    for onsite in (constant_matrix, site_dependent):
        fsys = build(onsite, norbs=2)
        fast, slow = both_roads(monkeypatch, fsys, dict(B=0.25))
        np.testing.assert_array_equal(fast, slow)


def test_in_place_operators_and_stores_are_never_column_safe():
    def inplace(site, disorder):
        x, y = site.tag
        disorder += 0.0  # would write to the caller's array once instead of n times
        return disorder[x, y]

    def store(site, values):
        values[0] = 1.0
        return 4.0

    def loops(site, V):
        return sum(V * t for t in site.tag)

    def imports(site, V):
        import cmath as c

        return V * c.pi

    for function in (inplace, store, loops, imports):
        assert not _autovec.is_column_safe(function)
    assert not _autovec.is_column_safe(np.cos)  # not a Python function: site by site


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_errors_still_name_the_site(monkeypatch):
    def onsite(site, V):
        x, _ = site.pos
        return 4.0 + V / (x - 3.0)  # infinite on the column x = 3

    fsys = build(onsite)
    with pytest.raises(ValueError, match=r"NaN or inf|infinite|not finite"):
        fsys.hamiltonian_submatrix(params=dict(V=1.0), sparse=True)


def test_switching_the_column_calls_off(monkeypatch, column_calls):
    fsys = build(onsite_kwant_style)
    params = dict(V=0.7, disorder=np.zeros((LENGTH, WIDTH)))
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "0")
    fsys.hamiltonian_submatrix(params=params, sparse=True)
    assert column_calls == []
    monkeypatch.setenv("MESOSCOPIC_VECTORIZE", "1")
    fsys.hamiltonian_submatrix(params=dict(params, V=0.8), sparse=True)
    assert column_calls == [True]


def test_integer_overflow_on_columns_is_caught_by_the_sample(monkeypatch, column_calls):
    def onsite(site, V):
        x, _ = site.tag
        return 4.0 + V * x**19  # exact for Python ints; int64 overflows from x = 10 on

    fsys = build(onsite)
    fast, slow = both_roads(monkeypatch, fsys, dict(V=1e-20))
    np.testing.assert_allclose(fast, slow, rtol=1e-14, atol=0)
    assert column_calls == [False]


def test_columns_come_from_the_systems_arrays(monkeypatch, column_calls):
    # The System's tag and position arrays give the columns by site index; the sites
    # themselves are not read one by one.
    read_one_by_one = []
    original = _autovec.columns_of
    monkeypatch.setattr(
        _autovec, "columns_of", lambda *a: read_one_by_one.append(1) or original(*a)
    )
    fsys = build(onsite_kwant_style, peierls)
    params = dict(V=0.3, disorder=np.random.default_rng(2).uniform(-1, 1, (LENGTH, WIDTH)))
    fast, slow = both_roads(monkeypatch, fsys, dict(params, phi=0.2))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)
    assert column_calls and all(column_calls)
    assert read_one_by_one == []


def test_families_of_different_dimensions_are_read_site_by_site(monkeypatch, column_calls):
    # A chain beside a square lattice: positions of different lengths, no common table.
    square = meso.lattice.square(norbs=1, name="sq")
    chain = meso.lattice.chain(norbs=1, name="ch")

    def onsite(site, V):
        return 4.0 + V * site.pos[0]

    syst = meso.Builder()
    syst[(square(x, y) for x in range(8) for y in range(5))] = onsite
    syst[(chain(x) for x in range(-30, 0))] = onsite
    syst[square.neighbors()] = -1.0
    syst[chain.neighbors()] = -1.0
    syst[chain(-1), square(0, 0)] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((1, 0)))
    lead[(square(0, y) for y in range(5))] = 4.0
    lead[square.neighbors()] = -1.0
    syst.attach_lead(lead)
    fsys = syst.finalized()
    fast, slow = both_roads(monkeypatch, fsys, dict(V=0.25))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)


# Cases where a column call would differ from calls site by site: each must end site by site
# (or refused before running on all terms), with the site-by-site numbers.


def onsite_crossing_lines(site, U):
    x, y = site.tag
    return U * ((x == 5) + (y == 4))  # Python bools add as integers: 2 at the crossing


def onsite_modulo(site, U):
    x, y = site.tag
    return U * (x % ((x - 5) ** 2 + (y - 4) ** 2))  # integer division by zero at (5, 4)


def onsite_outer(site, t):
    d = site.pos[..., None] - site.pos[..., None, :]  # a 2 x 2 block for one site
    return t * np.abs(d)


def test_booleans_from_tags_added_are_integers(monkeypatch, column_calls):
    fsys = build(onsite_crossing_lines)
    fast, slow = both_roads(monkeypatch, fsys, dict(U=1.0))
    np.testing.assert_array_equal(fast, slow)
    assert np.abs(slow).max() == 2.0
    assert column_calls == [False]


def test_integer_division_by_zero_raises_as_site_by_site(monkeypatch):
    fsys = build(onsite_modulo)
    for setting in ("1", "0"):
        monkeypatch.setenv("MESOSCOPIC_VECTORIZE", setting)
        with np.errstate(all="ignore"), pytest.raises(meso.system.UserCodeError):
            fsys.hamiltonian_submatrix(params=dict(U=1.0), sparse=True)


def test_an_outer_product_is_refused_by_the_trial(monkeypatch, column_calls):
    lat = meso.lattice.square(norbs=2)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(LENGTH) for y in range(WIDTH))] = onsite_outer
    syst[lat.neighbors()] = -np.eye(2)
    fsys = syst.finalized()
    fast, slow = both_roads(monkeypatch, fsys, dict(t=1.0))
    np.testing.assert_array_equal(fast, slow)
    assert column_calls == [False]


def test_a_scalar_for_a_two_orbital_site_keeps_its_message(monkeypatch):
    fsys = build(lambda site, mu: 4 - mu, norbs=2)
    with pytest.raises(ValueError, match="is a scalar but the sites have 2 and 2 orbitals"):
        fsys.hamiltonian_submatrix(params=dict(mu=0.1), sparse=True)


def test_verdicts_follow_redefined_helpers(monkeypatch):
    namespace: dict = {"np": np}
    exec(
        "def helper(site):\n    return 0.0 * site.pos[0]\n"
        "def onsite(site, W):\n    return 4.0 + W * helper(site)\n",
        namespace,
    )
    onsite = namespace["onsite"]
    assert _autovec.is_column_safe(onsite)
    exec("log = []\ndef helper(site):\n    log.append(1)\n    return 1.0\n", namespace)
    assert not _autovec.is_column_safe(onsite)  # the new helper appends to a list


def test_numpy_ufuncs_only_and_plain_arrays_only():
    draws = np.random.default_rng(0)
    noise = np.frompyfunc(lambda x: draws.normal(), 1, 1)
    assert not _autovec.params_are_safe(dict(f=noise))
    assert _autovec.params_are_safe(dict(f=np.cos))
    masked = np.ma.masked_array(np.ones(3), mask=[0, 1, 0])
    assert not _autovec.params_are_safe(dict(V=masked))
    assert _autovec.params_are_safe(dict(V=np.ones(3)))


def test_column_calls_in_threads_leave_the_warning_filters_alone():
    import threading
    import warnings

    fsys = build(onsite_kwant_style, peierls)
    before = list(warnings.filters)
    errors: list[BaseException] = []

    def work(offset):
        try:
            for k in range(30):
                params = dict(V=0.1 + k + offset, disorder=np.zeros((LENGTH, WIDTH)), phi=k)
                fsys.hamiltonian_submatrix(params=params, sparse=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(warnings.filters) == before


def onsite_interior_overflow(site, V):
    x, y = site.tag
    # Largest at an interior site (not an extreme coordinate): int64 wraps there.
    return 4.0 + V * ((100 - (x - 5) ** 2 - (y - 4) ** 2) * 92_500_000_000_000_000) / 1e18


def onsite_shift(site, V):
    x, y = site.tag
    return 4.0 + V * (1 << (x + y) % 7)


def onsite_is_zero(site):
    x, _ = site.tag
    return 4.0 + ((x == 5) * 1.0 if x is not None else 0.0)


@pytest.mark.parametrize(
    "onsite, params",
    [
        (onsite_interior_overflow, dict(V=1.0)),
        (onsite_shift, dict(V=0.1)),
        (onsite_sum_trick, dict(V=0.5)),
        (onsite_is_zero, {}),
    ],
)
def test_integer_semantics_of_tags_are_python_s(monkeypatch, onsite, params):
    fast, slow = both_roads(monkeypatch, build(onsite), params)
    np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=0)


def test_python_int_is_comparisons_and_replaced_code_are_never_columns():
    import warnings

    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # "is" with a literal, on purpose
        exec(
            "def is_literal(site):\n    x, y = site.tag\n"
            "    return 4.0 + ((x is 0) and (y is 0))\n",
            namespace,
        )
    assert not _autovec.is_column_safe(namespace["is_literal"])
    assert _autovec.is_column_safe(onsite_is_zero)  # "is None" is fine

    def pure(site, V):
        return 4.0 + V * site.pos[0]

    def logged(site, V):
        calls_seen.append(1)
        return 4.0 + V * site.pos[0]

    assert _autovec.is_column_safe(pure)
    pure.__code__ = logged.__code__
    assert not _autovec.is_column_safe(pure)


def test_subclasses_of_numbers_are_not_plain_data():
    class Traced(float):
        def __mul__(self, other):
            return float(self) * other

    assert not _autovec.params_are_safe(dict(V=Traced(0.5)))
    assert _autovec.params_are_safe(dict(V=0.5, n=np.int64(3), z=np.complex128(1j)))


def test_underflow_does_not_refuse_a_column_call(monkeypatch, column_calls):
    def onsite(site, V):
        x, _ = site.pos
        return 4.0 + V * np.exp(-((x - 2.0) ** 2) * 400.0)  # exp underflows away from x = 2

    fast, slow = both_roads(monkeypatch, build(onsite), dict(V=1.0))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)
    assert column_calls == [True]


def test_the_trial_is_made_once_per_parameter_shapes_and_the_sample_every_time(monkeypatch):
    fsys = build(onsite_kwant_style)
    disorder = np.random.default_rng(3).uniform(-1, 1, (LENGTH, WIDTH))
    compared = []  # the numbers of terms compared with scalar calls, per comparison
    original = _autovec._agrees

    def spy(out, picked, scalar):
        picked = list(picked)
        compared.append(len(picked))
        return original(out, picked, scalar)

    monkeypatch.setattr(_autovec, "_agrees", spy)

    def evaluate(**params):
        compared.clear()
        forget_values(fsys)
        fast, slow = both_roads(monkeypatch, fsys, params)
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)
        return [n for n in compared if n]  # the site-by-site road compares nothing

    first = evaluate(V=0.7, disorder=disorder)
    assert len(first) == 2 and first[0] == _autovec.TRIAL_TERMS  # the trial, the sample
    # New values of the same types and shapes: the sample only.
    assert evaluate(V=-0.2, disorder=2 * disorder) == first[1:]
    # An array of another shape (or a new type) makes a new trial.
    wider = np.random.default_rng(4).uniform(-1, 1, (LENGTH + 1, WIDTH))
    assert evaluate(V=-0.2, disorder=wider) == first
    assert evaluate(V=np.float32(0.5), disorder=wider) == first
