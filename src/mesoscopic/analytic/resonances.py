"""Resonant tunnelling and Coulomb-blockade conductance peaks of a quantum dot.

Three regimes of a dot coupled to a left and a right lead:

* coherent resonant tunnelling through one level (Breit-Wigner), ``kT << Gamma``;
* sequential tunnelling through one discrete level of a Coulomb-blockaded dot
  (Beenakker, Phys. Rev. B 44, 1646 (1991)), ``Gamma << kT << E_C`` and
  ``kT <<`` level spacing;
* the metallic (classical) Coulomb-blockade peak, level spacing ``<< kT << E_C``
  (Kulik and Shekhter, Sov. Phys. JETP 41, 308 (1975); Glazman and Shekhter,
  J. Phys.: Condens. Matter 1, 5811 (1989); Beenakker 1991).

Energies, tunnel broadenings and ``kT`` share one unit of the user's choice. The
broadenings ``Gamma_L``, ``Gamma_R`` are energies, ``hbar`` times the tunnelling rates
out of the level into each lead; ``Gamma = Gamma_L + Gamma_R`` is the full width at
half maximum of the Breit-Wigner resonance.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from .. import _checks
from . import _common

__all__ = [
    "breit_wigner_transmission",
    "metallic_dot_conductance",
    "sequential_tunneling_conductance",
]


def breit_wigner_transmission(
    energy: ArrayLike,
    *,
    level: ArrayLike,
    gamma_left: ArrayLike,
    gamma_right: ArrayLike,
) -> NDArray[np.float64]:
    """Breit-Wigner transmission ``Gamma_L Gamma_R / ((E - eps)^2 + (Gamma/2)^2)``.

    The peak value at ``E = eps`` is ``4 Gamma_L Gamma_R / Gamma^2`` (1 for symmetric
    coupling), the full width at half maximum is ``Gamma = Gamma_L + Gamma_R``, and the
    area is ``2 pi Gamma_L Gamma_R / Gamma``. Its limits as a linear conductance of
    non-interacting electrons: ``g_s (e^2/h) T(mu)`` at ``kT = 0``, and, for
    ``kT >> Gamma``, ``g_s`` times :func:`sequential_tunneling_conductance` with
    ``spin_degeneracy=1`` (the area times ``-df/dE``). An uncoupled level
    (``Gamma_L = Gamma_R = 0``) transmits nothing.

    Parameters
    ----------
    energy : array_like
        Energy E.
    level : array_like
        Resonance energy eps, same unit.
    gamma_left, gamma_right : array_like
        Broadenings ``Gamma_L, Gamma_R >= 0`` (energies, ``hbar`` times the decay rates).
        All inputs broadcast together.

    Returns
    -------
    ndarray
        Transmission probability in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> breit_wigner_transmission([0.0, 1.0], level=0.0, gamma_left=1.0, gamma_right=1.0)
    array([1. , 0.5])
    """
    e = _checks.real_array(energy, "energy")
    eps = _checks.real_array(level, "level")
    gl = _checks.positive(gamma_left, "gamma_left", allow_zero=True)
    gr = _checks.positive(gamma_right, "gamma_right", allow_zero=True)
    e, eps, gl, gr = np.broadcast_arrays(e, eps, gl, gr)
    denominator = (e - eps) ** 2 + 0.25 * (gl + gr) ** 2
    out = np.zeros(e.shape)
    nonzero = denominator > 0
    out[nonzero] = gl[nonzero] * gr[nonzero] / denominator[nonzero]
    return out


def sequential_tunneling_conductance(
    detuning: ArrayLike,
    *,
    kT: ArrayLike,
    gamma_left: ArrayLike,
    gamma_right: ArrayLike,
    spin_degeneracy: int,
) -> NDArray[np.float64]:
    """Coulomb-blockade peak of sequential tunnelling through one level, in units of e^2/h.

    Rate equations for the two charge states of the dot (empty; one electron in
    the level, in any of its ``d`` spin states) with tunnelling-in rates
    ``d Gamma_j f_j(eps) / hbar`` and tunnelling-out rates
    ``Gamma_j (1 - f_j(eps)) / hbar`` through lead ``j`` give the exact current
    ``I = (e d / hbar) Gamma_L Gamma_R (f_L - f_R) / (Gamma_L (1 + (d-1) f_L) + Gamma_R
    (1 + (d-1) f_R))``. Its linear response is

        G = (e^2/h) 2 pi (Gamma_L Gamma_R / Gamma) d f (1 - f) / (kT (1 + (d - 1) f)),

    with ``f = 1 / (exp(delta/kT) + 1)`` and ``delta = eps - mu``. For a non-degenerate
    level (``d = 1``) this is Beenakker's (1991) result

        G = (e^2/h) (2 pi / (4 kT)) (Gamma_L Gamma_R / Gamma) cosh^-2(delta / (2 kT)),

    a peak at ``delta = 0`` of height ``(e^2/h) (pi / (2 kT)) Gamma_L Gamma_R / Gamma``
    (proportional to ``1/T``) and full width at half maximum
    ``4 ln(1 + sqrt 2) kT = 3.525 kT``. For a spin-degenerate level (``d = 2``,
    at most one extra electron because of the charging energy) the peak is higher by
    ``8 (3 - 2 sqrt 2) = 1.373`` and sits at ``delta = (kT/2) ln 2``.

    Valid for ``Gamma << kT << E_C`` and ``kT <<`` level spacing; the charging energy
    is included in ``eps`` (the addition energy of the level).

    Parameters
    ----------
    detuning : array_like
        ``delta = eps - mu``: the level's addition energy above the leads' common
        electrochemical potential (a gate sweep moves it linearly).
    kT : array_like
        Thermal energy ``k_B T > 0``, same unit.
    gamma_left, gamma_right : array_like
        Tunnel broadenings ``Gamma_L, Gamma_R >= 0`` (``hbar`` times the rates, per spin
        state), not both zero. All inputs broadcast together.
    spin_degeneracy : {1, 2}
        d: 1 for a non-degenerate (or spin-split) level, 2 for a spin-degenerate one.

    Returns
    -------
    ndarray
        Linear conductance in units of e^2/h.

    Examples
    --------
    >>> g = sequential_tunneling_conductance([0.0, 3.525 / 2], kT=1.0, gamma_left=0.01,
    ...                                      gamma_right=0.01, spin_degeneracy=1)
    >>> [round(float(x), 5) for x in g]     # peak pi Gamma_L Gamma_R / (2 kT Gamma)
    [0.00785, 0.00393]
    """
    delta = _checks.real_array(detuning, "detuning")
    kt = _checks.positive(kT, "kT")
    gl = _checks.positive(gamma_left, "gamma_left", allow_zero=True)
    gr = _checks.positive(gamma_right, "gamma_right", allow_zero=True)
    d = _common.spin_degeneracy(spin_degeneracy)
    delta, kt, gl, gr = np.broadcast_arrays(delta, kt, gl, gr)
    total = gl + gr
    if np.any(total <= 0):
        raise ValueError(
            "gamma_left + gamma_right must be > 0 (the level must couple to a lead), got "
            f"gamma_left={float(gl[total <= 0].flat[0])!r}, "
            f"gamma_right={float(gr[total <= 0].flat[0])!r}"
        )
    with np.errstate(over="ignore"):  # |delta| / kT beyond the float range is +-inf: f = 0 or 1
        x = delta / kt
    occupied = expit(-x)  # f(delta), overflow-free
    empty = expit(x)  # 1 - f(delta), without cancellation in the tail
    thermal = d * occupied * empty / (kt * (1.0 + (d - 1) * occupied))
    return 2.0 * np.pi * (gl * gr / total) * thermal


def metallic_dot_conductance(
    detuning: ArrayLike,
    *,
    kT: ArrayLike,
    conductance_left: ArrayLike,
    conductance_right: ArrayLike,
) -> NDArray[np.float64]:
    """Classical Coulomb-blockade peak of a metallic dot (orthodox theory).

    For level spacing ``<< kT << E_C`` only two charge states N and N+1 matter near a
    charge-degeneracy point. With the orthodox tunnelling rates
    ``Gamma_j(x) = (G_j / e^2) x / (exp(x/kT) - 1)`` for a transition that costs
    energy x through junction j, the linear conductance is

        G = G_inf (delta/kT) / (2 sinh(delta/kT)),   G_inf = G_L G_R / (G_L + G_R),

    (Kulik and Shekhter 1975; Glazman and Shekhter 1989; Beenakker 1991, where
    ``delta`` is called Delta_min). The peak height ``G_L G_R / (2 (G_L + G_R))``, half
    the series conductance of the two junctions, does not depend on temperature;
    the full width at half maximum is ``4.355 kT``. At ``kT = 0`` the peak is zero
    except at ``delta = 0``, where it keeps its height.

    Parameters
    ----------
    detuning : array_like
        ``delta = E(N+1) - E(N) - mu``: energy cost of adding an electron from the
        leads, including the charging energy (zero at the charge-degeneracy point).
    kT : array_like
        Thermal energy ``k_B T >= 0``, same unit as `detuning`.
    conductance_left, conductance_right : array_like
        Tunnel-junction conductances ``G_L, G_R >= 0`` (any unit, e.g. e^2/h or siemens),
        not both zero. All inputs broadcast together.

    Returns
    -------
    ndarray
        Linear conductance, in the unit of `conductance_left`.

    Examples
    --------
    >>> g = metallic_dot_conductance([0.0, 1.0], kT=1.0, conductance_left=0.1,
    ...                              conductance_right=0.1)
    >>> [round(float(x), 6) for x in g]
    [0.025, 0.021273]
    """
    delta = _checks.real_array(detuning, "detuning")
    kt = _checks.temperature(kT, "kT")
    g_left = _checks.positive(conductance_left, "conductance_left", allow_zero=True)
    g_right = _checks.positive(conductance_right, "conductance_right", allow_zero=True)
    delta, kt, g_left, g_right = np.broadcast_arrays(delta, kt, g_left, g_right)
    total = g_left + g_right
    if np.any(total <= 0):
        raise ValueError(
            "conductance_left + conductance_right must be > 0, got "
            f"conductance_left={float(g_left[total <= 0].flat[0])!r}, "
            f"conductance_right={float(g_right[total <= 0].flat[0])!r}"
        )
    shape = np.zeros(delta.shape)
    hot = kt > 0
    with np.errstate(over="ignore"):  # an overflowing delta / kT is +-inf: the tail, 0
        shape[hot] = _common.x_over_sinh(delta[hot] / kt[hot])
    shape[~hot & (delta == 0)] = 1.0
    return 0.5 * g_left * g_right / total * shape
