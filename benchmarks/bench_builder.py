"""Kwant-style Builder at scale: build + finalize, our Builder against Kwant's, same scripts.

Each case is one script written against Kwant's API (``kwant.Builder``, a generator of
sites or ``lat.shape``, ``lat.neighbors()``, ``attach_lead``, ``finalized()``); it runs
unchanged on both packages, each in a fresh interpreter, so that the peak memory of one
case is not hidden by an earlier one. Reported per case and package:

- time: CPU time (and wall time) of build + finalize, the least of ``--repeat`` runs;
- memory: peak resident memory above the interpreter with the package imported, once the
  Builder is built (``build MB``: the Builder alone) and in all (``MB``: with the
  finalized system);
- the number of sites, which must agree.

Cases: a 300 x 300 square lattice and a honeycomb disk of radius 100 (both with two
leads), the same disk made by ``Builder.fill`` from a template, the 300 x 300 lattice set
site by site in a loop (Kwant's tutorial style), a 1000 x 1000 square lattice and a honeycomb
disk of radius 300 (two leads).

Usage: python benchmarks/bench_builder.py [--kwant-python /path/to/python]
                                          [--repeat 3] [--cases square300,disk100,...]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

SCRIPTS = {
    "square300": """
L = 300
lat = kwant.lattice.square(norbs=1)
syst = kwant.Builder()
syst[(lat(x, y) for x in range(L) for y in range(L))] = 4
syst[lat.neighbors()] = -1
lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
lead[(lat(0, y) for y in range(L))] = 4
lead[lat.neighbors()] = -1
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
fsyst = syst.finalized()
""",
    "disk100": """
R = 100
lat = kwant.lattice.honeycomb(norbs=1)
def disk(pos):
    x, y = pos
    return x**2 + y**2 < R**2
def ribbon(pos):
    return abs(pos[1]) < 0.4 * R
syst = kwant.Builder()
syst[lat.shape(disk, (0, 0))] = 0
syst[lat.neighbors()] = -1
lead = kwant.Builder(kwant.TranslationalSymmetry(lat.vec((-1, 0))))
lead[lat.shape(ribbon, (0, 0))] = 0
lead[lat.neighbors()] = -1
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
fsyst = syst.finalized()
""",
}
SCRIPTS["fill100"] = """
R = 100
lat = kwant.lattice.honeycomb(norbs=1)
template = kwant.Builder(kwant.TranslationalSymmetry(*lat.prim_vecs))
template[lat.a(0, 0)] = 0
template[lat.b(0, 0)] = 0
template[lat.neighbors()] = -1
def disk(site):
    x, y = site.pos
    return x**2 + y**2 < R**2
syst = kwant.Builder()
syst.fill(template, disk, (0, 0))
lead = kwant.Builder(kwant.TranslationalSymmetry(lat.vec((-1, 0))))
lead.fill(template, lambda site: abs(site.pos[1]) < 0.4 * R, (0, 0))
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
fsyst = syst.finalized()
"""
SCRIPTS["loop300"] = """
L = 300
lat = kwant.lattice.square(norbs=1)
syst = kwant.Builder()
for i in range(L):
    for j in range(L):
        syst[lat(i, j)] = 4
        if j > 0:
            syst[lat(i, j), lat(i, j - 1)] = -1
        if i > 0:
            syst[lat(i, j), lat(i - 1, j)] = -1
lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
for j in range(L):
    lead[lat(0, j)] = 4
    if j > 0:
        lead[lat(0, j), lat(0, j - 1)] = -1
    lead[lat(1, j), lat(0, j)] = -1
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
fsyst = syst.finalized()
"""
SCRIPTS["square1000"] = SCRIPTS["square300"].replace("L = 300", "L = 1000")
SCRIPTS["disk300"] = SCRIPTS["disk100"].replace("R = 100", "R = 300")

RUNNER = """
import json, resource, sys, time
import {module} as kwant
import numpy
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
build, finalize = {script!r}.rsplit("fsyst = ", 1)
before = peak()
cpu, wall = time.process_time(), time.perf_counter()
exec(compile(build, "case", "exec"))
built = peak()
exec(compile("fsyst = " + finalize, "case", "exec"))
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({{"cpu": cpu, "wall": wall, "mem_mb": peak() - before,
                  "build_mb": built - before, "sites": len(fsyst.sites)}}))
"""


def run_case(python: str, module: str, case: str, env: dict[str, str]) -> dict[str, float]:
    code = RUNNER.format(module=module, script=SCRIPTS[case])
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode:
        raise RuntimeError(f"{module} {case} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def best_of(python: str, module: str, case: str, env: dict[str, str], repeat: int) -> dict:
    runs = [run_case(python, module, case, env) for _ in range(repeat)]
    return {
        "cpu": min(r["cpu"] for r in runs),
        "wall": min(r["wall"] for r in runs),
        "mem_mb": min(r["mem_mb"] for r in runs),
        "build_mb": min(r["build_mb"] for r in runs),
        "sites": runs[0]["sites"],
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kwant-python", default=None, help="interpreter with Kwant 1.5")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default="square300,disk100,fill100,loop300,square1000,disk300")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in SCRIPTS]
    if unknown:
        parser.error(f"unknown cases {unknown}; valid: {sorted(SCRIPTS)}")
    src = str(pathlib.Path(__file__).resolve().parents[1] / "src")
    ours_env = dict(os.environ, OMP_NUM_THREADS="1")
    ours_env["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    kwant_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    kwant_env["OMP_NUM_THREADS"] = "1"
    results: dict[str, dict[str, dict]] = {}
    header = (
        f"{'case':<11} {'sites':>9} | {'ours cpu':>8} {'wall':>6} {'build MB':>8} {'MB':>5} | "
        f"{'Kwant cpu':>9} {'wall':>6} {'build MB':>8} {'MB':>5} | {'speed-up':>8} {'memory':>7}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        ours = best_of(sys.executable, "mesoscopic", case, ours_env, args.repeat)
        row = f"{case:<11} {ours['sites']:>9} | {ours['cpu']:8.2f} {ours['wall']:6.2f} "
        row += f"{ours['build_mb']:8.0f} {ours['mem_mb']:5.0f} | "
        results[case] = {"ours": ours}
        if args.kwant_python:
            theirs = best_of(args.kwant_python, "kwant", case, kwant_env, args.repeat)
            results[case]["kwant"] = theirs
            if theirs["sites"] != ours["sites"]:
                raise RuntimeError(
                    f"{case}: {ours['sites']} sites here, {theirs['sites']} in Kwant"
                )
            row += f"{theirs['cpu']:9.2f} {theirs['wall']:6.2f} {theirs['build_mb']:8.0f} "
            row += f"{theirs['mem_mb']:5.0f} | "
            row += f"{theirs['cpu'] / ours['cpu']:7.1f}x {ours['mem_mb'] / theirs['mem_mb']:6.2f}x"
        print(row, flush=True)
    print("speed-up: Kwant CPU time / ours; memory: ours / Kwant's (peak RSS above import)")
    return results


if __name__ == "__main__":
    main()
