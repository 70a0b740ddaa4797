"""Double barrier (Fabry-Pérot) transmission: coherent, phase averaged, finesse.

Two single-channel scatterers of transmission probabilities ``T1``, ``T2``
(reflection ``R_i = 1 - T_i``) in series, with round-trip phase ``phi`` between
them. Summing the multiply reflected paths gives

    T_eff(phi) = T1 T2 / (1 + R1 R2 - 2 sqrt(R1 R2) cos(phi)).

All quantities are dimensionless; the phase is in radians. For a cavity of length
``d`` and wave number ``k``, ``phi = 2 k d`` plus the reflection phases of the
barriers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from . import _common

__all__ = [
    "fabry_perot_average_transmission",
    "fabry_perot_finesse",
    "fabry_perot_peak_transmission",
    "fabry_perot_transmission",
]


def _mirror_product(t1: NDArray[np.float64], t2: NDArray[np.float64]) -> NDArray[np.float64]:
    """rho = sqrt(R1 R2), the round-trip amplitude attenuation."""
    return np.sqrt((1.0 - t1) * (1.0 - t2))


def _one_minus_rho(t1: NDArray[np.float64], t2: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 - sqrt(R1 R2), without cancellation for nearly opaque barriers."""
    # 1 - rho = (1 - R1 R2) / (1 + rho) and 1 - R1 R2 = T1 + T2 - T1 T2 exactly.
    return (t1 + t2 - t1 * t2) / (1.0 + _mirror_product(t1, t2))


def fabry_perot_transmission(
    phase: ArrayLike, t1: ArrayLike, t2: ArrayLike
) -> NDArray[np.float64]:
    """Coherent double-barrier transmission ``T1 T2 / (1 + R1 R2 - 2 sqrt(R1 R2) cos phi)``.

    Evaluated as ``T1 T2 / ((1 - rho)^2 + 4 rho sin^2(phi/2))`` with
    ``rho = sqrt(R1 R2)``, which keeps full precision on resonance. When both
    barriers are opaque (``T1 = T2 = 0``) the result is 0.

    Parameters
    ----------
    phase : array_like
        Round-trip phase phi in radians.
    t1, t2 : array_like
        Transmission probabilities of the two barriers, in [0, 1]. All three broadcast.

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> fabry_perot_transmission([0.0, np.pi], 0.1, 0.1)   # on and off resonance
    array([1.        , 0.00277008])
    """
    phi = _checks.real_array(phase, "phase")
    p1 = _common.probability(t1, "t1")
    p2 = _common.probability(t2, "t2")
    phi, p1, p2 = np.broadcast_arrays(phi, p1, p2)
    rho = _mirror_product(p1, p2)
    denominator = _one_minus_rho(p1, p2) ** 2 + 4.0 * rho * np.sin(0.5 * phi) ** 2
    out = np.zeros(phi.shape)
    # The denominator vanishes only for rho = 1, i.e. both barriers opaque (T1 T2 = 0).
    nonzero = denominator > 0
    out[nonzero] = p1[nonzero] * p2[nonzero] / denominator[nonzero]
    return np.minimum(out, 1.0)


def fabry_perot_average_transmission(t1: ArrayLike, t2: ArrayLike) -> NDArray[np.float64]:
    """Phase average of the double-barrier transmission: ``T1 T2 / (T1 + T2 - T1 T2)``.

    The exact average of :func:`fabry_perot_transmission` over ``phi`` in
    ``[0, 2 pi)``. It is the classical series addition of the two scatterers:
    ``1/T - 1 = (1/T1 - 1) + (1/T2 - 1)``, i.e. their four-terminal resistances add.
    Two opaque barriers give 0.

    Parameters
    ----------
    t1, t2 : array_like
        Transmission probabilities in [0, 1]; broadcast together.

    Returns
    -------
    ndarray
        Averaged transmission probability in [0, 1].

    Examples
    --------
    >>> float(fabry_perot_average_transmission(0.5, 0.5))
    0.3333333333333333
    """
    p1 = _common.probability(t1, "t1")
    p2 = _common.probability(t2, "t2")
    p1, p2 = np.broadcast_arrays(p1, p2)
    denominator = p1 + p2 - p1 * p2
    out = np.zeros(p1.shape)
    nonzero = denominator > 0
    out[nonzero] = p1[nonzero] * p2[nonzero] / denominator[nonzero]
    return out


def fabry_perot_peak_transmission(t1: ArrayLike, t2: ArrayLike) -> NDArray[np.float64]:
    """On-resonance (``phi = 2 pi n``) transmission ``T1 T2 / (1 - sqrt(R1 R2))^2``.

    Equal to 1 for symmetric barriers (``T1 = T2``) however opaque they are, and
    ``4 T1 T2 / (T1 + T2)^2`` to leading order for weak transmissions.

    Parameters
    ----------
    t1, t2 : array_like
        Transmission probabilities in [0, 1]; broadcast together.

    Returns
    -------
    ndarray
        Peak transmission probability in [0, 1].

    Examples
    --------
    >>> [round(float(x), 6) for x in fabry_perot_peak_transmission([0.1, 0.1], [0.1, 0.4])]
    [1.0, 0.56894]
    """
    p1 = _common.probability(t1, "t1")
    p2 = _common.probability(t2, "t2")
    p1, p2 = np.broadcast_arrays(p1, p2)
    return fabry_perot_transmission(np.zeros(p1.shape), p1, p2)


def fabry_perot_finesse(t1: ArrayLike, t2: ArrayLike) -> NDArray[np.float64]:
    """Finesse ``F = pi sqrt(rho) / (1 - rho)`` with ``rho = sqrt(R1 R2)``.

    The ratio of the resonance period (``2 pi`` in phase) to the full width at half
    maximum of a resonance, in the usual sharp-resonance form: the half maximum lies
    at ``phi = pi / F`` up to corrections of order ``1/F^2``. Two perfectly
    reflecting barriers give ``inf``; a transparent one gives 0.

    Parameters
    ----------
    t1, t2 : array_like
        Transmission probabilities in [0, 1]; broadcast together.

    Returns
    -------
    ndarray
        Finesse, dimensionless, ``>= 0``.

    Examples
    --------
    >>> round(float(fabry_perot_finesse(0.01, 0.01)), 2)
    312.58
    """
    p1 = _common.probability(t1, "t1")
    p2 = _common.probability(t2, "t2")
    p1, p2 = np.broadcast_arrays(p1, p2)
    rho = _mirror_product(p1, p2)
    gap = _one_minus_rho(p1, p2)
    out = np.full(rho.shape, np.inf)
    finite = gap > 0
    out[finite] = np.pi * np.sqrt(rho[finite]) / gap[finite]
    return out
