"""Densities, currents and sources of wave functions (mesoscopic.operator).

Physics checks: the continuity equation site by site (currents into a site balance
its source), the current through a cross-section equals the transmission (and one
minus the reflection), the summed densities of all scattering states equal the LDOS
from the Green's function, spin densities from their definition; and the algebra of
the interface: ``act`` and ``tocoo`` against the per-site values, ``bind``, ``where``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import mesoscopic as meso
from mesoscopic import operator as ops

S0 = np.eye(2)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]])
SZ = np.diag([1.0, -1.0]).astype(complex)


LAT = meso.lattice.square(norbs=1)
SPIN_LAT = meso.lattice.square(norbs=2)
CHAIN = meso.lattice.chain(norbs=1)


def _wire(width: int = 3, length: int = 6, seed: int = 1) -> meso.Builder:
    """A disordered square-lattice wire in a perpendicular field (Peierls phases)."""
    lat = LAT
    rng = np.random.default_rng(seed)
    disorder = {(x, y): rng.uniform(-1, 1) for x in range(length) for y in range(width)}
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = lambda s, w: (
        4 + w * disorder[tuple(s.tag)]
    )
    # Landau gauge A = (-B y, 0): hoppings along x pick up a phase that depends on y.
    syst[meso.HoppingKind((1, 0), lat)] = lambda a, b, phi: -np.exp(-1j * phi * a.pos[1])
    syst[meso.HoppingKind((0, 1), lat)] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


def _spin_wire(width: int = 2, length: int = 5, seed: int = 2) -> meso.Builder:
    """Two-orbital (spin) wire: disorder, an exchange field along x, Rashba coupling."""
    lat = SPIN_LAT
    rng = np.random.default_rng(seed)
    disorder = {(x, y): rng.uniform(-1, 1) for x in range(length) for y in range(width)}
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = lambda s, b: (
        (4 + disorder[tuple(s.tag)]) * S0 + b * SX
    )
    syst[meso.HoppingKind((1, 0), lat)] = lambda a, c, alpha: -S0 + 1j * alpha * SY
    syst[meso.HoppingKind((0, 1), lat)] = lambda a, c, alpha: -S0 - 1j * alpha * SX
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4 * S0
    lead[lat.neighbors()] = -S0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


WIRE_PARAMS = {"w": 1.0, "phi": 0.3}
SPIN_PARAMS = {"b": 0.3, "alpha": 0.2}


@pytest.fixture(scope="module")
def wire() -> meso.System:
    return _wire().finalized()


@pytest.fixture(scope="module")
def spin_wire() -> meso.System:
    return _spin_wire().finalized()


def _interior(fsys: meso.System) -> np.ndarray:
    """Sites without hoppings into a lead."""
    return np.setdiff1d(np.arange(len(fsys.sites)), np.concatenate(fsys.lead_interfaces))


# ---- physics ------------------------------------------------------------------------


def test_current_is_conserved_at_every_site(wire: meso.System) -> None:
    psi = meso.wave_function(wire, 1.3, params=WIRE_PARAMS)
    current = ops.Current(wire)
    inside = _interior(wire)
    assert len(inside) > 0
    for lead in (0, 1):
        for state in psi(lead):
            j = current(state, params=WIRE_PARAMS)
            inflow = np.bincount(current.where[:, 0], weights=j, minlength=len(wire.sites))
            assert np.max(np.abs(inflow[inside])) < 1e-10
            assert np.max(np.abs(j)) > 0.1  # a state that carries current


def test_current_through_a_cut_is_the_transmission(wire: meso.System) -> None:
    lat = LAT
    energy = 2.5
    smat = meso.smatrix(wire, energy, params=WIRE_PARAMS)
    psi = meso.wave_function(wire, energy, params=WIRE_PARAMS)(0)
    n_modes = smat.num_propagating(0)
    assert len(psi) == n_modes >= 2
    for x in range(5):  # every cut between the leads carries the same current
        cut = [(lat(x + 1, y), lat(x, y)) for y in range(3)]
        total = ops.Current(wire, where=cut, sum=True)
        through = np.sum(total(psi, params=WIRE_PARAMS))
        assert through == pytest.approx(smat.transmission(1, 0), abs=1e-10)
        # per state: the current of incoming mode m is 1 - sum_n |r_nm|^2
        r = smat.submatrix(0, 0)
        per_state = total(psi, params=WIRE_PARAMS)
        np.testing.assert_allclose(per_state, 1 - np.sum(np.abs(r) ** 2, axis=0), atol=1e-10)
    assert 0.05 < smat.transmission(1, 0) < n_modes - 0.05  # a non-trivial transmission


def test_density_of_all_scattering_states_is_the_ldos(wire: meso.System) -> None:
    energy = 1.3
    psi = meso.wave_function(wire, energy, params=WIRE_PARAMS)
    density = ops.Density(wire)
    total = sum(density(psi(lead)).sum(axis=0) for lead in (0, 1)) / (2 * np.pi)
    np.testing.assert_allclose(
        total, meso.ldos(wire, energy, params=WIRE_PARAMS), rtol=0, atol=1e-10
    )
    # An independent method: -Im G_aa / pi with G = (E - H - Sigma)^-1 and the leads'
    # exact self-energies.
    ham = wire.hamiltonian_submatrix(params=WIRE_PARAMS)
    sigma = np.zeros_like(ham)
    for k, flead in enumerate(wire.leads):
        sys_orbs, cell_orbs = wire.lead_interface_orbitals(k)
        self_energy = flead.selfenergy(energy, params=WIRE_PARAMS)
        sigma[np.ix_(sys_orbs, sys_orbs)] += self_energy[np.ix_(cell_orbs, cell_orbs)]
    green = np.linalg.inv(energy * np.eye(len(ham)) - ham - sigma)
    np.testing.assert_allclose(total, -np.diag(green).imag / np.pi, rtol=0, atol=1e-10)


def test_spin_density_from_its_definition(spin_wire: meso.System) -> None:
    psi = meso.wave_function(spin_wire, 1.0, params=SPIN_PARAMS)(0)
    up, down = psi[:, 0::2], psi[:, 1::2]
    np.testing.assert_allclose(
        ops.Density(spin_wire, SZ)(psi), np.abs(up) ** 2 - np.abs(down) ** 2, atol=1e-12
    )
    np.testing.assert_allclose(
        ops.Density(spin_wire, SX)(psi), 2 * (up.conj() * down).real, atol=1e-12
    )
    np.testing.assert_allclose(
        ops.Density(spin_wire, SY)(psi), 2 * (up.conj() * down).imag, atol=1e-12
    )
    # Charge = spin-up + spin-down, per site.
    charge = ops.Density(spin_wire)(psi)
    np.testing.assert_allclose(charge, np.abs(up) ** 2 + np.abs(down) ** 2, atol=1e-12)


def test_spin_continuity_with_the_source(spin_wire: meso.System) -> None:
    """The exchange field along x rotates spin z: currents into a site balance its torque."""
    psi = meso.wave_function(spin_wire, 1.0, params=SPIN_PARAMS)(0)
    spin_current = ops.Current(spin_wire, SZ)
    torque = ops.Source(spin_wire, SZ)
    inside = _interior(spin_wire)
    for state in psi:
        j = spin_current(state, params=SPIN_PARAMS)
        k = torque(state, params=SPIN_PARAMS)
        inflow = np.bincount(spin_current.where[:, 0], weights=j, minlength=len(k))
        np.testing.assert_allclose(inflow[inside] + k[inside], 0, atol=1e-10)
        assert np.max(np.abs(k)) > 1e-3  # the torque is not trivially zero
    # The charge has no source: the Hamiltonian commutes with the identity.
    np.testing.assert_allclose(ops.Source(spin_wire)(psi, params=SPIN_PARAMS), 0, atol=1e-12)


def test_plane_wave_current_is_the_group_velocity() -> None:
    lat = CHAIN
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = 0.0
    syst[lat.neighbors()] = -1.0
    fsys = syst.finalized()
    for k in (0.3, 1.1, 2.5):
        wave = np.exp(1j * k * np.arange(4))
        forward = ops.Current(fsys, where=[(lat(i + 1), lat(i)) for i in range(3)])
        np.testing.assert_allclose(forward(wave), 2 * np.sin(k), atol=1e-14)
        backward = ops.Current(fsys, where=[(lat(i), lat(i + 1)) for i in range(3)])
        np.testing.assert_allclose(backward(wave), -2 * np.sin(k), atol=1e-14)


def test_current_calls_no_onsite_value_function(wire: meso.System) -> None:
    """As Kwant's: a current reads the hoppings only, so it needs none of the onsite
    functions' parameters (Kwant's operator tutorial calls Current(syst)(psi) so)."""
    params = {"w": 0.7, "phi": 0.3}
    psi = meso.wave_function(wire, 0.9, params=params)(0)[0]
    full = ops.Current(wire)(psi, params=params)
    hoppings_only = ops.Current(wire)(psi, params={"phi": 0.3})
    np.testing.assert_allclose(hoppings_only, full, rtol=0, atol=1e-14)
    # A source term reads the onsite Hamiltonian: it needs them.
    with pytest.raises(meso.system.MissingParameterError, match="'w'"):
        ops.Source(wire)(psi, params={"phi": 0.3})


def test_current_agrees_with_bond_currents(wire: meso.System) -> None:
    psi = meso.wave_function(wire, 1.3, params=WIRE_PARAMS)(0)
    hi, hj = wire.hopping_indices
    current = ops.Current(wire, where=np.stack([hi, hj], axis=1))
    np.testing.assert_allclose(
        current(psi, params=WIRE_PARAMS).sum(axis=0),
        meso.bond_currents(wire, psi, params=WIRE_PARAMS),
        atol=1e-12,
    )


# ---- the operator algebra -----------------------------------------------------------


def _random_states(n: int, count: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bra = rng.normal(size=(count, n)) + 1j * rng.normal(size=(count, n))
    ket = rng.normal(size=(count, n)) + 1j * rng.normal(size=(count, n))
    return bra, ket


@pytest.mark.parametrize("kind", [ops.Density, ops.Current, ops.Source])
def test_act_and_matrix_elements_agree(kind: type, spin_wire: meso.System) -> None:
    onsite = lambda site, b: SZ + b * SX  # noqa: E731
    op = kind(spin_wire, onsite)
    bra, ket = _random_states(spin_wire.num_orbitals, 3)
    values = op(bra, ket, params=SPIN_PARAMS)
    assert values.shape == (3, len(op.where)) and values.dtype == complex
    acted = op.act(ket, params=SPIN_PARAMS)
    np.testing.assert_allclose(
        np.sum(bra.conj() * acted, axis=1), values.sum(axis=1), rtol=1e-12, atol=1e-12
    )
    # One state at a time gives the rows of the stack.
    np.testing.assert_allclose(op(bra[1], ket[1], params=SPIN_PARAMS), values[1], atol=1e-14)
    summed = kind(spin_wire, onsite, sum=True)
    np.testing.assert_allclose(summed(bra, ket, params=SPIN_PARAMS), values.sum(axis=1))
    # Expectation values of a Hermitian operator are real.
    expectation = op(ket[0], params=SPIN_PARAMS)
    assert expectation.dtype == np.float64
    np.testing.assert_allclose(expectation, op(ket[0], ket[0], params=SPIN_PARAMS).real)


def test_tocoo_is_the_block_diagonal_matrix(spin_wire: meso.System) -> None:
    lat = SPIN_LAT
    where = [lat(3, 1), lat(0, 0)]
    op = ops.Density(spin_wire, lambda site: site.pos[0] * SZ + SX, where=where)
    matrix = op.tocoo()
    assert isinstance(matrix, sp.coo_matrix)
    expected = np.zeros((spin_wire.num_orbitals,) * 2, dtype=complex)
    for site in where:
        i = spin_wire.id_by_site[site]
        block = slice(spin_wire.orb_offsets[i], spin_wire.orb_offsets[i + 1])
        expected[block, block] = site.pos[0] * SZ + SX
    np.testing.assert_array_equal(matrix.toarray(), expected)
    bra, ket = _random_states(spin_wire.num_orbitals, 1)
    np.testing.assert_allclose(bra[0].conj() @ (matrix @ ket[0]), op(bra[0], ket[0]).sum())


@pytest.mark.parametrize("kind", [ops.Density, ops.Current, ops.Source])
def test_bind_gives_the_same_values(kind: type, spin_wire: meso.System) -> None:
    params = {**SPIN_PARAMS, "tilt": 0.4}
    op = kind(spin_wire, lambda site, tilt: SZ + tilt * SX)
    bound = op.bind(params=params)
    bra, ket = _random_states(spin_wire.num_orbitals, 2)
    np.testing.assert_array_equal(bound(bra, ket), op(bra, ket, params=params))
    np.testing.assert_array_equal(bound.act(ket), op.act(ket, params=params))
    with pytest.raises(ValueError, match="bound"):
        bound(bra, params=params)


def _tilted_spin(site: object, tilt: float) -> np.ndarray:
    return SZ + tilt * SX


@pytest.mark.parametrize("kind", [ops.Density, ops.Current, ops.Source])
def test_pickled_operators_give_the_same_values(kind: type) -> None:
    syst = meso.Builder()
    syst[(SPIN_LAT(x, y) for x in range(3) for y in range(2))] = 2 * S0 + 0.5 * SX
    syst[SPIN_LAT.neighbors()] = -S0 + 0.3j * SY
    fsys = syst.finalized()
    bra, ket = _random_states(fsys.num_orbitals, 2)
    for op in (kind(fsys, _tilted_spin), kind(fsys, SZ, sum=True)):
        params = {"tilt": 0.4} if callable(op.onsite) else {}
        expected = op(bra, ket, params=params)
        restored = pickle.loads(pickle.dumps(op))
        np.testing.assert_array_equal(restored(bra, ket, params=params), expected)
        bound = pickle.loads(pickle.dumps(op.bind(params=params)))
        np.testing.assert_array_equal(bound(bra, ket), expected)


def test_where_by_function_list_and_index(wire: meso.System) -> None:
    lat = LAT
    chosen = [lat(2, 1), lat(0, 0), lat(5, 2)]
    by_sites = ops.Density(wire, where=chosen)
    ids = [wire.id_by_site[s] for s in chosen]
    assert by_sites.where.tolist() == [[i] for i in ids]  # the order of where
    by_index = ops.Density(wire, where=ids)
    by_function = ops.Density(wire, where=lambda site: site.tag[0] == 2)
    assert sorted(wire.sites[i].tag[0] for i in by_function.where[:, 0]) == [2, 2, 2]
    psi = meso.wave_function(wire, 1.3, params=WIRE_PARAMS)(0)[0]
    everywhere = ops.Density(wire)(psi)
    np.testing.assert_array_equal(by_sites(psi), everywhere[ids])
    np.testing.assert_array_equal(by_index(psi), everywhere[ids])
    np.testing.assert_array_equal(by_function(psi), everywhere[by_function.where[:, 0]])

    # Currents: all hoppings in both directions, J_ba = -J_ab.
    current = ops.Current(wire)
    assert len(current.where) == 2 * len(wire.hopping_indices[0])
    values = current(psi, params=WIRE_PARAMS)
    lookup = {tuple(pair): k for k, pair in enumerate(current.where.tolist())}
    reverse = [lookup[(b, a)] for a, b in current.where.tolist()]
    np.testing.assert_allclose(values[reverse], -values, atol=1e-15)
    rightward = ops.Current(wire, where=lambda a, b: a.tag[0] == b.tag[0] + 1)
    assert len(rightward.where) == 5 * 3
    assert all(wire.sites[a].tag[0] == wire.sites[b].tag[0] + 1 for a, b in rightward.where)


def test_bad_input_is_refused_with_a_clear_message(wire: meso.System) -> None:
    lat = LAT
    with pytest.raises(ValueError, match="not a site of the system"):
        ops.Density(wire, where=[lat(50, 50)])
    with pytest.raises(ValueError, match="valid are 0"):
        ops.Density(wire, where=[len(wire.sites)])
    with pytest.raises(ValueError, match="not a hopping"):
        ops.Current(wire, where=[(lat(2, 2), lat(0, 0))])
    with pytest.raises(ValueError, match="has 1 orbitals"):
        ops.Density(wire, np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        ops.Density(wire)(np.ones(len(wire.sites) + 1))
    with pytest.raises(TypeError, match="finalized system"):
        ops.Current(_wire())
    with pytest.raises(TypeError, match="'scale'"):
        ops.Density(wire, lambda site, scale: scale)(np.ones(len(wire.sites)), params={})
    with pytest.raises(TypeError, match="mutually exclusive"):
        ops.Density(wire)(np.ones(len(wire.sites)), args=(1,), params={})


def test_hermiticity_is_checked(spin_wire: meso.System) -> None:
    raising = np.array([[0, 1], [0, 0]])
    with pytest.raises(ValueError, match="not Hermitian"):
        ops.Density(spin_wire, raising)
    with pytest.raises(ValueError, match="not Hermitian"):
        ops.Current(spin_wire, 1j)
    lazy = ops.Source(spin_wire, lambda site: raising)  # a function is checked when called
    state = np.ones(spin_wire.num_orbitals)
    with pytest.raises(ValueError, match="not Hermitian"):
        lazy(state, params=SPIN_PARAMS)
    unchecked = ops.Density(spin_wire, raising, check_hermiticity=False)
    values = unchecked(state)
    assert values.dtype == complex
    np.testing.assert_allclose(values, 1.0)  # <1,1|raising|1,1> on every site


def test_operators_on_a_lead_act_within_one_cell() -> None:
    lat = LAT
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    flead = lead.finalized()
    with pytest.raises(ValueError, match="unit cell"):
        ops.Current(flead, where=[(lat(0, y), lat(1, y)) for y in range(3)])
    transverse = ops.Current(flead, where=[(lat(0, y + 1), lat(0, y)) for y in range(2)])
    modes, _ = flead.modes(energy=1.0)
    # Transverse standing waves carry no current across the lead.
    np.testing.assert_allclose(transverse(modes.wave_functions.T), 0, atol=1e-12)
    density = ops.Density(flead)
    np.testing.assert_allclose(
        density(modes.wave_functions.T), np.abs(modes.wave_functions.T) ** 2, atol=1e-14
    )


@pytest.mark.parametrize("kind", [ops.Density, ops.Current, ops.Source])
def test_a_family_without_norbs_is_refused(kind: type) -> None:
    # The system itself guesses one orbital for such a family; an operator, whose onsite
    # matrix acts on the orbitals, needs them declared (as Kwant's operators do).
    loose = meso.lattice.chain(name="loose")
    syst = meso.Builder()
    syst[[CHAIN(0), CHAIN(1)]] = 0.0
    syst[CHAIN(0), CHAIN(1)] = -1.0
    syst[loose(5)] = 1.0
    with pytest.raises(ValueError, match="norbs=None"):
        kind(syst.finalized())
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[loose(0)] = 0.0
    lead[loose(0), loose(1)] = -1.0
    with pytest.raises(ValueError, match="norbs=None"):
        kind(lead.finalized())
    del syst[loose(5)]
    assert kind(syst.finalized()).syst.norbs.tolist() == [1, 1]


def test_operator_attributes_are_class_attributes_too() -> None:
    # Kwant's operator types expose their attributes on the class (``Density.onsite``);
    # an instance's own value shadows it.
    op = ops.Density(_chain_system(), onsite=2.0)
    for kind in (ops.Density, ops.Current, ops.Source):
        assert hasattr(kind, "onsite")
    assert np.allclose(op(np.ones(3)), 2.0)


def _chain_system() -> meso.System:
    syst = meso.Builder()
    syst[(CHAIN(i) for i in range(3))] = 0.0
    syst[CHAIN.neighbors()] = -1.0
    return syst.finalized()
