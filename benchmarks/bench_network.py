"""Benchmark of mesoscopic.network: a 50-terminal Büttiker circuit at 1,000 energies.

Two voltage-biased terminals and 48 floating probes, solved for all energies in one batched
call, against a reference Python loop calling ``numpy.linalg.solve`` once per energy. Then a
batch of four-terminal resistances, and a self-consistent energy-resolved probe problem.

Run as ``python benchmarks/bench_network.py``. Prints times, speed-up ratios and the largest
difference from the reference; makes no assertion on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mesoscopic import network

N_TERMINALS = 50
N_ENERGIES = 1000
REPEATS = 5


def best_time(function: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """Shortest wall time of `repeats` calls, and the result of the last one."""
    best = np.inf
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def random_network(n_energies: int, n_terminals: int, seed: int = 0) -> np.ndarray:
    """Symmetric, hence current-conserving, random transmissions for every energy."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.0, 1.0, size=(n_energies, n_terminals, n_terminals))
    return 0.5 * (raw + np.swapaxes(raw, -1, -2))


def reference_voltages(G: np.ndarray, bias: float) -> np.ndarray:
    """Terminal 0 at `bias`, terminal 1 grounded, the rest floating: one solve per energy."""
    n = G.shape[-1]
    out = np.zeros((G.shape[0], n))
    for k in range(G.shape[0]):
        reduced = G[k, 2:, 2:]
        rhs = -G[k, 2:, 0] * bias
        out[k, 0] = bias
        out[k, 2:] = np.linalg.solve(reduced, rhs)
    return out


def reference_four_terminal(G: np.ndarray, current: tuple[int, int], voltage: tuple[int, int]):
    i, j = current
    k, m = voltage
    keep = [t for t in range(G.shape[-1]) if t != j]
    out = np.empty(G.shape[0])
    for e in range(G.shape[0]):
        rhs = np.zeros(len(keep))
        rhs[keep.index(i)] = 1.0
        v = np.zeros(G.shape[-1])
        v[keep] = np.linalg.solve(G[e][np.ix_(keep, keep)], rhs)
        out[e] = v[k] - v[m]
    return out


def main() -> None:
    T = random_network(N_ENERGIES, N_TERMINALS)
    G = network.conductance_matrix(T)
    print(f"{N_TERMINALS} terminals x {N_ENERGIES} energies (best of {REPEATS})")

    t_batched, solution = best_time(lambda: network.solve(G, voltages={0: 1.0, 1: 0.0}))
    t_loop, expected = best_time(lambda: reference_voltages(G, 1.0))
    difference = np.max(np.abs(solution.voltages - expected))
    print(
        f"solve, 2 biased + 48 floating : {t_batched * 1e3:8.2f} ms   loop of numpy.linalg.solve "
        f"{t_loop * 1e3:8.2f} ms   speed-up {t_loop / t_batched:6.1f}x   max |dV| {difference:.1e}"
    )

    pairs = {"current": (0, 25), "voltage": (10, 40)}
    t_batched, resistance = best_time(lambda: network.four_terminal_resistance(G, **pairs))
    t_loop, expected = best_time(lambda: reference_four_terminal(G, **pairs))
    difference = np.max(np.abs(resistance - expected))
    print(
        f"four_terminal_resistance      : {t_batched * 1e3:8.2f} ms   loop of numpy.linalg.solve "
        f"{t_loop * 1e3:8.2f} ms   speed-up {t_loop / t_batched:6.1f}x   max |dR| {difference:.1e}"
    )

    t_eliminate, _ = best_time(lambda: network.eliminate_probes(T, range(2, N_TERMINALS)))
    print(f"eliminate_probes, 48 probes   : {t_eliminate * 1e3:8.2f} ms")

    energies = np.linspace(-1.5, 1.5, N_ENERGIES)
    T_small = (
        random_network(N_ENERGIES, 6, seed=1) * (1 + 0.5 * np.cos(3 * energies))[:, None, None]
    )
    kinds = {2: "voltage", 3: "thermal", 4: "dephasing", 5: "voltage"}

    def probes() -> network.ProbeSolution:
        return network.solve_probes(
            energies,
            T_small,
            mu={0: 0.2, 1: -0.2},
            kT={0: 0.05, 1: 0.05, 2: 0.05, 5: 0.05},
            probes=kinds,
        )

    t_probes, probe_solution = best_time(probes)
    print(
        f"solve_probes, 6 terminals     : {t_probes * 1e3:8.2f} ms   "
        f"({probe_solution.iterations} Newton iterations, max residual "
        f"{probe_solution.max_residual:.1e}, sum of charge currents "
        f"{probe_solution.charge_current.sum():.1e})"
    )


if __name__ == "__main__":
    main()
