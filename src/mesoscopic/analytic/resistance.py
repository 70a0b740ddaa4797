"""Contact, two-terminal and four-terminal resistances of ballistic and single-channel conductors.

All resistances are in units of the von Klitzing constant h/e^2 (multiply by
:data:`mesoscopic.constants.R_K` for ohm). The spin degeneracy ``g_s`` is always an
explicit keyword: ``g_s = 2`` gives the familiar ``h/(2e^2) ~ 12.9 kOhm`` per channel.

For one channel of transmission T between ideal reservoirs (Landauer, Büttiker):

* two-terminal: ``R_2t = (h / (g_s e^2)) / T``;
* contact (a perfect channel): ``R_c = h / (g_s e^2)``;
* four-terminal, measured by non-invasive probes on either side of the scatterer:
  ``R_4t = (h / (g_s e^2)) (1/T - 1) = (h / (g_s e^2)) R / T``,

so that ``R_2t = R_c + R_4t``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _common

__all__ = ["contact_resistance", "four_terminal_resistance", "two_terminal_resistance"]


def contact_resistance(num_channels: ArrayLike, *, spin_degeneracy: int) -> NDArray[np.float64]:
    """Contact resistance ``h / (g_s N e^2)`` of N perfectly transmitting channels.

    Parameters
    ----------
    num_channels : array_like of int
        Number N >= 1 of open spatial channels.
    spin_degeneracy : {1, 2}
        g_s; 2 gives the spin-degenerate ``h / (2 N e^2)``.

    Returns
    -------
    ndarray
        Resistance in units of h/e^2, the shape of `num_channels`.

    Examples
    --------
    >>> contact_resistance([1, 2], spin_degeneracy=2)
    array([0.5 , 0.25])
    >>> from mesoscopic.constants import R_K
    >>> round(float(contact_resistance(1, spin_degeneracy=2)) * R_K, 1)   # ohm
    12906.4
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    n = _common.whole_numbers(num_channels, "num_channels", minimum=1)
    return 1.0 / (g_s * n.astype(float))


def _inverse_transmission(t: NDArray[np.float64]) -> NDArray[np.float64]:
    """1/T with 1/0 = inf (an opaque scatterer), without a division warning."""
    out = np.full(t.shape, np.inf)
    np.divide(1.0, t, out=out, where=t > 0)
    return out


def two_terminal_resistance(
    transmission: ArrayLike, *, spin_degeneracy: int
) -> NDArray[np.float64]:
    """Two-terminal resistance ``(h / (g_s e^2)) / T`` of one channel of transmission T.

    Parameters
    ----------
    transmission : array_like
        Transmission probability T in [0, 1]; ``T = 0`` gives ``inf``.
    spin_degeneracy : {1, 2}
        g_s.

    Returns
    -------
    ndarray
        Resistance in units of h/e^2, the shape of `transmission`.

    Examples
    --------
    >>> two_terminal_resistance([1.0, 0.5], spin_degeneracy=2)
    array([0.5, 1. ])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    t = _common.probability(transmission, "transmission")
    return _inverse_transmission(t) / g_s


def four_terminal_resistance(
    transmission: ArrayLike, *, spin_degeneracy: int
) -> NDArray[np.float64]:
    """Four-terminal resistance ``(h / (g_s e^2)) (1/T - 1)`` of a single-channel scatterer.

    The resistance between ideal, non-invasive voltage probes on either side of the
    scatterer: the contact resistance drops out, and a perfect channel (T = 1) shows
    zero resistance.

    Parameters
    ----------
    transmission : array_like
        Transmission probability T in [0, 1]; ``T = 0`` gives ``inf``.
    spin_degeneracy : {1, 2}
        g_s.

    Returns
    -------
    ndarray
        Resistance in units of h/e^2, the shape of `transmission`.

    Examples
    --------
    >>> four_terminal_resistance([1.0, 0.5, 0.0], spin_degeneracy=2)
    array([0. , 0.5, inf])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    t = _common.probability(transmission, "transmission")
    # R / T rather than 1/T - 1: exact zero at T = 1 and no cancellation near it.
    return (1.0 - t) * _inverse_transmission(t) / g_s
