"""Landauer formula at finite temperature and bias, and thermoelectric coefficients.

Energies may be in any unit; temperatures enter as thermal energies ``kT`` in the
same unit. Results are in units of ``e^2/h`` (conductance) or ``e/h`` times energy
(current) and already include the spin degeneracy ``g_s``, a documented keyword
that defaults to 1 (never a silent factor 2).

Transmission is given either as samples on a 1-D energy grid or as a callable.

* Samples are interpolated by a monotone piecewise cubic (``interpolation="pchip"``,
  the default), a not-a-knot cubic spline (``"cubic"``, error O(h^4) for smooth data)
  or straight lines (``"linear"``). The default cannot overshoot: on every grid
  interval the monotone cubic and the straight line stay between the two samples at
  its ends, so transmission sampled in ``[0, N]`` gives an interpolant, and hence a
  conductance, in ``[0, N]`` however coarse the grid and however sharp the steps of
  ``T(E)`` (channel openings, band edges). The cubic spline is more accurate for
  smooth, well-resolved data but rings at a step (overshoots by ~10% of its height, and
  can go negative), so it is opt-in. Samples must be ``>= 0`` (a transmission is a
  probability sum); negatives within rounding (``1e-12`` of the largest sample) are
  set to zero. The interpolant is integrated against the thermal kernel with
  Gauss-Legendre rules on every grid interval, whose order is chosen from the ratio of
  grid spacing to ``kT`` so that the quadrature error stays near machine precision:
  the integral of the interpolant is exact to ~1e-13 relative, and the only
  approximation is the interpolation itself.
* A callable ``T(E)`` (vectorized over ``E``) is integrated with an adaptive,
  vectorized Gauss-Legendre rule to 1e-10 relative.

Only the energy window where the kernels matter is integrated: ``mu ± 34 kT``
(:data:`THERMAL_WINDOW_KT`), one width for every integral of this package (conductance,
current, heat current, thermoelectric coefficients). Beyond it ``-df/dE`` (relative to its
peak) and ``f_L - f_R`` are below 1e-14, and the neglected tails of the integrands up to
the second power of ``(E - mu)`` are below ~1e-12 of the integral; only
:func:`onsager_integrals` of orders above 2 widens the window, by ``2 kT`` per further
power. A sampled grid must cover the window (a shortfall of up to 1e-3 of its
half-width, rounding in a grid built by the caller or a small bias, is accepted) and
resolve it (spacing ``<= kT`` inside it); both are checked, with errors that print the
energies with the digits that tell them apart and say which grid would do.

At ``kT = 0`` every integral is done exactly: the kernel ``-df/dE`` is a Dirac delta
(the transmission interpolated at ``mu``) and ``f_L - f_R`` a box between the
chemical potentials.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.integrate
import scipy.interpolate
import scipy.sparse
from numpy.typing import ArrayLike, NDArray

from . import _checks

__all__ = [
    "THERMAL_WINDOW_KT",
    "NoConductanceWarning",
    "ThermoelectricCoefficients",
    "current",
    "fermi_derivative",
    "fermi_dirac",
    "heat_current",
    "linear_conductance",
    "onsager_integrals",
    "thermoelectric_coefficients",
    "window_kT",
]

Interpolation = Literal["cubic", "pchip", "linear"]
Transmission = ArrayLike | Callable[..., Any]

#: Half-width, in units of ``kT``, of the energy window of every thermal integral:
#: ``mu ± 34 kT``. Beyond it ``-df/dE`` (relative to its peak ``1/(4 kT)``) and ``f``,
#: ``1 - f`` are below 1e-14, and the tails of ``(E - mu)^n (-df/dE)`` for ``n <= 2``
#: (conductance, current, heat current, thermoelectric coefficients) below ~1e-12 of the
#: integral. A sampled energy grid must cover this window around every chemical potential.
THERMAL_WINDOW_KT = 34.0
# Onsager integrals of orders above 2 widen the window by this much per further power.
_WINDOW_KT_PER_POWER = 2.0
# A grid may fall short of the window by this fraction of its half-width (rounding in a
# grid built by the caller, a small bias): the kernel there is still ~1e-14 of its peak.
_COVERAGE_RTOL = 1e-3
_TAIL_LEVEL = "1e-14"

# Gauss-Legendre orders for the sampled path are chosen so that the estimated
# quadrature error on one grid interval, rho**(-2 q), is below this level.
_QUADRATURE_LEVEL = 1e-16
_MIN_ORDER = 3  # exact for (quartic polynomial) x (constant): heat current at kT = 0
_MAX_ORDER = 10

# Callable path: adaptive bisection with a pair of Gauss-Legendre rules.
_ADAPTIVE_RTOL = 1e-11  # a decade below the promised 1e-10: estimates at steps can be low
_ADAPTIVE_LOW, _ADAPTIVE_HIGH = 8, 16
_ADAPTIVE_ROUNDS = 64
_ADAPTIVE_MAX_PANELS = 2_000_000

# Negative transmission down to this fraction of the largest value (at least 1) is
# rounding of a computed zero, set to zero; below it the input is refused.
_NEGATIVE_TOLERANCE = 1e-12

# Work per chunk of the vectorized sampled path (number of quadrature nodes).
_CHUNK_NODES = 1 << 16


class NoConductanceWarning(UserWarning):
    """The conductance vanishes, so ratios to it (thermopower, Lorenz ratio, ...) are NaN.

    Raised by :func:`thermoelectric_coefficients` where ``L0 = int T (-df/dE) dE`` is exactly
    zero: no transmission within the thermal window (an insulator, or a gap at ``kT = 0``).
    """


# --------------------------------------------------------------------------------------
# Distribution functions
# --------------------------------------------------------------------------------------


def _occupation_inputs(
    energy: ArrayLike, mu: ArrayLike, kT: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Checked energy, chemical potential and thermal energy of a Fermi function."""
    return (
        _checks.real_array(energy, "energy"),
        _checks.real_array(mu, "mu"),
        _checks.temperature(kT, "kT"),
    )


def fermi_dirac(
    energy: ArrayLike, mu: ArrayLike = 0.0, kT: ArrayLike = 0.0
) -> NDArray[np.float64]:
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
    energy, mu, kT = _occupation_inputs(energy, mu, kT)
    de, kT = np.broadcast_arrays(energy - mu, kT)
    out = np.empty(de.shape)
    hot = kT > 0
    # (E - mu) / kT may overflow for subnormal kT; tanh(+-inf) = +-1 is the right limit.
    with np.errstate(over="ignore"):
        out[hot] = 0.5 * (1.0 - np.tanh(0.5 * de[hot] / kT[hot]))
    cold = ~hot
    out[cold] = np.where(de[cold] < 0, 1.0, np.where(de[cold] > 0, 0.0, 0.5))
    return out


def fermi_derivative(energy: ArrayLike, mu: ArrayLike, kT: ArrayLike) -> NDArray[np.float64]:
    """Thermal broadening function ``-df/dE = 1 / (4 kT cosh^2((E - mu) / (2 kT)))``.

    A peak of unit area and width of order ``kT`` centred at `mu`, the kernel of the linear
    conductance. Evaluated as ``e / (kT (1 + e)^2)`` with ``e = exp(-|E - mu| / kT)``,
    so it never overflows.

    Parameters
    ----------
    energy, mu : array_like
        Energy and chemical potential, same unit; broadcast together.
    kT : array_like
        Thermal energy k_B T in the unit of `energy`, ``> 0``; broadcast. At ``kT = 0``
        the function is a Dirac delta, which has no array representation, so zero is
        refused (use :func:`linear_conductance`, which treats ``kT = 0`` exactly).

    Returns
    -------
    ndarray
        ``-df/dE`` in units of 1/energy, the broadcast shape of the inputs.

    Raises
    ------
    ValueError
        If any `kT` is negative or zero.

    Examples
    --------
    >>> float(fermi_derivative(0.0, 0.0, 0.5))  # peak value 1 / (4 kT)
    0.5
    >>> float(fermi_derivative(1e6, 0.0, 1.0))
    0.0
    """
    energy, mu, kT = _occupation_inputs(energy, mu, kT)
    if np.any(kT == 0):
        raise ValueError(
            "fermi_derivative needs kT > 0: at kT = 0 -df/dE is a Dirac delta at E = mu; "
            "use linear_conductance(..., kT=0), which treats that limit exactly"
        )
    x, kT = np.broadcast_arrays((energy - mu) / kT, kT)
    return _broadening(x) / kT


def _occupations(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``f(x) = 1/(1 + e^x)`` and ``1 - f(x)``, both to full relative accuracy."""
    small = np.exp(-np.abs(x))
    above = x >= 0
    denominator = 1.0 + small
    occupied = np.where(above, small, 1.0) / denominator
    empty = np.where(above, 1.0, small) / denominator
    return occupied, empty


def _broadening(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return ``kT * (-df/dE)`` at ``x = (E - mu) / kT``, overflow-free."""
    small = np.exp(-np.abs(x))
    return small / (1.0 + small) ** 2


def _reservoir_occupations(
    energy: NDArray[np.float64], mu: NDArray[np.float64], kT: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Occupation and its complement of a reservoir, any ``kT >= 0`` (step at ``kT = 0``)."""
    hot = kT > 0
    delta = energy - mu
    occupied, empty = _occupations(delta / np.where(hot, kT, 1.0))
    step = np.where(delta < 0, 1.0, np.where(delta > 0, 0.0, 0.5))
    return np.where(hot, occupied, step), np.where(hot, empty, 1.0 - step)


def _equal_temperature_window(
    energy: NDArray[np.float64],
    mu_left: NDArray[np.float64],
    mu_right: NDArray[np.float64],
    kT: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return ``f_L - f_R`` for reservoirs at the same ``kT > 0``.

    Uses the exact factorization ``f(a) - f(b) = (1 - exp(a - b)) f(a) (1 - f(b))``
    (``a <= b``), so the bias enters only through the prefactor ``expm1`` and the
    window keeps full relative accuracy for biases many orders of magnitude below
    ``kT``; ``f = (1 - tanh(x/2))/2`` then needs only absolute accuracy, and tanh
    never overflows.
    """
    bias = mu_left - mu_right
    half_inverse = 0.5 / kT
    lower = (energy - np.maximum(mu_left, mu_right)) * half_inverse
    upper = lower + np.abs(bias) * half_inverse
    prefactor = -0.25 * np.sign(bias) * np.expm1(-np.abs(bias) / kT)
    occupied = np.tanh(lower)
    np.subtract(1.0, occupied, out=occupied)
    empty = np.tanh(upper, out=upper)
    empty += 1.0
    occupied *= empty
    occupied *= prefactor
    return occupied


def _fermi_window(
    energy: NDArray[np.float64],
    mu_left: NDArray[np.float64],
    mu_right: NDArray[np.float64],
    kT_left: NDArray[np.float64],
    kT_right: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return ``f_L(E) - f_R(E)`` with small relative error wherever it is not negligible.

    Equal temperatures use :func:`_equal_temperature_window`. Otherwise the
    difference is taken between the small tails (occupations above the chemical
    potentials, vacancies below), never between two numbers close to 1.
    """
    equal = (kT_left == kT_right) & (kT_left > 0)
    if np.all(equal):
        return _equal_temperature_window(energy, mu_left, mu_right, kT_left)
    occupied_left, empty_left = _reservoir_occupations(energy, mu_left, kT_left)
    occupied_right, empty_right = _reservoir_occupations(energy, mu_right, kT_right)
    upper = (energy - mu_left) + (energy - mu_right) > 0
    window = np.where(upper, occupied_left - occupied_right, empty_right - empty_left)
    if np.any(equal):
        factored = _equal_temperature_window(
            energy, mu_left, mu_right, np.where(equal, kT_left, 1.0)
        )
        window = np.where(equal, factored, window)
    return window


# --------------------------------------------------------------------------------------
# Validation of the transmission input
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SampledTransmission:
    """Piecewise cubic interpolant of sampled transmission curves.

    ``coefficients[k, i, c]`` multiplies ``(E - knots[i]) ** (3 - k)`` on interval
    ``i`` for curve ``c``; ``curve_shape`` is the trailing shape of the samples.
    """

    knots: NDArray[np.float64]
    coefficients: NDArray[np.float64]
    curve_shape: tuple[int, ...]

    @property
    def spacing(self) -> NDArray[np.float64]:
        return np.diff(self.knots)

    def interval_of(self, energy: NDArray[np.float64]) -> NDArray[np.intp]:
        index = np.searchsorted(self.knots, energy, side="right") - 1
        return np.clip(index, 0, self.knots.size - 2)

    def __call__(self, energy: NDArray[np.float64]) -> NDArray[np.float64]:
        """Interpolated curves at 1-D `energy`, shape ``(len(energy), n_curves)``."""
        interval = self.interval_of(energy)
        local = (energy - self.knots[interval])[:, None]
        c = self.coefficients[:, interval, :]
        return ((c[0] * local + c[1]) * local + c[2]) * local + c[3]


_MIN_POINTS = {"cubic": 4, "pchip": 2, "linear": 2}


def _energy_grid(energies: ArrayLike, interpolation: str) -> NDArray[np.float64]:
    if interpolation not in _MIN_POINTS:
        raise ValueError(
            f"interpolation must be one of 'cubic', 'pchip', 'linear', got {interpolation!r}"
        )
    return _checks.energy_grid(
        energies,
        "energies",
        min_points=_MIN_POINTS[interpolation],
        reason=f" for interpolation={interpolation!r}",
    )


def _non_negative(
    values: NDArray[np.float64], energy: NDArray[np.float64], source: str | None = None
) -> NDArray[np.float64]:
    """Refuse negative transmission; set negatives within rounding to zero.

    `energy` has the shape of `values` or of their first axis. Transmission is a sum of
    probabilities: a negative value is a mistake (a sign, a difference of two quantities, a
    reflection subtracted from the wrong channel count), except for the rounding of a
    computed zero, tolerated down to ``-_NEGATIVE_TOLERANCE`` times the largest value (at
    least 1). `source` names the callable that returned `values` (None for samples).
    """
    if values.size == 0:
        return values
    floor = -_NEGATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(values))))
    if np.any(values < floor):
        index = np.unravel_index(int(np.argmin(values)), values.shape)
        at = float(energy[index if energy.shape == values.shape else index[0]])
        value = float(values[index])
        if source is None:
            where = ", ".join(str(int(i)) for i in index)
            seen = f"transmission[{where}] = {value!r} (at E = {at!r})"
        else:
            seen = f"{source} = {value!r} at E = {at!r}"
        raise ValueError(
            f"transmission must be >= 0 (a sum of probabilities), got {seen}; negative "
            f"values within {_NEGATIVE_TOLERANCE:g} of the largest transmission count as "
            "rounding and are set to zero"
        )
    return np.maximum(values, 0.0)


def _sampled_transmission(
    energies: ArrayLike | None, transmission: ArrayLike, interpolation: str
) -> _SampledTransmission:
    if energies is None:
        raise ValueError("energies must be given when transmission is an array of samples")
    grid = _energy_grid(energies, interpolation)
    values = _checks.real_array(transmission, "transmission")
    if values.ndim == 0 or values.shape[0] != grid.size:
        raise ValueError(
            f"transmission must have shape (n_E, ...) with n_E = len(energies) = {grid.size} "
            f"samples along its first axis, got shape {values.shape}"
        )
    values = _non_negative(values, grid)
    curve_shape = values.shape[1:]
    flat = values.reshape(grid.size, -1)
    if interpolation == "cubic":
        coefficients = scipy.interpolate.CubicSpline(grid, flat, axis=0, bc_type="not-a-knot").c
    elif interpolation == "pchip":
        # SciPy's harmonic mean of neighbouring slopes overflows for subnormal slopes (it
        # then takes a zero derivative, the correct limit): not worth a warning.
        with np.errstate(over="ignore"):
            coefficients = scipy.interpolate.PchipInterpolator(grid, flat, axis=0).c
    else:
        coefficients = np.zeros((4, grid.size - 1, flat.shape[1]))
        coefficients[2] = np.diff(flat, axis=0) / np.diff(grid)[:, None]
        coefficients[3] = flat[:-1]
    return _SampledTransmission(grid, np.ascontiguousarray(coefficients), curve_shape)


def _positional_arity(function: Callable[..., Any]) -> int:
    """Number of required positional parameters of a transmission callable."""
    if isinstance(function, np.ufunc):
        return int(function.nin)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without signature: assume T(E)
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(
        1
        for p in signature.parameters.values()
        if p.kind in kinds and p.default is inspect.Parameter.empty
    )


def _breakpoints(energies: ArrayLike | None) -> NDArray[np.float64]:
    if energies is None:
        return np.empty(0)
    points = _checks.real_array(energies, "energies")
    if points.ndim != 1:
        raise ValueError(
            "with a callable transmission, energies must be None or a 1-D array of "
            f"breakpoints, got shape {points.shape}"
        )
    if np.any(np.diff(points) <= 0):
        raise ValueError(
            "with a callable transmission, energies (breakpoints) must be strictly increasing"
        )
    return points


def _broadcast(**arrays: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Broadcast named arrays, with an error that names them and their shapes."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items())
        raise ValueError(
            f"these arguments must broadcast to a common shape, got shapes {shapes}"
        ) from None


_spin_degeneracy = _checks.spin_degeneracy


# --------------------------------------------------------------------------------------
# Grid checks and Gauss-Legendre order
# --------------------------------------------------------------------------------------


def window_kT(max_order: int = 0) -> float:
    """Half-width in units of ``kT`` of the window of the Onsager integral of `max_order`.

    :data:`THERMAL_WINDOW_KT` (34) for the orders 0, 1 and 2 that conductances, currents,
    heat currents and thermoelectric coefficients use; each power above 2 adds ``2 kT``.

    Examples
    --------
    >>> window_kT(), window_kT(2), window_kT(4)
    (34.0, 34.0, 38.0)
    """
    return THERMAL_WINDOW_KT + _WINDOW_KT_PER_POWER * max(0, int(max_order) - 2)


def _check_coverage(
    knots: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    what: str,
    halfwidth: float,
    kT: NDArray[np.float64] | None = None,
) -> None:
    """Refuse a grid that misses the window ``[min(lower), max(upper)]``.

    `kT` (shape of `lower`) sets the accepted shortfall, ``_COVERAGE_RTOL`` of the window's
    half-width ``halfwidth * kT`` at the pair that sets each edge (plus a few ulps): there
    the kernel is still ~1e-14 of its peak, so rounding in a grid built by the caller, or
    a bias far below ``kT`` added to its chemical potentials, loses nothing. Energies
    print with as many digits as it takes for the grid's end and the needed one to differ.
    """
    if lower.size == 0:
        return
    low_at, high_at = int(np.argmin(lower)), int(np.argmax(upper))
    need_lo, need_hi = float(lower[low_at]), float(upper[high_at])
    first, last = float(knots[0]), float(knots[-1])
    rounding = 8 * np.finfo(float).eps * max(abs(need_lo), abs(need_hi), abs(first), abs(last))
    if kT is None:
        slack_lo = slack_hi = rounding
    else:
        slack_lo = _COVERAGE_RTOL * halfwidth * float(kT[low_at]) + rounding
        slack_hi = _COVERAGE_RTOL * halfwidth * float(kT[high_at]) + rounding
    if first - need_lo > slack_lo or need_hi - last > slack_hi:
        short = []
        if first - need_lo > slack_lo:
            short.append(f"by {first - need_lo:.3g} below")
        if need_hi - last > slack_hi:
            short.append(f"by {need_hi - last:.3g} above")
        digits = max(_distinguishing_digits(first, need_lo), _distinguishing_digits(last, need_hi))

        def show(low: float, high: float) -> str:
            return f"[{low:.{digits}g}, {high:.{digits}g}]"

        raise ValueError(
            f"the energy grid covers {show(first, last)} but {what} is non-negligible on "
            f"{show(need_lo, need_hi)} (mu ± {halfwidth:g} kT, where the thermal kernel "
            f"exceeds {_TAIL_LEVEL} of its peak; at kT = 0 the interval between the chemical "
            f"potentials): the grid falls short {' and '.join(short)}; extend the energy grid "
            f"to cover {show(need_lo, need_hi)}"
        )


def _distinguishing_digits(a: float, b: float) -> int:
    """Fewest significant digits (at least 6) with which `a` and `b` print differently."""
    for digits in range(6, 18):
        if f"{a:.{digits}g}" != f"{b:.{digits}g}":
            return digits
    return 17


def _check_resolution(
    knots: NDArray[np.float64],
    mu: NDArray[np.float64],
    kT: NDArray[np.float64],
    halfwidth: float,
) -> float:
    """Check the grid resolves ``kT`` around each hot `mu`; return max spacing / kT."""
    if mu.size == 0:
        return 0.0
    spacing = np.diff(knots)
    lo = np.clip(np.searchsorted(knots, mu - halfwidth * kT, side="right") - 1, 0, spacing.size)
    hi = np.clip(np.searchsorted(knots, mu + halfwidth * kT, side="left"), 0, spacing.size)
    lo = np.minimum(lo, spacing.size - 1)
    hi = np.maximum(hi, lo + 1)
    bounds = np.empty(2 * mu.size, dtype=np.intp)
    bounds[0::2], bounds[1::2] = lo, hi
    # Appending a sentinel keeps every index of reduceat inside the array.
    largest = np.maximum.reduceat(np.append(spacing, 0.0), bounds)[0::2]
    ratio = largest / kT
    worst = int(np.argmax(ratio))
    if ratio[worst] > 1.0 + 1e-9:  # tolerate rounding in grids built with linspace
        lo_e = mu[worst] - halfwidth * kT[worst]
        hi_e = mu[worst] + halfwidth * kT[worst]
        raise ValueError(
            f"the energy grid cannot resolve the temperature: its largest spacing "
            f"{largest[worst]:.6g} inside the thermal window [{lo_e:.6g}, {hi_e:.6g}] around "
            f"mu = {mu[worst]:.6g} exceeds kT = {kT[worst]:.6g}; use a grid with spacing "
            "<= kT there (the interpolated transmission cannot represent what this "
            "temperature resolves), or kT = 0"
        )
    return float(ratio[worst])


def _gauss_order(spacing_over_kT: float) -> int:
    """Gauss-Legendre order for an interval of width h <= kT against a Fermi kernel.

    The kernel has poles at ``mu ± i pi kT``; the Bernstein ellipse of an interval of
    half-width ``h/2`` reaching such a pole has ``rho = a + sqrt(1 + a^2)`` with
    ``a = 2 pi kT / h``, and the Gauss rule with ``q`` nodes converges as
    ``rho^(-2 q)``.
    """
    if spacing_over_kT <= 0:
        return _MIN_ORDER
    a = 2.0 * np.pi / spacing_over_kT
    rho = a + np.sqrt(1.0 + a * a)
    order = int(np.ceil(-np.log(_QUADRATURE_LEVEL) / (2.0 * np.log(rho))))
    return int(np.clip(order, _MIN_ORDER, _MAX_ORDER))


def _gauss_unit(order: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    return 0.5 * (nodes + 1.0), 0.5 * weights


# --------------------------------------------------------------------------------------
# Kernels: callables (energy (k, nodes), point index (k,)) -> (n_out, k, nodes)
# --------------------------------------------------------------------------------------

Kernel = Callable[[NDArray[np.float64], NDArray[np.intp]], NDArray[np.float64]]


@dataclass(frozen=True)
class _BroadeningKernel:
    """``(E - mu)^n (-df/dE)`` for several powers ``n`` (all ``kT > 0``)."""

    mu: NDArray[np.float64]
    kT: NDArray[np.float64]
    orders: tuple[int, ...]

    def __call__(self, energy: NDArray[np.float64], point: NDArray[np.intp]) -> NDArray[Any]:
        mu = self.mu[point][:, None]
        kT = self.kT[point][:, None]
        offset = energy - mu
        base = _broadening(offset / kT) / kT
        return np.stack([base * offset**n if n else base for n in self.orders])


@dataclass(frozen=True)
class _BiasKernel:
    """``f_L - f_R`` (charge) and optionally ``(E - mu_L)(f_L - f_R)`` (heat)."""

    mu_left: NDArray[np.float64]
    mu_right: NDArray[np.float64]
    kT_left: NDArray[np.float64]
    kT_right: NDArray[np.float64]
    heat: bool

    def __call__(self, energy: NDArray[np.float64], point: NDArray[np.intp]) -> NDArray[Any]:
        mu_left = self.mu_left[point][:, None]
        window = _fermi_window(
            energy,
            mu_left,
            self.mu_right[point][:, None],
            self.kT_left[point][:, None],
            self.kT_right[point][:, None],
        )
        if self.heat:
            window = window * (energy - mu_left)
        return window[None]


# --------------------------------------------------------------------------------------
# Integration engines
# --------------------------------------------------------------------------------------


def _integrate_sampled(
    table: _SampledTransmission,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    kernel: Kernel,
    n_out: int,
    order: int,
    steps: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Integrate the interpolant against `kernel` for each point, shape (n_out, P, n_curves).

    Every grid interval meeting ``[lower[p], upper[p]]`` gets a Gauss-Legendre rule of
    `order` nodes; the rule is exact for polynomials of degree ``2 order - 1`` and
    resolves the kernel because intervals are no wider than ``kT``. `steps`
    (shape (P, 2), NaN where absent) are energies where the kernel jumps (chemical
    potentials of reservoirs at ``kT = 0``); their intervals are split there.

    Nodes, weights and interpolated values are tabulated once for the whole grid;
    a point's window is a contiguous run of that table, read through a strided view.
    """
    knots, spacing = table.knots, table.spacing
    n_intervals = spacing.size
    n_points = lower.size
    n_curves = table.coefficients.shape[2]
    result = np.zeros((n_out, n_points, n_curves))
    if n_points == 0:
        return result
    unit_nodes, unit_weights = _gauss_unit(order)
    first = table.interval_of(lower)
    last = np.clip(np.searchsorted(knots, upper, side="left"), first + 1, n_intervals)
    count = last - first
    longest = int(count.max())

    node_energy = (knots[:-1, None] + spacing[:, None] * unit_nodes).reshape(-1)
    weighted = table(node_energy) * (spacing[:, None] * unit_weights).reshape(-1, 1)
    # Padding past the grid (zero weight) lets every point read a run of `longest`
    # intervals; intervals beyond a point's own window only add a negligible kernel.
    pad = longest * order
    energy_table = np.concatenate([node_energy, np.full(pad, knots[-1])])
    weighted_table = np.concatenate([weighted, np.zeros((pad, n_curves))])
    energy_runs = np.lib.stride_tricks.sliding_window_view(energy_table, pad)[::order]
    weight_runs = np.lib.stride_tricks.sliding_window_view(weighted_table[:, 0], pad)[::order]

    if steps is None:
        steps = np.full((n_points, 2), np.nan)
    split = np.where(np.isnan(steps), -1, table.interval_of(np.nan_to_num(steps)))
    split[:, 1] = np.where(split[:, 1] == split[:, 0], -1, split[:, 1])
    has_steps = bool(np.any(split >= 0))

    # Group points of similar window length so that padding to a common length is
    # cheap, and keep chunks small enough for the temporaries to stay in cache.
    by_length = np.argsort(count, kind="stable")
    sorted_count = count[by_length]
    start = 0
    while start < n_points:
        padded = np.arange(1, n_points - start + 1) * sorted_count[start:] * order * n_out
        stop = start + max(1, int(np.searchsorted(padded, _CHUNK_NODES, side="right")))
        chunk = by_length[start:stop]
        width = int(sorted_count[stop - 1]) * order
        start = stop
        rows = first[chunk]
        values = kernel(energy_runs[:, :width][rows], chunk)  # (n_out, Pc, width)
        if has_steps:
            column = np.arange(width) // order + rows[:, None]
            inside_split = (column == split[chunk, 0:1]) | (column == split[chunk, 1:2])
            values = values * ~inside_split
            result[:, chunk, :] += _split_integrals(
                table, split[chunk], steps[chunk], kernel, chunk, n_out, order
            )
        if n_curves == 1:
            result[:, chunk, 0] += np.einsum("opk,pk->op", values, weight_runs[:, :width][rows])
        else:
            columns = np.tile((rows[:, None] * order + np.arange(width)).reshape(-1), n_out)
            matrix = scipy.sparse.csr_array(
                (
                    values.reshape(-1),
                    columns,
                    np.arange(0, n_out * chunk.size * width + 1, width),
                ),
                shape=(n_out * chunk.size, weighted_table.shape[0]),
            )
            result[:, chunk, :] += (matrix @ weighted_table).reshape(n_out, chunk.size, n_curves)
    return result


def _split_integrals(
    table: _SampledTransmission,
    split: NDArray[np.intp],
    steps: NDArray[np.float64],
    kernel: Kernel,
    points: NDArray[np.intp],
    n_out: int,
    order: int,
) -> NDArray[np.float64]:
    """Integrals over the (at most two) intervals of each point holding a kernel step.

    Each such interval is cut at the steps that fall inside it into three panels
    (some possibly empty), each with its own Gauss-Legendre rule. Shape
    ``(n_out, len(points), n_curves)``.
    """
    knots = table.knots
    unit_nodes, unit_weights = _gauss_unit(order)
    interval = np.maximum(split, 0)  # (Pc, 2)
    left, right = knots[interval], knots[interval + 1]
    inside = np.sort(np.nan_to_num(steps, nan=-np.inf), axis=1)  # absent steps: left end
    cuts = np.clip(inside[:, None, :], left[..., None], right[..., None])  # (Pc, 2, 2)
    edges = np.concatenate([left[..., None], cuts, right[..., None]], axis=-1)  # (Pc, 2, 4)
    panel_lo, panel_width = edges[..., :-1], np.diff(edges, axis=-1)  # (Pc, 2, 3)
    energy = (panel_lo[..., None] + panel_width[..., None] * unit_nodes).reshape(points.size, -1)
    weights = (panel_width[..., None] * unit_weights * (split >= 0)[..., None, None]).reshape(
        points.size, -1
    )
    values = kernel(energy, points) * weights  # (n_out, Pc, nodes)
    transmission = table(energy.reshape(-1)).reshape((*energy.shape, -1))
    return np.einsum("opk,pkc->opc", values, transmission)


def _integrate_callable(
    function: Callable[..., Any],
    bias: NDArray[np.float64] | None,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    hot_centres: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
    breakpoints: NDArray[np.float64],
    steps: NDArray[np.float64] | None,
    kernel: Kernel,
    n_out: int,
    halfwidth: float,
) -> NDArray[np.float64]:
    """Adaptive integral of ``T(E) K_p(E)`` over ``[lower[p], upper[p]]``, shape (n_out, P).

    All points are refined together: every round evaluates ``T`` once on all new
    panels. A panel's error is the difference of Gauss-Legendre rules with 8 and
    16 nodes; a point is done when the summed error is below ``_ADAPTIVE_RTOL`` of
    the integral of the absolute integrand, and otherwise its panels with more than
    their share of the error are bisected.
    """
    n_points = lower.size
    if n_points == 0:
        return np.zeros((n_out, 0))
    boundaries = []
    owners = []
    for p in range(n_points):
        a, b = lower[p], upper[p]
        cuts = [np.linspace(a, b, 9)]
        for centre, kT in hot_centres:
            if kT[p] > 0:
                cuts.append(centre[p] + kT[p] * np.arange(-halfwidth, halfwidth + 1.0, 2.0))
        cuts.append(breakpoints)
        if steps is not None:
            cuts.append(steps[p][~np.isnan(steps[p])])
        edges = np.concatenate(cuts)
        edges = np.unique(edges[(edges >= a) & (edges <= b)])
        if edges.size < 2:
            edges = np.array([a, a])
        boundaries.append(edges)
        owners.append(np.full(edges.size - 1, p))
    panel_lo = np.concatenate([e[:-1] for e in boundaries])
    panel_hi = np.concatenate([e[1:] for e in boundaries])
    owner = np.concatenate(owners)

    low_nodes, low_weights = _gauss_unit(_ADAPTIVE_LOW)
    high_nodes, high_weights = _gauss_unit(_ADAPTIVE_HIGH)
    nodes = np.concatenate([low_nodes, high_nodes])
    n_low = low_nodes.size

    def evaluate(
        lo: NDArray[np.float64], hi: NDArray[np.float64], who: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        width = (hi - lo)[:, None]
        energy = lo[:, None] + width * nodes
        values = _call_transmission(function, energy, None if bias is None else bias[who])
        integrand = kernel(energy, who) * values
        low = np.einsum("okq,q->ok", integrand[..., :n_low], low_weights) * width[:, 0]
        high = np.einsum("okq,q->ok", integrand[..., n_low:], high_weights) * width[:, 0]
        absolute = (
            np.einsum("okq,q->ok", np.abs(integrand[..., n_low:]), high_weights) * width[:, 0]
        )
        return high, np.abs(high - low), absolute

    value, error, absolute = evaluate(panel_lo, panel_hi, owner)
    for _ in range(_ADAPTIVE_ROUNDS):
        total_error = np.stack([np.bincount(owner, e, n_points) for e in error])
        total_abs = np.stack([np.bincount(owner, a, n_points) for a in absolute])
        tolerance = _ADAPTIVE_RTOL * total_abs + 1e-300
        unfinished = np.any(total_error > tolerance, axis=0)
        if not np.any(unfinished) or owner.size > _ADAPTIVE_MAX_PANELS:
            break
        share = np.max(error / tolerance[:, owner], axis=0)
        panels_per_point = np.bincount(owner, minlength=n_points)
        worst = np.zeros(n_points)
        np.maximum.at(worst, owner, share)
        refine = unfinished[owner] & (
            (share * panels_per_point[owner] > 1.0) | (share >= worst[owner])
        )
        middle = 0.5 * (panel_lo[refine] + panel_hi[refine])
        new_lo = np.concatenate([panel_lo[refine], middle])
        new_hi = np.concatenate([middle, panel_hi[refine]])
        new_owner = np.concatenate([owner[refine], owner[refine]])
        new_value, new_error, new_absolute = evaluate(new_lo, new_hi, new_owner)
        keep = ~refine
        panel_lo = np.concatenate([panel_lo[keep], new_lo])
        panel_hi = np.concatenate([panel_hi[keep], new_hi])
        owner = np.concatenate([owner[keep], new_owner])
        value = np.concatenate([value[:, keep], new_value], axis=1)
        error = np.concatenate([error[:, keep], new_error], axis=1)
        absolute = np.concatenate([absolute[:, keep], new_absolute], axis=1)
    total_error = np.stack([np.bincount(owner, e, n_points) for e in error])
    total_abs = np.stack([np.bincount(owner, a, n_points) for a in absolute])
    if np.any(total_error > _ADAPTIVE_RTOL * total_abs + 1e-300):
        worst_ratio = float(np.max(total_error / (total_abs + 1e-300)))
        warnings.warn(
            "the adaptive energy integral of the transmission callable did not reach "
            f"relative accuracy {_ADAPTIVE_RTOL:g} (estimated {worst_ratio:.2g}); pass the "
            "energies of steps or narrow peaks of T(E) as `energies` to help it",
            scipy.integrate.IntegrationWarning,
            stacklevel=4,
        )
    return np.stack([np.bincount(owner, v, n_points) for v in value])


def _call_transmission(
    function: Callable[..., Any], energy: NDArray[np.float64], bias: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """Evaluate a user transmission callable on a flat array and check what it returns."""
    flat = energy.reshape(-1)
    if bias is None:
        raw = function(flat)
        called = "transmission(E)"
    else:
        raw = function(flat, np.broadcast_to(bias[:, None], energy.shape).reshape(-1))
        called = "transmission(E, bias)"
    try:
        values = np.asarray(raw)
        if np.iscomplexobj(values):
            raise TypeError(f"{called} must return real numbers, got complex values")
        values = values.astype(float, copy=False)
    except ValueError as exc:
        raise TypeError(f"{called} must return real numbers, got {type(raw).__name__}") from exc
    if values.shape != flat.shape:
        if values.ndim == 0:
            values = np.full(flat.shape, float(values))
        else:
            raise ValueError(
                f"{called} must be vectorized: for E of shape {flat.shape} it returned "
                f"shape {values.shape}"
            )
    if not np.all(np.isfinite(values)):
        bad = flat[~np.isfinite(values)][0]
        raise ValueError(f"{called} returned NaN or inf at E = {float(bad)!r}")
    return _non_negative(values, flat, called).reshape(energy.shape)


# --------------------------------------------------------------------------------------
# Public integrals
# --------------------------------------------------------------------------------------


def _prepare_callable(transmission: Callable[..., Any], allow_bias: bool, name: str) -> bool:
    """Return whether a transmission callable takes a bias argument."""
    arity = _positional_arity(transmission)
    if arity == 2 and allow_bias:
        return True
    if arity == 1:
        return False
    if arity == 2:
        raise TypeError(
            f"{name} needs a bias-independent transmission T(E); a callable T(E, bias) is "
            "accepted by current and heat_current only"
        )
    valid = "T(E) or T(E, bias)" if allow_bias else "T(E)"
    raise TypeError(
        f"transmission must be an array of samples or a callable {valid}; got a callable "
        f"with {arity} required positional arguments"
    )


def _broadening_integrals(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu: ArrayLike,
    kT: ArrayLike,
    orders: tuple[int, ...],
    interpolation: str,
    name: str,
) -> NDArray[np.float64]:
    """``L_n = int T (E - mu)^n (-df/dE) dE``, shape ``(len(orders), *points, *curves)``."""
    mu_arr = _checks.real_array(mu, "mu")
    kT_arr = _checks.temperature(kT, "kT")
    mu_arr, kT_arr = _broadcast(mu=mu_arr, kT=kT_arr)
    point_shape = mu_arr.shape
    mu_flat, kT_flat = mu_arr.reshape(-1), kT_arr.reshape(-1)
    hot = kT_flat > 0
    halfwidth = window_kT(max(orders))
    lower = mu_flat - halfwidth * kT_flat
    upper = mu_flat + halfwidth * kT_flat
    is_zero_order = np.array([n == 0 for n in orders])
    kernel = _BroadeningKernel(mu_flat[hot], kT_flat[hot], orders)

    if callable(transmission):
        _prepare_callable(transmission, allow_bias=False, name=name)
        breakpoints = _breakpoints(energies)
        out = np.zeros((len(orders), mu_flat.size))
        if np.any(~hot):
            at_mu = _call_transmission(transmission, mu_flat[~hot], None)
            out[:, ~hot] = np.where(is_zero_order[:, None], at_mu, 0.0)
        out[:, hot] = _integrate_callable(
            transmission,
            None,
            lower[hot],
            upper[hot],
            [(mu_flat[hot], kT_flat[hot])],
            breakpoints,
            None,
            kernel,
            len(orders),
            halfwidth,
        )
        return out.reshape((len(orders), *point_shape))

    table = _sampled_transmission(energies, transmission, interpolation)
    _check_coverage(table.knots, lower, upper, "the thermal kernel -df/dE", halfwidth, kT_flat)
    ratio = _check_resolution(table.knots, mu_flat[hot], kT_flat[hot], halfwidth)
    n_curves = table.coefficients.shape[2]
    out = np.zeros((len(orders), mu_flat.size, n_curves))
    if np.any(~hot):
        at_mu = table(mu_flat[~hot])
        out[:, ~hot, :] = np.where(is_zero_order[:, None, None], at_mu, 0.0)
    out[:, hot, :] = _integrate_sampled(
        table, lower[hot], upper[hot], kernel, len(orders), _gauss_order(ratio)
    )
    return out.reshape((len(orders), *point_shape, *table.curve_shape))


def _bias_integrals(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu_left: ArrayLike,
    mu_right: ArrayLike,
    kT_left: ArrayLike,
    kT_right: ArrayLike,
    heat: bool,
    interpolation: str,
) -> NDArray[np.float64]:
    """``int T (f_L - f_R) dE`` or ``int (E - mu_L) T (f_L - f_R) dE``.

    Shape ``(*points, *curves)``.
    """
    arrays = _broadcast(
        mu_left=_checks.real_array(mu_left, "mu_left"),
        mu_right=_checks.real_array(mu_right, "mu_right"),
        kT_left=_checks.temperature(kT_left, "kT_left"),
        kT_right=_checks.temperature(kT_right, "kT_right"),
    )
    point_shape = arrays[0].shape
    mu_l, mu_r, kT_l, kT_r = (np.ascontiguousarray(a).reshape(-1) for a in arrays)
    halfwidth = THERMAL_WINDOW_KT
    lower = np.minimum(mu_l - halfwidth * kT_l, mu_r - halfwidth * kT_r)
    upper = np.maximum(mu_l + halfwidth * kT_l, mu_r + halfwidth * kT_r)
    steps = np.stack([np.where(kT_l > 0, np.nan, mu_l), np.where(kT_r > 0, np.nan, mu_r)], 1)
    kernel = _BiasKernel(mu_l, mu_r, kT_l, kT_r, heat)
    hot_centres = [(mu_l, kT_l), (mu_r, kT_r)]

    if callable(transmission):
        name = "heat_current" if heat else "current"
        takes_bias = _prepare_callable(transmission, allow_bias=True, name=name)
        out = _integrate_callable(
            transmission,
            (mu_l - mu_r) if takes_bias else None,
            lower,
            upper,
            hot_centres,
            _breakpoints(energies),
            steps,
            kernel,
            1,
            halfwidth,
        )
        return out[0].reshape(point_shape)

    table = _sampled_transmission(energies, transmission, interpolation)
    window = "the heat-current window (E - mu_L)(f_L - f_R)" if heat else "the window f_L - f_R"
    # An empty window (zero bias at kT = 0) needs no grid: its integrand vanishes.
    empty = upper <= lower
    _check_coverage(
        table.knots,
        lower[~empty],
        upper[~empty],
        window,
        halfwidth,
        np.maximum(kT_l, kT_r)[~empty],
    )
    ratio = 0.0
    for centre, kT in hot_centres:
        hot = kT > 0
        ratio = max(ratio, _check_resolution(table.knots, centre[hot], kT[hot], halfwidth))
    out = _integrate_sampled(table, lower, upper, kernel, 1, _gauss_order(ratio), steps)
    return out[0].reshape((*point_shape, *table.curve_shape))


def linear_conductance(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    spin_degeneracy: int = 1,
    interpolation: Interpolation = "pchip",
) -> NDArray[np.float64]:
    """Linear-response conductance ``G = g_s int T(E) (-df/dE) dE`` in units of e^2/h.

    Parameters
    ----------
    energies : array_like or None
        For sampled `transmission`: the strictly increasing 1-D energy grid, shape
        ``(n_E,)``; it must cover ``mu ± 34 kT`` (:data:`THERMAL_WINDOW_KT`) and have spacing
        ``<= kT`` there.
        For a callable: None, or energies where ``T(E)`` has steps, kinks or narrow
        peaks, which the adaptive rule then uses as panel edges.
    transmission : array_like or callable
        Samples ``T(E)`` of shape ``(n_E, ...)`` (several curves at once), or a
        callable ``T(E)`` vectorized over a 1-D array ``E`` (returns the same shape),
        integrated adaptively to 1e-10 relative.
    mu : array_like
        Chemical potential, energy unit; broadcast with `kT`.
    kT : array_like
        Thermal energy ``>= 0``. At ``kT = 0`` the result is exactly ``g_s T(mu)``
        (the interpolant evaluated at `mu`).
    spin_degeneracy : int, optional
        ``g_s``, multiplies the result: 1 for spin-resolved channels, 2 for
        spin-degenerate ones (then the result divided by 2 is in units of 2e^2/h).
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of sampled transmission: monotone piecewise cubic (the default;
        never leaves the range of the samples on any grid interval, so steps and kinks
        give no overshoot and ``0 <= T <= N`` carries over to the result), not-a-knot
        cubic spline (smooth, well-resolved data only, error O(h^4); it rings at
        steps), or piecewise linear.

    Returns
    -------
    ndarray
        Conductance in units of e^2/h, including the factor `spin_degeneracy`;
        shape ``broadcast(mu, kT).shape + transmission.shape[1:]`` (just the
        broadcast shape for a callable).

    Raises
    ------
    ValueError
        For negative `kT`, NaN, a bad grid, a grid that does not cover or resolve
        the thermal window, or transmission whose first axis does not match.

    Examples
    --------
    A thermally smeared conductance step, ``G(mu) = f(E0 - mu)`` for ``T = Θ(E - E0)``:

    >>> import numpy as np
    >>> E = np.linspace(-2.0, 2.0, 401)
    >>> g = linear_conductance(E, np.ones_like(E), mu=[0.0, 0.5], kT=0.02, spin_degeneracy=2)
    >>> np.round(g, 12)
    array([2., 2.])
    >>> step = lambda E: np.where(E > 0.1, 1.0, 0.0)
    >>> float(np.round(linear_conductance([0.1], step, 0.0, 0.05), 10))
    0.119202922
    """
    g_s = _spin_degeneracy(spin_degeneracy)
    integrals = _broadening_integrals(
        energies, transmission, mu, kT, (0,), interpolation, "linear_conductance"
    )
    return g_s * integrals[0]


def current(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu_left: ArrayLike,
    mu_right: ArrayLike,
    kT_left: ArrayLike,
    kT_right: ArrayLike,
    *,
    spin_degeneracy: int = 1,
    interpolation: Interpolation = "pchip",
) -> NDArray[np.float64]:
    """Landauer current ``I = g_s int T(E) [f_L(E) - f_R(E)] dE`` in units of e/h x energy.

    Positive current means particles flowing from the left to the right reservoir.
    For amperes, multiply by ``e/h`` (:data:`mesoscopic.constants.e` /
    :data:`mesoscopic.constants.h`) and by the energy unit in joule, e.g.
    ``I_A = I * constants.e / constants.h * constants.meV`` for energies in meV.
    The electric current of electrons (charge -e) is minus that.

    Parameters
    ----------
    energies : array_like or None
        For sampled `transmission`: strictly increasing 1-D grid ``(n_E,)`` covering
        ``[min(mu) - 34 kT, max(mu) + 34 kT]`` (just ``[min(mu), max(mu)]`` at
        ``kT = 0``), with spacing ``<= kT`` within ``34 kT`` of each chemical
        potential. For a callable: None or energies of steps, kinks or narrow peaks.
    transmission : array_like or callable
        Samples of shape ``(n_E, ...)``; or a callable ``T(E)``; or a callable
        ``T(E, bias)`` for bias-dependent transmission (nonlinear I-V), called with
        1-D float arrays ``E`` and ``bias = mu_left - mu_right`` of equal length.
        A callable is recognized as bias-dependent when it has two required
        positional parameters.
    mu_left, mu_right : array_like
        Chemical potentials of the reservoirs; broadcast with the temperatures
        (e.g. 1,000 biases at once).
    kT_left, kT_right : array_like
        Thermal energies ``>= 0`` of the reservoirs.
    spin_degeneracy : int, optional
        ``g_s``, multiplies the result.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of sampled transmission, as in :func:`linear_conductance`.

    Returns
    -------
    ndarray
        Particle current in units of e/h times the energy unit, including the factor
        `spin_degeneracy`; shape ``broadcast(mu_left, ..., kT_right).shape +
        transmission.shape[1:]``.

    Examples
    --------
    Constant transmission carries ``T (mu_L - mu_R)`` at any common temperature:

    >>> import numpy as np
    >>> E = np.linspace(-2.0, 2.0, 801)
    >>> bias = np.array([-0.2, 0.0, 0.3])
    >>> I = current(E, 0.5 * np.ones_like(E), bias / 2, -bias / 2, 0.02, 0.02)
    >>> np.round(I, 12) + 0.0
    array([-0.1 ,  0.  ,  0.15])
    """
    g_s = _spin_degeneracy(spin_degeneracy)
    return g_s * _bias_integrals(
        energies, transmission, mu_left, mu_right, kT_left, kT_right, False, interpolation
    )


def heat_current(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu_left: ArrayLike,
    mu_right: ArrayLike,
    kT_left: ArrayLike,
    kT_right: ArrayLike,
    *,
    spin_degeneracy: int = 1,
    interpolation: Interpolation = "pchip",
) -> NDArray[np.float64]:
    """Heat current leaving the left reservoir, ``J = g_s int (E - mu_L) T [f_L - f_R] dE``.

    In units of ``1/h`` times energy squared (multiply by ``1/h`` and the energy unit
    in joule, squared, for watts). The heat leaving the right reservoir is
    ``J_R = -J - (mu_L - mu_R) I``: the difference is the Joule heat.

    Parameters
    ----------
    energies, transmission, mu_left, mu_right, kT_left, kT_right
        As in :func:`current` (the same window ``mu ± 34 kT``).
    spin_degeneracy : int, optional
        ``g_s``, multiplies the result.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of sampled transmission, as in :func:`linear_conductance`.

    Returns
    -------
    ndarray
        Heat current in units of 1/h times energy^2, including `spin_degeneracy`;
        same shape as :func:`current`.

    Examples
    --------
    Constant transmission between reservoirs at equal ``mu`` and different
    temperatures carries ``(pi^2/6) (kT_L^2 - kT_R^2)``:

    >>> import numpy as np
    >>> E = np.linspace(-3.0, 3.0, 601)
    >>> J = heat_current(E, np.ones_like(E), 0.0, 0.0, 0.05, 0.02)
    >>> bool(np.isclose(J, np.pi**2 / 6 * (0.05**2 - 0.02**2), rtol=1e-12))
    True
    """
    g_s = _spin_degeneracy(spin_degeneracy)
    return g_s * _bias_integrals(
        energies, transmission, mu_left, mu_right, kT_left, kT_right, True, interpolation
    )


def onsager_integrals(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    orders: Sequence[int] = (0, 1, 2),
    interpolation: Interpolation = "pchip",
) -> NDArray[np.float64]:
    """Onsager (transport) integrals ``L_n = int T(E) (E - mu)^n (-df/dE) dE``.

    Parameters
    ----------
    energies, transmission, mu, kT
        As in :func:`linear_conductance`. The grid must cover ``mu ± 34 kT``
        (:data:`THERMAL_WINDOW_KT`), widened by ``2 kT`` for every power above 2
        (:func:`window_kT` of ``max(orders)``).
    orders : sequence of int, optional
        Powers ``n >= 0`` to compute.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of sampled transmission, as in :func:`linear_conductance`.

    Returns
    -------
    ndarray
        ``L_n`` in units of energy^n (no spin degeneracy), shape
        ``(len(orders),) + broadcast(mu, kT).shape + transmission.shape[1:]``.
        At ``kT = 0``: ``L_0 = T(mu)`` and ``L_n = 0`` for ``n > 0``.

    Examples
    --------
    For constant ``T = 1``: ``L_0 = 1``, ``L_1 = 0``, ``L_2 = (pi^2/3) kT^2``:

    >>> import numpy as np
    >>> E = np.linspace(-1.0, 1.0, 201)
    >>> L = onsager_integrals(E, np.ones_like(E), 0.0, 0.02)
    >>> bool(np.allclose(L, [1.0, 0.0, np.pi**2 / 3 * 0.02**2], rtol=1e-12, atol=1e-16))
    True
    """
    order_list = list(orders) if not isinstance(orders, (int, np.integer)) else None
    if (
        order_list is None
        or not order_list
        or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in order_list)
        or any(n < 0 for n in order_list)
    ):
        raise ValueError(f"orders must be a non-empty sequence of integers >= 0, got {orders!r}")
    return _broadening_integrals(
        energies,
        transmission,
        mu,
        kT,
        tuple(int(n) for n in order_list),
        interpolation,
        "onsager_integrals",
    )


@dataclass(frozen=True)
class ThermoelectricCoefficients:
    """Linear-response thermoelectric coefficients of a two-terminal conductor.

    All fields are arrays of the same shape (that of the inputs). Conventions:
    electrons carry charge ``-e``; ``kT`` and energies are in the user's unit.

    Attributes
    ----------
    conductance : ndarray
        ``G = g_s L0`` in units of e^2/h (the spin degeneracy included).
    seebeck : ndarray
        Thermopower ``S = -L1 / (kT L0)`` in units of ``k_B/e`` (86.17 µV/K);
        negative when transmission rises with energy (electron-like transport).
        0 at ``kT = 0``.
    peltier : ndarray
        ``Π = S T = -L1 / L0`` in units of energy/e (volts for energies in eV).
    thermal_conductance : ndarray
        Electronic heat conductance at zero electric current,
        ``κ = g_s (L2 - L1^2/L0) / kT``, in units of ``k_B/h`` times energy
        (multiply by ``k_B/h`` and the energy unit in joule for W/K). 0 at ``kT = 0``.
    lorenz : ndarray
        ``κ / (G T) = (L2 - L1^2/L0) / (kT^2 L0)`` in units of ``(k_B/e)^2``;
        ``pi^2/3`` for energy-independent transmission (Wiedemann-Franz) and, as the
        Sommerfeld limit, at ``kT = 0``.
    zt : ndarray
        Figure of merit ``S^2 G T / (κ + κ_ph)`` (dimensionless), with the phonon
        heat conductance ``κ_ph`` given to :func:`thermoelectric_coefficients`.

    Notes
    -----
    Where the conductance vanishes (``L0 = 0``) every field but the conductance is
    NaN, and :func:`thermoelectric_coefficients` warns (:class:`NoConductanceWarning`).
    """

    conductance: NDArray[np.float64]
    seebeck: NDArray[np.float64]
    peltier: NDArray[np.float64]
    thermal_conductance: NDArray[np.float64]
    lorenz: NDArray[np.float64]
    zt: NDArray[np.float64]


def thermoelectric_coefficients(
    energies: ArrayLike | None,
    transmission: Transmission,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    spin_degeneracy: int = 1,
    phonon_conductance: ArrayLike = 0.0,
    interpolation: Interpolation = "pchip",
) -> ThermoelectricCoefficients:
    """Conductance, thermopower, Peltier and heat conductance, Lorenz number and ZT.

    From the Onsager integrals ``L_n`` (:func:`onsager_integrals`, orders 0, 1, 2);
    see :class:`ThermoelectricCoefficients` for formulas, units and signs.

    Parameters
    ----------
    energies, transmission, mu, kT
        As in :func:`linear_conductance`; the grid must cover ``mu ± 34 kT``.
    spin_degeneracy : int, optional
        ``g_s``, multiplies the conductance and the heat conductance.
    phonon_conductance : array_like, optional
        Phonon heat conductance ``>= 0`` in units of ``k_B/h`` times energy (the unit
        of ``thermal_conductance``), broadcast; enters only ``zt``.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of sampled transmission, as in :func:`linear_conductance`.

    Returns
    -------
    ThermoelectricCoefficients
        Frozen dataclass of arrays, shape ``broadcast(mu, kT).shape +
        transmission.shape[1:]`` (broadcast further with `phonon_conductance`).

    Examples
    --------
    Wiedemann-Franz law for constant transmission:

    >>> import numpy as np
    >>> E = np.linspace(-1.0, 1.0, 201)
    >>> c = thermoelectric_coefficients(E, np.ones_like(E), 0.0, 0.02)
    >>> bool(np.isclose(c.lorenz, np.pi**2 / 3, rtol=1e-10)), bool(abs(c.seebeck) < 1e-12)
    (True, True)
    """
    g_s = _spin_degeneracy(spin_degeneracy)
    phonon = _checks.positive(phonon_conductance, "phonon_conductance", allow_zero=True)
    l0, l1, l2 = _broadening_integrals(
        energies, transmission, mu, kT, (0, 1, 2), interpolation, "thermoelectric_coefficients"
    )
    shape = _broadcast(conductance=l0, phonon_conductance=phonon)[0].shape
    point_shape = np.broadcast_shapes(np.shape(mu), np.shape(kT))
    kT_b = np.broadcast_to(np.asarray(kT, dtype=float), point_shape)
    kT_b = kT_b.reshape(point_shape + (1,) * (l0.ndim - len(point_shape)))
    hot = kT_b > 0
    safe_kT = np.where(hot, kT_b, 1.0)
    conducting = l0 != 0
    safe_l0 = np.where(conducting, l0, 1.0)
    conductance = g_s * l0
    peltier = np.where(hot, -l1 / safe_l0, 0.0)
    seebeck = peltier / safe_kT
    spread = l2 - l1 * l1 / safe_l0
    thermal = np.where(hot, g_s * spread / safe_kT, 0.0)
    lorenz = np.where(hot, spread / (safe_kT**2 * safe_l0), np.pi**2 / 3)
    denominator = thermal + phonon
    positive = denominator > 0
    zt = np.where(
        hot & positive,
        seebeck**2 * conductance * kT_b / np.where(positive, denominator, 1.0),
        np.where(hot, np.nan, 0.0),
    )
    undefined = ~conducting
    if np.any(undefined):
        warnings.warn(
            f"the conductance vanishes at {int(np.count_nonzero(undefined))} of {undefined.size} "
            "points (no transmission within the thermal window: an insulator); the "
            "thermopower, Peltier coefficient, heat conductance, Lorenz ratio and ZT are "
            "undefined there and returned as NaN",
            NoConductanceWarning,
            stacklevel=2,
        )
    seebeck, peltier, thermal, lorenz, zt = (
        np.where(undefined, np.nan, q) for q in (seebeck, peltier, thermal, lorenz, zt)
    )
    return ThermoelectricCoefficients(
        conductance=np.broadcast_to(conductance, shape).copy(),
        seebeck=np.broadcast_to(seebeck, shape).copy(),
        peltier=np.broadcast_to(peltier, shape).copy(),
        thermal_conductance=np.broadcast_to(thermal, shape).copy(),
        lorenz=np.broadcast_to(lorenz, shape).copy(),
        zt=np.broadcast_to(zt, shape).copy(),
    )
