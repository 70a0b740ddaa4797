"""Observables for the sweep tests.

They live at module level in an importable module so that worker processes can
unpickle them by reference: the process pool imports this module, and the Dask
workers and the sweep subprocess of the tests find it on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time

import numpy as np

import mesoscopic as meso
from mesoscopic.analytic import chain_barrier_transmission
from mesoscopic.sweep import run_sweep
from model_systems import barrier_chain

# The sweep that the kill -9 test interrupts and resumes: 6 x 8 = 48 calls.
LOGGED_GRID = {"energy": np.linspace(-1.5, 1.5, 6), "gate": np.arange(8)}
LOGGED_CHUNK_SIZE = 4


def tight_binding_chain(energy: float, height: float, *, length: int) -> dict[str, float]:
    """Transmission and reflection of a chain through `length` sites raised by `height`.

    Lead 0 on the left, lead 1 on the right, hopping -1, computed with the sparse
    scattering solver.
    """
    smatrix = meso.smatrix(barrier_chain(height, length).finalized(), energy)
    return {
        "transmission": smatrix.transmission(1, 0),
        "reflection": smatrix.transmission(0, 0),
    }


def closed_form_chain(energy: np.ndarray, height: float, *, length: int) -> np.ndarray:
    """The same transmission from the closed form, vectorized over energies."""
    return chain_barrier_transmission(energy, height, length)


def mixed_outputs(energy: float, gate: float, seed: int) -> dict[str, object]:
    """A scalar, a spectrum over three levels and a complex amplitude per point."""
    rng = np.random.default_rng([seed, 12345])
    levels = np.sort(rng.uniform(-1.0, 1.0, 3)) + gate
    weights = 1.0 / (1.0 + (energy - levels) ** 2)
    return {
        "total": float(weights.sum()),
        "spectrum": weights,
        "amplitude": complex(np.exp(1j * energy * (seed + 1)) * weights[0]),
    }


def product_with_offset(energy: float, gate: float) -> float:
    """energy * gate + gate**2 / 2: cheap and exact, for checks of the grid layout."""
    return energy * gate + 0.5 * gate**2


def logged_product(
    energy: float,
    gate: float,
    *,
    log_path: str,
    delay: float = 0.0,
    interrupt_flag: str | None = None,
    kill_flag: str | None = None,
) -> float:
    """product_with_offset that appends one line per evaluation to `log_path`.

    Sleeps `delay` seconds to stand for real work. At energy 0.3, gate 5 it raises
    KeyboardInterrupt, as a Ctrl-C would, when the file `interrupt_flag` exists, and
    kills its own process with SIGKILL when the file `kill_flag` exists.
    """
    with open(log_path, "a") as log:
        log.write(f"{energy!r} {gate!r}\n")
    at_trigger = abs(energy - 0.3) < 1e-12 and gate == 5
    if at_trigger and interrupt_flag is not None and pathlib.Path(interrupt_flag).exists():
        raise KeyboardInterrupt
    if at_trigger and kill_flag is not None and pathlib.Path(kill_flag).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(delay)
    return product_with_offset(energy, gate)


def run_logged_sweep(checkpoint: str, log_path: str, delay: float) -> None:
    """The interrupted sweep, as a script would run it."""
    run_sweep(
        logged_product,
        LOGGED_GRID,
        fixed_params={"log_path": log_path, "delay": delay},
        chunk_size=LOGGED_CHUNK_SIZE,
        checkpoint=checkpoint,
        progress=False,
    )


# A module-level constant that the next two observables use, directly or through a helper.
ENERGY_SCALE = 2.0


def scaled_energy(energy: float) -> float:
    """energy * ENERGY_SCALE."""
    return energy * ENERGY_SCALE


def _energy_shift(energy: float) -> float:
    return ENERGY_SCALE * energy + 1.0


def shifted_energy(energy: float) -> float:
    """ENERGY_SCALE * energy + 1, through a helper of this module."""
    return _energy_shift(energy)
