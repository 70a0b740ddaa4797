"""Tight-binding engine benchmark: system construction and S-matrix time per energy.

Prints our timings and, when Kwant is importable in the same interpreter, Kwant's
timings on the same systems and the ratios (larger ratio = we are faster):

1. building and finalizing an L x L square lattice with two leads (our vectorized
   ArrayBuilder vs Kwant's Builder) plus evaluating its Hamiltonian once;
2. S-matrix time per energy of a 40 x 200 disordered wire (onsite 4t + uniform
   disorder in [-0.5, 0.5] t), sparse direct solver on both sides.

Usage: python benchmarks/bench_tight_binding.py [--size 1000] [--kwant-size 1000] [--energies 8]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

try:
    import mesoscopic as meso
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    import mesoscopic as meso

try:
    import kwant
except ImportError:
    kwant = None


def build_ours(size):
    lat = meso.lattice.square(1.0, norbs=1)
    rng = np.random.default_rng(0)
    disorder = rng.uniform(-0.5, 0.5, size=(size, size))
    start = time.perf_counter()
    syst = meso.ArrayBuilder()
    syst.fill(
        lat,
        lambda pos: np.ones(len(pos), bool),
        ((0, 0), (size - 1, size - 1)),
        onsite=lambda s: 4.0 + disorder[s.tags[:, 0], s.tags[:, 1]],
    )
    syst.add_hoppings(lat.neighbors(), -1.0)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(size))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    ham = fsys.hamiltonian_submatrix(sparse=True)
    return time.perf_counter() - start, ham.nnz


def build_kwant(size):
    lat = kwant.lattice.square(1.0, norbs=1)
    rng = np.random.default_rng(0)
    disorder = rng.uniform(-0.5, 0.5, size=(size, size))
    start = time.perf_counter()
    syst = kwant.Builder()
    for x in range(size):
        for y in range(size):
            syst[lat(x, y)] = 4.0 + disorder[x, y]
    syst[lat.neighbors()] = -1.0
    lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(size))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    ham = fsys.hamiltonian_submatrix(sparse=True)
    return time.perf_counter() - start, ham.nnz


def disordered_wire(module, width=40, length=200, seed=1):
    lat = module.lattice.square(1.0, norbs=1)
    disorder = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(length, width))

    def onsite(site):
        return 4.0 + disorder[site.tag[0], site.tag[1]]

    syst = module.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = module.Builder(module.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def time_smatrix(module, fsys, energies):
    module.smatrix(fsys, energies[0])  # warm-up
    start = time.perf_counter()
    values = [module.smatrix(fsys, e).transmission(1, 0) for e in energies]
    return (time.perf_counter() - start) / len(energies), np.array(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="side of the square lattice")
    parser.add_argument(
        "--kwant-size",
        type=int,
        default=None,
        help="side for Kwant's build (default: same as --size)",
    )
    parser.add_argument("--energies", type=int, default=8)
    args = parser.parse_args()
    kwant_size = args.kwant_size or args.size

    print(f"1. build + finalize + Hamiltonian of a {args.size} x {args.size} lattice with 2 leads")
    ours, nnz = build_ours(args.size)
    print(f"   mesoscopic ArrayBuilder: {ours:8.2f} s  ({nnz} non-zeros)")
    if kwant is not None:
        theirs, _ = build_kwant(kwant_size)
        scale = (args.size / kwant_size) ** 2
        note = (
            ""
            if kwant_size == args.size
            else f" (measured at {kwant_size}^2, scaled x{scale:.1f})"
        )
        print(f"   Kwant Builder:           {theirs * scale:8.2f} s{note}")
        print(f"   ratio Kwant / ours:      {theirs * scale / ours:8.1f}x")
    else:
        print("   Kwant not importable: no reference timing")

    energies = np.linspace(0.1, 1.5, args.energies)
    print(f"2. S-matrix per energy, 40 x 200 disordered wire, {len(energies)} energies")
    fsys = disordered_wire(meso)
    ours_t, ours_T = time_smatrix(meso, fsys, energies)
    print(f"   mesoscopic sparse solver: {1e3 * ours_t:8.1f} ms per energy")
    if kwant is not None:
        kfsys = disordered_wire(kwant)
        theirs_t, theirs_T = time_smatrix(kwant, kfsys, energies)
        print(f"   Kwant (MUMPS):            {1e3 * theirs_t:8.1f} ms per energy")
        print(f"   ratio Kwant / ours:       {theirs_t / ours_t:8.1f}x")
        print(f"   max |T_ours - T_kwant|:   {np.max(np.abs(ours_T - theirs_T)):.2e}")


if __name__ == "__main__":
    main()
