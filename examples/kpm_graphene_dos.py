"""Density of states of a million-orbital graphene sheet by the kernel polynomial method.

A honeycomb sheet of ``cells x cells`` unit cells (two carbon atoms each, nearest-neighbour
hopping ``-t``, periodic in both directions so there are no edges and no edge states),
clean and with Anderson disorder (onsite energies uniform in ``[-W/2, W/2]``). The density of
states comes from :class:`mesoscopic.kpm.SpectralDensity`: Chebyshev moments of the
Hamiltonian estimated with a few random phase vectors, smoothed by the Jackson kernel; no
diagonalization, so the default sheet of about 10^6 orbitals takes seconds.

The clean sheet is compared with what graphene's band structure predicts:

- Near the Dirac point the density of states is linear. Per unit cell (area
  ``A_c = 3 sqrt(3) a^2 / 2``, ``a`` the C-C distance, two atoms), per unit energy, without
  spin: ``rho(E) = 2 |E| / (sqrt(3) pi t^2)``, from two valleys of Dirac cones with
  ``hbar v_F = 3 t a / 2``: ``rho = 2 |E| A_c / (2 pi (hbar v_F)^2)``.
- Van Hove singularities (logarithmic peaks, from the saddle points of the bands at the M
  points) at ``|E| = t``; the bands end at ``|E| = 3 t``.
- The sum rule: the density of states integrates to two states per unit cell.

Disorder smears the van Hove peaks and fills the dip at the Dirac point: the disordered
sheet has a finite density of states at ``E = 0``.

The spectral bounds are given (``3 t + W/2`` bounds the spectrum: Gershgorin), so no
Lanczos search is needed. Writes ``<out>/kpm_graphene_dos.png``. Usage:
``python examples/kpm_graphene_dos.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from _common import output_dir, pyplot

from mesoscopic import kpm


def graphene_torus(cells: int, hopping: float, disorder: float, seed: int) -> sp.csr_matrix:
    """Hamiltonian of a ``cells x cells`` honeycomb torus (sites 2 j and 2 j + 1 of cell j).

    Each A atom bonds to the B atom of its own cell and to those of the cells one period
    back along each primitive vector; onsite energies uniform in [-disorder/2, disorder/2].
    """
    i, j = np.divmod(np.arange(cells * cells), cells)
    site_a = 2 * (i * cells + j)
    rows, cols = [], []
    for di, dj in [(0, 0), (-1, 0), (0, -1)]:
        neighbour_b = 2 * (((i + di) % cells) * cells + (j + dj) % cells) + 1
        rows += [site_a, neighbour_b]
        cols += [neighbour_b, site_a]
    n = 2 * cells * cells
    onsite = disorder * (np.random.default_rng(seed).random(n) - 0.5)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values = np.concatenate([np.full(6 * cells * cells, -hopping), onsite])
    return sp.csr_matrix((values, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def dirac_density(energy, hopping: float = 1.0):
    """Clean graphene's density of states near E = 0, per unit cell: 2|E| / (sqrt(3) pi t^2)."""
    return 2 * np.abs(energy) / (np.sqrt(3) * np.pi * hopping**2)


def main(
    out_dir="out",
    *,
    cells: int = 700,
    num_moments: int = 800,
    num_vectors: int = 2,
    disorder: float = 2.0,
    seed: int = 1,
) -> dict:
    out = output_dir([str(out_dir)])
    t = 1.0
    energies = np.linspace(-3.2 * t, 3.2 * t, 1281)
    densities, integrals = {}, {}
    for label, strength in [("clean", 0.0), ("disordered", disorder)]:
        hamiltonian = graphene_torus(cells, t, strength, seed)
        bound = 3 * t + strength / 2
        rho = kpm.SpectralDensity(
            hamiltonian,
            num_moments=num_moments,
            num_vectors=num_vectors,
            bounds=(-bound, bound),
            rng=seed,
            accumulate_vectors=False,
        )
        # On one energy grid for both (their sampling energies differ with the bounds).
        densities[label] = rho(energies) / cells**2  # per unit cell, per unit energy
        integrals[label] = float(np.real(rho.integrate())) / cells**2

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(energies, densities["clean"], color="C0", lw=1.5, label="clean (KPM)")
    ax.plot(
        energies, densities["disordered"], color="C3", lw=1.5, label=f"disorder W = {disorder} t"
    )
    near = np.abs(energies) < 0.8 * t
    ax.plot(
        energies[near],
        dirac_density(energies[near], t),
        "k--",
        lw=1,
        label=r"$2|E|/(\sqrt{3}\pi t^2)$",
    )
    for edge in (-t, t):
        ax.axvline(edge, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("E / t")
    ax.set_ylabel("density of states (per unit cell, per t)")
    ax.set_title(f"graphene, {2 * cells**2:,} orbitals, {num_moments} moments")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "kpm_graphene_dos.png", dpi=120)
    plt.close(fig)
    return {
        "energies": energies,
        "clean": densities["clean"],
        "disordered": densities["disordered"],
        "dirac_density": dirac_density(energies, t),
        "integrals": integrals,
        "orbitals": 2 * cells**2,
    }


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
