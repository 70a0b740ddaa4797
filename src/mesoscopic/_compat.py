"""Deprecation paths for renamed arguments.

A public argument that was renamed keeps working under its old keyword for a while: the
call goes through with a :class:`DeprecationWarning` naming the new keyword. Positional
calls are unaffected (the position did not change).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from . import _checks

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["renamed_keyword"]


def renamed_keyword(old: str, new: str, since: str) -> Callable[[F], F]:
    """Accept keyword `old` as `new`, with a DeprecationWarning (the rename was in `since`).

    Examples
    --------
    >>> import warnings
    >>> @renamed_keyword("fsys", "syst", "0.9")
    ... def f(syst):
    ...     return syst
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f(fsys=1), caught[0].category.__name__
    (1, 'DeprecationWarning')
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(
                        f"{function.__name__}() got both {old}= (its old name) and {new}=; "
                        f"give {new}= only"
                    )
                warnings.warn(
                    f"{function.__name__}(): the keyword {old}= is now {new}= "
                    f"(renamed in {since}); {old}= will be removed",
                    DeprecationWarning,
                    stacklevel=_checks.user_stacklevel(),
                )
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
