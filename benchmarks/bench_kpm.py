"""Kernel polynomial method benchmark: our `mesoscopic.kpm` against Kwant's `kwant.kpm`.

Both sides get the same sparse Hamiltonian (built here with NumPy/SciPy only) and the same
seed, so they draw the same random vectors and must give the same densities; the benchmark
prints both timings, the ratio (larger = we are faster) and the largest difference.

1. Density of states of an L x L disordered square lattice (hopping -1, onsite disorder
   uniform in [-W/2, W/2]), ``num_vectors`` random vectors, ``num_moments`` moments, spectral
   bounds given (so the timing is the Chebyshev expansion, not the Lanczos bound search).
   Kwant applies H to one vector at a time; we propagate the block of vectors with one
   sparse-times-dense product per step.
2. Kubo-Bastin sigma_xy (``conductivity``) of a smaller lattice in a magnetic field.

The floor: the same sparse products done bare with SciPy's kernel (``csr_matvecs``, the
product both packages rest on) and, for the conductivity, the moment matrix as one BLAS
product: no implementation built on these kernels can be faster, so ``Kwant / floor`` is the
largest ratio this machine allows. The density of states needs ``moments / 2`` products of
the real 2 H with the ``(n, 2 vectors)`` real view of the block; the conductivity ``2 moments``
products of the complex H and ``moments`` of the velocity with the ``(n, vectors)`` block.

Our side uses the fused Chebyshev kernel (``mesoscopic._kpm_kernels``, numba: ``pip install
mesoscopic[fast]``) for the density of states of a real Hamiltonian when numba is importable:
one pass over the rows per step (or two steps) that also sums the overlaps of the moments,
where SciPy's kernel takes a pass per product and NumPy two more for the overlaps.
``--kernel scipy`` times the SciPy path instead (as without numba). For the conductivity,
with numba, each block of vectors gets its whole Chebyshev series from one compiled call and
its moment matrix from NumPy's product, both without the interpreter lock, so the blocks run
in threads on the cores available (the floor below is one core's).

Kwant runs in this interpreter when importable, or in the one given by ``--kwant-python``
(a subprocess that runs this file with ``--kwant-json``). Each calculation runs once
untimed first (numba's compiled code is loaded from its cache, or compiled, there; Kwant
gets the same warm-up); each timing is then the least of ``--repeat`` runs (wall and CPU
separately), the one least disturbed by other work.
``--blas-threads 1`` pins both sides to one BLAS thread: Kwant's vector products call BLAS,
whose idle threads spin and can double its CPU time on a busy machine, so the CPU ratio is
only stable with it.

Usage: python benchmarks/bench_kpm.py [--size 300] [--vectors 10] [--moments 200]
                                      [--hall-size 40] [--repeat 3] [--blas-threads 1]
                                      [--kernel fused|scipy]
                                      [--kwant-python /path/to/python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

ORIGINAL_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def lattice(size: int, disorder: float, flux: float = 0.0, seed: int = 1):
    """Hamiltonian (CSR) and positions of a size x size square lattice, open boundaries."""
    n = size * size
    x, y = np.divmod(np.arange(n), size)
    rows, cols, values = [], [], []
    for step_x, step_y in [(1, 0), (0, 1)]:
        keep = (x + step_x < size) & (y + step_y < size)
        source = np.flatnonzero(keep)
        target = (x[keep] + step_x) * size + y[keep] + step_y
        hop = -np.exp(2j * np.pi * flux * x[keep]) if step_y else -np.ones(len(source), complex)
        rows += [target, source]
        cols += [source, target]
        values += [hop, hop.conj()]
    onsite = disorder * (np.random.default_rng(seed).random(n) - 0.5)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values.append(onsite.astype(complex))
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    positions = np.column_stack([x, y]).astype(float)
    bound = 4.0 + disorder / 2 + 0.01
    return matrix, positions, (-bound, bound)


def best_of(repeat: int, calculation):
    """Run `calculation` once untimed, then `repeat` times: its last result, the least wall
    and CPU seconds.

    The least time of a few runs is the one least disturbed by other work on the machine
    (as timeit reports); wall and CPU minima are taken separately.
    """
    calculation()  # warm-up, untimed: caches, numba's compiled code
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = calculation()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return result, min(walls), min(cpus)


def timings(kpm, args: dict) -> dict:
    """Time the two calculations with the given kpm module (ours or Kwant's)."""
    matrix, _, bounds = lattice(args["size"], args["disorder"])
    repeat = args.get("repeat", 1)
    rho, dos_seconds, dos_cpu = best_of(
        repeat,
        lambda: kpm.SpectralDensity(
            matrix,
            num_vectors=args["vectors"],
            num_moments=args["moments"],
            bounds=bounds,
            rng=0,
        ),
    )
    hall, positions, hall_bounds = lattice(args["hall_size"], args["disorder"], flux=0.05)

    def hall_conductivity():
        sigma = kpm.conductivity(
            hall,
            alpha="x",
            beta="y",
            positions=positions,
            num_vectors=args["hall_vectors"],
            num_moments=args["hall_moments"],
            bounds=hall_bounds,
            rng=0,
        )
        return sigma(mu=-3.0, temperature=0.05)

    value, hall_seconds, hall_cpu = best_of(repeat, hall_conductivity)
    return {
        "dos_seconds": dos_seconds,
        "dos_cpu": dos_cpu,
        "hall_cpu": hall_cpu,
        "densities": np.real(rho.densities).tolist(),
        "hall_seconds": hall_seconds,
        "sigma_xy": [float(np.real(value)), float(np.imag(value))],
    }


def floor_timings(args: dict) -> dict:
    """CPU seconds of the bare kernels the two calculations need (see the module notes)."""
    from scipy.linalg.blas import zgemm
    from scipy.sparse._sparsetools import csr_matvecs

    def products(matrix, block, count):
        matrix = sp.csr_matrix(matrix)
        matrix.sort_indices()
        out = np.zeros_like(block)
        n, width = block.shape
        for _ in range(count):
            csr_matvecs(n, n, width, matrix.indptr, matrix.indices, matrix.data,
                        block.ravel(), out.ravel())  # fmt: skip

    repeat = args.get("repeat", 1)
    matrix, _, _ = lattice(args["size"], args["disorder"])
    real_block = np.random.default_rng(0).random((matrix.shape[0], 2 * args["vectors"]))
    _, _, dos = best_of(repeat, lambda: products(matrix.real, real_block, args["moments"] // 2))
    hall, positions, _ = lattice(args["hall_size"], args["disorder"], flux=0.05)
    n, k, moments = hall.shape[0], args["hall_vectors"], args["hall_moments"]
    block = np.exp(2j * np.pi * np.random.default_rng(0).random((n, k)))
    coo = hall.tocoo()
    along = positions[coo.col, 1] != positions[coo.row, 1]
    velocity = sp.csr_matrix((coo.data[along], (coo.row[along], coo.col[along])), shape=hall.shape)
    stacked = np.random.default_rng(1).random((moments, n * k)) + 0j

    def hall_kernels():
        products(hall, block, 2 * moments)
        products(velocity, block, moments)
        zgemm(1.0, stacked.T, stacked.T, trans_a=2)

    _, _, hall_cpu = best_of(repeat, hall_kernels)
    return {"dos_cpu": dos, "hall_cpu": hall_cpu}


def blas_threads(count: int | None):
    """A context pinning this process's BLAS threads to `count` (None: unchanged)."""
    if count is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=count, user_api="blas")


def kwant_timings(args: dict, python: str | None) -> dict | None:
    try:
        import kwant
    except ImportError:
        if python is None:
            return None
        env = dict(ORIGINAL_ENV)
        if args.get("blas_threads") is not None:
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = str(args["blas_threads"])
        out = subprocess.run(
            [python, __file__, "--kwant-json", json.dumps(args)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    with blas_threads(args.get("blas_threads")):
        result = timings(kwant.kpm, args)
    result["version"] = kwant.__version__
    return result


def our_timings(args: dict) -> dict:
    try:
        from mesoscopic import kpm
    except ImportError:  # running from a checkout without installing
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
        from mesoscopic import kpm
    kpm._FUSED_KERNEL = args.get("kernel", "fused") == "fused"
    kernels = kpm._fused_kernels()
    with blas_threads(args.get("blas_threads")):
        result = timings(kpm, args)
        result["floor"] = floor_timings(args)
    result["kernel"] = (
        "SciPy's (csr_matvecs) and NumPy overlaps"
        if kernels is None
        else f"fused (numba {kernels.numba.__version__})"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--disorder", type=float, default=1.0)
    parser.add_argument("--vectors", type=int, default=10)
    parser.add_argument("--moments", type=int, default=200)
    parser.add_argument("--hall-size", type=int, default=40)
    parser.add_argument("--hall-vectors", type=int, default=4)
    parser.add_argument("--hall-moments", type=int, default=100)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per timing; the least time is reported"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="BLAS threads of both sides",
    )
    parser.add_argument(
        "--kernel",
        choices=["fused", "scipy"],
        default="fused",
        help="our density-of-states kernel: fused (numba, when installed) or SciPy's",
    )
    parser.add_argument("--kwant-python", default=None, help="interpreter with Kwant installed")
    parser.add_argument("--kwant-json", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.kwant_json is not None:  # the Kwant side, in Kwant's interpreter
        result = kwant_timings(json.loads(options.kwant_json), None)
        print(json.dumps(result))
        return

    args = {
        "size": options.size,
        "disorder": options.disorder,
        "vectors": options.vectors,
        "moments": options.moments,
        "hall_size": options.hall_size,
        "hall_vectors": options.hall_vectors,
        "hall_moments": options.hall_moments,
        "repeat": options.repeat,
        "blas_threads": options.blas_threads,
        "kernel": options.kernel,
    }
    ours = our_timings(args)
    theirs = kwant_timings(args, options.kwant_python)
    n = options.size**2
    print(
        f"density of states: {options.size} x {options.size} lattice ({n} orbitals), "
        f"{options.vectors} vectors, {options.moments} moments"
    )
    print(
        f"  mesoscopic  {ours['dos_seconds']:8.2f} s wall {ours['dos_cpu']:8.2f} s cpu   "
        f"kernel: {ours['kernel']}"
    )
    hall_n = options.hall_size**2
    hall_line = (
        f"Hall conductivity: {options.hall_size} x {options.hall_size} lattice ({hall_n} "
        f"orbitals), {options.hall_vectors} vectors, {options.hall_moments} moments"
    )
    if theirs is None:
        print(hall_line)
        print(f"  mesoscopic  {ours['hall_seconds']:8.3f} s wall {ours['hall_cpu']:8.3f} s cpu")
        print("Kwant is not importable here (and no --kwant-python): no comparison")
        return
    ratio = theirs["dos_seconds"] / ours["dos_seconds"]
    ours_rho, their_rho = np.array(ours["densities"]), np.array(theirs["densities"])
    difference = np.max(np.abs(ours_rho - their_rho)) / np.max(np.abs(their_rho))
    print(
        f"  Kwant {theirs['version']}  {theirs['dos_seconds']:8.2f} s wall "
        f"{theirs['dos_cpu']:8.2f} s cpu"
    )
    print(
        f"  ratio (Kwant / ours) {ratio:.1f} wall, "
        f"{theirs['dos_cpu'] / ours['dos_cpu']:.1f} cpu; "
        f"largest density difference {difference:.1e}"
    )
    floor = ours["floor"]
    print(
        f"  floor (bare kernels) {floor['dos_cpu']:.2f} s cpu: Kwant / floor "
        f"{theirs['dos_cpu'] / floor['dos_cpu']:.1f}, ours / floor "
        f"{ours['dos_cpu'] / floor['dos_cpu']:.2f}"
    )
    print(hall_line)
    print(
        f"  mesoscopic  {ours['hall_seconds']:8.3f} s wall {ours['hall_cpu']:8.3f} s cpu   "
        f"sigma_xy = {ours['sigma_xy'][0]:.6g}"
    )
    print(
        f"  Kwant {theirs['version']}  {theirs['hall_seconds']:8.3f} s wall "
        f"{theirs['hall_cpu']:8.3f} s cpu   sigma_xy = {theirs['sigma_xy'][0]:.6g}"
    )
    print(
        f"  ratio (Kwant / ours) {theirs['hall_seconds'] / ours['hall_seconds']:.1f} wall, "
        f"{theirs['hall_cpu'] / ours['hall_cpu']:.1f} cpu"
    )
    print(
        f"  floor (bare kernels) {floor['hall_cpu']:.3f} s cpu: Kwant / floor "
        f"{theirs['hall_cpu'] / floor['hall_cpu']:.1f}, ours / floor "
        f"{ours['hall_cpu'] / floor['hall_cpu']:.2f}"
    )


if __name__ == "__main__":
    main()
