"""Quantum point contact: the conductance staircase and its thermal smearing.

A two-dimensional electron gas (square lattice, hopping t = 1, lattice constant 1)
is pinched by a smooth saddle-shaped gate potential. Each transverse channel that
opens as the Fermi energy rises adds one conductance quantum 2e^2/h; at finite
temperature the steps are smeared by the Fermi window (Landauer formula).

Writes ``<out>/qpc_staircase.nc`` (NetCDF: transmission T(E) and G(E, T)) and
``<out>/qpc_staircase.png``. Usage: ``python examples/qpc_staircase.py [out_dir]``.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import xarray as xr

import mesoscopic as meso


def make_qpc(width=40, length=90, *, smoothness=15.0):
    """Saddle-point QPC: V(x, y) = gate * envelope(x) * (2y/W - 1)^2, leads without gate."""
    lat = meso.lattice.square(1.0, norbs=1)
    x0 = length / 2

    def onsite(site, gate):
        x, y = site.pos
        envelope = np.exp(-((x - x0) ** 2) / (2 * smoothness**2))
        return 4.0 + gate * envelope * (2 * y / (width - 1) - 1) ** 2

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    # GaAs-like: spin-degenerate channels, so conductances come in units of 2e^2/h.
    return syst.finalized(spin_degeneracy=2), onsite


def main(out_dir: str = "out") -> xr.Dataset:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fsys, onsite = make_qpc()
    params = {"gate": 2.5}
    # The grid resolves the smallest kT and covers mu +- 34 kT of the largest.
    energies = np.linspace(-0.7, 1.3, 1001)
    transmission = meso.transmission(fsys, energies, 1, 0, params=params)
    temperatures = np.array([0.0, 0.005, 0.01, 0.02])  # kT in units of t
    window = (energies >= 0.02) & (energies <= 0.6)
    conductance = np.stack(
        [
            meso.landauer.linear_conductance(
                energies, transmission, energies[window], kT, spin_degeneracy=2
            )
            for kT in temperatures
        ]
    )
    data = xr.Dataset(
        {
            "transmission": (("energy",), transmission, {"units": "1", "long_name": "T(E)"}),
            "conductance": (
                ("kT", "fermi_energy"),
                conductance / 2,
                {"units": "2e^2/h", "long_name": "linear conductance"},
            ),
        },
        coords={
            "energy": ("energy", energies, {"units": "t"}),
            "fermi_energy": ("fermi_energy", energies[window], {"units": "t"}),
            "kT": ("kT", temperatures, {"units": "t"}),
        },
        attrs={
            "title": "QPC conductance staircase",
            "model": "square lattice 40 x 90, saddle gate potential, spin-degenerate",
            "gate": params["gate"],
            "mesoscopic_version": meso.__version__,
        },
    )
    data.to_netcdf(out / "qpc_staircase.nc", engine="scipy")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_sys, ax_g) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[1, 1.3])
    potential = np.array([onsite(site, **params) for site in fsys.sites]) - 4.0
    meso.plot.map(fsys, potential, ax=ax_sys, label="gate potential (t)")
    ax_sys.set_title("QPC: saddle potential on the lattice")
    for kT, g in zip(temperatures, conductance / 2):
        meso.plot.conductance(
            energies[window], g, ax=ax_g, unit="2e2/h", plateaus=kT == 0, label=f"kT = {kT:g} t"
        )
    ax_g.set_xlabel("Fermi energy (t)")
    ax_g.legend()
    ax_g.set_title("conductance staircase and thermal smearing")
    fig.tight_layout()
    fig.savefig(out / "qpc_staircase.png", dpi=130)
    print(f"wrote {out / 'qpc_staircase.nc'} and {out / 'qpc_staircase.png'}")
    return data


if __name__ == "__main__":
    main(*sys.argv[1:2])
