"""Benchmark: finite-temperature I-V curve from a sampled transmission.

Case A, the headline: 1,000 bias points on a uniform 10,000-point transmission grid
at kT = 10 grid spacings, computed with :func:`mesoscopic.landauer.current`, against
references measured in the same run:

* a loop of the trapezoid rule over biases on a 16x refined grid, with the
  transmission evaluated exactly there;
* a loop of ``scipy.integrate.quad`` (relative tolerance 1e-12) on the exact
  transmission over a subset of biases, its time extrapolated to all of them; it
  serves as the accuracy reference for everything else;
* a loop of the trapezoid rule on the raw grid. On a uniform grid with kT well
  above the spacing the integrand is smooth and vanishes at both grid ends, so the
  trapezoid rule is spectrally accurate here; it is shown for honesty.

Case B shows where the raw trapezoid rule stops being enough: a non-uniform grid
(spacing varying by a factor 4) at kT equal to its largest spacing.

Every error is printed relative to ``max |I|``. Run as
``python benchmarks/bench_landauer.py``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.integrate

from mesoscopic.landauer import current, fermi_dirac

N_ENERGIES = 10_000
N_BIASES = 1_000
N_QUAD = 25
REFINE = 16
REPEATS = 5


def staircase(energy: np.ndarray) -> np.ndarray:
    """Smooth quantum-point-contact staircase: four saddle-point steps."""
    thresholds = np.array([-0.45, -0.15, 0.15, 0.45])
    width = 0.1
    steps = np.exp(-2.0 * np.pi * (energy[..., None] - thresholds) / width)
    return np.sum(1.0 / (1.0 + steps), axis=-1)


def best_time(function: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Best wall-clock time of `repeats` calls, and the last result."""
    best = np.inf
    result = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def trapezoid_loop(
    grid: np.ndarray, values: np.ndarray, mu_left: np.ndarray, mu_right: np.ndarray, kT: float
) -> np.ndarray:
    """Straightforward reference: one trapezoid integral per bias."""
    out = np.empty(mu_left.size)
    for k in range(mu_left.size):
        window = fermi_dirac(grid, mu_left[k], kT) - fermi_dirac(grid, mu_right[k], kT)
        out[k] = scipy.integrate.trapezoid(values * window, grid)
    return out


def quad_loop(
    mu_left: np.ndarray, mu_right: np.ndarray, kT: float, subset: np.ndarray
) -> np.ndarray:
    """Adaptive QUADPACK integral of the exact transmission for a subset of biases."""
    out = np.empty(subset.size)
    for n, k in enumerate(subset):
        lo = min(mu_left[k], mu_right[k]) - 40 * kT
        hi = max(mu_left[k], mu_right[k]) + 40 * kT

        def integrand(e: float, k: int = k) -> float:
            window = fermi_dirac(e, mu_left[k], kT) - fermi_dirac(e, mu_right[k], kT)
            return float(staircase(np.asarray(e)) * window)

        with warnings.catch_warnings():
            # quad may flag round-off at tolerance 1e-12; its values are still compared.
            warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
            out[n] = scipy.integrate.quad(
                integrand,
                lo,
                hi,
                points=sorted({mu_left[k], mu_right[k]}),
                epsabs=0.0,
                epsrel=1e-12,
                limit=1000,
            )[0]
    return out


def relative_error(values: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(values - reference)) / np.max(np.abs(reference)))


def main() -> None:
    bias = np.linspace(-0.5, 0.5, N_BIASES)
    mu_left, mu_right = bias / 2, -bias / 2
    subset = np.linspace(0, N_BIASES - 1, N_QUAD).astype(int)

    # Case A --------------------------------------------------------------------
    energies = np.linspace(-1.0, 1.0, N_ENERGIES)
    spacing = energies[1] - energies[0]
    kT = 10.0 * spacing
    transmission = staircase(energies)
    fine = np.linspace(-1.0, 1.0, REFINE * (N_ENERGIES - 1) + 1)
    fine_transmission = staircase(fine)

    current(energies, transmission, mu_left, mu_right, kT, kT)  # warm-up
    t_ours, i_ours = best_time(
        lambda: current(energies, transmission, mu_left, mu_right, kT, kT), REPEATS
    )
    t_fine, i_fine = best_time(
        lambda: trapezoid_loop(fine, fine_transmission, mu_left, mu_right, kT), 1
    )
    t_raw, i_raw = best_time(
        lambda: trapezoid_loop(energies, transmission, mu_left, mu_right, kT), 1
    )
    t_quad_subset, i_quad = best_time(lambda: quad_loop(mu_left, mu_right, kT, subset), 1)
    t_quad = t_quad_subset * N_BIASES / subset.size

    print(
        f"Case A: I-V curve, {N_BIASES} biases, uniform grid of {N_ENERGIES} energies, "
        f"kT = {kT / spacing:g} spacings"
    )
    print(f"  {'method':44s} {'time':>10s} {'vs ours':>9s} {'error vs quad':>14s}")
    rows = [
        (f"mesoscopic.landauer.current (best of {REPEATS})", t_ours, i_ours),
        (f"trapezoid loop, {REFINE}x refined grid, exact T", t_fine, i_fine),
        (f"quad loop, exact T (extrapolated from {subset.size})", t_quad, None),
        ("trapezoid loop, raw grid", t_raw, i_raw),
    ]
    for name, seconds, values in rows:
        error = "-" if values is None else f"{relative_error(values[subset], i_quad):.2e}"
        print(f"  {name:44s} {seconds * 1e3:8.1f}ms {seconds / t_ours:8.1f}x {error:>14s}")
    print(f"  max |current - fine trapezoid| / max |I| = {relative_error(i_ours, i_fine):.2e}")

    # Case B --------------------------------------------------------------------
    uniform = np.linspace(0.0, 1.0, N_ENERGIES)
    warped = -1.0 + 2.0 * (uniform + 0.3 * np.sin(2 * np.pi * uniform) / (2 * np.pi) * 1.9)
    warped_transmission = staircase(warped)
    kT_b = float(np.diff(warped).max())
    t_ours_b, i_ours_b = best_time(
        lambda: current(warped, warped_transmission, mu_left, mu_right, kT_b, kT_b), REPEATS
    )
    t_raw_b, i_raw_b = best_time(
        lambda: trapezoid_loop(warped, warped_transmission, mu_left, mu_right, kT_b), 1
    )
    i_quad_b = quad_loop(mu_left, mu_right, kT_b, subset)
    ratio = np.diff(warped).max() / np.diff(warped).min()
    print(
        f"\nCase B: same biases, non-uniform grid of {N_ENERGIES} energies (spacing ratio "
        f"{ratio:.1f}), kT = largest spacing"
    )
    print(
        f"  {'mesoscopic.landauer.current':44s} {t_ours_b * 1e3:8.1f}ms {1.0:8.1f}x "
        f"{relative_error(i_ours_b[subset], i_quad_b):14.2e}"
    )
    print(
        f"  {'trapezoid loop, raw grid':44s} {t_raw_b * 1e3:8.1f}ms "
        f"{t_raw_b / t_ours_b:8.1f}x {relative_error(i_raw_b[subset], i_quad_b):14.2e}"
    )


if __name__ == "__main__":
    main()
