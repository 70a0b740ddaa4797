"""Graphene's bulk bands from its unit cell, by wraparound.

The honeycomb lattice (nearest-neighbour hopping t = -1) with both lattice periods
wrapped (:func:`mesoscopic.wraparound.wraparound`): its two bands along the path
Gamma - K - M - Gamma of the Brillouin zone against the closed form
``E = +-|t| |1 + exp(i k.a1) + exp(i k.a2)|``, with the Dirac cone at K where the gap
closes. Right: the bands over the Brillouin zone
(:func:`mesoscopic.wraparound.plot_2d_bands`). Keeping one period instead (``keep=``)
gives a lead whose bands :class:`mesoscopic.physics.Bands` computes at fixed transverse
momentum.

Writes ``<out>/graphene_bulk_bands.png``. Usage:
``python examples/graphene_bulk_bands.py [out_dir]``.
"""

from __future__ import annotations

import itertools

import numpy as np
from _common import output_dir, pyplot

import mesoscopic as meso
from mesoscopic.wraparound import plot_2d_bands, wraparound


def unit_cell():
    """Graphene with both periods wrapped: H(k) with parameters k_x, k_y (phases per period)."""
    lat = meso.lattice.honeycomb(norbs=1)
    bulk = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    bulk[lat.shape(lambda pos: True, (0, 0))] = 0.0
    bulk[lat.neighbors()] = -1.0
    return wraparound(bulk).finalized(), np.array(lat.prim_vecs, dtype=float)


def high_symmetry_path(periods, points_per_segment):
    """Cartesian momenta along Gamma - K - M - Gamma, and the distance along the path."""
    reciprocal = 2 * np.pi * np.linalg.inv(periods).T
    gamma = np.zeros(2)
    k_point = (2 * reciprocal[0] + reciprocal[1]) / 3
    m_point = reciprocal[0] / 2
    corners = [gamma, k_point, m_point, gamma]
    path = [
        a + (b - a) * s
        for a, b in itertools.pairwise(corners)
        for s in np.linspace(0, 1, points_per_segment, endpoint=False)
    ]
    path.append(gamma)
    path = np.array(path)
    distance = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    return path, distance, k_point


def main(out_dir="out", *, points_per_segment: int = 60) -> dict:
    out = output_dir([str(out_dir)])
    fsys, periods = unit_cell()
    path, distance, k_point = high_symmetry_path(periods, points_per_segment)
    phases = path @ periods.T  # Bloch phase per period: k_i = K . a_i
    bands = np.array(
        [
            np.linalg.eigvalsh(fsys.hamiltonian_submatrix(params={"k_x": p[0], "k_y": p[1]}))
            for p in phases
        ]
    )
    modulus = np.abs(1 + np.exp(1j * phases[:, 0]) + np.exp(1j * phases[:, 1]))
    closed_form = np.stack([-modulus, modulus], axis=1)
    dirac = np.linalg.eigvalsh(
        fsys.hamiltonian_submatrix(params=dict(zip(("k_x", "k_y"), periods @ k_point)))
    )

    plt = pyplot()
    fig = plt.figure(figsize=(10, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(distance, bands, color="C0", lw=2, label=["wraparound", None])
    ax.plot(distance[::4], closed_form[::4], "k.", ms=3, label=["closed form", None])
    ticks = distance[::points_per_segment]
    ax.set_xticks(ticks, [r"$\Gamma$", "K", "M", r"$\Gamma$"])
    for tick in ticks:
        ax.axvline(tick, color="0.85", lw=0.8)
    ax.set_ylabel("E / |t|")
    ax.set_title("graphene bulk bands")
    ax.legend(loc="upper right", fontsize=8)
    ax3d = fig.add_subplot(1, 2, 2, projection="3d")
    plot_2d_bands(fsys, k_x=41, k_y=41, mask_brillouin_zone=True, ax=ax3d)
    ax3d.set_title("over the Brillouin zone")
    ax3d.set_xlabel(r"$k_x$ (1/a)")
    ax3d.set_ylabel(r"$k_y$ (1/a)")
    ax3d.set_zlabel("E / |t|")
    fig.tight_layout()
    fig.savefig(out / "graphene_bulk_bands.png", dpi=120)
    plt.close(fig)
    return {
        "distance": distance,
        "bands": bands,
        "closed_form": closed_form,
        "dirac_point_energies": dirac,
    }


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
