"""Universal conductance fluctuations and weak localization in a disordered wire.

Over many disorder configurations of a quasi-one-dimensional diffusive wire, the
conductance fluctuates by an amount of order e^2/h independent of size and
disorder (universal conductance fluctuations: var G = 2/15 for time-reversal
symmetric, 1/15 with a field, in (e^2/h)^2 per spin, Lee and Stone 1985), and a
small field that breaks time-reversal symmetry raises the average (weak
localization, Beenakker, Rev. Mod. Phys. 69, 731 (1997)): by e^2/(3h) only in the
diffusive limit of many channels, N >> g >> 1; in this wire (6 channels, g ~ 2.5)
by about a quarter of that.
Usage: ``python examples/disordered_wire.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def disordered_wire_in_field(width, length):
    lat = meso.lattice.square(norbs=1)

    def onsite(sites, disorder, seed):
        u = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(length, width))
        return 4.0 + disorder * u[sites.tags[:, 0], sites.tags[:, 1]]

    syst = meso.Builder(vectorize=True)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(magnetic_flux="phi")


def main(out_dir=None, *, samples=200, width=20, length=40, disorder=1.4, energy=1.0, flux=0.005):
    fsys = disordered_wire_in_field(width, length)
    fields = {"B = 0": 0.0, "B > 0": flux}
    conductances = {}
    for label, phi in fields.items():
        conductances[label] = np.array(
            [
                meso.smatrix(
                    fsys, energy, params={"phi": phi, "disorder": disorder, "seed": seed}
                ).transmission(1, 0)
                for seed in range(samples)
            ]
        )
    channels = meso.smatrix(
        fsys, energy, params={"phi": 0.0, "disorder": 0.0, "seed": 0}
    ).num_propagating(0)
    results = {
        "conductances": conductances,
        "channels": channels,
        "mean": {k: float(v.mean()) for k, v in conductances.items()},
        "std": {k: float(v.std(ddof=1)) for k, v in conductances.items()},
    }

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for label, g in conductances.items():
        a.hist(g, bins=20, alpha=0.6, label=f"{label}: <G> = {g.mean():.2f}, rms = {g.std():.2f}")
    a.set_xlabel("G ($e^2/h$)")
    a.set_ylabel("configurations")
    a.legend(fontsize=8)
    a.set_title(f"{width} x {length} wire, {channels} channels, {samples} seeds")
    labels = list(conductances)
    b.bar(labels, [results["std"][k] for k in labels], color=["C0", "C1"])
    b.axhline(np.sqrt(2 / 15), color="C0", ls="--", label=r"UCF $\sqrt{2/15}$ (orthogonal)")
    b.axhline(np.sqrt(1 / 15), color="C1", ls="--", label=r"UCF $\sqrt{1/15}$ (unitary)")
    b.set_ylabel("rms G ($e^2/h$)")
    b.legend(fontsize=8)
    b.set_title("universal conductance fluctuations")
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "disordered_wire.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
