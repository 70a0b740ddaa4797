"""Hamiltonians from Kwant-style value functions at scale: column calls, site by site, Kwant.

An ``--size`` x ``--size`` square lattice (default 600: 360,000 sites, 718,800 hoppings)
with an onsite function of the position (a smooth gate potential) and a Peierls hopping
function, both written for one site as in any Kwant script. It times the evaluation of
the sparse Hamiltonian at new parameter values (so every value function runs):

(a) ours, the value functions called once per group of sites with arrays of coordinates
    (their code is arithmetic on ``site.pos`` and the parameters; a sample of ordinary
    calls checks the result);
(b) ours site by site (``MESOSCOPIC_VECTORIZE=0``, what (a) falls back to);
(c) with ``--kwant-python PATH``: Kwant 1.5's ``hamiltonian_submatrix(sparse=True)`` on
    the same system, in a subprocess running that interpreter (this file does not import
    Kwant).

It prints seconds per evaluation (the least of ``--repeat``, each at new parameters), the
ratios, and the largest difference between (a) and (b).

Usage::

    python benchmarks/bench_value_functions.py [--size 600] [--repeat 2]
                                               [--kwant-python /path/to/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SYSTEM = r"""
import numpy as np


def build(kw, size):
    lat = kw.lattice.square(1.0, norbs=1)

    def onsite(site, gate, width):
        x, y = site.pos
        return 4.0 + gate * np.exp(-((x - size / 2) ** 2 + (y - size / 2) ** 2) / width**2)

    def hopping(site1, site2, phi):
        (x1, y1), (x2, y2) = site1.pos, site2.pos
        return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

    syst = kw.Builder()
    syst[(lat(x, y) for x in range(size) for y in range(size))] = onsite
    syst[lat.neighbors()] = hopping
    return syst.finalized()


def params(k, size):
    return dict(gate=0.1 + 0.01 * k, width=size / 4, phi=0.001 * (k + 1))
"""

KWANT_SCRIPT = (
    SYSTEM
    + r"""
import json, sys, time
import kwant

size, repeat = json.loads(sys.argv[1])
fsys = build(kwant, size)
best = float("inf")
for k in range(repeat):
    start = time.perf_counter()
    fsys.hamiltonian_submatrix(params=params(k, size), sparse=True)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "version": kwant.__version__}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--kwant-python", default=None, help="a Python that imports Kwant")
    args = parser.parse_args()

    import mesoscopic as meso

    namespace: dict = {}
    exec(SYSTEM, namespace)
    build, params = namespace["build"], namespace["params"]
    fsys = build(meso, args.size)
    print(
        f"{args.size} x {args.size} square lattice, {len(fsys.pos)} sites: Hamiltonian from an "
        "onsite and a hopping value function, at new parameters each time"
    )
    results = {}
    matrices = {}
    for label, setting in (("columns", "1"), ("site by site", "0")):
        os.environ["MESOSCOPIC_VECTORIZE"] = setting
        best = float("inf")
        for k in range(args.repeat):
            start = time.perf_counter()
            # Parameters not used before in this run: every value function runs.
            offset = 0 if setting == "1" else args.repeat
            matrices[label] = fsys.hamiltonian_submatrix(
                params=params(k + offset, args.size), sparse=True
            )
            best = min(best, time.perf_counter() - start)
        results[label] = best
    os.environ.pop("MESOSCOPIC_VECTORIZE", None)
    check = {}
    for setting in ("1", "0"):
        os.environ["MESOSCOPIC_VECTORIZE"] = setting
        check[setting] = fsys.hamiltonian_submatrix(params=params(99, args.size), sparse=True)
    os.environ.pop("MESOSCOPIC_VECTORIZE", None)
    difference = abs(check["1"] - check["0"]).max()
    print(f"  (a) ours, column calls      {results['columns']:8.3f} s")
    print(f"  (b) ours, site by site      {results['site by site']:8.3f} s")
    print(f"  (b) / (a) = {results['site by site'] / results['columns']:.1f}")
    print(f"  largest difference (a) - (b): {difference:.1e}")
    if args.kwant_python:
        out = subprocess.run(
            [args.kwant_python, "-c", KWANT_SCRIPT, json.dumps([args.size, args.repeat])],
            capture_output=True,
            text=True,
            check=True,
        )
        kwant = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  (c) Kwant {kwant['version']}             {kwant['seconds']:8.3f} s")
        print(
            f"  Kwant / (a) = {kwant['seconds'] / results['columns']:.1f}, "
            f"Kwant / (b) = {kwant['seconds'] / results['site by site']:.1f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
