"""Kernel polynomial method: spectral densities and Kubo-Bastin response of large systems.

The kernel polynomial method (KPM, Weisse et al., Rev. Mod. Phys. 78, 275 (2006)) expands a
spectral density in Chebyshev polynomials of the rescaled Hamiltonian and estimates the traces
with a few random vectors, so it needs only products ``H @ v`` and no diagonalization: the
density of states of a million-site system takes seconds. The names, signatures, defaults and
results follow ``kwant.kpm`` (Kwant 1.5), so ``import mesoscopic as kwant`` runs a Kwant KPM
script unchanged:

- `SpectralDensity`: the density of states, or the spectral density of an operator (a
  `mesoscopic.operator` object, a matrix, or a function ``f(bra, ket)``), with
  ``add_moments`` and ``add_vectors`` to refine it.
- `Correlator` and `conductivity`: the Kubo-Bastin linear response (Garcia, Covaci and
  Rappoport, Phys. Rev. Lett. 114, 116602 (2015)), e.g. the Hall conductivity.
- `RandomVectors`, `LocalVectors`: vector factories (random phases, or one unit vector per
  orbital of a region); `jackson_kernel`, `lorentz_kernel`; `fermi_distribution`.

Energies are in the units of the Hamiltonian. The density of states is the total one (it
integrates to the number of orbitals sampled by the vectors: the number of orbitals of the
system for the default random vectors); divide by the number of sites for a density per site.

How the work is done: all vectors of a batch are propagated together, one sparse-matrix
times dense-block product per Chebyshev step, accumulated in place into the buffer of the
step before (``a_(n+1) = 2 H a_n - a_(n-1)``, no temporaries); a real Hamiltonian acts on
the real and imaginary parts of the vectors as a real product with twice the columns. The
density of states takes two moments per step (``mu_2n = 2 <a_n|a_n> - mu_0``,
``mu_2n+1 = 2 <a_n+1|a_n> - mu_1``), so N moments cost N/2 products. The Kubo-Bastin moment
matrix is one BLAS-3 product of the stacked Chebyshev vectors; a velocity (or any matrix
``O_b``) is applied by the same accumulating kernel straight into the stored blocks, and a
velocity along a direction keeps only the bonds with a component along it. These kernels
(SciPy's sparse-times-dense product, one thread, and the BLAS product) take two thirds of
the time of a large expansion; ``benchmarks/bench_kpm.py`` prints their bare time, the floor
of this method on the machine at hand.

``pip install mesoscopic[fast]`` (numba) enables a fused kernel for the density of states
of a real Hamiltonian (`mesoscopic._kpm_kernels`): one pass over the rows takes a Chebyshev
step, or two (the second a lattice row behind the first, while the rows it needs are in
cache), and sums the overlaps of the moments, where SciPy's kernel takes a pass per step
and the overlaps two more. The Chebyshev vectors are the same numbers; the moments agree to
rounding (the overlaps are summed in another order). It is compiled on first use and kept
in numba's on-disk cache. ``MESOSCOPIC_KPM_KERNEL=scipy`` forces SciPy's kernel. Complex
Hamiltonians keep SciPy's kernel for the density of states, whose complex product is
faster than the compiled loop on one thread. The Kubo-Bastin correlator, where its blocks
of vectors run in threads, takes each block's whole Chebyshev series (and ``O_b`` on it)
from compiled loops that release the interpreter lock (the same numbers as SciPy's steps;
the left series is kept conjugated, so that the moment matrix is NumPy's plain product,
which releases it too); on one thread it keeps SciPy's steps. With numba the benchmark
times the fused kernel (its
``--kernel scipy`` the SciPy path, as without numba); it measures both after an untimed
warm-up run, so numba's compilation is not in its times. Results do not depend on how
the vectors are batched: a spectral density built with 10 vectors equals, bit for bit, one
built with 5 and then given 5 more with `SpectralDensity.add_vectors` (a `Correlator`
averaged over its vectors, to rounding).

Random numbers: ``rng`` is an integer seed (a ``numpy.random.RandomState`` is seeded with
it), a ``RandomState``, a ``numpy.random.Generator``, or None (NumPy's global random state,
as in Kwant). The generator first draws the start vector of the Lanczos search for the
spectral bounds, then the random phase vectors, one after the other, exactly as Kwant does:
the same seed gives Kwant's vectors and Kwant's numbers.

Where we differ from Kwant on purpose (Kwant 1.5 in brackets):

- ``rho(energy)`` outside ``rho.bounds`` is 0: there are no states there (NaN and a
  RuntimeWarning).
- ``add_moments(energy_resolution=r)`` adds moments up to the number ``r`` needs (adds that
  number on top of the present moments).
- ``conductivity`` of a matrix needs ``positions`` only for the directions ``'x'``, ``'y'``,
  ``'z'``, not when the velocity operators are given (always).
- A non-Hermitian Hamiltonian, and ``bounds`` that do not contain the spectrum (so that the
  Chebyshev vectors grow), raise a ValueError (wrong results).
- ``Correlator`` keeps the Chebyshev vectors only with ``accumulate_vectors=True`` (always).
- ``conductivity`` of a real dense matrix with a direction works (a casting error).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.fft import dct
from scipy.integrate import simpson
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

try:  # SciPy's sparse-times-dense kernel, which accumulates into its output
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a SciPy that moved it: the public product instead
    _csr_matvecs = None
from scipy.special import expit

from . import _checks
from .leads import _single_thread_blas
from .system import InfiniteSystem, System

__all__ = [
    "Correlator",
    "LocalVectors",
    "RandomVectors",
    "SpectralDensity",
    "conductivity",
    "fermi_distribution",
    "jackson_kernel",
    "lorentz_kernel",
]

SAMPLING = 2
"""Number of sampling energies per Chebyshev moment (as in Kwant)."""

# Number of moments per unit of (half-bandwidth / resolution): the Jackson kernel broadens a
# delta peak to a width of about pi * a / num_moments; 1.6 (~ pi/2) is Kwant's choice.
_RESOLUTION_FACTOR = 1.6

# Working memory (bytes) for the vectors propagated together; larger batches are split.
_BLOCK_BYTES = 2**28

# Rows summed together in the overlaps of the density of states (see _real_overlaps).
_OVERLAP_ROWS = 16

# The Chebyshev vectors of a spectrum inside [-1, 1] never grow: |T_n(x)| <= 1.
_GROWTH_LIMIT = 1.0 + 1e-6

_KERNEL_CHOICES = ("fused", "scipy")


def _kernel_choice(value: str) -> bool:
    """Whether ``MESOSCOPIC_KPM_KERNEL=value`` asks for the fused kernel."""
    choice = value.strip().lower()
    if choice not in _KERNEL_CHOICES:
        raise ValueError(
            f"MESOSCOPIC_KPM_KERNEL={value!r} is not a kernel; valid are 'fused' (numba, when "
            "installed) and 'scipy'"
        )
    return choice == "fused"


# Whether to use the fused numba kernel (mesoscopic._kpm_kernels) when numba is importable;
# None: as the environment says (MESOSCOPIC_KPM_KERNEL=fused, the default, or scipy).
_FUSED_KERNEL: bool | None = None


def _fused_kernels() -> Any:
    """The compiled kernels module, or None (numba missing, or SciPy's kernel chosen).

    Imported on first use: numba takes a third of a second to import.
    """
    wanted = _FUSED_KERNEL
    if wanted is None:
        wanted = _kernel_choice(os.environ.get("MESOSCOPIC_KPM_KERNEL", "fused"))
    if not wanted:
        return None
    try:
        from . import _kpm_kernels
    except (ImportError, RuntimeError, OSError):
        # No numba, or numba without a place for its compiled cache (it refuses such a
        # function at import): SciPy's kernel gives the same numbers.
        return None
    return _kpm_kernels


Operator = Any


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------


def _count(value: Any, name: str) -> int:
    """A positive integer count (integral floats accepted, as Kwant); ValueError otherwise."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
        and float(value).is_integer()
        and float(value) > 0
    )
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {_checks._show(value)}")
    return int(float(value))


def _positive_real(value: Any, name: str) -> float:
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
        and float(value) > 0
    )
    if not ok:
        raise ValueError(f"{name} must be a positive real number, got {_checks._show(value)}")
    return float(value)


def _ensure_rng(rng: Any) -> Any:
    """Kwant's rng rule: None -> NumPy's global state, an int -> a seeded RandomState."""
    if rng is None:
        return np.random.mtrand._rand
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.RandomState(int(rng))
    if isinstance(rng, np.random.Generator) or hasattr(rng, "random_sample"):
        return rng
    raise ValueError(
        "rng must be None, an integer seed, a numpy.random.Generator or an object with the "
        f"numpy.random.RandomState interface; got {_checks._show(rng)}"
    )


def _uniform(rng: Any, n: int) -> NDArray[np.float64]:
    if isinstance(rng, np.random.Generator):
        return rng.random(n)
    return np.asarray(rng.random_sample(n), dtype=float)


def _phases_in_place(pairs: NDArray[np.float64]) -> None:
    """``exp(2 pi i u)`` for uniform numbers ``u`` held in the real parts (even columns) of
    `pairs`, the real view of the complex result: cos and sin of ``2 pi u`` written in place.

    NumPy's complex ``exp(2j * pi * u)`` (Kwant's phases) is ``cos + i sin`` of the same
    angle, without the complex temporaries. Large blocks are done by rows in threads
    (NumPy's sine and cosine release the interpreter lock; each entry is the same number
    either way).
    """
    from .solvers.rgf import _in_chunk_pool, default_threads

    def rows(part: NDArray[np.float64]) -> None:
        angle = part[..., 0::2]
        np.multiply(angle, 2 * np.pi, out=angle)
        np.sin(angle, out=part[..., 1::2])
        np.cos(angle, out=angle)

    threads = 1
    if pairs.size >= 2 * _MIN_THREADED_ENTRIES and pairs.ndim == 2 and not _in_chunk_pool():
        threads = min(default_threads(), pairs.shape[0])
    if threads <= 1:
        rows(pairs)
        return
    edges = np.linspace(0, pairs.shape[0], threads + 1).astype(int)
    parts = [pairs[a:b] for a, b in itertools.pairwise(edges)]
    list(_in_threads([functools.partial(rows, part) for part in parts], threads))


def _random_phases(rng: Any, n: int) -> NDArray[np.complex128]:
    out = np.empty(n, dtype=complex)
    pairs = out.view(float)
    pairs[0::2] = _uniform(rng, n)
    _phases_in_place(pairs)
    return out


def _as_matrix(hamiltonian: Any, params: Any, what: str = "hamiltonian") -> sp.csr_matrix:
    """The Hamiltonian as a square, Hermitian, complex CSR matrix."""
    if isinstance(hamiltonian, InfiniteSystem):
        raise ValueError(
            f"{what} is a lead (an infinite system); the kernel polynomial method needs a "
            "finite system, a matrix or a sparse matrix"
        )
    if isinstance(hamiltonian, System):
        hamiltonian = hamiltonian.hamiltonian_submatrix(params=params, sparse=True)
    try:
        if isinstance(hamiltonian, (str, bytes)):
            raise TypeError
        matrix = sp.csr_matrix(hamiltonian)
        if not np.issubdtype(matrix.dtype, np.number):
            raise TypeError
        matrix = matrix.astype(complex)
    except Exception:
        raise ValueError(
            f"{what} must be a finite system, a matrix or a sparse matrix, got "
            f"{_checks._show(hamiltonian)}"
        ) from None
    n, m = matrix.shape
    if n != m or n == 0:
        raise ValueError(f"{what} must be a non-empty square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError(f"{what} has NaN or infinite entries")
    scale = float(np.abs(matrix.data).max()) if matrix.nnz else 0.0
    if matrix.nnz:
        deviation = matrix - matrix.conj().T
        worst = float(np.abs(deviation.data).max()) if deviation.nnz else 0.0
        if worst > 1e-10 * scale:
            raise ValueError(
                f"{what} is not Hermitian (max |H - H^dagger| = {worst:.3g}); the kernel "
                "polynomial method needs a Hermitian Hamiltonian"
            )
    return matrix


def _gershgorin_bounds(matrix: sp.csr_matrix) -> tuple[float, float]:
    diagonal = matrix.diagonal().real
    radius = np.asarray(abs(matrix).sum(axis=1)).ravel() - np.abs(diagonal)
    return float(np.min(diagonal - radius)), float(np.max(diagonal + radius))


def _spectral_bounds(
    matrix: sp.csr_matrix, tol: float, v0: NDArray[np.complex128] | None
) -> tuple[float, float]:
    """Lowest and highest eigenvalues to relative accuracy `tol` (Lanczos from `v0`)."""
    n = matrix.shape[0]
    if n <= 3:
        values = np.linalg.eigvalsh(matrix.toarray())
        return float(values[0]), float(values[-1])
    try:
        lmax = eigsh(matrix, k=1, which="LA", return_eigenvectors=False, tol=tol, v0=v0)[0]
        lmin = eigsh(matrix, k=1, which="SA", return_eigenvectors=False, tol=tol, v0=v0)[0]
    except (ArpackNoConvergence, ArpackError):
        # Gershgorin discs always contain the spectrum: wider bounds, never wrong ones.
        warnings.warn(
            "the Lanczos search for the spectral bounds did not converge; using Gershgorin "
            "bounds (pass bounds=(lower, upper) to set them)",
            RuntimeWarning,
            stacklevel=_checks.user_stacklevel(),
        )
        return _gershgorin_bounds(matrix)
    return float(lmin), float(lmax)


def _rescale(
    hamiltonian: Any, eps: float, v0: ArrayLike | None, bounds: Any
) -> tuple[sp.csr_matrix, tuple[float, float]]:
    """The Hamiltonian mapped onto ``(-1, 1)``: ``(H - b) / a``, and ``(a, b)``.

    ``a = (E_max - E_min) / (2 - eps)`` and ``b = (E_max + E_min) / 2``, with the spectral
    bounds `bounds` or, when None, the extreme eigenvalues found by Lanczos to relative
    accuracy ``eps / 2`` starting from `v0`.
    """
    matrix = hamiltonian if sp.issparse(hamiltonian) else _as_matrix(hamiltonian, None)
    matrix = sp.csr_matrix(matrix, dtype=complex)
    tol = eps / 2
    if bounds is None:
        start = None if v0 is None else np.asarray(v0, dtype=complex)
        lmin, lmax = _spectral_bounds(matrix, tol, start)
    else:
        lmin, lmax = bounds
    if lmax - lmin <= abs(lmax + lmin) * tol / 2 or lmax <= lmin:
        raise ValueError(
            f"the Hamiltonian has a single eigenvalue ({lmin!r} to {lmax!r}): its spectral "
            "density is a delta function and has no Chebyshev expansion"
        )
    a = abs(lmax - lmin) / (2.0 - eps)
    b = (lmax + lmin) / 2.0
    n = matrix.shape[0]
    rescaled = ((matrix - b * sp.identity(n, dtype=complex, format="csr")) / a).tocsr()
    rescaled.sort_indices()
    return rescaled, (a, b)


def _check_bounds(bounds: Any) -> tuple[float, float] | None:
    if bounds is None:
        return None
    try:
        lower, upper = (float(x) for x in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be a pair of real numbers (lower, upper), got {_checks._show(bounds)}"
        ) from None
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower >= upper:
        raise ValueError(f"bounds must be finite with lower < upper, got {_checks._show(bounds)}")
    return lower, upper


# --------------------------------------------------------------------------------------
# where: the orbitals a vector factory fills
# --------------------------------------------------------------------------------------


def _system_orbitals(syst: System, where: Any) -> NDArray[np.int64]:
    n_sites = len(syst.sites)
    if where is None:
        site_ids = np.arange(n_sites)
    elif callable(where):
        site_ids = np.array([i for i, site in enumerate(syst.sites) if where(site)], dtype=int)
    else:
        if isinstance(where, (str, bytes)) or not isinstance(where, Iterable):
            raise TypeError(
                "where must be a sequence of sites or site indices, or a function of a site, "
                f"got {_checks._show(where)}"
            )
        ids = []
        for item in where:
            if isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_)):
                if not 0 <= int(item) < n_sites:
                    raise ValueError(
                        f"where holds site index {int(item)}; valid are 0..{n_sites - 1}"
                    )
                ids.append(int(item))
            else:
                try:
                    ids.append(int(syst.id_by_site[item]))
                except (KeyError, TypeError):
                    raise ValueError(
                        f"where holds {_checks._show(item)}, which is not a site of the system"
                    ) from None
        site_ids = np.array(ids, dtype=int)
    offsets = np.asarray(syst.orb_offsets)[site_ids]
    norbs = np.asarray(syst.norbs)[site_ids]
    if len(site_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(o, o + k) for o, k in zip(offsets, norbs)]).astype(np.int64)


def _normalize_orbs_where(syst: Any, where: Any) -> tuple[int, NDArray[np.int64]]:
    """Total number of orbitals and the orbitals selected by `where`."""
    if isinstance(syst, InfiniteSystem):
        raise TypeError("syst must be a finite system or a matrix, got a lead")
    if isinstance(syst, System):
        total = int(syst.num_orbitals)
        orbitals = _system_orbitals(syst, where)
    else:
        try:
            if isinstance(syst, (str, bytes)):
                raise TypeError
            total = int(sp.csr_matrix(syst).shape[0])
        except Exception:
            raise TypeError(
                f"syst must be a finite system or a matrix, got {_checks._show(syst)}"
            ) from None
        if where is None:
            orbitals = np.arange(total, dtype=np.int64)
        else:
            array = np.asarray(where)
            if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
                raise TypeError(
                    "for a matrix, where must be a sequence of orbital indices, got "
                    f"{_checks._show(where)}"
                )
            orbitals = array.astype(np.int64)
            bad = (orbitals < 0) | (orbitals >= total)
            if np.any(bad):
                raise ValueError(
                    f"where holds orbital {int(orbitals[bad][0])}; valid are 0..{total - 1}"
                )
    if len(orbitals) == 0:
        raise ValueError("where selects no orbitals")
    return total, orbitals


def RandomVectors(syst: Any, where: Any = None, rng: Any = None) -> Iterator[NDArray[Any]]:
    """Random phase vectors on the orbitals selected by `where`, without end.

    Each vector has ``exp(2 pi i u)`` (``u`` uniform in [0, 1)) on the selected orbitals and
    zero elsewhere; ``<r|A|r>`` averaged over them is the trace of ``A`` over the selection.

    Parameters
    ----------
    syst : System or matrix
        A finite system (no leads needed) or the Hamiltonian matrix.
    where : sequence of sites or site indices, or callable, optional
        For a system, the sites (as in `mesoscopic.operator.Density`); for a matrix, the
        orbital indices. Default: everything.
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Source of the phases (an int seeds a RandomState; None is NumPy's global state).

    Returns
    -------
    iterator of ndarray of complex, shape (n_orbitals,)

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.kpm import RandomVectors
    >>> vectors = RandomVectors(np.eye(4), where=[0, 2], rng=1)
    >>> v = next(vectors)
    >>> np.abs(v).round(12).tolist()
    [1.0, 0.0, 1.0, 0.0]
    """
    generator = _ensure_rng(rng)
    total, orbitals = _normalize_orbs_where(syst, where)
    return _RandomPhaseVectors(generator, total, orbitals)


class _RandomPhaseVectors(Iterator[NDArray[np.complex128]]):
    """The iterator `RandomVectors` returns; `block` draws several vectors at once.

    Vector j of a block is the j-th vector `next` would have returned: the generator is
    asked for the phases of one vector after the other, as by `next`.
    """

    def __init__(self, generator: Any, total: int, orbitals: NDArray[np.int64]) -> None:
        self._generator = generator
        self._total = total
        self._orbitals = orbitals
        self._everywhere = len(orbitals) == total and bool(
            np.array_equal(orbitals, np.arange(total))
        )

    def __next__(self) -> NDArray[np.complex128]:
        return self.block(1)[:, 0]

    def block(self, count: int) -> NDArray[np.complex128]:
        """The next `count` vectors as the columns of a C-ordered ``(n_orbitals, count)`` array."""
        size = len(self._orbitals)
        # Each vector's uniform numbers go straight into the real parts of its column,
        # which become the phases in place (no temporaries of the block's size).
        phases = np.empty((size, count), dtype=complex)
        pairs = phases.view(float)
        for column in range(count):
            pairs[:, 2 * column] = _uniform(self._generator, size)
        _phases_in_place(pairs)
        if self._everywhere:
            return phases
        out = np.zeros((self._total, count), dtype=complex)
        out[self._orbitals] = phases
        return out


class LocalVectors:
    """One unit vector per orbital selected by `where`, in order.

    With these vectors the KPM traces are exact over the selection (no stochastic error),
    and ``SpectralDensity(..., num_vectors=None)`` uses all of them.

    Parameters
    ----------
    syst : System or matrix
        A finite system or the Hamiltonian matrix.
    where : sequence of sites or site indices, or callable, optional
        For a system, the sites; for a matrix, the orbital indices. Default: everything.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.kpm import LocalVectors
    >>> vectors = LocalVectors(np.eye(3), where=[2])
    >>> len(vectors), next(vectors).tolist()
    (1, [0.0, 0.0, 1.0])
    """

    def __init__(self, syst: Any, where: Any = None, *args: Any) -> None:
        self.tot_norbs, self.orbs = _normalize_orbs_where(syst, where)
        self._idx = 0

    def __len__(self) -> int:
        return len(self.orbs)

    def __iter__(self) -> LocalVectors:
        return self

    def __next__(self) -> NDArray[np.float64]:
        if self._idx >= len(self.orbs):
            raise StopIteration
        vector = np.zeros(self.tot_norbs)
        vector[self.orbs[self._idx]] = 1.0
        self._idx += 1
        return vector


class _VectorFactory:
    """The vectors of a KPM calculation, drawn on demand from an iterable.

    ``num_vectors`` defaults to ``len(vectors)``; with ``accumulate`` the vectors are kept
    (so that moments can be added later).
    """

    def __init__(self, vectors: Any, num_vectors: Any = None, accumulate: bool = True) -> None:
        if isinstance(vectors, (str, bytes)) or not isinstance(vectors, Iterable):
            raise TypeError(
                "vector_factory must be an iterable of vectors (a list, an array, a "
                f"generator, LocalVectors or RandomVectors), got {_checks._show(vectors)}"
            )
        available: float = len(vectors) if isinstance(vectors, Sized) else math.inf
        if num_vectors is None:
            if available == math.inf:
                raise ValueError(
                    "num_vectors must be given when vector_factory has no length (a generator)"
                )
            num_vectors = available
        self._available = available
        self._iterator = iter(vectors)
        self.accumulate = bool(accumulate)
        self.saved_vectors: list[NDArray[Any]] = []
        self._drawn = 0
        self.num_vectors = 0
        self.add_vectors(num_vectors)

    def add_vectors(self, num_vectors: Any = None) -> None:
        if num_vectors is None:
            raise ValueError("num_vectors must be given (a positive integer)")
        count = _count(num_vectors, "num_vectors")
        if self.num_vectors + count > self._available:
            raise ValueError(
                f"num_vectors: {self.num_vectors + count} vectors requested, but the "
                f"vector factory has only {self._available}"
            )
        self.num_vectors += count

    def __getitem__(self, index: int) -> NDArray[Any]:
        if index >= self.num_vectors:
            raise IndexError("requested more vectors than available")
        while self._drawn <= index:
            try:
                vector = next(self._iterator)
            except StopIteration:
                raise ValueError(
                    f"the vector factory stopped after {self._drawn} vectors; "
                    f"{self.num_vectors} were requested"
                ) from None
            self._drawn += 1
            if self.accumulate:
                self.saved_vectors.append(vector)
            else:
                self._last = vector
        if self.accumulate:
            return self.saved_vectors[index]
        if index != self._drawn - 1:
            raise ValueError("cannot return earlier vectors when accumulate_vectors is False")
        return self._last

    def block(self, start: int, stop: int, size: int) -> NDArray[np.complex128]:
        """Vectors ``start..stop-1`` as the columns of an ``(size, stop - start)`` array."""
        if (
            isinstance(self._iterator, _RandomPhaseVectors)
            and start == self._drawn
            and stop <= self.num_vectors
            and self._iterator._total == size
        ):
            # The default random vectors, drawn straight into the block (same numbers).
            # They are not kept: the calculations keep the blocks they start from.
            self._drawn = stop
            return self._iterator.block(stop - start)
        out = np.empty((size, stop - start), dtype=complex, order="C")
        for column, index in enumerate(range(start, stop)):
            vector = self[index]
            try:
                array = np.asarray(vector)
                if array.dtype == object or not np.issubdtype(array.dtype, np.number):
                    raise TypeError
            except TypeError:
                raise ValueError(
                    f"vector {index} of vector_factory is not a numeric array: "
                    f"{_checks._show(vector)}"
                ) from None
            if array.shape != (size,):
                raise ValueError(
                    f"vector {index} of vector_factory has shape {array.shape}; the "
                    f"Hamiltonian needs vectors of shape ({size},)"
                )
            out[:, column] = array
        return out


# --------------------------------------------------------------------------------------
# numerical core
# --------------------------------------------------------------------------------------


def _overlaps(bra: NDArray[Any], ket: NDArray[Any]) -> NDArray[np.complex128]:
    """``<bra_j|ket_j>`` for every column j of two ``(n, k)`` blocks.

    Summed in order over the rows for every k, so a vector's moments do not depend on how
    many vectors share its block (NumPy sums a lone column pairwise, hence ``cumsum``).
    """
    products = bra.conj() * ket
    if products.shape[1] == 1:
        return np.cumsum(products, axis=0)[-1]
    return products.sum(axis=0)


def _real_overlaps(
    bra: NDArray[np.complex128], ket: NDArray[np.complex128]
) -> NDArray[np.float64]:
    """``Re <bra_j|ket_j>`` for every column j of two C-ordered ``(n, k)`` complex blocks.

    One pass over the real views, without temporaries. The rows are taken
    `_OVERLAP_ROWS` at a time as one long row (NumPy's inner loop then runs over
    ``2 k _OVERLAP_ROWS`` numbers, not ``2 k``: a quarter faster), which sums each column in
    `_OVERLAP_ROWS` interleaved parts, then adds the parts in order: the same order for
    every number of columns, so a vector's moments do not depend on its block.
    """
    n, width = bra.shape[0], 2 * bra.shape[1]
    bra_real, ket_real = bra.view(float), ket.view(float)
    grouped = n - n % _OVERLAP_ROWS
    parts = np.einsum(
        "ij,ij->j",
        bra_real[:grouped].reshape(-1, _OVERLAP_ROWS * width),
        ket_real[:grouped].reshape(-1, _OVERLAP_ROWS * width),
    )
    products = parts.reshape(_OVERLAP_ROWS, width).sum(axis=0)
    if grouped < n:
        products += np.einsum("ij,ij->j", bra_real[grouped:], ket_real[grouped:])
    return products.reshape(-1, 2).sum(axis=1)


def _accumulate_product(matrix: sp.csr_matrix, block: NDArray[Any], out: NDArray[Any]) -> None:
    """``out += matrix @ block`` in place, for C-ordered ``(n, k)`` blocks of its dtype.

    SciPy's sparse-times-dense kernel accumulates into its output, so the Chebyshev step
    ``2 H a_n - a_(n-1)`` needs no temporary block (public API as the fallback).
    """
    if _csr_matvecs is None:  # a SciPy without the private kernel
        out += matrix @ block
        return
    n_rows, n_cols = matrix.shape
    _csr_matvecs(
        n_rows,
        n_cols,
        block.shape[1],
        matrix.indptr,
        matrix.indices,
        matrix.data,
        block.ravel(),
        out.ravel(),
    )


def _accumulate_any(matrix: sp.csr_matrix, block: NDArray[Any], out: NDArray[Any]) -> None:
    """``out += matrix @ block`` for complex blocks; a real matrix acts on the real views."""
    if np.iscomplexobj(matrix.data):
        _accumulate_product(matrix, block, out)
    else:
        _accumulate_product(matrix, block.view(float), out.view(float))


def _signed_matrices(operator: Any, size: int) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    """``(A, -A)`` as CSR matrices (sorted, float64 or complex128) if `operator` is a
    matrix; None for operator objects, functions and None."""
    if operator is None or _is_local_operator(operator) or callable(operator):
        return None
    matrix = sp.csr_matrix(_square_operator(operator, size, "operator"), copy=True)
    dtype = complex if np.iscomplexobj(matrix.data) else float
    matrix = matrix.astype(dtype)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()  # stored zeros cost as much as the other entries
    matrix.sort_indices()
    return matrix, _negated(matrix)


class _Chebyshev:
    """The Chebyshev vectors ``a_n = T_n(H) V`` of a block ``V``, one step at a time.

    Each step overwrites the buffer of the step before last: two blocks of working memory
    and one sparse product per step, no temporaries and no extra pass. The blocks kept are
    ``c_n = s_n a_n`` with signs ``s_n = +, +, -, -, +, +, ...`` (period 4), for which
    ``a_(n+1) = 2 H a_n - a_(n-1)`` reads ``c_(n+1) = c_(n-1) + 2 sigma_n H c_n`` with
    ``sigma_n = (-1)^n``: the sparse kernel accumulates ``+-2 H c_n`` straight into the
    buffer of ``c_(n-1)``. Negation is exact, so ``a_n`` is the same to the last bit as by
    ``2 H a_n - a_(n-1)`` with the subtraction done first.
    """

    def __init__(
        self, doubled: sp.csr_matrix, start: NDArray[np.complex128], *, keep_start: bool = True
    ) -> None:
        self._doubled = doubled  # 2 H, from _doubled_hamiltonian
        self._negated = _negated(doubled)  # -2 H, sharing the index arrays
        self._kernels = _fused_kernels()
        self._lag: int | None = None
        block = np.ascontiguousarray(start, dtype=complex)
        # Without keep_start the caller gives the block up: it becomes the buffer of c_0,
        # overwritten by the steps (a block less of memory, and no copy), and only the
        # norms of the start vectors are kept (for check_growth).
        self.start: NDArray[np.complex128] | None = block if keep_start else None
        self._start_norms = None if keep_start else _real_overlaps(block, block)
        self.previous = block.copy() if keep_start else block
        self.current = np.zeros_like(block)
        self._accumulate(self._doubled, block, self.current)
        self.current *= 0.5  # exact: H a_0 = (2 H a_0) / 2
        self.order = 1  # current is c_order, previous c_(order-1)

    def start_norms(self) -> NDArray[np.float64]:
        """``Re <V_j|V_j>`` of the start vectors."""
        if self._start_norms is not None:
            return self._start_norms
        assert self.start is not None
        return _real_overlaps(self.start, self.start)

    @property
    def real(self) -> bool:
        """Whether the real shortcut is used: a real H acts on real and imaginary parts."""
        return not np.iscomplexobj(self._doubled.data)

    @property
    def fused(self) -> bool:
        """Whether the density of states' steps take the fused kernel (numba).

        For a real H only (the real views of the blocks): for complex blocks SciPy's
        complex product is faster than the compiled loop, fused or not.
        """
        return self._kernels is not None and self.real

    def _accumulate(
        self, matrix: sp.csr_matrix, block: NDArray[np.complex128], out: NDArray[np.complex128]
    ) -> None:
        """``out += matrix @ block``; a real matrix takes a real product, twice the columns.

        SciPy's kernel, also with numba: the steps that need no overlaps (the correlator's)
        gain nothing from the fused kernel, and its complex product is the faster one.
        """
        if self.real:
            _accumulate_product(matrix, block.view(float), out.view(float))
        else:
            _accumulate_product(matrix, block, out)

    @staticmethod
    def _real_parts(sums: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-vector sums from the per-column sums of the real views (pairs of columns)."""
        return sums.reshape(*sums.shape[:-1], -1, 2).sum(axis=-1)

    def advance_with_overlaps(self, steps: int) -> NDArray[np.float64]:
        """Take `steps` (1 or 2) steps from order m in one pass of the fused kernel.

        Returns the ``(2 steps, k)`` overlaps ``Re <c_m|c_m>``, ``Re <c_(m+1)|c_m>`` (and
        ``Re <c_(m+1)|c_(m+1)>``, ``Re <c_(m+2)|c_(m+1)>`` for two steps), each summed
        over the rows in order.
        """
        kernels = self._kernels
        assert kernels is not None and self.real and steps in (1, 2)
        first = self._doubled if self.order % 2 == 0 else self._negated
        second = self._negated if self.order % 2 == 0 else self._doubled
        if self._lag is None:
            self._lag = int(kernels.lag(first.indptr, first.indices))
        current, previous = self.current.view(float), self.previous.view(float)
        lag = self._lag
        indptr, indices = _unsigned(first.indptr), _unsigned(first.indices)

        def rows_pass(rows: tuple[int, int, int, int]) -> NDArray[np.float64]:
            sums = np.zeros((2 * steps, current.shape[1]))
            kernels.chebyshev_steps_with_overlaps(
                indptr,
                indices,
                first.data,
                second.data,
                steps,
                lag,
                current,
                previous,
                sums,
                np.array(rows, dtype=np.int64),
            )
            return sums

        n_rows = current.shape[0]
        edges = self._row_edges(n_rows, current.shape[1])
        if len(edges) == 2:
            sums = rows_pass((0, n_rows, 0, n_rows))
        else:
            # Consecutive row ranges side by side; step two's rows next to the internal
            # edges follow (see chebyshev_steps_with_overlaps).
            inner = edges[1:-1]
            ranges = [
                (
                    int(a),
                    int(b),
                    int(a) + (lag if a > 0 else 0),
                    int(b) - (lag if b < n_rows else 0),
                )
                for a, b in itertools.pairwise(edges)
            ]
            if steps == 1:
                ranges = [(a, b, a, b) for a, b, _, _ in ranges]
            from .solvers.rgf import _chunk_pool

            parts = list(_chunk_pool(len(ranges)).map(rows_pass, ranges))
            if steps == 2:
                parts += [rows_pass((0, 0, int(e) - lag, int(e) + lag)) for e in inner]
            sums = np.sum(parts, axis=0)
        if steps == 1:  # c_(m+1) is in the buffer of c_(m-1)
            self.previous, self.current = self.current, self.previous
        self.order += steps
        return self._real_parts(sums)

    def _row_edges(self, n_rows: int, width: int) -> NDArray[np.intp]:
        """Edges of the row ranges the threads take in a pass of the fused kernel.

        One range (no threads) for a small block, inside a pool thread, or where a range
        would be shorter than four times the kernel's lag.
        """
        from .solvers.rgf import _in_chunk_pool, default_threads

        threads = 1
        if n_rows * width >= _MIN_THREADED_ENTRIES and not _in_chunk_pool():
            lag = max(int(self._lag or 0), 1)
            threads = max(1, min(default_threads(), n_rows // (4 * lag)))
        return np.linspace(0, n_rows, threads + 1).astype(np.intp)

    def self_overlaps(self) -> NDArray[np.float64]:
        """``Re <c_m|c_m>`` of the current order, summed as `advance_with_overlaps` sums."""
        assert self._kernels is not None and self.real
        block = self.current.view(float)
        sums = np.zeros(block.shape[1])
        self._kernels.column_overlaps(block, block, sums)
        return self._real_parts(sums)

    @staticmethod
    def sign(n: int) -> int:
        """``s_n``: the block kept for order n is ``s_n T_n(H) V``."""
        return 1 if n % 4 < 2 else -1

    def signed(self, n: int) -> NDArray[np.complex128]:
        """``s_n T_n(H) V`` (see `sign`), for ``n`` equal to or one above the last order asked.

        The block returned is overwritten two steps later: use it before asking further.
        """
        if n == 0:
            if self.start is not None:
                return self.start
            if self.order == 1:  # the given block, not yet overwritten
                return self.previous
            raise AssertionError("the start block was not kept")
        while self.order < n:
            matrix = self._doubled if self.order % 2 == 0 else self._negated
            following = self.previous
            self._accumulate(matrix, self.current, following)
            self.previous, self.current = self.current, following
            self.order += 1
        if n == self.order:
            return self.current
        if n == self.order - 1:
            return self.previous
        raise AssertionError("Chebyshev vectors are produced in order")

    def vector(self, n: int) -> NDArray[np.complex128]:
        """``T_n(H) V`` (a new array where ``s_n = -1``); the order rule of `signed`."""
        block = self.signed(n)
        return block if self.sign(n) > 0 else -block

    def check_growth(self, bounds: tuple[float, float]) -> None:
        """Raise if a vector grew beyond its start's norm (or overflowed to inf or NaN)."""
        start = self.start_norms()
        if not np.all(np.isfinite(start)):
            raise ValueError("the start vectors of the expansion are not finite (inf or NaN)")
        limit = _GROWTH_LIMIT**2 * start + 1e-300
        if not np.all(_real_overlaps(self.current, self.current) <= limit):
            raise ValueError(
                f"the Chebyshev vectors grow: the spectrum of the Hamiltonian is not inside "
                f"bounds={bounds}; give wider bounds or leave bounds=None"
            )

    @classmethod
    def from_series(cls, doubled: sp.csr_matrix, series: NDArray[np.complex128]) -> _Chebyshev:
        """The state after the orders ``0..M-1`` of ``series`` (``T_m(H) V``, M >= 2)."""
        count = series.shape[0]
        state = cls.__new__(cls)
        state._doubled = doubled
        state._negated = _negated(doubled)
        state._kernels = _fused_kernels()
        state._lag = None
        state.start = series[0].copy()
        state._start_norms = None
        state.current = series[count - 1] * cls.sign(count - 1)
        state.previous = series[count - 2] * cls.sign(count - 2)
        state.order = count - 1
        return state

    @classmethod
    def joined(cls, first: _Chebyshev, second: _Chebyshev) -> _Chebyshev:
        """One state for the vectors of two states at the same order."""
        if first.order != second.order:  # pragma: no cover - both follow num_moments
            raise AssertionError("Chebyshev states of different orders")
        joined = cls.__new__(cls)
        joined._doubled = first._doubled
        joined._negated = first._negated
        joined._kernels = first._kernels
        joined._lag = first._lag
        if first.start is not None and second.start is not None:
            joined.start, joined._start_norms = np.hstack([first.start, second.start]), None
        else:
            joined.start = None
            joined._start_norms = np.concatenate([first.start_norms(), second.start_norms()])
        joined.previous = np.hstack([first.previous, second.previous])
        joined.current = np.hstack([first.current, second.current])
        joined.order = first.order
        return joined


def _unsigned(index: NDArray[np.integer]) -> NDArray[np.unsignedinteger]:
    """A CSR index array (never negative) as unsigned integers of its size, not copied.

    Compiled code indexes with unsigned integers without the check for negative indices
    (Python's ``a[-1]``) it makes for signed ones, at every stored entry.
    """
    return index.view(np.dtype(f"u{index.dtype.itemsize}"))


def _negated(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``-matrix``, sharing its index arrays."""
    return sp.csr_matrix((-matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)


#: Whether a correlator's blocks take the compiled series also on one thread (they do in
#: threads, where they release the interpreter lock; SciPy's steps are faster alone).
_COMPILED_SERIES = False

#: Most bytes of working arrays kept per thread between expansions (see `_workspace`).
_WORKSPACE_BYTES = 1 << 24
_WORKSPACES = threading.local()


def _workspace(slot: str, shape: tuple[int, ...]) -> NDArray[np.complex128]:
    """An uninitialized complex array for `slot` in this thread, reused between calls.

    A fresh array of megabytes comes from the operating system page by page, each page
    zeroed on first touch (a third of a small correlator's time, in threads contending for
    the process's memory map); up to ``_WORKSPACE_BYTES`` of them are kept for the next
    expansion of the same shape in the same thread. For temporaries only.
    """
    kept: dict[str, NDArray[np.complex128]] = _WORKSPACES.__dict__.setdefault("arrays", {})
    array = kept.pop(slot, None)
    if array is None or array.shape != shape:
        array = np.empty(shape, dtype=complex)
    if array.nbytes + sum(other.nbytes for other in kept.values()) <= _WORKSPACE_BYTES:
        kept[slot] = array
    return array


def _conjugated(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``conj(matrix)`` sharing its index arrays; a real matrix itself."""
    if not np.iscomplexobj(matrix.data):
        return matrix
    return sp.csr_matrix((matrix.data.conj(), matrix.indices, matrix.indptr), shape=matrix.shape)


def _series_into(kernels: Any, doubled: sp.csr_matrix, series: NDArray[np.complex128]) -> None:
    """``series[m] = T_m(H) series[0]`` for all m, by the compiled kernel (real views for a
    real H)."""
    blocks = series if np.iscomplexobj(doubled.data) else series.view(float)
    kernels.chebyshev_series(
        _unsigned(doubled.indptr), _unsigned(doubled.indices), doubled.data, blocks
    )


def _products_into(
    kernels: Any,
    matrix: sp.csr_matrix,
    series: NDArray[np.complex128],
    out: NDArray[np.complex128],
) -> None:
    """``out[m] = matrix @ series[m]`` for all m, by the compiled kernel."""
    if np.iscomplexobj(matrix.data):
        blocks, target = series, out
    else:
        blocks, target = series.view(float), out.view(float)
    kernels.series_products(
        _unsigned(matrix.indptr), _unsigned(matrix.indices), matrix.data, blocks, target
    )


def _doubled_hamiltonian(hamiltonian: sp.csr_matrix) -> sp.csr_matrix:
    """``2 H`` as a CSR matrix with sorted indices: real (float64) when H is real."""
    matrix = hamiltonian.real if not np.any(hamiltonian.data.imag) else hamiltonian
    doubled = sp.csr_matrix(matrix * 2.0)
    doubled.sort_indices()
    return doubled


def _block_sizes(total: int, per_vector_bytes: int) -> Iterator[tuple[int, int]]:
    size = max(1, min(total, _BLOCK_BYTES // max(per_vector_bytes, 1)))
    for start in range(0, total, size):
        yield start, min(total, start + size)


#: Fewest vector entries (orbitals x vectors) of an expansion shared by threads: smaller
#: ones take less time than the threads cost.
_MIN_THREADED_ENTRIES = 1 << 16
#: Least work (vectors x orbitals x orders) of a correlator's expansion shared by threads:
#: about a millisecond of products.
_MIN_THREADED_WORK = 1 << 18


def _vector_blocks(
    start: int,
    stop: int,
    per_vector_bytes: int,
    size: int,
    threaded: bool = True,
    *,
    work_per_vector: int | None = None,
) -> tuple[list[tuple[int, int]], int]:
    """The blocks ``(first, last)`` of vectors ``start..stop-1`` and the threads to run them.

    The vectors are split in equal parts, one per thread (`default_threads`, unless the
    expansion is small, runs inside a pool thread already, or is not `threaded`), each part
    into blocks within the working memory. Small: fewer than ``_MIN_THREADED_ENTRIES``
    vector entries in all, or (`work_per_vector` given, the orbitals times the orders
    stored per vector) less than ``_MIN_THREADED_WORK`` of it. A vector's moments do not
    depend on the block it is in.
    """
    from .solvers.rgf import _in_chunk_pool, default_threads

    total = stop - start
    threads = 1
    large = (
        total * size >= _MIN_THREADED_ENTRIES
        if work_per_vector is None
        else total * work_per_vector >= _MIN_THREADED_WORK
    )
    if threaded and total > 1 and large and not _in_chunk_pool():
        threads = min(default_threads(), total)
    bounds = np.linspace(0, total, threads + 1).astype(int)
    blocks = [
        (start + int(low) + first, start + int(low) + last)
        for low, high in itertools.pairwise(bounds)
        for first, last in _block_sizes(int(high - low), per_vector_bytes * threads)
    ]
    return blocks, threads


def _in_threads(tasks: list[Callable[[], Any]], threads: int) -> Iterator[Any]:
    """The results of `tasks`, in order, computed by `threads` threads (the RGF's pool).

    The tasks run in waves of `threads`, so at most that many results are held at once
    (blocks are made to fit the working memory together).
    """
    if threads <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task()
        return
    from .solvers.rgf import _chunk_pool

    pool = _chunk_pool(threads)
    for wave in range(0, len(tasks), threads):
        yield from pool.map(lambda task: task(), tasks[wave : wave + threads])


def _chebyshev_nodes(n_sampling: int) -> NDArray[np.float64]:
    """The ``n_sampling`` Chebyshev nodes in (-1, 1), ascending."""
    return -np.cos(np.pi * (np.arange(n_sampling) + 0.5) / n_sampling)


def _densities_from_moments(
    moments: NDArray[Any],
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Densities at the Chebyshev nodes and their DCT sums ``gamma_k`` (ascending energy).

    ``gamma_k = mu_0 + 2 sum_n mu_n T_n(x_k)`` and ``rho(x_k) = gamma_k / (pi sqrt(1-x_k^2))``
    (Weisse et al., Eq. 83), for moments of shape ``(num_moments, ...)``.
    """
    n_moments = moments.shape[0]
    n_sampling = SAMPLING * n_moments
    padded = np.zeros((n_sampling, *moments.shape[1:]), dtype=moments.dtype)
    padded[:n_moments] = moments
    gammas = dct(padded, type=3, axis=0)[::-1]
    x = _chebyshev_nodes(n_sampling)
    weight = np.pi * np.sqrt(1 - x**2)
    rho = gammas / weight.reshape((-1,) + (1,) * (moments.ndim - 1))
    return rho, gammas


def _apply_kernel(kernel: Callable[..., Any], moments: NDArray[Any]) -> NDArray[Any]:
    result = np.asarray(kernel(moments))
    if result.shape != moments.shape:
        raise ValueError(
            f"kernel {kernel!r} returned shape {result.shape} for moments of shape "
            f"{moments.shape}; a kernel must return an array of the moments' shape"
        )
    return result


def jackson_kernel(moments: ArrayLike) -> NDArray[Any]:
    """The moments multiplied by the Jackson kernel ``g_n`` (Weisse et al., Eq. 71).

    ``g_n = [(N - n + 1) cos(pi n / (N + 1)) + sin(pi n / (N + 1)) cot(pi / (N + 1))] / (N + 1)``
    for ``N`` moments along the first axis. It broadens a delta peak into a near-Gaussian of
    width ``pi a / N`` (``a`` the half-width of the spectrum) and keeps densities positive.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.kpm import jackson_kernel
    >>> jackson_kernel(np.ones(4)).round(4).tolist()
    [1.0, 0.809, 0.4472, 0.1382]
    """
    array = np.asarray(moments)
    n = array.shape[0]
    m = np.arange(n)
    angle = np.pi / (n + 1)
    g = ((n - m + 1) * np.cos(angle * m) + np.sin(angle * m) / np.tan(angle)) / (n + 1)
    return array * g.reshape((-1,) + (1,) * (array.ndim - 1))


def lorentz_kernel(moments: ArrayLike, l: float = 4) -> NDArray[Any]:  # noqa: E741
    """The moments multiplied by the Lorentz kernel ``sinh(l (1 - n/N)) / sinh(l)``.

    Suited to Green's functions (it reproduces a Lorentzian broadening); ``l`` sets its
    decay (Weisse et al., Eq. 71 and Sec. II.C.3).

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.kpm import lorentz_kernel
    >>> lorentz_kernel(np.ones(3), l=1).round(4).tolist()
    [1.0, 0.6102, 0.2889]
    """
    array = np.asarray(moments)
    n = array.shape[0]
    decay = _positive_real(l, "l")
    g = np.sinh(decay * (1 - np.arange(n) / n)) / np.sinh(decay)
    return array * g.reshape((-1,) + (1,) * (array.ndim - 1))


def fermi_distribution(
    energy: ArrayLike, mu: ArrayLike, temperature: float
) -> NDArray[np.float64]:
    """The Fermi-Dirac occupation ``1 / (1 + exp((E - mu) / T))``, a step at ``T = 0``.

    Parameters
    ----------
    energy : float or array_like of float
        Energies, in the units of the Hamiltonian.
    mu : float
        Chemical potential (same units).
    temperature : float
        Thermal energy k_B T (same units), ``>= 0``.

    Returns
    -------
    ndarray of float, the shape of `energy`
        Computed without overflow at any ``(E - mu) / T``.

    Examples
    --------
    >>> from mesoscopic.kpm import fermi_distribution
    >>> fermi_distribution([-1.0, 0.0, 1.0], 0.0, 0.0).tolist()
    [1.0, 0.0, 0.0]
    >>> float(fermi_distribution(0.0, 0.0, 0.1))
    0.5
    """
    kt = float(_checks.temperature(temperature, "temperature"))
    mu_value = _checks.real_array(mu, "mu")
    energies = _checks.real_array(energy, "energy")
    if kt == 0:
        return np.asarray(np.less(energies - mu_value, 0), dtype=float)
    return np.asarray(expit(-(energies - mu_value) / kt))


# --------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------


def _is_local_operator(operator: Any) -> bool:
    return hasattr(operator, "bind") and hasattr(operator, "act")


def _square_operator(matrix: Any, size: int, what: str) -> sp.csr_matrix:
    csr = sp.csr_matrix(matrix)
    if csr.shape != (size, size):
        raise ValueError(
            f"{what} has shape {csr.shape}; it must be a ({size}, {size}) matrix, like the "
            "Hamiltonian"
        )
    return csr


def _density_operator(operator: Any, params: Any, size: int) -> tuple[str, Any] | None:
    """`operator` as (kind, object) for ``<bra|A|ket>`` on blocks of vectors."""
    if operator is None:
        return None
    if _is_local_operator(operator):
        return "batched", operator.bind(params=params)
    if callable(operator):
        return "callable", operator
    if hasattr(operator, "dot"):
        return "matrix", _square_operator(operator, size, "operator")
    raise ValueError(
        "operator must be a mesoscopic.operator object, a function f(bra, ket), or a matrix "
        f"(an object with a .dot method); got {_checks._show(operator)}"
    )


def _expectations(operator: tuple[str, Any], bra: NDArray[Any], ket: NDArray[Any]) -> NDArray[Any]:
    """``operator(bra_j, ket_j)`` for every column j, stacked along the first axis."""
    kind, op = operator
    if kind == "matrix":
        return _overlaps(bra, op @ ket)
    if kind == "batched":
        return np.asarray(op(np.ascontiguousarray(bra.T), np.ascontiguousarray(ket.T)))
    values = [np.asarray(op(bra[:, j], ket[:, j])) for j in range(bra.shape[1])]
    try:
        return np.stack(values)
    except ValueError:
        shapes = sorted({v.shape for v in values})
        raise ValueError(
            f"operator {op!r} returned results of different shapes {shapes}"
        ) from None


def _vector_operator(operator: Any, params: Any, size: int) -> Callable[[NDArray[Any]], Any]:
    """`operator` as a map from an ``(n, k)`` block of vectors to ``A @ block``."""
    if operator is None:
        return lambda block: block
    if _is_local_operator(operator):
        bound = operator.bind(params=params)
        return lambda block: np.asarray(bound.act(np.ascontiguousarray(block.T))).T
    if callable(operator):
        function = operator

        def columns(block: NDArray[Any]) -> NDArray[Any]:
            out = [np.asarray(function(block[:, j])) for j in range(block.shape[1])]
            return np.stack(out, axis=1)

        return columns
    if hasattr(operator, "dot"):
        matrix = _square_operator(operator, size, "operator")
        return lambda block: matrix @ block
    raise TypeError(
        "the operators must be mesoscopic.operator objects, functions of a vector, or "
        f"matrices (objects with a .dot method); got {_checks._show(operator)}"
    )


# --------------------------------------------------------------------------------------
# setup shared by SpectralDensity and Correlator
# --------------------------------------------------------------------------------------


class _Expansion:
    """Hamiltonian, rescaling, moment count and vectors of one KPM calculation."""

    _a: float
    _b: float
    eps: float
    hamiltonian: sp.csr_matrix
    _doubled: sp.csr_matrix
    num_moments: int
    kernel: Callable[..., Any]
    mean: bool
    _vector_factory: _VectorFactory

    def _setup(
        self,
        hamiltonian: Any,
        params: Any,
        num_vectors: Any,
        num_moments: Any,
        energy_resolution: Any,
        vector_factory: Any,
        bounds: Any,
        eps: Any,
        rng: Any,
        kernel: Any,
        mean: Any,
        accumulate_vectors: Any,
    ) -> sp.csr_matrix:
        if num_moments is not None and energy_resolution is not None:
            raise TypeError("give either num_moments or energy_resolution, not both")
        matrix = _as_matrix(hamiltonian, params)
        size = matrix.shape[0]
        eps_value = _positive_real(eps, "eps")
        if eps_value >= 2:
            raise ValueError(f"eps must be in (0, 2), got {eps!r}")
        checked_bounds = _check_bounds(bounds)
        if kernel is not None and not callable(kernel):
            raise TypeError(f"kernel must be a function of the moments, got {kernel!r}")
        generator = _ensure_rng(rng)
        self._rng = generator
        # Drawn even when the bounds are given, so the random vectors that follow are the
        # same either way (and the same as Kwant's for the same seed).
        if checked_bounds is None:
            v0: NDArray[np.complex128] | None = _random_phases(generator, size)
        else:
            _uniform(generator, size)
            v0 = None
        self.eps = eps_value
        self.hamiltonian, (self._a, self._b) = _rescale(matrix, eps_value, v0, checked_bounds)
        self._doubled = _doubled_hamiltonian(self.hamiltonian)
        if energy_resolution is not None:
            resolution = _positive_real(energy_resolution, "energy_resolution")
            num_moments = math.ceil(_RESOLUTION_FACTOR * self._a / resolution)
        elif num_moments is None:
            num_moments = 100
        self.num_moments = _count(num_moments, "num_moments")
        self.kernel = jackson_kernel if kernel is None else kernel
        self.mean = bool(mean)
        if vector_factory is None:
            vectors: Any = RandomVectors(matrix, rng=generator)
            if num_vectors is None:
                raise ValueError("num_vectors must be given with the default random vectors")
        else:
            vectors = vector_factory
        self._vector_factory = _VectorFactory(
            vectors, num_vectors=num_vectors, accumulate=accumulate_vectors
        )
        return matrix

    @property
    def bounds(self) -> tuple[float, float]:
        """The energy interval ``(b - a, b + a)`` mapped onto (-1, 1)."""
        return (self._b - self._a, self._b + self._a)

    @property
    def energies(self) -> NDArray[np.float64]:
        """The ``2 * num_moments`` sampling energies (Chebyshev nodes), ascending."""
        return self._a * _chebyshev_nodes(SAMPLING * self.num_moments) + self._b

    def _moments_to_add(self, num_moments: Any, energy_resolution: Any) -> int:
        if (num_moments is None) == (energy_resolution is None):
            raise TypeError("give either num_moments or energy_resolution")
        if energy_resolution is not None:
            resolution = _positive_real(energy_resolution, "energy_resolution")
            present = _RESOLUTION_FACTOR * self._a / self.num_moments
            if present < resolution:
                raise ValueError(
                    f"the energy resolution is already {present:.6g}, finer than the "
                    f"requested {resolution!r}"
                )
            needed = math.ceil(_RESOLUTION_FACTOR * self._a / resolution)
            return max(0, needed - self.num_moments)
        return _count(num_moments, "num_moments")

    def _check_can_add_moments(self) -> None:
        if not self._vector_factory.accumulate:
            raise ValueError(
                "cannot add moments when accumulate_vectors is False (the vectors were not "
                "kept); create the object again with more moments"
            )


# --------------------------------------------------------------------------------------
# SpectralDensity
# --------------------------------------------------------------------------------------


class SpectralDensity(_Expansion):
    r"""The spectral density of an operator by the kernel polynomial method.

    ``rho_A(E) = sum_k <k|A|k> delta(E - E_k)`` over the eigenstates ``|k>`` of the
    Hamiltonian; with no operator, the density of states ``rho(E) = sum_k delta(E - E_k)``.
    The traces are estimated with ``num_vectors`` vectors (random phases by default) and the
    expansion has ``num_moments`` Chebyshev moments, smoothed by the Jackson kernel.

    Parameters
    ----------
    hamiltonian : System or matrix
        A finite system (its scattering region; leads are ignored) or a dense or sparse
        Hermitian matrix.
    params : dict, optional
        Parameter values of the system's value functions and of the operator.
    operator : mesoscopic.operator object, callable or matrix, optional
        ``A``. An operator object (e.g. `mesoscopic.operator.Density`) or a function
        ``f(bra, ket)`` gives densities of the shape of its result (per site for a
        ``Density`` with ``sum=False``); a matrix gives scalar densities.
    num_vectors : positive int or None, default 10
        Number of vectors; None uses all of `vector_factory` (it must have a length).
    num_moments : positive int, default 100
        Number of Chebyshev moments. Excludes `energy_resolution`.
    energy_resolution : positive float, optional
        Smallest energy feature to resolve; sets ``num_moments = ceil(1.6 a / resolution)``
        (``a`` the half-width of `bounds`). Excludes `num_moments`.
    vector_factory : iterable of arrays, optional
        The vectors (e.g. `LocalVectors`, `RandomVectors`, a list). Default: random phases
        on all orbitals.
    bounds : (float, float), optional
        Lower and upper bounds of the spectrum; found by Lanczos when not given.
    eps : float in (0, 2), default 0.05
        Margin: the interval mapped onto (-1, 1) is the spectrum widened by ``eps``/2 of
        its width on each side.
    rng : int, RandomState, Generator or None
        Random numbers for the Lanczos start vector and the random vectors (see the module
        notes: the same seed gives Kwant's vectors).
    kernel : callable, default `jackson_kernel`
        Maps the moments (first axis: moment order) to the smoothed moments.
    mean : bool, default True
        Average over the vectors; else the densities have an extra axis, one per vector.
    accumulate_vectors : bool, default True
        Keep the vectors and the last two Chebyshev vectors so that `add_moments` can
        continue the expansion; False saves memory.

    Attributes
    ----------
    energies : ndarray of float, shape (2 * num_moments,)
        Sampling energies in ascending order (Chebyshev nodes in `bounds`).
    densities : ndarray, shape (2 * num_moments, ...)
        The spectral density at `energies`, per unit energy (states per energy for the
        density of states).
    bounds : (float, float)
        The energy interval covered by the expansion.
    num_moments, num_vectors : int

    Examples
    --------
    Density of states of a ring of 200 sites (hopping 1) from one site's local vector,
    which is exact here since all sites are equivalent:

    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from mesoscopic.kpm import SpectralDensity, LocalVectors
    >>> ring = sp.diags([1.0, 1.0, 1.0, 1.0], [-199, -1, 1, 199], shape=(200, 200))
    >>> rho = SpectralDensity(ring, vector_factory=LocalVectors(ring, where=[0]),
    ...                       num_vectors=None, num_moments=200)
    >>> energies, densities = rho()
    >>> round(float(rho(0.0)), 2)  # 1 / (2 pi) per site per energy at the band centre
    0.16
    >>> round(float(rho.integrate()), 10)  # one orbital sampled
    1.0
    """

    def __init__(
        self,
        hamiltonian: Any,
        params: dict[str, Any] | None = None,
        operator: Operator = None,
        num_vectors: int | None = 10,
        num_moments: int | None = None,
        energy_resolution: float | None = None,
        vector_factory: Iterable[Any] | None = None,
        bounds: tuple[float, float] | None = None,
        eps: float = 0.05,
        rng: Any = None,
        kernel: Callable[..., Any] | None = None,
        mean: bool = True,
        accumulate_vectors: bool = True,
    ) -> None:
        matrix = self._setup(
            hamiltonian,
            params,
            num_vectors,
            num_moments,
            energy_resolution,
            vector_factory,
            bounds,
            eps,
            rng,
            kernel,
            mean,
            accumulate_vectors,
        )
        self._size = matrix.shape[0]
        self.operator = _density_operator(operator, params, self._size)
        dtype = float if self.operator is None else complex
        self._moments_list = np.zeros((0, self.num_moments), dtype=dtype)
        self._mu01 = np.zeros((2, 0), dtype=dtype)
        self._state: _Chebyshev | None = None
        self._compute_vectors(0, self._vector_factory.num_vectors)
        self._refresh()

    # ---- public ----------------------------------------------------------------------

    @property
    def num_vectors(self) -> int:
        """Number of vectors used so far."""
        return int(self._moments_list.shape[0])

    def __call__(self, energy: ArrayLike | None = None) -> Any:
        """The spectral density at `energy`, or ``(energies, densities)`` without it.

        Parameters
        ----------
        energy : float or array_like of float, optional
            Energies in the units of the Hamiltonian. Outside `bounds` the density is 0.

        Returns
        -------
        (energies, densities) without `energy`; else the densities at `energy`, of shape
        ``np.shape(energy) + densities.shape[1:]``.
        """
        if energy is None:
            return self.energies, self.densities
        energies = _checks.real_array(energy, "energy")
        x = (energies - self._b) / self._a
        inside = np.abs(x) < 1
        safe_x = np.where(inside, x, 0.0)
        moments = self._moments()
        coefficients = moments.copy()
        coefficients[1:] *= 2
        values = np.polynomial.chebyshev.chebval(safe_x, coefficients)
        values = values / (np.pi * np.sqrt(1 - safe_x) * np.sqrt(1 + safe_x))
        # chebval puts the energy axes last; densities have them first.
        extra = moments.ndim - 1
        values = np.moveaxis(values, tuple(range(extra, values.ndim)), tuple(range(x.ndim)))
        mask = inside.reshape(inside.shape + (1,) * extra)
        result = np.where(mask, values, 0)
        return result if result.ndim else result[()]

    def integrate(self, distribution_function: Callable[[Any], Any] | None = None) -> Any:
        """The spectral density integrated over energy, optionally weighted.

        Gauss-Chebyshev quadrature on the sampling energies: without a weight the result
        is exactly the zeroth moment (e.g. the number of orbitals sampled, for the density
        of states).

        Parameters
        ----------
        distribution_function : callable, optional
            ``f(energies)`` for an array of energies, e.g. an occupation
            ``lambda e: fermi_distribution(e, mu, T)``.

        Returns
        -------
        float, complex or ndarray (the shape of one density)
        """
        factor = self._a / (SAMPLING * self.num_moments)
        gammas = self._gammas
        if distribution_function is not None:
            weights = np.asarray(distribution_function(self.energies))
            if weights.ndim == 0:
                weights = np.full(self.energies.shape, weights)
            if weights.shape != self.energies.shape:
                raise ValueError(
                    "distribution_function must return one value per energy, shape "
                    f"{self.energies.shape}; got shape {weights.shape}"
                )
            gammas = gammas * weights.reshape((-1,) + (1,) * (gammas.ndim - 1))
        total = factor * np.sum(gammas, axis=0)
        return total if np.ndim(total) else total[()]

    def add_moments(
        self, num_moments: int | None = None, *, energy_resolution: float | None = None
    ) -> None:
        """Continue the expansion with more Chebyshev moments.

        Parameters
        ----------
        num_moments : positive int, optional
            Number of moments to add. Excludes `energy_resolution`.
        energy_resolution : positive float, optional
            Add moments up to the number this resolution needs. Excludes `num_moments`.
        """
        count = self._moments_to_add(num_moments, energy_resolution)
        if count == 0:
            return
        self._check_can_add_moments()
        old, new = self.num_moments, self.num_moments + count
        extended = np.zeros(
            (*self._moments_list.shape[:1], new, *self._moments_list.shape[2:]),
            dtype=self._moments_list.dtype,
        )
        extended[:, :old] = self._moments_list
        assert self._state is not None
        added = self._moments_of(self._state, self._mu01, old, new)
        extended[:, old:] = added
        self._moments_list = extended
        self.num_moments = new
        self._refresh()

    def add_vectors(self, num_vectors: int | None = None) -> None:
        """Add `num_vectors` vectors to the estimate of the traces.

        Parameters
        ----------
        num_vectors : positive int
        """
        start = self.num_vectors
        self._vector_factory.add_vectors(num_vectors)
        self._compute_vectors(start, self._vector_factory.num_vectors)
        self._refresh()

    # ---- internals -------------------------------------------------------------------

    def _compute_vectors(self, start: int, stop: int) -> None:
        """Moments of vectors ``start..stop-1`` (appended to ``_moments_list``).

        Blocks of vectors are expanded side by side by threads (the vectors are drawn
        first, in order, in this thread).
        """
        accumulate = self._vector_factory.accumulate
        # Not for an operator object or function (it need not be thread-safe), nor for the
        # fused kernel, which splits the rows of each pass between threads instead: the
        # blocks stay wide, which it does faster per vector.
        fused = not np.iscomplexobj(self._doubled.data) and _fused_kernels() is not None
        ranges, threads = _vector_blocks(
            start, stop, 5 * 16 * self._size, self._size, self.operator is None and not fused
        )
        blocks = [self._vector_factory.block(first, last, self._size) for first, last in ranges]

        def expand(block: NDArray[np.complex128]) -> tuple[_Chebyshev, Any, Any]:
            # The blocks are this calculation's own: without an operator the start vectors
            # are needed only for mu_0 and mu_1, taken before the first step.
            state = _Chebyshev(self._doubled, block, keep_start=self.operator is not None)
            if self.operator is None:
                v0 = state.signed(0)
                mu01 = np.stack([_real_overlaps(v0, v0), _real_overlaps(v0, state.current)])
            else:
                mu01 = np.zeros((2, block.shape[1]), dtype=complex)  # unused: an operator
            return state, mu01, self._moments_of(state, mu01, 0, self.num_moments)

        tasks: list[Callable[[], Any]] = [functools.partial(expand, b) for b in blocks]
        results = _in_threads(tasks, threads)
        for state, mu01, moments in results:
            if self._moments_list.shape[0] == 0:
                self._moments_list = moments
            else:
                self._moments_list = np.concatenate([self._moments_list, moments])
            self._mu01 = np.concatenate([self._mu01, mu01], axis=1)
            if accumulate:
                self._state = (
                    state if self._state is None else _Chebyshev.joined(self._state, state)
                )

    def _moments_of(
        self, state: _Chebyshev, mu01: NDArray[Any], first: int, last: int
    ) -> NDArray[Any]:
        """Moments ``first..last-1`` of the vectors of `state`: ``(k, last - first, ...)``."""
        rows = []
        if self.operator is None and state.fused:
            rows = self._fused_moments(state, mu01, first, last)
        elif self.operator is None:
            # T_m T_n = (T_(m+n) + T_|m-n|) / 2 gives two moments per Chebyshev vector
            # (Weisse et al., Eqs. 34-35): mu_2n = 2 <T_n|T_n> - mu_0, and
            # mu_2n+1 = 2 <T_n+1|T_n> - mu_1. The blocks are kept with signs s_n (exact).
            for index in range(first, last):
                if index < 2:
                    rows.append(mu01[index])
                elif index % 2 == 0:
                    t_n = state.signed(index // 2)
                    rows.append(2 * _real_overlaps(t_n, t_n) - mu01[0])
                else:
                    n = index // 2
                    t_next = state.signed(n + 1)
                    t_n = state.signed(n)
                    sign = state.sign(n + 1) * state.sign(n)
                    rows.append(2 * sign * _real_overlaps(t_next, t_n) - mu01[1])
        else:
            for index in range(first, last):
                assert state.start is not None  # kept where there is an operator
                rows.append(_expectations(self.operator, state.start, state.vector(index)))
        state.check_growth(self.bounds)
        return np.stack(rows, axis=1)

    @staticmethod
    def _fused_moments(
        state: _Chebyshev, mu01: NDArray[Any], first: int, last: int
    ) -> list[NDArray[Any]]:
        """Moments ``first..last-1`` of the density of states by the fused kernel.

        The identities of `_moments_of`; a pass from order m gives ``mu_2m`` and
        ``mu_2m+1``, and a pass of two steps the next two as well.
        """
        rows: list[NDArray[Any]] = []
        index = first
        while index < last:
            order = index // 2
            if index < 2:
                rows.append(mu01[index])
                index += 1
            elif index % 2 == 0 and index + 1 == last:
                # The last moment needs no step: the overlap of the block it has.
                state.signed(order)
                if state.order != order:  # pragma: no cover - orders follow the moments
                    raise AssertionError("Chebyshev vectors are produced in order")
                rows.append(2 * state.self_overlaps() - mu01[0])
                index += 1
            else:
                state.signed(order)
                if state.order != order:  # pragma: no cover - orders follow the moments
                    raise AssertionError("Chebyshev vectors are produced in order")
                steps = 2 if last - 2 * order >= 4 else 1
                sums = state.advance_with_overlaps(steps)
                for step in range(steps):
                    m = order + step
                    sign = _Chebyshev.sign(m + 1) * _Chebyshev.sign(m)
                    for moment, value in (
                        (2 * m, 2 * sums[2 * step] - mu01[0]),
                        (2 * m + 1, 2 * sign * sums[2 * step + 1] - mu01[1]),
                    ):
                        if index <= moment < last:
                            rows.append(value)
                index = 2 * (order + steps)
        return rows

    def _moments(self) -> NDArray[Any]:
        raw = self._moments_list
        # The density of states' moments <r|T_n(H)|r> are real (H is Hermitian) and are
        # computed as such; an operator's need not be: complex unless they are real.
        moments = raw.copy() if self.operator is None else np.real_if_close(raw)
        moments = np.swapaxes(moments, 0, 1)
        if self.mean:
            moments = np.mean(moments, axis=1)
        moments = moments / self._a
        return _apply_kernel(self.kernel, moments)

    def _refresh(self) -> None:
        self.densities, self._gammas = _densities_from_moments(self._moments())


# --------------------------------------------------------------------------------------
# Correlator and conductivity
# --------------------------------------------------------------------------------------


class Correlator(_Expansion):
    r"""The Kubo-Bastin linear response of an operator ``O_a`` to a perturbation ``O_b``.

    .. math::

       \chi_{ab}(\mu, T) = \int dE\, f(\mu - E, T)\,
       \mathrm{Tr}\Big[O_a \delta(E - H) O_b \frac{dG^+}{dE}
       - O_a \frac{dG^-}{dE} O_b \delta(E - H)\Big]

    by a two-dimensional Chebyshev expansion with moments
    ``mu_mn = Tr(O_a T_m(H) O_b T_n(H))`` (Garcia, Covaci and Rappoport, Phys. Rev. Lett.
    114, 116602 (2015)). The trace is estimated with the vectors of `vector_factory`
    (random phases by default), as in `SpectralDensity`.

    Parameters
    ----------
    hamiltonian : System or matrix
        A finite system or a dense or sparse Hermitian matrix.
    operator1, operator2 : mesoscopic.operator object, callable or matrix, optional
        ``O_a`` and ``O_b``, as operator objects (their ``act``), functions of a vector, or
        matrices; None is the identity. ``operator1`` acts to the right, ``O_a |r>``.
    params, num_vectors, num_moments, energy_resolution, vector_factory :
        As in `SpectralDensity`.
    bounds, eps, rng, kernel, mean :
        As in `SpectralDensity`.
    accumulate_vectors : bool, default False
        Keep the Chebyshev vectors so that `add_moments` works (memory
        ``2 * num_vectors * num_moments * n_orbitals`` complex numbers).

    Attributes
    ----------
    moments_matrix : ndarray of complex, shape (num_moments, num_moments)
        ``mu_mn`` averaged over the vectors (one matrix per vector if ``mean=False``).
    energies : ndarray of float, shape (2 * num_moments,)
        The sampling energies of the energy integral.
    """

    def __init__(
        self,
        hamiltonian: Any,
        operator1: Operator = None,
        operator2: Operator = None,
        *,
        params: dict[str, Any] | None = None,
        num_vectors: int | None = 10,
        num_moments: int | None = None,
        energy_resolution: float | None = None,
        vector_factory: Iterable[Any] | None = None,
        bounds: tuple[float, float] | None = None,
        eps: float = 0.05,
        rng: Any = None,
        kernel: Callable[..., Any] | None = None,
        mean: bool = True,
        accumulate_vectors: bool = False,
        operator: Any = None,
    ) -> None:
        # `operator` is accepted (and ignored) because Kwant passes the keyword arguments of
        # SpectralDensity through to here.
        matrix = self._setup(
            hamiltonian,
            params,
            num_vectors,
            num_moments,
            energy_resolution,
            vector_factory,
            bounds,
            eps,
            rng,
            kernel,
            mean,
            accumulate_vectors,
        )
        self._size = matrix.shape[0]
        self.operator1 = _vector_operator(operator1, params, self._size)
        self.operator2 = _vector_operator(operator2, params, self._size)
        # A matrix O_b is applied by the accumulating kernel straight into the stored
        # blocks, with the sign of the order folded into the matrix (exact).
        self._operator2_matrices = _signed_matrices(operator2, self._size)
        self._operator2_identity = operator2 is None
        # The left expansion is kept conjugated, conj(T_m(H) O_a |r>) = T_m(H*) conj(O_a |r>)
        # (exactly: IEEE products and sums commute with conjugation), so that the moment
        # matrix is a plain product.
        self._doubled_conj = _conjugated(self._doubled)
        self._omega: NDArray[np.complex128] | None = None  # conj(T_m(H) O_a |r>), (M, n, k)
        self._psi: NDArray[np.complex128] | None = None  # O_b T_n(H) |r>, (M, n, k)
        self._states: tuple[_Chebyshev, _Chebyshev] | None = None
        # mu_mn summed over the vectors (mean=True), or one matrix per vector (mean=False).
        self._vectors_done = 0
        self._moment_sums = self._no_moments()
        self._compute_vectors(0, self._vector_factory.num_vectors)
        if not isinstance(rng, numbers.Integral):
            # Kwant's Correlator draws a second Lanczos start vector from a shared generator
            # here; drawing it too keeps the vectors of later add_vectors calls the same.
            _uniform(self._rng, self._size)
        self._update()

    @property
    def num_vectors(self) -> int:
        """Number of vectors used so far."""
        return self._vectors_done

    def __call__(self, mu: ArrayLike = 0, temperature: float = 0) -> Any:
        """The linear response ``chi(mu, T)``.

        Parameters
        ----------
        mu : float or array_like of float
            Chemical potential(s), in the units of the Hamiltonian.
        temperature : float
            Thermal energy k_B T, same units, ``>= 0``.

        Returns
        -------
        complex or ndarray of complex, shape ``np.shape(mu)`` (plus one axis per vector if
        ``mean=False``)
            A trace (extensive): divide by the area or volume sampled by the vectors. The
            imaginary part vanishes for an exact trace; with random vectors it measures the
            stochastic error.
        """
        mu_values = _checks.real_array(mu, "mu")
        energies = self.energies
        x = (energies - self._b) / self._a
        occupation = fermi_distribution(
            energies.reshape((1,) * mu_values.ndim + (-1,)),
            mu_values[..., None],
            temperature,
        )
        weight = occupation / (1 - x**2) ** 2
        if self.mean:
            integrand = weight * self._integral_factor
        else:
            integrand = weight[..., None, :] * self._integral_factor
        integral = simpson(integrand, x=x, axis=-1)
        # (2 / a^2) * 4: the rescaling dE = a dx and the velocities' factor 1/a each.
        result = 2 * 4**2 / (2 * self._a) ** 2 * integral
        return result if np.ndim(result) else result[()]

    def add_moments(
        self, num_moments: int | None = None, *, energy_resolution: float | None = None
    ) -> None:
        """Continue the expansion with more moments (needs ``accumulate_vectors=True``).

        Parameters
        ----------
        num_moments : positive int, optional
            Number of moments to add. Excludes `energy_resolution`.
        energy_resolution : positive float, optional
            Add moments up to the number this resolution needs. Excludes `num_moments`.
        """
        count = self._moments_to_add(num_moments, energy_resolution)
        if count == 0:
            return
        self._check_can_add_moments()
        assert self._states is not None and self._omega is not None and self._psi is not None
        old, new = self.num_moments, self.num_moments + count
        right, left = self._states
        omega_new, psi_new = self._propagate(left, right, old, new)
        self._omega = np.concatenate([self._omega, omega_new])
        self._psi = np.concatenate([self._psi, psi_new])
        self.num_moments = new
        self._moment_sums = _moment_matrices(self._omega, self._psi, summed=self.mean)
        self._update()

    def add_vectors(self, num_vectors: int | None = None) -> None:
        """Add `num_vectors` vectors to the estimate of the trace.

        Parameters
        ----------
        num_vectors : positive int
        """
        start = self.num_vectors
        self._vector_factory.add_vectors(num_vectors)
        self._compute_vectors(start, self._vector_factory.num_vectors)
        self._update()

    # ---- internals -------------------------------------------------------------------

    def _no_moments(self) -> NDArray[np.complex128]:
        shape = (self.num_moments,) * 2 if self.mean else (0, *(self.num_moments,) * 2)
        return np.zeros(shape, dtype=complex)

    def _propagate(
        self, left: _Chebyshev, right: _Chebyshev, first: int, last: int
    ) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
        """``conj(T_m(H) O_a |r>)`` and ``O_b T_n(H) |r>`` for orders ``first..last-1``.

        Both as ``(last - first, n, k)`` arrays, one block of the k vectors per order: the
        layout of the steps, and of the moment-matrix product (no transposes). `left`
        expands ``conj(O_a |r>)`` with ``conj(H)``.
        """
        k = right.current.shape[1]
        count = last - first
        omega = np.empty((count, self._size, k), dtype=complex)
        matrices = self._operator2_matrices
        # A matrix O_b accumulates into psi (zeros); other operators overwrite it.
        psi = (np.empty if matrices is None else np.zeros)((count, self._size, k), dtype=complex)

        for row, n in enumerate(range(first, last)):
            # The blocks are kept as s_n T_n(H) V (see _Chebyshev); O_b is linear, so the
            # sign goes on after it, exactly.
            sign = _Chebyshev.sign(n)
            np.multiply(left.signed(n), sign, out=omega[row])
            if matrices is not None:
                _accumulate_any(matrices[sign < 0], right.signed(n), psi[row])
            else:
                np.multiply(self.operator2(right.signed(n)), sign, out=psi[row])
        left.check_growth(self.bounds)
        right.check_growth(self.bounds)
        return omega, psi

    def _series(
        self, kernels: Any, vectors: NDArray[np.complex128], left_start: NDArray[np.complex128]
    ) -> tuple[NDArray[np.complex128], NDArray[np.complex128], _Chebyshev, _Chebyshev]:
        """What `_propagate` gives for all orders from the start, by the compiled kernels.

        The whole expansion of a block in one call that releases the interpreter lock (so
        blocks of vectors run side by side in threads), the same numbers as the steps of
        `_Chebyshev`. Returns omega, psi and the two states after the last order.
        """
        shape = (self.num_moments, *vectors.shape)
        kept = self._vector_factory.accumulate  # omega and psi outlive the call
        omega = np.empty(shape, dtype=complex) if kept else _workspace("omega", shape)
        omega[0] = left_start
        _series_into(kernels, self._doubled_conj, omega)
        matrices = self._operator2_matrices
        if self._operator2_identity:
            series = psi = np.empty(shape, dtype=complex) if kept else _workspace("psi", shape)
        else:
            series = _workspace("series", shape)
            psi = np.empty(shape, dtype=complex) if kept else _workspace("psi", shape)
        series[0] = vectors
        _series_into(kernels, self._doubled, series)
        if matrices is not None:
            _products_into(kernels, matrices[0], series, psi)
        elif not self._operator2_identity:
            for n in range(shape[0]):
                psi[n] = self.operator2(series[n])
        left = _Chebyshev.from_series(self._doubled_conj, omega)
        right = _Chebyshev.from_series(self._doubled, series)
        left.check_growth(self.bounds)
        right.check_growth(self.bounds)
        return omega, psi, left, right

    def _compute_vectors(self, start: int, stop: int) -> None:
        accumulate = self._vector_factory.accumulate
        kernels = _fused_kernels() if self.num_moments >= 2 else None
        # omega and psi, and (mean=False) their transposed copies for the moment matrices;
        # the compiled series keep the right expansion beside psi where O_b is not None.
        arrays = 4 if kernels is None or self._operator2_identity else 5
        vector_bytes = arrays * 16 * self._size * max(self.num_moments, 4)
        # Only compiled expansions with matrix operators (or none) run in threads: they
        # release the interpreter lock, and an operator that is a function or an operator
        # object need not be thread-safe.
        threaded = kernels is not None and (
            self._operator2_identity or self._operator2_matrices is not None
        )
        ranges, threads = _vector_blocks(
            start,
            stop,
            vector_bytes,
            self._size,
            threaded,
            work_per_vector=self._size * self.num_moments,
        )
        if threads == 1 and not _COMPILED_SERIES:
            # On one thread SciPy's products step by step are the faster (the same numbers).
            kernels = None
        blocks = [self._vector_factory.block(first, last, self._size) for first, last in ranges]
        starts = []
        for vectors in blocks:  # operator1 in this thread (it may be any callable)
            left_start = np.asarray(self.operator1(vectors), dtype=complex)
            if left_start.shape != vectors.shape:
                raise ValueError(
                    f"operator1 maps vectors of shape ({self._size},) to shape "
                    f"{left_start.shape[:1]}; it must keep the shape"
                )
            starts.append(np.ascontiguousarray(left_start.conj()))

        def expand(vectors: NDArray[np.complex128], left_start: NDArray[np.complex128]) -> Any:
            if kernels is not None:
                omega, psi, left, right = self._series(kernels, vectors, left_start)
            else:
                right = _Chebyshev(self._doubled, vectors)
                left = _Chebyshev(self._doubled_conj, left_start)
                omega, psi = self._propagate(left, right, 0, self.num_moments)
            moments = _moment_matrices(omega, psi, summed=self.mean)
            if not accumulate:  # only the moments are kept
                return None, None, None, None, moments
            return right, left, omega, psi, moments

        tasks: list[Callable[[], Any]] = [
            functools.partial(expand, v, w) for v, w in zip(blocks, starts)
        ]
        for (first, last), (right, left, omega, psi, moments) in zip(
            ranges, _in_threads(tasks, threads)
        ):
            if self.mean:
                self._moment_sums = self._moment_sums + moments
            else:
                self._moment_sums = np.concatenate([self._moment_sums, moments])
            self._vectors_done += last - first
            if accumulate:
                if self._states is None:
                    self._states = (right, left)
                    self._omega, self._psi = omega, psi
                else:
                    old_right, old_left = self._states
                    self._states = (
                        _Chebyshev.joined(old_right, right),
                        _Chebyshev.joined(old_left, left),
                    )
                    assert self._omega is not None and self._psi is not None
                    self._omega = np.concatenate([self._omega, omega], axis=2)
                    self._psi = np.concatenate([self._psi, psi], axis=2)

    def _update(self) -> None:
        self.moments_matrix = (
            self._moment_sums / self._vectors_done if self.mean else self._moment_sums.copy()
        )
        self._integral_factor = self._gamma_sum(self.moments_matrix)

    def _gamma_sum(self, moments_matrix: NDArray[np.complex128]) -> NDArray[np.complex128]:
        """``sum_mn g_m g_n mu_mn Gamma_nm(x)`` at every sampling energy ``x``.

        ``Gamma_nm(x) = (x - i n sqrt(1-x^2)) e^{i n arccos x} T_m(x) + (m <-> n)^*``, with the
        kernel ``g`` (halved at order 0); a row of products per energy, done as two matrix
        products for all energies at once.
        """
        n_moments = self.num_moments
        g = np.asarray(self.kernel(np.ones(n_moments)), dtype=float)
        g[0] /= 2
        weighted = np.outer(g, g) * moments_matrix
        x = (self.energies - self._b) / self._a
        orders = np.arange(n_moments)
        root = np.sqrt(1 - x**2)[:, None]
        rotation = np.exp(1j * np.arccos(x)[:, None] * orders)
        chebyshev = rotation.real  # T_n(x) = cos(n arccos x)
        raised = (x[:, None] - 1j * root * orders) * rotation
        with _single_thread_blas():
            first = np.sum((raised @ weighted) * chebyshev, axis=-1)
            second = np.sum((chebyshev @ weighted) * raised.conj(), axis=-1)
        return first + second


def _moment_matrices(
    omega: NDArray[np.complex128], psi: NDArray[np.complex128], *, summed: bool
) -> NDArray[np.complex128]:
    """``mu_mn = <Omega_m|Psi_n>`` from ``(M, n, k)`` blocks (omega kept conjugated), by
    BLAS-3 products.

    Summed over the k vectors: one ``(M, n k) x (n k, M)`` product of the blocks as they
    are stored (no copies; NumPy's product, which releases the interpreter lock); else one
    ``(k, M, M)`` stack of products. One BLAS thread: for the few-hundred-row products of a
    KPM expansion, waking the other threads costs more than they save (several times the
    CPU time on two cores); blocks of vectors run in threads instead.
    """
    count = omega.shape[0]
    with _single_thread_blas():
        if summed:
            return np.matmul(omega.reshape(count, -1), psi.reshape(count, -1).T)
        left_each = np.ascontiguousarray(omega.transpose(2, 0, 1))
        right_each = np.ascontiguousarray(psi.transpose(2, 1, 0))
        return np.matmul(left_each, right_each)


_DIRECTIONS = {"x": 0, "y": 1, "z": 2}


def _velocity(
    hamiltonian: Any,
    params: Any,
    op_type: Any,
    positions: Any,
    matrix: sp.csr_matrix | None = None,
) -> Any:
    """The velocity operator ``i [H, r_d]`` for a direction, or `op_type` as an operator.

    `matrix` is the Hamiltonian's matrix when the caller has it already.
    """
    if _is_local_operator(op_type):
        return op_type
    if isinstance(op_type, str):
        if op_type not in _DIRECTIONS:
            raise ValueError(
                f"the direction must be one of 'x', 'y', 'z' (or an operator), got {op_type!r}"
            )
        direction = _DIRECTIONS[op_type]
        if matrix is None:
            matrix = _as_matrix(hamiltonian, params)
        if isinstance(hamiltonian, System):
            orbital_positions = np.repeat(
                np.asarray(hamiltonian.pos, dtype=float), np.asarray(hamiltonian.norbs), axis=0
            )
        else:
            if positions is None:
                raise ValueError(
                    f"the velocity along {op_type!r} of a matrix Hamiltonian needs positions "
                    "(one row per orbital); or give the velocity operators as matrices"
                )
            orbital_positions = _checks.real_array(positions, "positions")
            if orbital_positions.ndim == 1:
                orbital_positions = orbital_positions[:, None]
            if orbital_positions.ndim != 2 or orbital_positions.shape[0] != matrix.shape[0]:
                raise ValueError(
                    f"positions must have shape ({matrix.shape[0]}, dim), one row per "
                    f"orbital; got {np.shape(positions)}"
                )
        if direction >= orbital_positions.shape[1]:
            raise ValueError(
                f"direction {op_type!r} does not exist in {orbital_positions.shape[1]} "
                "dimension(s)"
            )
        coo = matrix.tocoo()
        displacement = (
            orbital_positions[coo.col, direction] - orbital_positions[coo.row, direction]
        )
        # Only the bonds with a component along the direction: the onsite terms and the
        # bonds across it are zeros, which would cost as much as the rest in every product.
        bonds = displacement != 0
        return sp.csr_matrix(
            (1j * displacement[bonds] * coo.data[bonds], (coo.row[bonds], coo.col[bonds])),
            shape=matrix.shape,
        )
    try:
        if op_type is None or isinstance(op_type, bytes):
            raise TypeError
        return sp.csr_matrix(op_type)
    except Exception:
        raise ValueError(
            "a velocity must be a direction 'x', 'y' or 'z', a mesoscopic.operator object or "
            f"a matrix; got {_checks._show(op_type)}"
        ) from None


def conductivity(
    hamiltonian: Any,
    alpha: Any = "x",
    beta: Any = "x",
    positions: ArrayLike | None = None,
    **kwargs: Any,
) -> Correlator:
    """The Kubo-Bastin conductivity ``sigma_alpha,beta(mu, T)`` as a callable `Correlator`.

    The correlator of the velocities ``v_a = i [H, r_a]`` (``hbar = 1``): calling it with
    ``(mu, temperature)`` gives a trace: the conductivity in units of ``e^2/h`` times the
    area (volume) sampled by the vectors, in lattice units (the whole system for the default
    random vectors; the selection for `LocalVectors` or `RandomVectors` with ``where``).
    Divide by that area to get a conductivity. In a quantum Hall gap, ``sigma_xy`` per unit
    area is an integer (the Chern number of the filled bands: ±1, ±2, ... above the lowest
    Landau levels, the sign set by the direction of the field).

    Parameters
    ----------
    hamiltonian : System or matrix
        A finite system or a Hermitian matrix.
    alpha, beta : {'x', 'y', 'z'}, mesoscopic.operator object or matrix
        The two velocity components (directions are built from the Hamiltonian and the
        positions), or the velocity operators themselves.
    positions : array_like of float, shape (n_orbitals, dim), optional
        Orbital positions, needed for directions when `hamiltonian` is a matrix.
    **kwargs
        Passed to `Correlator` (``params``, ``num_moments``, ``num_vectors``, ``rng``,
        ``vector_factory``, ...).

    Returns
    -------
    Correlator
        ``sigma(mu=0, temperature=0)``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from mesoscopic.kpm import conductivity
    >>> chain = sp.diags([-1.0, -1.0], [-1, 1], shape=(30, 30))
    >>> sigma = conductivity(chain, 'x', 'x', positions=np.arange(30.0)[:, None],
    ...                      num_moments=20, num_vectors=2, rng=0)
    >>> sigma(mu=0.0, temperature=0.1).shape
    ()
    """
    params = kwargs.get("params")
    matrix = None
    if isinstance(alpha, str) or isinstance(beta, str):
        # One Hamiltonian matrix for the velocities and the expansion: a system's value
        # functions run once, not three times.
        matrix = _as_matrix(hamiltonian, params)
    alpha_op = _velocity(hamiltonian, params, alpha, positions, matrix)
    beta_op = _velocity(hamiltonian, params, beta, positions, matrix)
    expanded = hamiltonian if matrix is None else matrix
    return Correlator(expanded, operator1=alpha_op, operator2=beta_op, **kwargs)
