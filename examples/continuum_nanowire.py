"""A Rashba-Zeeman nanowire written as a k.p Hamiltonian: the helical gap and its half plateau.

The wire is the continuum Hamiltonian

    H = (k_x^2 + k_y^2) sigma_0 + alpha (k_x sigma_y - k_y sigma_x) + B sigma_z

(units hbar^2 / 2m = 1), discretized on a square grid by
:func:`mesoscopic.continuum.discretize` and filled into a scattering region and its leads
with ``Builder.fill``, as a Kwant script would. Left: the bands of the lowest subband of the
lead at B = 0 (two Rashba-shifted parabolas crossing at k = 0) and at B > 0, where the Zeeman
term opens a gap of 2B at the crossing. Right: the conductance (spin resolved: e^2/h per
channel) against the Fermi energy: without field it rises in steps of 2; with the field, a
single channel (one spin-momentum-locked pair of states) is left inside the helical gap, a
plateau at 1 e^2/h, half of the spin-degenerate step, the signature sought in Majorana
nanowires.

Writes ``<out>/continuum_nanowire.png``. Usage:
``python examples/continuum_nanowire.py [out_dir]``. Needs SymPy
(``pip install "mesoscopic[continuum]"``).
"""

from __future__ import annotations

import numpy as np
from _common import output_dir, pyplot

import mesoscopic as meso
from mesoscopic import continuum

HAMILTONIAN = "(k_x**2 + k_y**2) * sigma_0 + alpha * (k_x * sigma_y - k_y * sigma_x) + B * sigma_z"
ALPHA = 0.3  # Rashba coupling
FIELD = 0.15  # Zeeman energy B
WIDTH, LENGTH = 4, 12  # grid points across and along the wire


def nanowire():
    """The finalized wire with two leads, and its lead (for the bands)."""
    template = continuum.discretize(HAMILTONIAN)
    lat = template.lattice
    syst = meso.Builder()
    syst.fill(template, lambda s: 0 <= s.tag[0] < LENGTH and 0 <= s.tag[1] < WIDTH, lat(0, 0))
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead.fill(template, lambda s: 0 <= s.tag[1] < WIDTH, lat(0, 0))
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), lead.finalized()


def main(out_dir="out", *, num_energies: int = 200) -> dict:
    out = output_dir([str(out_dir)])
    fsys, lead = nanowire()
    momenta = np.linspace(-0.8, 0.8, 161)
    bands = {}
    for field in (0.0, FIELD):
        b = meso.physics.Bands(lead, params={"alpha": ALPHA, "B": field})
        bands[field] = np.array([b(k) for k in momenta])[:, :2]  # the lowest subband
    bottom = float(min(bands[0.0].min(), bands[FIELD].min()))  # lowest band bottom
    crossing = float(np.mean(bands[0.0][len(momenta) // 2]))  # the Rashba crossing at k = 0
    energies = bottom + np.linspace(-0.05, 1.0, num_energies)
    conductance = {
        field: meso.transmission(fsys, energies, 1, 0, params={"alpha": ALPHA, "B": field})
        for field in (0.0, FIELD)
    }
    gap = (crossing - FIELD, crossing + FIELD)

    plt = pyplot()
    fig, (ax_b, ax_g) = plt.subplots(1, 2, figsize=(10, 4))
    ax_b.plot(momenta, bands[0.0], color="0.6", ls="--", label=["B = 0", None])
    ax_b.plot(momenta, bands[FIELD], color="C0", label=[f"B = {FIELD}", None])
    ax_b.axhspan(*gap, color="C1", alpha=0.2, label="helical gap")
    ax_b.set(xlabel="k (per grid spacing)", ylabel="E", title="lowest subband of the lead")
    ax_b.set_ylim(bottom - 0.05, bottom + 0.7)
    ax_b.legend(fontsize=8)
    for field, color in ((0.0, "0.6"), (FIELD, "C0")):
        ax_g.plot(energies, conductance[field], color=color, label=f"B = {field}")
    ax_g.axvspan(*gap, color="C1", alpha=0.2)
    ax_g.axhline(1.0, color="C3", lw=0.8, ls=":")
    ax_g.set(xlabel="E", ylabel="G (e²/h)", title="conductance: the half plateau in the gap")
    ax_g.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "continuum_nanowire.png", dpi=120)
    plt.close(fig)
    return {"energies": energies, "conductance": conductance, "gap": gap, "bottom": bottom}


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
