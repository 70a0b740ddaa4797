"""Landauer formula at finite temperature and bias, and thermoelectric coefficients.

Energies may be in any unit; temperatures enter as thermal energies ``kT`` in the
same unit. Results are in units of ``g_s e^2/h`` (conductance) or ``g_s e/h``
times energy (current), with the spin degeneracy ``g_s`` a documented keyword.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks

__all__ = ["fermi_dirac"]


def fermi_dirac(energy: ArrayLike, mu: ArrayLike = 0.0, kT: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Fermi-Dirac occupation ``1 / (exp((E - mu) / kT) + 1)``.

    Never overflows: the formula is evaluated as ``(1 - tanh(x / 2)) / 2``.
    At ``kT = 0`` it is the step function, equal to 1/2 exactly at ``E = mu``.

    Parameters
    ----------
    energy, mu : array_like
        Energy and chemical potential, same unit; broadcast together.
    kT : array_like
        Thermal energy k_B T in the unit of `energy`, ``>= 0``; broadcast.

    Returns
    -------
    ndarray
        Occupation in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> fermi_dirac([-1.0, 0.0, 1.0], 0.0, 0.0)
    array([1. , 0.5, 0. ])
    >>> float(fermi_dirac(1e5, 0.0, 1.0))
    0.0
    """
    energy = _checks.real_array(energy, "energy")
    mu = _checks.real_array(mu, "mu")
    kT = _checks.temperature(kT, "kT")
    de, kT = np.broadcast_arrays(energy - mu, kT)
    out = np.empty(de.shape)
    hot = kT > 0
    out[hot] = 0.5 * (1.0 - np.tanh(0.5 * de[hot] / kT[hot]))
    cold = ~hot
    out[cold] = np.where(de[cold] < 0, 1.0, np.where(de[cold] > 0, 0.0, 0.5))
    return out
