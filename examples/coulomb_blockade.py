"""Coulomb blockade of a quantum dot in the sequential-tunnelling regime.

Writes ``coulomb_blockade.png`` into the folder given as the first argument
(default: ``out/`` in the current working directory) with

(a) linear-conductance peaks versus gate at several temperatures: a dot with
    discrete levels (Gamma << kT << level spacing: peak height ~ 1/T, width ~ kT)
    and a metallic island (level spacing << kT << E_C: height G_L G_R / 2(G_L + G_R)
    at every temperature);
(b) a Coulomb-diamond map of dI/dV for two spin-degenerate orbitals, with the
    edges predicted from the capacitances and the excited-state lines outside the
    diamonds;
(c) coherent resonant tunnelling through one level (the thermally averaged
    Breit-Wigner transmission) against the sequential-tunnelling peak: they agree
    for kT >> Gamma, and for kT <~ Gamma only the coherent picture holds (the
    sequential peak would exceed the unitarity limit e^2/h).

Energies are in units of the charging energy E_C in (a) and (b), and of the level
width Gamma in (c). Run: ``python examples/coulomb_blockade.py [output_dir]``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import SymLogNorm
from scipy.special import expit

import mesoscopic as meso
from mesoscopic import coulomb as cb
from mesoscopic import landauer


def trapezoid(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Trapezoidal rule along the last axis."""
    return np.sum(0.5 * (values[..., 1:] + values[..., :-1]) * np.diff(grid), axis=-1)


def coherent_conductance(
    detuning: np.ndarray, kT: float, gamma_left: float, gamma_right: float
) -> np.ndarray:
    """Thermally averaged Breit-Wigner conductance in e^2/h (spinless level).

    G(delta) = int dE T(E) (-df/dE), T(E) = Gamma_L Gamma_R / ((E - delta)^2 + (Gamma/2)^2),
    with the level at ``delta`` above the leads' potential 0.
    """
    width = gamma_left + gamma_right
    # A fine grid across the Lorentzian and a coarse one across the thermal window.
    grid = np.union1d(
        np.linspace(-60 * width, 60 * width, 6001), np.linspace(-40 * kT, 40 * kT, 4001)
    )
    out = np.empty(np.shape(detuning))
    for index, delta in np.ndenumerate(np.asarray(detuning, dtype=float)):
        energies = grid + delta
        transmission = gamma_left * gamma_right / ((energies - delta) ** 2 + 0.25 * width**2)
        # -df/dE = f (1 - f) / kT, written without overflow far in the tails.
        kernel = expit(energies / kT) * expit(-energies / kT) / kT
        out[index] = trapezoid(transmission * kernel, energies)
    return out


def panel_discrete_levels(ax: plt.Axes) -> None:
    gamma = 1e-3
    dot = cb.QuantumDot([0.0, 0.4], [[gamma, gamma], [gamma, gamma]], charging_energy=1.0)
    peaks = cb.degeneracy_gates(dot)
    gates = np.linspace(peaks[0] - 0.15, peaks[0] + 0.15, 601)
    for kT in (0.01, 0.02, 0.04):
        g = cb.linear_conductance(dot, gate=gates, kT=kT)
        ax.plot(gates - peaks[0], g, label=f"kT = {kT:g} E_C = {kT / gamma:g} Γ")
    ax.set_xlabel("gate − degeneracy point (E_C)")
    ax.set_ylabel("G (e²/h)")
    ax.set_title("(a) discrete level: height ∝ 1/T, width 3.5 kT", fontsize=10)
    ax.legend(fontsize=7)


def panel_metallic(ax: plt.Axes) -> None:
    g_left, g_right = 0.1, 0.1
    dot = cb.MetallicDot([g_left, g_right], charging_energy=1.0)
    gates = np.linspace(-0.2, 2.2, 961)
    series = g_left * g_right / (g_left + g_right)
    for kT in (0.02, 0.05, 0.1):
        g = cb.linear_conductance(dot, gate=gates, kT=kT)
        ax.plot(gates, g / series, label=f"kT = {kT:g} E_C")
    ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("gate charge n_g = C_g V_g / e")
    ax.set_ylabel("G / (G_L G_R / (G_L + G_R))")
    ax.set_ylim(0, 0.6)
    ax.set_title("(a) metallic island: height 1/2 at every T", fontsize=10)
    ax.legend(fontsize=7)


def panel_diamonds(fig: plt.Figure, ax: plt.Axes) -> None:
    dot = cb.QuantumDot.from_capacitances(
        [0.0, 0.35],
        [[1e-3, 3e-3], [2e-3, 2e-3]],
        lead_capacitances=[0.25, 0.2],
        gate_capacitance=0.45,
        self_capacitance=0.1,
        degeneracy=2,
    )
    kT = 0.02
    gates = np.linspace(-0.5, 10.0, 240)
    biases = np.linspace(-1.8, 1.8, 240)
    diagram = cb.stability_diagram(dot, gates, biases, kT=kT)
    didv = diagram.differential_conductance
    scale = np.abs(didv).max()
    image = ax.pcolormesh(
        gates,
        biases,
        didv,
        cmap="RdBu_r",
        norm=SymLogNorm(linthresh=3e-3 * scale, vmin=-scale, vmax=scale),
        shading="auto",
        rasterized=True,
    )
    fig.colorbar(image, ax=ax, label="dI/dV (e²/h)")
    # Diamond outlines predicted from the capacitances: edges leave each degeneracy
    # point with the slopes where the addition energy meets lead 0 or lead 1.
    slope0, slope1 = cb.diamond_edge_slopes(dot, bias_fraction=diagram.bias_fraction)
    closing = cb.degeneracy_gates(dot)
    for left, right in itertools.pairwise(closing):
        top = (slope1 * left - slope0 * right) / (slope1 - slope0)
        bottom = (slope0 * left - slope1 * right) / (slope0 - slope1)
        outline_g = [left, top, right, bottom, left]
        outline_v = [0.0, slope1 * (top - left), 0.0, slope0 * (bottom - left), 0.0]
        ax.plot(outline_g, outline_v, color="k", lw=0.7, ls="--")
    ax.set_xlim(gates[0], gates[-1])
    ax.set_ylim(biases[0], biases[-1])
    ax.set_xlabel("gate e V_g (E_C)")
    ax.set_ylabel("bias μ_0 − μ_1 (E_C)")
    ax.set_title(
        "(b) Coulomb diamonds (dashed: from capacitances) and excited-state lines\n"
        "two spin-degenerate orbitals Δε = 0.35 E_C, kT = 0.02 E_C",
        fontsize=10,
    )


def panel_lineshapes(ax: plt.Axes, kT: float) -> None:
    gamma_left = gamma_right = 0.5  # Gamma = 1
    dot = cb.QuantumDot([0.0], [[gamma_left], [gamma_right]], charging_energy=0.0)
    span = 6 * max(kT, 1.0)
    detuning = np.linspace(-span, span, 241)
    coherent = coherent_conductance(detuning, kT, gamma_left, gamma_right)
    sequential = cb.linear_conductance(dot, gate=-detuning, kT=kT)
    ax.plot(detuning, coherent, label="coherent (Breit-Wigner)")
    ax.plot(detuning, sequential, ls="--", label="sequential tunnelling")
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("level − μ (Γ)")
    ax.set_ylabel("G (e²/h)")
    regime = "kT ≫ Γ: pictures agree" if kT > 1 else "kT < Γ: only coherent holds"
    ax.set_title(f"(c) kT = {kT:g} Γ — {regime}", fontsize=10)
    ax.legend(fontsize=7)


def tight_binding_resonance() -> tuple[float, float, np.ndarray, np.ndarray]:
    """A lattice double barrier: its resonance level, width Gamma and T(E) around it."""
    from scipy.optimize import brentq, minimize_scalar

    fsys = meso.models.double_barrier(well=6, barrier=2)
    params = {"barrier_height": 3.0, "well_potential": 0.0}

    def t(energy: float) -> float:
        return meso.smatrix(fsys, energy, params=params).transmission(1, 0)

    grid = np.linspace(0.2, 1.2, 201)
    guess = grid[np.argmax(meso.transmission(fsys, grid, 1, 0, params=params))]
    level = minimize_scalar(lambda e: -t(e), bracket=(guess - 5e-3, guess, guess + 5e-3)).x
    gamma = 2 * (brentq(lambda e: t(e) - 0.5, level, level + 0.2) - level)
    energies = np.unique(
        np.concatenate(
            [
                np.linspace(level - 1.5, level + 1.5, 1201),
                level + gamma * np.linspace(-40, 40, 1601),
            ]
        )
    )
    energies = energies[np.abs(energies) < 1.999]
    return level, gamma, energies, meso.transmission(fsys, energies, 1, 0, params=params)


def panel_peak_heights(ax: plt.Axes) -> None:
    gamma_left = gamma_right = 0.5
    temperatures = np.geomspace(0.02, 50, 40)
    coherent = [
        float(coherent_conductance(np.zeros(1), t, gamma_left, gamma_right)[0])
        for t in temperatures
    ]
    dot = cb.QuantumDot([0.0], [[gamma_left], [gamma_right]], charging_energy=0.0)
    sequential = [float(cb.linear_conductance(dot, gate=0.0, kT=t)) for t in temperatures]
    ax.loglog(temperatures, coherent, label="coherent (Breit-Wigner)")
    ax.loglog(temperatures, sequential, ls="--", label="sequential ∝ 1/T")
    # The same crossover for the resonance of a tight-binding double barrier (no fit:
    # its level and width are read off the computed transmission).
    level, gamma, energies, transmission = tight_binding_resonance()
    ratios = np.geomspace(0.2, 20, 10)
    ratios = ratios[34 * ratios * gamma < 1.4]  # keep the Fermi window on the grid
    peaks = [
        float(landauer.linear_conductance(energies, transmission, level, r * gamma))
        for r in ratios
    ]
    ax.loglog(ratios, peaks, "o", ms=4, label="tight-binding double barrier")
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("kT / Γ")
    ax.set_ylabel("peak G (e²/h)")
    ax.set_title("(c) peak height: crossover at kT ~ Γ", fontsize=10)
    ax.legend(fontsize=7)


def main(output_dir: str = "out") -> Path:
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5), layout="constrained")
    panel_discrete_levels(axes[0, 0])
    panel_metallic(axes[0, 1])
    panel_diamonds(fig, axes[0, 2])
    panel_lineshapes(axes[1, 0], kT=0.2)
    panel_lineshapes(axes[1, 1], kT=5.0)
    panel_peak_heights(axes[1, 2])
    fig.suptitle("Coulomb blockade, sequential tunnelling (no cotunnelling)")
    path = folder / "coulomb_blockade.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
