"""Geometry and low-energy physics of the graphene ribbon models.

The edge of a ribbon decides its physics near the Dirac point (nearest-neighbour
tight binding, t = 1):

- zigzag (N chains, 2N atoms per cell, every edge atom bonded twice): gapless for
  every N, with a flat edge band at E = 0 for 2pi/3 <= |k| <= pi; at k = pi the two
  edge atoms decouple (E = 0 twice) and the rest pair into N - 1 vertical dimers
  (E = +-1). Exactly one channel is open at any small E != 0.
- armchair (N dimer lines): at k = 0 the bands are +-|1 + 2 cos(p pi / (N + 1))|,
  p = 1..N, so the ribbon is metallic iff N = 3m + 2.
- bearded (2N atoms per cell: N - 1 chains plus one dangling atom per cell on each
  edge): at k = pi all atoms pair into N vertical dimers (E = +-1).
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import models

ZIGZAG_WIDTHS = range(2, 9)
ARMCHAIR_WIDTHS = range(2, 13)


def lead_cell(fsys):
    """Positions (n, 2) and in-ribbon neighbour counts (n,) of the sites of lead 0's cell."""
    lead = fsys.leads[0]
    h_cell = lead.cell_hamiltonian(params={})
    hop = lead.hopping_away({})
    bonds = (np.abs(h_cell - np.diag(np.diag(h_cell))) > 0).astype(int)
    # A site bonds to the cells on both sides: rows of hop (to m+1) and of hop^T (to m-1).
    bonds += (np.abs(hop) > 0).astype(int) + (np.abs(hop.T) > 0).astype(int)
    positions = np.array([site.pos for site in lead.sites[: lead.cell_size]])
    return positions, bonds.sum(axis=1)


def bloch_energies(fsys, k):
    lead = fsys.leads[0]
    h_cell = lead.cell_hamiltonian(params={})
    hop = lead.hopping_away({})
    h_k = h_cell + hop * np.exp(1j * k) + hop.conj().T * np.exp(-1j * k)
    return np.linalg.eigvalsh(h_k)


@pytest.mark.parametrize("width", ZIGZAG_WIDTHS)
def test_zigzag_edge_atoms_have_two_bonds_and_the_width_counts_chains(width):
    fsys = models.graphene_ribbon(width, 4.0, edge="zigzag")
    positions, neighbours = lead_cell(fsys)
    assert len(positions) == 2 * width  # two atoms per zigzag chain
    y = positions[:, 1]
    edge = np.isclose(y, y.min()) | np.isclose(y, y.max())
    assert edge.sum() == 2
    np.testing.assert_array_equal(neighbours[edge], 2)
    np.testing.assert_array_equal(neighbours[~edge], 3)
    # N-ZGNR: the outermost atoms are (3N - 2) / 2 carbon-carbon distances apart.
    assert np.ptp(y) == pytest.approx((3 * width - 2) / 2 / np.sqrt(3))


@pytest.mark.parametrize("width", ZIGZAG_WIDTHS)
def test_zigzag_bands_touch_zero_at_the_zone_boundary(width):
    fsys = models.graphene_ribbon(width, 4.0, edge="zigzag")
    expected = np.sort(np.r_[0.0, 0.0, np.ones(width - 1), -np.ones(width - 1)])
    np.testing.assert_allclose(bloch_energies(fsys, np.pi), expected, atol=1e-12)
    assert meso.physics.Bands(fsys.leads[0])(np.pi)[width - 1 : width + 1] == pytest.approx(
        [0.0, 0.0], abs=1e-12
    )


@pytest.mark.parametrize("width", ZIGZAG_WIDTHS)
@pytest.mark.parametrize("energy", [1e-3, 1e-2, -1e-2])
def test_clean_zigzag_ribbon_has_one_open_channel_down_to_zero_energy(width, energy):
    fsys = models.graphene_ribbon(width, 4.0, edge="zigzag")
    s = meso.smatrix(fsys, energy, params={"potential": 0.0})
    assert s.num_propagating(0) == 1
    assert s.num_propagating(1) == 1
    assert s.transmission(1, 0) == pytest.approx(1.0, abs=1e-8)
    assert s.check_unitarity() < 1e-8


@pytest.mark.parametrize("width", ARMCHAIR_WIDTHS)
def test_armchair_edges_and_bands_at_k0_are_exact(width):
    fsys = models.graphene_ribbon(width, 4.0, edge="armchair")
    positions, neighbours = lead_cell(fsys)
    x = positions[:, 0]
    assert len(np.unique(np.round(x, 6))) == width  # one dimer line per column
    assert len(positions) == 2 * width
    edge = np.isclose(x, x.min()) | np.isclose(x, x.max())
    np.testing.assert_array_equal(neighbours[edge], 2)
    np.testing.assert_array_equal(neighbours[~edge], 3)
    p = np.arange(1, width + 1)
    levels = np.abs(1 + 2 * np.cos(p * np.pi / (width + 1)))
    np.testing.assert_allclose(
        bloch_energies(fsys, 0.0), np.sort(np.r_[levels, -levels]), atol=1e-12
    )


@pytest.mark.parametrize("width", ARMCHAIR_WIDTHS)
def test_armchair_ribbon_is_metallic_iff_width_is_3m_plus_2(width):
    fsys = models.graphene_ribbon(width, 4.0, edge="armchair")
    metallic = width % 3 == 2
    for energy in (1e-3, 1e-2):
        s = meso.smatrix(fsys, energy, params={"potential": 0.0})
        assert s.num_propagating(0) == int(metallic)
        assert s.transmission(1, 0) == pytest.approx(int(metallic), abs=1e-8)


@pytest.mark.parametrize("width", [2, 3, 5])
def test_bearded_edges_are_a_separate_option(width):
    fsys = models.graphene_ribbon(width, 4.0, edge="bearded")
    positions, neighbours = lead_cell(fsys)
    assert len(positions) == 2 * width
    y = positions[:, 1]
    edge = np.isclose(y, y.min()) | np.isclose(y, y.max())
    np.testing.assert_array_equal(neighbours[edge], 1)
    np.testing.assert_array_equal(neighbours[~edge], 3)
    expected = np.sort(np.r_[np.ones(width), -np.ones(width)])
    np.testing.assert_allclose(bloch_energies(fsys, np.pi), expected, atol=1e-12)
    # Unlike the zigzag ribbon, a bearded one is gapped at E = 0: no channel at E -> 0+.
    s = meso.smatrix(fsys, 1e-3, params={"potential": 0.0})
    assert s.num_propagating(0) == 0
    assert s.transmission(1, 0) == pytest.approx(0.0, abs=1e-8)


def test_pn_junction_uses_the_zigzag_cut():
    width = 5
    pn = models.graphene_pn_junction(width, 8.0)
    ribbon = models.graphene_ribbon(width, 8.0, edge="zigzag")
    rows = {round(float(site.pos[1]), 6) for site in ribbon.leads[0].sites}
    for fsys in (pn, pn.leads[0], pn.leads[1]):
        assert {round(float(site.pos[1]), 6) for site in fsys.sites} == rows
    # Without a step the junction is a clean zigzag ribbon: one channel at E -> 0.
    for energy in (1e-3, 1e-2):
        s = meso.smatrix(pn, energy, params={"v_left": 0.0, "v_right": 0.0})
        assert s.num_propagating(0) == s.num_propagating(1) == 1
        assert s.transmission(1, 0) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("width", [4, 5, 6, 7])
def test_pn_junction_valley_valve(width):
    # Single-channel zigzag p-n junction (Akhmerov et al., PRB 77, 205416 (2008)): for even
    # N the n and p modes have opposite parity under the mirror across the ribbon, so a
    # y-independent potential cannot couple them and T = 0 exactly; for odd N a smooth step
    # transmits the edge channel almost perfectly.
    fsys = models.graphene_pn_junction(width, 20.0, smoothness=2.0)
    s = meso.smatrix(fsys, 1e-3, params={"v_left": -0.1, "v_right": 0.1})
    assert s.num_propagating(0) == s.num_propagating(1) == 1
    if width % 2 == 0:
        assert s.transmission(1, 0) < 1e-20
    else:
        assert s.transmission(1, 0) > 0.99


def test_graphene_geometry_errors():
    with pytest.raises(ValueError, match=r"edge must be one of .*'bearded'.*got 'chiral'"):
        models.graphene_ribbon(edge="chiral")
    with pytest.raises(ValueError, match="width must be an integer >= 2, got 1"):
        models.graphene_ribbon(1)
    with pytest.raises(ValueError, match="length must be a positive number"):
        models.graphene_ribbon(4, 0.0)
    with pytest.raises(ValueError, match="length must be a positive number"):
        models.graphene_pn_junction(4, float("nan"))
    with pytest.raises(ValueError, match="smoothness must be a positive number"):
        models.graphene_pn_junction(4, 10.0, smoothness=0.0)
