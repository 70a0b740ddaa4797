"""Observables: functions of named parameters with named, described outputs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Output:
    """Description of one output of an :class:`Observable`.

    Parameters
    ----------
    units : str
        Unit of the values, written to the variable's ``units`` attribute
        (``"1"`` for dimensionless, ``"e^2/h"``, ``"t"`` for the hopping, ...).
    dims : tuple of str, optional
        Names of the output's own axes when the observable returns a plain array
        (for example ``("lead_to", "lead_from")`` for a transmission matrix); ``()``
        for a scalar. With a `batch_axis`, the leading batch axis is not listed.
        Default: taken from a returned DataArray, else named ``<output>_dim0``,
        ``<output>_dim1``, ...
    long_name : str, optional
        Human-readable description, written to ``long_name``.
    attrs : dict, optional
        Further attributes of the variable (names to strings, integers or floats), for
        example ``{"spin_degeneracy": 2}`` for a conductance, so that plots and readers of
        the file can convert it.

    Examples
    --------
    >>> Output("e^2/h", long_name="linear conductance")
    Output(units='e^2/h', dims=None, long_name='linear conductance', attrs=())
    >>> Output("e^2/h", attrs={"spin_degeneracy": 2}).attrs
    (('spin_degeneracy', 2),)
    """

    units: str
    dims: tuple[str, ...] | None = None
    long_name: str | None = None
    attrs: Any = ()

    def __post_init__(self) -> None:
        if not isinstance(self.units, str):
            raise TypeError(f"units must be a string such as 'e^2/h', got {self.units!r}")
        if self.dims is not None:
            if isinstance(self.dims, str) or not all(isinstance(d, str) for d in self.dims):
                raise TypeError(f"dims must be a tuple of strings, got {self.dims!r}")
            object.__setattr__(self, "dims", tuple(self.dims))
        items = dict(self.attrs).items() if isinstance(self.attrs, Mapping) else self.attrs
        try:
            pairs = tuple(sorted((key, value) for key, value in items))
        except (TypeError, ValueError):
            raise TypeError(
                f"attrs must be a dict of attribute names to values, got {self.attrs!r}"
            ) from None
        for key, value in pairs:
            if not isinstance(key, str) or key in ("units", "long_name"):
                raise ValueError(
                    f"attrs keys must be strings other than 'units' and 'long_name' (those "
                    f"are Output's own fields), got {key!r}"
                )
            if isinstance(value, bool) or not isinstance(value, (str, int, float, np.number)):
                raise TypeError(
                    f"attrs[{key!r}] must be a string or a number (a file attribute), "
                    f"got {value!r}"
                )
        object.__setattr__(self, "attrs", pairs)


class Observable:
    """A function of named parameters with named, described outputs.

    Wrapping a function is optional: :func:`run_sweep` accepts any callable. The
    wrapper gives the outputs units, axis names and coordinates, and the sweep a
    name. It is picklable whenever `func` is.

    Parameters
    ----------
    func : callable
        Called as ``func(**point, **fixed_params)``. Returns a number, an array, a
        dict of those, an :class:`xarray.DataArray` or an :class:`xarray.Dataset`.
    outputs : mapping of str to Output or str, optional
        The outputs by name; a string is shorthand for ``Output(units=string)``. With
        one output, `func` may return the bare value; with several it returns a dict
        with exactly these keys.
    coords : mapping of str to array_like, optional
        Coordinate values for the outputs' own axes, e.g. ``{"lead": [0, 1]}``.
    name : str, optional
        Name of the observable in the provenance and the progress bar; default the
        function's name.

    Examples
    --------
    >>> def transmission(energy):
    ...     return {"T": 1.0, "R": 0.0}
    >>> observable = Observable(transmission, outputs={"T": "1", "R": "1"})
    >>> observable(energy=0.5)
    {'T': 1.0, 'R': 0.0}
    >>> observable.name
    'transmission'
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        outputs: Mapping[str, Output | str] | None = None,
        coords: Mapping[str, ArrayLike] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}: {func!r}")
        self.func = func
        self.outputs: dict[str, Output] = {}
        for key, spec in (outputs or {}).items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"output names must be non-empty strings, got {key!r}")
            if isinstance(spec, str):
                spec = Output(spec)
            if not isinstance(spec, Output):
                raise TypeError(
                    f"output {key!r} must be described by an Output or a units string, "
                    f"got {spec!r}"
                )
            self.outputs[key] = spec
        self.coords = {str(k): np.asarray(v) for k, v in (coords or {}).items()}
        for key, values in self.coords.items():
            if values.ndim != 1:
                raise ValueError(
                    f"coords[{key!r}] must be 1-D, got an array of shape {values.shape}"
                )
        self.name = name if name is not None else callable_name(func)

    def __call__(self, **params: Any) -> Any:
        return self.func(**params)

    def __repr__(self) -> str:
        return f"Observable({self.name}, outputs={list(self.outputs)})"


def callable_name(func: Any) -> str:
    """The name of an observable, through Observable and partial wrappers."""
    if isinstance(func, Observable):
        return func.name
    if isinstance(func, functools.partial):
        return callable_name(func.func)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return str(name) if name else type(func).__name__


def default_output_name(observable: Callable[..., Any]) -> str:
    """The name of a single unnamed output: the observable's own name."""
    name = callable_name(observable).rsplit(".", 1)[-1]
    return name if name.isidentifier() else "value"


def qualified_name(func: Any) -> str:
    """``module.name`` of the function an observable wraps."""
    target = func
    while isinstance(target, (Observable, functools.partial)):
        target = target.func
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}.{callable_name(target)}"
