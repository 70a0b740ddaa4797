"""Scattering exactly at, and a hair from, the band edges of the leads (property tests).

Random small systems (square, honeycomb and triangular lattices, one or two orbitals, random
onsite disorder, complex hoppings from a random flux pattern, two or three leads whose own
hoppings carry phases too) are solved at energies on the band edges of their leads (found
from the lead band structure: zeros of the band velocity) and 1e-12, 1e-9 and 1e-6 on
either side. Everywhere the S-matrix must be unitary, reciprocal in the field
(``T_ij(phi) = T_ji(-phi)``), the same from the RGF (with no energy handed to the sparse
solver) and from the sparse solver, and a channel opens only strictly inside its band
(Kwant's convention): at the edge it is closed, 1e-12 inside it is open.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy import optimize

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.leads import Bands
from mesoscopic.transport import lead_data

OFFSETS = (0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6)
# Unitarity and reciprocity everywhere, a hair inside a band included. Measured worst on 60
# random cases: 6e-14 in unitarity and 3.3e-13 in reciprocity T_ij(phi) - T_ji(-phi) (it
# was 3e-10 and 6e-10 at 1e-12 inside a band while the outgoing amplitudes were read by
# wave-function matching: a slow mode's unit-current normalization is accurate only to
# eps / v; see solvers._embedding._mode_readout). Kwant 1.5 reaches 1e-7..1e-6 in
# unitarity at the same energies.
TOLERANCE = 1e-10


def _odd(displacement: np.ndarray) -> tuple[tuple[float, ...], float]:
    """Canonical key of a hopping direction and the sign relating it to the key."""
    key = tuple(np.round(displacement, 6) + 0.0)
    negated = tuple(-np.round(displacement, 6) + 0.0)
    return (key, 1.0) if key >= negated else (negated, -1.0)


def _hash(*values: float) -> float:
    """A reproducible pseudo-random number in [-0.5, 0.5) from coordinates."""
    x = math.sin(sum(v * c for v, c in zip(values, (12.9898, 78.233, 37.719), strict=False)))
    return (x * 43758.5453) % 1.0 - 0.5


def random_system(draw: Callable[..., Any]) -> tuple[Any, dict[str, Any]]:
    """A finalized random system and its drawn parameters."""
    kind = draw(st.sampled_from(["square", "honeycomb", "triangular"]))
    norbs = draw(st.integers(1, 2))
    width = draw(st.integers(1, 5 if kind == "square" else 3))
    # The hexagonal lattices need two columns for the region to cut their leads.
    length = draw(st.integers(1 if kind == "square" else 2, 3))
    side_lead = kind == "square" and width >= 2 and draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    disorder = draw(st.floats(0.2, 1.5))
    rng = np.random.default_rng(seed)
    if kind == "square":
        lat = meso.lattice.square(1.0, norbs=norbs)
    elif kind == "honeycomb":
        lat = meso.lattice.honeycomb(norbs=norbs)
    else:
        lat = meso.lattice.triangular(norbs=norbs)
    # Rows of sites across the lead (y spacing 1, or sqrt(3)/2 for the hexagonal lattices).
    height = width - 0.01 if kind == "square" else width * math.sqrt(3) / 2 + 0.1

    def symmetric(scale: float) -> np.ndarray:
        m = rng.normal(size=(norbs, norbs)) * scale
        return (m + m.T) / 2

    base = {}  # per sublattice onsite matrix
    phases: dict[tuple[float, ...], float] = {}
    magnitudes: dict[tuple[float, ...], np.ndarray] = {}

    def onsite_base(site: Any) -> np.ndarray:
        fam = site.family
        if fam not in base:
            base[fam] = symmetric(1.0)
        return base[fam]

    def onsite(site: Any) -> np.ndarray:
        x, y = site.pos
        noise = np.array(
            [[_hash(x, y, i + j) for j in range(norbs)] for i in range(norbs)], dtype=float
        )
        return onsite_base(site) + disorder * (noise + noise.T)

    def lead_onsite(site: Any, transverse: int) -> np.ndarray:
        value = float(np.round(site.pos[transverse], 6))
        return onsite_base(site) + 0.3 * _hash(value, 1.0) * np.eye(norbs)

    def bond(a: Any, b: Any, phi: float) -> tuple[np.ndarray, complex]:
        key, sign = _odd(np.asarray(a.pos) - np.asarray(b.pos))
        if key not in magnitudes:
            magnitudes[key] = -np.eye(norbs) + 0.4 * rng.normal(size=(norbs, norbs))
            phases[key] = float(rng.uniform(-np.pi, np.pi))
        matrix = magnitudes[key] if sign > 0 else magnitudes[key].T
        return matrix, np.exp(1j * phi * sign * phases[key])

    def hopping(a: Any, b: Any, phi: float) -> np.ndarray:
        matrix, phase = bond(a, b, phi)
        flux = _hash(*(np.asarray(a.pos) + np.asarray(b.pos)))  # random flux pattern
        _, sign = _odd(np.asarray(a.pos) - np.asarray(b.pos))
        return matrix * phase * np.exp(1j * phi * sign * 2 * flux)

    def lead_hopping(a: Any, b: Any, phi: float) -> np.ndarray:
        matrix, phase = bond(a, b, phi)
        return matrix * phase

    syst = meso.Builder()
    syst[lat.shape(lambda p: 0 <= p[0] < length and 0 <= p[1] < height, (0, 0))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
    lead[lat.shape(lambda p: 0 <= p[1] < height, (0, 0))] = lambda s: lead_onsite(s, 1)
    lead[lat.neighbors()] = lead_hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    if side_lead:
        top = meso.Builder(meso.TranslationalSymmetry(lat.vec((0, 1))))
        top[lat.shape(lambda p: 0 <= p[0] < length, (0, 0))] = lambda s: lead_onsite(s, 0)
        top[lat.neighbors()] = lead_hopping
        syst.attach_lead(top)
    drawn = dict(kind=kind, norbs=norbs, width=width, length=length, side_lead=side_lead)
    return syst.finalized(), drawn


def band_edges(h_cell: np.ndarray, hop: np.ndarray) -> list[tuple[float, float]]:
    """``(E, curvature sign)`` of each smooth band extremum: zeros of ``dE_n/dk``."""
    bands = Bands(h_cell, hop)

    def velocity(k: float, n: int) -> float:
        return float(bands(k, derivative_order=1)[1][n])

    grid = np.linspace(-np.pi, np.pi, 65)
    found = []
    for n in range(h_cell.shape[0]):
        v = np.array([velocity(k, n) for k in grid])
        for i in np.flatnonzero(np.sign(v[:-1]) != np.sign(v[1:])):
            k = optimize.brentq(velocity, grid[i], grid[i + 1], args=(n,), xtol=1e-15)
            # A kink where two bands cross is no band edge: the velocity jumps there.
            if max(abs(velocity(k - 1e-7, n)), abs(velocity(k + 1e-7, n))) > 1e-4:
                continue
            found.append((float(bands(k)[n]), 1.0 if v[i] < 0 else -1.0))
    return found


@st.composite
def systems_at_edges(draw: Callable[..., Any]) -> tuple[Any, float, list[Any], list[Any]]:
    fsys, _ = random_system(draw)
    phi = draw(st.floats(-1.0, 1.0))
    lead = lead_data(fsys, params={"phi": phi})[0]
    all_edges = band_edges(lead.h_cell, lead.hop)
    edges = []
    if all_edges:
        picks = draw(st.lists(st.integers(0, len(all_edges) - 1), min_size=1, max_size=2))
        edges = [all_edges[i] for i in sorted(set(picks))]
    return fsys, phi, edges, all_edges


@settings(
    derandomize=True,
    max_examples=14,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),  # shrinking re-solves hundreds of systems
)
@given(case=systems_at_edges())
def test_smatrix_at_and_near_lead_band_edges(case):
    fsys, phi, edges, all_edges = case
    energies = np.array([edge + offset for edge, _ in edges for offset in OFFSETS])
    if energies.size == 0:
        return
    field, reversed_field = {"phi": phi}, {"phi": -phi}
    s_sparse = batch.smatrices(fsys, energies, params=field, solver="sparse")
    s_back = batch.smatrices(fsys, energies, params=reversed_field, solver="sparse")
    stats: dict = {}
    s_rgf = batch.smatrices(fsys, energies, params=field, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 0
    t_rgf = batch.transmission(fsys, energies, params=field, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 0

    assert np.all(s_sparse.check_unitarity() < TOLERANCE)
    assert np.all(s_rgf.check_unitarity() < TOLERANCE)
    t_sparse = s_sparse.transmission_matrix()
    reciprocity = np.abs(t_sparse - np.swapaxes(s_back.transmission_matrix(), 1, 2))
    assert np.all(np.max(reciprocity, axis=(1, 2)) < TOLERANCE)
    assert np.all(np.max(np.abs(t_rgf - t_sparse), axis=(1, 2)) < TOLERANCE)
    for a, b in zip(s_rgf, s_sparse, strict=True):
        # The same lead modes: the two solvers agree to 1e-10 even at the edges.
        assert a.data.shape == b.data.shape
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=TOLERANCE)

    # Threshold convention: a channel of lead 0 opens only strictly inside its band (checked
    # at edges that no other band edge of the lead shares to 1e-6).
    counts = np.array([s.lead_info[0].num_modes for s in s_sparse]).reshape(-1, len(OFFSETS))
    for (energy, curvature), count in zip(edges, counts, strict=True):
        if np.sum(np.abs(np.array([e for e, _ in all_edges]) - energy) < 1e-6) > 1:
            continue
        at, above, below = count[0], count[1], count[2]
        inside, outside = (above, below) if curvature > 0 else (below, above)
        assert at == outside
        assert inside == at + 1


# Systems drawn by random_system (its draws in order: kind, norbs, width, length, seed,
# disorder), the field phi, and a band edge of lead 0 (energy, curvature sign) where the
# S-matrix 1e-12 inside the band was off by 2e-10 in unitarity and 4e-10 in reciprocity.
SLOW_CHANNEL_CASES = [
    (("honeycomb", 2, 3, 3, 215, 0.8318945992364628), 0.2641003260919528, 0.9489645135175617),
    (("honeycomb", 2, 3, 2, 2, 0.3608390838699963), 0.3608390838699963, -3.943641519743985),
    (("triangular", 2, 1, 3, 1, 1.4694716454359191), -0.4526489509701176, -5.729647386113394),
]


@pytest.mark.parametrize(("drawn", "phi", "edge_near"), SLOW_CHANNEL_CASES)
def test_unitary_and_reciprocal_with_a_channel_a_hair_inside_its_band(drawn, phi, edge_near):
    """A channel 1e-12 inside its band (velocity ~1e-6 of the hopping) in leads of several
    orbitals: S unitary and reciprocal to rounding, the same from both solvers."""
    values = iter(drawn)
    fsys, _ = random_system(lambda strategy: next(values))
    lead = lead_data(fsys, params={"phi": phi})[0]
    edge, curvature = min(band_edges(lead.h_cell, lead.hop), key=lambda e: abs(e[0] - edge_near))
    assert abs(edge - edge_near) < 1e-9
    energies = [edge + 1e-12 * curvature]
    s = batch.smatrices(fsys, energies, params={"phi": phi}, solver="sparse")
    s_back = batch.smatrices(fsys, energies, params={"phi": -phi}, solver="sparse")
    stats: dict = {}
    s_rgf = batch.smatrices(fsys, energies, params={"phi": phi}, solver="rgf", stats=stats)
    assert stats["sparse_fallback_energies"] == 0
    assert s[0].lead_info[0].num_modes >= 1
    assert s.check_unitarity()[0] < 1e-13 and s_rgf.check_unitarity()[0] < 1e-13
    reciprocity = s.transmission_matrix() - np.swapaxes(s_back.transmission_matrix(), 1, 2)
    assert np.max(np.abs(reciprocity)) < 1e-13
    np.testing.assert_allclose(s_rgf[0].data, s[0].data, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# A hair outside a band: the evanescent solutions against the closed form of a clean wire
# --------------------------------------------------------------------------------------------

WIRE_WIDTH = 5


def _chain_selfenergy(x: float) -> complex:
    """Retarded self-energy of a semi-infinite chain with hopping -1 at ``E - onsite = x``."""
    if abs(x) < 2:
        return complex(x, -math.sqrt(4 - x * x)) / 2
    # Outside the band: the decaying root, |Sigma| < 1. (x^2 - 4) as a product keeps the
    # relative accuracy of the small factor a hair from the edge.
    return (x - math.copysign(math.sqrt((abs(x) - 2) * (abs(x) + 2)), x)) / 2


def _wire_leads(fsys: Any) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Leads of a square wire (onsite 4, hopping -1) and their exact transverse modes."""
    leads = lead_data(fsys)
    h_cell = np.asarray(leads[0].h_cell)
    _, vectors = np.linalg.eigh(h_cell)
    # The transverse energies of a hard-wall chain of W sites, exact to the last bit.
    subbands = 4 - 2 * np.cos(np.arange(1, WIRE_WIDTH + 1) * np.pi / (WIRE_WIDTH + 1))
    return leads, subbands, vectors


def _closed_form_selfenergy(lead: Any, subbands: np.ndarray, vectors: np.ndarray, energy):
    """``hop g_0 hop^dagger`` of the clean wire: one independent chain per transverse mode."""
    sigma_modes = np.diag([_chain_selfenergy(energy - e) for e in subbands])
    hop = np.asarray(lead.hop)
    return hop @ vectors @ sigma_modes @ vectors.conj().T @ hop.conj().T


def _square_wire(disorder: float, seed: int) -> Any:
    lat = meso.lattice.square(1.0, norbs=1)
    rng = np.random.default_rng(seed)
    syst = meso.Builder()
    for x in range(3):
        for y in range(WIRE_WIDTH):
            syst[lat(x, y)] = 4.0 + disorder * rng.uniform(-0.5, 0.5)
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(WIRE_WIDTH))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def _fisher_lee_transmission(fsys: Any, energy: float, sigmas: list[np.ndarray]) -> float:
    """``Tr(Gamma_1 G Gamma_0 G^dagger)`` with the given lead self-energies (dense)."""
    ham = fsys.hamiltonian_submatrix(sparse=False)
    full = []
    for lead, sigma in zip(lead_data(fsys), sigmas, strict=True):
        block = np.zeros_like(ham, dtype=complex)
        rows, cells = np.asarray(lead.interface_sys), np.asarray(lead.interface_cell)
        block[np.ix_(rows, rows)] = sigma[np.ix_(cells, cells)]
        full.append(block)
    green = np.linalg.inv(energy * np.eye(ham.shape[0]) - ham - full[0] - full[1])
    gammas = [1j * (s - s.conj().T) for s in full]
    return float(np.real(np.trace(gammas[1] @ green @ gammas[0] @ green.conj().T)))


@pytest.mark.parametrize("offset", [-1e-12, -1e-9])
def test_selfenergy_and_transmission_a_hair_outside_each_subband(offset):
    """Below every subband bottom and above every subband top of a square wire, the lead
    self-energy is the closed form of its independent transverse chains, and T of a
    disordered wire is the Fisher-Lee T with those closed-form self-energies.

    A hair outside a band the evanescent pair has ``|lambda| = exp(+-kappa)`` with
    ``kappa = sqrt(depth)`` (1e-6 here): taking the band-edge eigenvector (``kappa = 0``)
    instead of the decaying solution is a self-energy error of order ``kappa``. What is
    left is inherent: the band energies round to ~1e-15, which moves ``kappa`` by
    ``kappa * 1e-15 / (2 depth)`` (5e-10 of the self-energy at 1e-12 from the edge).
    """
    fsys = _square_wire(disorder=1.5, seed=3)
    leads, subbands, vectors = _wire_leads(fsys)
    bottoms = [(e - 2, offset) for e in subbands]
    tops = [(e + 2, -offset) for e in subbands]
    bound = 3e-9 if abs(offset) < 1e-10 else 1e-10
    for edge, shift in bottoms + tops:
        energy = edge + shift
        sigmas = [_closed_form_selfenergy(lead, subbands, vectors, energy) for lead in leads]
        for lead, exact in zip(leads, sigmas, strict=True):
            stabilized = lead.modes(energy)[1]
            sigma, sources = np.asarray(stabilized.selfenergy), np.asarray(stabilized.sources)
            assert np.max(np.abs(sigma - exact)) < bound, (edge, shift)
            # The identity behind unitarity holds to rounding: the evanescent pair carries
            # no current (its eigenvectors alone leave 1e-12..1e-10 here).
            gamma = 1j * (sigma - sigma.conj().T)
            assert np.max(np.abs(gamma - sources @ sources.conj().T)) < 1e-14
        transmission = meso.smatrix(fsys, energy).transmission(1, 0)
        assert abs(transmission - _fisher_lee_transmission(fsys, energy, sigmas)) < bound


def test_modes_next_to_a_crossing_of_degenerate_bands_are_smooth_in_the_energy():
    # A chain of two-orbital sites with a two-site lead cell: its bands fold onto each other
    # and cross linearly at k = pi, E = 0, each twice (the orbitals). Next to the crossing
    # the four solutions lie within ~E of each other, and their own eigenvectors are only
    # accurate to eps / E along each other: taken one by one they put errors of 1e-7 into
    # T at E = 1e-9. The transmission must be a smooth function of the energy there.
    lat = meso.lattice.chain(norbs=2)
    syst = meso.Builder()
    rng = np.random.default_rng(4)
    for i in range(6):
        a = rng.uniform(-0.5, 0.5, (2, 2))
        syst[lat(i)] = (a + a.T) / 2
    syst[lat.neighbors()] = -np.eye(2)
    lead = meso.Builder(meso.TranslationalSymmetry((-2,)))
    lead[lat(0)] = np.zeros((2, 2))
    lead[lat(1)] = np.zeros((2, 2))
    lead[lat.neighbors()] = -np.eye(2)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    energies = np.array([-1e-9, -1e-12, 1e-14, 1e-12, 1e-9])
    values = []
    for energy in energies:
        s = meso.smatrix(fsys, energy)
        assert [s.num_propagating(k) for k in range(2)] == [2, 2]
        assert np.max(np.abs(s.data.conj().T @ s.data - np.eye(4))) < 1e-12
        values.append(s.transmission(1, 0))
    values = np.array(values)
    # The line through the values at +-1e-12 (slope ~0.3), checked 1e-9 away.
    slope = (values[3] - values[1]) / (energies[3] - energies[1])
    line = values[2] + slope * (energies - energies[2])
    np.testing.assert_allclose(values, line, rtol=0, atol=1e-11)
    batched = meso.transmission(fsys, energies, 1, 0)
    np.testing.assert_allclose(batched, values, rtol=0, atol=1e-12)
