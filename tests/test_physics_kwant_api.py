"""Kwant's raw lead API (``leads.modes``/``selfenergy``), ``physics.DiscreteSymmetry``,
``physics.two_terminal_shotnoise`` and ``physics.Bands``, checked against physics: current
conservation of the stabilized basis, closed-form self-energies, unitarity and the symmetry
of the S-matrix built on symmetry-adapted modes, shot noise of barriers with known
transmissions, and band derivatives against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as la
from scipy import sparse

import mesoscopic as meso
from mesoscopic import leads, rmt
from mesoscopic.physics import Bands, DiscreteSymmetry, two_terminal_shotnoise
from mesoscopic.solvers._embedding import ModesLeadData
from mesoscopic.solvers.sparse import scattering_matrix


def random_lead(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    t = 2 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return (h + h.conj().T) / 2, t


def kwant_current(stab: leads.StabilizedModes) -> np.ndarray:
    current = 1j * stab.vecs.conj().T @ stab.vecslmbdainv
    return current + current.conj().T


def assert_current_conserving(stab: leads.StabilizedModes) -> None:
    """Kwant's normalization: +1 on incoming, -1 on outgoing modes, no cross currents."""
    n = stab.nmodes
    expected = np.zeros((stab.vecs.shape[1],) * 2)
    expected[: 2 * n, : 2 * n] = np.diag([1.0] * n + [-1.0] * n)
    np.testing.assert_allclose(kwant_current(stab), expected, atol=1e-9)


def square_strip(width: int, t: float, energy: float) -> np.ndarray:
    return (4 * t - energy) * np.eye(width) - t * (np.eye(width, k=1) + np.eye(width, k=-1))


# --------------------------------------------------------------------------------------------
# modes / selfenergy with Kwant's signature
# --------------------------------------------------------------------------------------------


def test_chain_modes_follow_kwant_conventions():
    """E = h + 2 t cos k: incoming mode at k > 0 with v = -2 t sin k, unit current."""
    h, t = 0.3, 0.7
    k = np.arccos(-h / (2 * t))
    prop, stab = leads.modes(np.array([[h]]), np.array([[t]]))
    assert stab.nmodes == prop.num_modes == 1
    np.testing.assert_allclose(prop.momenta, [k, -k], atol=1e-12)
    np.testing.assert_allclose(prop.velocities, [-2 * t * np.sin(k), 2 * t * np.sin(k)])
    assert stab.sqrt_hop.shape == (1, 1)
    assert_current_conserving(stab)
    assert isinstance(prop.block_nmodes, list)


@pytest.mark.parametrize(("width", "t", "energy"), [(5, 0.78, 1.3), (4, 1.0, 7.5), (3, 2.0, -0.4)])
def test_selfenergy_matches_the_closed_form_of_a_square_strip(width, t, energy):
    """Open, partly open and closed strips: numerics against transverse-mode closed form."""
    expected = leads.square_selfenergy(width, t, energy)
    h = square_strip(width, t, energy)
    np.testing.assert_allclose(leads.selfenergy(h, -t * np.eye(width)), expected, atol=1e-12)
    # energy= subtracts the energy, as Kwant's callers do by hand.
    shifted = leads.selfenergy(square_strip(width, t, 0.0), -t * np.eye(width), energy=energy)
    np.testing.assert_allclose(shifted, expected, atol=1e-12)
    stab = leads.modes(h, -t * np.eye(width))[1]
    np.testing.assert_allclose(stab.selfenergy(), expected, atol=1e-12)
    assert_current_conserving(stab)


def test_rectangular_hopping_gives_the_selfenergy_of_the_coupled_orbitals():
    """A two-row cell coupled through its second row: Sigma on the coupled orbitals only."""
    w, t, e = 4, 0.5, 0.4
    strip = square_strip(w, t, e)
    h = np.block([[strip, -t * np.eye(w)], [-t * np.eye(w), strip]])
    h_hop = np.zeros((2 * w, w))
    h_hop[w:] = -t * np.eye(w)
    sigma = leads.selfenergy(h, h_hop)
    assert sigma.shape == (w, w)
    np.testing.assert_allclose(sigma, leads.square_selfenergy(w, t, e), atol=1e-12)
    prop, stab = leads.modes(h, h_hop)
    assert stab.sqrt_hop.shape[0] == w
    assert prop.wave_functions.shape[0] == 2 * w
    assert_current_conserving(stab)


def test_modes_match_the_band_structure_and_kwant_order():
    """Every mode solves H(k) phi = 0 with H(k) = h + t e^{-ik} + h.c.; Kwant's order."""
    h, t = random_lead(6, seed=3)
    t = 3 * t
    prop, stab = leads.modes(h, t)
    n = stab.nmodes
    assert n > 1
    for k, phi, v in zip(prop.momenta, prop.wave_functions.T, prop.velocities, strict=True):
        hk = h + t * np.exp(-1j * k) + t.conj().T * np.exp(1j * k)
        np.testing.assert_allclose(hk @ phi, 0, atol=1e-10)
        # Hellmann-Feynman velocity and unit current |v| |phi|^2 = 1.
        dh = -1j * t * np.exp(-1j * k) + 1j * t.conj().T * np.exp(1j * k)
        assert np.vdot(phi, dh @ phi).real == pytest.approx(np.sign(v))
        assert abs(v) * np.vdot(phi, phi).real == pytest.approx(1.0)
    assert np.all(prop.velocities[:n] < 0) and np.all(prop.velocities[n:] > 0)
    assert np.all(np.diff(prop.momenta[:n]) >= 0) and np.all(np.diff(prop.momenta[n:]) <= 0)
    assert np.all((prop.momenta >= -np.pi) & (prop.momenta < np.pi))
    assert_current_conserving(stab)


def test_modes_with_projectors_are_block_diagonal_and_give_the_same_selfenergy():
    h1, t1 = random_lead(4, seed=5)
    h2, t2 = random_lead(6, seed=6)
    h, t = la.block_diag(h1, h2), la.block_diag(t1, t2)
    u = rmt.circular(10, "A", rng=2)
    h, t = u.conj().T @ h @ u, u.conj().T @ t @ u
    projectors = [sparse.csr_matrix(u.conj().T[:, :4]), sparse.csr_matrix(u.conj().T[:, 4:])]
    plain = leads.modes(h, t)
    blocked = leads.modes(h, t, projectors=projectors)
    prop, stab = blocked
    assert sum(prop.block_nmodes) == stab.nmodes == plain[1].nmodes
    np.testing.assert_allclose(stab.selfenergy(), plain[1].selfenergy(), atol=1e-10)
    assert_current_conserving(stab)
    # Rows of the stabilized basis belong to one block: columns of block 0 vanish in block 1.
    n0 = prop.block_nmodes[0]
    np.testing.assert_allclose(stab.vecs[4:, :n0], 0, atol=1e-12)
    # The same with a DiscreteSymmetry object.
    sym = DiscreteSymmetry(projectors=projectors)
    again = leads.modes(h, t, discrete_symmetry=sym)[1]
    np.testing.assert_allclose(again.selfenergy(), stab.selfenergy(), atol=1e-10)


def symmetric_lead(sym: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """A random lead of symmetry class ``sym`` (the first seed from ``seed`` with open modes)."""
    for attempt in range(seed, seed + 50):
        rng = np.random.default_rng(attempt)
        h = rmt.gaussian(n, sym, rng=rng)
        t = 10 * rmt.gaussian(2 * n, sym, rng=rng)[:n, n:]
        if rmt.c(sym) or leads.modes(h, t)[1].nmodes:
            break
    ops = {}
    if rmt.t(sym):
        ops["time_reversal"] = np.kron(np.eye(n // len(rmt.h_t_matrix[sym])), rmt.h_t_matrix[sym])
    if rmt.p(sym):
        ops["particle_hole"] = np.kron(np.eye(n // len(rmt.h_p_matrix[sym])), rmt.h_p_matrix[sym])
    if rmt.c(sym):
        ops["chiral"] = np.kron(np.eye(n // 2), np.diag([1.0, -1.0]))
    return h, t, ops


def chiral_lead(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Two halves exchanged by C (C H C = -H): a chiral lead with modes at E = 0."""
    h, t = random_lead(n, seed)
    swap = np.kron(np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(n))
    return la.block_diag(h, -h), la.block_diag(t, -t), {"chiral": swap}


@pytest.mark.parametrize("sym", ["AI", "AII", "D", "C", "chiral"])
def test_symmetry_adapted_modes_obey_their_relations(sym):
    h, t, ops = chiral_lead(4, seed=2) if sym == "chiral" else symmetric_lead(sym, 8, seed=11)
    prop, stab = leads.modes(h, t, **ops)
    assert_current_conserving(stab)
    n = stab.nmodes
    wf, k = prop.wave_functions, prop.momenta
    assert n > 0
    if "time_reversal" in ops:
        np.testing.assert_allclose(wf[:, n:], ops["time_reversal"] @ wf[:, :n].conj(), atol=1e-9)
    elif "chiral" in ops:
        np.testing.assert_allclose(wf[:, n:], ops["chiral"] @ wf[:, :n][:, ::-1], atol=1e-9)
    if "particle_hole" in ops:
        p = ops["particle_hole"]
        sign = np.sign((p @ p.conj())[0, 0].real)
        for part in (slice(0, n), slice(n, 2 * n)):
            waves, moms = wf[:, part], k[part]
            positive = (moms > 0) & (moms < np.pi)
            negative = (moms < 0) & (moms > -np.pi)
            np.testing.assert_allclose(
                waves[:, positive[::-1]], p @ waves[:, positive][:, ::-1].conj(), atol=1e-9
            )
            np.testing.assert_allclose(
                sign * waves[:, negative[::-1]], p @ waves[:, negative][:, ::-1].conj(), atol=1e-9
            )
    # The basis change leaves the self-energy alone.
    np.testing.assert_allclose(stab.selfenergy(), leads.selfenergy(h, t), atol=1e-9)


def modes_lead(h, t, interface, **symmetries):
    """A lead given by Kwant's raw modes (h_hop couples the system cell to the lead)."""
    return ModesLeadData(lambda e: leads.modes(h, t, energy=e, **symmetries), interface)


@pytest.mark.parametrize("seed", [1, 2])
def test_smatrix_on_time_reversal_adapted_modes_is_unitary_and_symmetric(seed):
    """With outgoing modes T times the incoming ones, a T-invariant S-matrix is symmetric."""
    rng = np.random.default_rng(seed)
    n = 4
    h_lead = rng.normal(size=(n, n))
    h_lead = (h_lead + h_lead.T) / 2
    t_lead = 2 * rng.normal(size=(n, n))
    h_sys = rng.normal(size=(2 * n, 2 * n))
    h_sys = (h_sys + h_sys.T) / 2  # real: T = K
    left = modes_lead(h_lead, t_lead, np.arange(n), time_reversal=np.eye(n))
    right = modes_lead(h_lead, t_lead, np.arange(n, 2 * n), time_reversal=np.eye(n))
    s = scattering_matrix(h_sys, [left, right], 0.2)
    assert s.lead_info[0].num_modes > 0
    data = np.asarray(s.data)
    np.testing.assert_allclose(data @ data.conj().T, np.eye(data.shape[0]), atol=1e-10)
    np.testing.assert_allclose(data, data.T, atol=1e-10)


def test_smatrix_on_symmetry_related_blocks_is_unitary_and_block_diagonal():
    """Spin blocks related by time reversal (blocks 0 and 1): S never mixes the blocks."""
    rng = np.random.default_rng(4)
    n = 3
    h0 = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h0 = (h0 + h0.conj().T) / 2
    t0 = 2 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    h_lead, t_lead = la.block_diag(h0, h0.conj()), la.block_diag(t0, t0.conj())
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    trs = np.kron(sx, np.eye(n))
    projectors = [np.eye(2 * n)[:, :n], np.eye(2 * n)[:, n:]]
    hs = rng.normal(size=(2 * n, 2 * n)) + 1j * rng.normal(size=(2 * n, 2 * n))
    hs = (hs + hs.conj().T) / 2
    h_sys = la.block_diag(hs[:n, :n], hs[:n, :n].conj())
    prop, stab = leads.modes(h_lead, t_lead, projectors=projectors, time_reversal=trs)
    b = prop.block_nmodes[0]
    assert prop.block_nmodes == [b, b] and b > 0
    # Block 1 holds the time-reversed modes of block 0, in reversed order.
    both = np.hstack([prop.wave_functions[:, :b], prop.wave_functions[:, 2 * b : 3 * b]])
    image = np.hstack([prop.wave_functions[:, b : 2 * b], prop.wave_functions[:, 3 * b :]])
    np.testing.assert_allclose(image, (trs @ both.conj())[:, ::-1], atol=1e-10)
    assert_current_conserving(stab)
    left = modes_lead(h_lead, t_lead, np.arange(2 * n), projectors=projectors, time_reversal=trs)
    s = scattering_matrix(h_sys, [left, left], 0.0)
    data = np.asarray(s.data)
    np.testing.assert_allclose(data @ data.conj().T, np.eye(data.shape[0]), atol=1e-10)


def test_modes_refuse_bad_input():
    h, t = random_lead(4, seed=1)
    with pytest.raises(ValueError, match="h_hop must be"):
        leads.modes(h, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="Hermitian"):
        leads.modes(h + 1j * np.eye(4), t)
    with pytest.raises(ValueError, match="tol must be a positive"):
        leads.modes(h, t, -1.0)
    with pytest.raises(ValueError, match="stabilization"):
        leads.modes(h, t, 1e6, (True,))
    with pytest.raises(ValueError, match="time_reversal is not a symmetry"):
        leads.modes(h, t, time_reversal=np.eye(4))
    with pytest.raises(ValueError, match="must be unitary"):
        leads.modes(h, t, chiral=2 * np.eye(4))
    with pytest.raises(TypeError, match="either discrete_symmetry"):
        leads.modes(h, t, discrete_symmetry=DiscreteSymmetry(), time_reversal=np.eye(4))


def test_internal_form_keeps_the_energy_argument():
    """The solvers' form: hop = <m|H|m+1> (Kwant's h_hop daggered), energy third."""
    h, t = random_lead(3, seed=8)
    sigma = leads._selfenergy_at_energy(h, t.conj().T, 0.4)
    np.testing.assert_allclose(sigma, leads.selfenergy(h, t, energy=0.4), atol=1e-12)
    prop_internal = leads._modes_at_energy(h, t.conj().T, 0.4)[0]
    prop = leads.modes(h, t, energy=0.4)[0]
    np.testing.assert_allclose(
        np.sort(np.exp(1j * prop_internal.momenta)), np.sort(np.exp(1j * prop.momenta))
    )


# --------------------------------------------------------------------------------------------
# phs_symmetrization
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sym", ["D", "C"])
def test_phs_symmetrization_gives_symmetric_orthonormal_modes(sym):
    n = 8
    p = np.kron(np.eye(n // len(rmt.h_p_matrix[sym])), rmt.h_p_matrix[sym])
    rng = np.random.default_rng(3)
    u = rmt.circular(n, "A", rng=rng)
    if sym == "D":  # P^2 = 1
        basis = la.qr(u[:, :3] + p @ u[:, :3].conj(), mode="economic")[0]
    else:  # P^2 = -1: a space closed under P has pairs
        basis = la.qr(np.hstack([u[:, :2], p @ u[:, :2].conj()]), mode="economic")[0]
    mixed = basis @ rmt.circular(basis.shape[1], "A", rng=rng)
    new, _ = leads.phs_symmetrization(mixed, p)
    np.testing.assert_allclose(new.conj().T @ new, np.eye(new.shape[1]), atol=1e-10)
    # Same space as the input.
    np.testing.assert_allclose(basis @ (basis.conj().T @ new), new, atol=1e-10)
    if sym == "D":
        np.testing.assert_allclose(p @ new.conj(), new, atol=1e-10)
    else:
        np.testing.assert_allclose(new[:, 1::2], p @ new[:, ::2].conj(), atol=1e-10)
    with pytest.raises(ValueError, match="closed under particle_hole"):
        leads.phs_symmetrization(u[:, :1], p)


# --------------------------------------------------------------------------------------------
# DiscreteSymmetry
# --------------------------------------------------------------------------------------------


def test_discrete_symmetry_validates_hamiltonians():
    csr = sparse.csr_matrix
    sym = DiscreteSymmetry(projectors=[csr([[1.0], [0.0]]), csr([[0.0], [1.0]])])
    assert sym.validate(np.eye(2)) == []
    assert sym.validate(1 - np.eye(2)) == ["Conservation law"]
    assert sym.validate(csr([[0.0], [1.0]])) == ["Conservation law"]  # padded with zeros
    trs = DiscreteSymmetry(time_reversal=sparse.identity(2))
    assert trs.validate(np.array([[0, 1j], [-1j, 0]])) == ["Time reversal"]
    chiral = DiscreteSymmetry(chiral=csr(np.diag([1.0, -1.0])))
    assert chiral.validate(np.eye(2)) == ["Chiral"]
    assert chiral.validate(1 - np.eye(2)) == []
    for cls in ["BDI", "CII", "D"]:
        h = rmt.gaussian(8, cls, rng=1)
        ops = symmetric_lead(cls, 8, seed=0)[2]
        ops.pop("chiral", None)  # computed from the other two
        full = DiscreteSymmetry(**{k: csr(v) for k, v in ops.items()})
        assert full.validate(h) == []


def test_discrete_symmetry_completes_and_checks_the_three_symmetries():
    t_mat = sparse.csr_matrix(np.kron(np.eye(5), rmt.h_t_matrix["CII"]))
    p_mat = sparse.csr_matrix(np.kron(np.eye(5), rmt.h_p_matrix["CII"]))
    c_mat = p_mat @ t_mat.conj()
    sym = DiscreteSymmetry(time_reversal=t_mat, particle_hole=p_mat)
    np.testing.assert_allclose(sym.chiral.toarray(), c_mat.toarray())
    sym = DiscreteSymmetry(particle_hole=p_mat, chiral=c_mat)
    np.testing.assert_allclose(sym.time_reversal.toarray(), t_mat.toarray())
    sym = DiscreteSymmetry(time_reversal=t_mat, chiral=c_mat)
    np.testing.assert_allclose(sym.particle_hole.toarray(), p_mat.toarray())
    projectors, trs, phs, chiral = sym
    assert projectors is None and trs is sym.time_reversal
    assert phs is sym.particle_hole and chiral is sym.chiral
    with pytest.raises(ValueError, match="product"):
        DiscreteSymmetry(time_reversal=t_mat, particle_hole=p_mat, chiral=sparse.eye(20))
    with pytest.raises(ValueError, match="unitary"):
        DiscreteSymmetry(time_reversal=2 * t_mat)
    with pytest.raises(ValueError, match="square to"):
        DiscreteSymmetry(chiral=sparse.csr_matrix(1j * np.eye(20)))
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        DiscreteSymmetry(time_reversal=t_mat.toarray())
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        DiscreteSymmetry(projectors=[np.eye(2)])


def test_discrete_symmetry_projectors():
    p0, p1 = np.eye(6), np.eye(6)
    p0[:, ::2] = 0
    p1[:, 1::2] = 0
    sym = DiscreteSymmetry(projectors=[sparse.coo_matrix(p0), sparse.coo_matrix(p1)])
    np.testing.assert_allclose(
        sym.projectors[0].toarray(), np.eye(6)[:, 1::2]
    )  # zero columns gone
    broken = np.eye(6)[:, :3].copy()
    broken[0, 0] = 0
    with pytest.raises(ValueError, match="stack to a unitary"):
        DiscreteSymmetry(
            projectors=[sparse.csr_matrix(broken), sparse.csr_matrix(np.eye(6)[:, 3:])]
        )
    # A symmetry mixing a block with two others is not in canonical form.
    u = rmt.circular(4, "A", rng=1)
    with pytest.raises(ValueError, match="canonical form"):
        DiscreteSymmetry(
            projectors=[sparse.csr_matrix(np.eye(4)[:, :2]), sparse.csr_matrix(np.eye(4)[:, 2:])],
            chiral=sparse.csr_matrix(u @ np.diag([1.0, 1.0, -1.0, -1.0]) @ u.conj().T),
        )


# --------------------------------------------------------------------------------------------
# two_terminal_shotnoise
# --------------------------------------------------------------------------------------------


def barrier_wire(width: int, barrier: float, leads_count: int = 2) -> meso.Builder:
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(0, y) for y in range(width))] = 4.0 + barrier
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    if leads_count == 3:
        side = meso.Builder(meso.TranslationalSymmetry((0, 1)))
        side[lat(0, 0)] = 4.0
        side[lat.neighbors()] = -1.0
        syst.attach_lead(side)
    return syst


def test_shot_noise_of_a_barrier_matches_the_fano_factor_of_each_channel():
    """A one-slice barrier V in a strip: channel n has T_n = 4 sin^2 k_n / (4 sin^2 k_n + V^2)."""
    width, barrier, energy = 3, 0.8, 2.5
    s = meso.smatrix(barrier_wire(width, barrier).finalized(), energy)
    subbands = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    cos_k = (2 - (energy - subbands)) / 2  # E = eps_n + 2 - 2 cos k
    open_ = np.abs(cos_k) < 1
    sin2 = 1 - cos_k[open_] ** 2
    transmissions = 4 * sin2 / (4 * sin2 + barrier**2)
    assert open_.sum() == 2
    noise = two_terminal_shotnoise(s)
    assert noise == pytest.approx(np.sum(transmissions * (1 - transmissions)), abs=1e-10)
    # Fano factor of the two-terminal conductor.
    fano = noise / s.transmission(1, 0)
    assert fano == pytest.approx(1 - np.sum(transmissions**2) / np.sum(transmissions), abs=1e-10)
    # A clean wire has no shot noise.
    assert two_terminal_shotnoise(meso.smatrix(barrier_wire(width, 0.0).finalized(), energy)) == (
        pytest.approx(0.0, abs=1e-10)
    )


def test_shot_noise_refuses_more_than_two_leads_and_green_functions():
    s = meso.smatrix(barrier_wire(2, 0.5, leads_count=3).finalized(), 1.0)
    with pytest.raises(ValueError, match="two-terminal"):
        two_terminal_shotnoise(s)
    with pytest.raises(NotImplementedError, match="SMatrix"):
        two_terminal_shotnoise(np.eye(2))


# --------------------------------------------------------------------------------------------
# Bands
# --------------------------------------------------------------------------------------------


def ladder_lead() -> meso.Builder:
    lat = meso.lattice.square(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[lat(0, 0)] = 0.2
    lead[lat(0, 1)] = -0.3
    lead[lat(0, 1), lat(0, 0)] = 0.5 + 0.2j
    lead[lat(1, 0), lat(0, 0)] = -1.0
    lead[lat(1, 1), lat(0, 1)] = 0.7 * np.exp(0.4j)
    lead[lat(1, 1), lat(0, 0)] = 0.3
    return lead


def test_bands_eigenvectors_and_derivatives():
    bands = Bands(ladder_lead().finalized())
    step = 1e-4
    for k in np.linspace(-np.pi, np.pi, 7):
        energies, velocities, curvatures, vectors = bands(k, 2, return_eigenvectors=True)
        hk = bands.ham + bands.hop * np.exp(-1j * k) + bands.hop.conj().T * np.exp(1j * k)
        np.testing.assert_allclose(hk @ vectors, vectors * energies, atol=1e-12)
        np.testing.assert_allclose(vectors.conj().T @ vectors, np.eye(2), atol=1e-12)
        plus, minus = bands(k + step), bands(k - step)
        np.testing.assert_allclose(velocities, (plus - minus) / (2 * step), atol=1e-7)
        np.testing.assert_allclose(curvatures, (plus - 2 * energies + minus) / step**2, atol=1e-5)
    assert isinstance(bands(0.3), np.ndarray)
    assert len(bands(0.3, derivative_order=1)) == 2
    assert len(bands(0.3, return_eigenvectors=True)) == 2
    with pytest.raises(NotImplementedError, match="second order"):
        bands(0.3, derivative_order=3)


def test_bands_agree_with_the_lead_modes():
    """Momenta of the lead's modes lie on the bands at the mode energy, velocities too."""
    flead = ladder_lead().finalized()
    bands = Bands(flead)
    energy = float(bands(0.7)[0])
    prop = flead.modes(energy)[0]
    assert prop.num_modes > 0
    for k, v in zip(prop.momenta, prop.velocities, strict=True):
        energies, velocities = bands(k, derivative_order=1)
        band = int(np.argmin(np.abs(energies - energy)))
        assert energies[band] == pytest.approx(energy, abs=1e-10)
        assert velocities[band] == pytest.approx(v, abs=1e-9)
    # Kwant's raw modes on the lead's matrices give the same momenta.
    raw = leads.modes(flead.cell_hamiltonian(), bands.hop, energy=energy)[0]
    np.testing.assert_allclose(np.sort(raw.momenta), np.sort(prop.momenta), atol=1e-10)
