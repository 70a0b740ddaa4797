"""Phase breaking with Büttiker probes: from ballistic to ohmic, and Fabry-Pérot washed out.

A chain (hopping t = 1, lattice constant 1) carries one channel. A wide-band Büttiker probe on
a site (self-energy -i eta/2, eta = hbar / tau_phi) takes electrons out and re-injects them
with a random phase; at E = 0 the dephasing length is l_phi = v / eta = 2 / eta sites.

(a) Resistance of a chain with a probe on every site versus its length: the contact
    resistance h/e^2 when L << l_phi, then Ohm's law, R = (h/e^2)(1 + L / (2 l_phi)) (an
    electron that escapes is re-emitted backwards half of the time).
(b) A double barrier (two sites at 3t on each side of a 60-site well) with probes in the
    well: the coherent Fabry-Pérot resonances shrink as eta grows and settle on the classical
    series of the two barriers, T1 T2 / (T1 + T2 - T1 T2), the phase-averaged Fabry-Pérot
    value; what is left at strong dephasing is the well's own ohmic resistance (dotted: the
    series of three incoherent scatterers, barrier + dephased well + barrier).

Writes ``dephasing.png`` into the folder given as the first argument (default ``out/``).
Run: ``python examples/dephasing.py [output_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

import mesoscopic as meso
from mesoscopic import analytic, dephasing


def chain(length: int, onsite=0.0) -> meso.System:
    """A chain of `length` sites between two semi-infinite clean chains."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(length))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def double_barrier(well: int, height: float, barrier: int) -> tuple[meso.System, list[int]]:
    """Two barriers of `barrier` sites at `height` around a `well`-site clean well."""

    def onsite(site):
        x = site.tag[0]
        return height if x < barrier or x >= barrier + well else 0.0

    return chain(well + 2 * barrier, onsite), list(range(barrier, barrier + well))


def main(out_dir: str = "out") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax_ohm, ax_fp) = plt.subplots(1, 2, figsize=(11, 4.3))

    # (a) Ballistic to ohmic.
    lengths = np.unique(np.round(np.geomspace(2, 300, 12)).astype(int))
    for eta in (0.005, 0.02, 0.08, 0.3):
        resistance = [
            1 / dephasing.dephased_transmission(chain(n), 0.0, range(n), eta=eta)[1, 0]
            for n in lengths
        ]
        line = ax_ohm.plot(lengths, resistance, "o", ms=4, label=f"η = {eta:g} t")[0]
        dephasing_length = 2.0 / eta
        fine = np.geomspace(lengths[0], lengths[-1], 200)
        ax_ohm.plot(fine, 1 + fine / (2 * dephasing_length), "-", color=line.get_color(), lw=1)
    ax_ohm.axhline(1.0, color="k", lw=0.8, ls=":")
    ax_ohm.set(
        xscale="log",
        yscale="log",
        xlabel="length L (sites)",
        ylabel="two-terminal resistance (h/e²)",
        title="(a) ballistic → ohmic: R = 1 + L/(2 l_φ), l_φ = v/η",
    )
    ax_ohm.legend(fontsize=8, title="probe on every site", title_fontsize=8)

    # (b) Fabry-Pérot resonances dephased.
    height, barrier, well = 3.0, 2, 60
    fsys, well_sites = double_barrier(well, height, barrier)
    # Sharp coherent peaks need a fine grid; dephased curves are smooth.
    fine, coarse = np.linspace(-0.13, 0.13, 401), np.linspace(-0.13, 0.13, 105)
    colors = plt.cm.viridis(np.linspace(0, 0.9, 5))
    for eta, color in zip((0.0, 0.003, 0.01, 0.03, 0.2), colors):
        energies = fine if eta < 0.01 else coarse
        transmission = dephasing.dephased_transmission(fsys, energies, well_sites, eta=eta)
        ax_fp.plot(energies, transmission[:, 1, 0], color=color, lw=1, label=f"η = {eta:g} t")
    strong = 0.2
    t_barrier = analytic.chain_barrier_transmission(coarse, height, barrier)
    series = analytic.fabry_perot_average_transmission(t_barrier, t_barrier)
    t_well = dephasing.dephased_transmission(chain(well), coarse, range(well), eta=strong)
    three = 1 / (1 + 2 * (1 / t_barrier - 1) + (1 / t_well[:, 1, 0] - 1))
    ax_fp.plot(coarse, series, "k--", lw=1.5, label="T1 T2 / (T1 + T2 − T1 T2)")
    ax_fp.plot(coarse, three, "k:", lw=1.5, label=f"+ dephased well (η = {strong:g} t)")
    ax_fp.set(
        yscale="log",
        ylim=(3e-3, 20),
        xlabel="energy E (t)",
        ylabel="effective transmission",
        title="(b) double barrier: resonances → series resistors",
    )
    ax_fp.legend(fontsize=7, loc="upper center", ncol=3)
    fig.tight_layout()
    path = out / "dephasing.png"
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(*sys.argv[1:2])
