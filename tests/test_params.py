"""Kwant's deprecated positional ``args``: one rule (mesoscopic._params) for every entry point."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic._params import PositionalArgs, legacy_params, params_by_name
from mesoscopic.transport import params_from_args


def wire():
    """Value functions that take (a, b) after their sites, as Kwant's args would give them."""
    lat = meso.lattice.square(norbs=1)

    def onsite(site, a, b):
        return 4.0 + 0.1 * site.pos[0] * a - 0.05 * b

    def hopping(site1, site2, a, b):
        return -1.0 + 0.02 * (b - a)

    syst = meso.Builder()
    syst[(lat(i, j) for i in range(3) for j in range(2))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, j) for j in range(2))] = onsite
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def test_no_positional_values_leave_params_untouched():
    params = {"a": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert legacy_params(None, params) is params
        assert legacy_params((), params) is params
        assert legacy_params([], None) is None


def test_a_mapping_given_as_args_is_params_given_by_position():
    assert legacy_params({"a": 1}, None) == {"a": 1}
    with pytest.raises(TypeError, match="params is given twice"):
        legacy_params({"a": 1}, {"a": 2})


def test_positional_values_warn_once_and_are_carried_by_position():
    with pytest.warns(DeprecationWarning, match=r"'args' parameter.*params=") as record:
        given = legacy_params((1.0, 2.0), None)
    assert len(record) == 1
    assert record[0].filename == __file__  # the warning names the caller's line
    assert isinstance(given, PositionalArgs)
    assert given.args == (1.0, 2.0)
    assert dict(given) == {}  # no name is seen as given
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert legacy_params([3.0], None, warn=False).args == (3.0,)
    # Any iterable of values, as Kwant's *args: an array too.
    with pytest.warns(DeprecationWarning):
        assert legacy_params(np.array([1.0, 2.0]), None).args == (1.0, 2.0)


@pytest.mark.parametrize("bad", ["ab", b"ab", 3.0, object()])
def test_args_that_are_not_a_sequence_of_values_are_refused(bad):
    with pytest.raises(TypeError, match="args must be a sequence of positional parameter"):
        legacy_params(bad, None)


def test_args_and_params_together_are_refused():
    with pytest.raises(TypeError, match=r"mutually exclusive.*not both"):
        legacy_params((1,), {"a": 1})


def test_params_by_name_maps_each_functions_positions_onto_its_names():
    signatures = [("onsite", ("a", "b"), False), ("hop", ("a",), True), ("const", (), True)]
    assert params_by_name((1, 2), signatures) == {"a": 1, "b": 2}
    with pytest.raises(TypeError, match=r"'hop' takes only 1 parameter\(s\).*\['a'\]"):
        params_by_name((1, 2), [("hop", ("a",), False)])
    with pytest.raises(ValueError, match="'b' is at position 1 in one value function"):
        params_by_name((1, 2), [("f", ("a", "b"), False), ("g", ("b", "a"), False)])


def test_every_entry_point_gives_args_the_meaning_of_the_same_params():
    fsys = wire()
    params = {"a": 0.7, "b": -0.4}
    with pytest.warns(DeprecationWarning) as record:
        converted = params_from_args(fsys, (0.7, -0.4), None)
    assert len(record) == 1
    assert converted == params
    # The solver (by name) and the Hamiltonian (by position) read args alike.
    with pytest.warns(DeprecationWarning) as record:
        by_args = meso.smatrix(fsys, 1.1, (0.7, -0.4))
    assert len(record) == 1
    np.testing.assert_array_equal(by_args.data, meso.smatrix(fsys, 1.1, params=params).data)
    with pytest.warns(DeprecationWarning):
        by_position = fsys.hamiltonian_submatrix(args=(0.7, -0.4))
    np.testing.assert_array_equal(by_position, fsys.hamiltonian_submatrix(params=params))


def test_solvers_accept_params_given_by_position_and_an_array_of_args():
    fsys = wire()
    params = {"a": 0.7, "b": -0.4}
    expected = meso.smatrix(fsys, 1.1, params=params).data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(meso.smatrix(fsys, 1.1, params).data, expected)
    with pytest.warns(DeprecationWarning):
        by_array = meso.smatrix(fsys, 1.1, np.array([0.7, -0.4]))
    np.testing.assert_array_equal(by_array.data, expected)


def test_system_and_operator_methods_use_the_same_rule():
    """A string is not a sequence of values in any entry point (it used to become a tuple
    of characters in the System methods), and args with params is refused everywhere."""
    fsys = wire()
    with pytest.raises(TypeError, match="args must be a sequence"):
        fsys.hamiltonian_submatrix(args="ab")
    bra = np.ones(fsys.num_orbitals, dtype=complex)
    with pytest.raises(TypeError, match="args must be a sequence"):
        meso.operator.Density(fsys)(bra, args="ab")
    with pytest.raises(TypeError, match="mutually exclusive"):
        meso.operator.Density(fsys)(bra, args=(1,), params={"a": 1})
