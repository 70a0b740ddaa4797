"""Spin-split conductance steps of a quantum point contact in an in-plane field.

With the Zeeman splitting E_z smaller than the subband spacing, each 2e^2/h step of
the QPC splits into two e^2/h steps: half plateaus at odd multiples of e^2/h
appear (the spin-resolved staircase measured in real QPCs). Two orbitals (spin up
and down) per site, ``mesoscopic.models.quantum_point_contact(zeeman=True)``.
Usage: ``python examples/qpc_zeeman.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def main(out_dir=None, *, num=241, zeeman_energies=(0.0, 0.1)):
    fsys = meso.models.quantum_point_contact(24, 100, smoothness=18.0, zeeman=True)
    energies = np.linspace(0.3, 0.95, num)
    curves = {}
    for ez in zeeman_energies:
        params = {"gate": 0.3, "confinement": 0.02, "zeeman": ez}
        curves[ez] = meso.transmission(fsys, energies, 1, 0, params=params)  # units e^2/h
    results = {"energies": energies, "conductance": curves}

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for ez, g in curves.items():
        meso.plot.conductance(
            energies, g, ax=ax, unit="e2/h", plateaus=ez == 0, label=f"$E_z$ = {ez:g} t"
        )
    ax.set_xlabel("Fermi energy (t)")
    ax.set_title("spin-split QPC staircase: half plateaus at odd $e^2/h$")
    ax.legend()
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "qpc_zeeman.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
