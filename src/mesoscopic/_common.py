"""Small helpers under the names Kwant scripts and tests import from ``kwant._common``.

:func:`ensure_rng` turns a seed into a random-number generator with NumPy's legacy
``RandomState`` interface (the one Kwant's functions take as ``rng``); :func:`get_parameters`
lists the parameter names of a value function as the Builder reads them.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from .system import UserCodeError

__all__ = ["UserCodeError", "ensure_rng", "get_parameters"]

_RANDOM_STATE_METHODS = ("random_sample", "randn", "randint", "choice")


def ensure_rng(rng: Any = None) -> Any:
    """A ``numpy.random.RandomState``-like generator from `rng`.

    None gives NumPy's global legacy generator (the one ``np.random.seed`` seeds), an
    integer a new ``RandomState`` seeded with it, and an object that has the
    ``RandomState`` methods (``random_sample``, ``randn``, ``randint``, ``choice``) is
    returned as it is.

    >>> ensure_rng(5).randint(100) == np.random.RandomState(5).randint(100)
    True
    """
    if rng is None:
        return np.random.mtrand._rand
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.RandomState(int(rng))
    if all(hasattr(rng, name) for name in _RANDOM_STATE_METHODS):
        return rng
    raise ValueError(
        "rng must be None, an integer seed or a numpy.random.RandomState-like object "
        f"(with {', '.join(_RANDOM_STATE_METHODS)}); got {type(rng).__name__}"
    )


def get_parameters(func: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the positional parameters of a value function, sites included.

    Value functions take their sites and then named parameters without defaults; defaults,
    keyword-only parameters, ``*args`` and ``**kwargs`` are refused (ValueError naming the
    function), as Kwant does.

    >>> get_parameters(lambda site, V, B: 0)
    ('site', 'V', 'B')
    """
    where = getattr(func, "__qualname__", repr(func))
    names = []
    for name, parameter in inspect.signature(func).parameters.items():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is not parameter.empty:
                raise ValueError(
                    f"value function {where}: its parameter {name!r} has a default value; "
                    "value functions take their parameters without defaults"
                )
            names.append(name)
        elif parameter.kind is parameter.KEYWORD_ONLY:
            raise ValueError(
                f"value function {where}: keyword-only parameter {name!r} is not allowed"
            )
        else:
            raise ValueError(f"value function {where}: *args and **kwargs are not allowed")
    return tuple(names)
