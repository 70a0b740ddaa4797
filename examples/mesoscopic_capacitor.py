"""A quantum-dot capacitor: universal charge-relaxation resistance and quantum capacitance.

A 7 x 5 square-lattice quantum dot, tuned by a gate, is connected to one reservoir through a
single-site point contact that admits one channel (Büttiker, Thomas and Prêtre 1993; Gabelli
et al., Science 313, 499 (2006)). Writes ``mesoscopic_capacitor.png`` into the folder given
as the first argument (default: ``out/`` in the current working directory) with

(a) the charge-relaxation resistance R_q versus the contact's transmission T (computed for
    the same contact between two leads), at several gate voltages: flat at h / 2e^2 for a
    spin-resolved channel (h / 4e^2 for a spin-degenerate one), whatever T;
(b) the density of states from the Wigner-Smith matrix versus gate for an open and a nearly
    closed contact: a peak each time a dot level crosses the Fermi energy;
(c) the electrochemical capacitance C_mu = (1/C + 1/e^2 D)^-1 for the same sweeps, which
    oscillates with the DOS between 0 and the geometric C (the RC time R_q C_mu follows it,
    since R_q is constant).

Energies in units of the hopping t; C_mu / e^2 in 1/t. Run:
``python examples/mesoscopic_capacitor.py [output_dir]``.
"""

from __future__ import annotations

import os

# These S-matrices are small; threaded BLAS only adds overhead to them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

import mesoscopic as meso
from mesoscopic import capacitor

FERMI_ENERGY = 3.7
GEOMETRIC_CHARGING_ENERGY = 0.5  # e^2 / C in units of t


def quantum_dot(*, spin_degeneracy: int = 1) -> meso.System:
    """7 x 5 dot (onsite 4 + gate) behind one barrier site (onsite 4 + barrier), one lead."""
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(1, 8) for y in range(5))] = lambda site, gate: 4.0 + gate
    syst[lat(0, 2)] = lambda site, barrier: 4.0 + barrier
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[lat(0, 2)] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    return syst.finalized(spin_degeneracy=spin_degeneracy)


def contact() -> meso.System:
    """The point contact alone: the barrier site between two single-channel leads."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = lambda site, barrier: 4.0 + barrier
    for lead_direction in (-1, 1):
        lead = meso.Builder(meso.TranslationalSymmetry((lead_direction,)))
        lead[lat(0)] = 4.0
        lead[lat.neighbors()] = -1.0
        syst.attach_lead(lead)
    return syst.finalized()


def barrier_for(transmission: float) -> float:
    """Barrier height of transmission T at the Fermi energy: T = v^2 / (v^2 + V^2)."""
    velocity = np.sqrt(4 - (FERMI_ENERGY - 4) ** 2)
    return float(velocity * np.sqrt((1 - transmission) / transmission))


def resistance_versus_transmission(ax: plt.Axes, dot: meso.System) -> None:
    targets = np.linspace(0.05, 0.95, 13)
    barriers = [barrier_for(t) for t in targets]
    qpc = contact()
    transmissions = [
        meso.smatrix(qpc, FERMI_ENERGY, params={"barrier": b}).transmission(1, 0) for b in barriers
    ]
    spinful = quantum_dot(spin_degeneracy=2)
    for gate, marker in ((0.0, "o"), (0.13, "s"), (-0.21, "^")):
        r_q = [
            capacitor.charge_relaxation_resistance(
                dot, FERMI_ENERGY, params={"barrier": b, "gate": gate}
            )
            for b in barriers
        ]
        ax.plot(transmissions, r_q, marker, ms=5, label=f"gate {gate:+.2f} t, spinless")
    r_spin = [
        capacitor.charge_relaxation_resistance(
            spinful, FERMI_ENERGY, params={"barrier": b, "gate": 0.0}
        )
        for b in barriers
    ]
    ax.plot(transmissions, r_spin, "D", ms=4, label="gate 0, spin-degenerate")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.axhline(0.25, color="k", lw=0.8, ls=":")
    ax.set_xlabel("point-contact transmission T")
    ax.set_ylabel(r"$R_q$ (h/e$^2$)")
    ax.set_ylim(0, 0.7)
    ax.set_title("(a) charge-relaxation resistance", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", ncol=2)


def gate_sweeps(ax_dos: plt.Axes, ax_cap: plt.Axes, dot: meso.System) -> None:
    gates = np.linspace(-0.6, 0.6, 121)
    for transmission, colour in ((0.8, "C0"), (0.2, "C3")):
        barrier = barrier_for(transmission)
        responses = [
            capacitor.mesoscopic_capacitor(
                dot,
                FERMI_ENERGY,
                geometric_charging_energy=GEOMETRIC_CHARGING_ENERGY,
                params={"barrier": barrier, "gate": g},
            )
            for g in gates
        ]
        dos = [r.density_of_states for r in responses]
        c_mu = [r.electrochemical_capacitance for r in responses]
        ax_dos.plot(gates, dos, color=colour, label=f"T = {transmission}")
        ax_cap.plot(gates, c_mu, color=colour, label=f"T = {transmission}")
    ax_dos.set_yscale("log")
    ax_dos.set_xlabel("gate (t)")
    ax_dos.set_ylabel("density of states D (1/t)")
    ax_dos.set_title("(b) Wigner-Smith density of states", fontsize=10)
    ax_dos.legend(fontsize=8)
    ax_cap.axhline(1 / GEOMETRIC_CHARGING_ENERGY, color="k", lw=0.8, ls="--", label="C / e²")
    ax_cap.set_xlabel("gate (t)")
    ax_cap.set_ylabel(r"$C_\mu / e^2$ (1/t)")
    ax_cap.set_ylim(0, 2.3)
    ax_cap.set_title(
        rf"(c) electrochemical capacitance, $e^2/C$ = {GEOMETRIC_CHARGING_ENERGY} t", fontsize=10
    )
    ax_cap.legend(fontsize=8, loc="lower right")


def main(output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    dot = quantum_dot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    resistance_versus_transmission(axes[0], dot)
    gate_sweeps(axes[1], axes[2], dot)
    path = output / "mesoscopic_capacitor.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out")
    print(main(target))
