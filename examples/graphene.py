"""Graphene nanoribbons: the zigzag single channel and the armchair width rule.

Zigzag ribbons conduct through one channel around the Dirac point (edge states).
Armchair ribbons are metallic only when the number of dimer lines N satisfies
N mod 3 == 2; otherwise a gap opens at E = 0. Plotted: conductance of clean
ribbons versus energy (e^2/h per spin) and the number of open channels at
E = 0.02 t for armchair widths N = 4..15.
Usage: ``python examples/graphene.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def main(out_dir=None, *, num=60, widths=range(4, 16)):
    energies = np.linspace(0.01, 1.2, num)
    zigzag = meso.models.graphene_ribbon(6, 6.0, edge="zigzag")
    armchair = meso.models.graphene_ribbon(9, 6.0, edge="armchair")
    params = {"potential": 0.0}
    g_zz = [meso.smatrix(zigzag, e, params=params).transmission(1, 0) for e in energies]
    g_ac = [meso.smatrix(armchair, e, params=params).transmission(1, 0) for e in energies]
    channels = {}
    for n in widths:
        fsys = meso.models.graphene_ribbon(n, 3.0, edge="armchair")
        channels[n] = meso.smatrix(fsys, 0.02, params=params).num_propagating(0)
    results = {
        "energies": energies,
        "zigzag": np.array(g_zz),
        "armchair": np.array(g_ac),
        "armchair_channels": channels,
    }

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.step(energies, g_zz, where="mid", label="zigzag, 6 chains")
    a.step(energies, g_ac, where="mid", label="armchair, N = 9 (gapped)")
    a.set_xlabel("energy (t)")
    a.set_ylabel("G ($e^2/h$ per spin)")
    a.legend()
    a.set_title("clean graphene ribbons")
    ns = list(channels)
    b.bar(ns, [channels[n] for n in ns], color=["C2" if n % 3 == 2 else "C7" for n in ns])
    b.set_xlabel("armchair width N (dimer lines)")
    b.set_ylabel("open channels at E = 0.02 t")
    b.set_title("metallic when N mod 3 = 2")
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "graphene.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
