"""Contact resistance, and two-probe versus four-probe measurement.

A Hall bar in the quantum Hall regime (one spin-resolved edge channel) has ideal
voltage probes: the edge channels carry the reservoirs' electrochemical
potentials. A gate barrier across the bar between two probes on the same edge
transmits a fraction T of the edge channel. Landauer-Büttiker predicts, in units
of h/e^2 (one spin-resolved channel):

* two-terminal resistance      R_2t = 1/T       (contacts included),
* four-terminal resistance     R_4t = 1/T - 1   (the barrier alone),
* contact resistance           R_2t - R_4t = 1  (h/e^2, even for a perfect conductor).

The script sweeps the barrier height, computes the six-terminal S-matrix on the
lattice, solves the Büttiker circuit, and compares with these formulas.
Usage: ``python examples/four_probe.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso
from mesoscopic import network

try:
    from _common import output_dir, pyplot
except ImportError:  # imported as examples.four_probe
    from examples._common import output_dir, pyplot


def gated_hall_bar(length=40, width=18, arm=10):
    """Six-terminal Hall bar with a gate barrier across the middle (x in [19, 21])."""
    lat = meso.lattice.square(norbs=1)
    starts = [length // 4 - arm // 2, 3 * length // 4 - arm // 2]

    def onsite(site, barrier):
        x = site.pos[0]
        return 4.0 + barrier * np.exp(-((x - length / 2) ** 2) / 2.0)

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    for x0 in starts:
        syst[(lat(x, y) for x in range(x0, x0 + arm) for y in (-2, -1, width, width + 1))] = 4.0
    syst[lat.neighbors()] = -1.0
    left = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    left[(lat(0, y) for y in range(width))] = 4.0
    leads = [left, left.reversed()]
    for direction in (1, -1):
        for x0 in starts:
            side = meso.Builder(meso.TranslationalSymmetry((0, direction)))
            side[(lat(x, 0) for x in range(x0, x0 + arm))] = 4.0
            leads.append(side)
    for lead in leads:
        lead[lat.neighbors()] = -1.0
        syst.attach_lead(lead)
    return syst.finalized(magnetic_flux="phi")


def main(out_dir=None, *, num=25):
    fsys = gated_hall_bar()
    energy, flux = 0.9, 0.08  # one Landau level below the Fermi energy
    barriers = np.concatenate([[0.0], np.linspace(0.6, 0.8, num - 1)])
    rows = []
    for barrier in barriers:
        s = meso.smatrix(fsys, energy, params={"phi": flux, "barrier": barrier})
        g = s.conductance_matrix()
        # Edge transmission through the barrier: between the two side probes of one edge
        # (the edge channel runs from one to the other in the field's chirality).
        t = max(s.transmission(3, 2), s.transmission(2, 3))
        r2 = network.two_terminal_resistance(g, 0, 1)
        r4 = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 3))
        rows.append((t, r2, abs(r4)))
    t, r2, r4 = np.array(rows).T
    results = {"transmission": t, "r_two_terminal": r2, "r_four_terminal": r4}

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    order = np.argsort(t)
    ax.plot(t[order], r2[order], "o", label="$R_{2t}$ (lattice)")
    ax.plot(t[order], r4[order], "s", label="$R_{4t}$ (lattice)")
    tt = np.linspace(max(t.min(), 0.05), 1, 200)
    ax.plot(tt, 1 / tt, "k-", lw=1, label="$1/T$")
    ax.plot(tt, 1 / tt - 1, "k--", lw=1, label="$1/T - 1$")
    ax.set_xlabel("edge-channel transmission T of the barrier")
    ax.set_ylabel("resistance ($h/e^2$)")
    ax.set_ylim(0, min(8, 1.2 / max(t.min(), 0.15)))
    ax.legend()
    ax.set_title("two- vs four-probe resistance: contact resistance $h/e^2$")
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "four_probe.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
