"""Molecular junctions: Hückel benzene between wide-band and chain electrodes."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import models

SOLVERS = ("sparse", "rgf")
CONTACTS = {"ortho": (0, 1), "meta": (0, 2), "para": (0, 3)}


def _dense_caroli(h: np.ndarray, sigmas: list[np.ndarray], energy: float) -> float:
    """T = Tr[Gamma_L G Gamma_R G^dagger] by dense inversion, an independent check."""
    green = np.linalg.inv(energy * np.eye(len(h)) - h - sigmas[0] - sigmas[1])
    gl, gr = (1j * (s - s.conj().T) for s in sigmas)
    return float(np.trace(gl @ green @ gr @ green.conj().T).real)


def _ring_green(n: int, beta: float, energy: float, j: int) -> complex:
    """Bare ring Green's function G0_{0j}(E) = (1/n) sum_k e^{ikj} / (E - 2 beta cos k)."""
    k = 2 * np.pi * np.arange(n) / n
    return complex(np.mean(np.exp(1j * k * j) / (energy - 2 * beta * np.cos(k))))


def _two_site_transmission(n: int, beta: float, energy: float, j: int, gamma: float) -> float:
    """Dyson equation on the two contact atoms: G = (g^-1 + i gamma/2)^-1 on {0, j}."""
    g = np.array(
        [
            [_ring_green(n, beta, energy, 0), _ring_green(n, beta, energy, j)],
            [_ring_green(n, beta, energy, -j), _ring_green(n, beta, energy, 0)],
        ]
    )
    full = np.linalg.solve(np.eye(2) + 0.5j * gamma * g, g)
    return gamma**2 * abs(full[1, 0]) ** 2


def _junction(contacts, gamma=None, **kw):
    h, pos = models.huckel_ring(6)
    return h, models.molecular_junction(h, contacts, positions=pos, **kw)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0, 4.0, 10.0])
def test_meta_antiresonance_and_para_closed_form_at_the_fermi_level(gamma: float) -> None:
    x = gamma / 4  # |beta| = 1
    for name, contacts in CONTACTS.items():
        _, fsys = _junction(contacts)
        t = meso.batch.transmission(fsys, [0.0], 1, 0, params={"gamma": gamma})[0]
        if name == "meta":
            assert t < 1e-12
        else:  # ortho and para: |G0_{0j}(0)| = 1 / (2 |beta|) for both
            np.testing.assert_allclose(t, 4 * x**2 / (1 + x**2) ** 2, rtol=1e-12)
    # gamma = 4 |beta| matches the molecule to the electrodes: perfect transmission.
    _, para = _junction(CONTACTS["para"])
    t = meso.batch.transmission(para, [0.0], 1, 0, params={"gamma": 4.0})[0]
    np.testing.assert_allclose(t, 1.0, rtol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", sorted(CONTACTS))
def test_transmission_spectrum_matches_two_independent_greens_functions(
    name: str, solver: str
) -> None:
    contacts, gamma = CONTACTS[name], 0.7
    h, fsys = _junction(contacts)
    order = [fsys.id_by_site[s] for s in fsys.sites]  # the System's own site order
    assert order == list(range(6))
    h_sys = fsys.hamiltonian_submatrix()
    np.testing.assert_allclose(h_sys, h, atol=0)  # atom i is site i
    # Passes between the levels (+-1, +-2), where the bare ring's G0 diverges. E = 0 itself
    # is in the test above: there the RGF recursion from atom 0 meets a singular slice
    # (atoms 1 and 5 unbonded, E - Sigma of rank 1) and hands the energy to the sparse
    # solver, so this grid steps over it to prove the RGF path ran.
    energies = np.linspace(-2.55, 2.55, 35) + 0.01
    stats: dict[str, object] = {}
    t = meso.batch.transmission(
        fsys, energies, 1, 0, params={"gamma": gamma}, solver=solver, stats=stats
    )
    assert stats["solver"] == solver
    if solver == "rgf":
        assert stats["sparse_fallback_energies"] == 0
    for energy, value in zip(energies, t):
        sigmas = []
        for atom in contacts:
            s = np.zeros((6, 6), complex)
            s[atom, atom] = -0.5j * gamma
            sigmas.append(s)
        np.testing.assert_allclose(value, _dense_caroli(h, sigmas, energy), rtol=1e-12, atol=1e-14)
        ring = _two_site_transmission(6, -1.0, energy, contacts[1], gamma)
        np.testing.assert_allclose(value, ring, rtol=1e-11, atol=1e-14)


def test_smatrix_is_unitary_and_reciprocal() -> None:
    energies = np.linspace(-3.0, 3.0, 12)
    for contacts in CONTACTS.values():
        _, fsys = _junction(contacts)
        batch = meso.batch.smatrices(fsys, energies, params={"gamma": 0.8})
        assert batch.check_unitarity().max() < 1e-12
        t = batch.transmission_matrix()
        np.testing.assert_allclose(t[:, 1, 0], t[:, 0, 1], atol=1e-13)
        np.testing.assert_allclose(t[:, 1, 0] + t[:, 0, 0], 1.0, atol=1e-12)  # T + R = 1


def test_nondegenerate_levels_transmit_fully_in_weak_coupling() -> None:
    # At E = +-2|beta| the orbital weight is 1/6 on every atom: a symmetric Breit-Wigner
    # peak of height 1, whatever the contacts; corrections are O(gamma) from other levels.
    gamma = 1e-4
    for contacts in CONTACTS.values():
        _, fsys = _junction(contacts)
        t = meso.batch.transmission(fsys, [-2.0, 2.0], 1, 0, params={"gamma": gamma})
        np.testing.assert_allclose(t, 1.0, atol=1e-6)


def test_tight_binding_electrodes_match_wide_band_at_band_centre_and_dense_caroli() -> None:
    h, pos = models.huckel_ring(6)
    coupling, hopping = 0.6, 1.5
    for name, contacts in CONTACTS.items():
        chain = models.molecular_junction(h, contacts, electrodes="tight-binding", positions=pos)
        assert set(chain.parameters) == {"coupling", "lead_hopping"}
        params = {"coupling": coupling, "lead_hopping": hopping}
        energies = np.array([-3.5, -2.0, -0.4, 0.0, 0.9, 2.9, 3.5])  # inside and outside the band
        t = meso.batch.transmission(chain, energies, 1, 0, params=params)
        for energy, value in zip(energies, t):
            g = models.chain_surface_green_function(energy, hopping)
            sigmas = []
            for atom in contacts:
                s = np.zeros((6, 6), complex)
                s[atom, atom] = coupling**2 * g
                sigmas.append(s)
            np.testing.assert_allclose(value, _dense_caroli(h, sigmas, energy), atol=1e-13)
        assert np.all(t[np.abs(energies) > 2 * hopping] < 1e-13)  # no states in the electrodes
        # Sigma(0) = -i coupling^2 / t: the wide-band electrodes of gamma = 2 coupling^2 / t.
        _, wide = _junction(contacts)
        t_wide = meso.batch.transmission(
            wide, [0.0], 1, 0, params={"gamma": 2 * coupling**2 / hopping}
        )
        np.testing.assert_allclose(t[3], t_wide[0], rtol=1e-12, atol=1e-14)
        if name == "meta":
            assert t[3] < 1e-12


def test_chain_surface_green_function_is_the_builder_leads_self_energy() -> None:
    hopping = -1.3
    lat = meso.lattice.chain(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = hopping
    syst = meso.Builder()
    syst[lat(0)] = 0.0
    syst.attach_lead(lead)
    flead = syst.finalized().leads[0]
    for energy in (-3.0, -2.5, -1.0, 0.0, 0.3, 2.0, 4.0):
        expected = flead.selfenergy(energy)[0, 0] / hopping**2
        np.testing.assert_allclose(
            models.chain_surface_green_function(energy, hopping), expected, atol=1e-12
        )


def test_several_contact_atoms_per_electrode_match_dense_caroli() -> None:
    h, pos = models.huckel_ring(6)
    contacts = [(0, 1), 3]
    fsys = models.molecular_junction(h, contacts, positions=pos)
    batch = meso.batch.smatrices(fsys, [-1.2, 0.0, 0.5], params={"gamma": 0.9})
    assert batch.num_propagating(0).tolist() == [2, 2, 2]  # one channel per contact atom
    assert batch.check_unitarity().max() < 1e-12
    for energy, value in zip([-1.2, 0.0, 0.5], batch.transmission(1, 0)):
        left = np.diag([-0.45j, -0.45j, 0, 0, 0, 0])
        right = np.zeros((6, 6), complex)
        right[3, 3] = -0.45j
        np.testing.assert_allclose(value, _dense_caroli(h, [left, right], energy), atol=1e-13)


def test_model_metadata() -> None:
    h, pos = models.huckel_ring(6)
    fsys = models.molecular_junction(h, [0, 3], positions=pos)
    assert fsys.spin_degeneracy == 2
    assert models.molecular_junction(h, [0, 3], spin_degeneracy=1).spin_degeneracy == 1
    np.testing.assert_allclose(np.linalg.norm(pos - np.roll(pos, 1, axis=0), axis=1), 1.0)
    np.testing.assert_allclose([s.pos for s in fsys.sites], pos, atol=1e-15)
    assert dict(models.parameter_units("molecular_junction")) == {
        "gamma": "energy",
        "coupling": "energy",
        "lead_hopping": "energy",
    }
    np.testing.assert_allclose(
        np.linalg.eigvalsh(models.huckel_ring(5, alpha=0.5, beta=-2.0)[0]),
        np.sort(0.5 - 4.0 * np.cos(2 * np.pi * np.arange(5) / 5)),
        atol=1e-12,
    )


def test_bad_input_is_refused_with_a_reason() -> None:
    h, _ = models.huckel_ring(6)
    with pytest.raises(ValueError, match="Hermitian"):
        models.molecular_junction(h + np.triu(np.ones((6, 6)), 1), [0, 3])
    with pytest.raises(ValueError, match=r"square \(n, n\)"):
        models.molecular_junction(np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match=r"atom 6; atoms are integers 0..5"):
        models.molecular_junction(h, [0, 6])
    with pytest.raises(ValueError, match="names no atom"):
        models.molecular_junction(h, [0, ()])
    with pytest.raises(ValueError, match="twice"):
        models.molecular_junction(h, [(0, 0), 3])
    with pytest.raises(ValueError, match="electrodes must be one of"):
        models.molecular_junction(h, [0, 3], electrodes="metal")
    with pytest.raises(ValueError, match=r"positions must be a finite \(6, dim\)"):
        models.molecular_junction(h, [0, 3], positions=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="spin_degeneracy"):
        models.molecular_junction(h, [0, 3], spin_degeneracy=3)
    with pytest.raises(ValueError, match="n must be an integer >= 3"):
        models.huckel_ring(2)
    with pytest.raises(ValueError, match="hopping must be a finite nonzero"):
        models.chain_surface_green_function(0.0, 0.0)


def test_degenerate_levels_block_transmission_or_leave_a_bound_state() -> None:
    # Near a doubly degenerate level eps = +-|beta|, G0 = P / (E - eps) + regular, with P
    # the projector on the pair. Ortho and meta: P restricted to the two contact atoms has
    # rank 2, so (G0^-1 - Sigma)^-1 -> Sigma^-1 there, diagonal: T(eps) = 0. Para: one
    # orbital of each pair, sin(pi j k / 3) with k = 2 or 4, has nodes on atoms 0 and 3; it
    # stays uncoupled, a bound state in the continuum that no channel sees: the transmission
    # through the other one is the limit from either side (1, the level on resonance), and
    # S is unitary at the level itself.
    for name in ("ortho", "meta"):
        _, fsys = _junction(CONTACTS[name])
        t = meso.batch.transmission(fsys, [-1.0, 1.0], 1, 0, params={"gamma": 0.5})
        assert np.all(t < 1e-20)
        near = meso.batch.transmission(fsys, [-0.99, 1.01], 1, 0, params={"gamma": 0.5})
        assert np.all(near > 1e-5)
    _, para = _junction(CONTACTS["para"])
    for level in (-1.0, 1.0):
        around = [level - 1e-6, level, level + 1e-6]
        t = meso.batch.transmission(para, around, 1, 0, params={"gamma": 0.5})
        assert t[1] == pytest.approx((t[0] + t[2]) / 2, abs=1e-10)
        s = meso.smatrix(para, level, params={"gamma": 0.5})
        np.testing.assert_allclose(s.data.conj().T @ s.data, np.eye(s.data.shape[0]), atol=1e-13)
        assert s.transmission(1, 0) == pytest.approx(t[1], abs=1e-12)
        # A hair away the recursion's rounding grows as eps / distance (T off by 3e-8 at
        # 1e-9); such an S-matrix is solved again without the bound state.
        for distance in (1e-9, -1e-10):
            s = meso.smatrix(para, level + distance, params={"gamma": 0.5})
            np.testing.assert_allclose(
                s.data.conj().T @ s.data, np.eye(s.data.shape[0]), atol=1e-13
            )
            assert s.transmission(1, 0) == pytest.approx(t[1], abs=1e-12)
