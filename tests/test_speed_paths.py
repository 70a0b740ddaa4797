"""The fast roads users take: one-energy ``smatrix`` by the RGF, batches over parameter values.

Every comparison is against the sparse direct solver called on its own, and each test
proves which road ran (the sparse solver's calls are counted, the RGF's sparse fallbacks
must be zero).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.solvers import rgf, sparse
from mesoscopic.system import SelfEnergyLead
from mesoscopic.transport import lead_data
from reference.systems import (
    finalized_with_wire_leads,
    make_disordered_wire,
    make_spin_orbit_wire,
)

TOLERANCE = 1e-10


def wire_in_field(width: int = 6, length: int = 10) -> meso.System:
    """Disordered wire, onsite and Peierls hopping as value functions (leads in the field)."""
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
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def realizations(count: int, width: int = 6, length: int = 10, phi=0.07) -> list[dict]:
    rng = np.random.default_rng(3)
    phis = np.broadcast_to(phi, (count,))
    return [dict(disorder=rng.uniform(-1.5, 1.5, (length, width)), phi=float(p)) for p in phis]


def sparse_smatrix(fsys, energy, params, **leads):
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    return sparse.scattering_matrix(ham, lead_data(fsys, params=params), energy, **leads)


class CallCounter:
    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def sparse_calls(monkeypatch):
    """Counts calls of the sparse solver, from smatrix and as the RGF's fallback."""
    counter = CallCounter(sparse.scattering_matrix)
    monkeypatch.setattr(sparse, "scattering_matrix", counter)
    monkeypatch.setattr(rgf, "scattering_matrix", counter)
    return counter


def assert_same_smatrix(fast, reference):
    assert fast.data.shape == reference.data.shape
    assert fast.in_leads == reference.in_leads and fast.out_leads == reference.out_leads
    for a, b in zip(fast.lead_info, reference.lead_info):
        assert a.num_modes == b.num_modes
    np.testing.assert_allclose(fast.data, reference.data, atol=TOLERANCE, rtol=0)


# ---------------------------------------------------------------------------------------------
# One energy: smatrix takes the RGF where the system slices well
# ---------------------------------------------------------------------------------------------


def test_smatrix_of_a_wire_in_a_field_is_the_sparse_one_by_the_rgf(sparse_calls):
    fsys = wire_in_field()
    params = realizations(1)[0]
    reference = sparse_smatrix(fsys, 1.3, params)
    sparse_calls.calls = 0
    fast = meso.smatrix(fsys, 1.3, params=params)
    assert sparse_calls.calls == 0  # the recursion ran, without fallback
    assert reference.num_propagating(0) >= 2
    assert_same_smatrix(fast, reference)
    assert fast.spin_degeneracy == fsys.spin_degeneracy and fast.current_conserving


@pytest.mark.parametrize(
    "in_leads, out_leads", [([0], None), (None, [1]), ([2, 0], [5, 3, 1]), ([4], [4])]
)
def test_smatrix_of_a_hall_bar_with_chosen_leads_is_the_sparse_one(
    sparse_calls, in_leads, out_leads
):
    fsys = meso.models.hall_bar(16, 6, terminals=6, arm=2)
    params = dict(phi=0.03, disorder=0.5, seed=2)
    reference = sparse_smatrix(fsys, 0.9, params, in_leads=in_leads, out_leads=out_leads)
    sparse_calls.calls = 0
    fast = meso.smatrix(fsys, 0.9, params=params, in_leads=in_leads, out_leads=out_leads)
    assert sparse_calls.calls == 0
    assert_same_smatrix(fast, reference)
    if in_leads is not None and out_leads is None:
        # The transmission out of the left-out leads follows from the sum rules, as before.
        assert fast.transmission(1, 0) == pytest.approx(reference.transmission(1, 0), abs=1e-10)


def test_smatrix_with_self_energy_leads_is_the_sparse_one(sparse_calls):
    fsys = wire_in_field(4, 6)
    sites = fsys.sites

    def probe(energy, args=(), *, params=None):
        return [[-0.5j * params["gamma"]]]

    middle = [s for s in sites if tuple(s.tag) == (3, 1)]
    probed = fsys.with_leads([SelfEnergyLead(probe, middle, parameters=["gamma"])])
    params = dict(realizations(1, 4, 6)[0], gamma=0.4)
    reference = sparse_smatrix(probed, 0.8, params)
    sparse_calls.calls = 0
    fast = meso.smatrix(probed, 0.8, params=params)
    assert sparse_calls.calls == 0
    assert len(fast.lead_info) == 3 and fast.num_propagating(2) == 1
    assert_same_smatrix(fast, reference)


def test_smatrix_of_a_system_that_slices_badly_takes_the_sparse_solver(sparse_calls, monkeypatch):
    # A hub coupled to 30 sites: its breadth-first slices put 30 of 31 sites in one slice.
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    hub = lat(0, 0)
    leaves = [lat(1, k) for k in range(30)]
    syst[hub] = 0.2
    syst[leaves] = lambda site, v: v * np.cos(site.tag[1])
    for k, leaf in enumerate(leaves):
        syst[hub, leaf] = -0.3 - 0.01 * k
    fsys = syst.finalized()
    left = SelfEnergyLead(lambda e: [[-0.4j]], [hub])
    right = SelfEnergyLead(lambda e: [[-0.7j]], [leaves[5]])
    fsys = fsys.with_leads([left, right])
    monkeypatch.setattr(batch, "AUTO_SMALL_SYSTEM", 10)  # as if the system were large
    problem = rgf.prepare(
        fsys.hamiltonian_submatrix(params=dict(v=0.5), sparse=True),
        lead_data(fsys, params=dict(v=0.5)),
    )
    assert problem.slicing.max_size > fsys.num_orbitals / 2
    sparse_calls.calls = 0
    fast = meso.smatrix(fsys, 0.1, params=dict(v=0.5))
    assert sparse_calls.calls == 1  # the sparse solver, as solver="auto" chooses
    monkeypatch.setattr(batch, "AUTO_SMALL_SYSTEM", 2000)
    by_rgf = meso.smatrix(fsys, 0.1, params=dict(v=0.5))
    assert sparse_calls.calls == 1
    assert_same_smatrix(by_rgf, fast)


def test_wave_function_and_ldos_stay_on_the_sparse_solver(sparse_calls, monkeypatch):
    fsys = wire_in_field(4, 5)
    params = realizations(1, 4, 5)[0]
    states = CallCounter(sparse.scattering_states)
    monkeypatch.setattr(sparse, "scattering_states", states)
    meso.wave_function(fsys, 1.0, params=params)
    meso.ldos(fsys, 1.0, params=params)
    assert states.calls == 2


# ---------------------------------------------------------------------------------------------
# Batches over parameter values
# ---------------------------------------------------------------------------------------------


def test_transmission_over_a_list_of_params_is_each_element_solved_alone(sparse_calls):
    fsys = wire_in_field()
    elements = realizations(5)
    energies = [0.6, 1.3, 2.2]
    stats: dict = {}
    sparse_calls.calls = 0
    t = meso.transmission(fsys, energies, params=elements, stats=stats)
    assert sparse_calls.calls == 0
    assert stats["solver"] == "rgf" and stats["sparse_fallback_energies"] == 0
    assert stats["num_elements"] == 5 and stats["num_energies"] == 15
    assert t.shape == (5, 3, 2, 2)
    for k, params in enumerate(elements):
        for j, energy in enumerate(energies):
            expected = sparse_smatrix(fsys, energy, params).transmission_matrix()
            np.testing.assert_allclose(t[k, j], expected, atol=TOLERANCE, rtol=0)
    pair = meso.transmission(fsys, energies, 1, 0, params=elements)
    assert pair.shape == (5, 3)
    np.testing.assert_array_equal(pair, t[:, :, 1, 0])
    # Disorder changes the transmission: the elements were really solved apart.
    assert np.ptp(t[:, 1, 1, 0]) > 1e-3


def test_smatrices_over_a_list_of_params_with_leads_that_differ(sparse_calls):
    # phi enters the leads too: each element has its own lead modes.
    fsys = wire_in_field()
    elements = realizations(4, phi=[0.0, 0.05, 0.1, 0.2])
    stats: dict = {}
    sparse_calls.calls = 0
    result = meso.smatrices(fsys, [0.9, 1.7], params=elements, stats=stats)
    assert sparse_calls.calls == 0 and stats["sparse_fallback_energies"] == 0
    assert isinstance(result, tuple) and len(result) == 4
    for params, element in zip(elements, result):
        assert isinstance(element, meso.batch.SMatrixBatch)
        np.testing.assert_array_equal(element.energies, [0.9, 1.7])
        for s, energy in zip(element, (0.9, 1.7)):
            assert_same_smatrix(s, sparse_smatrix(fsys, energy, params))
    # And the same S-matrices as the one-energy road, call by call.
    for params, element in zip(elements, result):
        assert_same_smatrix(element[1], meso.smatrix(fsys, 1.7, params=params))


def test_a_parameter_batch_of_a_hall_bar_with_field_and_disorder(sparse_calls):
    fsys = meso.models.hall_bar(16, 6, terminals=6, arm=2)
    elements = [dict(phi=phi, disorder=0.8, seed=seed) for phi, seed in [(0.0, 1), (0.04, 2)]]
    sparse_calls.calls = 0
    t = meso.transmission(fsys, [0.7, 1.1], params=elements)
    assert sparse_calls.calls == 0
    for k, params in enumerate(elements):
        for j, energy in enumerate([0.7, 1.1]):
            expected = sparse_smatrix(fsys, energy, params).transmission_matrix()
            np.testing.assert_allclose(t[k, j], expected, atol=TOLERANCE, rtol=0)


def test_a_parameter_batch_with_self_energy_leads_of_the_parameters():
    fsys = wire_in_field(4, 6)

    def probe(energy, args=(), *, params=None):
        return [[-0.5j * params["gamma"]]]

    middle = [s for s in fsys.sites if tuple(s.tag) == (2, 2)]
    probed = fsys.with_leads([SelfEnergyLead(probe, middle, parameters=["gamma"])])
    elements = [dict(p, gamma=g) for p, g in zip(realizations(3, 4, 6), [0.1, 0.5, 2.0])]
    t = meso.transmission(probed, [1.1], params=elements)
    for k, params in enumerate(elements):
        expected = sparse_smatrix(probed, 1.1, params).transmission_matrix()
        np.testing.assert_allclose(t[k, 0], expected, atol=TOLERANCE, rtol=0)


def test_a_value_that_vanishes_in_one_element_keeps_the_structure():
    # A hopping that is zero for one element: the union of the patterns is used.
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(6) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    syst[lat(2, 1), lat(3, 1)] = lambda a, b, t: -t
    fsys = finalized_with_wire_leads(meso, syst, lat, 3)
    elements = [dict(t=0.0), dict(t=1.0), dict(t=2.5)]
    t = meso.transmission(fsys, [1.0, 2.5], params=elements, solver="rgf")
    sparse_t = meso.transmission(fsys, [1.0, 2.5], params=elements, solver="sparse")
    np.testing.assert_allclose(t, sparse_t, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(t[1, :, 1, 0], [1.0, 2.0], atol=1e-10)  # the clean wire


def test_a_list_of_params_can_be_labelled_and_solved_sparse():
    fsys = wire_in_field(4, 5)
    elements = realizations(2, 4, 5)
    labelled = meso.transmission(fsys, [0.5, 1.0], 1, 0, params=elements, labelled=True)
    assert labelled.dims == ("element", "energy")
    np.testing.assert_array_equal(labelled["element"], [0, 1])
    stats: dict = {}
    by_sparse = meso.transmission(
        fsys, [0.5, 1.0], 1, 0, params=elements, solver="sparse", stats=stats
    )
    assert stats["solver"] == "sparse"
    np.testing.assert_allclose(labelled.values, by_sparse, atol=TOLERANCE, rtol=0)
    matrix = meso.transmission(fsys, [0.5], params=elements, labelled=True)
    assert matrix.dims == ("element", "energy", "to_lead", "from_lead")


@pytest.mark.parametrize(
    "params, error, message",
    [
        ([], ValueError, "params is an empty list"),
        ([{"phi": 0.1}, 3], TypeError, r"params\[1\] must be a dict"),
        ("phi", TypeError, "params must be a dict of parameter values, or a list"),
    ],
)
def test_bad_parameter_batches_are_refused_clearly(params, error, message):
    fsys = wire_in_field(3, 3)
    with pytest.raises(error, match=message):
        meso.transmission(fsys, [1.0], params=params)
    with pytest.raises(error, match=message):
        meso.smatrices(fsys, [1.0], params=params)


def test_prepare_batch_refuses_elements_of_different_structure():
    from mesoscopic.leads import LeadData

    lead = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    other = LeadData([[0.0]], [[-1.0]], interface_sys=[1], interface_cell=[0])
    chain = -(np.eye(2, k=1) + np.eye(2, k=-1))
    with pytest.raises(ValueError, match="element 0 has 2 orbitals, element 1 has 3"):
        rgf.prepare_batch([chain, np.zeros((3, 3))], [[lead, other], [lead, other]])
    with pytest.raises(ValueError, match="lead 1 attaches to other orbitals in element 1"):
        rgf.prepare_batch([chain, chain], [[lead, other], [lead, lead]])
    with pytest.raises(ValueError, match="element 0 has 2, element 1 has 1"):
        rgf.prepare_batch([chain, chain], [[lead, other], [lead]])
    with pytest.raises(ValueError, match="hamiltonians is empty"):
        rgf.prepare_batch([], [])


def test_prepare_batch_solves_elements_with_different_sparsity_patterns():
    from mesoscopic.leads import LeadData

    left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    right = LeadData([[0.0]], [[-1.0]], interface_sys=[3], interface_cell=[0])
    whole = -(np.eye(4, k=1) + np.eye(4, k=-1)) + np.diag([0.0, 0.3, -0.2, 0.0])
    cut = whole.copy()
    cut[1, 2] = cut[2, 1] = 0.0  # dense input: the cut bond is not stored at all
    weak = whole.copy()
    weak[1, 2] = weak[2, 1] = -0.2
    hams = [whole, cut, weak]
    problem = rgf.prepare_batch(hams, [[left, right]] * 3)
    t = problem.transmission([-0.5, 0.4])
    assert t.shape == (3, 2, 2, 2)
    for k, ham in enumerate(hams):
        for j, energy in enumerate([-0.5, 0.4]):
            expected = sparse.scattering_matrix(ham, [left, right], energy).transmission_matrix()
            np.testing.assert_allclose(t[k, j], expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(t[1, :, 1, 0], 0.0, atol=1e-14)  # the cut chain


def test_a_batch_evaluates_a_lead_once_when_its_parameters_do_not_change(monkeypatch):
    from mesoscopic.system import InfiniteSystem

    calls = CallCounter(InfiniteSystem.cell_hamiltonian)
    monkeypatch.setattr(
        InfiniteSystem, "cell_hamiltonian", lambda self, *a, **k: calls(self, *a, **k)
    )
    fsys = wire_in_field()
    same_field = realizations(4)  # disorder differs, phi (the leads' parameter) does not
    t = meso.transmission(fsys, [1.2], params=same_field)
    assert calls.calls == 2  # two leads, once each
    calls.calls = 0
    other_field = realizations(4, phi=[0.07, 0.07, 0.1, 0.07])
    t_other = meso.transmission(fsys, [1.2], params=other_field)
    # The leads at phi = 0.07 are kept from the last call; the third element's are its own.
    assert calls.calls == 2
    for k, params in enumerate(other_field):
        expected = sparse_smatrix(fsys, 1.2, params).transmission_matrix()
        np.testing.assert_allclose(t_other[k, 0], expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(t[1, 0], t_other[1, 0], atol=TOLERANCE, rtol=0)


# --------------------------------------------------------------------------------------------
# Reuse between calls, and threads
# --------------------------------------------------------------------------------------------


def fresh_smatrix(fsys, energy, params):
    """The RGF S-matrix with nothing kept from earlier calls (no plan, no lead modes)."""
    rgf._PLANS.clear()
    meso.leads._RECENT_MODES.clear()
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    return rgf.prepare(ham, lead_data(fsys, params=params)).smatrices([energy])[0]


def test_a_loop_over_realizations_reuses_the_plan_and_gives_fresh_results(sparse_calls):
    fsys = wire_in_field(7, 12)
    # New disorder (only the diagonal changes), then a new field (the couplings change),
    # then a hopping switched off (another pattern, so another slicing): each call equals a
    # solve from scratch, and to the sparse solver.
    elements = realizations(3, 7, 12, phi=[0.05, 0.05, 0.11])
    cut = dict(elements[2], phi=0.0)
    for energy, params in [(0.9, p) for p in elements] + [(1.3, cut), (0.9, elements[0])]:
        before = sparse_calls.calls
        loop = meso.smatrix(fsys, energy, params=params)
        assert sparse_calls.calls == before
        fresh = fresh_smatrix(fsys, energy, params)
        np.testing.assert_allclose(loop.data, fresh.data, rtol=0, atol=1e-13)
        assert_same_smatrix(loop, sparse_smatrix(fsys, energy, params))
    assert len(rgf._PLANS) >= 1


def test_a_plan_is_made_again_when_a_coupling_vanishes():
    lat = meso.lattice.square(norbs=1)

    def hopping(site1, site2, t_cut):
        # The hoppings between columns 3 and 4 are t_cut: zero cuts the wire in two.
        return -t_cut if {site1.tag[0], site2.tag[0]} == {3, 4} else -1.0

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(8) for y in range(3))] = 4.0
    syst[lat.neighbors()] = hopping
    fsys = finalized_with_wire_leads(meso, syst, lat, 3)
    through = meso.smatrix(fsys, 1.0, params=dict(t_cut=1.0))
    cut = meso.smatrix(fsys, 1.0, params=dict(t_cut=0.0))
    again = meso.smatrix(fsys, 1.0, params=dict(t_cut=1.0))
    # A clean wire with one open channel at this energy: T = 1.
    assert abs(through.transmission(1, 0) - 1) < 1e-12
    assert cut.transmission(1, 0) == 0
    np.testing.assert_array_equal(again.data, through.data)


def test_lead_modes_are_kept_read_only_by_matrices_and_energy():
    fsys = wire_in_field(5, 6)
    params = realizations(1, 5, 6)[0]
    first = lead_data(fsys, params=params)[0]
    assert lead_data(fsys, params=params)[0] is first  # kept for the same parameters
    again = dataclasses.replace(first)  # equal matrices, another lead
    assert first is not again
    modes = first.modes(0.7)
    assert again.modes(0.7) is modes  # equal matrices, equal energy: computed once
    assert again.modes(0.71) is not modes
    assert not modes[0].wave_functions.flags.writeable
    assert not modes[1].selfenergy.flags.writeable
    other = lead_data(fsys, params=dict(params, phi=0.3))[0]
    assert other.modes(0.7) is not modes


def wide_wire(width: int, length: int) -> tuple[meso.System, dict]:
    fsys, params, _ = make_disordered_wire(meso, width, length)
    return fsys, params


def test_threads_split_a_batch_without_changing_its_numbers(monkeypatch):
    fsys, params = wide_wire(rgf._MIN_THREADED_SLICE, 6)
    energies = np.linspace(0.2, 1.4, 12)
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    stats_one: dict = {}
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    leads = lead_data(fsys, params=params)
    problem = rgf.prepare(ham, leads)
    single = problem.smatrices(energies, stats=stats_one)
    monkeypatch.setenv("MESOSCOPIC_THREADS", "3")
    stats_three: dict = {}
    threaded = problem.smatrices(energies, stats=stats_three)
    assert stats_one["threads"] == 1 and stats_one["num_chunks"] == 1
    assert stats_three["threads"] == 3 and stats_three["num_chunks"] == 3
    for a, b in zip(single, threaded):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12)
    t_single = problem.transmission(energies)
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    np.testing.assert_allclose(problem.transmission(energies), t_single, rtol=0, atol=1e-12)


def test_narrow_slices_and_single_energies_stay_in_the_calling_thread(monkeypatch):
    monkeypatch.setenv("MESOSCOPIC_THREADS", "4")
    fsys, params = wide_wire(6, 5)
    narrow = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)
    )
    stats: dict = {}
    narrow.transmission(np.linspace(0.2, 1.0, 8), stats=stats)
    assert stats["threads"] == 1
    fsys, params = wide_wire(rgf._MIN_THREADED_SLICE, 3)
    wide = rgf.prepare(
        fsys.hamiltonian_submatrix(params=params, sparse=True), lead_data(fsys, params=params)
    )
    wide.transmission([0.5], stats=stats)
    assert stats["threads"] == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_in_the_environment_is_named(monkeypatch, value):
    monkeypatch.setenv("MESOSCOPIC_THREADS", value)
    with pytest.raises(ValueError, match=f"MESOSCOPIC_THREADS='{value}'.*positive integer"):
        rgf.default_threads()


def test_default_threads_follow_the_cores(monkeypatch):
    monkeypatch.delenv("MESOSCOPIC_THREADS", raising=False)
    count = rgf.default_threads()
    assert 1 <= count <= rgf.MAX_DEFAULT_THREADS
    monkeypatch.setenv("MESOSCOPIC_THREADS", " 3 ")
    assert rgf.default_threads() == 3


def test_spin_orbit_couplings_as_sparse_matrices_equal_the_sparse_solver():
    # A spinful wire with Rashba hoppings (2 x 2 blocks per site) 30 sites wide: the couplings
    # between slices have few entries and take the sparse products.
    fsys, params, energies = make_spin_orbit_wire(meso, width=30, length=6)
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    leads = lead_data(fsys, params=params)
    problem = rgf.prepare(ham, leads)
    assert {c.kind for c in problem._blocks.couplings} == {"sparse"}
    for energy in energies:
        fast = problem.smatrices([energy])[0]
        assert_same_smatrix(fast, sparse.scattering_matrix(ham, leads, energy))


def test_a_self_energy_that_solves_another_system_inside_the_threads(monkeypatch):
    # A self-energy lead whose function itself runs a batched solve: it may be called from
    # one of the solver's threads, which must not wait for the pool it runs in.
    monkeypatch.setenv("MESOSCOPIC_THREADS", "2")
    inner, inner_params = wide_wire(rgf._MIN_THREADED_SLICE, 2)
    fsys, params = wide_wire(rgf._MIN_THREADED_SLICE, 4)

    def selfenergy(energy):
        # A weak, energy-dependent absorber made from a solve of another wire.
        t = batch.transmission(inner, energy + np.arange(8) * 0.01, 1, 0, params=inner_params)
        return -0.01j * float(t[0]) * np.eye(4)

    leads = lead_data(fsys, params=params)
    ham = fsys.hamiltonian_submatrix(params=params, sparse=True)
    from mesoscopic.solvers._embedding import SelfEnergyLeadData

    extra = SelfEnergyLeadData(selfenergy, np.arange(4) + 2 * rgf._MIN_THREADED_SLICE)
    problem = rgf.prepare(ham, [*leads, extra])
    energies = np.linspace(0.3, 1.2, 8)
    t = problem.transmission(energies)
    reference = [sparse.scattering_matrix(ham, [*leads, extra], e) for e in energies]
    for k, s in enumerate(reference):
        np.testing.assert_allclose(t[k], s.transmission_matrix(), atol=1e-10)


_FORKED: dict = {}


def _forked_transmission():
    """Run in a forked child: the system is inherited, not pickled."""
    return batch.transmission(*_FORKED["args"], params=_FORKED["params"])


def test_threads_work_in_a_forked_worker_after_the_parent_used_them(monkeypatch):
    # A process forked after the parent's solves (a sweep's worker) gets its own threads.
    import multiprocessing

    monkeypatch.setenv("MESOSCOPIC_THREADS", "2")
    fsys, params = wide_wire(rgf._MIN_THREADED_SLICE, 3)
    energies = np.linspace(0.3, 1.2, 8)
    stats: dict = {}
    expected = batch.transmission(fsys, energies, 1, 0, params=params, stats=stats)
    assert stats["threads"] == 2  # the parent's pool threads exist now
    _FORKED.update(args=(fsys, energies, 1, 0), params=params)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_forked_transmission).get(timeout=120)
    np.testing.assert_allclose(result, expected, atol=1e-12)


def test_lead_modes_found_by_threads_leave_the_warning_filters_alone(monkeypatch):
    import warnings

    monkeypatch.setenv("MESOSCOPIC_THREADS", "2")
    fsys, params, _ = make_spin_orbit_wire(meso, width=14, length=4)
    before = list(warnings.filters)
    for k in range(5):
        batch.smatrices(fsys, np.linspace(0.2, 1.2, 8) + 1e-3 * k, params=params)
    assert list(warnings.filters) == before


def test_kept_lead_modes_stay_within_their_memory_budget(monkeypatch):
    from mesoscopic import leads as leads_module

    fsys, params, _ = make_spin_orbit_wire(meso, width=30, length=3)
    lead = lead_data(fsys, params=params)[0]
    one = leads_module._modes_nbytes(lead.modes(0.15))
    budget = 5 * one  # room for about five energies
    monkeypatch.setattr(leads_module, "_RECENT_MODES_BYTES", budget)
    leads_module._RECENT_MODES.clear()
    batch.smatrices(fsys, np.linspace(0.2, 1.2, 16), params=params)
    kept = sum(size for _, size in leads_module._RECENT_MODES.values())
    assert 0 < kept <= budget
    assert 1 < len(leads_module._RECENT_MODES) < 16


def test_leads_are_kept_between_calls_only_for_plain_parameter_values(monkeypatch):
    from mesoscopic.system import InfiniteSystem

    calls = CallCounter(InfiniteSystem.cell_hamiltonian)
    monkeypatch.setattr(
        InfiniteSystem, "cell_hamiltonian", lambda self, *a, **k: calls(self, *a, **k)
    )
    fsys = wire_in_field()
    first, second = realizations(2)
    meso.smatrix(fsys, 1.2, params=first)
    calls.calls = 0
    meso.smatrix(fsys, 1.2, params=second)  # other disorder, same field: leads kept
    assert calls.calls == 0
    meso.smatrix(fsys, 1.2, params=dict(second, phi=-0.0 * second["phi"]))
    assert calls.calls == 2
    # A lead parameter that is an array may change in place: never kept.
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(4) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = lambda site, shift: 4.0 + shift[0]
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    gated = syst.finalized()
    shift = np.array([0.0])
    before = meso.transmission(gated, 1.0, 1, 0, params=dict(shift=shift))
    shift[0] = 3.5  # the leads' band now starts above the energy
    calls.calls = 0
    after = meso.transmission(gated, 1.0, 1, 0, params=dict(shift=shift))
    assert calls.calls == 2
    assert before == pytest.approx(1.0) and after == pytest.approx(0.0, abs=1e-12)


def test_kept_leads_let_their_system_be_freed():
    import gc
    import weakref

    fsys = wire_in_field()
    meso.smatrix(fsys, 1.2, params=realizations(1)[0])
    alive = weakref.ref(fsys)
    del fsys
    gc.collect()
    assert alive() is None


def test_a_lead_whose_value_functions_take_no_parameter_is_evaluated_every_time():
    # The functions read a variable of the script (as in Kwant's own tests): nothing
    # tells that it changed, so such a lead is never kept.
    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    syst[(chain(i) for i in range(3))] = 2.0
    syst[chain.neighbors()] = -1.0
    lead[chain(0)] = lambda site: onsite_value
    lead[chain.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    onsite_value = 4.0  # the band [2, 6]: E = 1 is below it
    assert meso.smatrix(fsys, 1.0, out_leads=[1], in_leads=[0]).data.shape == (0, 0)
    onsite_value = 2.0  # the band [0, 4]
    assert meso.smatrix(fsys, 1.0, out_leads=[1], in_leads=[0]).data.shape == (1, 1)


def test_kept_leads_never_serve_kwargs_functions_or_another_lead_number():
    from mesoscopic import transport
    from mesoscopic.system import System

    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(5) for y in range(2))] = lambda site, mu: 4.0 - mu
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(2))] = lambda site, **params: 4.0 - params["mu"]
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    for mu in (0.5, 1.5):  # a function of **params may read any parameter: never kept
        cell = transport.lead_data(fsys, params={"mu": mu})[0].h_cell
        np.testing.assert_allclose(np.diag(cell).real, 4.0 - mu)
    batched = meso.transmission(fsys, [1.2], 1, 0, params=[{"mu": 0.5}, {"mu": 1.5}])
    for k, mu in enumerate((0.5, 1.5)):
        expected = sparse_smatrix(fsys, 1.2, {"mu": mu}).transmission(1, 0)
        assert batched[k, 0] == pytest.approx(expected, abs=TOLERANCE)
    # One lead object serving as both leads: each keeps its own interface.
    plain = meso.Builder()
    plain[(lat(x, y) for x in range(5) for y in range(2))] = lambda site, mu: 4.0 - mu
    plain[lat.neighbors()] = -1.0
    plain_lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    plain_lead[(lat(0, y) for y in range(2))] = lambda site, mu: 4.0 - mu
    plain_lead[lat.neighbors()] = -1.0
    plain.attach_lead(plain_lead)
    plain.attach_lead(plain_lead.reversed())
    built = plain.finalized()
    twice = System(
        sites=built.sites,
        norbs=built.norbs,
        onsite=built._onsite,
        hoppings=built._hoppings,
        leads=[built.leads[0], built.leads[0]],
        lead_interfaces=built.lead_interfaces,
    )
    data = transport.lead_data(twice, params={"mu": 0.5})
    for k in (0, 1):
        np.testing.assert_array_equal(data[k].interface_sys, built.lead_interfaces[k])


def test_lead_matrices_cannot_be_changed_in_place():
    fsys = wire_in_field(4, 5)
    lead = lead_data(fsys, params=realizations(1, 4, 5)[0])[0]
    with pytest.raises(ValueError):
        lead.h_cell.flags.writeable = True
    with pytest.raises(ValueError):
        lead.hop[0, 0] = 1.0


def test_the_hamiltonian_keeps_its_structure_between_calls():
    from mesoscopic import system as system_module

    fsys = wire_in_field(5, 7)
    first, second = realizations(2, 5, 7)
    for params in (first, second, dict(second, phi=0.0)):
        fast = sp.csr_matrix(fsys.hamiltonian_submatrix(params=params, sparse=True))
        plain = system_module._assemble(
            fsys.num_orbitals,
            fsys.orb_offsets,
            fsys._onsite,
            fsys._hoppings,
            params,
            phases=fsys._phase_function(params),
        )
        assert (fast != plain).nnz == 0
        np.testing.assert_array_equal(fast.indptr, plain.indptr)
        np.testing.assert_array_equal(fast.indices, plain.indices)
    # Entries that share a place are added, as SciPy does: no kept structure for them.
    rows, cols = np.array([0, 1, 1]), np.array([1, 0, 0])
    assert system_module._csr_structure(rows, cols, 2) is False
    order, indices, indptr = system_module._csr_structure(np.array([1, 0]), np.array([0, 1]), 2)
    assert order.tolist() == [1, 0] and indices.tolist() == [1, 0] and indptr.tolist() == [0, 1, 2]


def test_a_hamiltonian_the_system_did_not_check_is_checked_by_the_solvers():
    lat = meso.lattice.square(norbs=2)
    syst = meso.Builder()
    syst[(lat(x, 0) for x in range(4))] = np.array([[1.0, 0.5], [0.0, 1.0]])  # not Hermitian
    syst[lat.neighbors()] = -np.eye(2)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[lat(0, 0)] = np.eye(2)
    lead[lat.neighbors()] = -np.eye(2)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    with pytest.raises(ValueError, match="not Hermitian"):
        meso.transmission(fsys, [0.5])
    for solver in ("rgf", "sparse"):
        with pytest.raises(ValueError, match="must be Hermitian"):
            meso.transmission(fsys, [0.5], solver=solver, check_hermiticity=False)
    with pytest.raises(ValueError, match="must be Hermitian"):
        meso.smatrix(fsys, 0.5, check_hermiticity=False)


def test_constants_written_site_by_site_are_read_together_as_they_are_now():
    # Disorder drawn once and written site by site makes one constant group per site; a
    # run of them is converted and checked in one pass: the same blocks, an array changed
    # in place seen, a bad value named as site by site.
    lat = meso.lattice.chain(norbs=2)
    rng = np.random.default_rng(3)
    values = [rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)) for _ in range(12)]
    values = [(v + v.conj().T) / 2 for v in values]
    syst = meso.Builder()
    for i, value in enumerate(values):
        syst[lat(i)] = value
    syst[lat(12)] = 0.5 * np.eye(2)
    syst[lat(13)] = lambda site, shift: shift * np.eye(2)
    syst[lat.neighbors()] = -np.eye(2)
    fsys = syst.finalized()
    params = {"shift": 0.1}

    def block(i):
        index = fsys.sites.index(lat(i))
        return np.asarray(fsys.hamiltonian(index, index, params=params))

    for i, value in enumerate(values):
        np.testing.assert_array_equal(block(i), value)
    np.testing.assert_array_equal(block(13), 0.1 * np.eye(2))
    values[5][0, 1] = 0.25 + 0.5j
    values[5][1, 0] = 0.25 - 0.5j
    matrix = fsys.hamiltonian_submatrix(params=params)
    index = fsys.sites.index(lat(5))
    np.testing.assert_array_equal(matrix[2 * index : 2 * index + 2, 2 * index : 2 * index + 2],
                                  values[5])  # fmt: skip
    values[7][1, 1] = np.nan
    with pytest.raises(ValueError, match=r"\(7,\).*NaN"):
        fsys.hamiltonian_submatrix(params=params)
    values[7][1, 1] = 0.0
    values[3][0, 1] = 5.0
    with pytest.raises(ValueError, match=r"\(3,\).*not Hermitian"):
        fsys.hamiltonian_submatrix(params=params)


def test_a_constant_array_changed_in_place_after_finalization_is_seen_as_in_kwant():
    # Kwant reads a constant value at every evaluation: an array changed in place after
    # finalization gives the new Hamiltonian (no evaluation of constants is kept).
    lat = meso.lattice.chain(norbs=2)
    onsite = np.zeros((2, 2))
    syst = meso.Builder()
    for i in range(5):
        syst[lat(i)] = onsite
    syst[lat.neighbors()] = -np.eye(2)
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = np.zeros((2, 2))
    lead[lat.neighbors()] = -np.eye(2)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    assert meso.smatrix(fsys, 0.5).transmission(1, 0) == pytest.approx(2.0, abs=1e-12)
    onsite[0, 0] = 1.0
    assert fsys.hamiltonian_submatrix()[4, 4] == 1.0
    assert np.asarray(fsys.hamiltonian(2, 2))[0, 0] == 1.0
    assert meso.smatrix(fsys, 0.5).transmission(1, 0) < 1.99
