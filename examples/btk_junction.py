"""Andreev reflection at a normal-metal / superconductor junction (BTK).

The tight-binding BTK chain (:func:`mesoscopic.models.btk_junction`: normal lead with an
electron-hole conservation law, one barrier site, s-wave superconducting lead, gap
Delta = 0.01 t) computed with the scattering solver, against the textbook BTK formulas
(lines): the conductance G = 1 - R_ee + R_he per channel, in units of e^2/h, for barrier
strengths Z = 0, 0.5, 1, 1.5. At Z = 0 every electron inside the gap is Andreev reflected as
a hole (G = 2); a strong barrier turns the curve into the tunnelling density of states of
the superconductor. Right panel: G / G_N, with G_N = 1 / (1 + Z^2) the normal-state value.

Writes ``<out>/btk_junction.png``. Usage: ``python examples/btk_junction.py [out_dir]``.
"""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mesoscopic as meso
from mesoscopic import analytic

BARRIERS = (0.0, 0.5, 1.0, 1.5)
FERMI_ENERGY = 1.0  # from the band bottom, units of t
DELTA = 1e-2  # units of t


def conductance_curves(energies_over_gap, *, delta=DELTA, barriers=BARRIERS):
    """Lattice conductance G(E) (e^2/h per channel) for each Z, shape (len(Z), len(E))."""
    fsys = meso.models.btk_junction()
    curves = np.empty((len(barriers), len(energies_over_gap)))
    for i, z in enumerate(barriers):
        params = {
            "fermi_energy": FERMI_ENERGY,
            "delta": delta,
            "barrier": analytic.btk_barrier_height(z, FERMI_ENERGY),
        }
        for j, x in enumerate(energies_over_gap):
            s = meso.smatrix(fsys, x * delta, params=params)
            curves[i, j] = 1 - s.transmission((0, 0), (0, 0)) + s.transmission((0, 1), (0, 0))
    return curves


def main(out_dir: str = "out", *, num_energies: int = 121) -> dict:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # An even count keeps E = Delta (where the two quasiparticle branches merge) off the grid.
    x = np.linspace(0.0, 3.0, num_energies + (num_energies % 2 == 1))
    lattice = conductance_curves(x)
    textbook = np.array([analytic.btk_conductance(x, 1.0, z) for z in BARRIERS])
    normal = 1 / (1 + np.array(BARRIERS) ** 2)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, z in enumerate(BARRIERS):
        (line,) = axes[0].plot(x, textbook[i], label=f"Z = {z:g}")
        axes[0].plot(x[::4], lattice[i, ::4], "o", ms=3.5, color=line.get_color())
        axes[1].plot(x, lattice[i] / normal[i], color=line.get_color(), label=f"Z = {z:g}")
    axes[0].set_xlabel(r"$E / \Delta$")
    axes[0].set_ylabel(r"$G$ ($e^2/h$ per channel)")
    axes[0].set_title(r"BTK: lattice ($\Delta = 0.01\,t$, dots) vs textbook (lines)")
    axes[0].legend()
    axes[1].set_xlabel(r"$E / \Delta$")
    axes[1].set_ylabel(r"$G / G_N$")
    axes[1].set_title("normalized to the normal state")
    fig.tight_layout()
    fig.savefig(out / "btk_junction.png", dpi=120)
    plt.close(fig)
    return {
        "energy_over_gap": x,
        "barriers": np.array(BARRIERS),
        "conductance": lattice,
        "textbook": textbook,
    }


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
