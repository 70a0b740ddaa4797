"""Kwant's deprecated positional ``args``: one rule for every entry point that accepts it.

Kwant hands ``args`` to every value function after its site(s), by position; since Kwant
1.4 they are deprecated in favour of ``params`` (values by name). Every function of the
package that takes ``args`` reads it through :func:`legacy_params`: the same accepted forms,
the same errors and one :class:`DeprecationWarning` per call. The result is either the
``params`` mapping, or :class:`PositionalArgs`, which the value-function evaluation of
:mod:`mesoscopic.system` hands to each function by position (Kwant's semantics, exactly).
Where parameters are needed by name (the solvers, which batch and share work by parameter
name), :func:`params_by_name` maps the values onto each function's parameter names.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import _checks

__all__ = ["PositionalArgs", "legacy_params", "params_by_name"]

_BOTH = (
    "args and params are mutually exclusive: give either args (deprecated, values by "
    "position) or params (values by name), not both"
)
_DEPRECATED = (
    "the 'args' parameter is deprecated (as in Kwant since 1.4); pass values by name with "
    "params={...}"
)


class PositionalArgs(Mapping[str, Any]):
    """Kwant's deprecated ``args=``: values handed to every value function by position.

    An empty mapping of names (so no named parameter is seen as given or unused) that
    carries the positional values in :attr:`args`.
    """

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"args={self.args!r}"


def legacy_params(
    args: Any, params: Mapping[str, Any] | None, *, warn: bool = True
) -> Mapping[str, Any] | None:
    """The parameters of a call that may use Kwant's deprecated positional ``args``.

    Parameters
    ----------
    args : sequence, mapping or None
        ``None`` or an empty sequence: no positional values (``params`` is returned). A
        mapping is taken as ``params`` given by position (as in ``f(syst, {"a": 1})``). Any
        other iterable (tuple, list, array) holds Kwant's positional values.
    params : mapping or None
        Values by name.
    warn : bool, keyword-only
        Emit the :class:`DeprecationWarning` for positional values (False where the caller
        has already warned for this call).

    Returns
    -------
    mapping or None
        ``params``, the mapping given as ``args``, or :class:`PositionalArgs` holding the
        positional values.

    Raises
    ------
    TypeError
        Positional values together with ``params``, a mapping as ``args`` together with
        ``params``, or ``args`` that is a string or not iterable.

    Examples
    --------
    >>> import warnings
    >>> legacy_params((), {"a": 1})
    {'a': 1}
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     legacy_params((1.0, 2.0), None)
    args=(1.0, 2.0)
    """
    if args is None:
        return params
    if isinstance(args, Mapping):
        if params is not None:
            raise TypeError(
                "params is given twice: positionally (as args) and as params=; give it once"
            )
        return args
    if isinstance(args, (str, bytes)):
        raise TypeError(
            f"args must be a sequence of positional parameter values, got {_checks._show(args)}"
            "; pass values by name with params={...}"
        )
    try:
        values = tuple(args)
    except TypeError:
        raise TypeError(
            f"args must be a sequence of positional parameter values, got {_checks._show(args)}"
            "; pass values by name with params={...}"
        ) from None
    if not values:
        return params
    if params is not None:
        raise TypeError(_BOTH)
    if warn:
        warnings.warn(_DEPRECATED, DeprecationWarning, stacklevel=_checks.user_stacklevel())
    return PositionalArgs(values)


def params_by_name(
    args: tuple[Any, ...], signatures: Iterable[tuple[str, tuple[str, ...], bool]]
) -> dict[str, Any]:
    """Positional values as the equivalent values by name.

    Value function ``f`` receives ``args[k]`` as its ``k``-th parameter after the site(s),
    so that parameter's name gets ``args[k]``.

    Parameters
    ----------
    args : tuple
        The positional values.
    signatures : iterable of (str, tuple of str, bool)
        For each value function: its name (for messages), the names of its parameters after
        the site(s) in order, and whether it takes ``**kwargs`` (then it accepts any number
        of values).

    Returns
    -------
    dict
        ``{name: value}`` over every value function's parameters.

    Raises
    ------
    TypeError
        A value function that takes fewer parameters than ``args`` holds (calling it by
        position would fail the same way).
    ValueError
        Two value functions that take one name at different positions: no ``params`` gives
        both what ``args`` gives them; pass ``params`` instead.

    Examples
    --------
    >>> params_by_name((1.0, 2.0), [("onsite", ("a", "b"), False), ("hop", ("a",), True)])
    {'a': 1.0, 'b': 2.0}
    """
    converted: dict[str, Any] = {}
    position: dict[str, int] = {}
    for function, names, takes_all in signatures:
        if len(names) < len(args) and not takes_all:
            raise TypeError(
                f"args holds {len(args)} values, but the value function {function!r} takes "
                f"only {len(names)} parameter(s) after its site(s): {list(names)}"
            )
        for k, name in enumerate(names[: len(args)]):
            if position.setdefault(name, k) != k:
                raise ValueError(
                    f"parameter {name!r} is at position {position[name]} in one value function "
                    f"and at position {k} in another, so positional args cannot be turned "
                    "into params; pass params={...}"
                )
            converted[name] = args[k]
    return converted
