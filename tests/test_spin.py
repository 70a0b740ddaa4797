"""Spin transport: model terms, spin-resolved transmission, spin currents, spin valves.

Every number is checked against something independent: closed forms (surface Green's
functions of semi-infinite chains, the Fisher-Lee formula for a two-site junction), the
conservation-law blocks of the solver, the spin current of scattering states through a cut,
Julliere's and Slonczewski's tunnelling limits with their convergence rates, and the
Onsager relations G_ij(B, M) = G_ji(-B, -M).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mesoscopic as meso
from mesoscopic import batch, spin, transport
from mesoscopic.network import check_onsager
from mesoscopic.solvers import SolverOptions
from mesoscopic.spin import (
    dresselhaus_hopping,
    exchange,
    rashba_hopping,
    sigma_0,
    sigma_x,
    sigma_y,
    sigma_z,
    zeeman,
)
from model_systems import chain_with_leads

PARALLEL = {"m_left": (0.0, 0.0, 1.0), "m_right": (0.0, 0.0, 1.0)}


def n_dot_sigma(n):
    return n[0] * sigma_x + n[1] * sigma_y + n[2] * sigma_z


def chain_surface_green(z, t=1.0):
    """Retarded surface Green's function of a semi-infinite chain (onsite 0, hopping -t)."""
    z = complex(z)
    if abs(z.real) < 2 * t:
        return (z - 1j * np.sqrt(4 * t * t - z * z)) / (2 * t * t)
    return (z - np.sign(z.real) * np.sqrt(z * z - 4 * t * t)) / (2 * t * t)


def spinor(direction, sign):
    values, vectors = np.linalg.eigh(n_dot_sigma(direction))
    return vectors[:, int(np.argmin(np.abs(values - sign)))]


# --------------------------------------------------------------------------------------------
# Pauli matrices and model terms
# --------------------------------------------------------------------------------------------


def test_pauli_algebra_and_read_only():
    levi_civita = np.zeros((3, 3, 3))
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        levi_civita[i, j, k], levi_civita[j, i, k] = 1, -1
    sigmas = spin.pauli[1:]
    for i in range(3):
        for j in range(3):
            expected = (i == j) * sigma_0 + 1j * sum(
                levi_civita[i, j, k] * sigmas[k] for k in range(3)
            )
            assert np.allclose(sigmas[i] @ sigmas[j], expected, atol=0)
    assert spin.pauli[0] is sigma_0
    with pytest.raises(ValueError, match="read-only"):
        sigma_x[0, 0] = 5


def test_exchange_zeeman_and_projectors():
    m = spin.direction_from_angles(1.1, -0.4)
    assert np.isclose(np.linalg.norm(m), 1, atol=1e-15)
    h = 0.7
    values, vectors = np.linalg.eigh(exchange(h, m))
    assert np.allclose(values, [-h, h])  # bands split by 2h
    majority = vectors[:, 0]
    assert np.isclose(majority.conj() @ n_dot_sigma(m) @ majority, 1)  # majority spin along m
    assert np.allclose(zeeman(-0.3 * m), exchange(0.3, m))
    up, down = spin.spin_projector(m, 1), spin.spin_projector(m, -1)
    assert np.allclose(up + down, sigma_0) and np.allclose(up @ up, up)
    assert np.allclose(up @ down, 0)
    law = spin.spin_conservation_law(m)
    assert np.allclose(law @ majority, -majority)  # block 0 (smallest eigenvalue) = +m


def bloch_matrix(hopping_value, direction, k, size=7):
    """Bloch Hamiltonian of a ring built with the Builder from one hopping kind."""
    lat = meso.lattice.square(1.0, norbs=2)
    syst = meso.Builder()
    sites = [lat(*(direction * x)) for x in range(size)]
    syst[sites] = 0 * sigma_0
    for x in range(size):
        # <a|H|b> with a = b + direction (closing the ring with the last bond).
        syst[sites[(x + 1) % size], sites[x]] = hopping_value
    ham = syst.finalized().hamiltonian_submatrix()
    phases = np.exp(1j * k * np.arange(size))
    # H acting on exp(ikx) chi, read at site 0: sum_x H[0, x] exp(ikx).
    return sum(ham[0:2, 2 * x : 2 * x + 2] * phases[x] for x in range(size))


@pytest.mark.parametrize("m", [1, 2, 3])
def test_rashba_and_dresselhaus_sign_conventions(m):
    k = 2 * np.pi * m / 7
    alpha, beta, t = 0.3, 0.2, 1.0
    x_hat, y_hat = np.array([1, 0]), np.array([0, 1])
    hx = -t * sigma_0 + rashba_hopping(alpha, x_hat) + dresselhaus_hopping(beta, x_hat)
    hy = -t * sigma_0 + rashba_hopping(alpha, y_hat) + dresselhaus_hopping(beta, y_hat)
    # alpha (sigma_x k_y - sigma_y k_x) + beta (sigma_x k_x - sigma_y k_y), k -> sin k.
    expect_x = -2 * t * np.cos(k) * sigma_0 + np.sin(k) * (-alpha * sigma_y + beta * sigma_x)
    expect_y = -2 * t * np.cos(k) * sigma_0 + np.sin(k) * (alpha * sigma_x - beta * sigma_y)
    assert np.allclose(bloch_matrix(hx, x_hat, k), expect_x, atol=1e-13)
    assert np.allclose(bloch_matrix(hy, y_hat, k), expect_y, atol=1e-13)
    # Reversed bonds are the Hermitian conjugates, and a = 2 halves the hopping.
    assert np.allclose(rashba_hopping(alpha, -x_hat), rashba_hopping(alpha, x_hat).conj().T)
    assert np.allclose(
        rashba_hopping(alpha, y_hat, lattice_constant=2), rashba_hopping(alpha / 2, y_hat)
    )


# --------------------------------------------------------------------------------------------
# Spin-resolved transmission through ferromagnetic junctions: closed forms
# --------------------------------------------------------------------------------------------


def junction_fisher_lee(energy, h_left, h_right, m_left, m_right, coupling):
    """T[s', s] of two ferromagnetic chains joined by one bond, from Green's functions.

    The contact sites see the rest of their chain through the self-energy t^2 g_surface;
    Gamma is diagonal in each lead's spin basis, so t_{s's} = sqrt(Gamma_R Gamma_L) G_RL.
    """

    def lead_self_energy(h, m):
        return sum(
            chain_surface_green(energy + s * h) * spin.spin_projector(m, s) for s in (1, -1)
        )

    hamiltonian = np.zeros((4, 4), dtype=complex)
    hamiltonian[:2, :2] = exchange(h_left, m_left)
    hamiltonian[2:, 2:] = exchange(h_right, m_right)
    hamiltonian[:2, 2:] = hamiltonian[2:, :2] = -coupling * sigma_0
    embedding = np.zeros((4, 4), dtype=complex)
    embedding[:2, :2] = lead_self_energy(h_left, m_left)
    embedding[2:, 2:] = lead_self_energy(h_right, m_right)
    green = np.linalg.inv(energy * np.eye(4) - hamiltonian - embedding)[2:, :2]
    result = np.zeros((2, 2))
    for i, s_out in enumerate((1, -1)):
        for j, s_in in enumerate((1, -1)):
            gamma_r = -2 * chain_surface_green(energy + s_out * h_right).imag
            gamma_l = -2 * chain_surface_green(energy + s_in * h_left).imag
            amplitude = spinor(m_right, s_out).conj() @ green @ spinor(m_left, s_in)
            result[i, j] = gamma_r * gamma_l * abs(amplitude) ** 2
    return result


@pytest.mark.parametrize("coupling", [0.05, 0.5, 1.0])
def test_collinear_junction_matches_closed_form(coupling):
    energy, h = 0.3, 0.5
    fsys = spin.spin_valve(exchange_left=h, coupling=coupling)
    for m_right, flips in (((0, 0, 1), False), ((0, 0, -1), True)):
        s = meso.smatrix(fsys, energy, params={"m_left": (0, 0, 1), "m_right": m_right})
        resolved = spin.spin_resolved_transmission(s, 1, 0, to_axis=m_right, from_axis=(0, 0, 1))
        expected = np.zeros((2, 2))
        for i, s_out in enumerate((1, -1)):
            for j, s_in in enumerate((1, -1)):
                if (s_out != s_in) != flips:
                    continue  # the spin along z is conserved
                g_left = chain_surface_green(energy + s_in * h)
                g_right = chain_surface_green(energy + s_out * h)
                expected[i, j] = (
                    4 * coupling**2 * g_left.imag * g_right.imag
                    / abs(1 - coupling**2 * g_left * g_right) ** 2
                )  # fmt: skip
        assert np.allclose(resolved, expected, atol=1e-12)
        assert abs(resolved.sum() - s.transmission(1, 0)) < 1e-12


def test_noncollinear_junction_matches_fisher_lee():
    """Leads magnetized along different axes: modes are spin-pure only along their own axis."""
    energy, h_left, h_right, coupling = 0.3, 0.5, 0.8, 0.5
    m_left = spin.direction_from_angles(0.4, 1.0)
    m_right = spin.direction_from_angles(2.0, -0.7)
    fsys = spin.spin_valve(exchange_left=h_left, exchange_right=h_right, coupling=coupling)
    s = meso.smatrix(fsys, energy, params={"m_left": m_left, "m_right": m_right})
    resolved = spin.spin_resolved_transmission(s, 1, 0, to_axis=m_right, from_axis=m_left)
    expected = junction_fisher_lee(energy, h_left, h_right, m_left, m_right, coupling)
    assert np.allclose(resolved, expected, atol=1e-12)
    assert resolved[0, 1] > 0.1 and resolved[1, 0] > 0.1  # spin flips relative to the axes
    assert abs(resolved.sum() - s.transmission(1, 0)) < 1e-12
    with pytest.raises(ValueError, match="not spin eigenstates along to_axis"):
        spin.spin_resolved_transmission(s, 1, 0, from_axis=m_left)
    weights = spin.spin_resolved_transmission(s, 1, 0, strict=False)
    assert abs(weights.sum() - s.transmission(1, 0)) < 1e-12 and np.all(weights >= 0)


def test_reflection_is_resolved_too():
    fsys = spin.spin_valve(exchange_left=0.5, exchange_right=0.2, coupling=0.3)
    m = spin.direction_from_angles(0.9, 0.3)
    for m_right, flips in ((m, False), (np.array([1.0, 0.0, 0.0]), True)):
        s = meso.smatrix(fsys, 0.4, params={"m_left": m, "m_right": m_right})
        reflected = spin.spin_resolved_transmission(s, 0, 0, to_axis=m)
        transmitted = spin.spin_resolved_transmission(s, 1, 0, to_axis=m_right, from_axis=m)
        # Unitarity per incoming spin: reflected + transmitted = one channel of each spin.
        assert np.allclose(reflected.sum(axis=0) + transmitted.sum(axis=0), [1, 1], atol=1e-12)
        # A non-collinear magnet on the far side flips reflected spins (spin transfer).
        spin_flips = reflected[[0, 1], [1, 0]]
        assert np.all(spin_flips > 1e-5) if flips else np.allclose(spin_flips, 0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Normal leads: projection vs conservation-law blocks, spin currents vs scattering states
# --------------------------------------------------------------------------------------------

WIRE_LENGTH, WIRE_WIDTH, WIRE_ENERGY = 10, 3, 1.3
WIRE_PARAMS = {"b": (0.4, 0.2, 0.5), "w": 1.0, "alpha": 0.8}
# Columns with spin-orbit coupling and Zeeman field; the two columns next to each lead are
# normal metal, where the spin current is conserved.
ACTIVE = (2, WIRE_LENGTH - 3)


def _disorder(tag, seed=3):
    rng = np.random.default_rng([seed, *(int(t) + 100 for t in tag)])
    return rng.random() - 0.5


def make_rashba_wire(conservation_law=None):
    """Disordered Rashba wire in a Zeeman field between normal (spin-degenerate) leads."""
    lat = meso.lattice.square(1.0, norbs=2)

    def active(x):
        return ACTIVE[0] <= x < ACTIVE[1]

    def onsite(site, b, w):
        if active(site.tag[0]):
            return 4 * sigma_0 + zeeman(b) + w * _disorder(site.tag) * sigma_0
        return 4 * sigma_0

    def hopping(a, b, alpha):
        delta = (a.tag[0] - b.tag[0], a.tag[1] - b.tag[1])
        inside = active(a.tag[0]) and active(b.tag[0])
        return -sigma_0 + (rashba_hopping(alpha, delta) if inside else 0 * sigma_0)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(WIRE_LENGTH) for y in range(WIRE_WIDTH))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)), conservation_law=conservation_law)
    lead[(lat(0, y) for y in range(WIRE_WIDTH))] = 4 * sigma_0
    lead[lat.neighbors()] = -sigma_0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


@functools.cache
def rashba_wire_smatrix():
    return meso.smatrix(make_rashba_wire(), WIRE_ENERGY, params=WIRE_PARAMS)


@pytest.mark.parametrize("axis", [(1, 0, 0), (0, 1, 0), (0, 0, 1)])
def test_projection_matches_conservation_law_blocks(axis):
    """The same T[s', s] from arbitrary degenerate modes and from spin-pure lead blocks."""
    plain = rashba_wire_smatrix()
    law = spin.spin_conservation_law(axis)
    blocked = meso.smatrix(make_rashba_wire(law), WIRE_ENERGY, params=WIRE_PARAMS)
    from_blocks = spin.spin_transmission_from_blocks(blocked, 1, 0)
    projected = spin.spin_resolved_transmission(plain, 1, 0, to_axis=axis)
    assert np.allclose(projected, from_blocks, atol=1e-10)
    assert min(from_blocks[0, 1], from_blocks[1, 0]) > 1e-3  # Rashba flips spins
    # The spin current along the axis is the spin-resolved imbalance.
    current = spin.spin_current(plain, 1, 0)
    assert abs(current @ np.array(axis) - (from_blocks[0].sum() - from_blocks[1].sum())) < 1e-10


def test_spin_current_matches_scattering_states():
    """S-matrix spin current vs sum_y 2 Im(psi_a^dagger H_ab sigma psi_b) across a normal cut."""
    fsys = make_rashba_wire()
    s = rashba_wire_smatrix()
    current = spin.spin_current(s, 1, 0)
    states = meso.wave_function(fsys, WIRE_ENERGY, params=WIRE_PARAMS)(0)
    ham = fsys.hamiltonian_submatrix(params=WIRE_PARAMS, sparse=True).tocsr()
    index = {tuple(int(c) for c in site.tag): i for i, site in enumerate(fsys.sites)}
    offsets = fsys.orb_offsets
    cut = WIRE_LENGTH - 2  # between columns cut and cut + 1, in the normal part
    through_cut = np.zeros(4)
    for y in range(WIRE_WIDTH):
        a, b = index[(cut + 1, y)], index[(cut, y)]
        rows, cols = slice(offsets[a], offsets[a + 1]), slice(offsets[b], offsets[b + 1])
        block = ham[rows, cols].toarray()
        for component, matrix in enumerate(spin.pauli):
            amplitudes = np.einsum("ni,ij,jk,nk->n", states[:, rows].conj(), block, matrix,
                                   states[:, cols])  # fmt: skip
            through_cut[component] += 2 * np.sum(amplitudes.imag)
    assert abs(through_cut[0] - s.transmission(1, 0)) < 1e-10  # particle current
    assert np.allclose(through_cut[1:], current, atol=1e-10)
    assert np.linalg.norm(current) > 0.05  # a genuinely polarized current
    polarization = spin.transmitted_spin_polarization(s, 1, 0)
    assert np.allclose(polarization * s.transmission(1, 0), current)
    assert np.linalg.norm(polarization) <= 1


unit_vectors = st.tuples(
    st.floats(0, np.pi, allow_nan=False), st.floats(-np.pi, np.pi, allow_nan=False)
).map(lambda angles: spin.direction_from_angles(*angles))


@settings(max_examples=25, deadline=None)
@given(axis=unit_vectors, other=unit_vectors)
def test_spin_resolution_invariants_over_random_axes(axis, other):
    s = rashba_wire_smatrix()
    resolved = spin.spin_resolved_transmission(s, 1, 0, to_axis=axis, from_axis=other)
    total = s.transmission(1, 0)
    assert np.all(resolved >= -1e-12)
    assert abs(resolved.sum() - total) < 1e-10
    # Unpolarized injection: the incoming spin axis only splits the source in two halves.
    per_source = resolved.sum(axis=0)
    same_axis = spin.spin_resolved_transmission(s, 1, 0, to_axis=axis)
    assert np.allclose(resolved.sum(axis=1), same_axis.sum(axis=1), atol=1e-10)
    assert np.all(per_source <= s.num_propagating(0) / 2 + 1e-10)
    # Reversing the axis swaps the labels.
    flipped = spin.spin_resolved_transmission(s, 1, 0, to_axis=-axis, from_axis=-other)
    assert np.allclose(flipped, resolved[::-1, ::-1], atol=1e-10)
    current = spin.spin_current(s, 1, 0)
    assert abs(current @ axis - (resolved[0].sum() - resolved[1].sum())) < 1e-10


def test_no_spin_flips_without_spin_orbit_or_noncollinear_fields():
    collinear = dict(WIRE_PARAMS, alpha=0.0, b=(0.0, 0.0, 0.6))
    s = meso.smatrix(make_rashba_wire(), WIRE_ENERGY, params=collinear)
    along_field = spin.spin_resolved_transmission(s, 1, 0, to_axis=(0, 0, 1))
    assert abs(along_field[0, 1]) < 1e-12 and abs(along_field[1, 0]) < 1e-12
    assert along_field[0, 0] != pytest.approx(along_field[1, 1], abs=1e-3)  # but spin-dependent
    current = spin.spin_current(s, 1, 0)
    assert np.allclose(current[:2], 0, atol=1e-12)  # polarized along the field only
    # Quantized across the field, the precession about it does flip spins.
    across = spin.spin_resolved_transmission(s, 1, 0, to_axis=(1, 0, 0))
    assert across[0, 1] > 1e-3
    with_rashba = spin.spin_resolved_transmission(rashba_wire_smatrix(), 1, 0)
    assert with_rashba[0, 1] > 1e-3 and with_rashba[1, 0] > 1e-3


def test_spin_current_needs_a_normal_lead():
    fsys = spin.spin_valve(exchange_left=0.5)
    s = meso.smatrix(fsys, 0.3, params=PARALLEL)
    with pytest.raises(ValueError, match="spin is not conserved in lead 1"):
        spin.spin_current(s, 1, 0)


# --------------------------------------------------------------------------------------------
# Lead densities of states and polarization
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("energy", [-1.0, 0.2, 1.1])
def test_ferromagnetic_chain_densities_of_states(energy):
    h = 0.8
    fsys = spin.spin_valve(exchange_left=h)
    # E = -2 cos k_s - s h for spin s along the magnetization.
    k = np.arccos(-(energy + np.array([h, -h])) / 2)
    surface = spin.lead_spin_density_of_states(fsys, 0, energy, params=PARALLEL)
    bulk = spin.lead_spin_density_of_states(fsys, 0, energy, params=PARALLEL, kind="dos")
    channels = spin.lead_spin_density_of_states(fsys, 0, energy, params=PARALLEL, kind="channels")
    assert np.allclose(surface, np.sin(k) / np.pi, atol=1e-12)
    assert np.allclose(bulk, 1 / (2 * np.pi * np.sin(k)), atol=1e-12)
    assert np.allclose(channels, [1, 1], atol=1e-12)
    # Contact LDOS goes like the velocity and the bulk DOS like its inverse: opposite P.
    p_surface = spin.lead_polarization(fsys, 0, energy, params=PARALLEL)
    p_bulk = spin.lead_polarization(fsys, 0, energy, params=PARALLEL, kind="dos")
    assert abs(p_surface + p_bulk) < 1e-12
    # Quantized against the magnetization the labels swap.
    flipped = spin.lead_spin_density_of_states(fsys, 0, energy, params=PARALLEL, axis=(0, 0, -1))
    assert np.allclose(flipped, surface[::-1])


def test_half_metal_and_normal_lead_polarizations():
    fsys = spin.spin_valve(exchange_left=0.5, exchange_right=0.0)
    # Majority band [-2.5, 1.5], minority [-1.5, 2.5]: at -1.9 only the majority is open.
    for kind in ("surface", "dos", "channels"):
        assert spin.lead_polarization(fsys, 0, -1.9, params=PARALLEL, kind=kind) == 1
        assert spin.lead_polarization(fsys, 0, 1.9, params=PARALLEL, kind=kind) == -1
        normal = spin.lead_polarization(fsys, 1, 0.3, params=PARALLEL, kind=kind, axis=(1, 0, 0))
        assert abs(normal) < 1e-12
    with pytest.raises(ValueError, match="no states at energy"):
        spin.lead_polarization(fsys, 0, 3.0, params=PARALLEL)


# --------------------------------------------------------------------------------------------
# Spin valves: Julliere and the cosine law in the tunnelling limit
# --------------------------------------------------------------------------------------------

VALVE = {"energy": 1.0, "h_left": 0.8, "h_right": 0.5}


def julliere_of_contacts(fsys, kind="surface"):
    energy = VALVE["energy"]
    p_left = spin.lead_polarization(fsys, 0, energy, params=PARALLEL, kind=kind)
    p_right = spin.lead_polarization(fsys, 1, energy, params=PARALLEL, kind=kind)
    return spin.julliere_tmr(p_left, p_right), p_left, p_right


def weak_link(coupling):
    return spin.spin_valve(
        exchange_left=VALVE["h_left"], exchange_right=VALVE["h_right"], coupling=coupling
    )


def test_julliere_is_the_tunnelling_limit_of_a_weak_link():
    """TMR -> 2 P_L P_R / (1 - P_L P_R) with P of the contact LDOS; error ~ tau^2.

    Golden rule: T_{s's} = 4 pi^2 tau^2 rho_{L,s} rho_{R,s'} for a spin-independent link tau;
    the next order, |1 - tau^2 g_L g_R|^-2, is spin dependent and of relative size tau^2.
    """
    errors = {}
    julliere, p_left, p_right = julliere_of_contacts(weak_link(0.01))
    assert p_left < -0.3 and p_right < -0.15  # a sizeable TMR, not a near-zero difference
    for coupling in (0.02, 0.01):
        tmr = spin.magnetoresistance(weak_link(coupling), VALVE["energy"]).tmr
        errors[coupling] = (tmr - julliere) / julliere
    assert abs(errors[0.01]) < 4 * 0.01**2
    assert errors[0.02] / errors[0.01] == pytest.approx(4, rel=0.01)  # quadratic in tau
    # In a chain, the bulk-DOS polarization is minus the contact one, so P_L P_R is the same.
    assert julliere_of_contacts(weak_link(0.01), "dos")[0] == pytest.approx(julliere, rel=1e-12)


def test_golden_rule_with_contact_ldos_and_spinor_overlaps():
    """T_{s's} -> 4 pi^2 tau^2 rho_{L,s} rho_{R,s'} |<s'_R|s_L>|^2 for non-collinear leads."""
    coupling, energy = 0.01, VALVE["energy"]
    m_left = spin.direction_from_angles(0.3, 0.4)
    m_right = spin.direction_from_angles(1.7, 2.0)
    params = {"m_left": m_left, "m_right": m_right}
    fsys = weak_link(coupling)
    s = meso.smatrix(fsys, energy, params=params)
    resolved = spin.spin_resolved_transmission(s, 1, 0, to_axis=m_right, from_axis=m_left)
    rho_left = spin.lead_spin_density_of_states(fsys, 0, energy, params=params, axis=m_left)
    rho_right = spin.lead_spin_density_of_states(fsys, 1, energy, params=params, axis=m_right)
    overlaps = np.array(
        [[abs(spinor(m_right, so).conj() @ spinor(m_left, si)) ** 2 for si in (1, -1)]
         for so in (1, -1)]
    )  # fmt: skip
    golden_rule = 4 * np.pi**2 * coupling**2 * np.outer(rho_right, rho_left) * overlaps
    assert np.allclose(resolved, golden_rule, rtol=10 * coupling**2, atol=0)


def test_julliere_is_the_high_barrier_limit():
    """A thick spin-independent barrier of height U: relative error ~ 1/U (Slonczewski)."""
    julliere = julliere_of_contacts(weak_link(1.0))[0]
    errors = []
    for height in (20.0, 40.0, 80.0):
        fsys = spin.spin_valve(
            exchange_left=VALVE["h_left"],
            exchange_right=VALVE["h_right"],
            spacer_length=4,
            barrier=height,
        )
        tmr = spin.magnetoresistance(fsys, VALVE["energy"]).tmr
        errors.append((tmr - julliere) / julliere)
    assert errors[-1] < 0.07
    assert errors[0] / errors[1] == pytest.approx(2, rel=0.05)
    assert errors[1] / errors[2] == pytest.approx(2, rel=0.05)


def test_cosine_law_in_the_tunnelling_limit():
    angles = np.linspace(0, np.pi, 5)
    deviations = {}
    for coupling in (0.02, 0.01):
        fsys = weak_link(coupling)
        mr = spin.magnetoresistance(fsys, VALVE["energy"])
        conductance = spin.conductance_vs_angle(fsys, VALVE["energy"], angles)
        assert conductance[0] == pytest.approx(mr.g_parallel, rel=1e-12)
        assert conductance[-1] == pytest.approx(mr.g_antiparallel, rel=1e-12)
        deviations[coupling] = np.max(np.abs(conductance - mr.cosine_law(angles))) / mr.g_parallel
    assert deviations[0.01] < 0.05 * 0.01**2
    assert deviations[0.02] / deviations[0.01] == pytest.approx(4, rel=0.02)
    # A transparent junction is far from the tunnelling limit: the cosine law fails there.
    transparent = spin.spin_valve(
        exchange_left=VALVE["h_left"], exchange_right=VALVE["h_right"], spacer_length=3
    )
    mr = spin.magnetoresistance(transparent, VALVE["energy"])
    conductance = spin.conductance_vs_angle(transparent, VALVE["energy"], angles)
    assert np.max(np.abs(conductance - mr.cosine_law(angles))) / mr.g_parallel > 1e-3


def test_spin_valve_in_other_planes_and_symmetric_angles():
    fsys = weak_link(0.3)
    energy = VALVE["energy"]
    axis, plane = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    along_x = spin.conductance_vs_angle(fsys, energy, [0.7, -0.7], axis=axis, rotation_plane=plane)
    along_z = spin.conductance_vs_angle(fsys, energy, 0.7)
    # Without spin-orbit coupling only the relative angle matters.
    assert np.allclose(along_x, along_z, atol=1e-12)


def test_spin_valve_conductances_come_from_the_batched_solver(monkeypatch):
    """Each magnetization goes through meso.transmission (RGF, options passed on), with the
    numbers of meso.smatrix."""
    fsys = spin.spin_valve(exchange_left=0.6, exchange_right=0.4, width=3, spacer_length=2)
    energy, angles = 0.7, np.array([0.0, 0.9, 2.0, np.pi])
    up = np.array([0.0, 0.0, 1.0])
    per_angle = []
    for angle in angles:
        right = np.cos(angle) * up + np.sin(angle) * np.array([1.0, 0.0, 0.0])
        s = meso.smatrix(fsys, energy, params={"m_left": up, "m_right": right})
        per_angle.append(s.transmission(1, 0))
    calls = []
    original = batch.transmission

    def spy(system, energies, *args, **kwargs):
        stats: dict = {}
        calls.append((np.size(energies), kwargs.get("options"), stats))
        return original(system, energies, *args, stats=stats, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("the single-energy smatrix must not be called")

    monkeypatch.setattr(batch, "transmission", spy)
    monkeypatch.setattr(transport, "smatrix", forbidden)
    options = SolverOptions(solver="rgf")
    conductance = spin.conductance_vs_angle(fsys, energy, angles, options=options)
    mr = spin.magnetoresistance(fsys, energy, options=options)
    assert len(calls) == angles.size + 2
    for size, passed, stats in calls:
        assert size == 1 and passed is options
        assert stats["solver"] == "rgf" and stats["sparse_fallback_energies"] == 0
    assert np.ptp(per_angle) > 0.01  # the conductance depends on the angle
    np.testing.assert_allclose(conductance, per_angle, rtol=1e-10)
    np.testing.assert_allclose([mr.g_parallel, mr.g_antiparallel], per_angle[::3], rtol=1e-10)


# --------------------------------------------------------------------------------------------
# Onsager relations for magnetic systems
# --------------------------------------------------------------------------------------------


def make_magnetic_junction():
    """Three-terminal Rashba junction with Zeeman and orbital fields and ferromagnetic leads.

    Leads: 0 left, 1 right, 2 on top (along +y); each with its own magnetization.
    """
    lat = meso.lattice.square(1.0, norbs=2)
    length, width = 8, 4

    def onsite(site, b, w):
        return 4 * sigma_0 + zeeman(b) + w * _disorder(site.tag, seed=5) * sigma_0

    def hopping(a, b, alpha):
        return -sigma_0 + rashba_hopping(alpha, (a.tag[0] - b.tag[0], a.tag[1] - b.tag[1]))

    syst = meso.Builder()
    sites = [lat(x, y) for x in range(length) for y in range(width)]
    sites += [lat(x, y) for x in range(3, 6) for y in range(width, width + 2)]
    syst[sites] = onsite
    syst[lat.neighbors()] = hopping

    def lead_0(site, b, h, m0):
        return 4 * sigma_0 + zeeman(b) + exchange(h, m0)

    def lead_1(site, b, h, m1):
        return 4 * sigma_0 + zeeman(b) + exchange(h, m1)

    def lead_2(site, b, h, m2):
        return 4 * sigma_0 + zeeman(b) + exchange(h, m2)

    cells = [(0, y) for y in range(width)]
    for period, cell, value in (
        ((-1, 0), cells, lead_0),
        ((1, 0), cells, lead_1),
        ((0, 1), [(x, 0) for x in range(3, 6)], lead_2),
    ):
        lead = meso.Builder(meso.TranslationalSymmetry(period))
        lead[(lat(*c) for c in cell)] = value
        lead[lat.neighbors()] = -sigma_0
        syst.attach_lead(lead)
    return syst.finalized(magnetic_flux="phi")


def magnetic_params(sign, *, flux=0.05):
    """Fields and magnetizations; sign = -1 reverses all of them (time reversal)."""
    return {
        "b": sign * np.array([0.15, -0.1, 0.0]),  # in-plane Zeeman field
        "phi": sign * flux,  # perpendicular field (flux per plaquette, h/e)
        "m0": sign * spin.direction_from_angles(0.3, 0.2),
        "m1": sign * spin.direction_from_angles(1.9, 2.5),
        "m2": sign * spin.direction_from_angles(1.0, -1.0),
        "w": 1.5,
        "alpha": 0.4,
        "h": 0.3,
    }


def test_onsager_relations_with_fields_and_magnetizations():
    fsys = make_magnetic_junction()
    energy = 1.1
    forward = meso.smatrix(fsys, energy, params=magnetic_params(1))
    reversed_ = meso.smatrix(fsys, energy, params=magnetic_params(-1))
    t_plus, t_minus = forward.transmission_matrix(), reversed_.transmission_matrix()
    assert check_onsager(t_plus, t_minus, atol=1e-10).ok
    g_plus, g_minus = forward.conductance_matrix(), reversed_.conductance_matrix()
    assert check_onsager(g_plus, g_minus, atol=1e-10).ok
    # The symmetry is genuinely broken: G_ij(B, M) != G_ji(B, M).
    assert not check_onsager(g_plus, g_plus, atol=1e-3).ok
    assert min(forward.num_propagating(i) for i in range(3)) >= 2


def test_two_terminal_conductance_is_even_in_magnetization():
    """B = 0: G(M) = G(-M) with spin-orbit coupling and non-collinear leads; G(M) != G(M')."""
    lat = meso.lattice.square(1.0, norbs=2)

    def onsite(site, w):
        return 4 * sigma_0 + w * _disorder(site.tag, seed=9) * sigma_0

    def hopping(a, b, alpha):
        return -sigma_0 + rashba_hopping(alpha, (a.tag[0] - b.tag[0], a.tag[1] - b.tag[1]))

    def left(site, m_left):
        return 4 * sigma_0 + exchange(0.4, m_left)

    def right(site, m_right):
        return 4 * sigma_0 + exchange(0.4, m_right)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(6) for y in range(3))] = onsite
    syst[lat.neighbors()] = hopping
    for period, value in (((-1, 0), left), ((1, 0), right)):
        lead = meso.Builder(meso.TranslationalSymmetry(period))
        lead[(lat(0, y) for y in range(3))] = value
        lead[lat.neighbors()] = -sigma_0
        syst.attach_lead(lead)
    fsys = syst.finalized()
    m_left, m_right = spin.direction_from_angles(0.5, 0.1), spin.direction_from_angles(2.1, 1.3)

    def conductance(ml, mr):
        params = {"w": 1.0, "alpha": 0.6, "m_left": ml, "m_right": mr}
        return meso.smatrix(fsys, 1.2, params=params).transmission(1, 0)

    g = conductance(m_left, m_right)
    assert abs(g - conductance(-m_left, -m_right)) < 1e-10
    assert abs(g - conductance(m_left, -m_right)) > 1e-3  # the valve does respond to M


# --------------------------------------------------------------------------------------------
# Small functions and bad input
# --------------------------------------------------------------------------------------------


def test_julliere_and_tmr_formulas():
    assert spin.julliere_tmr(0.5, 0.5) == pytest.approx(2 / 3)
    assert spin.julliere_tmr(0.4, -0.4) == pytest.approx(-0.32 / 1.16)
    assert spin.tunnel_magnetoresistance(3.0, 2.0) == 0.5
    mr = spin.Magnetoresistance(3.0, 1.0)
    assert mr.tmr == 2.0
    assert mr.cosine_law(np.pi / 2) == pytest.approx(2.0)
    assert mr.cosine_law([0.0, np.pi]).tolist() == pytest.approx([3.0, 1.0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: exchange(0.5, (0, 0, 2)), ValueError, r"magnetization must be a unit.*length 2"),
        (lambda: exchange(0.5, (0, 0, 0)), ValueError, "zero vector"),
        (lambda: exchange(0.5, (0, 1)), ValueError, "3-vector"),
        (lambda: exchange(-0.5, (0, 0, 1)), ValueError, r"h must be >= 0.*reverse the magnet"),
        (lambda: exchange(0.5, "up"), TypeError, "magnetization must be a real"),
        (lambda: zeeman((0, 1j, 0)), TypeError, "field must be real"),
        (lambda: spin.spin_projector((0, 0, 1), 2), ValueError, r"sign must be \+1 or -1"),
        (lambda: spin.spin_conservation_law((1, 1, 0)), ValueError, "axis must be a unit"),
        (lambda: rashba_hopping(0.1, (1, 1)), ValueError, "nearest-neighbour displacement"),
        (
            lambda: dresselhaus_hopping(0.1, (1, 0), lattice_constant=0),
            ValueError,
            "lattice_constant must be > 0",
        ),
        (lambda: spin.spin_valve(exchange_left=-0.1), ValueError, "exchange_left must be >= 0"),
        (
            lambda: spin.spin_valve(exchange_left=0.1, exchange_right=-1),
            ValueError,
            "exchange_right must be >= 0",
        ),
        (
            lambda: spin.spin_valve(exchange_left=0.1, width=0),
            ValueError,
            "width must be a positive integer",
        ),
        (
            lambda: spin.spin_valve(exchange_left=0.1, spacer_length=1.5),
            TypeError,
            "spacer_length must be a non-negative integer",
        ),
        (
            lambda: spin.spin_valve(exchange_left=0.1, coupling=0),
            ValueError,
            "coupling must be > 0",
        ),
        (
            lambda: spin.julliere_tmr(1.2, 0.5),
            ValueError,
            r"p_left must be a polarization in \[-1",
        ),
        (lambda: spin.julliere_tmr(1.0, 1.0), ValueError, "TMR is infinite"),
        (lambda: spin.tunnel_magnetoresistance(1.0, 0.0), ValueError, "g_antiparallel must be >"),
        (lambda: spin.tunnel_magnetoresistance(-1.0, 1.0), ValueError, "g_parallel must be >= 0"),
    ],
)
def test_bad_input_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bad_input_to_transport_functions():
    fsys = spin.spin_valve(exchange_left=0.5)
    with pytest.raises(ValueError, match="m_right must be a unit vector"):
        meso.smatrix(fsys, 0.3, params={"m_left": (0, 0, 1), "m_right": (0, 0, 0.5)})
    s = meso.smatrix(fsys, 0.3, params=PARALLEL)
    with pytest.raises(ValueError, match="to_lead 2 does not exist"):
        spin.spin_resolved_transmission(s, 2, 0)
    with pytest.raises(ValueError, match="from_axis must be a unit vector"):
        spin.spin_resolved_transmission(s, 1, 0, from_axis=(1, 1, 1))
    with pytest.raises(TypeError, match="smatrix must be an SMatrix"):
        spin.spin_current(s.data, 1, 0)
    with pytest.raises(ValueError, match="conservation-law block"):
        spin.spin_transmission_from_blocks(s, 1, 0)
    with pytest.raises(ValueError, match="kind must be one of"):
        spin.lead_polarization(fsys, 0, 0.3, params=PARALLEL, kind="bulk")
    with pytest.raises(ValueError, match="lead 5 does not exist"):
        spin.lead_polarization(fsys, 5, 0.3, params=PARALLEL)
    with pytest.raises(ValueError, match="no parameter 'magnetization'"):
        spin.magnetoresistance(fsys, 0.3, left="magnetization")
    with pytest.raises(ValueError, match="rotation_plane must be orthogonal to axis"):
        spin.conductance_vs_angle(fsys, 0.3, [0.0], rotation_plane=(0, 0, 1))
    spinless = chain_with_leads(1, 0.0).finalized()
    with pytest.raises(ValueError, match="two orbitals"):
        spin.spin_resolved_transmission(meso.smatrix(spinless, 0.2), 1, 0)
