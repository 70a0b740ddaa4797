"""Graphene nanoribbons: the zigzag edge channel and the armchair width rule.

A zigzag ribbon of N chains (every edge atom bonded twice) is gapless for every N:
its edge states form a flat band at E = 0, and one channel stays open down to
E -> 0. Armchair ribbons are metallic only when the number of dimer lines N
satisfies N mod 3 == 2; otherwise a gap opens at E = 0. A bearded ribbon (a single
bond per edge atom) is gapped for comparison. Plotted: conductance of clean
ribbons versus energy from E = 0.001 t (e^2/h per spin) and the number of open
channels at E = 0.01 t against the width N = 4..15 for zigzag and armchair edges.
Usage: ``python examples/graphene.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot

CHANNEL_ENERGY = 0.01  # t; below every armchair half-gap for N <= 15 (0.11 t at N = 15)


def main(out_dir=None, *, num=120, widths=range(4, 16)):
    energies = np.linspace(0.001, 1.2, num)
    params = {"potential": 0.0}
    ribbons = {
        "zigzag": meso.models.graphene_ribbon(6, 6.0, edge="zigzag"),
        "armchair": meso.models.graphene_ribbon(9, 6.0, edge="armchair"),
        "bearded": meso.models.graphene_ribbon(6, 6.0, edge="bearded"),
    }
    conductance = {
        name: meso.batch.transmission(fsys, energies, 1, 0, params=params)
        for name, fsys in ribbons.items()
    }
    channels: dict[str, dict[int, int]] = {"zigzag": {}, "armchair": {}}
    for edge, counts in channels.items():
        for n in widths:
            fsys = meso.models.graphene_ribbon(n, 3.0, edge=edge)
            counts[n] = meso.smatrix(fsys, CHANNEL_ENERGY, params=params).num_propagating(0)
    results = {
        "energies": energies,
        **{name: np.asarray(g) for name, g in conductance.items()},
        "zigzag_channels": channels["zigzag"],
        "armchair_channels": channels["armchair"],
    }

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.step(energies, conductance["zigzag"], where="mid", label="zigzag, N = 6 chains")
    a.step(energies, conductance["armchair"], where="mid", label="armchair, N = 9 (gapped)")
    a.step(energies, conductance["bearded"], where="mid", ls=":", label="bearded, N = 6 (gapped)")
    a.set_xlim(0, energies[-1])
    a.set_xlabel("energy (t)")
    a.set_ylabel("G ($e^2/h$ per spin)")
    a.legend()
    a.set_title("clean graphene ribbons")
    ns = np.array(list(widths))
    b.bar(ns - 0.2, [channels["zigzag"][n] for n in ns], width=0.4, color="C0", label="zigzag")
    b.bar(ns + 0.2, [channels["armchair"][n] for n in ns], width=0.4, color="C1", label="armchair")
    b.set_yticks([0, 1])
    b.set_ylim(0, 1.35)
    b.set_xlabel("width N (zigzag chains / armchair dimer lines)")
    b.set_ylabel(f"open channels at E = {CHANNEL_ENERGY} t")
    b.set_title("zigzag: always 1; armchair: 1 when N mod 3 = 2")
    b.legend(ncol=2, loc="upper center")
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "graphene.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
