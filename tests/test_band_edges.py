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
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy import optimize

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.leads import Bands
from mesoscopic.transport import lead_data

OFFSETS = (0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6)
TOLERANCE = 1e-10
# Within 1e-9 of an edge the bound achieved is NOT the 1e-10 aimed at. Measured worst on
# random leads: unitarity 1e-9 at 1e-12 inside a band and 4.4e-9 at 1e-9 outside one (the
# two evanescent solutions about to merge are replaced by the band-edge eigenvector);
# reciprocity T_ij(phi) - T_ji(-phi) up to 5e-8 at 1e-12 inside a band (the two field
# directions round the slow mode's k differently, and T of a channel 1e-12 above its
# threshold moves by T / (2 depth) per unit of energy). Kwant 1.5 reaches 1e-7..1e-6 in
# unitarity at the same energies. Open work; see docs/conventions.md. The RGF and the
# sparse solver share the lead modes and agree to 1e-10 everywhere.
NEAR_EDGE_TOLERANCE = 1e-7


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

    near = np.abs(np.tile(OFFSETS, len(edges))) - 1e-9 < 1e-20
    bound = np.where(near, NEAR_EDGE_TOLERANCE, TOLERANCE)
    assert np.all(s_sparse.check_unitarity() < bound)
    assert np.all(s_rgf.check_unitarity() < bound)
    t_sparse = s_sparse.transmission_matrix()
    reciprocity = np.abs(t_sparse - np.swapaxes(s_back.transmission_matrix(), 1, 2))
    assert np.all(np.max(reciprocity, axis=(1, 2)) < bound)
    assert np.all(np.max(np.abs(t_rgf - t_sparse), axis=(1, 2)) < bound)
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
