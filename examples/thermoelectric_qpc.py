"""Thermopower and heat conductance of a quantum point contact.

A saddle-shaped gate potential pinches a two-dimensional electron gas (square lattice,
hopping t = 1, spin-degenerate). As the chemical potential rises, transverse channels open one
by one; between the conductance plateaus the transmission rises steeply, so the thermopower
peaks there (negative: electron-like), and on the plateaus it vanishes.

(a) conductance G(mu) in 2e^2/h at three temperatures;
(b) thermopower S(mu) in k_B/e, with the Mott formula -(pi^2/3) kT d ln T/dE (dashed), exact
    as kT -> 0 and worse at the higher temperature, and Středa's universal peak
    -ln2/(N + 1/2) (dotted; J. Phys.: Condens. Matter 1, 1025 (1989)), reached at the middle
    of a step only where the step is sharper than kT, which these short-contact steps are not;
(c) electronic heat conductance kappa in units of the heat-conductance quantum
    g_s (pi^2/3) k_B^2 T / h: plateaus like those of G;
(d) Lorenz ratio kappa / (G T) in units of pi^2/3 (Wiedemann-Franz: 1 on the plateaus) and the
    figure of merit ZT (electrons only).

Writes ``thermoelectric_qpc.png`` into the folder given as the first argument (default
``out/``). Run: ``python examples/thermoelectric_qpc.py [output_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

import mesoscopic as meso
from mesoscopic import thermoelectric


def make_qpc(width: int = 20, length: int = 30, *, smoothness: float = 5.0) -> meso.System:
    """Saddle QPC: V(x, y) = gate exp(-(x - x0)^2 / 2 s^2) (2y/(W - 1) - 1)^2, clean leads."""
    lat = meso.lattice.square(1.0, norbs=1)
    x0 = (length - 1) / 2

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
    return syst.finalized(spin_degeneracy=2)


def main(out_dir: str = "out") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fsys = make_qpc()
    mu = np.linspace(0.12, 0.85, 147)
    temperatures = np.array([0.004, 0.008, 0.016])  # kT in units of t
    # The adaptive grid refines T(E) until every thermal average of the 147 x 3 pairs
    # (mu, kT) is within tol; 1e-4 (per unit transmission) is far below what the figure
    # shows, and much cheaper than the default 1e-8.
    result = thermoelectric.thermoelectric_response(
        fsys, mu, temperatures, params={"gate": 2.0}, points_per_kT=1, tol=1e-4
    )
    # The leads' subband edges (result.step), where T(E) has its onsets, split the splines
    # through T(E) that the Mott formula differentiates.
    mott = thermoelectric.mott_seebeck(
        result.energy.values,
        result.transmission.values,
        mu[:, None],
        temperatures[None, :],
        steps=result.step.values,
    )
    g_s = result.attrs["spin_degeneracy"]

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True)
    (ax_g, ax_s), (ax_k, ax_l) = axes
    colors = plt.cm.plasma(np.linspace(0.1, 0.75, temperatures.size))
    for k, (kT, color) in enumerate(zip(temperatures, colors)):
        point = result.isel(kT=k)
        label = f"kT = {kT:g} t"
        ax_g.plot(mu, point.conductance / 2, color=color, label=label)
        conducting = point.conductance.values / g_s > 0.05
        ax_s.plot(mu, point.seebeck, color=color, label=label)
        ax_s.plot(mu[conducting], mott[conducting, k], "--", color=color, lw=1)
        quantum = g_s * np.pi**2 / 3 * kT
        ax_k.plot(mu, point.thermal_conductance / quantum, color=color, label=label)
        ax_l.plot(mu, point.lorenz / (np.pi**2 / 3), color=color, label=f"L, {label}")
        ax_l.plot(mu, point.zt, ":", color=color, label=f"ZT, {label}")
    ax_g.set(ylabel="G (2e²/h)", title="(a) conductance staircase")
    ax_s.plot([], [], "k--", lw=1, label="Mott formula")
    # Středa (1989): -(k_B/e) ln2 / (N + 1/2) at the middle of a step sharper than kT.
    for n in (1, 2):
        ax_s.axhline(-np.log(2) / (n + 0.5), color="0.5", ls=":", lw=0.8)
    ax_s.plot([], [], ":", color="0.5", label="Středa: -ln2/(N+1/2)")
    ax_s.set(ylabel="S (k_B/e)", ylim=(-2.0, 0.1), title="(b) thermopower: peaks between plateaus")
    ax_k.set(
        xlabel="chemical potential μ (t)",
        ylabel="κ / [g_s (π²/3) k_B² T / h]",
        title="(c) heat conductance",
    )
    ax_l.set(
        xlabel="chemical potential μ (t)",
        ylabel="L / (π²/3),  ZT",
        ylim=(0, 2.5),
        title="(d) Lorenz ratio and figure of merit",
    )
    for ax in axes.flat:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "thermoelectric_qpc.png"
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(*sys.argv[1:2])
