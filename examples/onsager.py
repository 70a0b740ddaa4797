"""Onsager-Casimir symmetry: G(B) = G(-B) in two terminals, G_ij(B) = G_ji(-B) in four.

A disordered two-terminal wire in a perpendicular field has a conductance that is
an even function of B (magnetofingerprint symmetric about B = 0), although the
device itself has no symmetry. In a four-terminal cross, the individual G_ij(B)
are not even in B; reciprocity only relates G_ij(B) to G_ji(-B).
Usage: ``python examples/onsager.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso
from mesoscopic import network

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def disordered_cross(arm=6, size=14, seed=4):
    """Four-terminal cross: leads 0 left, 1 right, 2 top, 3 bottom; disordered centre."""
    lat = meso.lattice.square(norbs=1)
    rng = np.random.default_rng(seed)
    lo = (size - arm) // 2
    sites = [
        lat(x, y)
        for x in range(size)
        for y in range(size)
        if lo <= x < lo + arm or lo <= y < lo + arm
    ]
    disorder = {s: rng.uniform(-1.2, 1.2) for s in sites}
    syst = meso.Builder()
    for s in sites:
        syst[s] = 4.0 + disorder[s]
    syst[lat.neighbors()] = -1.0
    for period, cell in [
        ((-1, 0), [lat(0, y) for y in range(lo, lo + arm)]),
        ((1, 0), [lat(0, y) for y in range(lo, lo + arm)]),
        ((0, 1), [lat(x, 0) for x in range(lo, lo + arm)]),
        ((0, -1), [lat(x, 0) for x in range(lo, lo + arm)]),
    ]:
        lead = meso.Builder(meso.TranslationalSymmetry(period))
        lead[cell] = 4.0
        lead[lat.neighbors()] = -1.0
        syst.attach_lead(lead)
    return syst.finalized(magnetic_flux="phi")


def main(out_dir=None, *, num=31):
    cross = disordered_cross()
    fluxes = np.linspace(-0.03, 0.03, num)
    energy = 1.0
    g_wire, g_cross = [], []
    fwire = _wire_in_field()
    for phi in fluxes:
        g_wire.append(meso.smatrix(fwire, energy, params={"phi": phi}).transmission(1, 0))
        g_cross.append(meso.smatrix(cross, energy, params={"phi": phi}).conductance_matrix())
    g_wire = np.array(g_wire)
    g_cross = np.array(g_cross)
    reversed_index = np.arange(num)[::-1]
    onsager = max(
        network.check_onsager(g_cross[k], g_cross[reversed_index[k]]).max_deviation
        for k in range(num)
    )
    results = {
        "flux": fluxes,
        "two_terminal": g_wire,
        "G_cross": g_cross,
        "two_terminal_asymmetry": float(np.max(np.abs(g_wire - g_wire[::-1]))),
        "four_terminal_asymmetry": float(np.max(np.abs(g_cross[:, 0, 2] - g_cross[::-1, 0, 2]))),
        "onsager_deviation": float(onsager),
    }

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(fluxes, g_wire, "o-", ms=3, label="$G(B)$")
    a.plot(-fluxes, g_wire, "--", label="$G(-B)$")
    a.set_xlabel("flux per plaquette ($h/e$)")
    a.set_ylabel("$G$ ($e^2/h$)")
    a.set_title("two terminals: $G(B) = G(-B)$")
    a.legend()
    b.plot(fluxes, -g_cross[:, 0, 2], label="$-G_{02}(B)$")
    b.plot(fluxes, -g_cross[:, 2, 0], label="$-G_{20}(B)$")
    b.plot(fluxes, -g_cross[::-1, 2, 0], "k--", lw=1, label="$-G_{20}(-B)$")
    b.set_xlabel("flux per plaquette ($h/e$)")
    b.set_title("four terminals: $G_{ij}(B) = G_{ji}(-B)$ only")
    b.legend()
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "onsager.png", dpi=120)
    plt.close(fig)
    return results


def _wire_in_field(width=8, length=30, seed=2):
    lat = meso.lattice.square(norbs=1)
    rng = np.random.default_rng(seed)
    disorder = rng.uniform(-0.75, 0.75, size=(length, width))
    syst = meso.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = 4.0 + disorder[x, y]
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(magnetic_flux="phi")


if __name__ == "__main__":
    main(output_dir())
