"""Conductance of a clean Luttinger-liquid wire with and without Fermi-liquid leads.

An interacting one-dimensional wire is described by its interaction parameter g
(``g < 1`` repulsive, ``g = 1`` free electrons; for spinful electrons g is the
charge-sector ``g_rho``) and plasmon velocity ``u = v_F / g`` (Galilean invariant
interactions).

* An infinite, homogeneous Luttinger liquid has ``G = g g_s e^2/h``
  (Kane and Fisher, Phys. Rev. B 46, 15233 (1992)).
* A finite wire between non-interacting (Fermi-liquid) leads has the dc conductance
  ``G = g_s e^2/h`` whatever g: the leads set it (Maslov and Stone, Phys. Rev. B 52,
  R5539 (1995); Ponomarenko, Phys. Rev. B 52, R8666 (1995); Safi and Schulz,
  Phys. Rev. B 52, R17040 (1995)).

At finite frequency the charge (plasmon) mode obeys a wave equation whose local
"admittance" is ``g(x)`` (in units of ``g_s e^2/h``), like a transmission line. At each
abrupt contact between wire (g) and lead (1) a current wave is partially reflected
with amplitude ``gamma = (1 - g)/(1 + g)`` and transmitted with ``2/(1 + g)`` or
``2g/(1 + g)``; inside the wire of length L it travels for ``tau = L/u = g L / v_F``.
The wire is then a Fabry-Pérot resonator for plasmons (Safi and Schulz 1995), and
the current transmitted into the right lead for a current wave incident from the
left is

    t(w) = (1 - gamma^2) exp(i w tau) / (1 - gamma^2 exp(2 i w tau)).

An incident electron is transmitted as a train of partial charges
``(1 - gamma^2) gamma^(2n)``, n = 0, 1, ..., summing to one electron: hence
``t(0) = 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from . import _common

__all__ = [
    "luttinger_ac_conductance",
    "luttinger_bulk_conductance",
    "luttinger_contact_reflection",
    "luttinger_wire_conductance",
]


def luttinger_bulk_conductance(g: ArrayLike, *, spin_degeneracy: int) -> NDArray[np.float64]:
    """Conductance ``g_s g e^2/h`` of an infinite homogeneous Luttinger liquid.

    Parameters
    ----------
    g : array_like
        Interaction parameter ``g > 0`` (charge sector ``g_rho`` when spinful).
    spin_degeneracy : {1, 2}
        g_s: 1 for spinless (spin-polarized) electrons, 2 for spinful ones.

    Returns
    -------
    ndarray
        Conductance in units of e^2/h, the shape of `g`.

    Examples
    --------
    >>> luttinger_bulk_conductance([0.5, 1.0], spin_degeneracy=2)
    array([1., 2.])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    return g_s * _checks.positive(g, "g")


def luttinger_wire_conductance(g: ArrayLike, *, spin_degeneracy: int) -> NDArray[np.float64]:
    """dc conductance ``g_s e^2/h`` of a finite Luttinger-liquid wire between Fermi-liquid leads.

    Independent of g (Maslov-Stone, Ponomarenko, Safi-Schulz 1995); the zero-frequency
    limit of :func:`luttinger_ac_conductance`.

    Parameters
    ----------
    g : array_like
        Interaction parameter ``g > 0`` of the wire.
    spin_degeneracy : {1, 2}
        g_s.

    Returns
    -------
    ndarray
        Conductance in units of e^2/h, the shape of `g`.

    Examples
    --------
    >>> luttinger_wire_conductance([0.3, 1.0, 2.0], spin_degeneracy=2)
    array([2., 2., 2.])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    return np.full(_checks.positive(g, "g").shape, float(g_s))


def luttinger_contact_reflection(g: ArrayLike) -> NDArray[np.float64]:
    """Plasmon (current) reflection amplitude ``gamma = (1 - g)/(1 + g)`` at a wire-lead contact.

    Positive for repulsive interactions (``g < 1``), negative (Andreev-like) for
    attractive ones, zero for free electrons.

    Parameters
    ----------
    g : array_like
        Interaction parameter ``g > 0`` of the wire (the lead has g = 1).

    Returns
    -------
    ndarray
        gamma in (-1, 1), the shape of `g`.

    Examples
    --------
    >>> luttinger_contact_reflection([0.5, 1.0])
    array([0.33333333, 0.        ])
    """
    gg = _checks.positive(g, "g")
    return (1.0 - gg) / (1.0 + gg)


def luttinger_ac_conductance(
    angular_frequency: ArrayLike,
    *,
    g: ArrayLike,
    length: ArrayLike,
    fermi_velocity: ArrayLike,
    spin_degeneracy: int,
) -> NDArray[np.complex128]:
    """Frequency-dependent conductance of a Luttinger-liquid wire between Fermi-liquid leads.

    The nonlocal conductance from the left contact to the right contact (current just
    right of the wire in response to a voltage drop just left of it; time
    dependence ``exp(-i w t)``),

        G(w) = g_s (e^2/h) (1 - gamma^2) exp(i w tau) / (1 - gamma^2 exp(2 i w tau)),

    with ``gamma = (1 - g)/(1 + g)`` and plasmon transit time ``tau = g L / v_F``.
    Properties:

    * ``G(0) = g_s e^2/h`` for every g (the dc result);
    * ``g = 1``: ``G = g_s (e^2/h) exp(i w L / v_F)``, pure propagation, ``|G| = g_s``;
    * ``|G|`` oscillates with period ``pi / tau`` in w between ``g_s`` (at
      ``w tau = n pi``) and ``g_s 2g/(1 + g^2)`` (at ``w tau = (n + 1/2) pi``); its
      average ``<|G|^2>`` over a period is ``g_s^2 2g/(1 + g^2)``, the phase-averaged
      (incoherent) transmission of two contacts of plasmon transmission
      ``1 - gamma^2 = 4g/(1 + g)^2`` each. Without dissipation the oscillation does
      not decay at high frequency.

    Parameters
    ----------
    angular_frequency : array_like
        Angular frequency w (any sign; ``G(-w) = conj(G(w))``).
    g : array_like
        Interaction parameter ``g > 0`` of the wire.
    length : array_like
        Wire length ``L >= 0``.
    fermi_velocity : array_like
        Fermi velocity ``v_F > 0``, in units such that ``w L / v_F`` is dimensionless.
        All inputs broadcast together.
    spin_degeneracy : {1, 2}
        g_s (for spinful electrons g is the charge-sector parameter).

    Returns
    -------
    ndarray of complex
        Conductance in units of e^2/h.

    Examples
    --------
    >>> g = luttinger_ac_conductance([0.0, np.pi / 2], g=0.5, length=1.0,
    ...                              fermi_velocity=0.5, spin_degeneracy=1)
    >>> np.round(np.abs(g), 6)                 # 1 at dc, 2g/(1+g^2) at w tau = pi/2
    array([1. , 0.8])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    w = _checks.real_array(angular_frequency, "angular_frequency")
    gg = _checks.positive(g, "g")
    wire = _checks.positive(length, "length", allow_zero=True)
    v_f = _checks.positive(fermi_velocity, "fermi_velocity")
    w, gg, wire, v_f = np.broadcast_arrays(w, gg, wire, v_f)
    gamma2 = ((1.0 - gg) / (1.0 + gg)) ** 2
    transit = np.exp(1j * w * gg * wire / v_f)
    return g_s * (1.0 - gamma2) * transit / (1.0 - gamma2 * transit**2)
