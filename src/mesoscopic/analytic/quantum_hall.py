"""Thermal rounding of an integer quantum Hall plateau.

With N chiral edge channels transmitting perfectly and the (N+1)-th opening at an
energy ``Delta`` above the Fermi energy, the transmission is the step
``T(E) = N + theta(E - E_F - Delta)``; the Landauer integral with ``-df/dE`` gives
exactly

    G(T) = (e^2/h) (N + 1 / (exp(Delta / k_B T) + 1)).

Each edge channel is spin-resolved (a Landau level of one spin species), so there is
no spin-degeneracy factor: the result is in units of e^2/h.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from ..landauer import fermi_dirac
from . import _common

__all__ = ["quantum_hall_conductance"]


def quantum_hall_conductance(
    kT: ArrayLike, *, num_channels: ArrayLike, gap: ArrayLike
) -> NDArray[np.float64]:
    """Two-terminal quantum Hall conductance ``N + 1/(exp(Delta/kT) + 1)`` in units of e^2/h.

    Overflow-free for any ``Delta / kT``. At ``kT = 0`` it is N for ``Delta > 0``,
    ``N + 1/2`` for ``Delta = 0`` and ``N + 1`` for ``Delta < 0`` (the next channel
    already open); for ``kT >> |Delta|`` it tends to ``N + 1/2``.

    Parameters
    ----------
    kT : array_like
        Thermal energy k_B T, ``>= 0``, in the unit of `gap`.
    num_channels : array_like of int
        Number N >= 0 of fully transmitted edge channels (the plateau index).
    gap : array_like
        Energy Delta from the Fermi energy up to the threshold of the (N+1)-th channel
        (half the cyclotron gap in the middle of a plateau). All inputs broadcast.

    Returns
    -------
    ndarray
        Conductance in units of e^2/h.

    Examples
    --------
    >>> quantum_hall_conductance([0.0, 0.1, 1e6], num_channels=2, gap=1.0)
    array([2.        , 2.0000454 , 2.49999975])
    """
    kt = _checks.temperature(kT, "kT")
    n = _common.whole_numbers(num_channels, "num_channels", minimum=0)
    delta = _checks.real_array(gap, "gap")
    return n + fermi_dirac(delta, 0.0, kt)
