"""Random numbers computed from an input by a hash: Kwant's ``kwant.digest``.

A disorder realization written as ``V(site) = W * (uniform(repr(site), salt) - 0.5)`` needs
no random-number generator and no state: each site's value is a fixed function of the site
and of a ``salt`` string that labels the realization, so it does not depend on the order in
which sites are visited, on how the system is split into parts, or on which process computes
it. Changing ``salt`` draws a new, independent realization.

The numbers are exactly Kwant's for the same input and salt:

1. the input and the salt are turned into bytes (a ``str`` is encoded as UTF-8; an object
   with the buffer protocol, such as ``bytes`` or a NumPy array, gives its buffer in C order),
   and the salt's bytes are appended to the input's;
2. the MD5 digest (RFC 1321) of those bytes, 16 bytes, is read as two 64-bit integers in the
   machine's byte order, and the low 53 bits of each, divided by ``2**53``, give two numbers
   ``a`` and ``b`` in ``[0, 1)``;
3. :func:`uniform` returns ``a``; :func:`gauss` returns the Box–Muller transform
   ``cos(2 pi a) * sqrt(-2 ln(1 - b))``, a standard normal number.

Kwant's site tags are ``tinyarray`` arrays, whose buffer holds 64-bit integers; this
package's tags are tuples of ``int``. So that ``uniform(site.tag, salt)`` gives the same
numbers in both, a tuple or list of numbers (nested for two dimensions), or a single number,
is hashed as the array ``tinyarray.array`` would make of it: 64-bit integers when all entries
are integers, else 64-bit floats, else 128-bit complex numbers. (Kwant itself refuses a tuple.)

MD5 is no longer a secure hash, but that is irrelevant here: what matters is that its output
looks random, which it does well enough to pass the ``dieharder`` battery (see :func:`test`).

Examples
--------
>>> from mesoscopic import digest
>>> digest.uniform("hello world", "salt")
0.15963998426047976
>>> digest.uniform((1, 2)) == digest.uniform((1, 2), "")
True
>>> round(digest.gauss((1, 2), salt="1"), 6)
-1.160504
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

from . import _checks

__all__ = ["gauss", "test", "uniform"]

_MANTISSA_BITS = 53  # a Python float holds 53 significant bits
_MANTISSA_MASK = (1 << _MANTISSA_BITS) - 1
_TWO_PI = 2 * math.pi


def _tinyarray_like(value: Any) -> np.ndarray:
    """The array tinyarray would build from numbers: int64, else float64, else complex128."""
    array = np.asarray(value)
    if array.dtype.kind in "bi" or (
        array.dtype.kind == "u" and (array.size == 0 or array.max() <= np.iinfo(np.int64).max)
    ):
        return array.astype(np.int64)
    for dtype in (np.float64, np.complex128):
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            continue
    raise TypeError("not numbers")


def _to_bytes(value: Any, what: str) -> bytes:
    """The bytes that are hashed for an input or a salt."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (tuple, list, int, float, complex)):
        try:
            return _tinyarray_like(value).tobytes()
        except (TypeError, ValueError):
            pass  # reported below, with the other inputs that cannot be hashed
    else:
        try:
            return memoryview(value).tobytes()
        except (TypeError, ValueError):
            pass
    raise TypeError(
        f"digest {what} must be a str, bytes, an array (a NumPy array or anything with the "
        f"buffer protocol) or a tuple of numbers such as a site tag; got {value!r} "
        f"of type {type(value).__name__}"
    )


def _two_uniforms(input: Any, salt: Any) -> tuple[float, float]:
    """Two independent numbers in [0, 1) from the MD5 digest of ``input + salt``."""
    data = _to_bytes(input, "input") + _to_bytes(salt, "salt")
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    # The low 53 bits of a signed 64-bit integer are those of its two's-complement bytes.
    first = int.from_bytes(digest[:8], sys.byteorder) & _MANTISSA_MASK
    second = int.from_bytes(digest[8:], sys.byteorder) & _MANTISSA_MASK
    return math.ldexp(first, -_MANTISSA_BITS), math.ldexp(second, -_MANTISSA_BITS)


def uniform(input: Any, salt: str | bytes = "") -> float:
    """A number in ``[0, 1)`` that is a fixed, random-looking function of `input` and `salt`.

    Parameters
    ----------
    input : str, bytes, array or tuple of numbers
        What the number is a function of, typically ``repr(site)`` or ``site.tag``. A ``str``
        is hashed as its UTF-8 bytes, an array as its buffer (C order), a tuple of numbers
        as the 64-bit integer (or float) array of its entries.
    salt : str or bytes
        Labels the realization: a different salt gives an independent number.

    Returns
    -------
    float
        Uniformly distributed in ``[0, 1)``, a multiple of ``2**-53``; the same as
        ``kwant.digest.uniform(input, salt)``.

    Examples
    --------
    >>> from mesoscopic.digest import uniform
    >>> uniform("hello world", "salt")
    0.15963998426047976
    >>> uniform("hello world", "salt") != uniform("hello world", "other salt")
    True
    """
    return _two_uniforms(input, salt)[0]


def gauss(input: Any, salt: str | bytes = "") -> float:
    """A standard normal number that is a fixed, random-looking function of `input` and `salt`.

    Parameters
    ----------
    input : str, bytes, array or tuple of numbers
        What the number is a function of, as for :func:`uniform`.
    salt : str or bytes
        Labels the realization: a different salt gives an independent number.

    Returns
    -------
    float
        Normally distributed with mean 0 and standard deviation 1: the Box–Muller transform
        ``cos(2 pi a) sqrt(-2 ln(1 - b))`` of the two uniform numbers ``a``, ``b`` of the
        input's hash (``a`` is :func:`uniform`'s result). The same as
        ``kwant.digest.gauss(input, salt)``.

    Examples
    --------
    >>> from mesoscopic.digest import gauss
    >>> round(gauss("hello world", "salt"), 6)
    0.037581
    """
    a, b = _two_uniforms(input, salt)
    return math.cos(a * _TWO_PI) * math.sqrt(-2.0 * math.log(1.0 - b))


def test(n: int = 20000) -> int:
    """Run the ``dieharder`` battery of randomness tests on ``n**2`` numbers from :func:`uniform`.

    The inputs are the integer pairs ``(x, y)`` with ``0 <= x, y < n`` (as site tags of a
    square lattice), each number is scaled to a 32-bit unsigned integer, and the numbers are
    handed to ``dieharder -a`` as a raw binary file. This takes a very long time for the
    default `n`; ``dieharder`` prints its verdicts.

    Parameters
    ----------
    n : int
        Side of the square of inputs: ``n**2`` numbers are tested.

    Returns
    -------
    int
        The exit status of ``dieharder``.

    Raises
    ------
    FileNotFoundError
        If the ``dieharder`` program is not installed.
    """
    n = _checks.positive_int(n, "n")
    program = shutil.which("dieharder")
    if program is None:
        raise FileNotFoundError(
            "digest.test needs the 'dieharder' program on the PATH "
            "(e.g. the Debian/Ubuntu package 'dieharder')"
        )
    handle, path = tempfile.mkstemp(suffix=".bin")
    try:
        with os.fdopen(handle, "wb") as file:
            for x in range(n):
                row = [int(2**32 * uniform((x, y))) for y in range(n)]
                file.write(np.asarray(row, dtype=np.uint32).tobytes())
        # Generator 201 of dieharder reads raw 32-bit unsigned integers from a file.
        return subprocess.call([program, "-a", "-g", "201", "-f", path])
    finally:
        os.remove(path)


# Kwant's name for the dieharder run; not a test function for pytest to collect.
test.__test__ = False  # type: ignore[attr-defined]
