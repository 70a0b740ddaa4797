"""Sweep throughput: Dask LocalCluster with 1 vs 2 workers, and serial vs local processes.

The sweep is CPU-bound and embarrassingly parallel: at every (energy, seed) point the
observable builds a disordered square-lattice wire (onsite 4t + uniform disorder of
width W, seeded per point) and computes its S matrix with the sparse solver, about
50-100 ms per point on one core. Printed: points per second of each run and the
speed-ups Dask 2 / Dask 1 (target >= 1.7 on 2 free cores) and processes / serial.
Every run must give the same dataset; the script checks that. A control sweep whose
observable sleeps instead of computing shows the executors' own overhead, which
other programs competing for the CPU cannot hide.

BLAS is pinned to one thread per process so that each worker uses one core; Dask
workers start before the timing and are warmed up (imports done), so the numbers
measure the sweep, not the cluster start. The configurations compared take turns,
best of --repeat rounds, so that other programs' load affects them alike.

Usage: python benchmarks/bench_sweep.py [--energies 8] [--seeds 12] [--width 12]
       [--length 40] [--workers 2] [--repeat 2]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402 - BLAS threads are fixed before NumPy loads
import contextlib  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

try:
    import mesoscopic as meso
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    import mesoscopic as meso
from mesoscopic.sweep import Observable, run_sweep  # noqa: E402


def wire_transmission(
    energy: float, seed: int, *, width: int, length: int, disorder: float
) -> dict[str, float]:
    """Transmission and unitarity error of one disordered wire at one energy."""
    lat = meso.lattice.square(1.0, norbs=1)
    potential = np.random.default_rng(seed).uniform(-disorder / 2, disorder / 2, (length, width))
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = lambda site: (
        4.0 + potential[site.tag[0], site.tag[1]]
    )
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    smatrix = meso.smatrix(syst.finalized(), energy)
    return {
        "transmission": smatrix.transmission(1, 0),
        "unitarity_error": smatrix.check_unitarity(),
    }


OBSERVABLE = Observable(wire_transmission, outputs={"transmission": "1", "unitarity_error": "1"})


def idle_point(energy: float, seed: int, *, seconds: float) -> float:
    """Waits without using the CPU: isolates the executors' own overhead."""
    time.sleep(seconds)
    return energy + seed


def best_times(
    observable: object, runs: dict[str, dict[str, object]], n_points: int, repeat: int
) -> tuple[dict[str, float], dict[str, xr.Dataset]]:
    """Best wall time of each configuration over `repeat` rounds.

    The configurations take turns within every round, so that load from other
    programs that comes and goes affects them alike; the best time of each is the
    one least disturbed.
    """
    times: dict[str, list[float]] = {label: [] for label in runs}
    results: dict[str, xr.Dataset] = {}
    for _ in range(repeat):
        for label, options in runs.items():
            start = time.perf_counter()
            results[label] = run_sweep(observable, progress=False, **options)  # type: ignore[arg-type]
            times[label].append(time.perf_counter() - start)
    best = {label: min(values) for label, values in times.items()}
    for label, elapsed in best.items():
        print(f"   {label:<28} {elapsed:7.2f} s  {n_points / elapsed:7.2f} points/s")
    return best, results


def largest_difference(a: xr.Dataset, b: xr.Dataset) -> float:
    """Largest |a - b| over all variables (0.0 when the runs agree bit for bit)."""
    xr.testing.assert_equal(a[[]], b[[]])  # same grid
    return max(float(np.abs(a[name] - b[name]).max()) for name in a.data_vars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energies", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--width", type=int, default=12)
    parser.add_argument("--length", type=int, default=40)
    parser.add_argument("--disorder", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: the library's")
    args = parser.parse_args()

    grid = {"energy": np.linspace(0.2, 1.6, args.energies), "seed": np.arange(args.seeds)}
    fixed = {"width": args.width, "length": args.length, "disorder": args.disorder}
    n_points = args.energies * args.seeds
    common = {"grid": grid, "fixed_params": fixed, "chunk_size": args.chunk_size}

    wire_transmission(0.5, 0, **fixed)  # imports and caches out of the timing
    timings = []
    for seed in range(5):
        start = time.perf_counter()
        wire_transmission(0.5, seed, **fixed)
        timings.append(time.perf_counter() - start)
    per_point = min(timings)
    print(
        f"sweep of {n_points} points ({args.energies} energies x {args.seeds} seeds), "
        f"{args.width} x {args.length} disordered wire, {1e3 * per_point:.0f} ms per point, "
        f"{os.cpu_count()} CPUs"
    )

    try:
        import distributed
    except ImportError:
        distributed = None
        print("1. Dask distributed not installed: pip install 'mesoscopic[dask]'")
    results: list[xr.Dataset] = []
    if distributed is not None:
        print("1. Dask LocalCluster (one thread per worker)")
        with contextlib.ExitStack() as stack:
            clients = {}
            for workers in (1, args.workers):
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers, threads_per_worker=1, dashboard_address="127.0.0.1:0"
                    )
                )
                clients[workers] = stack.enter_context(distributed.Client(cluster))
                clients[workers].run(wire_transmission, 0.5, 0, **fixed)  # warm every worker
            best, on_dask = best_times(
                OBSERVABLE,
                {f"{n} worker(s)": {"client": clients[n], **common} for n in clients},
                n_points,
                args.repeat,
            )
            ratio = best["1 worker(s)"] / best[f"{args.workers} worker(s)"]
            print(f"   speed-up {args.workers} / 1 workers: {ratio:.2f}x")
            results += on_dask.values()

            print(
                f"   control: the same grid with {1e3 * per_point:.0f} ms of sleep per point "
                "(no CPU used, so other load on the machine cannot slow it)"
            )
            idle = {**common, "fixed_params": {"seconds": per_point}}
            best, _ = best_times(
                idle_point,
                {f"{n} worker(s), sleeping": {"client": clients[n], **idle} for n in clients},
                n_points,
                1,
            )
            ratio = best["1 worker(s), sleeping"] / best[f"{args.workers} worker(s), sleeping"]
            print(f"   speed-up {args.workers} / 1 workers: {ratio:.2f}x")

    print("2. serial vs local processes")
    labels = ("serial", f"processes, {args.workers} workers")
    best, local = best_times(
        OBSERVABLE,
        {
            labels[0]: common,
            labels[1]: {"executor": "processes", "workers": args.workers, **common},
        },
        n_points,
        args.repeat,
    )
    print(f"   speed-up processes / serial: {best[labels[0]] / best[labels[1]]:.2f}x")
    serial = local[labels[0]]
    results += local.values()

    difference = max(largest_difference(r, serial) for r in results)
    worst = float(serial["unitarity_error"].max())
    print(f"largest difference between runs: {difference:.1e}; max unitarity error {worst:.1e}")
    if difference != 0.0:
        raise SystemExit("runs disagree")


if __name__ == "__main__":
    main()
