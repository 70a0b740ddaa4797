"""Kwant's solver layout: solver objects, module-level functions, ``args``, lead selections.

``mesoscopic.solvers.sparse.Solver``, the module functions of ``solvers.sparse``,
``solvers.default`` and ``solvers.mumps`` (SciPy's LU behind MUMPS's option interface),
deprecated positional ``args``, the inference of a transmission of a lead left out of
``in_leads``/``out_leads`` from the sum rules, and ``wave_function``/``ldos`` against exact
results of a clean chain.
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic.solvers import default, mumps, sparse
from mesoscopic.transport import WaveFunction


def _chain(onsite=0.0, hopping=1.0, length=2):
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(length))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((1,)))
    lead[lat(0)] = onsite
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def _three_terminal(flux=0.03):
    """A T-junction in a magnetic field: no time-reversal symmetry, unequal T[i, j]."""
    lat = meso.lattice.square(norbs=1)

    def hopping(a, b):
        (xa, ya), (xb, yb) = a.pos, b.pos
        return -np.exp(-1j * flux * 0.5 * (ya + yb) * (xb - xa))

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(6) for y in range(4))] = 4.0
    syst[(lat(x, y) for x in range(2, 5) for y in range(4, 7))] = 4.0
    syst[lat.neighbors()] = hopping
    for direction, cells in (((-1, 0), range(4)), ((1, 0), range(4))):
        lead = meso.Builder(meso.TranslationalSymmetry(direction))
        lead[(lat(0, y) for y in cells)] = 4.0
        lead[lat.neighbors()] = hopping
        syst.attach_lead(lead)
    top = meso.Builder(meso.TranslationalSymmetry((0, 1)))
    top[(lat(x, 0) for x in range(2, 5))] = 4.0
    top[lat.neighbors()] = hopping
    syst.attach_lead(top)
    return syst.finalized()


def test_module_functions_are_the_default_instances_and_the_top_level_ones():
    assert default.smatrix is meso.smatrix is meso.transport.smatrix
    assert default.wave_function is meso.wave_function
    assert default.ldos is meso.ldos
    assert default.greens_function is meso.transport.greens_function
    for module in (sparse, mumps):
        for name in ("smatrix", "greens_function", "wave_function", "ldos"):
            method = getattr(module, name)
            assert method.__self__ is module.default_solver
            assert isinstance(method.__self__, module.Solver)


def test_solver_objects_give_the_transport_results():
    fsys = _three_terminal()
    reference = meso.smatrix(fsys, 1.2)
    for solver in (sparse.Solver(), mumps.Solver()):
        s = solver.smatrix(fsys, 1.2)
        np.testing.assert_allclose(s.data, reference.data, atol=1e-12)
        gf = solver.greens_function(fsys, 1.2)
        np.testing.assert_allclose(
            gf.transmission_matrix(), reference.transmission_matrix(), atol=1e-10
        )
        np.testing.assert_allclose(
            solver.ldos(fsys, 1.2), meso.ldos(fsys, 1.2), rtol=1e-12, atol=0
        )
        np.testing.assert_allclose(
            solver.wave_function(fsys, 1.2)(2), meso.wave_function(fsys, 1.2)(2), atol=1e-12
        )


def test_mumps_options_are_checked_and_recorded_but_not_mumps():
    solver = mumps.Solver()
    assert "not MUMPS" in mumps.__doc__ or "no MUMPS library is used" in mumps.__doc__
    previous = solver.options(nrhs=10, ordering="amd", sparse_rhs=True)
    assert previous == {"nrhs": 6, "ordering": "kwant_decides", "sparse_rhs": False}
    assert solver.reset_options() == {"nrhs": 10, "ordering": "amd", "sparse_rhs": True}
    with pytest.raises(ValueError, match="nrhs must be a positive integer, got 0"):
        solver.options(nrhs=0)
    with pytest.raises(ValueError, match="ordering must be one of"):
        solver.options(ordering="best")


def test_positional_args_are_deprecated_and_mean_the_same_params():
    lat = meso.lattice.square(norbs=1)

    def onsite(site, a, b):
        return site.pos[0] + site.pos[1] + a + b

    def hopping(site1, site2, a, b):
        return b - a

    syst = meso.Builder()
    syst[(lat(i, j) for i in range(4) for j in range(3))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, j) for j in range(3))] = onsite
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    params = {"a": 1, "b": 3}
    with pytest.warns(DeprecationWarning, match="'args' parameter"):
        by_args = meso.smatrix(fsys, 0.0, (1, 3))
    np.testing.assert_array_equal(by_args.data, meso.smatrix(fsys, params=params).data)
    with pytest.warns(DeprecationWarning):
        psi = sparse.wave_function(fsys, args=(1, 3))(0)
    np.testing.assert_array_equal(psi, meso.wave_function(fsys, params=params)(0))
    with pytest.warns(DeprecationWarning):
        local = sparse.ldos(fsys, args=(1, 3))
    np.testing.assert_array_equal(local, meso.ldos(fsys, params=params))
    with pytest.raises(TypeError, match="mutually exclusive"):
        meso.smatrix(fsys, args=(1, 3), params=params)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="takes only 2"):
        meso.smatrix(fsys, args=(1, 3, 5))


def test_args_cannot_be_mapped_when_a_name_changes_position():
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = lambda site, a, b: a
    syst[lat(1)] = lambda site, b, a: a
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match=r"is at position \d in one value function"),
    ):
        meso.smatrix(syst.finalized(), 0.5, (1.0, 2.0))


def test_a_lead_left_out_is_inferred_from_current_conservation():
    fsys = _three_terminal()
    energy = 1.2
    full = meso.smatrix(fsys, energy)
    exact = full.transmission_matrix()
    assert abs(exact[1, 0] - exact[0, 1]) > 1e-6  # the field breaks reciprocity
    for out_leads, in_leads in (([0, 1, 2], [0, 2]), ([1, 2], [0, 1, 2]), ([0, 2], [1, 2])):
        part = meso.smatrix(fsys, energy, out_leads=out_leads, in_leads=in_leads)
        for i in range(3):
            for j in range(3):
                assert part.transmission(i, j) == pytest.approx(exact[i, j], abs=1e-10)
        np.testing.assert_allclose(part.conductance_matrix(), full.conductance_matrix(), atol=1e-9)
    narrow = meso.smatrix(fsys, energy, out_leads=[2], in_leads=[0])
    assert narrow.transmission(2, 0) == pytest.approx(exact[2, 0], abs=1e-12)
    with pytest.raises(ValueError, match="lead 1 was not computed as an outgoing lead"):
        narrow.transmission(1, 0)
    unchecked = meso.smatrix(fsys, energy, in_leads=[0, 2], check_hermiticity=False)
    with pytest.raises(ValueError, match="lead 1 was not computed as an incoming lead"):
        unchecked.transmission(0, 1)
    with pytest.raises(ValueError, match="out_leads is empty, so no output is requested"):
        meso.smatrix(fsys, energy, out_leads=[])
    with pytest.raises(ValueError, match="in_leads is empty"):
        sparse.smatrix(fsys, energy, in_leads=())


def test_clean_chain_wave_functions_and_ldos_are_exact():
    # E = -2 t cos k with t = 1 at E = 0: k = pi/2, velocity 2, |psi|^2 = 1/2 on every site.
    fsys = _chain(length=3)
    psi = meso.wave_function(fsys, 0.0)
    assert isinstance(psi, WaveFunction)
    assert psi.num_orb == 3
    for lead in (0, 1):
        np.testing.assert_allclose(np.abs(psi(lead)) ** 2, 0.5, atol=1e-12)
    np.testing.assert_allclose(meso.ldos(fsys, 0.0), np.full(3, 1 / (2 * np.pi)), atol=1e-12)
    # Outside the band there are no scattering states and no LDOS from the leads.
    closed = meso.wave_function(fsys, 3.0)
    assert closed(0).shape == (0, 3)
    np.testing.assert_array_equal(meso.ldos(fsys, 3.0), np.zeros(3))
    with pytest.raises(ValueError, match="lead 2 does not exist"):
        psi(2)


def test_lead_with_zero_hopping_has_no_modes_and_a_well_formed_smatrix():
    lat = meso.lattice.chain(norbs=2)
    syst = meso.Builder()
    left = meso.Builder(meso.TranslationalSymmetry((-1,)))
    right = meso.Builder(meso.TranslationalSymmetry((1,)))
    syst[lat(0)] = left[lat(0)] = right[lat(0)] = np.eye(2)
    left[lat(0), lat(1)] = np.zeros((2, 2))
    right[lat(0), lat(1)] = np.eye(2)
    syst.attach_lead(left)
    syst.attach_lead(right)
    s = meso.smatrix(syst.finalized(), 0.0)
    assert [modes.momenta.size for modes in s.lead_info] == [0, 4]
    assert s.data.shape == (2, 2)
    assert s.check_unitarity() < 1e-12  # all incident current of lead 1 is reflected


def test_operators_take_deprecated_args_for_the_systems_value_functions():
    # A current operator needs the Hamiltonian, whose hoppings depend on a parameter; args
    # by position must give the same currents as params by name.
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = lambda site, v, t: v
    syst[lat.neighbors()] = lambda a, b, v, t: -t
    lead = meso.Builder(meso.TranslationalSymmetry((1,)))
    lead[lat(0)] = lambda site, v, t: v
    lead[lat.neighbors()] = lambda a, b, v, t: -t
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    params = {"v": 0.2, "t": 1.3}
    psi = meso.wave_function(fsys, 0.4, params=params)(1)[0]
    current = meso.operator.Current(fsys)
    by_name = current(psi, params=params)
    with pytest.warns(DeprecationWarning, match="'args' parameter"):
        by_position = current(psi, args=(0.2, 1.3))
    np.testing.assert_array_equal(by_position, by_name)
    # A unit-current state carries its transmission (1 in a clean chain) through every bond.
    np.testing.assert_allclose(np.abs(by_name), 1.0, atol=1e-12)
