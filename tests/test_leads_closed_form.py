"""Closed-form modes of leads made of independent chains, against the general mode solver.

A lead whose hopping commutes with its cell Hamiltonian (a clean square-lattice wire, with or
without a field along it or spin) is a set of independent chains, one per transverse mode;
its modes then have a closed form. The general solver (the stabilized eigenproblem) is the
reference: the same open channels, momenta, velocities, unit-current wave functions (up to
the free phase of each mode, or the free basis of a degenerate set), self-energy and
evanescent subspace, to 1e-12, including energies at and next to subband edges, where the
general solver's decisions are the specification.
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import leads as leads_module
from mesoscopic.leads import LeadData, PropagatingModes, StabilizedModes
from mesoscopic.leads import _modes_at_energy as modes
from mesoscopic.solvers.sparse import scattering_matrix

TOLERANCE = 1e-12


def transverse(width: int) -> np.ndarray:
    """Hopping -1 between neighbours across a hard-wall strip."""
    return -(np.eye(width, k=1) + np.eye(width, k=-1))


def clean_wire(width: int = 6) -> tuple[np.ndarray, np.ndarray]:
    return 4 * np.eye(width) + transverse(width), -np.eye(width)


def field_wire(width: int = 5, flux: float = 0.37) -> tuple[np.ndarray, np.ndarray]:
    """A Peierls phase along the lead (the gauge of a field perpendicular to a ribbon whose
    vector potential is constant across it): hop = -e^{i flux} 1."""
    return 4 * np.eye(width) + transverse(width), -np.exp(1j * flux) * np.eye(width)


def commuting_wire(width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A hop that is not proportional to 1 but a function of the transverse Hamiltonian
    (diagonal hoppings across the lead), with a complex part: still independent chains."""
    t = transverse(width)
    return 4 * np.eye(width) + t, -np.eye(width) + (0.2 + 0.15j) * t


def random_chains(seed: int = 3, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Independent chains in a random transverse basis, complex hoppings."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    onsite = rng.uniform(-1.0, 1.0, n)
    hopping = rng.uniform(0.6, 1.4, n) * np.exp(1j * rng.uniform(-np.pi, np.pi, n))
    h = q @ np.diag(onsite) @ q.conj().T
    return (h + h.conj().T) / 2, q @ np.diag(hopping) @ q.conj().T


def spin_wire(width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Spin-degenerate wire (every chain twice): degenerate modes at every energy."""
    h, v = clean_wire(width)
    return np.kron(h, np.eye(2)), np.kron(v, np.eye(2))


LEADS = {
    "clean wire": clean_wire,
    "field along the wire": field_wire,
    "commuting hop": commuting_wire,
    "random chains": random_chains,
    "spin-degenerate": spin_wire,
}


def chain_bands(h: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(onsite, |hopping|) of the chains, from the general band structure at k = 0 and pi...

    computed independently of the package: the eigenvalues of h and of |v| in the common
    basis of the test leads, which are all normal commuting pairs."""
    combination = h + 0.41 * (v + v.conj().T) + 0.29j * (v - v.conj().T)
    _, basis = np.linalg.eigh(combination)
    onsite = np.diag(basis.conj().T @ h @ basis).real
    hopping = np.abs(np.diag(basis.conj().T @ v @ basis))
    return onsite, hopping


def solve(h, v, energy, *, closed_form, monkeypatch, projectors=None):
    monkeypatch.setattr(leads_module, "_CLOSED_FORM_MODES", closed_form)
    leads_module._MODES_CACHE.clear()
    leads_module._RECENT_MODES.clear()
    leads_module._EIGEN_CACHE.clear()
    return modes(h, v, energy, projectors=projectors)


@pytest.fixture
def counted(monkeypatch):
    """Energies solved by the closed form (a list that the closed form appends to)."""
    calls: list[float] = []
    original = leads_module._chain_block_modes

    def wrapper(chains, energies):
        calls.extend(float(e) for e in energies)
        return original(chains, energies)

    monkeypatch.setattr(leads_module, "_chain_block_modes", wrapper)
    leads_module._RECENT_MODES.clear()  # count from scratch, not what earlier tests kept
    return calls


def mode_projectors(prop: PropagatingModes) -> list[tuple[float, float, np.ndarray]]:
    """(momentum, velocity, sum |phi><phi|) of each set of modes with one k and v, sorted.

    The sum is independent of the phases of the modes and of the basis of a degenerate set."""
    keys = np.round(np.c_[np.cos(prop.momenta), np.sin(prop.momenta), prop.velocities], 8)
    groups = {}
    for index, key in enumerate(map(tuple, keys)):
        groups.setdefault(key, []).append(index)
    result = []
    for key in sorted(groups):
        members = groups[key]
        waves = prop.wave_functions[:, members]
        result.append(
            (prop.momenta[members[0]], prop.velocities[members[0]], waves @ waves.conj().T)
        )
    return result


def column_projector(vectors: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(vectors)
    return q @ q.conj().T


def assert_same_modes(
    fast: tuple[PropagatingModes, StabilizedModes],
    reference: tuple[PropagatingModes, StabilizedModes],
    *,
    closed_form: bool = True,
) -> None:
    """The closed form's modes (``fast``) equal the general solver's; with ``closed_form``
    false ``fast`` came from the general solver too (an energy in the edge window), and the
    checks of the closed form's own conventions are left out."""
    (prop, stab), (prop_ref, stab_ref) = fast, reference
    assert prop.num_modes == prop_ref.num_modes
    assert tuple(prop.block_nmodes) == tuple(prop_ref.block_nmodes)
    np.testing.assert_array_equal(prop.blocks, prop_ref.blocks)
    # Unit current, incoming (v < 0) then outgoing, in the general solver's order.
    np.testing.assert_allclose(
        np.exp(1j * prop.momenta), np.exp(1j * prop_ref.momenta), rtol=0, atol=TOLERANCE
    )
    scale = max(1.0, float(np.abs(prop_ref.velocities).max(initial=0.0)))
    np.testing.assert_allclose(
        prop.velocities, prop_ref.velocities, rtol=0, atol=TOLERANCE * scale
    )
    assert np.all((prop.momenta > -np.pi) & (prop.momenta <= np.pi))
    assert np.all((prop_ref.momenta > -np.pi) & (prop_ref.momenta <= np.pi))
    for (k, v, p), (k_ref, v_ref, p_ref) in zip(
        mode_projectors(prop), mode_projectors(prop_ref), strict=True
    ):
        assert np.isclose(np.exp(1j * k), np.exp(1j * k_ref), atol=TOLERANCE)
        assert abs(v - v_ref) <= TOLERANCE * scale
        # |v| |phi|^2 = 1 for each mode: the weighted projector agrees to 1e-12 relative.
        np.testing.assert_allclose(p * abs(v), p_ref * abs(v_ref), rtol=0, atol=TOLERANCE)
    # The same factors of hop (bit for bit) and the same self-energy and sources.
    np.testing.assert_array_equal(stab.hop_left, stab_ref.hop_left)
    np.testing.assert_array_equal(stab.hop_right, stab_ref.hop_right)
    sigma_scale = max(1.0, float(np.abs(stab_ref.selfenergy).max()))
    np.testing.assert_allclose(
        stab.selfenergy, stab_ref.selfenergy, rtol=0, atol=TOLERANCE * sigma_scale
    )
    np.testing.assert_allclose(
        stab.sources @ stab.sources.conj().T,
        stab_ref.sources @ stab_ref.sources.conj().T,
        rtol=0,
        atol=TOLERANCE * sigma_scale,
    )
    # The evanescent solutions: unit-norm columns (alpha_{-1}, beta_0) spanning the same
    # decaying subspace, so that lambda -> 0 never overflows.
    count = stab.num_modes
    assert stab.alpha_out.shape == stab_ref.alpha_out.shape
    evanescent = np.vstack([stab.alpha_out[:, count:], stab.beta_out[:, count:]])
    evanescent_ref = np.vstack([stab_ref.alpha_out[:, count:], stab_ref.beta_out[:, count:]])
    np.testing.assert_allclose(np.linalg.norm(evanescent, axis=0), 1.0, atol=TOLERANCE)
    if evanescent.shape[1]:
        np.testing.assert_allclose(
            column_projector(evanescent), column_projector(evanescent_ref), atol=1e-10
        )
    if not closed_form:
        return
    # Kwant's current relation holds on the stabilized basis.
    current = 1j * stab.vecs.conj().T @ stab.vecslmbdainv
    current = current + current.conj().T
    expected = np.diag(
        np.r_[np.ones(count), -np.ones(count), np.zeros(stab.vecs.shape[1] - 2 * count)]
    )
    np.testing.assert_allclose(current, expected, atol=1e-10)


@pytest.mark.parametrize("name", LEADS)
def test_closed_form_modes_equal_the_general_solver_across_the_bands(name, monkeypatch, counted):
    h, v = LEADS[name]()
    onsite, hopping = chain_bands(h, v)
    low, high = float(np.min(onsite - 2 * hopping)), float(np.max(onsite + 2 * hopping))
    energies = np.linspace(low - 0.7, high + 0.7, 23)
    for energy in energies:
        fast = solve(h, v, energy, closed_form=True, monkeypatch=monkeypatch)
        reference = solve(h, v, energy, closed_form=False, monkeypatch=monkeypatch)
        assert_same_modes(fast, reference)
    # The closed form ran at every energy (none of these is next to a band edge) and the
    # general solver only when it was switched off.
    assert counted == list(energies)


@pytest.mark.parametrize("name", ["clean wire", "field along the wire", "random chains"])
@pytest.mark.parametrize("side", [-1.0, 1.0], ids=["below", "above"])
@pytest.mark.parametrize("which", ["lowest", "highest"])
def test_closed_form_modes_at_and_next_to_subband_edges(name, side, which, monkeypatch, counted):
    # The general solver's edge handling is the specification: exactly at an edge the
    # channel is closed; 1e-13 inside, its velocity is below the propagation threshold; from
    # about 1e-12 on it is open. Every distance from 0 to 1e-3, on both sides of the lowest
    # and of the highest edge, gives the same modes on both roads.
    h, v = LEADS[name]()
    onsite, hopping = chain_bands(h, v)
    edges = np.r_[onsite - 2 * hopping, onsite + 2 * hopping]
    edge = float(edges.min() if which == "lowest" else edges.max())
    distances = [0.0, 1e-13, 1e-12, 3e-11, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 5e-5, 2e-4, 1e-3]
    window = leads_module._CHAIN_EDGE_WINDOW * float(hopping.max())
    for distance in distances:
        energy = edge + side * distance
        fast = solve(h, v, energy, closed_form=True, monkeypatch=monkeypatch)
        reference = solve(h, v, energy, closed_form=False, monkeypatch=monkeypatch)
        assert_same_modes(fast, reference, closed_form=distance > window)
    # The closed form decides the energies beyond its edge window, the general solver the
    # others: both roads ran.
    assert counted == [edge + side * d for d in distances if d > window]
    assert len(counted) == 2


def test_energy_exactly_on_the_edge_counts_the_channel_closed_on_both_roads(monkeypatch):
    h, v = clean_wire(4)
    onsite, hopping = chain_bands(h, v)
    edge = float(np.min(onsite - 2 * hopping))
    for closed_form in (True, False):
        prop, stab = solve(h, v, edge, closed_form=closed_form, monkeypatch=monkeypatch)
        assert prop.num_modes == 0
        assert np.all(np.isfinite(stab.selfenergy))


def test_projector_blocks_of_a_spin_wire_use_the_closed_form_per_block(monkeypatch, counted):
    # A Zeeman-split spin wire with spin as a conservation law: each block is a clean wire.
    h, v = clean_wire(5)
    zeeman = 0.3
    h_spin = np.kron(h, np.eye(2)) + zeeman * np.kron(np.eye(5), np.diag([1.0, -1.0]))
    v_spin = np.kron(v, np.eye(2))
    up = np.kron(np.eye(5), [[1.0], [0.0]])
    down = np.kron(np.eye(5), [[0.0], [1.0]])
    for energy in (0.4, 1.2, 3.9):
        fast = solve(h_spin, v_spin, energy, closed_form=True, monkeypatch=monkeypatch,
                     projectors=[up, down])  # fmt: skip
        reference = solve(h_spin, v_spin, energy, closed_form=False, monkeypatch=monkeypatch,
                          projectors=[up, down])  # fmt: skip
        assert_same_modes(fast, reference)
        assert fast[0].block_nmodes[0] != fast[0].block_nmodes[1] or energy > 3
    assert len(counted) == 6


def test_strongly_evanescent_chains_stay_finite(monkeypatch):
    # Far outside the bands lambda ~ 1e-12: the stored solutions keep unit norm and the
    # self-energy is hop (E - h_cell)^-1 hop^dagger to relative order 1e-24.
    h, v = clean_wire(3)
    energy = 1e12
    prop, stab = solve(h, v, energy, closed_form=True, monkeypatch=monkeypatch)
    reference = solve(h, v, energy, closed_form=False, monkeypatch=monkeypatch)
    assert prop.num_modes == 0
    assert np.all(np.isfinite(stab.alpha_out)) and np.all(np.isfinite(stab.beta_out))
    expected = v @ np.linalg.inv(energy * np.eye(3) - h) @ v.conj().T
    np.testing.assert_allclose(stab.selfenergy, expected, rtol=0, atol=1e-12 / energy)
    # The general solver agrees to 1e-12 of the hopping (its own rounding there is ~1e-16,
    # 1e-4 of this tiny self-energy; the closed form is exact).
    np.testing.assert_allclose(stab.selfenergy, reference[1].selfenergy, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    ("description", "lead"),
    [
        ("field across the wire (hop does not commute)",
         lambda: (clean_wire(4)[0], -np.diag(np.exp(0.3j * np.arange(4))))),
        ("commutes only to 1e-9", lambda: (clean_wire(4)[0] + 1e-9 * np.diag([1, 0, 0, 0]),
                                           commuting_wire(4)[1])),
        ("rank-deficient hop", lambda: (np.array([[0.0, 0.5], [0.5, 0.3]]),
                                        np.array([[-1.0, 0.0], [0.0, 0.0]]))),
        ("a chain 1e-5 weaker than the others", lambda: (np.zeros((2, 2)),
                                                         -np.diag([1.0, 1e-5]))),
        ("non-normal hop", lambda: (np.zeros((2, 2)), np.array([[-1.0, 0.5], [0.0, -1.0]]))),
    ],
)  # fmt: skip
def test_leads_that_are_not_independent_chains_take_the_general_solver(description, lead):
    h, v = lead()
    assert leads_module._find_chains(np.asarray(h, complex), np.asarray(v, complex)) is None


def test_detection_of_a_clean_wire_with_degenerate_transverse_energies():
    # hop = c 1: any eigenbasis of h_cell, even a degenerate one, is the chains' basis.
    h, v = spin_wire(3)
    chains = leads_module._find_chains(h.astype(complex), v.astype(complex))
    assert chains is not None
    np.testing.assert_allclose(chains.hopping, 1.0)
    np.testing.assert_allclose(
        np.sort(chains.onsite), np.repeat(np.sort(np.linalg.eigvalsh(clean_wire(3)[0])), 2)
    )


def wire_system(width: int = 4, length: int = 5, seed: int = 1):
    lat = meso.lattice.square(norbs=1)
    rng = np.random.default_rng(seed)
    syst = meso.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = 4.0 + rng.uniform(-0.8, 0.8)
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def test_smatrix_with_closed_form_leads_matches_the_general_solver_and_the_rgf(
    monkeypatch, counted
):
    # The sparse solver at one energy and the RGF over a batch use the same lead modes:
    # identical S-matrices; against the general solver's modes, S agrees up to the free
    # phase of each mode, so |S_ij|^2 per mode (no degenerate modes in this wire) agrees.
    fsys = wire_system()
    energies = np.array([0.35, 1.2, 2.7])
    batched = meso.smatrices(fsys, energies, options={"solver": "rgf"})
    # By the closed form, once per energy: the two ends' leads have equal matrices (a real
    # hopping, so the reversed lead's is the same), which share their modes.
    assert sorted(counted) == energies.tolist()
    for energy, s_batch in zip(energies, batched, strict=True):
        s_single = meso.smatrix(fsys, float(energy))
        np.testing.assert_allclose(s_batch.data, s_single.data, atol=1e-12)
        monkeypatch.setattr(leads_module, "_CLOSED_FORM_MODES", False)
        leads_module._MODES_CACHE.clear()
        leads_module._RECENT_MODES.clear()
        s_general = meso.smatrix(fsys, float(energy))
        monkeypatch.setattr(leads_module, "_CLOSED_FORM_MODES", True)
        np.testing.assert_allclose(
            np.abs(s_single.data) ** 2, np.abs(s_general.data) ** 2, atol=1e-12
        )
        data = np.asarray(s_single.data)
        np.testing.assert_allclose(data.conj().T @ data, np.eye(data.shape[0]), atol=1e-12)


def test_lead_data_modes_equal_the_validating_entry_point():
    h, v = clean_wire(5)
    lead = LeadData(h, v, interface_sys=np.arange(5), interface_cell=np.arange(5))
    for energy in (0.5, 2.0, 9.0):
        prop, stab = lead.modes(energy)
        prop_ref, stab_ref = modes(h, v, energy)
        np.testing.assert_array_equal(prop.wave_functions, prop_ref.wave_functions)
        np.testing.assert_array_equal(stab.selfenergy, stab_ref.selfenergy)
    with pytest.raises(ValueError, match="energy"):
        lead.modes(float("nan"))


def test_scattering_matrix_of_bare_leads_is_unitary_with_closed_form_leads():
    h, v = clean_wire(3)
    cell = np.arange(3)
    pair = [
        LeadData(h, v, interface_sys=cell, interface_cell=cell),
        LeadData(h, v.conj().T, interface_sys=cell + 3, interface_cell=cell),
    ]
    h_sys = np.kron(np.eye(2), h) + np.kron(np.eye(2, k=1), v) + np.kron(np.eye(2, k=-1), v.T)
    s = np.asarray(scattering_matrix(h_sys + 0.2 * np.eye(6), pair, 1.7).data)
    np.testing.assert_allclose(s.conj().T @ s, np.eye(s.shape[0]), atol=1e-12)


def test_momenta_are_wrapped_into_the_solvers_interval_and_kept_where_inside_it():
    inside = np.array([0.1, -3.0, np.pi, 2.5])
    np.testing.assert_array_equal(leads_module._wrapped(inside), inside)
    outside = np.array([-np.pi, np.pi + 3e-7, -3.2, 7.0])
    wrapped = leads_module._wrapped(outside)
    assert np.all((wrapped > -np.pi) & (wrapped <= np.pi))
    np.testing.assert_allclose(np.exp(1j * wrapped), np.exp(1j * outside), atol=1e-15)
