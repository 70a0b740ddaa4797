"""Array-module selection for the dense solvers: NumPy on ``"cpu"``, CuPy on ``"gpu"``.

The recursive Green's function code is written against an array module ``xp`` with the
NumPy interface, so one algorithm runs on both devices. CuPy is imported only when
``device="gpu"`` is asked for.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "DEVICES",
    "array_module",
    "check_device",
    "device_memory_bytes",
    "to_device",
    "to_host",
]

#: Device names accepted by the batched solvers.
DEVICES = ("cpu", "gpu")

GPU_MISSING = "device='gpu' needs CuPy and a CUDA GPU: pip install 'mesoscopic[gpu]'"


def check_device(device: Any) -> str:
    """Validate a device name.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"gpu"``.

    Returns
    -------
    str
        The name, lower case.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device.lower()


def array_module(device: str) -> ModuleType:
    """NumPy for ``"cpu"``; CuPy, checked to see a CUDA device, for ``"gpu"``.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"gpu"``.

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Raises
    ------
    ValueError
        An unknown device name.
    RuntimeError
        ``"gpu"`` without CuPy or without a usable CUDA device.

    Examples
    --------
    >>> array_module("cpu").__name__
    'numpy'
    """
    if check_device(device) == "cpu":
        return np
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CuPy build that fails to load CUDA
        raise RuntimeError(f"{GPU_MISSING} (CuPy could not be imported: {exc})") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise RuntimeError(f"{GPU_MISSING} (no CUDA device: {exc})") from exc
    if count < 1:
        raise RuntimeError(f"{GPU_MISSING} (CuPy sees no CUDA device)")
    return cupy


def to_device(xp: ModuleType, array: Any) -> Any:
    """Copy a host array to the device of ``xp`` (no copy for NumPy)."""
    if xp is np:
        return np.asarray(array)
    return xp.asarray(array)


def to_host(xp: ModuleType, array: Any) -> np.ndarray:
    """Copy a device array back to a NumPy array (no copy for NumPy)."""
    if xp is np:
        return np.asarray(array)
    return xp.asnumpy(array)


def device_memory_bytes(xp: ModuleType) -> int:
    """Memory the solver may use on the device of ``xp``, in bytes.

    On the CPU: half of the available physical memory (at most 8 GiB, so that a batch
    stays friendly to the machine's other work). On the GPU: 60% of the free device
    memory, leaving room for the library workspaces.
    """
    if xp is np:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
        return int(min(available // 2, 8 << 30))
    free, _total = xp.cuda.runtime.memGetInfo()
    return int(0.6 * free)
