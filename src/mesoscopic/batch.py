"""Transmission and scattering matrices of a finalized system for many energies at once.

:func:`transmission` and :func:`smatrices` evaluate the system's Hamiltonian and leads once
for the whole batch of energies and hand them to a solver:

``solver="rgf"``
    Recursive Green's functions over slices (:mod:`mesoscopic.solvers.rgf`), vectorized over
    the energies, on the CPU (NumPy) or a GPU (CuPy, ``device="gpu"``).
``solver="sparse"``
    The sparse direct solver (:mod:`mesoscopic.solvers.sparse`), energy by energy, CPU only.
``solver="auto"`` (default)
    RGF unless the system slices badly, then sparse: the largest slice holds more than
    half of the orbitals of a system above :data:`AUTO_SMALL_SYSTEM` orbitals, or one
    energy of the recursion would not fit in memory; also sparse for more than
    :data:`AUTO_MAX_RGF_LEADS` leads (dephasing probes on every site of a region).

The settings (solver, device, workers, chunk size, memory limit, BLAS threads) travel
together as one :class:`~mesoscopic.solvers.SolverOptions`, ``options=``, which is also how
the physics modules built on these entries (noise, capacitor, spin, thermoelectric) take
them; the individual keywords build one.

A system made of parts that nothing couples (explicit spin without spin-orbit coupling,
the two spin blocks of a BHZ model, decoupled orbitals) has its transmission solved part by
part and summed (:mod:`mesoscopic.solvers._parts`): for two equal parts about a quarter of
the work each; ``stats["independent_parts"]`` tells how many. Orbitals joined to no lead
are left out. :func:`smatrices` keeps such systems whole (the modes of the whole leads, in
their order).

Both solvers give the same numbers (to about 1e-12). Units: energies in the unit of the
Hamiltonian; transmissions dimensionless, per spin species present in the orbitals (multiply
conductances by the system's ``spin_degeneracy`` where it applies).

Parallelism and threads
-----------------------
The RGF sweep on the CPU is a chain of LAPACK calls on matrices of a few hundred rows at
most, which extra BLAS threads slow down rather than speed up (on two cores, 5x slower for a
100 x 100 wire with two threads than with one). It therefore runs with one BLAS thread per
process (:data:`mesoscopic.solvers.rgf.DEFAULT_BLAS_THREADS`) unless ``blas_threads`` says
otherwise, and uses more cores through processes: ``workers=k`` splits the energies into
contiguous chunks solved by ``k`` processes
(:class:`concurrent.futures.ProcessPoolExecutor`)::

    import os
    T = meso.batch.transmission(fsys, energies, workers=os.cpu_count())

Within one process, threads share a batch: the energies (or parameter elements) are cut into
:func:`mesoscopic.solvers.rgf.default_threads` chunks solved side by side when the slices
have at least 64 orbitals, and otherwise the lead modes of different energies are found by
those threads while the slice recursion splits its entries between them. A single energy
with all leads at the two ends of the slicing and an open one at each (a wire, ``smatrix``
in a disorder loop) is swept from both ends at once by two threads, the halves joined in
the middle by the Dyson equation. The count is the cores this process may use (at most 8), or
``MESOSCOPIC_THREADS`` (``1``: no threads). ``workers > 1`` uses processes instead.

With numba installed (``pip install mesoscopic[fast]``) the slice recursion on the CPU runs
compiled (:mod:`mesoscopic.solvers._rgf_kernel`, LAPACK's LU and inverse called without
returning to the interpreter between slices, threads without the interpreter lock): 2-3x
faster for slices of tens of orbitals. Numba compiles it once per installation (about
15 s, in a separate process); meanwhile the NumPy recursion solves, with the same numbers.
``MESOSCOPIC_RGF_KERNEL`` chooses: ``auto`` (the default), ``compiled`` (compile in this
process if needed, then use it) or ``numpy``.

Lead modes computed by the exact eigenmode method (:func:`mesoscopic.leads.modes`) likewise
use one BLAS thread for cells of up to
:data:`mesoscopic.leads.SINGLE_THREAD_MAX_ORBITALS` orbitals. Threads are pinned with
``threadpoolctl`` and restored afterwards.

Results do not depend on ``workers`` for a given ``chunk_size``.

Batches of parameter values
---------------------------
``params`` may be a list of dicts: systems of one structure whose values differ (disorder
realizations, gate voltages, fields), all solved in one batched RGF sweep. The result gains
a leading axis over the list::

    G = meso.batch.transmission(fsys, energies, 1, 0,
                                params=[{"v": v} for v in gates])   # (n_gates, n_energies)

The value functions are evaluated once per dict. Blocks of the Hamiltonian equal in all
elements are stored once, the others per element; the slicing uses the union of the
elements' sparsity patterns. A lead whose matrices differ between elements (a field in the
leads, a self-energy lead of the parameters) takes its modes element by element.
``solver="auto"`` decides once, for the whole list (the sparse solver then solves the
elements one by one).

Examples
--------
>>> import numpy as np
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(6) for y in range(3))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
>>> lead[(lat(0, y) for y in range(3))] = 4.0
>>> lead[lat.neighbors()] = -1.0
>>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
>>> fsys = syst.finalized()
>>> transmission(fsys, [1.0, 2.5, 3.8], 1, 0).round(10).tolist()   # open channels
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks
from ._compat import renamed_keyword
from ._workers import exit_with_parent
from .scattering import SMatrix
from .solvers import _backend, _parts, rgf, sparse
from .solvers._embedding import AnyLeadData
from .solvers.options import SOLVERS, DeviceName, SolverName, SolverOptions, solver_options
from .system import System

__all__ = [
    "AUTO_MAX_RGF_LEADS",
    "AUTO_SMALL_SYSTEM",
    "SOLVERS",
    "SMatrixBatch",
    "SolverOptions",
    "smatrices",
    "transmission",
]

#: Below this many orbitals ``solver="auto"`` always uses RGF, whatever the slicing.
AUTO_SMALL_SYSTEM = 2000
#: Above this many leads ``solver="auto"`` uses the sparse solver: the recursion carries every
#: pair of leads through the slices (work ``~ n_leads^2`` per slice), one factorization does not.
AUTO_MAX_RGF_LEADS = 16
# Above this fraction of all orbitals in the largest slice, "auto" prefers the sparse solver.
_AUTO_MAX_SLICE_FRACTION = 0.5


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Solver plumbing
# --------------------------------------------------------------------------------------------


def _checked_options(
    energies: ArrayLike, options: Any, keywords: dict[str, Any]
) -> tuple[NDArray[np.float64], SolverOptions]:
    """Checked energies and the one options object of a batch computation."""
    settings = solver_options(options, **keywords)
    return rgf.check_energies(energies), settings


def _params_batch(params: Any) -> list[Mapping[str, Any]] | None:
    """The elements of a parameter batch (a list or tuple of dicts), or None for one dict."""
    if params is None or isinstance(params, Mapping):
        return None
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise TypeError(
            "params must be a dict of parameter values, or a list of such dicts (a batch), "
            f"got {_checks._show(params)}"
        )
    if len(params) == 0:
        raise ValueError("params is an empty list; give at least one dict of parameter values")
    for k, element in enumerate(params):
        if not isinstance(element, Mapping):
            raise TypeError(
                f"params[{k}] must be a dict of parameter values, got {_checks._show(element)}"
            )
    return list(params)


def _inputs(
    system: System,
    params: Mapping[str, Any] | None,
    elements: list[Mapping[str, Any]] | None,
    check_hermiticity: bool,
    settings: SolverOptions,
) -> tuple[list[Any], list[list[AnyLeadData]]]:
    """Per element of a parameter batch (one for `params`): Hamiltonian and lead data."""
    from .transport import _system_matrix, lead_data, lead_data_batch

    if settings.device == "gpu":
        _backend.array_module(settings.device)  # a clear error before any work
    if elements is None:
        return [_system_matrix(system, params, check_hermiticity)], [
            lead_data(system, params=params)
        ]
    hams = [_system_matrix(system, p, check_hermiticity) for p in elements]
    return hams, lead_data_batch(system, elements)


def _problem(
    system: System,
    params: Mapping[str, Any] | None,
    check_hermiticity: bool,
    settings: SolverOptions,
) -> tuple[Any, list[AnyLeadData], rgf.RGFProblem | None]:
    """Hamiltonian, lead data and the prepared RGF problem (None: use the sparse solver)."""
    (ham,), (leads,) = _inputs(system, params, None, check_hermiticity, settings)
    problem = _rgf_problem(
        settings.solver,
        ham,
        leads,
        settings.device,
        settings.memory_limit,
        hermitian=check_hermiticity,
    )
    return ham, leads, problem


def _batch_problem(
    system: System,
    elements: list[Mapping[str, Any]],
    check_hermiticity: bool,
    settings: SolverOptions,
) -> tuple[list[Any], list[list[AnyLeadData]], rgf.RGFProblem | None]:
    """Per element, Hamiltonian and lead data; the RGF problem of all (None: sparse)."""
    hams, leads = _inputs(system, None, elements, check_hermiticity, settings)
    return hams, leads, _batch_rgf_problem(hams, leads, settings, hermitian=check_hermiticity)


def _batch_rgf_problem(
    hams: list[Any],
    leads: list[list[AnyLeadData]],
    settings: SolverOptions,
    hermitian: bool = False,
) -> rgf.RGFProblem | None:
    """The prepared RGF problem of a parameter batch, or None for the sparse solver
    (``hermitian``: Hamiltonians a finalized system built and checked)."""
    if settings.solver == "sparse" or (
        settings.solver == "auto" and len(leads[0]) > AUTO_MAX_RGF_LEADS
    ):
        return None
    problem = rgf._prepare(hams, leads, slicing=None, batched=True, hermitian=hermitian)
    if settings.solver == "auto" and not _auto_keeps_rgf(
        problem, settings.device, settings.memory_limit
    ):
        return None
    return problem


def _rgf_problem(
    solver: str,
    ham: Any,
    leads: list[AnyLeadData],
    device: str,
    memory_limit: float | None,
    hermitian: bool = False,
) -> rgf.RGFProblem | None:
    """The prepared RGF problem, or None where ``solver="auto"`` picks the sparse solver
    (``hermitian``: a Hamiltonian a finalized system built and checked)."""
    if solver == "sparse":
        return None
    if solver == "auto" and len(leads) > AUTO_MAX_RGF_LEADS:
        return None
    problem = rgf._prepare([ham], [leads], slicing=None, batched=False, hermitian=hermitian)
    if solver == "rgf" or _auto_keeps_rgf(problem, device, memory_limit):
        return problem
    return None


def _auto_keeps_rgf(problem: rgf.RGFProblem, device: str, memory_limit: float | None) -> bool:
    """Whether ``solver="auto"`` keeps the RGF for a prepared problem (it slices well)."""
    slicing = problem.slicing
    if (
        problem.num_orbitals > AUTO_SMALL_SYSTEM
        and slicing.max_size > _AUTO_MAX_SLICE_FRACTION * problem.num_orbitals
    ):
        return False
    xp = _backend.array_module(device)
    budget = _backend.device_memory_bytes(xp) if memory_limit is None else memory_limit
    return problem.memory_per_energy(smatrix=True) <= budget


def _sparse_chunk(args: tuple[Any, list[AnyLeadData], NDArray[np.float64]]) -> list[SMatrix]:
    ham, leads, energies = args
    return [sparse.scattering_matrix(ham, leads, float(e)) for e in energies]


def _sparse_smatrices(
    ham: Any, leads: list[AnyLeadData], energies: NDArray[np.float64], workers: int
) -> list[SMatrix]:
    if workers == 1 or energies.size == 1:
        return _sparse_chunk((ham, leads, energies))
    pieces = np.array_split(energies, min(workers, energies.size))
    with ProcessPoolExecutor(max_workers=len(pieces), initializer=exit_with_parent) as pool:
        parts = list(pool.map(_sparse_chunk, [(ham, leads, p) for p in pieces]))
    return [s for part in parts for s in part]


def _transmission_matrix(smatrix: SMatrix) -> NDArray[np.float64]:
    """``SMatrix.transmission_matrix()`` in one pass: sums of ``|S|^2`` over lead blocks.

    The same numbers (the diagonal is the total reflection ``sum |S_ii|^2``), without a
    Python loop over pairs of leads, which dominates for many leads (dephasing probes).
    """
    counts = np.array([info.num_modes for info in smatrix.lead_info], dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    probability = np.abs(smatrix.data) ** 2
    by_row = np.zeros((counts.size, probability.shape[1]))
    np.add.at(by_row, owner, probability)
    result = np.zeros((counts.size, counts.size))
    np.add.at(result.T, owner, by_row.T)
    return result


def _transmissions(
    hams: list[Any],
    lead_lists: list[list[AnyLeadData]],
    energies: NDArray[np.float64],
    settings: SolverOptions,
    stats: dict[str, Any] | None,
    batched: bool,
    hermitian: bool = False,
) -> NDArray[np.float64]:
    """Transmission matrices of one problem (``batched``: of a parameter batch, with a
    leading axis over its elements) by the solver the settings choose (``hermitian``:
    Hamiltonians a finalized system built and checked)."""
    if batched:
        problem = _batch_rgf_problem(hams, lead_lists, settings, hermitian)
    else:
        problem = _rgf_problem(
            settings.solver,
            hams[0],
            lead_lists[0],
            settings.device,
            settings.memory_limit,
            hermitian,
        )
    if problem is not None:
        return np.asarray(problem.transmission(energies, **settings.rgf_keywords(), stats=stats))
    result = np.array(
        [
            [
                _transmission_matrix(s)
                for s in _sparse_smatrices(ham, leads, energies, settings.workers)
            ]
            for ham, leads in zip(hams, lead_lists)
        ]
    )
    _sparse_stats(stats, energies, len(hams))
    return result if batched else result[0]


def _merge_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one part's solver statistics to those of the parts before it."""
    for key, value in part.items():
        summed = key in ("flops", "seconds", "sparse_fallback_energies")
        if summed and key in total:
            total[key] = total[key] + value
        elif key == "solver" and total.get(key, value) != value:
            total[key] = "mixed"
        elif key == "max_slice":
            total[key] = max(total.get(key, 0), value)
        elif key not in total or not summed:
            total.setdefault(key, value)


def _sparse_stats(
    stats: dict[str, Any] | None, energies: NDArray[np.float64], num_elements: int = 1
) -> None:
    if stats is not None:
        stats.update(
            solver="sparse",
            num_energies=int(energies.size) * num_elements,
            num_elements=num_elements,
            sparse_fallback_energies=0,
        )


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SMatrixBatch(Sequence[SMatrix]):
    """Scattering matrices at a batch of energies, with vectorized read-outs.

    A sequence of :class:`~mesoscopic.scattering.SMatrix` (``batch[k]`` is the one at
    ``batch.energies[k]``), plus the usual transport quantities as arrays over energy.

    Attributes
    ----------
    energies : (n_E,) float ndarray
        The energies, in the order given.
    smatrices : tuple of SMatrix
        One per energy.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat(1)] = 1.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> batch = smatrices(syst.finalized(), [0.0, 1.0])
    >>> len(batch), batch.transmission(1, 0).round(6).tolist()
    (2, [0.8, 0.75])
    >>> bool(batch.check_unitarity().max() < 1e-12)
    True
    """

    energies: NDArray[np.float64]
    smatrices: tuple[SMatrix, ...]

    def __post_init__(self) -> None:
        energies = np.array(self.energies, dtype=float)
        if energies.shape != (len(self.smatrices),):
            raise ValueError(
                f"energies must have shape ({len(self.smatrices)},), one per S-matrix, got "
                f"{energies.shape}"
            )
        energies.flags.writeable = False
        object.__setattr__(self, "energies", energies)
        object.__setattr__(self, "smatrices", tuple(self.smatrices))

    def __len__(self) -> int:
        return len(self.smatrices)

    @overload
    def __getitem__(self, index: int) -> SMatrix: ...

    @overload
    def __getitem__(self, index: slice) -> SMatrixBatch: ...

    def __getitem__(self, index: int | slice) -> SMatrix | SMatrixBatch:
        if isinstance(index, slice):
            return SMatrixBatch(self.energies[index], self.smatrices[index])
        return self.smatrices[index]

    def __iter__(self) -> Iterator[SMatrix]:
        return iter(self.smatrices)

    def transmission(self, to_lead: Any, from_lead: Any) -> NDArray[np.float64]:
        """Transmission from ``from_lead`` into ``to_lead`` at every energy, shape (n_E,).

        Leads are indices or ``(lead, block)`` pairs as in :meth:`SMatrix.transmission`;
        ``transmission(i, i)`` is the total reflection of lead ``i``.
        """
        return np.array([s.transmission(to_lead, from_lead) for s in self.smatrices])

    def transmission_matrix(self) -> NDArray[np.float64]:
        """``T[k, i, j]`` from lead ``j`` into lead ``i`` at ``energies[k]``, (n_E, n, n)."""
        return np.array([s.transmission_matrix() for s in self.smatrices])

    def num_propagating(self, lead: Any) -> NDArray[np.int64]:
        """Open channels of a lead (or ``(lead, block)``) at every energy, shape (n_E,)."""
        return np.array([s.num_propagating(lead) for s in self.smatrices], dtype=np.int64)

    def conductance_matrix(self, *, spin_degeneracy: int | None = None) -> NDArray[np.float64]:
        """Büttiker conductance matrices in units of e^2/h, shape (n_E, n_leads, n_leads).

        See :meth:`SMatrix.conductance_matrix`; the system's spin degeneracy by default.
        """
        return np.array(
            [s.conductance_matrix(spin_degeneracy=spin_degeneracy) for s in self.smatrices]
        )

    def check_unitarity(self) -> NDArray[np.float64]:
        """``max |S^dagger S - 1|`` at every energy, shape (n_E,)."""
        return np.array([s.check_unitarity() for s in self.smatrices])


def _labelled(
    values: NDArray[np.float64], energies: NDArray[np.float64], pair: bool, batched: bool
) -> Any:
    try:
        import xarray
    except ImportError as exc:  # pragma: no cover - xarray is a dependency
        raise ImportError("labelled=True needs xarray: pip install xarray") from exc
    # A parameter batch adds a leading "element" dimension (index into the params list).
    first: tuple[str, ...] = ("element",) if batched else ()
    coords: dict[str, Any] = {"energy": energies}
    if batched:
        coords["element"] = np.arange(values.shape[0])
    if pair:
        return xarray.DataArray(
            values, dims=(*first, "energy"), coords=coords, name="transmission"
        )
    leads = np.arange(values.shape[-1])
    return xarray.DataArray(
        values,
        dims=(*first, "energy", "to_lead", "from_lead"),
        coords={**coords, "to_lead": leads, "from_lead": leads},
        name="transmission",
        attrs={"description": "T[to_lead, from_lead]; diagonal: total reflection"},
    )


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


@renamed_keyword("system", "syst", "0.2")
def transmission(
    syst: System,
    energies: ArrayLike,
    to_lead: int | None = None,
    from_lead: int | None = None,
    *,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    options: SolverOptions | Mapping[str, Any] | None = None,
    solver: SolverName | None = None,
    device: DeviceName | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    labelled: bool = False,
    check_hermiticity: bool = True,
    stats: dict[str, Any] | None = None,
) -> Any:
    """Transmission of a finalized system for a batch of energies.

    Parameters
    ----------
    syst : System
        A finalized system with leads.
    energies : (n_E,) array_like
        Real, finite energies in the unit of the Hamiltonian; at least one.
    to_lead, from_lead : int, optional
        Give both for the transmission from ``from_lead`` into ``to_lead``; neither for the
        whole matrix.
    params : dict or list of dicts, optional, keyword-only
        Parameter values by name (evaluated once for all energies). A list of dicts is a
        batch of systems of one structure (see the module docstring): the result then has a
        leading axis over the list.
    options : SolverOptions or mapping, optional, keyword-only
        All solver settings in one object (:class:`mesoscopic.solvers.SolverOptions`, or a
        mapping of its fields); or give them as the keywords below, not both.
    solver : {"auto", "rgf", "sparse"}, optional, keyword-only
        See the module docstring (default ``"auto"``).
    device : {"cpu", "gpu"}, optional, keyword-only
        Where the RGF recursion runs (default ``"cpu"``; ``"gpu"`` needs CuPy and a CUDA
        device).
    workers : int, optional, keyword-only
        Processes solving contiguous chunks of energies (CPU only; default 1 = no pool).
    chunk_size : int, optional, keyword-only
        Energies per RGF batch (default: what fits in memory, capped; see
        :func:`mesoscopic.solvers.rgf.transmission_matrices`).
    memory_limit : float, optional, keyword-only
        Memory budget in bytes for one RGF batch (default: from the free memory).
    blas_threads : int, optional, keyword-only
        BLAS threads per process during an RGF sweep on the CPU (default 1; see the module
        docstring), set with threadpoolctl.
    labelled : bool, keyword-only
        Return an ``xarray.DataArray`` with the energies (and lead indices) as coordinates.
    check_hermiticity : bool, keyword-only
        Check that the value functions give a Hermitian Hamiltonian.
    stats : dict, optional, keyword-only
        Filled with ``solver`` (``"rgf"`` or ``"sparse"``, the one that ran) and, for the
        RGF, the entries of :func:`mesoscopic.solvers.rgf.transmission_matrices`, among
        them ``sparse_fallback_energies``: energies the recursion handed to the sparse
        solver (a singular slice, or rounding that broke current conservation beyond 5e-11
        next to one); ``num_elements`` (params dicts) and ``num_energies`` (energies times
        elements).

    Returns
    -------
    (n_E,) or (n_E, n_leads, n_leads) float ndarray
        ``T[k]`` at ``energies[k]``: with both leads given, the transmission between them;
        otherwise ``T[k, i, j]`` from lead ``j`` into lead ``i``, with ``T[k, i, i]`` the
        total reflection of lead ``i`` (as Kwant's ``transmission(i, i)``), so that columns
        sum to the open channels of the source lead. With a list of ``n_p`` params dicts,
        shape (n_p, n_E) or (n_p, n_E, n_leads, n_leads) (labelled: a leading
        ``"element"`` dimension).

    Raises
    ------
    ValueError
        Empty, non-1-D or non-finite energies; unknown solver or device names (and the
        other checks of :class:`~mesoscopic.solvers.SolverOptions`); a lead that does not
        exist; only one of ``to_lead``/``from_lead``.
    TypeError
        Not a finalized system; complex energies; both ``options`` and a solver keyword;
        ``params`` neither a dict nor a list of dicts.
    RuntimeError
        ``device="gpu"`` without CuPy or a CUDA device.

    Examples
    --------
    A chain with one impurity (onsite 1, hopping -1): ``T = 1 / (1 + 1 / (4 sin^2 k))``.

    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat(1)] = 1.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> fsys = syst.finalized()
    >>> energies = np.array([-1.0, 0.0, 1.0])
    >>> k = np.arccos(-energies / 2)
    >>> bool(np.allclose(transmission(fsys, energies, 1, 0), 1 / (1 + 1 / (4 * np.sin(k)**2))))
    True
    >>> transmission(fsys, energies).shape
    (3, 2, 2)
    """
    syst = _checks.finalized_system(syst, min_leads=1, what="transmission")
    e, settings = _checked_options(
        energies,
        options,
        {
            "solver": solver,
            "device": device,
            "workers": workers,
            "chunk_size": chunk_size,
            "memory_limit": memory_limit,
            "blas_threads": blas_threads,
        },
    )
    count = len(syst.leads)
    if (to_lead is None) != (from_lead is None):
        raise ValueError(
            "give both to_lead and from_lead for one transmission, or neither for the "
            f"matrix; got to_lead={to_lead!r}, from_lead={from_lead!r}"
        )
    pair = to_lead is not None
    if pair:
        to_lead = _checks.index(to_lead, count, "to_lead")
        from_lead = _checks.index(from_lead, count, "from_lead")
    elements = _params_batch(params)
    single = params if isinstance(params, Mapping) else None
    hams, lead_lists = _inputs(syst, single, elements, check_hermiticity, settings)
    batched = elements is not None
    parts = _parts.independent_parts(hams, lead_lists)
    if parts is None:
        result = _transmissions(
            hams, lead_lists, e, settings, stats, batched, hermitian=check_hermiticity
        )
    else:
        # Independent parts (explicit spin without spin-orbit coupling, ...): the sum of
        # their transmissions, each part a smaller problem.
        shape = (len(hams),) if batched else ()
        result = np.zeros((*shape, e.size, count, count))
        totals: dict[str, Any] = {}
        for part in parts:
            part_stats: dict[str, Any] = {}
            values = _transmissions(
                [part.hamiltonian(ham) for ham in hams],
                [part.lead_data(leads) for leads in lead_lists],
                e,
                settings,
                part_stats,
                batched,
                hermitian=check_hermiticity,
            )
            result[..., part.leads[:, None], part.leads[None, :]] += values
            _merge_stats(totals, part_stats)
        if stats is not None:
            stats.update(totals, independent_parts=len(parts))
    if pair:
        result = result[..., to_lead, from_lead]
    if labelled:
        return _labelled(result, e, pair, elements is not None)
    return result


@overload
def smatrices(
    syst: System,
    energies: ArrayLike,
    *,
    params: Mapping[str, Any] | None = None,
    options: SolverOptions | Mapping[str, Any] | None = None,
    solver: SolverName | None = None,
    device: DeviceName | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    check_hermiticity: bool = True,
    stats: dict[str, Any] | None = None,
) -> SMatrixBatch: ...


@overload
def smatrices(
    syst: System,
    energies: ArrayLike,
    *,
    params: Sequence[Mapping[str, Any]],
    options: SolverOptions | Mapping[str, Any] | None = None,
    solver: SolverName | None = None,
    device: DeviceName | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    check_hermiticity: bool = True,
    stats: dict[str, Any] | None = None,
) -> tuple[SMatrixBatch, ...]: ...


@renamed_keyword("system", "syst", "0.2")
def smatrices(
    syst: System,
    energies: ArrayLike,
    *,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    options: SolverOptions | Mapping[str, Any] | None = None,
    solver: SolverName | None = None,
    device: DeviceName | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    check_hermiticity: bool = True,
    stats: dict[str, Any] | None = None,
) -> SMatrixBatch | tuple[SMatrixBatch, ...]:
    """Scattering matrices of a finalized system for a batch of energies.

    Parameters
    ----------
    syst : System
        A finalized system with leads.
    energies : (n_E,) array_like
        Real, finite energies in the unit of the Hamiltonian; at least one.
    params, options, solver, device, workers, chunk_size, memory_limit, blas_threads, \
check_hermiticity, stats
        As in :func:`transmission` (keyword-only).

    Returns
    -------
    SMatrixBatch, or tuple of SMatrixBatch
        A sequence of :class:`~mesoscopic.scattering.SMatrix`, one per energy (the same
        matrices, mode basis and order as :func:`mesoscopic.smatrix`), with
        ``.transmission(i, j)``, ``.transmission_matrix()``, ``.conductance_matrix()``,
        ``.num_propagating(i)`` and ``.check_unitarity()`` as arrays over energy. With a
        list of params dicts (one batched sweep), one SMatrixBatch per dict, in order.

    Raises
    ------
    ValueError, TypeError, RuntimeError
        As in :func:`transmission`.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.square(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x, y) for x in range(5) for y in range(4))] = 4.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    >>> lead[(lat(0, y) for y in range(4))] = 4.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> batch = smatrices(syst.finalized(), [0.5, 2.0])
    >>> batch.num_propagating(0).tolist(), batch.transmission(1, 0).round(10).tolist()
    ([1, 2], [1.0, 2.0])
    """
    syst = _checks.finalized_system(syst, min_leads=1, what="smatrices")
    e, settings = _checked_options(
        energies,
        options,
        {
            "solver": solver,
            "device": device,
            "workers": workers,
            "chunk_size": chunk_size,
            "memory_limit": memory_limit,
            "blas_threads": blas_threads,
        },
    )
    degeneracy = syst.spin_degeneracy
    elements = _params_batch(params)
    if elements is not None:
        hams, lead_lists, problem = _batch_problem(syst, elements, check_hermiticity, settings)
        if problem is None:
            per_element: Any = [
                _sparse_smatrices(ham, leads, e, settings.workers)
                for ham, leads in zip(hams, lead_lists)
            ]
            _sparse_stats(stats, e, len(elements))
        else:
            per_element = problem.smatrices(e, **settings.rgf_keywords(), stats=stats)
        return tuple(
            SMatrixBatch(e, tuple(s.with_spin_degeneracy(degeneracy) for s in result))
            for result in per_element
        )
    ham, leads, single = _problem(
        syst, params if isinstance(params, Mapping) else None, check_hermiticity, settings
    )
    if single is None:
        result = _sparse_smatrices(ham, leads, e, settings.workers)
        _sparse_stats(stats, e)
    else:
        result = single.smatrices(e, **settings.rgf_keywords(), stats=stats)
    return SMatrixBatch(e, tuple(s.with_spin_degeneracy(degeneracy) for s in result))
