"""LAPACK routines of SciPy's Cython LAPACK as ctypes function pointers, for numba.

Compiled code that receives these pointers as arguments calls LAPACK without the
interpreter and can still be kept on disk by numba (a pointer baked into the code could
not: its address changes between processes).
"""

from __future__ import annotations

import ctypes
from typing import Any

from numba.extending import get_cython_function_address

__all__ = ["lapack_function"]


def lapack_function(name: str, arguments: int) -> Any:
    """SciPy's Cython LAPACK routine `name`, taking `arguments` pointers."""
    address = get_cython_function_address("scipy.linalg.cython_lapack", name)
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * arguments))(address)
