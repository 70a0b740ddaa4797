"""Shot noise of tight-binding conductors from Büttiker's formula.

Writes ``shot_noise.png`` into the folder given as the first argument (default: ``out/`` in
the current working directory) with

(a) the Fano factor ``F = sum T_n (1 - T_n) / sum T_n`` of a disordered wire versus its
    length, averaged over disorder seeds: ballistic (F ~ 0) for L << l, approaching the
    diffusive 1/3 (Beenakker and Büttiker 1992) once L >> l (a weak magnetic field removes
    the weak-localization correction);
(b) the noise of a single-channel chain impurity versus bias at fixed temperature, in units
    of the Johnson-Nyquist value 4 kT G: it crosses over from 1 at eV << kT to the shot-noise
    line (eV / 2kT) F at eV >> kT, following
    S = 2 [2 kT sum T_n^2 + eV coth(eV / 2kT) sum T_n (1 - T_n)];
(c) a symmetric double barrier on a chain: the Fano factor of the noise integrated over
    whole resonances versus the barrier transmission tau, against the phase-averaged
    Fabry-Pérot value 1 - (1 + R^2) / (1 + R)^2 -> 1/2 for opaque barriers.

Energies in units of the hopping t. Run: ``python examples/shot_noise.py [output_dir]``.
"""

from __future__ import annotations

import os

# These S-matrices are small; threaded BLAS only adds overhead to them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar

import mesoscopic as meso
from mesoscopic import landauer, noise


def disordered_wire(width: int, length: int) -> meso.System:
    """Square lattice (onsite 4 + disorder ``pot[x, y]``, hopping -1) between two leads."""
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()

    def onsite(site, pot):
        x, y = site.tag
        return 4.0 + pot[x, y]

    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(magnetic_flux="phi")


def chain(n_sites: int, onsite) -> meso.System:
    """Chain (hopping -1) of `n_sites` between two chain leads."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(n_sites))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def fano_versus_length(ax: plt.Axes) -> None:
    width, strength, energy, seeds = 24, 1.5, 3.0, 8
    lengths = [2, 5, 10, 20, 40, 60]
    means, errors, conductances = [], [], []
    for length in lengths:
        fsys = disordered_wire(width, length)
        per_seed, g = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            params = {"pot": strength * rng.uniform(-0.5, 0.5, (length, width)), "phi": 0.0015}
            s = meso.smatrix(fsys, energy, params=params)
            per_seed.append(noise.fano_factor(s, 1, 0))
            g.append(s.transmission(1, 0))
        means.append(np.mean(per_seed))
        errors.append(np.std(per_seed, ddof=1) / np.sqrt(seeds))
        conductances.append(np.mean(g))
    channels = s.num_propagating(0)
    ax.errorbar(lengths, means, yerr=errors, fmt="o-", capsize=3, label="tight binding")
    ax.axhline(1 / 3, color="k", ls="--", lw=1, label="diffusive 1/3")
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("wire length L (sites)")
    ax.set_ylabel("Fano factor F")
    ax.set_ylim(0, 0.45)
    ax.set_title(f"(a) disordered wire, W = {width}, N = {channels}", fontsize=10)
    for length, g in zip(lengths, conductances, strict=True):
        ax.annotate(f"{g:.1f}", (length, 0.02), ha="center", fontsize=7)
    ax.annotate("mean G (e²/h):", (lengths[0], 0.05), fontsize=7)
    ax.legend(fontsize=8, loc="upper left")


def noise_versus_bias(ax: plt.Axes) -> None:
    kT = 0.01
    biases = np.linspace(0.0, 0.25, 26)
    grid = np.linspace(-0.6, 0.6, 61)
    fsys = chain(1, lambda site, v: v)
    curve_x = np.linspace(1e-6, biases[-1], 400)
    for height, colour in ((6.0, "C0"), (2.0, "C1")):
        smatrices = [meso.smatrix(fsys, e, params={"v": height}) for e in grid]
        at_fermi = meso.smatrix(fsys, 0.0, params={"v": height})
        transmission = noise.transmission_eigenvalues(at_fermi, 1, 0)
        # Zero-bias noise is the Johnson-Nyquist 4 kT G (tested in tests/test_noise.py).
        johnson = noise.noise_matrix(smatrices, mu=0.0, kT=kT)[0, 0]
        ours = [
            noise.noise_matrix(smatrices, mu=[0.5 * v, -0.5 * v], kT=kT)[0, 0] / johnson
            for v in biases
        ]
        closed = (
            2
            * (
                2 * kT * np.sum(transmission**2)
                + curve_x / np.tanh(curve_x / (2 * kT)) * np.sum(transmission * (1 - transmission))
            )
            / johnson
        )
        fano = noise.fano_factor(at_fermi, 1, 0)
        ax.plot(biases / kT, ours, "o", color=colour, ms=4, label=f"T = {transmission[0]:.2f}")
        ax.plot(curve_x / kT, closed, "-", color=colour, lw=1)
        ax.plot(curve_x / kT, fano * curve_x / (2 * kT), ":", color=colour, lw=1)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("eV / kT")
    ax.set_ylabel("S / 4kTG")
    ax.set_ylim(0, 11)
    ax.set_title("(b) thermal to shot noise; lines: coth formula", fontsize=10)
    ax.legend(fontsize=8, title="impurity", title_fontsize=8)


def antiresonance(transmission, guess: float) -> float:
    """The transmission minimum nearest `guess`: a coarse scan, then Brent's method."""
    scan = np.linspace(guess - 0.3, guess + 0.3, 31)
    values = np.array([transmission(e) for e in scan])
    minima = np.flatnonzero((values[1:-1] < values[:-2]) & (values[1:-1] < values[2:])) + 1
    best = minima[np.argmin(np.abs(scan[minima] - guess))]
    bracket = (scan[best - 1], scan[best], scan[best + 1])
    return float(minimize_scalar(transmission, bracket=bracket, tol=1e-10).x)


def double_barrier_fano(ax: plt.Axes) -> None:
    length = 10
    fsys = chain(length + 2, lambda site, v: v if site.tag[0] in (0, length + 1) else 0.0)
    single = chain(1, lambda site, v: v)
    taus, fanos = [], []
    for height, points in ((1.5, 80), (2.5, 100), (4.0, 120), (6.0, 240)):
        params = {"v": height}

        def transmission(energy, params=params):
            return meso.smatrix(fsys, energy, params=params).transmission(1, 0)

        low, high = (antiresonance(transmission, guess) for guess in (-0.6, 0.5))
        grid = np.linspace(low, high, points)
        smatrices = [meso.smatrix(fsys, e, params=params) for e in grid]
        samples = [s.transmission(1, 0) for s in smatrices]
        shot = noise.noise_matrix(smatrices, mu=[high, low], kT=0.0)[0, 0]
        current = landauer.current(grid, samples, high, low, 0.0, 0.0)
        fanos.append(shot / (2 * current))
        taus.append(meso.smatrix(single, 0.5 * (low + high), params=params).transmission(1, 0))
    tau = np.linspace(0.01, 0.7, 200)
    reflection = 1 - tau
    ax.plot(
        tau, 1 - (1 + reflection**2) / (1 + reflection) ** 2, "k-", lw=1, label="phase average"
    )
    ax.plot(taus, fanos, "o", color="C3", label="tight binding")
    ax.axhline(0.5, color="k", ls="--", lw=0.8)
    ax.set_xlabel(r"barrier transmission $\tau$")
    ax.set_ylabel("F over whole resonances")
    ax.set_ylim(0.3, 0.55)
    ax.set_title("(c) symmetric double barrier", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")


def main(output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    fano_versus_length(axes[0])
    noise_versus_bias(axes[1])
    double_barrier_fano(axes[2])
    path = output / "shot_noise.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out")
    print(main(target))
