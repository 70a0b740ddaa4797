"""Andreev reflection at a normal-metal / superconductor junction (BTK theory).

Two references of different scope:

* The textbook Blonder-Tinkham-Klapwijk formulas (G. E. Blonder, M. Tinkham and
  T. M. Klapwijk, Phys. Rev. B 25, 4515 (1982), Table II): a delta barrier of dimensionless
  strength ``Z = H / (hbar v_F)`` between a normal metal and an s-wave superconductor with
  gap ``Delta``, in the Andreev approximation (``Delta, E << E_F``). Energies ``E`` and
  ``Delta`` share any one unit. :func:`btk_reflection` gives the Andreev and normal
  reflection probabilities ``A(E)`` and ``B(E)``, :func:`btk_conductance` the conductance
  ``1 + A - B`` in units of ``e^2/h`` per spin channel (2 on the Andreev plateau at
  ``Z = 0``; ``1 / (1 + Z^2)`` far above the gap), optionally for a spin-polarized current.
* The exact solution of the tight-binding version of the same junction,
  :func:`btk_chain_reflection`: a chain with hopping ``-t`` whose sites ``j < 0`` are normal,
  site ``j = 0`` carries a barrier ``U``, and sites ``j > 0`` are superconducting, in the
  Bogoliubov-de Gennes basis (electron, hole). It contains no Andreev approximation, so it is
  exact at any ``Delta / t`` and reduces to the textbook formulas as ``Delta / t -> 0`` with
  ``Z = U / (2 t sin k_F)`` (:func:`btk_barrier_strength`; the single-site barrier has the
  normal-state transmission ``1 / (1 + Z^2)`` of BTK's delta barrier at the Fermi energy).
  It is written in a form that keeps full relative accuracy when ``Delta`` is many orders
  below the bandwidth (the small differences of nearby Bloch factors are taken from the
  exact differences of their energies, never by subtraction), and it uses no numerical
  scattering solver: it is the reference the lattice model
  :func:`mesoscopic.models.btk_junction` is checked against.

Spin polarization. A current of polarization ``P`` is taken, following Mazin, Golubov and
Nadgorny (J. Appl. Phys. 89, 7576 (2001)) and as fitted by Strijkers et al. (Phys. Rev. B
63, 104510 (2001)), as a mixture of an unpolarized part, weight ``1 - P``, with the BTK
conductance, and a fully polarized part, weight ``P``, that cannot be Andreev reflected
(the reflected hole would need the other, absent, spin band and is evanescent):
``G_P = (1 - P) G_BTK + P G_pol`` with ``G_pol = 0`` for ``E < Delta`` and
``G_pol = 4 beta / ((1 + beta)^2 + 4 Z^2)``, ``beta = E / sqrt(E^2 - Delta^2)``, above the
gap. ``G_pol`` is the Andreev-approximation limit of a normal side whose opposite-spin
(hole) band lies far from the Fermi level, so that the hole wave vanishes at the barrier;
on the chain it is the limit of a large ``exchange`` in :func:`btk_chain_reflection`.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks

__all__ = [
    "btk_barrier_height",
    "btk_barrier_strength",
    "btk_chain_reflection",
    "btk_conductance",
    "btk_reflection",
]


def _gap(delta: ArrayLike) -> NDArray[np.float64]:
    return _checks.positive(delta, "delta")


def _polarization(value: ArrayLike) -> NDArray[np.float64]:
    arr = _checks.real_array(value, "polarization")
    if np.any((arr < 0) | (arr > 1)):
        bad = float(arr[(arr < 0) | (arr > 1)].flat[0])
        raise ValueError(f"polarization must lie in [0, 1], got {bad!r}")
    return arr


def btk_reflection(
    energy: ArrayLike, delta: ArrayLike, barrier_strength: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Andreev and normal reflection probabilities of the BTK model.

    ``E < Delta``: ``A = Delta^2 / (E^2 + (Delta^2 - E^2) (1 + 2 Z^2)^2)``, ``B = 1 - A``.
    ``E > Delta``: ``A = u^2 v^2 / g^2``, ``B = (u^2 - v^2)^2 Z^2 (1 + Z^2) / g^2`` with
    ``u^2, v^2 = (1 +- sqrt(E^2 - Delta^2) / E) / 2`` and ``g = u^2 + Z^2 (u^2 - v^2)``.
    Symmetric in ``E``.

    Parameters
    ----------
    energy : array_like
        Energy ``E`` from the Fermi level (same unit as `delta`).
    delta : array_like
        Superconducting gap ``Delta > 0``.
    barrier_strength : array_like
        Dimensionless barrier strength ``Z`` (its sign does not matter).

    Returns
    -------
    (A, B) : tuple of ndarray
        Probabilities in [0, 1], the broadcast shape of the inputs.

    Examples
    --------
    >>> a, b = btk_reflection([0.5, 2.0], 1.0, 0.0)
    >>> a.round(6).tolist(), b.round(6).tolist()
    ([1.0, 0.071797], [0.0, 0.0])
    """
    e = np.abs(_checks.real_array(energy, "energy"))
    gap = _gap(delta)
    z = _checks.real_array(barrier_strength, "barrier_strength")
    e, gap, z = np.broadcast_arrays(e, gap, z)
    z2 = z * z
    inside = e < gap
    a = np.empty(e.shape)
    b = np.empty(e.shape)
    # Inside the gap: written in e / Delta so that a zero energy needs no special case.
    x2 = (e[inside] / gap[inside]) ** 2
    a[inside] = 1.0 / (x2 + (1.0 - x2) * (1.0 + 2.0 * z2[inside]) ** 2)
    b[inside] = 1.0 - a[inside]
    out = ~inside
    root = np.sqrt((e[out] - gap[out]) * (e[out] + gap[out]))
    u2 = (1.0 + root / e[out]) / 2.0
    v2 = gap[out] ** 2 / (2.0 * e[out] * (e[out] + root))  # (1 - root / E) / 2, no cancellation
    diff = root / e[out]  # u^2 - v^2
    g = u2 + z2[out] * diff
    a[out] = u2 * v2 / g**2
    b[out] = diff**2 * z2[out] * (1.0 + z2[out]) / g**2
    return a, b


def btk_conductance(
    energy: ArrayLike,
    delta: ArrayLike,
    barrier_strength: ArrayLike,
    *,
    polarization: ArrayLike = 0.0,
) -> NDArray[np.float64]:
    """Conductance of an N/S junction per spin channel, in units of ``e^2/h``.

    ``G = (1 - P) (1 + A - B) + P G_pol`` (see the module docstring for the polarized part
    and its sources); at ``P = 0`` this is BTK's ``1 + A - B``: 2 on the Andreev plateau of a
    transparent junction (``Z = 0``, ``|E| < Delta``), ``1 / (1 + Z^2)`` (the normal-state
    value ``G_N``) for ``|E| >> Delta``. Divide by ``1 / (1 + Z^2)`` for ``G / G_N``.

    Parameters
    ----------
    energy : array_like
        Energy (bias ``eV``) from the Fermi level, unit of `delta`.
    delta : array_like
        Gap ``Delta > 0``.
    barrier_strength : array_like
        Dimensionless ``Z``.
    polarization : array_like, optional, keyword-only
        Current spin polarization ``P`` in [0, 1] (default 0).

    Returns
    -------
    ndarray
        ``G`` in ``e^2/h`` per channel, the broadcast shape of the inputs.

    Examples
    --------
    >>> btk_conductance([0.0, 0.5], 1.0, 0.0).tolist()
    [2.0, 2.0]
    >>> btk_conductance(0.5, 1.0, 0.0, polarization=1.0).tolist()
    0.0
    """
    p = _polarization(polarization)
    a, b = btk_reflection(energy, delta, barrier_strength)
    e = np.abs(_checks.real_array(energy, "energy"))
    e, gap, z, p = np.broadcast_arrays(e, _gap(delta), _checks.real_array(barrier_strength,
                                       "barrier_strength"), p)  # fmt: skip
    polarized = np.zeros(e.shape)
    out = e > gap
    beta = e[out] / np.sqrt((e[out] - gap[out]) * (e[out] + gap[out]))
    polarized[out] = 4.0 * beta / ((1.0 + beta) ** 2 + 4.0 * z[out] ** 2)
    return np.asarray((1.0 - p) * (1.0 + a - b) + p * polarized)


def btk_barrier_strength(barrier: float, fermi_energy: float, *, hopping: float = 1.0) -> float:
    """BTK's ``Z`` of a single-site barrier ``U`` on a chain: ``Z = U / (2 t sin k_F)``.

    ``2 t sin k_F`` is ``hbar v_F`` per lattice constant at the Fermi energy
    ``E_F = 2 t (1 - cos k_F)``, measured from the band bottom, so ``Z = U a / (hbar v_F)``
    is BTK's ``H / (hbar v_F)`` for a delta barrier of weight ``H = U a``; the normal-state
    transmission of the site at the Fermi energy is then exactly ``1 / (1 + Z^2)``.

    Parameters
    ----------
    barrier : float
        Onsite barrier ``U`` (unit of `hopping`).
    fermi_energy : float
        ``E_F`` from the band bottom, ``0 < E_F < 4 t``.
    hopping : float, optional, keyword-only
        ``t > 0`` (default 1).

    Examples
    --------
    >>> round(btk_barrier_strength(1.0, 2.0), 12)
    0.5
    """
    t, k_f = _fermi_momentum(fermi_energy, hopping)
    return float(barrier) / (2.0 * t * math.sin(k_f))


def btk_barrier_height(
    barrier_strength: float, fermi_energy: float, *, hopping: float = 1.0
) -> float:
    """The single-site barrier ``U = 2 t sin(k_F) Z`` of a given BTK ``Z``.

    The inverse of :func:`btk_barrier_strength`; same parameters with ``Z`` in place of
    ``U``.

    Examples
    --------
    >>> round(btk_barrier_height(0.5, 2.0), 12)
    1.0
    """
    t, k_f = _fermi_momentum(fermi_energy, hopping)
    return float(barrier_strength) * 2.0 * t * math.sin(k_f)


def _fermi_momentum(fermi_energy: float, hopping: float) -> tuple[float, float]:
    t = float(_checks.positive(hopping, "hopping"))
    e_f = float(_checks.real_array(fermi_energy, "fermi_energy"))
    if not 0 < e_f < 4 * t:
        raise ValueError(
            f"fermi_energy must lie inside the band, 0 < E_F < 4 t = {4 * t!r}, got {e_f!r}"
        )
    return t, math.acos(1.0 - e_f / (2.0 * t))


def _phase_difference(k_a: complex, k_b: complex, cos_b_minus_cos_a: complex) -> complex:
    """``exp(i k_a) - exp(i k_b)`` from the exact ``cos k_b - cos k_a``.

    ``e^{ia} - e^{ib} = 2i e^{is} sin((a - b)/2)`` and
    ``cos b - cos a = 2 sin s sin((a - b)/2)`` with ``s = (a + b)/2``: the difference of two
    nearby Bloch factors keeps full relative accuracy when their energies' difference is
    known exactly, however small it is next to the bandwidth.
    """
    s = (k_a + k_b) / 2
    return 1j * cmath.exp(1j * s) * cos_b_minus_cos_a / cmath.sin(s)


def _wave_number(cos_k: complex, *, decaying_right: bool) -> complex:
    """``k`` with ``cos k = cos_k``: in (0, pi) when real, else ``Im k > 0`` (decays to
    ``j -> +inf``) if `decaying_right`, ``Im k < 0`` (decays to ``j -> -inf``) otherwise."""
    k = complex(np.arccos(complex(cos_k)))
    if abs(k.imag) > 0 and (k.imag > 0) != decaying_right:
        k = k.conjugate()
    return k


def btk_chain_reflection(
    energy: float,
    *,
    delta: float,
    fermi_energy: float,
    barrier: float,
    hopping: float = 1.0,
    exchange: float = 0.0,
) -> tuple[float, float]:
    """Exact Andreev and normal reflection probabilities of the tight-binding BTK chain.

    The chain (Bogoliubov-de Gennes basis electron, hole; hopping ``-t tau_z``) has onsite
    ``(2t - E_F) tau_z`` on the normal sites ``j < 0`` (the hole row shifted to
    ``-(2t - E_F + exchange)`` there), the same plus ``U tau_z`` on the barrier site
    ``j = 0``, and ``(2t - E_F) tau_z + Delta tau_x`` on the superconducting sites
    ``j > 0``. An electron comes in from the normal side at energy ``E`` (from the Fermi
    level). The wave is a sum of Bloch waves on either side of the barrier (reflected
    electron and hole; electron- and hole-like quasiparticles, outgoing or decaying),
    continuous at ``j = 0``, with the jump ``psi_1^S - psi_1^N = U psi_0`` that the barrier
    site imposes; the two resulting linear equations are solved in closed form.

    ``exchange`` shifts the band of the reflected hole (the opposite spin of a
    ferromagnetic normal side) up by that amount: when its band no longer reaches the energy
    the hole is evanescent and ``A = 0`` (a half metal for ``exchange > E_F + E``).

    Parameters
    ----------
    energy : float
        ``E >= 0`` from the Fermi level, ``E != Delta`` (unit of `hopping`); the electron
        and hole of the normal side must lie in their band, ``E < E_F`` and
        ``E < 4 t - E_F``.
    delta : float
        Gap ``Delta > 0`` on the superconducting sites.
    fermi_energy : float
        ``E_F`` from the band bottom, ``0 < E_F < 4 t``.
    barrier : float
        Onsite barrier ``U`` on site 0 (see :func:`btk_barrier_height` for a given ``Z``).
    hopping : float, optional, keyword-only
        ``t > 0`` (default 1).
    exchange : float, optional, keyword-only
        Shift of the normal side's hole band (default 0).

    Returns
    -------
    (A, B) : tuple of float
        Andreev (``|r_he|^2 v_h / v_e``) and normal (``|r_ee|^2``) reflection probabilities;
        the conductance per channel is ``1 + A - B`` in ``e^2/h``.

    Examples
    --------
    >>> a, b = btk_chain_reflection(0.5e-3, delta=1e-3, fermi_energy=1.0, barrier=0.0)
    >>> round(a, 6), round(b, 6)
    (1.0, 0.0)
    """
    t = float(_checks.positive(hopping, "hopping"))
    gap = float(_gap(delta))
    e = float(_checks.real_array(energy, "energy"))
    e_f = float(_checks.real_array(fermi_energy, "fermi_energy"))
    u = float(_checks.real_array(barrier, "barrier")) / t
    x = float(_checks.real_array(exchange, "exchange")) / t
    if e < 0 or e == gap:
        raise ValueError(
            f"energy must be >= 0 and differ from delta = {gap!r} (where the electron- and "
            f"hole-like quasiparticles merge), got {e!r}"
        )
    if not (0 < e_f < 4 * t and e < e_f and e < 4 * t - e_f):
        raise ValueError(
            "the normal-side electron and hole must be in the band: need 0 < fermi_energy < "
            f"4 t, energy < fermi_energy and energy < 4 t - fermi_energy; got E = {e!r}, "
            f"E_F = {e_f!r}, t = {t!r}"
        )
    # Everything below in units of t.
    e, gap, xi0 = e / t, gap / t, 2.0 - e_f / t
    if e > gap:
        omega: complex = math.sqrt((e - gap) * (e + gap))
        e_minus_omega: complex = gap * gap / (e + omega.real)
    else:
        omega = 1j * math.sqrt((gap - e) * (gap + e))
        e_minus_omega = e - omega
    e_plus_omega = e + omega
    # Normal side: incoming electron k_e, reflected hole k_h (moving left, decaying to the
    # left when evanescent); superconducting side: electron-like k1 near +k_F, hole-like
    # k2 near -k_F, each outgoing or decaying to the right.
    cos_e = (xi0 - e) / 2
    cos_h = (xi0 + x + e) / 2
    cos_1 = (xi0 - omega) / 2
    cos_2 = (xi0 + omega) / 2
    k_e = math.acos(cos_e)
    k_h = _wave_number(cos_h, decaying_right=False)
    k_1 = _wave_number(cos_1, decaying_right=True)
    k_2 = -_wave_number(cos_2, decaying_right=False)
    lam_1, lam_2 = cmath.exp(1j * k_1), cmath.exp(1j * k_2)
    p1 = lam_1 - cmath.exp(-1j * k_e) - u
    p2 = _phase_difference(k_2, -k_e, cos_e - cos_2) - u
    q1 = _phase_difference(k_1, k_h, cos_h - cos_1) - u
    q2 = lam_2 - cmath.exp(1j * k_h) - u
    e_minus_1 = _phase_difference(k_e, k_1, cos_1 - cos_e)  # exp(i k_e) - lam_1
    e_minus_2 = cmath.exp(1j * k_e) - lam_2
    denominator = p1 * e_plus_omega * q2 - p2 * e_minus_omega * q1
    r_hole = 2j * math.sin(k_e) * gap * (lam_2 - lam_1) / denominator
    r_electron = (
        e_plus_omega * q2 * (e_minus_1 + u) - e_minus_omega * q1 * (e_minus_2 + u)
    ) / denominator
    normal = abs(r_electron) ** 2
    if abs(k_h.imag) > 0:
        return 0.0, normal
    return abs(r_hole) ** 2 * math.sin(k_h.real) / math.sin(k_e), normal
