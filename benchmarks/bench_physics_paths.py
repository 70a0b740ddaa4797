"""Physics beyond T(E) on the batched solver road: noise, capacitor and spin valve timings.

The noise, capacitor and spin modules compute their S-matrices through
:func:`mesoscopic.smatrices` / :func:`mesoscopic.transmission` (one call per parameter set,
RGF over the energies, workers and device from ``options=``). This script times, on the
same system and energy grid:

* ``noise_matrix_of_system`` on 48 energies of a two-terminal disordered wire
  (``--width`` x ``--length``, default 30 x 60) against ``meso.transmission`` on that grid
  (target: at most 3x), and against the old road, ``meso.smatrix`` energy by energy
  followed by ``noise_matrix``;
* ``capacitor.wigner_smith_matrix`` of a one-lead cavity, system (batched, five energies in
  one call) against a function of energy calling ``meso.smatrix`` (the old road);
* ``spin.conductance_vs_angle`` of a spin valve, batched against ``meso.smatrix`` per angle.

Each time is the best of ``--repeat`` runs, in seconds; the largest differences between
the roads are printed as well (they agree to rounding). The machine may be shared: run
the script several times and compare medians. The S-matrix needs the propagating modes of
every lead at every energy, which the transmission of a wire with clean leads does not
(its self-energies have a closed form); their cost, :meth:`LeadData.modes` on the grid, is
printed beside the noise ratio. The leads of this wire are independent chains, so their
modes come in closed form too (:mod:`mesoscopic.leads`), not from the eigenproblem of the
general mode solver: the noise costs about 1.6x the transmission (3.0x with the general
solver, on two shared cores).

Usage::

    python benchmarks/bench_physics_paths.py [--width 30] [--length 60] [--energies 48]
                                             [--repeat 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mesoscopic as meso
from mesoscopic import capacitor, noise, spin
from mesoscopic.solvers import SolverOptions
from mesoscopic.transport import lead_data


def best_time(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Shortest wall time of `repeat` calls, and the last result."""
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def disordered_wire(width: int, length: int, disorder: float, seed: int) -> Any:
    """Square-lattice wire (t = 1, band bottom at 0) with Anderson disorder, two leads."""
    lat = meso.lattice.square(norbs=1)
    values = np.random.default_rng(seed).uniform(-disorder / 2, disorder / 2, (length, width))
    syst = meso.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = 4.0 + values[x, y]
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def cavity(width: int, length: int, seed: int) -> Any:
    """A disordered square cavity closed on three sides, one lead (a mesoscopic capacitor)."""
    lat = meso.lattice.square(norbs=1)
    values = np.random.default_rng(seed).uniform(-0.5, 0.5, (length, width))
    syst = meso.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = 4.0 + values[x, y]
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    return syst.finalized()


def bench_noise(args: argparse.Namespace, options: SolverOptions) -> None:
    fsys = disordered_wire(args.width, args.length, 1.0, seed=3)
    kT, mu = 0.005, np.array([0.85, 0.75])
    grid = np.linspace(0.55, 1.05, args.energies)

    t_batch, transmission = best_time(
        lambda: meso.transmission(fsys, grid, 1, 0, options=options), args.repeat
    )
    t_noise, batched = best_time(
        lambda: noise.noise_matrix_of_system(fsys, grid, mu=mu, kT=kT, options=options),
        args.repeat,
    )
    t_old, old = best_time(
        lambda: noise.noise_matrix([meso.smatrix(fsys, float(e)) for e in grid], mu=mu, kT=kT),
        args.repeat,
    )
    leads = lead_data(fsys)
    t_modes, _ = best_time(
        lambda: [lead.modes(float(e)) for e in grid for lead in leads], args.repeat
    )
    scale = float(np.abs(old).max())
    print(
        f"noise, {args.width} x {args.length} wire, {grid.size} energies "
        f"(T from {transmission.min():.2f} to {transmission.max():.2f}):"
    )
    print(f"  meso.transmission (batched)        {t_batch:8.3f} s")
    print(
        f"  noise_matrix_of_system (batched)   {t_noise:8.3f} s   "
        f"ratio {t_noise / t_batch:5.2f} (target <= 3)"
    )
    print(f"  meso.smatrix per energy + noise    {t_old:8.3f} s   ratio {t_old / t_batch:5.2f}")
    print(
        f"  of which lead modes (S needs them)  {t_modes:8.3f} s   "
        f"ratio without them {(t_noise - t_modes) / t_batch:5.2f}"
    )
    print(f"  largest relative difference        {np.abs(batched - old).max() / scale:.1e}")


def bench_capacitor(args: argparse.Namespace, options: SolverOptions) -> None:
    fsys = cavity(args.width, args.width, seed=5)
    energy = 0.7
    t_new, q_new = best_time(
        lambda: capacitor.wigner_smith_matrix(fsys, energy, options=options), args.repeat
    )
    t_old, q_old = best_time(
        lambda: capacitor.wigner_smith_matrix(lambda e: meso.smatrix(fsys, e), energy),
        args.repeat,
    )
    scale = float(np.abs(q_old).max())
    print(f"capacitor, {args.width} x {args.width} cavity, Wigner-Smith matrix (5 energies):")
    print(f"  batched                            {t_new:8.3f} s")
    print(f"  meso.smatrix per energy            {t_old:8.3f} s   ratio {t_old / t_new:5.2f}")
    print(f"  largest relative difference        {np.abs(q_new - q_old).max() / scale:.1e}")


def bench_spin(args: argparse.Namespace, options: SolverOptions) -> None:
    width = max(2, args.width // 3)
    fsys = spin.spin_valve(exchange_left=0.5, coupling=0.5, width=width, spacer_length=20)
    angles = np.linspace(0.0, np.pi, 8)
    energy = 0.8
    t_new, g_new = best_time(
        lambda: spin.conductance_vs_angle(fsys, energy, angles, options=options), args.repeat
    )

    def old() -> Any:
        result = []
        for angle in angles:
            m_right = (np.sin(angle), 0.0, np.cos(angle))
            s = meso.smatrix(fsys, energy, params={"m_left": (0, 0, 1), "m_right": m_right})
            result.append(s.transmission(1, 0))
        return np.array(result)

    t_old, g_old = best_time(old, args.repeat)
    print(f"spin valve, width {width}, conductance at {angles.size} angles:")
    print(f"  batched                            {t_new:8.3f} s")
    print(f"  meso.smatrix per angle             {t_old:8.3f} s   ratio {t_old / t_new:5.2f}")
    print(f"  largest difference                 {np.abs(g_new - g_old).max():.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=30)
    parser.add_argument("--length", type=int, default=60)
    parser.add_argument("--energies", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    options = SolverOptions(workers=args.workers, device=args.device)
    print(f"options: {options}")
    bench_noise(args, options)
    bench_capacitor(args, options)
    bench_spin(args, options)


if __name__ == "__main__":
    main()
