"""Quantum interference in benzene: para, meta and ortho contacts.

Hückel benzene (:func:`mesoscopic.models.huckel_ring`, alpha = 0, beta = -1) between two
wide-band electrodes (:func:`mesoscopic.models.molecular_junction`, broadening
Gamma = 0.5 |beta| on each contact atom). The transmission T(E) on a log scale across the
HOMO-LUMO gap (HOMO at E = -|beta|, LUMO at +|beta|): with meta contacts the two paths
around the ring interfere destructively at the Fermi level E = 0 and T vanishes (the meta
antiresonance, a dip without a floor); para and ortho contacts transmit
4x^2 / (1 + x^2)^2 there, x = Gamma / (4 |beta|). Ortho contacts have their own zeros
outside the gap, at E = +-sqrt(2) |beta|, where the bare G0_01 vanishes. The inset shows
the molecule and the contact atoms.

Writes ``<out>/molecular_junction.png``. Usage:
``python examples/molecular_junction.py [out_dir]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from _common import output_dir, pyplot

import mesoscopic as meso

GAMMA = 0.5  # broadening of each contact atom, units of |beta|
CONTACTS = {"para": (0, 3), "meta": (0, 2), "ortho": (0, 1)}


def transmissions(energies, *, gamma=GAMMA):
    """T(E) for each contact geometry: name -> array of the shape of `energies`."""
    hamiltonian, positions = meso.models.huckel_ring(6)
    out = {}
    for name, contacts in CONTACTS.items():
        fsys = meso.models.molecular_junction(hamiltonian, contacts, positions=positions)
        out[name] = meso.batch.transmission(fsys, energies, 1, 0, params={"gamma": gamma})
    return out


def main(out_dir="out", *, num_energies: int = 400) -> dict:
    out = output_dir([str(out_dir)])
    # An odd count puts E = 0 on the grid; an even one of the half-grid keeps the degenerate
    # levels E = +-1 (where para contacts leave a bound state in the continuum) off it.
    half = np.linspace(0.0, 1.6, num_energies // 2 + 1)[1:] - 0.8 / num_energies
    energies = np.concatenate([-half[::-1], [0.0], half])
    curves = transmissions(energies)
    x = GAMMA / 4
    para_at_zero = 4 * x**2 / (1 + x**2) ** 2

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {"para": "C0", "meta": "C3", "ortho": "C2"}
    for name, t in curves.items():
        ax.semilogy(energies, t, color=colors[name], label=f"{name} {CONTACTS[name]}")
    ax.axhline(para_at_zero, color="0.6", ls=":", lw=1)
    ax.annotate(
        r"$4x^2/(1+x^2)^2$, $x = \Gamma/4|\beta|$",
        (-0.6, para_at_zero),
        xytext=(0, -11),
        textcoords="offset points",
        fontsize=8,
        color="0.4",
    )
    ax.axvspan(-1.0, 1.0, color="0.93", zorder=0)
    ax.set_ylim(1e-6, 2.0)
    ax.set_xlim(energies[0], energies[-1])
    ax.set_xlabel(r"$E$ ($|\beta|$, from the Fermi level $\alpha = 0$)")
    ax.set_ylabel(r"transmission $T(E)$")
    ax.set_title(
        rf"Hückel benzene, wide-band electrodes ($\Gamma = {GAMMA:g}\,|\beta|$)"
        "\nmeta antiresonance at E = 0 inside the HOMO-LUMO gap (shaded)"
    )
    ax.legend(loc="lower left", fontsize=9)

    _, positions = meso.models.huckel_ring(6)
    inset = ax.inset_axes((0.72, 0.04, 0.26, 0.34))
    ring = np.vstack([positions, positions[:1]])
    inset.plot(ring[:, 0], ring[:, 1], "-", color="0.3", lw=1.5)
    inset.plot(positions[:, 0], positions[:, 1], "o", color="0.3", ms=6)
    for name, (_, right) in CONTACTS.items():
        inset.plot(*positions[right], "o", ms=9, mfc="none", mec=colors[name], mew=2)
    inset.plot(*positions[0], "s", ms=9, mfc="none", mec="k", mew=2)
    for i, (px, py) in enumerate(positions):
        inset.annotate(
            str(i), (px, py), xytext=(1.35 * px, 1.35 * py), fontsize=7, ha="center", va="center"
        )
    inset.set_xlim(-1.6, 1.6)
    inset.set_ylim(-1.6, 1.6)
    inset.set_aspect("equal")
    inset.axis("off")
    fig.tight_layout()
    fig.savefig(out / "molecular_junction.png", dpi=120)
    plt.close(fig)
    return {"energies": energies, "transmission": curves, "para_at_zero": para_at_zero}


if __name__ == "__main__":
    main(output_dir())
