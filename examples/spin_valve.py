"""Spin valve: parallel vs antiparallel conductance, Julliere's formula, the cosine law.

Two ferromagnets (exchange energy h, bands split by 2h, tight binding with hopping t = 1)
are joined through a spin-independent spacer. Three panels:

1. G_P and G_AP vs Fermi energy of a four-site-wide valve with a low tunnel barrier.
2. TMR = (G_P - G_AP) / G_AP of a weak tunnel link (coupling tau = 0.05 t) between
   ferromagnetic chains, vs the polarization P of the contact density of states as h is swept,
   next to Julliere's 2 P^2 / (1 - P^2): the tunnelling limit of the model.
3. G(theta) for non-collinear magnetizations: the weak link follows
   (G_P + G_AP)/2 + (G_P - G_AP)/2 cos(theta); a transparent junction does not.

Writes ``<out>/spin_valve.png``. Usage: ``python examples/spin_valve.py [out_dir]``.
"""

from __future__ import annotations

import os
import pathlib
import sys

# Every matrix here is tiny (at most 8 orbitals per lead cell); threaded BLAS only adds
# overhead to them, so use one thread unless the caller chose otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mesoscopic import spin

PARALLEL = {"m_left": (0.0, 0.0, 1.0), "m_right": (0.0, 0.0, 1.0)}


def conductance_vs_energy(energies):
    """G_P, G_AP (e^2/h) of a four-site-wide valve with a barrier of height 1.5 t."""
    fsys = spin.spin_valve(exchange_left=0.6, width=4, spacer_length=2, barrier=1.5)
    results = [spin.magnetoresistance(fsys, energy) for energy in energies]
    return (
        np.array([r.g_parallel for r in results]),
        np.array([r.g_antiparallel for r in results]),
    )


def tmr_vs_polarization(exchanges, *, energy=1.0, coupling=0.05):
    """Computed TMR and the contact-LDOS polarization of weak links between chains."""
    tmr, polarization = [], []
    for h in exchanges:
        fsys = spin.spin_valve(exchange_left=h, coupling=coupling)
        tmr.append(spin.magnetoresistance(fsys, energy).tmr)
        polarization.append(spin.lead_polarization(fsys, 0, energy, params=PARALLEL))
    return np.array(polarization), np.array(tmr)


def angle_dependence(angles, *, energy=1.0):
    """G(theta) / G_P and the cosine law for a weak link and for a transparent junction."""
    curves = {}
    for label, fsys in (
        (r"tunnel link, $\tau = 0.05\,t$", spin.spin_valve(exchange_left=0.8, coupling=0.05)),
        ("transparent, 3-site spacer", spin.spin_valve(exchange_left=0.8, spacer_length=3)),
    ):
        mr = spin.magnetoresistance(fsys, energy)
        conductance = spin.conductance_vs_angle(fsys, energy, angles)
        curves[label] = (conductance / mr.g_parallel, mr.cosine_law(angles) / mr.g_parallel)
    return curves


def main(out_dir: str = "out") -> pathlib.Path:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))

    energies = np.linspace(-4.55, 4.55, 79)
    g_parallel, g_antiparallel = conductance_vs_energy(energies)
    ax = axes[0]
    ax.plot(energies, g_parallel, label=r"$G_P$")
    ax.plot(energies, g_antiparallel, "--", label=r"$G_{AP}$")
    ax.set_xlabel(r"Fermi energy $E_F$ / t")
    ax.set_ylabel(r"$G$ ($e^2/h$)")
    ax.set_title("Spin valve, W = 4, h = 0.6 t, barrier 1.5 t")
    ax.legend()

    exchanges = np.linspace(0.02, 0.98, 17)
    polarization, tmr = tmr_vs_polarization(exchanges)
    p_fine = np.linspace(0, 0.97, 200)
    ax = axes[1]
    ax.plot(p_fine, 2 * p_fine**2 / (1 - p_fine**2), color="k", lw=1, label="Julliere")
    ax.plot(np.abs(polarization), tmr, "o", ms=4, label=r"weak link, $\tau = 0.05\,t$")
    ax.set_yscale("log")
    ax.set_xlabel(r"contact polarization $|P|$ (both leads)")
    ax.set_ylabel(r"TMR $= (G_P - G_{AP})/G_{AP}$")
    ax.set_title(r"TMR vs polarization ($E_F = t$, h swept)")
    ax.legend()

    angles = np.linspace(0, 2 * np.pi, 37)
    ax = axes[2]
    for label, (computed, cosine) in angle_dependence(angles).items():
        (line,) = ax.plot(angles, computed, label=label)
        ax.plot(angles, cosine, ":", color=line.get_color())
    ax.set_xlabel(r"angle between magnetizations $\theta$")
    ax.set_ylabel(r"$G(\theta) / G_P$")
    ax.set_title(r"$G(\theta)$; dotted: $\frac{G_P+G_{AP}}{2} + \frac{G_P-G_{AP}}{2}\cos\theta$")
    ax.legend()

    fig.tight_layout()
    path = out / "spin_valve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "out"))
