"""Quantum spin Hall edge conductance: 2e^2/h in the gap, robust to disorder.

The BHZ model (``mesoscopic.models.bhz_ribbon``) in its inverted regime has one
Kramers pair of helical edge states on each edge: inside the bulk gap T = 2
(G = 2e^2/h), unchanged by non-magnetic disorder that would localize ordinary
states. In the trivial regime the gap is empty (T = 0).
Usage: ``python examples/quantum_spin_hall.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def main(out_dir=None, *, num=30, seeds=(1, 2, 3)):
    fsys = meso.models.bhz_ribbon(24, 30)
    # An even count keeps E = 0 (the Dirac point of the edge states) off the grid.
    energies = np.linspace(-0.3, 0.3, 2 * (num // 2))

    def curve(mass, disorder, seed):
        # One batched call for all energies (RGF, vectorized), not one S-matrix per energy.
        params = {"mass": mass, "disorder": disorder, "seed": seed}
        return np.asarray(meso.transmission(fsys, energies, 1, 0, params=params))

    topological = curve(-0.5, 0.0, 0)
    trivial = curve(0.5, 0.0, 0)
    disordered = np.array([curve(-0.5, 1.5, seed) for seed in seeds])
    results = {
        "energies": energies,
        "topological": topological,
        "trivial": trivial,
        "disordered": disordered,
    }

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(energies, topological, label="inverted (M = -0.5), clean")
    ax.plot(
        energies,
        disordered.mean(axis=0),
        "o",
        ms=3,
        label=f"inverted, disorder 1.5, mean of {len(seeds)} seeds",
    )
    ax.plot(energies, trivial, label="trivial (M = +0.5), clean")
    ax.axhline(2, color="0.7", ls="--", lw=0.8)
    ax.set_xlabel("energy")
    ax.set_ylabel("T (G in $e^2/h$)")
    ax.set_title("quantum spin Hall edge channels")
    ax.legend()
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "quantum_spin_hall.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
