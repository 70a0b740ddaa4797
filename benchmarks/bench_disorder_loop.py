"""Disorder averages at one energy: ``meso.smatrix`` per realization, one batched call, Kwant.

The system is a ``--width`` x ``--length`` (default 40 x 120) square-lattice wire in a
magnetic field, with Anderson disorder: the onsite energy and the Peierls hopping are Python
value functions (``onsite(site, disorder)``, ``hopping(site1, site2, phi)``), as in a
typical Kwant script. ``--realizations`` disorder configurations (seeded) are solved at one
energy by

(a) ``meso.smatrix(fsys, E, params=...)`` once per realization (the loop a Kwant user
    writes). Unchanged parameters reuse the values of the last evaluation (here the
    hoppings, whose field is fixed); the same loop with the field changed slightly at
    each realization shows the cost when every value function runs;
(b) ``meso.smatrices(fsys, [E], params=[...])``: all realizations in one call (one batched
    RGF sweep; the Hamiltonian structure is shared, only the values differ);
(c) with ``--kwant-python PATH``: Kwant's ``kwant.smatrix`` per realization, on the same
    system and disorder, in a subprocess running that interpreter (this file does not
    import Kwant), with one BLAS thread unless ``--kwant-blas-threads`` says otherwise.

The per-site functions are the same code in both packages; ours are called once per group
of sites with arrays of coordinates (their code is arithmetic on ``site.tag``, ``site.pos``
and the parameters, checked against a sample of ordinary calls; ``MESOSCOPIC_VECTORIZE=0``
times the site-by-site evaluation instead). With ``--vectorize`` our value functions are
written over arrays of sites (``Builder(vectorize=True)``); Kwant 1.5.0 has no vectorized
builder, so its run keeps the per-site functions (the same values).

It prints milliseconds per realization, wall and CPU time, each the least of ``--repeat``
runs (the CPU time is the steadier figure on a shared machine), the ratios, the share of (a)
spent evaluating the value functions (``hamiltonian_submatrix``), and the largest
differences between the roads:
(a) against (b) over the S-matrices, and ours against Kwant's over the transmissions.

Usage::

    python benchmarks/bench_disorder_loop.py [--width 40] [--length 120] [--realizations 20]
                                             [--energy 1.0] [--phi 0.01] [--disorder 2.0]
                                             [--vectorize] [--sparse] [--repeat 3]
                                             [--kwant-python /path/to/python]
                                             [--kwant-blas-threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mesoscopic as meso

# The same system for Kwant, run by the interpreter given with --kwant-python.
KWANT_SCRIPT = r"""
import json, sys, time
import numpy as np
import kwant

config = json.loads(sys.argv[1])
width, length = config["width"], config["length"]
disorders = np.random.default_rng(config["seed"]).uniform(
    -config["disorder"] / 2, config["disorder"] / 2,
    (config["realizations"], length, width))
lat = kwant.lattice.square(norbs=1)

def onsite(site, disorder):
    x, y = site.tag
    return 4.0 + disorder[x, y]

def hopping(site1, site2, phi):
    (x1, y1), (x2, y2) = site1.pos, site2.pos
    return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

syst = kwant.Builder()
syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
syst[lat.neighbors()] = hopping
lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
lead[(lat(0, y) for y in range(width))] = 4.0
lead[lat.neighbors()] = hopping
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
fsys = syst.finalized()
params = dict(disorder=disorders[0], phi=config["phi"])
kwant.smatrix(fsys, config["energy"], params=params)  # warm-up
best_wall = best_cpu = float("inf")
for _ in range(config["repeat"]):
    wall, cpu = time.perf_counter(), time.process_time()
    transmissions = []
    for disorder in disorders:
        values = dict(disorder=disorder, phi=config["phi"])
        s = kwant.smatrix(fsys, config["energy"], params=values)
        transmissions.append(s.transmission(1, 0))
    best_wall = min(best_wall, time.perf_counter() - wall)
    best_cpu = min(best_cpu, time.process_time() - cpu)
wall, cpu = best_wall, best_cpu
print(json.dumps({"wall": wall, "cpu": cpu, "transmissions": transmissions,
                  "version": kwant.__version__}))
"""


def disordered_wire_in_field(width: int, length: int, vectorize: bool = False) -> Any:
    """The finalized wire: onsite ``4 + disorder[x, y]``, Peierls hopping in Landau gauge.

    With ``vectorize``, the value functions take arrays of sites (``Builder(vectorize=True)``,
    as in Kwant 1.5) and return arrays of values.
    """
    lat = meso.lattice.square(norbs=1)

    def onsite(site: Any, disorder: Any) -> Any:
        x, y = site.tag
        return 4.0 + disorder[x, y]

    def hopping(site1: Any, site2: Any, phi: float) -> Any:
        (x1, y1), (x2, y2) = site1.pos, site2.pos
        return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

    def onsites(sites: Any, disorder: Any) -> Any:
        x, y = sites.tags.T
        return 4.0 + disorder[x, y]

    def hoppings(sites1: Any, sites2: Any, phi: float) -> Any:
        (x1, y1), (x2, y2) = sites1.tags.T, sites2.tags.T  # positions = tags on this lattice
        return -np.exp(-1j * phi * (x1 - x2) * (y1 + y2) / 2)

    if vectorize:
        onsite, hopping = onsites, hoppings
    syst = meso.Builder(vectorize=vectorize)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)), vectorize=vectorize)
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def timed(function: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Least wall and CPU seconds of `repeat` calls, and the last result."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=40)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--realizations", type=int, default=20)
    parser.add_argument("--energy", type=float, default=1.0)
    parser.add_argument("--phi", type=float, default=0.01, help="flux per plaquette (2 pi units)")
    parser.add_argument("--disorder", type=float, default=2.0, help="box width of the onsite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="time the least of this many runs")
    parser.add_argument("--sparse", action="store_true", help="also time the sparse solver")
    parser.add_argument(
        "--vectorize",
        action="store_true",
        help="our value functions over arrays of sites (Builder(vectorize=True)); Kwant 1.5.0 "
        "has no vectorized builder and keeps the per-site ones",
    )
    parser.add_argument("--kwant-python", default=None, help="a Python that imports Kwant")
    parser.add_argument(
        "--kwant-blas-threads",
        type=int,
        default=1,
        help="BLAS threads of the Kwant run (default 1, its fastest here; 0: the default)",
    )
    args = parser.parse_args()

    count = args.realizations
    disorders = np.random.default_rng(args.seed).uniform(
        -args.disorder / 2, args.disorder / 2, (count, args.length, args.width)
    )
    elements = [dict(disorder=d, phi=args.phi) for d in disorders]
    fsys = disordered_wire_in_field(args.width, args.length, args.vectorize)
    energy = args.energy
    print(
        f"{args.width} x {args.length} wire, {count} realizations at E = {energy}, "
        f"phi = {args.phi}, disorder {args.disorder}"
        + (", vectorized value functions" if args.vectorize else "")
    )
    meso.smatrix(fsys, energy, params=elements[0])  # warm-up (imports, caches)

    repeat = args.repeat
    wall_a, cpu_a, loop = timed(
        lambda: [meso.smatrix(fsys, energy, params=p) for p in elements], repeat
    )
    wall_h, cpu_h, _ = timed(
        lambda: [fsys.hamiltonian_submatrix(params=p, sparse=True) for p in elements], repeat
    )
    # A field step per realization: no value is reused between realizations (the cost of
    # a sweep where every parameter changes).
    stepped = [dict(p, phi=args.phi * (1 + 1e-9 * (k + 1))) for k, p in enumerate(elements)]
    wall_n, cpu_n, _ = timed(
        lambda: [meso.smatrix(fsys, energy, params=p) for p in stepped], repeat
    )
    wall_nh, cpu_nh, _ = timed(
        lambda: [fsys.hamiltonian_submatrix(params=p, sparse=True) for p in stepped], repeat
    )
    stats: dict[str, Any] = {}
    wall_b, cpu_b, batch = timed(
        lambda: meso.smatrices(fsys, [energy], params=elements, stats=stats), repeat
    )
    difference = max(float(np.max(np.abs(s.data - b[0].data))) for s, b in zip(loop, batch))
    ours = np.array([s.transmission(1, 0) for s in loop])

    def row(name: str, wall: float, cpu: float) -> None:
        print(f"  {name:<44} {1e3 * wall / count:9.2f} ms  {1e3 * cpu / count:9.2f} ms CPU")

    print(f"  {'per realization':<44} {'wall':>12}  {'':>9}")
    row("(a) meso.smatrix per realization", wall_a, cpu_a)
    row("    of which hamiltonian_submatrix", wall_h, cpu_h)
    row("(a) with the field changed each time", wall_n, cpu_n)
    row("    of which hamiltonian_submatrix", wall_nh, cpu_nh)
    row("(b) meso.smatrices, one batched call", wall_b, cpu_b)
    if args.sparse:
        wall_s, cpu_s, _ = timed(
            lambda: [meso.smatrices(fsys, [energy], params=p, solver="sparse") for p in elements]
        )
        row("    sparse solver per realization", wall_s, cpu_s)
    print(
        f"  batched RGF: solver={stats.get('solver')}, sparse fallbacks "
        f"{stats.get('sparse_fallback_energies')}; max |S_a - S_b| = {difference:.2e}"
    )
    print(f"  (a)/(b) = {wall_a / wall_b:.1f} wall, {cpu_a / cpu_b:.1f} CPU")
    if args.kwant_python:
        config = dict(
            width=args.width,
            length=args.length,
            realizations=count,
            energy=energy,
            phi=args.phi,
            disorder=args.disorder,
            seed=args.seed,
            repeat=repeat,
        )
        # Kwant's lead modes are small dense solves that extra BLAS threads slow down on a
        # shared machine (measured: 250 ms per call with the default threads, 110 ms with
        # one), as our RGF pins one thread: Kwant gets the same by default.
        env = dict(os.environ)
        if args.kwant_blas_threads > 0:
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = str(args.kwant_blas_threads)
        done = subprocess.run(
            [args.kwant_python, "-c", KWANT_SCRIPT, json.dumps(config)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            sys.exit(f"the Kwant run failed:\n{done.stderr}")
        kwant = json.loads(done.stdout.strip().splitlines()[-1])
        row(f"(c) kwant.smatrix {kwant['version']} per realization", kwant["wall"], kwant["cpu"])
        agreement = float(np.max(np.abs(ours - np.array(kwant["transmissions"]))))
        print(f"  max |T_ours - T_kwant| = {agreement:.2e}")
        print(
            f"  Kwant / (a) = {kwant['wall'] / wall_a:.2f} wall, {kwant['cpu'] / cpu_a:.2f} CPU;"
            f"  Kwant / (b) = {kwant['wall'] / wall_b:.2f} wall, {kwant['cpu'] / cpu_b:.2f} CPU"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
