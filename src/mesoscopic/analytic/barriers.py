"""Exact transmission probabilities of one-dimensional barriers.

Two families:

* Continuum (effective-mass) barriers, ``-hbar^2/(2 m*) psi'' + V(x) psi = E psi`` with
  ``V = 0`` in both leads. Units: energies in meV, lengths in nm, delta-barrier
  strengths in meV nm, the effective mass in units of m_e (default 0.067, GaAs).
  Energies are measured from the lead band bottom; ``E <= 0`` has no propagating
  state and gives ``T = 0``.
* Tight-binding chains, ``-t psi_{j-1} - t psi_{j+1} + V_j psi_j = E psi_j``: the
  hopping matrix element is ``-t`` with ``t > 0``, so the lead band is
  ``E = -2 t cos k`` for ``0 < k < pi``. Energies and onsite potentials are in the
  unit of `hopping` (default 1, i.e. in units of t). Outside the lead band,
  ``|E| >= 2t``, there is no propagating mode and ``T = 0``; this includes the band
  edges themselves, where the lead velocity vanishes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from .. import _checks
from . import _common

__all__ = [
    "chain_barrier_transmission",
    "chain_impurity_transmission",
    "delta_barrier_transmission",
    "rectangular_barrier_transmission",
]

# Above this decay exponent kappa*a (or eta*L) the hyperbolic forms switch to logarithms,
# where sinh would overflow long before the transmission underflows.
_LOG_SWITCH = 20.0


def delta_barrier_transmission(
    energy: ArrayLike,
    strength: ArrayLike,
    *,
    effective_mass: float = _common.GAAS_EFFECTIVE_MASS,
) -> NDArray[np.float64]:
    """Transmission through a delta barrier ``V(x) = alpha delta(x)``.

    ``T(E) = 1 / (1 + m* alpha^2 / (2 hbar^2 E))`` for ``E > 0`` and 0 for ``E <= 0``
    (no propagating state in the leads). The sign of alpha does not matter.

    Parameters
    ----------
    energy : array_like
        Energy E in meV, from the lead band bottom.
    strength : array_like
        Barrier strength alpha in meV nm (a well if negative); broadcast with `energy`.
    effective_mass : float, optional
        Effective mass in units of m_e (default 0.067, GaAs).

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> round(float(delta_barrier_transmission(10.0, 50.0)), 6)
    0.900975
    >>> delta_barrier_transmission([-1.0, 0.0], 50.0)
    array([0., 0.])
    """
    e = _checks.real_array(energy, "energy")
    alpha = _checks.real_array(strength, "strength")
    c = _common.kinetic_prefactor(effective_mass)
    e, alpha = np.broadcast_arrays(e, alpha)
    out = np.zeros(e.shape)
    open_ = e > 0
    # T = 4 c E / (4 c E + alpha^2) with c = hbar^2/2m*, written with hypot so that neither
    # alpha = 0 nor a huge alpha can divide by zero or overflow.
    root = np.sqrt(4.0 * c * e[open_])
    out[open_] = (root / np.hypot(root, alpha[open_])) ** 2
    return out


def _sin_over(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """sin(x)/x with the limit 1 at x = 0."""
    return np.sinc(x / np.pi)


def rectangular_barrier_transmission(
    energy: ArrayLike,
    height: ArrayLike,
    width: ArrayLike,
    *,
    effective_mass: float = _common.GAAS_EFFECTIVE_MASS,
) -> NDArray[np.float64]:
    """Exact transmission through a rectangular barrier of height V0 and width a.

    With ``c = hbar^2 / (2 m*)``, ``k^2 = E / c`` in the leads and

    * ``E > V0``: ``q^2 = (E - V0)/c``,
      ``T = 1 / (1 + V0^2 sin^2(q a) / (4 E (E - V0)))`` (over-barrier oscillations,
      ``T = 1`` when ``q a = n pi``);
    * ``E < V0``: ``kappa^2 = (V0 - E)/c``,
      ``T = 1 / (1 + V0^2 sinh^2(kappa a) / (4 E (V0 - E)))`` (tunnelling);
    * ``E = V0``: the common limit ``T = 1 / (1 + V0 a^2 / (4 c))``.

    The three cases are evaluated as one smooth function of ``E - V0`` (through
    ``sin(x)/x`` and ``sinh(x)/x``), so there is no NaN at ``E = V0``, and deep
    tunnelling is computed in logarithms, so there is no overflow. A negative V0
    describes a square well. ``E <= 0`` gives 0.

    Parameters
    ----------
    energy : array_like
        Energy E in meV, from the lead band bottom.
    height : array_like
        Barrier height V0 in meV (any sign).
    width : array_like
        Barrier width a in nm, ``>= 0``. All three broadcast together.
    effective_mass : float, optional
        Effective mass in units of m_e (default 0.067, GaAs), the same in the barrier
        and the leads.

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> t = rectangular_barrier_transmission([5.0, 10.0, 20.0], 10.0, 10.0)
    >>> [round(float(x), 6) for x in t]
    [0.461008, 0.694621, 0.894724]
    """
    e = _checks.real_array(energy, "energy")
    v0 = _checks.real_array(height, "height")
    a = _checks.positive(width, "width", allow_zero=True)
    c = _common.kinetic_prefactor(effective_mass)
    e, v0, a = np.broadcast_arrays(e, v0, a)
    out = np.zeros(e.shape)

    open_ = e > 0
    e_o, v_o, a_o = e[open_], v0[open_], a[open_]
    # T = 1/(1 + (V0 a)^2 S / (4 c E)) with S = (sin(qa)/(qa))^2 or (sinh(ka)/(ka))^2,
    # evaluated as (sqrt(4cE) / hypot(sqrt(4cE), V0 a sqrt(S)))^2 so that nothing overflows.
    root = np.sqrt(4.0 * c * e_o)
    strength = np.abs(v_o) * a_o
    x = np.sqrt(np.abs(e_o - v_o) / c) * a_o  # q a above the barrier, kappa a below
    shape_factor = np.ones_like(x)
    above = (e_o > v_o) & (x > 0)
    shape_factor[above] = np.abs(_sin_over(x[above]))
    below = (e_o < v_o) & (x <= _LOG_SWITCH)
    shape_factor[below] = 1.0 / _common.x_over_sinh(x[below])
    t_open = (root / np.hypot(root, strength * shape_factor)) ** 2

    deep = (e_o < v_o) & (x > _LOG_SWITCH)
    if np.any(deep):
        xd = x[deep]
        log_ratio = 2.0 * (
            np.log(strength[deep]) - np.log(root[deep]) + _common.log_sinh(xd) - np.log(xd)
        )
        t_open[deep] = expit(-log_ratio)
    out[open_] = t_open
    return out


def _chain_lead_factor(e: NDArray[np.float64], t: float) -> NDArray[np.float64]:
    """4 t^2 sin^2 k = (2t - E)(2t + E) for energies inside the lead band |E| < 2t."""
    # The factored form keeps full relative precision at the band edges.
    return (2.0 * t - e) * (2.0 * t + e)


def chain_impurity_transmission(
    energy: ArrayLike,
    onsite: ArrayLike,
    *,
    hopping: float = 1.0,
) -> NDArray[np.float64]:
    """Transmission of a tight-binding chain through one site of onsite energy eps.

    ``T = 1 / (1 + (eps / (2 t sin k))^2) = (4t^2 - E^2) / (4t^2 - E^2 + eps^2)``
    for ``|E| < 2t`` with ``E = -2t cos k`` (hopping matrix element ``-t``); 0 for
    ``|E| >= 2t``.

    Parameters
    ----------
    energy : array_like
        Energy E in the unit of `hopping`.
    onsite : array_like
        Onsite energy eps of the impurity site, same unit; broadcast with `energy`.
    hopping : float, optional
        Hopping t > 0 (the matrix element is -t); default 1, i.e. energies in units of t.

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> chain_impurity_transmission([0.0, 0.0, 3.0], [0.0, 2.0, 0.0])
    array([1. , 0.5, 0. ])
    """
    e = _checks.real_array(energy, "energy")
    eps = _checks.real_array(onsite, "onsite")
    t = float(_checks.positive(hopping, "hopping"))
    e, eps = np.broadcast_arrays(e, eps)
    out = np.zeros(e.shape)
    inside = np.abs(e) < 2.0 * t
    root = np.sqrt(_chain_lead_factor(e[inside], t))
    out[inside] = (root / np.hypot(root, eps[inside])) ** 2
    return out


def chain_barrier_transmission(
    energy: ArrayLike,
    height: ArrayLike,
    length: int,
    *,
    hopping: float = 1.0,
) -> NDArray[np.float64]:
    """Exact transmission of a chain through L consecutive sites at onsite energy V.

    Writing the wave equation as ``(psi_{j+1}, psi_j) = M_j (psi_j, psi_{j-1})`` with
    ``M_j = [[(V_j - E)/t, -1], [1, 0]]``, the barrier's transfer matrix is ``M^L`` with
    ``det M = 1``, which the Cayley-Hamilton theorem reduces to Chebyshev polynomials
    of the second kind: ``M^L = U_{L-1}(y) M - U_{L-2}(y) 1`` with
    ``y = (V - E)/(2t)``. Matching plane waves ``e^{ikj}`` of the leads
    (``E = -2t cos k``) gives the closed form

        T = 1 / (1 + (V / (2 t sin k))^2 U_{L-1}(y)^2),

    valid both inside the barrier's own band (``|y| < 1``,
    ``U_{L-1} = sin(L theta)/sin(theta)``, ``y = cos theta``: Fabry-Pérot resonances
    with ``T = 1`` at ``L theta = n pi``) and outside it (``|y| > 1``,
    ``|U_{L-1}| = sinh(L eta)/sinh(eta)``, ``|y| = cosh eta``: evanescent tunnelling,
    computed in logarithms so that long barriers do not overflow). ``L = 1``
    reproduces :func:`chain_impurity_transmission`; ``L = 0`` or ``V = 0`` give 1.
    Outside the lead band, ``|E| >= 2t``, the result is 0.

    Parameters
    ----------
    energy : array_like
        Energy E in the unit of `hopping`.
    height : array_like
        Onsite energy V of the barrier sites, same unit; broadcast with `energy`.
    length : int
        Number L >= 0 of barrier sites.
    hopping : float, optional
        Hopping t > 0 (matrix element -t); default 1, i.e. energies in units of t.

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of `energy` and `height`.

    Examples
    --------
    >>> round(float(chain_barrier_transmission(0.0, 3.0, 5)), 8)   # evanescent
    0.0001469
    >>> float(chain_barrier_transmission(1.0, 2.0, 1)) == float(
    ...     chain_impurity_transmission(1.0, 2.0))
    True
    """
    e = _checks.real_array(energy, "energy")
    v = _checks.real_array(height, "height")
    sites = _common.integer_option(length, "length", minimum=0)
    t = float(_checks.positive(hopping, "hopping"))
    e, v = np.broadcast_arrays(e, v)
    out = np.zeros(e.shape)
    inside = np.abs(e) < 2.0 * t
    if sites == 0:
        out[inside] = 1.0
        return out

    e_i, v_i = e[inside], v[inside]
    vel2 = _chain_lead_factor(e_i, t)
    y = (v_i - e_i) / (2.0 * t)
    ay = np.abs(y)
    t_in = np.ones_like(y)

    band = ay <= 1.0
    theta = np.arccos(y[band])
    sin_theta = np.sin(theta)
    u = np.full_like(theta, float(sites))  # the limit U_{L-1}(+-1)^2 = L^2 at theta = 0, pi
    regular = sin_theta > 0
    u[regular] = np.sin(sites * theta[regular]) / sin_theta[regular]
    root = np.sqrt(vel2[band])
    t_in[band] = (root / np.hypot(root, v_i[band] * u)) ** 2

    # Outside the barrier's band V != 0 (|V - E| > 2t > |E|), so the logarithms are finite.
    gap = ~band
    eta = np.arccosh(ay[gap])
    log_u = _common.log_sinh(sites * eta) - _common.log_sinh(eta)
    log_ratio = 2.0 * np.log(np.abs(v_i[gap])) + 2.0 * log_u - np.log(vel2[gap])
    t_in[gap] = expit(-log_ratio)

    out[inside] = t_in
    return out
