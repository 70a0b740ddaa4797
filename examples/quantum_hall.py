"""Quantum Hall plateaus in a six-terminal Hall bar, and their smearing at finite temperature.

The lattice Hall bar (``mesoscopic.models.hall_bar``) in a strong field has chiral
edge channels: R_xy = h/(n e^2) on plateaus where R_xx = 0. At finite temperature
every T_ij(E) is averaged over the Fermi window (Landauer linear response) before
the Büttiker circuit is solved: the plateaus stay flat in their middle and their
corners round off, as the seed's G(T) = e^2/h (N + 1/(exp(Delta/kT) + 1)) says.
Panel (b) is the measurement as it is done: a GaAs Hall bar (5 nm grid) at fixed
density, R_xy and R_xx against the field in tesla, with plateaus at R_xy = h/(nu e^2)
for even filling factors nu = nh/(eB).
Usage: ``python examples/quantum_hall.py [out_dir]``.
"""

from __future__ import annotations

import numpy as np

import mesoscopic as meso
from mesoscopic import constants, landauer, models, network

try:
    from _common import output_dir, pyplot
except ImportError:
    from examples._common import output_dir, pyplot


def hall_resistances(g):
    """R_xy (voltage 2-4 across the bar) and R_xx (2-3 along it), current 0 -> 1; h/e^2."""
    r_xy = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 4))
    r_xx = network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 3))
    return np.abs(r_xy), r_xx


def field_sweep(fields, density=2e15):
    """R_xy and R_xx (h/e^2) of a spin-degenerate GaAs Hall bar against B (tesla), kT = 0."""
    gaas = models.Discretization(lattice_constant=5.0, effective_mass=0.067)
    bar = models.hall_bar(48, 24, spin_degeneracy=2)  # 240 nm x 120 nm
    params = gaas.params("hall_bar", disorder=10.0, seed=3)  # disorder amplitude 10 meV
    g = meso.conductance(
        bar,
        mu=gaas.fermi_energy(density),
        kT=0.0,
        params=params,
        sweep={"phi": gaas.flux(fields)},
        matrix=True,
    )
    g_bar = g.conductance.values.reshape(len(fields), 6, 6)  # e^2/h, spin included
    r_xy = network.hall_resistance(g_bar, current=(0, 1), voltage=(2, 4))
    r_xx = network.four_terminal_resistance(g_bar, current=(0, 1), voltage=(2, 3))
    return np.abs(r_xy), r_xx, constants.filling_factor(density, fields)


FIELDS_T = np.linspace(1.5, 7.5, 31)


def main(out_dir=None, *, temperatures=(0.0, 0.02, 0.04), fields=FIELDS_T):
    fsys = meso.models.hall_bar(40, 18, arm=10)
    params = {"phi": 0.08, "disorder": 0.5, "seed": 1}
    # The grid must resolve the smallest kT and cover the Fermi window (+-34 kT) of the largest.
    spacing = min(kT for kT in temperatures if kT > 0)
    margin = 34 * max(temperatures)
    mu = np.arange(0.6, 2.2, spacing / 2)
    energies = np.arange(mu[0] - margin - spacing, mu[-1] + margin + 2 * spacing, spacing)
    t = np.array([meso.smatrix(fsys, e, params=params).transmission_matrix() for e in energies])
    curves = {}
    for kT in temperatures:
        g_offdiag = landauer.linear_conductance(energies, t, mu, kT)  # (n_mu, 6, 6)
        g = np.array([network.conductance_matrix(g_mu, check=False) for g_mu in g_offdiag])
        curves[kT] = hall_resistances(g)
    fields = np.asarray(fields, dtype=float)
    b_xy, b_xx, filling = field_sweep(fields)
    results = {
        "mu": mu,
        "curves": curves,
        "energies": energies,
        "fields": fields,
        "field_curves": (b_xy, b_xx),
        "filling": filling,
    }

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    for kT, (r_xy, r_xx) in curves.items():
        line = ax.plot(mu, r_xy, label=f"$R_{{xy}}$, kT = {kT:g} t")[0]
        ax.plot(mu, r_xx, ls="--", color=line.get_color())
    for n in (1, 2, 3):
        ax.axhline(1 / n, color="0.7", lw=0.6, ls=":")
    ax.set_xlabel("Fermi energy (t)")
    ax.set_ylabel("resistance ($h/e^2$); dashed: $R_{xx}$")
    ax.set_ylim(-0.05, 1.2)
    ax.legend()
    ax.set_title("(a) plateaus and thermal smearing (flux 0.08 h/e per cell)")
    kohm = constants.R_K / 1e3
    bx.plot(fields, b_xy * kohm, label="$R_{xy}$")
    bx.plot(fields, b_xx * kohm, label="$R_{xx}$")
    for nu in (2, 4):
        bx.axhline(kohm / nu, color="0.7", lw=0.6, ls=":")
    bx.set_xlabel("$B$ (T)")
    bx.set_ylabel("resistance (kΩ)")
    bx.legend()
    bx.set_title("(b) GaAs Hall bar, $n = 2 \\times 10^{11}$ cm$^{-2}$, kT = 0")
    fig.tight_layout()
    path = output_dir([] if out_dir is None else [str(out_dir)])
    fig.savefig(path / "quantum_hall.png", dpi=120)
    plt.close(fig)
    return results


if __name__ == "__main__":
    main(output_dir())
