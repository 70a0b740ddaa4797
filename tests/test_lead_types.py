"""Leads of every kind (builder, self-energy, modes) in the sparse and RGF solvers."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import leads as leads_module
from mesoscopic.solvers._embedding import SelfEnergyLeadData
from mesoscopic.solvers.sparse import scattering_matrix
from mesoscopic.system import ModesLead, SelfEnergyLead

SOLVERS = ("sparse", "rgf")


def _wide_band(width: float, site: meso.lattice.Site) -> SelfEnergyLead:
    return SelfEnergyLead(lambda energy: [[-0.5j * width]], [site])


def _smatrices(fsys: meso.System, energies: np.ndarray, solver: str) -> meso.batch.SMatrixBatch:
    stats: dict[str, object] = {}
    batch = meso.batch.smatrices(fsys, energies, solver=solver, stats=stats)
    assert stats["solver"] == solver
    if solver == "rgf":
        assert stats["sparse_fallback_energies"] == 0
    return batch


@pytest.mark.parametrize("solver", SOLVERS)
def test_level_between_wide_band_leads_is_breit_wigner(solver: str) -> None:
    eps, gamma_l, gamma_r = 0.3, 0.1, 0.25
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = eps
    fsys = syst.finalized().with_leads([_wide_band(gamma_l, lat(0)), _wide_band(gamma_r, lat(0))])
    energies = np.linspace(-0.5, 1.0, 11)
    exact = gamma_l * gamma_r / ((energies - eps) ** 2 + (gamma_l + gamma_r) ** 2 / 4)
    t = meso.batch.transmission(fsys, energies, 1, 0, solver=solver)
    np.testing.assert_allclose(t, exact, rtol=1e-12, atol=1e-14)
    batch = _smatrices(fsys, energies, solver)
    np.testing.assert_allclose(batch.transmission(1, 0), exact, rtol=1e-12, atol=1e-14)
    assert batch.check_unitarity().max() < 1e-13
    assert batch.num_propagating(0).tolist() == [1] * energies.size


def _caroli(h: np.ndarray, sigmas: list[np.ndarray], energy: float) -> np.ndarray:
    """Dense Caroli transmission matrix, an independent check."""
    green = np.linalg.inv(energy * np.eye(len(h)) - h - sum(sigmas))
    gammas = [1j * (s - s.conj().T) for s in sigmas]
    count = len(sigmas)
    out = np.zeros((count, count))
    for i in range(count):
        for j in range(count):
            if i != j:
                out[i, j] = np.trace(gammas[i] @ green @ gammas[j] @ green.conj().T).real
    return out


@pytest.mark.parametrize("solver", SOLVERS)
def test_chain_with_wide_band_ends_and_a_probe_matches_dense_caroli(solver: str) -> None:
    rng = np.random.default_rng(7)
    onsite = rng.uniform(-0.5, 0.5, 6)
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    for i, v in enumerate(onsite):
        syst[lat(i)] = v
    syst[lat.neighbors()] = -1.0
    widths = {0: 0.7, 5: 1.3, 3: 0.2}  # two ends and an interior probe
    fsys = syst.finalized().with_leads([_wide_band(w, lat(i)) for i, w in widths.items()])
    h = fsys.hamiltonian_submatrix()
    energies = np.array([-1.5, -0.2, 0.4, 1.9])
    t = meso.batch.transmission(fsys, energies, solver=solver)
    for k, e in enumerate(energies):
        sigmas = []
        for i, w in widths.items():
            s = np.zeros((6, 6), complex)
            s[i, i] = -0.5j * w
            sigmas.append(s)
        expected = _caroli(h, sigmas, e)
        off = ~np.eye(3, dtype=bool)
        np.testing.assert_allclose(t[k][off], expected[off], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(t[k].sum(axis=0), 1.0, rtol=1e-12)  # one channel each
    batch = _smatrices(fsys, energies, solver)
    np.testing.assert_allclose(batch.transmission_matrix(), t, rtol=1e-11, atol=1e-13)
    assert batch.check_unitarity().max() < 1e-12


def _wire() -> tuple[meso.Builder, meso.Builder, object]:
    lat = meso.lattice.square(norbs=1)
    rng = np.random.default_rng(3)
    disorder = {(x, y): rng.uniform(-0.8, 0.8) for x in range(5) for y in range(3)}
    syst = meso.Builder()
    for (x, y), v in disorder.items():
        syst[lat(x, y)] = 4.0 + v
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    return syst, lead, lat


def _builder_and_function_leads(kind: str) -> tuple[meso.System, meso.System]:
    """A disordered wire with two builder leads, and the same with lead 1 as a `kind` lead."""
    syst, lead, _ = _wire()
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    flead = fsys.leads[1]
    sys_orbs, cell_orbs = fsys.lead_interface_orbitals(1)
    sites = [fsys.sites[i] for i in fsys.lead_interfaces[1]]

    def selfenergy(energy: float, args: tuple[object, ...] = (), *, params: object = None):
        return flead.selfenergy(energy)[np.ix_(cell_orbs, cell_orbs)]

    def modes(energy: float, args: tuple[object, ...] = (), *, params: object = None):
        h = flead.cell_hamiltonian()[np.ix_(cell_orbs, cell_orbs)]
        hop = flead.hopping_away()[np.ix_(cell_orbs, cell_orbs)]
        return leads_module.modes(h, hop.conj().T, energy=energy)

    replacement = (
        SelfEnergyLead(selfenergy, sites) if kind == "selfenergy" else ModesLead(modes, sites)
    )
    first = meso.System(
        sites=fsys.sites,
        norbs=fsys.norbs,
        onsite=fsys._onsite,
        hoppings=fsys._hoppings,
        leads=fsys.leads[:1],
        lead_interfaces=fsys.lead_interfaces[:1],
    )
    assert np.array_equal(sys_orbs, fsys.lead_interfaces[1])  # one orbital per site
    return fsys, first.with_leads([replacement])


@pytest.mark.parametrize("kind", ["selfenergy", "modes"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_lead_from_a_builder_leads_selfenergy_gives_its_smatrix(kind: str, solver: str) -> None:
    builder_sys, function_sys = _builder_and_function_leads(kind)
    # One, two and three open channels, and an energy below the band of lead 1.
    energies = np.array([0.5, 1.5, 2.5, 3.9, -0.3])
    reference = _smatrices(builder_sys, energies, solver)
    result = _smatrices(function_sys, energies, solver)
    np.testing.assert_allclose(
        result.transmission_matrix(), reference.transmission_matrix(), rtol=0, atol=1e-12
    )
    assert result.num_propagating(1).tolist() == reference.num_propagating(1).tolist()
    assert result.check_unitarity().max() < 1e-12
    for s_ref, s in zip(reference, result):
        for i in range(2):
            for j in range(2):
                a, b = s.submatrix(i, j), s_ref.submatrix(i, j)
                # The channels of lead 1 are another orthonormal basis of the same space:
                # every block has the same singular values.
                np.testing.assert_allclose(
                    np.linalg.svd(a, compute_uv=False),
                    np.linalg.svd(b, compute_uv=False),
                    atol=1e-12,
                )
                if i == 0 and j == 0:
                    np.testing.assert_allclose(a, b, atol=1e-12)
    t = meso.batch.transmission(function_sys, energies, solver=solver)
    np.testing.assert_allclose(t, reference.transmission_matrix(), atol=1e-12)


def test_single_channel_selfenergy_lead_has_the_builder_leads_smatrix_moduli() -> None:
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = 0.0
    syst[lat(1)] = 0.7
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    both = syst.finalized()
    syst.attach_lead(lead.reversed())
    reference_sys = syst.finalized()
    chain = reference_sys.leads[1]
    probe = SelfEnergyLead(lambda e: chain.selfenergy(e), [lat(3)])
    function_sys = both.with_leads([probe])
    energies = np.array([-1.7, -0.4, 0.9])
    for solver in SOLVERS:
        reference = _smatrices(reference_sys, energies, solver)
        result = _smatrices(function_sys, energies, solver)
        for s_ref, s in zip(reference, result):
            np.testing.assert_allclose(np.abs(s.data), np.abs(s_ref.data), atol=1e-12)


def test_rgf_equals_sparse_with_probes_inside_a_multiterminal_system() -> None:
    syst, lead, lat = _wire()
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    probes = [_wide_band(0.3 + 0.1 * k, lat(2, k)) for k in range(3)]
    fsys = syst.finalized().with_leads(probes)
    energies = np.linspace(0.2, 3.5, 6)
    sparse = _smatrices(fsys, energies, "sparse")
    rgf = _smatrices(fsys, energies, "rgf")
    np.testing.assert_allclose(rgf.transmission_matrix(), sparse.transmission_matrix(), atol=1e-12)
    for s_rgf, s_sparse in zip(rgf, sparse):
        np.testing.assert_allclose(np.abs(s_rgf.data), np.abs(s_sparse.data), atol=1e-12)
    stats: dict[str, object] = {}
    t = meso.batch.transmission(fsys, energies, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 0
    np.testing.assert_allclose(t, sparse.transmission_matrix(), atol=1e-12)


def test_multiorbital_wide_band_lead_has_one_channel_per_coupled_direction() -> None:
    lat = meso.lattice.chain(norbs=2)
    syst = meso.Builder()
    syst[(lat(i) for i in range(3))] = np.diag([0.1, -0.2])
    syst[lat.neighbors()] = -np.eye(2)
    gamma = np.array([[0.5, 0.0], [0.0, 0.0]])  # only the first orbital couples
    left = SelfEnergyLead(lambda e: -0.5j * gamma, [lat(0)])
    right = SelfEnergyLead(lambda e: -0.5j * np.eye(2), [lat(2)])
    fsys = syst.finalized().with_leads([left, right])
    batch = _smatrices(fsys, np.array([0.0, 0.5]), "sparse")
    assert batch.num_propagating(0).tolist() == [1, 1]
    assert batch.num_propagating(1).tolist() == [2, 2]
    assert batch.check_unitarity().max() < 1e-13


def test_self_energy_lead_errors_name_the_problem() -> None:
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(2))] = 0.0
    syst[lat.neighbors()] = -1.0
    fsys = syst.finalized()
    advanced = fsys.with_leads([SelfEnergyLead(lambda e: [[0.5j]], [lat(0)])])
    with pytest.raises(ValueError, match="not retarded"):
        meso.smatrix(advanced, 0.0)
    wrong = fsys.with_leads([SelfEnergyLead(lambda e: np.eye(2), [lat(0)])])
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*1 interface orbitals"):
        meso.batch.transmission(wrong, [0.0], solver="rgf")
    with pytest.raises(ValueError, match="not a site of the scattering region"):
        fsys.with_leads([SelfEnergyLead(lambda e: [[-1j]], [lat(5)])])
    with pytest.raises(TypeError, match="must be a function"):
        SelfEnergyLead(1.0, [lat(0)])
    failing = fsys.with_leads([SelfEnergyLead(lambda e: 1 / 0, [lat(0)])])
    with pytest.raises(meso.system.UserCodeError, match="ZeroDivisionError"):
        meso.smatrix(failing, 0.0)
    with pytest.raises(TypeError, match="LeadData, SelfEnergyLeadData or ModesLeadData"):
        scattering_matrix([[0.0]], [object()], 0.0)


def test_self_energy_lead_parameters_reach_the_function() -> None:
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = 0.0
    lead = SelfEnergyLead(
        lambda e, args=(), *, params=None: [[-0.5j * params["gamma"]]], [lat(0)], ("gamma",)
    )
    fsys = syst.finalized().with_leads([lead, _wide_band(1.0, lat(0))])
    assert "gamma" in fsys.parameters
    t = meso.batch.transmission(fsys, [0.0], 1, 0, params={"gamma": 1.0})
    np.testing.assert_allclose(t, [1.0], rtol=1e-12)  # symmetric couplings at resonance
    digest = fsys.content_digest()
    assert digest == fsys.content_digest()
    data = meso.transport.lead_data(fsys, params={"gamma": 2.0})
    assert isinstance(data[0], SelfEnergyLeadData)
    np.testing.assert_allclose(data[0].selfenergy(0.0), [[-1.0j]])


def test_auto_solver_takes_the_sparse_road_for_many_leads() -> None:
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(30))] = 0.0
    syst[lat.neighbors()] = -1.0
    few = syst.finalized().with_leads([_wide_band(1.0, lat(0)), _wide_band(1.0, lat(29))])
    many = few.with_leads([_wide_band(0.1, lat(i)) for i in range(1, 29)])
    assert len(many.leads) > meso.batch.AUTO_MAX_RGF_LEADS
    for fsys, expected in ((few, "rgf"), (many, "sparse")):
        stats: dict[str, object] = {}
        t = meso.batch.transmission(fsys, [0.3], stats=stats)
        assert stats["solver"] == expected
        np.testing.assert_allclose(
            t, meso.batch.transmission(fsys, [0.3], solver="rgf"), atol=1e-12
        )


def test_function_leads_appended_to_a_builder_as_in_kwant() -> None:
    """``syst.leads.append(SelfEnergyLead(...))`` before finalizing, the Kwant idiom."""
    rng = np.random.default_rng(11)
    onsite = rng.uniform(-0.5, 0.5, 5)
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    for i, v in enumerate(onsite):
        syst[lat(i)] = v
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)  # a builder lead on the left, a wide band on the right
    syst.leads.append(meso.builder.SelfEnergyLead(lambda e: [[-0.4j]], [lat(4)]))
    fsys = syst.finalized()
    assert isinstance(fsys.leads[1], SelfEnergyLead)
    energies = np.array([-1.2, 0.3, 1.1])
    t = meso.batch.transmission(fsys, energies, 1, 0)
    # Independent: dense Caroli with the builder lead's own self-energy.
    h = fsys.hamiltonian_submatrix()
    for k, e in enumerate(energies):
        left = np.zeros((5, 5), complex)
        orbs, cell = fsys.lead_interface_orbitals(0)
        left[np.ix_(orbs, orbs)] = fsys.leads[0].selfenergy(e)[np.ix_(cell, cell)]
        right = np.zeros((5, 5), complex)
        right[4, 4] = -0.4j
        np.testing.assert_allclose(t[k], _caroli(h, [left, right], e)[1, 0], rtol=1e-11)
    with pytest.raises(ValueError, match=r"interface site .* of lead 1 .* is not in the system"):
        syst.leads[1] = meso.builder.SelfEnergyLead(lambda e: [[-0.4j]], [lat(9)])
        syst.finalized()
