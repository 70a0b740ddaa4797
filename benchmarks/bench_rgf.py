"""Batched recursive Green's functions against the sparse solver and Kwant 1.5.

Disordered square-lattice wires (onsite 4t + uniform disorder in [-0.5, 0.5] t, hopping
t = 1, two leads of the wire's width), W x L = 40 x 200, 100 x 100, 200 x 200, 20 x 2000 and
400 x 100, with 64 energies in [0.1, 1.5] t. For each wire it prints, in milliseconds per
energy (wall clock, and ``(cpu)``: CPU time summed over all threads and worker processes,
which measures the work done independently of other load on the machine):

* our RGF, all energies in one call of ``mesoscopic.batch.transmission`` (this includes
  evaluating the Hamiltonian, slicing and the lead self-energies);
* our sparse solver, energy by energy on a subsample of the energies;
* Kwant 1.5 (``kwant.smatrix`` per energy on a subsample), when ``import kwant`` works in
  this interpreter, or in the interpreter given by ``--kwant-python``;

the ratios, the agreement of the transmissions, and the rate of the RGF slice loop in GFLOP/s
(an ``n x n`` complex inverse counted as ``8 n^3`` flops, a product as ``8 n m k``) next to
the machine's complex matrix-multiply rate, measured in the same run on a batch of ``n x n``
matrices of the wire's width.

Usage::

    python benchmarks/bench_rgf.py [--quick] [--workers 2] [--blas-threads 1]
                                   [--kwant-python /path/to/python-with-kwant]

``--quick`` runs smaller wires and fewer energies (a smoke test of a few seconds). The
machine's other load changes wall-clock times; the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

# --blas-threads pins the BLAS threads of this process through the environment, read when
# NumPy loads (threadpoolctl, when installed, is used as well). Kwant runs with the
# environment this script was started with.
ORIGINAL_ENV = dict(os.environ)
if "--blas-threads" in sys.argv[:-1]:
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads

import numpy as np  # noqa: E402

try:
    import threadpoolctl  # noqa: F401

    HAS_TPC = True
except ImportError:
    HAS_TPC = False

CASES = [(40, 200), (100, 100), (200, 200), (20, 2000), (400, 100)]
QUICK_CASES = [(20, 100), (40, 40), (10, 400)]
#: Kwant 1.5 + MUMPS on 2 cores, ms per energy, measured on this hardware (issue 5).
KWANT_QUOTED = {
    (40, 200): 118,
    (100, 100): 299,
    (200, 200): 1835,
    (20, 2000): 362,
    (400, 100): 5334,
}


def disorder(width: int, length: int, seed: int = 1) -> np.ndarray:
    """Onsite disorder values in [-0.5, 0.5], shape (length, width)."""
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=(length, width))


# --------------------------------------------------------------------------------------------
# Kwant (imports nothing from mesoscopic, so it can run in another interpreter)
# --------------------------------------------------------------------------------------------


def kwant_timing(width: int, length: int, energies: list[float]) -> dict:
    import kwant

    values = disorder(width, length)
    lat = kwant.lattice.square(1.0, norbs=1)
    syst = kwant.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = 4.0 + values[x, y]
    syst[lat.neighbors()] = -1.0
    lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    kwant.smatrix(fsys, energies[0])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    transmissions = [kwant.smatrix(fsys, e).transmission(1, 0) for e in energies]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "version": kwant.__version__,
        "ms_wall": 1e3 * wall / len(energies),
        "ms_cpu": 1e3 * cpu / len(energies),
        "transmission": transmissions,
    }


def run_kwant(width: int, length: int, energies: list[float], python: str | None) -> dict | None:
    try:
        import kwant  # noqa: F401
    except ImportError:
        if python is None:
            return None
        out = subprocess.run(
            [python, __file__, "--kwant-json", json.dumps([width, length, energies])],
            capture_output=True,
            text=True,
            check=True,
            env=ORIGINAL_ENV,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    return kwant_timing(width, length, energies)


# --------------------------------------------------------------------------------------------
# Ours
# --------------------------------------------------------------------------------------------


def build_ours(meso, width: int, length: int):
    values = disorder(width, length)
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.ArrayBuilder()
    syst.fill(
        lat,
        lambda pos: np.ones(len(pos), bool),
        ((0, 0), (length - 1, width - 1)),
        onsite=lambda s: 4.0 + values[s.tags[:, 0], s.tags[:, 1]],
    )
    syst.add_hoppings(lat.neighbors(), -1.0)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def zgemm_rate(n: int, seconds: float = 0.5) -> float:
    """Complex128 matrix-multiply rate (GFLOP/s) on a batch of n x n matrices."""
    rng = np.random.default_rng(0)
    batch = max(2, min(64, int(2**24 // (n * n))))
    a = rng.normal(size=(batch, n, n)) + 1j * rng.normal(size=(batch, n, n))
    b = rng.normal(size=(batch, n, n)) + 1j * rng.normal(size=(batch, n, n))
    np.matmul(a, b)
    best, start = np.inf, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        np.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 8.0 * batch * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small wires, a smoke run")
    parser.add_argument("--energies", type=int, default=64, help="energies per RGF batch")
    parser.add_argument("--workers", type=int, default=1, help="RGF worker processes")
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="BLAS threads (needs threadpoolctl)"
    )
    parser.add_argument("--kwant-python", default=None, help="interpreter with Kwant installed")
    parser.add_argument("--kwant-energies", type=int, default=4, help="energies timed with Kwant")
    parser.add_argument("--cases", default=None, help="e.g. 40x200,100x100")
    parser.add_argument("--kwant-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kwant_json is not None:
        width, length, energies = json.loads(args.kwant_json)
        print(json.dumps(kwant_timing(width, length, energies)))
        return

    try:
        import mesoscopic as meso
    except ImportError:  # running from a checkout without installing
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
        import mesoscopic as meso
    from mesoscopic.solvers import rgf, sparse
    from mesoscopic.transport import lead_data

    if args.cases:
        cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    else:
        cases = QUICK_CASES if args.quick else CASES
    n_energies = 8 if args.quick else args.energies
    energies = np.linspace(0.1, 1.5, n_energies)
    print(
        f"RGF benchmark: {n_energies} energies in [0.1, 1.5] t; workers={args.workers}, "
        f"blas_threads={args.blas_threads or 'default'}; cpus={os.cpu_count()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'W x L':>10} {'RGF ms/E':>9} {'(cpu)':>7} {'sparse':>8} {'Kwant':>8} "
        f"{'(cpu)':>7} {'quoted':>7} {'K/RGF':>7} {'Kq/RGF':>7} {'sp/RGF':>7} "
        f"{'GF/s':>6} {'zgemm':>6} {'max|dT|':>8}"
    )
    print(header)
    rows = []
    for width, length in cases:
        fsys = build_ours(meso, width, length)
        stats: dict = {}
        kw = dict(workers=args.workers, blas_threads=args.blas_threads if HAS_TPC else None)
        # A warm-up call at one energy outside the list, as Kwant's run has one.
        warm = lead_data(fsys)
        rgf.prepare(fsys.hamiltonian_submatrix(sparse=True), warm).transmission(
            [energies[0] / 2], **kw
        )
        wall, cpu = time.perf_counter(), cpu_seconds()
        ham = fsys.hamiltonian_submatrix(sparse=True)
        leads = lead_data(fsys)
        problem = rgf.prepare(ham, leads)
        t_rgf = problem.transmission(energies, stats=stats, **kw)[:, 1, 0]
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        rgf_ms, rgf_cpu = 1e3 * wall / n_energies, 1e3 * cpu / n_energies
        gflops = stats["flops"] / stats["seconds"] / 1e9

        # Subsamples: every energy for small systems, fewer for big ones.
        count = max(1, min(args.kwant_energies, n_energies))
        sub = np.unique(np.linspace(0, n_energies - 1, count).round().astype(int))
        # The big cases take tens of seconds per energy in the sparse solvers.
        sparse_sub = sub if width * length <= 20000 else sub[:1]
        start = time.perf_counter()
        t_sparse = [
            sparse.scattering_matrix(ham, leads, energies[k]).transmission(1, 0)
            for k in sparse_sub
        ]
        sparse_ms = 1e3 * (time.perf_counter() - start) / len(sparse_sub)
        diff = float(np.max(np.abs(np.array(t_sparse) - t_rgf[sparse_sub])))

        kwant_sub = sub if width * length <= 20000 else sub[[0, -1]]
        kwant = run_kwant(
            width, length, [float(energies[k]) for k in kwant_sub], args.kwant_python
        )
        if kwant is not None:
            diff = max(
                diff, float(np.max(np.abs(np.array(kwant["transmission"]) - t_rgf[kwant_sub])))
            )
        quoted = KWANT_QUOTED.get((width, length))
        rate = zgemm_rate(max(problem.slicing.max_size, 8))
        row = dict(
            case=f"{width}x{length}",
            rgf_ms=rgf_ms,
            rgf_cpu_ms=rgf_cpu,
            sparse_ms=sparse_ms,
            kwant=kwant,
            quoted=quoted,
            gflops=gflops,
            zgemm=rate,
            max_diff=diff,
        )
        rows.append(row)

        def fmt(value, spec="8.1f"):
            return (
                format(value, spec)
                if value is not None
                else " " * (int(spec.split(".")[0]) - 1) + "-"
            )

        k_ms = kwant["ms_wall"] if kwant else None
        k_cpu = kwant["ms_cpu"] if kwant else None
        print(
            f"{row['case']:>10} {rgf_ms:9.1f} {rgf_cpu:7.1f} {sparse_ms:8.1f} "
            f"{fmt(k_ms)} {fmt(k_cpu, '7.1f')} {fmt(quoted, '7.0f')} "
            f"{fmt(k_ms / rgf_ms if k_ms else None, '7.1f')} "
            f"{fmt(quoted / rgf_ms if quoted else None, '7.1f')} "
            f"{sparse_ms / rgf_ms:7.1f} {gflops:6.1f} {rate:6.1f} {diff:8.1e}",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if not any(r["kwant"] for r in rows):
        print(
            "Kwant is not importable here (and no --kwant-python): ratios are against our "
            "sparse solver (sp/RGF) and the quoted Kwant timings (Kq/RGF)"
        )
    print(
        "columns: ms per energy; K/RGF = Kwant in this run / RGF, Kq/RGF = quoted Kwant / RGF, "
        "sp/RGF = our sparse solver / RGF; GF/s = RGF slice loop; zgemm = batched n x n "
        "complex matmul rate; max|dT| = largest difference of T_10 from sparse and Kwant"
    )


if __name__ == "__main__":
    main()
