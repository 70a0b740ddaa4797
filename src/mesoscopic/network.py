"""Multi-terminal Büttiker circuits: boundary conditions, probes, four-terminal resistances.

A conductor with ``N`` terminals is described by its transmission matrix ``T`` of shape
``(N, N)``, or ``(..., N, N)`` for a batch (energies, fields, gate voltages, ...), with
``T[i, j]`` the transmission from terminal ``j`` into terminal ``i`` and ``T[i, i]`` the total
reflection probability of terminal ``i``. In linear response the terminal currents are
``I = G V`` with the Büttiker conductance matrix (Büttiker, Phys. Rev. Lett. 57, 1761 (1986);
IBM J. Res. Dev. 32, 317 (1988))

``G[i, i] = sum_{j != i} T[i, j]``,   ``G[i, j] = -T[i, j]``,

in units of ``e^2/h`` per unit transmission (times a spin degeneracy ``g_s`` where the channels
are spin degenerate). ``I[i]`` is the current flowing from terminal ``i`` into the conductor.
Rows of ``G`` sum to zero for any ``T`` (equal voltages drive no current); columns sum to zero
when ``T`` conserves current, as it does for a unitary scattering matrix.

What this module offers:

- :func:`conductance_matrix` builds ``G`` from ``T`` and checks current conservation.
- :func:`solve` solves a circuit with any mix of voltage-biased, current-biased and floating
  terminals; :func:`four_terminal_resistance`, :func:`hall_resistance`,
  :func:`two_terminal_resistance` and :func:`resistance_matrix` build on it.
- :func:`eliminate_probes` removes floating (voltage) probes from a network, giving the
  effective transmission among the remaining terminals.
- :func:`check_onsager` tests the Onsager-Casimir relation ``G_ij(B) = G_ji(-B)`` on a user's
  own results.
- :func:`solve_probes` solves energy-resolved voltage, thermal and dephasing probes at finite
  bias and temperature, self-consistently.

These functions take matrices, not systems. For a tight-binding device at finite
temperature the conductance matrix comes from :func:`mesoscopic.conductance` with
``matrix=True``: thermally averaged on an adaptive energy grid (thermal windows, the band
edges of every lead, bound states, refinement until every average is within ``tol``), over
``(mu, kT)`` and any parameter sweep, with the spin degeneracy included. Its
``conductance`` variable (last dimensions ``to_lead, from_lead``) goes as it is into
:func:`four_terminal_resistance`, :func:`hall_resistance`, :func:`solve`,
:func:`resistance_matrix` and :func:`eliminate_probes`, which treat the leading axes as a
batch::

    G = meso.conductance(fsys, mu, kT, matrix=True, params=params).conductance
    R_xy = hall_resistance(G.values, current=(0, 1), voltage=(2, 4))
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike, NDArray

from . import _checks
from .landauer import fermi_dirac

__all__ = [
    "CircuitSolution",
    "CurrentConservationWarning",
    "EnergyGridWarning",
    "OnsagerCheck",
    "ProbeSolution",
    "SingularCircuitWarning",
    "check_onsager",
    "conductance_matrix",
    "eliminate_probes",
    "four_terminal_resistance",
    "hall_resistance",
    "resistance_matrix",
    "solve",
    "solve_probes",
    "two_terminal_resistance",
]

FloatArray = NDArray[np.float64]

PROBE_KINDS = ("voltage", "thermal", "dephasing")


class CurrentConservationWarning(UserWarning):
    """Columns of the conductance matrix do not sum to zero: current is not conserved."""


class EnergyGridWarning(UserWarning):
    """An energy grid that does not cover the window where the occupations differ."""


class SingularCircuitWarning(UserWarning):
    """Some elements of a batch have no unique circuit solution (returned as inf or NaN).

    An insulator (no transmission between the current terminals), a terminal coupled to
    nothing, or a singular conductance matrix: a measurement of ``R -> inf`` or of an
    undetermined voltage, not an error. The message names the batch indices; pass
    ``on_singular="raise"`` to get a :class:`ValueError` instead.
    """


# --------------------------------------------------------------------------------------------
# Small private helpers
# --------------------------------------------------------------------------------------------


def _batch_note(batch_index: tuple[int, ...]) -> str:
    """Text locating an element of a batch, empty for an unbatched array."""
    return f" (at batch index {batch_index})" if batch_index else ""


def _batch_list(given: ArrayLike) -> str:
    """Text naming the batch indices where `given` (a mask of the batch shape) is True."""
    mask = np.asarray(given, dtype=bool)
    if mask.ndim == 0:
        return ""
    where = [tuple(int(k) for k in index) for index in zip(*np.nonzero(mask))]
    if not where or where == [()]:
        return ""
    shown = ", ".join(str(w) for w in where[:10])
    more = f" and {len(where) - 10} more" if len(where) > 10 else ""
    return f" at batch indices [{shown}]{more} ({len(where)} of {mask.size} elements)"


_ON_SINGULAR = ("warn", "raise")


def _check_on_singular(on_singular: Any) -> str:
    if on_singular not in _ON_SINGULAR:
        raise ValueError(
            f"on_singular must be 'warn' (inf/NaN where the circuit has no unique solution, "
            f"with a SingularCircuitWarning) or 'raise', got {_checks._show(on_singular)}"
        )
    return str(on_singular)


def _report_singular(message: str, on_singular: str, stacklevel: int = 3) -> None:
    if on_singular == "raise":
        raise ValueError(message)
    warnings.warn(message, SingularCircuitWarning, stacklevel=stacklevel)


def _offdiagonal(matrix: FloatArray) -> FloatArray:
    """Copy of a (..., N, N) array with its diagonal set to zero."""
    out = matrix.copy()
    diagonal = np.arange(matrix.shape[-1])
    out[..., diagonal, diagonal] = 0.0
    return out


def _conductance_unchecked(transmission: FloatArray) -> FloatArray:
    """Büttiker conductance matrix of a validated (..., N, N) transmission, no checks."""
    off = _offdiagonal(transmission)
    conductance = -off
    diagonal = np.arange(transmission.shape[-1])
    conductance[..., diagonal, diagonal] = off.sum(axis=-1)
    return conductance


def _warn_if_not_conserving(conductance: FloatArray, atol: float, name: str) -> None:
    """Warn when a column of the conductance matrix does not sum to zero within `atol`."""
    column_sums = conductance.sum(axis=-2)
    if column_sums.size == 0:
        return
    worst = np.unravel_index(int(np.argmax(np.abs(column_sums))), column_sums.shape)
    largest = float(column_sums[worst])
    if abs(largest) > atol:
        terminal = int(worst[-1])
        batch = tuple(int(k) for k in worst[:-1])
        warnings.warn(
            f"{name} does not conserve current: column {terminal} of the conductance matrix "
            f"sums to {largest:.3g}{_batch_note(batch)}, the largest column sum (tolerance "
            f"atol={atol:g}); what enters terminal {terminal} does not all leave. A unitary "
            "scattering matrix gives column sums of zero.",
            CurrentConservationWarning,
            stacklevel=3,
        )


def _submatrix(
    matrix: FloatArray, rows: NDArray[np.intp], columns: NDArray[np.intp]
) -> FloatArray:
    """``matrix[..., rows, :][..., columns]``, by slicing where the indices are contiguous."""

    def as_index(indices: NDArray[np.intp]) -> slice | NDArray[np.intp]:
        if indices.size and np.array_equal(indices, np.arange(indices[0], indices[-1] + 1)):
            return slice(int(indices[0]), int(indices[-1]) + 1)
        return indices

    row_index, column_index = as_index(rows), as_index(columns)
    if isinstance(row_index, slice) or isinstance(column_index, slice):
        return matrix[..., row_index, :][..., column_index]
    return matrix[..., rows[:, np.newaxis], columns]


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _solve_batched(matrices: FloatArray, rhs: FloatArray) -> FloatArray:
    """``numpy.linalg.solve`` for (..., n, n) and (..., n, k), large batches split over cores.

    NumPy's LAPACK loop releases the GIL but runs on one core, and for small matrices BLAS
    threads do not help; threads over slices of the batch do.
    """
    batch = matrices.shape[:-2]
    count = int(np.prod(batch)) if batch else 1
    workers = min(_available_cores(), count // 64)
    if workers < 2 or matrices.shape[-1] < 8:
        return np.asarray(np.linalg.solve(matrices, rhs), dtype=np.float64)
    n, k = matrices.shape[-1], rhs.shape[-1]
    flat_matrices = np.broadcast_to(matrices, (*batch, n, n)).reshape(count, n, n)
    flat_rhs = np.broadcast_to(rhs, (*batch, n, k)).reshape(count, n, k)
    bounds = np.linspace(0, count, workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(
            pool.map(
                lambda start, stop: np.linalg.solve(
                    flat_matrices[start:stop], flat_rhs[start:stop]
                ),
                bounds[:-1],
                bounds[1:],
            )
        )
    return np.concatenate(parts).reshape(*batch, n, k)


def _first_singular(matrices: FloatArray) -> tuple[int, ...]:
    """Batch index of the first exactly singular matrix in a (..., n, n) stack (error path)."""
    for where in np.ndindex(matrices.shape[:-2]):
        try:
            np.linalg.solve(matrices[where], np.ones(matrices.shape[-1]))
        except np.linalg.LinAlgError:
            return tuple(int(k) for k in where)
    return ()


def _unreached(
    conductance: FloatArray, sources: NDArray[np.integer[Any]] | int
) -> NDArray[np.bool_]:
    """Terminals not linked, through nonzero couplings, to any of the `sources` terminals.

    `sources` are terminal indices. A link is any nonzero ``G[i, j]`` or ``G[j, i]``; the
    search runs over every element of a batch, returning a (..., N) mask.
    """
    n = conductance.shape[-1]
    nonzero = conductance != 0
    if nonzero.ndim > 2 and nonzero.size:
        flat = nonzero.reshape(-1, n, n)
        union, common = flat.any(axis=0), flat.all(axis=0)
        # A batch sharing one coupling pattern (the usual case) is searched once.
        if np.array_equal(union, common):
            return np.broadcast_to(_unreached(common.astype(float), sources), nonzero.shape[:-1])
    linked = nonzero | np.swapaxes(nonzero, -1, -2)
    start = np.zeros(n, dtype=bool)
    start[sources] = True
    reached = np.broadcast_to(start, linked.shape[:-1]).copy()
    for _ in range(n):
        grown = reached | np.any(linked & reached[..., np.newaxis, :], axis=-1)
        if np.array_equal(grown, reached):
            break
        reached = grown
    return ~reached


def _first_bad(mask: NDArray[np.bool_]) -> tuple[tuple[int, ...], list[int], int]:
    """For a (..., N) mask: the first batch index with a True entry, its terminals, and count."""
    per_element = mask.any(axis=-1)
    count = int(np.count_nonzero(per_element))
    first = np.unravel_index(int(np.argmax(per_element)), per_element.shape)
    batch = tuple(int(k) for k in first)
    terminals = np.flatnonzero(mask[batch]).tolist()
    return batch, terminals, count


def _check_mapping(values: Any, name: str, example: str = "") -> None:
    if not isinstance(values, Mapping):
        raise TypeError(
            f"{name} must be a mapping from terminal index to value{example}, "
            f"got {type(values).__name__}"
        )


def _terminal_values(
    values: Mapping[int, ArrayLike] | None, name: str, n_terminals: int
) -> dict[int, FloatArray]:
    """Validate a {terminal: value} mapping of given voltages or currents."""
    if values is None:
        return {}
    _check_mapping(values, name, ", e.g. {0: 1.0, 1: 0.0}")
    out: dict[int, FloatArray] = {}
    for terminal, value in values.items():
        key = _checks.index(terminal, n_terminals, f"terminal in {name}")
        out[key] = _checks.real_array(value, f"{name}[{key}]")
    return out


def _terminal_pair(pair: Any, n_terminals: int, name: str) -> tuple[int, int]:
    """Validate a pair (a, b) of terminal indices."""
    try:
        first, second = pair
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a pair of terminal indices (a, b), got {_checks._show(pair)}"
        ) from None
    return (
        _checks.index(first, n_terminals, f"terminal in {name}"),
        _checks.index(second, n_terminals, f"terminal in {name}"),
    )


# --------------------------------------------------------------------------------------------
# Conductance matrix and linear circuits
# --------------------------------------------------------------------------------------------


def conductance_matrix(
    T: ArrayLike, *, spin_degeneracy: int = 1, check: bool = True, atol: float = 1e-10
) -> FloatArray:
    """Büttiker conductance matrix of a multi-terminal conductor.

    ``G[i, i] = g_s sum_{j != i} T[i, j]`` and ``G[i, j] = -g_s T[i, j]``, so that the current
    flowing from terminal ``i`` into the conductor is ``I[i] = sum_j G[i, j] V[j]``. The
    reflections ``T[i, i]`` do not enter. Rows of ``G`` sum to zero by construction; columns
    sum to zero when ``T`` conserves current.

    Parameters
    ----------
    T : array_like, shape (N, N) or (..., N, N)
        Transmission matrix, ``T[i, j]`` from terminal ``j`` into terminal ``i``
        (dimensionless); leading axes are a batch (energies, fields, ...).
    spin_degeneracy : {1, 2}, optional
        Spin degeneracy ``g_s`` multiplying the result: 1 (default) when spin is resolved in
        `T` or absent, 2 for spin-degenerate channels.
    check : bool, optional
        Warn with :class:`CurrentConservationWarning` when a column of ``G`` does not sum to
        zero within `atol` (per unit transmission), naming the terminal and the sum.
    atol : float, optional
        Tolerance of that check.

    Returns
    -------
    ndarray, shape like `T`
        Conductance matrix in units of ``e^2/h``.

    Examples
    --------
    >>> import numpy as np
    >>> conductance_matrix(np.array([[0.2, 0.8], [0.8, 0.2]]))
    array([[ 0.8, -0.8],
           [-0.8,  0.8]])
    """
    transmission = _checks.square_matrix(T, "T")
    g_s = float(_checks.spin_degeneracy(spin_degeneracy))
    conductance = _conductance_unchecked(transmission)
    if check:
        _warn_if_not_conserving(conductance, atol, "T")
    return g_s * conductance if g_s != 1.0 else conductance


@dataclass(frozen=True)
class CircuitSolution:
    """Voltages and currents of every terminal of a solved circuit.

    Attributes
    ----------
    voltages : ndarray, shape (..., N)
        Terminal voltages, in the unit of the given voltages (or of given currents divided by
        the unit of ``G``).
    currents : ndarray, shape (..., N)
        Current flowing from each terminal into the conductor, in the unit of ``G`` times the
        unit of the voltages (``e^2/h`` times volt for ``G`` in ``e^2/h``).
    """

    voltages: FloatArray
    currents: FloatArray

    @property
    def power(self) -> FloatArray:
        """Power ``sum_i V[i] I[i]`` delivered to the conductor, shape (...)."""
        return np.sum(self.voltages * self.currents, axis=-1)


@dataclass(frozen=True)
class _Circuit:
    """A solved circuit with the elements that have no unique solution marked.

    ``island[..., t]``: terminal ``t`` is coupled to no voltage-biased terminal (its voltage
    is NaN, or ``+-inf`` where a nonzero current is given); ``singular[...]``: the reduced
    conductance matrix of a connected circuit is singular (free voltages NaN).
    """

    voltages: FloatArray
    currents: FloatArray
    island: NDArray[np.bool_]
    singular: NDArray[np.bool_]
    fixed: NDArray[np.intp]
    free: NDArray[np.intp]


def _solve_circuit(
    conductance: FloatArray, given_v: dict[int, FloatArray], given_i: dict[int, FloatArray]
) -> _Circuit:
    """Solve ``I = G V`` element by element where needed; never raises for singular elements."""
    n = conductance.shape[-1]
    try:
        batch = np.broadcast_shapes(
            conductance.shape[:-2], *(v.shape for v in (*given_v.values(), *given_i.values()))
        )
    except ValueError:
        shapes = {f"voltages[{k}]": v.shape for k, v in given_v.items()}
        shapes.update({f"currents[{k}]": v.shape for k, v in given_i.items()})
        raise ValueError(
            f"the given voltages and currents must broadcast against the batch shape "
            f"{conductance.shape[:-2]} of G; got shapes {shapes}"
        ) from None
    conductance = np.broadcast_to(conductance, (*batch, n, n))
    fixed = np.array(sorted(given_v), dtype=np.intp)
    free = np.array([t for t in range(n) if t not in given_v], dtype=np.intp)
    v_all = np.zeros((*batch, n))
    i_all = np.zeros((*batch, n))
    for terminal, value in given_v.items():
        v_all[..., terminal] = value
    for terminal, value in given_i.items():
        i_all[..., terminal] = value
    island = np.zeros((*batch, n), dtype=bool)
    singular = np.zeros(batch, dtype=bool)
    if free.size:
        island = np.array(np.broadcast_to(_unreached(conductance, fixed), (*batch, n)))
        flat_g = conductance.reshape(-1, n, n)
        flat_v, flat_i = v_all.reshape(-1, n), i_all.reshape(-1, n)
        flat_island, flat_singular = island.reshape(-1, n), singular.reshape(-1)
        good = np.flatnonzero(~flat_island.any(axis=-1))
        if good.size:
            g_good = flat_g if good.size == flat_g.shape[0] else flat_g[good]
            reduced = _submatrix(g_good, free, free)
            rhs = flat_i[good][:, free, np.newaxis] - (
                _submatrix(g_good, free, fixed) @ flat_v[good][:, fixed, np.newaxis]
            )
            try:
                v_free = _solve_batched(reduced, rhs)[..., 0]
            except np.linalg.LinAlgError:
                v_free = np.full(rhs.shape[:-1], np.nan)
                for k in range(reduced.shape[0]):
                    with contextlib.suppress(np.linalg.LinAlgError):
                        v_free[k] = np.linalg.solve(reduced[k], rhs[k, :, 0])
            undetermined = ~np.all(np.isfinite(v_free), axis=-1)
            v_free[undetermined] = np.nan
            flat_singular[good[undetermined]] = True
            flat_v[np.ix_(good, free)] = v_free
        for element in np.flatnonzero(flat_island.any(axis=-1)):
            reached = free[~flat_island[element, free]]
            if reached.size:
                g = flat_g[element]
                rhs_reached = (
                    flat_i[element, reached] - g[np.ix_(reached, fixed)] @ (flat_v[element, fixed])
                )
                try:
                    flat_v[element, reached] = np.linalg.solve(
                        g[np.ix_(reached, reached)], rhs_reached
                    )
                except np.linalg.LinAlgError:
                    flat_v[element, reached] = np.nan
                    flat_singular[element] = True
            lost = np.flatnonzero(flat_island[element])
            pushed = flat_i[element, lost]
            flat_v[element, lost] = np.where(
                pushed > 0, np.inf, np.where(pushed < 0, -np.inf, np.nan)
            )
    known = np.where(np.isfinite(v_all), v_all, 0.0)
    currents = (conductance @ known[..., np.newaxis])[..., 0]
    currents = np.where(island, i_all, currents)
    currents = np.where(np.isnan(v_all) & ~island, np.nan, currents)
    # Given currents are returned as given rather than as G V, which carries rounding.
    for terminal, value in given_i.items():
        currents[..., terminal] = value
    return _Circuit(v_all, currents, island, singular, fixed, free)


def solve(
    G: ArrayLike,
    *,
    voltages: Mapping[int, ArrayLike] | None = None,
    currents: Mapping[int, ArrayLike] | None = None,
    on_singular: str = "warn",
) -> CircuitSolution:
    """Solve a circuit ``I = G V`` with voltage-biased, current-biased and floating terminals.

    Every terminal is either voltage-biased (its voltage is given), current-biased (its current
    is given) or floating (neither given; it draws no current, ``I = 0``, like an ideal voltage
    probe). At least one voltage must be given: it fixes the otherwise arbitrary zero of the
    voltages.

    Parameters
    ----------
    G : array_like, shape (N, N) or (..., N, N)
        Conductance matrix (see :func:`conductance_matrix`); leading axes are a batch.
    voltages : mapping of int to array_like, optional
        ``{terminal: V}`` for the voltage-biased terminals. Each value is a scalar or an array
        broadcast against the batch shape of `G`.
    currents : mapping of int to array_like, optional
        ``{terminal: I}`` for the current-biased terminals (current into the conductor),
        broadcast like the voltages. Terminals in neither mapping float.
    on_singular : {"warn", "raise"}, optional
        What to do with batch elements that have no unique solution (terminals coupled to
        no voltage-biased terminal, a singular reduced ``G``): ``"warn"`` (default) returns
        NaN for the undetermined voltages (``+-inf`` at a current-biased terminal whose
        current cannot flow) with a :class:`SingularCircuitWarning` naming the batch
        indices, and solves the rest of the batch; ``"raise"`` raises a ValueError.

    Returns
    -------
    CircuitSolution
        ``voltages`` and ``currents`` of all terminals, shape ``(..., N)`` with the batch shape
        broadcast from `G` and the given values.

    Raises
    ------
    ValueError
        If no voltage is given; if a terminal is given both a voltage and a current; with
        ``on_singular="raise"``, if some terminals are not connected to any voltage-biased
        terminal (a floating island, whose voltages are undetermined and whose given
        currents cannot be sunk) or the circuit has no unique solution for another reason
        (a singular reduced ``G``).

    Examples
    --------
    A quantum Hall bar with one chiral edge channel, ``T[i + 1, i] = 1`` around four
    terminals; 1 unit of current from terminal 0 to terminal 2 (grounded):

    >>> import numpy as np
    >>> T = np.roll(np.eye(4), 1, axis=0)
    >>> sol = solve(conductance_matrix(T), voltages={2: 0.0}, currents={0: 1.0})
    >>> sol.voltages
    array([1., 1., 0., 0.])
    >>> sol.currents
    array([ 1.,  0., -1.,  0.])
    """
    conductance = _checks.square_matrix(G, "G")
    mode = _check_on_singular(on_singular)
    n = conductance.shape[-1]
    given_v = _terminal_values(voltages, "voltages", n)
    given_i = _terminal_values(currents, "currents", n)
    both = sorted(set(given_v) & set(given_i))
    if both:
        raise ValueError(
            f"terminals {both} are given both a voltage and a current; a terminal is either "
            "voltage-biased or current-biased (or floating, when it is in neither mapping)"
        )
    if not given_v:
        raise ValueError(
            "no terminal has a given voltage, so the voltages are fixed only up to a common "
            "constant; ground one terminal, e.g. voltages={0: 0.0}"
        )
    circuit = _solve_circuit(conductance, given_v, given_i)
    if circuit.island.any():
        _, terminals, _ = _first_bad(circuit.island)
        driven = [t for t in terminals if t in given_i]
        sink = f", and the currents given at terminals {driven} cannot be sunk" if driven else ""
        _report_singular(
            f"terminals {terminals} are not connected to any voltage-biased terminal "
            f"(voltages are given at {circuit.fixed.tolist()})"
            f"{_batch_list(circuit.island.any(axis=-1))}, so their voltages are not "
            f"determined{sink}; they are returned as NaN (+-inf where a current is given). "
            "Couple them to the circuit or give one of them a voltage",
            mode,
        )
    if circuit.singular.any():
        _report_singular(
            f"the circuit has no unique solution{_batch_list(circuit.singular)}: the "
            "conductance matrix restricted to the terminals of unknown voltage "
            f"{circuit.free.tolist()} is singular, so their voltages are returned as NaN; "
            "check G, or give a voltage at one of these terminals",
            mode,
        )
    return CircuitSolution(voltages=circuit.voltages, currents=circuit.currents)


def four_terminal_resistance(
    G: ArrayLike,
    *,
    current: tuple[int, int],
    voltage: tuple[int, int],
    on_singular: str = "warn",
) -> FloatArray:
    """Four-terminal resistance ``R_{ij,kl} = (V_k - V_l) / I``.

    A current ``I`` is injected at terminal ``i`` and drawn at terminal ``j``; all other
    terminals float (ideal voltmeters drawing no current). Büttiker, Phys. Rev. Lett. 57, 1761
    (1986).

    Parameters
    ----------
    G : array_like, shape (N, N) or (..., N, N)
        Conductance matrix in units of ``e^2/h`` (or ``g_s e^2/h``); leading axes are a batch.
        For a device at temperature: ``meso.conductance(fsys, mu, kT, matrix=True)``'s
        ``conductance``, whose ``(mu, kT, ...)`` axes become the batch.
    current : (int, int)
        ``(i, j)``: the terminals the current enters and leaves by, ``i != j``.
    voltage : (int, int)
        ``(k, l)``: the terminals whose voltage difference is measured.
    on_singular : {"warn", "raise"}, optional
        Batch elements without a unique answer (an insulator, where no current can flow
        between the current terminals; a voltage terminal coupled to nothing) give ``inf``
        (``R_{ij,ij}`` of an insulator) or NaN with a :class:`SingularCircuitWarning` naming
        the batch indices (default), or raise a ValueError (``"raise"``).

    Returns
    -------
    ndarray, shape (...)
        Resistance in the inverse unit of `G`: ``h/e^2`` for ``G`` in ``e^2/h``.

    Examples
    --------
    A single edge channel through a Hall bar with terminals 0..5 in the order of the edge
    chirality has a Hall resistance ``h/e^2`` and no longitudinal resistance:

    >>> import numpy as np
    >>> G = conductance_matrix(np.roll(np.eye(6), 1, axis=0))
    >>> float(four_terminal_resistance(G, current=(0, 3), voltage=(1, 5)))
    1.0
    >>> float(four_terminal_resistance(G, current=(0, 3), voltage=(1, 2)))
    0.0
    """
    conductance = _checks.square_matrix(G, "G")
    mode = _check_on_singular(on_singular)
    n = conductance.shape[-1]
    source, drain = _terminal_pair(current, n, "current")
    plus, minus = _terminal_pair(voltage, n, "voltage")
    if source == drain:
        raise ValueError(
            f"current must flow between two different terminals, got current={current!r}"
        )
    circuit = _solve_circuit(conductance, {drain: np.zeros(())}, {source: np.ones(())})
    resistance = circuit.voltages[..., plus] - circuit.voltages[..., minus]
    no_path = circuit.island[..., source]
    if np.any(no_path):
        # No current flows: a voltage difference between connected terminals is 0/0.
        resistance = np.where(no_path & np.isfinite(resistance), np.nan, resistance)
        _report_singular(
            f"no current can flow from terminal {source} to terminal {drain} (current="
            f"{current!r}){_batch_list(no_path)}: they are not connected through the "
            "conductor (an insulator), so the resistance is infinite: inf where the voltage "
            "is measured at the current terminals, NaN where it is undetermined",
            mode,
        )
    floating = (circuit.island[..., plus] | circuit.island[..., minus]) & ~no_path
    if np.any(floating):
        loose = sorted({t for t in (plus, minus) if np.any(circuit.island[..., t] & floating)})
        _report_singular(
            f"voltage terminals {loose} of voltage={voltage!r} are not connected to the "
            f"current path {source} -> {drain}{_batch_list(floating)}, so their voltage is "
            "not determined; the resistance is NaN there",
            mode,
        )
    stuck = circuit.singular & ~no_path & ~floating
    if np.any(stuck):
        _report_singular(
            f"the circuit with current={current!r} and every other terminal floating has no "
            f"unique solution{_batch_list(stuck)} (a singular conductance matrix); the "
            "resistance is NaN there",
            mode,
        )
    return np.asarray(resistance, dtype=float)


def hall_resistance(
    G: ArrayLike,
    *,
    current: tuple[int, int],
    voltage: tuple[int, int],
    on_singular: str = "warn",
) -> FloatArray:
    """Hall resistance ``R_xy = (V_k - V_l) / I`` for voltage probes across the current path.

    The same quantity as :func:`four_terminal_resistance`; the name says that ``(k, l)`` sit on
    opposite edges of a Hall bar. For a quantum Hall bar with ``n`` perfect edge channels it is
    ``1/n`` in units of ``h/e^2`` (Büttiker, Phys. Rev. B 38, 9375 (1988)); its sign flips with
    the magnetic field.

    Parameters
    ----------
    G : array_like, shape (N, N) or (..., N, N)
        Conductance matrix in units of ``e^2/h``; leading axes are a batch. For a device
        at temperature: ``meso.conductance(fsys, mu, kT, matrix=True).conductance``.
    current : (int, int)
        Terminals the current enters and leaves by.
    voltage : (int, int)
        Terminals on opposite edges whose voltage difference is measured.
    on_singular : {"warn", "raise"}, optional
        As in :func:`four_terminal_resistance`: an insulating element of a field sweep (every
        Landau level empty) gives NaN with a :class:`SingularCircuitWarning`, and the rest
        of the sweep is kept.

    Returns
    -------
    ndarray, shape (...)
        Hall resistance in the inverse unit of `G` (``h/e^2``).

    Examples
    --------
    >>> import numpy as np
    >>> G = conductance_matrix(2 * np.roll(np.eye(6), 1, axis=0))  # two edge channels
    >>> float(hall_resistance(G, current=(0, 3), voltage=(1, 5)))
    0.5
    """
    return four_terminal_resistance(G, current=current, voltage=voltage, on_singular=on_singular)


def two_terminal_resistance(
    G: ArrayLike, source: int, drain: int, *, on_singular: str = "warn"
) -> FloatArray:
    """Two-terminal resistance between `source` and `drain`, all other terminals floating.

    The other terminals act as non-invasive voltage probes (zero current), so this is
    ``R_{ij,ij}`` of :func:`four_terminal_resistance`.

    Parameters
    ----------
    G : array_like, shape (N, N) or (..., N, N)
        Conductance matrix in units of ``e^2/h``; leading axes are a batch.
    source, drain : int
        Terminals the current enters and leaves by.
    on_singular : {"warn", "raise"}, optional
        As in :func:`four_terminal_resistance`: ``inf`` where no current can flow.

    Returns
    -------
    ndarray, shape (...)
        Resistance in the inverse unit of `G` (``h/e^2``).

    Examples
    --------
    >>> import numpy as np
    >>> float(two_terminal_resistance(conductance_matrix([[0.0, 0.25], [0.25, 0.0]]), 0, 1))
    4.0
    """
    return four_terminal_resistance(
        G, current=(source, drain), voltage=(source, drain), on_singular=on_singular
    )


def resistance_matrix(G: ArrayLike, *, ground: int = 0, on_singular: str = "warn") -> FloatArray:
    """Resistance matrix ``R`` with ``V = R I`` when terminal `ground` is held at zero voltage.

    ``R`` is the inverse of ``G`` with the row and column of `ground` removed, padded with
    zeros in that row and column. Any four-terminal resistance follows from it:
    ``R_{ij,kl} = R[k, i] - R[k, j] - R[l, i] + R[l, j]``.

    Parameters
    ----------
    G : array_like, shape (N, N) or (..., N, N)
        Conductance matrix in units of ``e^2/h``; leading axes are a batch.
    ground : int, optional
        The terminal held at zero voltage (default 0).
    on_singular : {"warn", "raise"}, optional
        Batch elements where some terminals are not connected to `ground` (or the reduced
        matrix is singular) get NaN rows and columns for them (inf on the diagonal) with a
        :class:`SingularCircuitWarning` naming the batch indices (default), or raise a
        ValueError (``"raise"``).

    Returns
    -------
    ndarray, shape like `G`
        Resistance matrix in the inverse unit of `G` (``h/e^2``).

    Examples
    --------
    >>> import numpy as np
    >>> G = conductance_matrix(np.roll(np.eye(4), 1, axis=0))
    >>> resistance_matrix(G, ground=0)
    array([[0., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 1.]])
    """
    conductance = _checks.square_matrix(G, "G")
    mode = _check_on_singular(on_singular)
    n = conductance.shape[-1]
    ground = _checks.index(ground, n, "ground terminal")
    others = np.array([t for t in range(n) if t != ground], dtype=np.intp)
    out = np.zeros(conductance.shape)
    if others.size == 0:
        return out
    island = np.array(np.broadcast_to(_unreached(conductance, ground), conductance.shape[:-1]))
    batch = conductance.shape[:-2]
    flat_g, flat_out = conductance.reshape(-1, n, n), out.reshape(-1, n, n)
    flat_island = island.reshape(-1, n)
    singular = np.zeros(batch, dtype=bool)
    flat_singular = singular.reshape(-1)
    for element in range(flat_g.shape[0]) if flat_island.any() else ():
        if not flat_island[element].any():
            continue
        lost = np.flatnonzero(flat_island[element])
        kept = others[~flat_island[element, others]]
        if kept.size:
            try:
                flat_out[element][np.ix_(kept, kept)] = np.linalg.inv(
                    flat_g[element][np.ix_(kept, kept)]
                )
            except np.linalg.LinAlgError:
                flat_out[element][np.ix_(kept, kept)] = np.nan
                flat_singular[element] = True
        flat_out[element][lost, :] = np.nan
        flat_out[element][:, lost] = np.nan
        flat_out[element][lost, lost] = np.inf
    good = np.flatnonzero(~flat_island.any(axis=-1))
    if good.size:
        reduced = _submatrix(flat_g[good], others, others)
        identity = np.broadcast_to(np.eye(others.size), reduced.shape)
        try:
            inverse = _solve_batched(reduced, identity)
        except np.linalg.LinAlgError:
            inverse = np.full(reduced.shape, np.nan)
            for k in range(reduced.shape[0]):
                with contextlib.suppress(np.linalg.LinAlgError):
                    inverse[k] = np.linalg.inv(reduced[k])
        undetermined = ~np.all(np.isfinite(inverse), axis=(-2, -1))
        inverse[undetermined] = np.nan
        flat_singular[good[undetermined]] = True
        flat_out[np.ix_(good, others, others)] = inverse
    if island.any():
        _, terminals, _ = _first_bad(island)
        _report_singular(
            f"terminals {terminals} are not connected to the ground terminal {ground}"
            f"{_batch_list(island.any(axis=-1))}, so the resistance matrix does not exist "
            "there: their rows and columns are NaN (inf on the diagonal: a current injected "
            "there cannot reach ground)",
            mode,
        )
    if singular.any():
        _report_singular(
            f"the conductance matrix without the ground terminal {ground} is singular"
            f"{_batch_list(singular)}, so the resistance matrix does not exist there (NaN)",
            mode,
        )
    return out


# --------------------------------------------------------------------------------------------
# Probe elimination and Onsager check
# --------------------------------------------------------------------------------------------


def _probe_indices(probes: Any, n_terminals: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Validate probe terminals; return (probes, kept terminals) as sorted index arrays."""
    if isinstance(probes, (int, np.integer)):
        probes = [probes]
    try:
        listed = list(probes)
    except TypeError:
        raise TypeError(
            f"probes must be a sequence of terminal indices, got {_checks._show(probes)}"
        ) from None
    checked = [_checks.index(p, n_terminals, "probe terminal") for p in listed]
    if len(set(checked)) != len(checked):
        raise ValueError(f"probes must not repeat a terminal, got {listed}")
    if len(checked) >= n_terminals:
        raise ValueError(
            f"probes {sorted(checked)} would eliminate all {n_terminals} terminals; at least "
            "one terminal must remain"
        )
    probe_array = np.array(sorted(checked), dtype=np.intp)
    kept = np.array([t for t in range(n_terminals) if t not in checked], dtype=np.intp)
    return probe_array, kept


def _eliminate_unchecked(
    transmission: FloatArray,
    conductance: FloatArray,
    probes: NDArray[np.intp],
    kept: NDArray[np.intp],
    *,
    allow_decoupled: bool,
) -> FloatArray:
    """``T_KK + T_KP G_PP^{-1} T_PK``; decoupled probes contribute nothing if allowed."""
    t_kk = _submatrix(transmission, kept, kept)
    if probes.size == 0:
        return t_kk.copy()
    g_pp = _submatrix(conductance, probes, probes)
    t_pk = _submatrix(transmission, probes, kept)
    t_kp = _submatrix(transmission, kept, probes)
    try:
        routed = _solve_batched(g_pp, t_pk)
    except np.linalg.LinAlgError:
        if not allow_decoupled:
            raise
        # A probe without any coupling (e.g. below a band edge) has an arbitrary occupation
        # that carries no current; the pseudo-inverse picks the harmless value zero.
        routed = np.linalg.pinv(g_pp) @ t_pk
    return t_kk + t_kp @ routed


def eliminate_probes(
    T: ArrayLike, probes: Iterable[int] | int, *, check: bool = True, atol: float = 1e-10
) -> FloatArray:
    """Effective transmission among the remaining terminals once floating probes are eliminated.

    Each probe draws no net current, so its voltage floats to a weighted average of the others.
    Eliminating the probes from ``I = G V`` is a Schur complement of the conductance matrix;
    in terms of transmissions,

    ``T_eff = T_KK + T_KP G_PP^{-1} T_PK``,

    with ``K`` the kept terminals, ``P`` the probes and ``G_PP`` the probe block of
    :func:`conductance_matrix`. ``conductance_matrix(T_eff)`` equals the Schur complement
    ``G_KK - G_KP G_PP^{-1} G_PK``, and the diagonal of ``T_eff`` is the effective reflection.
    For one probe ``f`` between terminals 1 and 2 this is Büttiker's formula for a dephasing
    voltage probe (Büttiker, Phys. Rev. B 33, 3020 (1986); IBM J. Res. Dev. 32, 63 (1988)),

    ``T_eff[2, 1] = T[2, 1] + T[f, 1] T[2, f] / (T[1, f] + T[2, f])``,

    where the denominator equals ``G[f, f] = T[f, 1] + T[f, 2]`` when ``T`` conserves current.

    Parameters
    ----------
    T : array_like, shape (N, N) or (..., N, N)
        Transmission matrix, ``T[i, j]`` from terminal ``j`` into terminal ``i``; leading axes
        are a batch (the same probes are eliminated in every element).
    probes : int or sequence of int
        The floating probe terminals to eliminate.
    check : bool, optional
        Warn with :class:`CurrentConservationWarning` when `T` does not conserve current.
    atol : float, optional
        Tolerance of that check.

    Returns
    -------
    ndarray, shape (..., M, M)
        ``T_eff`` with ``M = N - len(probes)``. Row and column ``a`` refer to the original
        terminal ``kept[a]``, where ``kept = [t for t in range(N) if t not in probes]`` (the
        remaining terminals in increasing order).

    Raises
    ------
    ValueError
        If some probes are not connected to any remaining terminal.

    Examples
    --------
    Terminals 0 and 1 with a direct transmission 0.5 and a probe 2 coupled to each with 0.5:

    >>> import numpy as np
    >>> T = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    >>> eliminate_probes(T, [2])
    array([[0.25, 0.75],
           [0.75, 0.25]])
    """
    transmission = _checks.square_matrix(T, "T")
    n = transmission.shape[-1]
    probe_array, kept = _probe_indices(probes, n)
    conductance = _conductance_unchecked(transmission)
    if check:
        _warn_if_not_conserving(conductance, atol, "T")
    island = _unreached(conductance, kept)
    if island.any():
        where, terminals, _ = _first_bad(island)
        raise ValueError(
            f"probes {terminals} are not connected to any remaining terminal{_batch_note(where)}, "
            "so their voltages are undetermined; they cannot be eliminated"
        )
    try:
        return _eliminate_unchecked(
            transmission, conductance, probe_array, kept, allow_decoupled=False
        )
    except np.linalg.LinAlgError:
        where = _first_singular(_submatrix(conductance, probe_array, probe_array))
        raise ValueError(
            f"the conductance matrix of the probes {probe_array.tolist()} is singular"
            f"{_batch_note(where)}, so their voltages are undetermined; they cannot be eliminated"
        ) from None


@dataclass(frozen=True)
class OnsagerCheck:
    """Outcome of :func:`check_onsager`.

    ``bool(check)`` is `ok`, so ``assert check_onsager(a, b)`` works; ``str(check)`` explains.

    Attributes
    ----------
    max_deviation : float
        Largest ``|G[..., i, j](B) - G[..., j, i](-B)|``.
    ok : bool
        Whether `max_deviation` is within `atol`.
    atol : float
        Tolerance used.
    worst : tuple of int
        Index ``(..., i, j)`` of the largest deviation in the `B` array.
    """

    max_deviation: float
    ok: bool
    atol: float
    worst: tuple[int, ...]

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        *batch, i, j = self.worst
        verdict = "holds" if self.ok else "is violated"
        return (
            f"Onsager relation G_ij(B) = G_ji(-B) {verdict}: largest deviation "
            f"{self.max_deviation:.3g} at i={i}, j={j}{_batch_note(tuple(batch))} "
            f"(atol={self.atol:g})"
        )


def check_onsager(
    G_plus_B: ArrayLike,
    G_minus_B: ArrayLike,
    *,
    atol: float = 1e-10,
    raise_on_failure: bool = False,
) -> OnsagerCheck:
    """Check the Onsager-Casimir relation ``G_ij(B) = G_ji(-B)`` on computed results.

    Works equally on conductance matrices and on transmission matrices (for which the
    relation reads ``T_ij(B) = T_ji(-B)``), single or batched.

    Parameters
    ----------
    G_plus_B, G_minus_B : array_like, shape (N, N) or (..., N, N)
        The matrix at field ``B`` and at field ``-B``, same shape.
    atol : float, optional
        Largest absolute deviation accepted.
    raise_on_failure : bool, optional
        Raise an ``AssertionError`` with the details instead of returning a failed check.

    Returns
    -------
    OnsagerCheck
        ``max_deviation``, ``ok``, ``atol`` and the index ``worst`` of the largest deviation.

    Examples
    --------
    >>> import numpy as np
    >>> T = np.roll(np.eye(3), 1, axis=0)          # chiral edge: T(-B) = T(B).T
    >>> check_onsager(T, T.T).ok
    True
    >>> print(check_onsager(T, T))
    Onsager relation G_ij(B) = G_ji(-B) is violated: largest deviation 1 at i=0, j=1 (atol=1e-10)
    """
    plus = _checks.square_matrix(G_plus_B, "G_plus_B")
    minus = _checks.square_matrix(G_minus_B, "G_minus_B")
    if plus.shape != minus.shape:
        raise ValueError(
            f"G_plus_B and G_minus_B must have the same shape, got {plus.shape} and {minus.shape}"
        )
    tolerance = float(_checks.positive(atol, "atol", allow_zero=True))
    deviation = np.abs(plus - np.swapaxes(minus, -1, -2))
    worst = tuple(int(k) for k in np.unravel_index(int(np.argmax(deviation)), deviation.shape))
    largest = float(deviation[worst])
    result = OnsagerCheck(
        max_deviation=largest, ok=largest <= tolerance, atol=tolerance, worst=worst
    )
    if raise_on_failure and not result.ok:
        raise AssertionError(str(result))
    return result


# --------------------------------------------------------------------------------------------
# Energy-resolved probes at finite bias
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSolution:
    """Self-consistent state of a conductor with energy-resolved probes (:func:`solve_probes`).

    Currents flow from each terminal into the conductor. Charge currents are in units of
    ``g_s e/h`` times energy, energy and heat currents in ``g_s/h`` times energy squared, with
    ``g_s`` the ``spin_degeneracy`` given (already included in the numbers).

    Attributes
    ----------
    energies : ndarray, shape (n_E,)
        The energy grid.
    mu, kT : ndarray, shape (N,)
        Chemical potential and thermal energy of every terminal: given for reservoirs, solved
        for voltage (``mu``) and thermal (``mu`` and ``kT``) probes, NaN for dephasing probes,
        whose occupation is not a Fermi function.
    distributions : ndarray, shape (n_E, N)
        Occupation of every terminal at each energy.
    charge_current, energy_current, heat_current : ndarray, shape (N,)
        Charge current ``I``, energy current ``J`` and heat current ``Q = J - mu I`` (``J`` for
        dephasing probes, which carry neither charge nor energy).
    charge_residual, energy_residual : ndarray, shape (N,)
        What is left of the conditions imposed on the probes: their charge current (all probe
        kinds) and energy current (thermal and dephasing probes); NaN where no condition is
        imposed.
    probes : dict of int to str
        The probe terminals and their kinds.
    iterations : int
        Newton iterations used (0 when no chemical potential or temperature is unknown).
    """

    energies: FloatArray
    mu: FloatArray
    kT: FloatArray
    distributions: FloatArray
    charge_current: FloatArray
    energy_current: FloatArray
    heat_current: FloatArray
    charge_residual: FloatArray
    energy_residual: FloatArray
    probes: dict[int, str]
    iterations: int

    @property
    def max_residual(self) -> float:
        """Largest absolute residual of the probe conditions, in the units of the currents."""
        both = np.concatenate([self.charge_residual, self.energy_residual])
        finite = both[np.isfinite(both)]
        return float(np.max(np.abs(finite))) if finite.size else 0.0


def _trapezoid_weights(energies: FloatArray) -> FloatArray:
    """Weights ``w`` with ``sum(w * f) ~ integral of f`` by the trapezoidal rule."""
    steps = np.diff(energies)
    weights = np.zeros(energies.size)
    weights[:-1] += 0.5 * steps
    weights[1:] += 0.5 * steps
    return weights


def _occupation_and_slope(
    energies: FloatArray, mu: FloatArray, kT: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Fermi occupations (n_E, M) and their derivatives with respect to mu and kT (kT > 0)."""
    occupation = fermi_dirac(energies[:, np.newaxis], mu, kT)
    # 1 - f evaluated directly keeps its small values accurate deep below mu.
    empty = fermi_dirac(2 * mu - energies[:, np.newaxis], mu, kT)
    d_mu = occupation * empty / kT
    d_kT = d_mu * (energies[:, np.newaxis] - mu) / kT
    return occupation, d_mu, d_kT


def _parse_probe_setup(
    n_terminals: int,
    mu: Mapping[int, ArrayLike],
    kT: Mapping[int, ArrayLike],
    probes: Mapping[int, str],
) -> tuple[dict[int, float], dict[int, float], dict[int, str]]:
    """Validate the reservoir and probe specification of :func:`solve_probes`."""
    for name, mapping in (("mu", mu), ("kT", kT), ("probes", probes)):
        _check_mapping(mapping, name)
    kinds: dict[int, str] = {}
    for terminal, kind in probes.items():
        key = _checks.index(terminal, n_terminals, "terminal in probes")
        if kind not in PROBE_KINDS:
            raise ValueError(
                f"probe {key} has kind {kind!r}; valid kinds are {', '.join(PROBE_KINDS)}"
            )
        kinds[key] = kind
    potentials: dict[int, float] = {}
    for terminal, value in mu.items():
        key = _checks.index(terminal, n_terminals, "terminal in mu")
        if key in kinds:
            raise ValueError(
                f"terminal {key} is a {kinds[key]} probe, whose chemical potential is solved "
                "for; do not give it in mu"
            )
        arr = _checks.real_array(value, f"mu[{key}]")
        if arr.ndim:
            raise ValueError(f"mu[{key}] must be a scalar, got shape {arr.shape}")
        potentials[key] = float(arr)
    if not potentials:
        raise ValueError(
            "no reservoir given: at least one terminal needs a fixed chemical potential in mu"
        )
    missing = [t for t in range(n_terminals) if t not in potentials and t not in kinds]
    if missing:
        raise ValueError(
            f"terminals {missing} are neither reservoirs (given in mu) nor probes (given in "
            "probes); every terminal must be one of the two"
        )
    temperatures: dict[int, float] = {}
    for terminal, value in kT.items():
        key = _checks.index(terminal, n_terminals, "terminal in kT")
        if kinds.get(key) in ("thermal", "dephasing"):
            raise ValueError(
                f"terminal {key} is a {kinds[key]} probe, whose temperature is not an input; "
                "do not give it in kT"
            )
        arr = _checks.temperature(value, f"kT[{key}]")
        if arr.ndim:
            raise ValueError(f"kT[{key}] must be a scalar, got shape {arr.shape}")
        if kinds.get(key) == "voltage" and float(arr) <= 0:
            raise ValueError(
                f"kT[{key}] of voltage probe {key} must be > 0 (a probe's occupation must be "
                f"smooth on the energy grid), got {float(arr)!r}"
            )
        temperatures[key] = float(arr)
    need = [t for t in range(n_terminals) if t in potentials or kinds.get(t) == "voltage"]
    absent = [t for t in need if t not in temperatures]
    if absent:
        raise ValueError(
            f"kT must give the thermal energy of every reservoir and voltage probe; missing "
            f"terminals {absent}"
        )
    return potentials, temperatures, kinds


class _ProbeNetwork:
    """Residuals and Jacobian of the charge and energy conditions on voltage/thermal probes.

    Dephasing probes are eliminated exactly at each energy beforehand, leaving an effective
    network over the kept terminals (reservoirs, voltage and thermal probes). The unknowns are
    scaled: ``(mu - center) / scale`` and ``log(kT / scale)``, and each condition is divided by
    the probe's linear-response coupling so that all residuals are of order one.
    """

    def __init__(
        self,
        energies: FloatArray,
        weights: FloatArray,
        conductance: FloatArray,
        mu: FloatArray,
        kT: FloatArray,
        unknown: NDArray[np.intp],
        thermal: NDArray[np.intp],
        center: float,
        scale: float,
        coupling: FloatArray,
    ) -> None:
        self.energies = energies
        self.weights = weights
        self.conductance = conductance  # (n_E, K, K) effective network
        self.mu = mu  # (K,) with the unknown entries overwritten on each evaluation
        self.kT = kT
        self.unknown = unknown  # positions (within K) of voltage and thermal probes
        self.thermal = thermal  # positions (within unknown) of the thermal probes
        self.center = center
        self.scale = scale
        self.coupling = coupling  # (n_unknown,)
        self.rows = conductance[:, unknown, :]
        self.rows_unknown = conductance[:, unknown[:, np.newaxis], unknown]
        self.energy_weights = weights * (energies - center) / scale

    def state(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        mu = self.mu.copy()
        kT = self.kT.copy()
        n_unknown = self.unknown.size
        mu[self.unknown] = self.center + self.scale * y[:n_unknown]
        kT[self.unknown[self.thermal]] = self.scale * np.exp(y[n_unknown:])
        return mu, kT

    def __call__(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        mu, kT = self.state(y)
        hot = kT > 0
        occupation = np.empty((self.energies.size, mu.size))
        occupation[:, ~hot] = fermi_dirac(self.energies[:, np.newaxis], mu[~hot], 0.0)
        f_unknown, d_mu, d_kT = _occupation_and_slope(
            self.energies, mu[self.unknown], kT[self.unknown]
        )
        occupation[:, hot] = fermi_dirac(self.energies[:, np.newaxis], mu[hot], kT[hot])
        occupation[:, self.unknown] = f_unknown
        charge = np.einsum("e,euj,ej->u", self.weights, self.rows, occupation)
        energy = np.einsum("e,euj,ej->u", self.energy_weights, self.rows, occupation)
        n_unknown = self.unknown.size
        n_thermal = self.thermal.size
        residual = np.concatenate([charge, energy[self.thermal]])
        residual /= np.concatenate([self.coupling, self.coupling[self.thermal]]) * self.scale

        # d(condition_u) / d(parameter_q) = sum_E w(E) G_uq(E) df_q/d(parameter_q)
        charge_mu = np.einsum("e,euq,eq->uq", self.weights, self.rows_unknown, d_mu)
        energy_mu = np.einsum("e,euq,eq->uq", self.energy_weights, self.rows_unknown, d_mu)
        thermal_cols = self.thermal
        d_kT_thermal = d_kT[:, thermal_cols]
        charge_kT = np.einsum(
            "e,euq,eq->uq", self.weights, self.rows_unknown[:, :, thermal_cols], d_kT_thermal
        )
        energy_kT = np.einsum(
            "e,euq,eq->uq",
            self.energy_weights,
            self.rows_unknown[:, :, thermal_cols],
            d_kT_thermal,
        )
        jacobian = np.zeros((n_unknown + n_thermal, n_unknown + n_thermal))
        jacobian[:n_unknown, :n_unknown] = charge_mu
        jacobian[n_unknown:, :n_unknown] = energy_mu[self.thermal]
        jacobian[:n_unknown, n_unknown:] = charge_kT
        jacobian[n_unknown:, n_unknown:] = energy_kT[self.thermal]
        # Chain rule for the scaled unknowns: dmu/dy = scale, dkT/dy = kT.
        jacobian[:, :n_unknown] *= self.scale
        jacobian[:, n_unknown:] *= kT[self.unknown[self.thermal]]
        jacobian /= (
            np.concatenate([self.coupling, self.coupling[self.thermal]])[:, np.newaxis]
            * self.scale
        )
        return residual, jacobian


def _newton(
    system: _ProbeNetwork, start: FloatArray, *, tol: float, max_iterations: int
) -> tuple[FloatArray, float, int]:
    """Damped Newton iteration; returns (solution, largest scaled residual, iterations)."""
    y = start.copy()
    residual, jacobian = system(y)
    norm = float(np.max(np.abs(residual)))
    n_unknown = system.unknown.size
    iterations = 0
    polished = False
    while iterations < max_iterations:
        if norm <= tol:
            # One more step once converged removes what is left above rounding.
            if polished:
                break
            polished = True
        try:
            step = np.linalg.solve(jacobian, -residual)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        # Keep each step physical: mu moves by at most a few scales, kT by at most a factor e.
        step[:n_unknown] = np.clip(step[:n_unknown], -5.0, 5.0)
        step[n_unknown:] = np.clip(step[n_unknown:], -1.0, 1.0)
        damping = 1.0
        while damping > 1e-6:
            trial = y + damping * step
            trial_residual, trial_jacobian = system(trial)
            trial_norm = float(np.max(np.abs(trial_residual)))
            if (np.isfinite(trial_norm) and trial_norm < norm) or (
                polished and trial_norm <= norm
            ):
                break
            damping *= 0.5
        else:
            break
        iterations += 1
        y, residual, jacobian, norm = trial, trial_residual, trial_jacobian, trial_norm
    return y, norm, iterations


def solve_probes(
    energies: ArrayLike,
    transmission: ArrayLike,
    *,
    mu: Mapping[int, ArrayLike],
    kT: Mapping[int, ArrayLike],
    probes: Mapping[int, str],
    spin_degeneracy: int = 1,
    check: bool = True,
    atol: float = 1e-10,
    tol: float = 1e-12,
    max_iterations: int = 100,
) -> ProbeSolution:
    """Solve energy-resolved voltage, thermal and dephasing probes self-consistently.

    Every terminal is either a reservoir, with a given chemical potential ``mu`` and thermal
    energy ``kT``, or a probe of one of three kinds (Büttiker, IBM J. Res. Dev. 32, 63 (1988);
    Phys. Rev. B 33, 3020 (1986)):

    ``"voltage"``
        An inelastic probe: a reservoir with a Fermi occupation at its own given ``kT``, whose
        ``mu`` floats so that its net charge current is zero.
    ``"thermal"``
        A probe conserving charge and energy: both ``mu`` and ``kT`` float so that its charge
        and energy currents are zero.
    ``"dephasing"``
        An elastic probe: no current at any energy; its occupation is a non-equilibrium
        function of energy found by a linear solve at each energy, which is the same as
        applying :func:`eliminate_probes` to ``T(E)`` at each energy.

    The current from terminal ``i`` into the conductor is
    ``I_i = g_s (e/h) sum_j integral dE T_ij(E) [f_i(E) - f_j(E)]``, and the energy current
    ``J_i`` is the same integral weighted by ``E``. All probes are solved jointly by a damped
    Newton iteration with an analytic Jacobian, started from the linear-response solution
    (falling back to :func:`scipy.optimize.root` if it stalls).

    Energy integrals use the trapezoidal rule on the given grid, which must extend several
    ``kT`` beyond all chemical potentials (an :class:`EnergyGridWarning` says when the
    occupations still differ at its ends) and resolve both ``kT`` and the structure of
    ``T(E)``. For smooth integrands that vanish at both ends the rule converges faster than
    any power of the grid spacing.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Strictly increasing energy grid, in any unit.
    transmission : array_like, shape (n_E, N, N)
        ``T[e, i, j]``: transmission from terminal ``j`` into terminal ``i`` at
        ``energies[e]``.
    mu : mapping of int to float
        ``{terminal: chemical potential}`` of every reservoir, in the unit of `energies`.
    kT : mapping of int to float
        ``{terminal: thermal energy}`` of every reservoir (``>= 0``) and every voltage probe
        (``> 0``), in the unit of `energies`.
    probes : mapping of int to str
        ``{terminal: kind}`` with kind ``"voltage"``, ``"thermal"`` or ``"dephasing"``.
    spin_degeneracy : {1, 2}, optional
        Spin degeneracy ``g_s`` multiplying all currents (default 1).
    check : bool, optional
        Warn with :class:`CurrentConservationWarning` if some ``T(E)`` does not conserve
        current.
    atol : float, optional
        Tolerance of that check.
    tol : float, optional
        Convergence target for the probe conditions, relative to each probe's linear-response
        coupling and the energy scale of the problem.
    max_iterations : int, optional
        Largest number of Newton iterations.

    Returns
    -------
    ProbeSolution
        Probe chemical potentials and temperatures, occupations, the charge, energy and heat
        currents of every terminal and the residuals of the probe conditions.

    Raises
    ------
    ValueError
        For inconsistent input, or probes not coupled to any reservoir.
    RuntimeError
        If the probe conditions cannot be met to `tol`.

    Examples
    --------
    An energy-independent conductor: a voltage probe coupled three times more strongly to
    terminal 0 than to terminal 1 takes the weighted average of their chemical potentials,
    at any bias.

    >>> import numpy as np
    >>> E = np.linspace(-1.0, 1.0, 2001)
    >>> T = [[0.0, 1.0, 0.6], [1.0, 0.0, 0.2], [0.6, 0.2, 0.0]]
    >>> sol = solve_probes(E, np.broadcast_to(T, (E.size, 3, 3)), mu={0: 0.1, 1: -0.1},
    ...                    kT={0: 0.02, 1: 0.02, 2: 0.02}, probes={2: "voltage"})
    >>> round(float(sol.mu[2]), 12)
    0.05
    >>> round(float(sol.charge_current[0]), 12)    # 1.0 * 0.2 + 0.6 * 0.05
    0.23
    """
    grid = _checks.energy_grid(energies, "energies", min_points=2)
    trans = _checks.square_matrix(transmission, "transmission")
    if trans.ndim != 3 or trans.shape[0] != grid.size:
        raise ValueError(
            f"transmission must have shape (n_E, N, N) = ({grid.size}, N, N) to match energies, "
            f"got shape {trans.shape}"
        )
    n = trans.shape[-1]
    g_s = float(_checks.spin_degeneracy(spin_degeneracy))
    max_iterations = _checks.positive_int(max_iterations, "max_iterations")
    potentials, temperatures, kinds = _parse_probe_setup(n, mu, kT, probes)

    full_conductance = _conductance_unchecked(trans)
    if check:
        _warn_if_not_conserving(full_conductance, atol, "transmission")

    dephasing = np.array(sorted(t for t, k in kinds.items() if k == "dephasing"), dtype=np.intp)
    kept = np.array([t for t in range(n) if t not in dephasing], dtype=np.intp)
    effective = _eliminate_unchecked(
        trans, full_conductance, dephasing, kept, allow_decoupled=True
    )
    conductance = _conductance_unchecked(effective)
    weights = _trapezoid_weights(grid)

    kept_list = kept.tolist()
    unknown_terminals = [t for t in kept_list if kinds.get(t) in ("voltage", "thermal")]
    unknown = np.array([kept_list.index(t) for t in unknown_terminals], dtype=np.intp)
    thermal = np.array(
        [k for k, t in enumerate(unknown_terminals) if kinds[t] == "thermal"], dtype=np.intp
    )

    reservoir_mu = np.array(list(potentials.values()))
    center = 0.5 * (reservoir_mu.max() + reservoir_mu.min())
    scale = max(
        max(temperatures.values()),
        0.5 * float(np.ptp(reservoir_mu)),
        float(np.median(np.diff(grid))),
    )

    mu_all = np.full(n, np.nan)
    kT_all = np.full(n, np.nan)
    for terminal, value in potentials.items():
        mu_all[terminal] = value
    for terminal, value in temperatures.items():
        kT_all[terminal] = value

    iterations = 0
    reservoir_kT = np.array(list(temperatures.values()))
    if unknown.size and np.ptp(reservoir_mu) == 0 and np.ptp(reservoir_kT) == 0:
        # Equilibrium: every terminal at the common mu and kT carries no current, whatever
        # T(E); exact, also at kT = 0 where the grid cannot resolve a probe temperature.
        for terminal in unknown_terminals:
            mu_all[terminal] = reservoir_mu[0]
            if kinds[terminal] == "thermal":
                kT_all[terminal] = reservoir_kT[0]
    elif unknown.size:
        window, _, _ = _occupation_and_slope(grid, np.array([center]), np.array([scale]))
        slope = window[:, 0] * (1.0 - window[:, 0]) / scale
        coupling = np.einsum("e,eu->u", weights * slope, conductance[:, unknown, unknown])
        if np.any(coupling <= 0):
            loose = [unknown_terminals[k] for k in np.flatnonzero(coupling <= 0)]
            raise ValueError(
                f"probes {loose} are not coupled to any other terminal within the energy window "
                f"around mu = {center:g} (width {scale:g}); their state is undetermined"
            )
        start = _linear_response_start(
            conductance,
            weights * slope,
            (grid - center) ** 2 / scale**2 * weights * slope,
            kept_list,
            unknown_terminals,
            kinds,
            potentials,
            temperatures,
            scale,
        )
        y0 = np.concatenate(
            [
                (start[0] - center) / scale,
                np.log(start[1][thermal] / scale),
            ]
        )
        system = _ProbeNetwork(
            grid,
            weights,
            conductance,
            mu_all[kept].copy(),
            np.nan_to_num(kT_all[kept]),
            unknown,
            thermal,
            center,
            scale,
            coupling,
        )
        y, norm, iterations = _newton(system, y0, tol=tol, max_iterations=max_iterations)
        if not norm <= tol:
            fallback = scipy.optimize.root(
                system, y, jac=True, method="hybr", options={"xtol": 1e-15}
            )
            fallback_norm = float(np.max(np.abs(system(fallback.x)[0])))
            if fallback_norm < norm:
                y, norm = fallback.x, fallback_norm
        if not norm <= tol:
            raise RuntimeError(
                f"the probe conditions could not be met: the largest scaled residual is "
                f"{norm:.3g} after {iterations} Newton iterations (target tol={tol:g}); check "
                "that the energy grid resolves kT and T(E), or loosen tol"
            )
        solved_mu, solved_kT = system.state(y)
        mu_all[kept] = solved_mu
        kT_all[kept[unknown[thermal]]] = solved_kT[unknown[thermal]]

    occupations = np.zeros((grid.size, n))
    occupations[:, kept] = fermi_dirac(grid[:, np.newaxis], mu_all[kept], kT_all[kept])
    if dephasing.size:
        block = full_conductance[:, dephasing[:, np.newaxis], dephasing]
        rhs = -full_conductance[:, dephasing[:, np.newaxis], kept] @ occupations[:, kept, None]
        try:
            occupations[:, dephasing] = np.linalg.solve(block, rhs)[..., 0]
        except np.linalg.LinAlgError:
            occupations[:, dephasing] = (np.linalg.pinv(block) @ rhs)[..., 0]

    per_energy = np.einsum("eij,ej->ei", full_conductance, occupations)
    charge = g_s * weights @ per_energy
    energy = g_s * (weights * grid) @ per_energy
    heat = energy - np.nan_to_num(mu_all) * charge
    is_probe = np.zeros(n, dtype=bool)
    is_probe[list(kinds)] = True
    energy_conserving = np.array([kinds.get(t) in ("thermal", "dephasing") for t in range(n)])
    charge_residual = np.where(is_probe, charge, np.nan)
    energy_residual = np.where(energy_conserving, energy, np.nan)

    # Dephasing occupations are averages of the others, so the Fermi terminals decide.
    edge_gap = np.ptp(occupations[[0, -1]][:, kept], axis=-1)
    if np.max(edge_gap) > 1e-6:
        end = "upper" if edge_gap[-1] >= edge_gap[0] else "lower"
        warnings.warn(
            f"the energy grid [{grid[0]:g}, {grid[-1]:g}] does not cover the transport window: "
            f"at its {end} end the occupations of the terminals still differ by "
            f"{np.max(edge_gap):.3g}; extend it several kT beyond the chemical potentials",
            EnergyGridWarning,
            stacklevel=2,
        )

    return ProbeSolution(
        energies=grid,
        mu=mu_all,
        kT=kT_all,
        distributions=occupations,
        charge_current=charge,
        energy_current=energy,
        heat_current=heat,
        charge_residual=charge_residual,
        energy_residual=energy_residual,
        probes=dict(sorted(kinds.items())),
        iterations=iterations,
    )


def _linear_response_start(
    conductance: FloatArray,
    charge_weights: FloatArray,
    heat_weights: FloatArray,
    kept: list[int],
    unknown_terminals: list[int],
    kinds: dict[int, str],
    potentials: dict[int, float],
    temperatures: dict[int, float],
    scale: float,
) -> tuple[FloatArray, FloatArray]:
    """Probe mu and kT from the thermally averaged linear circuits (the Newton start)."""
    average = np.einsum("e,eij->ij", charge_weights, conductance)
    position = {t: k for k, t in enumerate(kept)}
    try:
        electric = solve(average, voltages={position[t]: v for t, v in potentials.items()})
    except ValueError:
        raise ValueError(
            f"probes {unknown_terminals} include some not coupled, directly or through other "
            "probes, to any reservoir within the energy window; their state is undetermined"
        ) from None
    mu_start = electric.voltages[[position[t] for t in unknown_terminals]]
    kT_start = np.array([temperatures.get(t, np.nan) for t in unknown_terminals])
    thermal_terminals = [t for t in unknown_terminals if kinds[t] == "thermal"]
    if thermal_terminals:
        # Heat flows like charge with E^2 weights (Wiedemann-Franz); Joule heating is left to
        # the Newton iteration.
        average_heat = np.einsum("e,eij->ij", heat_weights, conductance)
        fixed = {position[t]: v for t, v in temperatures.items() if t in position}
        heat = solve(average_heat, voltages=fixed)
        for k, t in enumerate(unknown_terminals):
            if kinds[t] == "thermal":
                kT_start[k] = max(float(heat.voltages[position[t]]), 0.05 * scale)
    return mu_start, kT_start
