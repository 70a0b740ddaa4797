"""Recursive Green's functions over slices, batched over energies, on CPU (NumPy) or GPU (CuPy).

The scattering region is cut into slices ``0, ..., S - 1`` (see
:mod:`mesoscopic.solvers._slicing`) so that its Hamiltonian is block tridiagonal, with
diagonal blocks ``H_s`` and couplings ``V_s = <s|H|s+1>``, and each lead's interface inside
one slice. The retarded Green's function ``G = (E - H - sum_l Sigma_l)^{-1}`` is built by the
Dyson recursion of *left-connected* Green's functions: with ``G^L_s`` the Green's function of
slices ``0..s`` alone, restricted to slice ``s``,

    G^L_s = (E - H_s - Sigma_leads(s) - V_{s-1}^dagger G^L_{s-1} V_{s-1})^{-1}.

Only bounded surface quantities enter, never products of transfer matrices, so the
recursion stays finite through any amount of evanescent decay. Alongside it the sweep keeps
what the leads need, projected on their broadening (``Gamma_l = W_l W_l^dagger``):

* columns ``Q_m = G_{s, m} W_m`` and rows ``P_l = W_l^dagger G_{l, s}`` that connect the
  current slice to each lead already passed, updated as
  ``Q_m <- G^L_s V_{s-1}^dagger Q_m`` and ``P_l <- P_l V_{s-1} G^L_s``;
* the lead-to-lead blocks ``M_lm = W_l^dagger G_lm W_m``, corrected at every slice by the
  Dyson term ``P_l V_{s-1}^dagger Q_m`` (the region to the right changes them too).

When the last slice is done every ``M_lm`` is that of the whole system, wherever the leads
sit (a two-lead wire, a six-terminal Hall bar with side leads in middle slices, leads sharing
a slice). The Caroli formula gives ``T_lm = Tr[Gamma_l G_lm Gamma_m G_lm^dagger] =
||M_lm||_F^2``, and ``T_ll = N_l - sum_{m != l} T_ml`` is the total reflection (Kwant's
``transmission(l, l)``). With two leads only ``T_10`` is computed (``T_01 = T_10``). For the
full scattering matrix the rows are the lead's read-out rows instead (its sources turned to
the outgoing modes) and the blocks go through the Fisher-Lee read-out of
:mod:`mesoscopic.solvers.sparse`, mode for mode the same S-matrix.

The decaying columns and rows are rescaled by exact powers of two every few slices (the
exponents are carried separately), so long tunnelling regions give a finite transmission
with full relative accuracy and no subnormal slow-down; only the final number can underflow.

A left-connected ``G^L_s`` can have a pole exactly at an energy where the whole system has
none: the part of the system left of slice ``s`` binds a state there (a zero mode of a cut
through a zigzag graphene ribbon at its charge-neutrality point, for instance). Such an
energy is solved by the sparse direct solver instead, the rest of the batch by the
recursion, and counted in ``stats["sparse_fallback_energies"]``; only a bound state of the
whole system raises ``ValueError``. Close to such a pole the recursion loses digits: an
S-matrix not unitary to 1e-10, or transmissions that break current conservation by more
than 5e-11 (a second transmission from the receiving lead's own block of ``G``, or the row
against the column sums), go to the sparse solver too.

Memory is ``O(B n_max^2)`` for a batch of ``B`` energies and the largest slice ``n_max``;
nothing of the size of the whole system is formed. Work per slice is one batched ``n x n``
inverse, plus matrix products that are skipped where the coupling ``V`` is a multiple of the
identity or diagonal (as on square lattices); equal slice blocks are stored once.

A batch may also run over the elements of a parameter batch (:func:`prepare_batch`):
Hamiltonians of one structure with different values (disorder realizations, gate
voltages, fields). Each entry of the batch is an (element, energy) pair; slice blocks and
couplings equal in all elements are stored once, the others per element and gathered for
each chunk, and a lead whose matrices differ between elements takes the exact modes element
by element.

Lead self-energies for a whole batch: when a lead's hopping commutes with its cell
Hamiltonian (and is normal, e.g. ``hop = -t * 1``), both are diagonal in one unitary basis
``U`` and the lead is a set of independent chains, with the closed-form self-energy
``Sigma = U diag(2 tau_n^2 / (z_n + sqrt(z_n - 2 tau_n) sqrt(z_n + 2 tau_n))) U^dagger``,
``z_n = E - epsilon_n``, evaluated on the device for all energies at once. Any other lead
uses the exact eigenmode method of :mod:`mesoscopic.leads` energy by energy.

References: A. MacKinnon, Z. Phys. B 59, 385 (1985); D. S. Fisher and P. A. Lee, Phys. Rev.
B 23, 6851 (1981); C. Caroli et al., J. Phys. C 4, 916 (1971); M. Wimmer and K. Richter,
J. Comput. Phys. 228, 8548 (2009) (slicing).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.linalg.lapack as la_lapack
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from .._workers import exit_with_parent
from ..leads import LeadData, interpreter_stages
from ..scattering import SMatrix
from . import _backend
from ._embedding import AnyLeadData, LeadEmbedding, embed_lead
from ._rgf_leads import (
    ClosedFormLead,
    _lead_terms,
    _LeadTerms,
    check_energies,
    closed_form_lead,
    lead_selfenergies,
)
from ._slicing import Slicing, slice_orbitals
from .sparse import _checked_leads, _system_hamiltonian, scattering_matrix

__all__ = [
    "DEFAULT_BLAS_THREADS",
    "RGFProblem",
    "closed_form_lead",
    "lead_selfenergies",
    "prepare",
    "prepare_batch",
    "scattering_matrices",
    "transmission_matrices",
]

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: BLAS threads per process during a CPU sweep unless ``blas_threads`` is given.
DEFAULT_BLAS_THREADS = 1

# Decaying columns are rescaled every this many slices; between rescalings they can shrink by
# at most 2^-1000 overall, i.e. 2^-250 per slice (a barrier 10^75 times the hopping).
_RESCALE_INTERVAL = 4
# The left-connected Green's function is cleared of subnormal parts every this many slices.
_FLUSH_INTERVAL = 16
# Largest chunk of energies processed at once when neither memory nor the caller limits it.
_DEFAULT_MAX_CHUNK = {"cpu": 256, "gpu": 2048}
# On the CPU, chunks hold at most about this many matrix entries of the largest slice.
_CPU_CHUNK_ENTRIES = 1 << 18
# From this slice size on, matrices are inverted one by one with getrf + getri on the CPU.
_LAPACK_LOOP_MIN_SIZE = 16
# Adding and subtracting this flushes real and imaginary parts below about 2^-952 to zero.
_FLUSH = complex(2.0**-900, 2.0**-900)
# Relative tolerances for recognising structure in blocks and leads.
# Slice matrices with a reciprocal 1-norm condition number below this are treated as singular
# (their energy goes to the sparse solver): ordinary slices stay above ~1e-8.
_SLICE_RCOND = 1e-9
_TINY = float(np.finfo(float).tiny)
#: Entries of the kept weights of diagonal couplings (16 bytes each) per sweep.
_DIAGONAL_WEIGHT_ENTRIES = 1 << 21
_STRUCTURE_TOLERANCE = 1e-14
#: A coupling shared by all elements with at most this fraction of nonzero entries, between
#: slices of at least this many orbitals, is applied as a sparse matrix on the CPU.
_SPARSE_COUPLING_DENSITY = 0.1
_SPARSE_COUPLING_MIN_SIZE = 48


# --------------------------------------------------------------------------------------------
# Slice blocks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _PerElement:
    """An array with a leading axis over the elements of a parameter batch, (P, ...)."""

    array: Any


def _at(value: Any, elements: Any) -> Any:
    """``value`` for every batch entry: a per-element array gathered by ``elements``."""
    if isinstance(value, _PerElement):
        return value.array[elements]
    return value


def _shared_or_per_element(stack: NDArray[Any]) -> Any:
    """``stack[0]`` when all elements of the (P, ...) stack are equal, else the stack."""
    if stack.shape[0] == 1 or bool(np.all(stack == stack[:1])):
        return stack[0].copy()
    return _PerElement(np.ascontiguousarray(stack))


@dataclass(frozen=True, eq=False)
class _Coupling:
    """``V_s = <s|H|s+1>`` in the cheapest exact form: zero, scalar * 1, diagonal or dense.

    The values (``scalar``, ``diagonal``, ``dense``) are shared by all elements of a
    parameter batch or, as :class:`_PerElement`, given per element.
    """

    kind: str  # "zero" | "scalar" | "diagonal" | "sparse" | "dense"
    scalar: Any = 0.0
    diagonal: Any = None
    dense: Any = None
    shape: tuple[int, int] = (0, 0)


def _full_coupling(
    shape: tuple[int, int], scale: float, stack: Callable[[], ComplexArray]
) -> _Coupling:
    """A coupling that is not a diagonal (:func:`_couplings` decides those for all slices at
    once): zero, sparse or dense; ``stack()`` gives the (P, rows, cols) couplings of all
    elements of a batch (made only when not zero), whose largest modulus is ``scale``."""
    rows, cols = shape
    if scale == 0:
        return _Coupling("zero", shape=shape)
    shared = _shared_or_per_element(stack())
    if (
        not isinstance(shared, _PerElement)
        and max(rows, cols) >= _SPARSE_COUPLING_MIN_SIZE
        and np.count_nonzero(shared) <= _SPARSE_COUPLING_DENSITY * rows * cols
    ):
        # Few entries (matrix hoppings site to site: spin, orbitals): sparse products.
        return _Coupling("sparse", dense=shared, shape=shape)
    return _Coupling("dense", dense=shared, shape=shape)


@dataclass(frozen=True, eq=False)
class _SliceBlocks:
    """Diagonal blocks as (shared off-diagonal template, own diagonal), and the couplings.

    Templates and diagonals are arrays shared by all elements of a parameter batch, or
    :class:`_PerElement` stacks where the elements differ.
    """

    templates: tuple[Any, ...]
    template_of_slice: IntArray
    diagonals: tuple[Any, ...]
    couplings: tuple[_Coupling, ...]


def _common_pattern(
    matrices: Sequence[sp.csr_matrix],
) -> tuple[IntArray, IntArray, ComplexArray]:
    """Rows, columns and (P, nnz) values of the matrices on the union of their patterns."""
    canonicals = []
    for matrix in matrices:
        canonical = matrix
        if not (sp.isspmatrix_csr(matrix) and matrix.has_canonical_format):
            canonical = sp.csr_matrix(matrix)  # a copy: the caller's matrix stays as it is
            canonical.sum_duplicates()
        canonicals.append(canonical)
    head = canonicals[0]
    if all(
        (c.indptr is head.indptr and c.indices is head.indices)
        or (np.array_equal(c.indptr, head.indptr) and np.array_equal(c.indices, head.indices))
        for c in canonicals[1:]
    ):
        # One pattern (the elements of a parameter batch of one system): its values only.
        rows = np.repeat(np.arange(head.shape[0]), np.diff(head.indptr))
        values = np.array([c.data for c in canonicals], dtype=complex)
        return rows, head.indices.astype(rows.dtype), values
    coos = [c.tocoo() for c in canonicals]
    first = coos[0]
    same = all(
        c.nnz == first.nnz
        and np.array_equal(c.row, first.row)
        and np.array_equal(c.col, first.col)
        for c in coos[1:]
    )
    if same:
        return first.row, first.col, np.array([c.data for c in coos], dtype=complex)
    size = first.shape[1]
    keys = [c.row.astype(np.int64) * size + c.col for c in coos]
    union = np.unique(np.concatenate(keys))
    values = np.zeros((len(coos), union.size), dtype=complex)
    for k, (c, key) in enumerate(zip(coos, keys)):
        values[k, np.searchsorted(union, key)] = c.data
    return union // size, union % size, values


@dataclass(frozen=True, eq=False)
class _BlockPlan:
    """Where the entries of one Hamiltonian pattern go in the slice blocks: structure only.

    Made once per pattern (:func:`_block_plan`) and reused by every call with the same
    pattern, leads and slicing, so that a loop over disorder realizations or gate values
    pays only for the values. ``diag_*`` are the entries on the diagonal of the Hamiltonian,
    ``off_*`` the other entries of diagonal blocks, ``coupling_*`` those of the blocks
    ``<s|H|s+1>``; ``*_flat`` are positions in one buffer holding all blocks of a kind, slice
    after slice (``offsets``).
    """

    row: IntArray
    col: IntArray
    nonzero: NDArray[np.bool_]
    interfaces: tuple[IntArray, ...]
    slicing: Slicing
    diag_entries: IntArray
    diag_flat: IntArray
    diag_bounds: IntArray
    off_entries: IntArray
    off_flat: IntArray
    off_offsets: IntArray
    coupling_entries: IntArray
    coupling_flat: IntArray
    coupling_offsets: IntArray
    coupling_owner: IntArray
    coupling_on_diagonal: NDArray[np.bool_]
    coupling_row: IntArray  # each coupling entry's row within its slice
    local: IntArray  # each orbital's position within its slice (-1: in none)
    given_slicing: bool  # the slicing was the caller's, not the automatic one
    # The last values seen, for reuse: one pair ((off values, templates, their map),
    # (coupling values, couplings)), replaced by every call that computes new ones.
    last: list[Any]

    def matches(
        self,
        row: IntArray,
        col: IntArray,
        nonzero: NDArray[np.bool_],
        interfaces: Sequence[IntArray],
        slicing: Slicing | None,
    ) -> bool:
        return (
            (slicing is self.slicing if self.given_slicing else slicing is None)
            and len(interfaces) == len(self.interfaces)
            and row.size == self.row.size
            and np.array_equal(row, self.row)
            and np.array_equal(col, self.col)
            and np.array_equal(nonzero, self.nonzero)
            and all(np.array_equal(a, b) for a, b in zip(interfaces, self.interfaces))
        )


_PLANS: list[_BlockPlan] = []
_MAX_PLANS = 8
_PLANS_LOCK = threading.Lock()


def _block_plan(
    row: IntArray,
    col: IntArray,
    data: ComplexArray,
    size: int,
    interfaces: Sequence[IntArray],
    slicing: Slicing | None,
) -> _BlockPlan:
    """The plan of a pattern (rows, columns, which entries are nonzero), made or reused."""
    nonzero = np.any(data != 0, axis=0)
    with _PLANS_LOCK:
        for k, plan in enumerate(_PLANS):
            if plan.matches(row, col, nonzero, interfaces, slicing):
                _PLANS.insert(0, _PLANS.pop(k))
                return plan
    given = slicing is not None
    if slicing is None:
        pattern = sp.csr_matrix((nonzero.astype(float), (row, col)), shape=(size, size))
        slicing = slice_orbitals(pattern, interfaces)
    plan = _make_plan(row, col, nonzero, size, tuple(interfaces), slicing, given)
    with _PLANS_LOCK:
        _PLANS.insert(0, plan)
        del _PLANS[_MAX_PLANS:]
    return plan


def _make_plan(
    row: IntArray,
    col: IntArray,
    nonzero: NDArray[np.bool_],
    size: int,
    interfaces: tuple[IntArray, ...],
    slicing: Slicing,
    given_slicing: bool = False,
) -> _BlockPlan:
    slice_of = np.full(size, -1, dtype=np.int64)
    local = np.full(size, -1, dtype=np.int64)
    for s, orbs in enumerate(slicing.slices):
        slice_of[orbs] = s
        local[orbs] = np.arange(len(orbs))
    si, sj = slice_of[row], slice_of[col]
    # Entries zero in every element are left out, as by the slicing (a hopping switched off
    # may join parts of the system that the slicing keeps apart).
    inside = (si >= 0) & (sj >= 0) & nonzero
    if np.any(inside & (np.abs(si - sj) > 1)):
        raise RuntimeError("internal error: the slicing is not block tridiagonal")
    sizes = slicing.sizes.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])

    def flat(mask: NDArray[np.bool_], widths: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        offsets = np.concatenate([[0], np.cumsum(sizes * widths)])
        entries = np.flatnonzero(mask)
        owner = si[entries]
        where = offsets[owner] + local[row[entries]] * widths[owner] + local[col[entries]]
        return entries, where, offsets

    on_diagonal = inside & (row == col)
    diag_entries = np.flatnonzero(on_diagonal)
    diag_flat = starts[si[diag_entries]] + local[row[diag_entries]]
    off_entries, off_flat, off_offsets = flat(inside & (si == sj) & (row != col), sizes)
    coupling_entries, coupling_flat, coupling_offsets = flat(
        inside & (sj == si + 1), np.append(sizes[1:], 0)
    )
    return _BlockPlan(
        row=row,
        col=col,
        nonzero=nonzero,
        interfaces=interfaces,
        slicing=slicing,
        diag_entries=diag_entries,
        diag_flat=diag_flat,
        diag_bounds=starts,
        off_entries=off_entries,
        off_flat=off_flat,
        off_offsets=off_offsets,
        coupling_entries=coupling_entries,
        coupling_flat=coupling_flat,
        coupling_offsets=coupling_offsets,
        coupling_owner=si[coupling_entries],
        coupling_on_diagonal=local[row[coupling_entries]] == local[col[coupling_entries]],
        coupling_row=local[row[coupling_entries]],
        local=local,
        given_slicing=given_slicing,
        last=[],
    )


def _scatter_blocks(
    values: ComplexArray, where: IntArray, offsets: IntArray, sizes: IntArray, widths: IntArray
) -> list[ComplexArray]:
    """Blocks (P, sizes[s], widths[s]) as views of one buffer filled in one pass."""
    count = values.shape[0]
    buffer = np.zeros((count, int(offsets[-1])), dtype=complex)
    buffer[:, where] = values  # one value per (row, column): the pattern has no duplicates
    return [
        buffer[:, offsets[s] : offsets[s + 1]].reshape(count, sizes[s], widths[s])
        for s in range(sizes.size)
    ]


def _extract_blocks(plan: _BlockPlan, data: ComplexArray) -> _SliceBlocks:
    """The slice blocks of matrices given on the plan's pattern: ``data`` (P, nnz)."""
    slicing = plan.slicing
    num = slicing.num_slices
    count = data.shape[0]
    sizes = slicing.sizes.astype(np.int64)
    diag_all = np.zeros((count, int(plan.diag_bounds[-1])), dtype=complex)
    diag_all[:, plan.diag_flat] = data[:, plan.diag_entries]
    bounds = plan.diag_bounds
    diagonals: tuple[Any, ...]
    if count == 1:
        diagonals = tuple(diag_all[0, bounds[s] : bounds[s + 1]] for s in range(num))
    else:
        same = np.all(diag_all == diag_all[:1], axis=0)
        diagonals = tuple(
            diag_all[0, bounds[s] : bounds[s + 1]].copy()
            if same[bounds[s] : bounds[s + 1]].all()
            else _PerElement(np.ascontiguousarray(diag_all[:, bounds[s] : bounds[s + 1]]))
            for s in range(num)
        )
    off_values = data[:, plan.off_entries]
    coupling_values = data[:, plan.coupling_entries]
    # Values unchanged since the last call with this pattern (a disorder or gate loop
    # changes the onsite values, a field the couplings) are not looked at again.
    last = plan.last[0] if plan.last else (None, None)
    templates = last[0]
    if templates is None or not _same_values(templates[0], off_values):
        templates = (off_values, *_templates(plan, off_values, sizes))
    couplings = last[1]
    if couplings is None or not _same_values(couplings[0], coupling_values):
        couplings = (coupling_values, _couplings(plan, coupling_values, sizes))
    plan.last[:] = [(templates, couplings)]
    return _SliceBlocks(templates[1], templates[2], diagonals, couplings[1])


def _same_values(a: ComplexArray, b: ComplexArray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _templates(
    plan: _BlockPlan, off_values: ComplexArray, sizes: IntArray
) -> tuple[tuple[Any, ...], IntArray]:
    """The off-diagonal parts of the diagonal blocks, equal ones stored once, and the map."""
    templates: list[Any] = []
    index: dict[tuple[int, bytes], int] = {}
    template_of_slice = np.empty(sizes.size, dtype=np.int64)
    for s, block in enumerate(
        _scatter_blocks(off_values, plan.off_flat, plan.off_offsets, sizes, sizes)
    ):
        shared = _shared_or_per_element(block)
        if isinstance(shared, _PerElement):
            template_of_slice[s] = len(templates)
            templates.append(shared)
        else:
            key = (block.shape[1], shared.tobytes())
            if key not in index:
                index[key] = len(templates)
                templates.append(shared)
            template_of_slice[s] = index[key]
    return tuple(templates), template_of_slice


def _couplings(plan: _BlockPlan, values: ComplexArray, sizes: IntArray) -> tuple[_Coupling, ...]:
    """The couplings ``<s|H|s+1>`` in their cheapest exact forms, for all elements of a
    batch: a multiple of the identity or a diagonal where the entries off the diagonal are
    below ``_STRUCTURE_TOLERANCE`` of the largest (and, for the identity, the diagonal's
    spread too), else zero, sparse or dense (:func:`_full_coupling`); each value shared by
    the elements where they are equal."""
    num = sizes.size
    count = values.shape[0]
    moduli = np.max(np.abs(values), axis=0) if count else np.zeros(0)
    owner = plan.coupling_owner
    on_diagonal = plan.coupling_on_diagonal
    # Largest modulus of each coupling, and of its entries off the diagonal.
    scale = np.zeros(num)
    np.maximum.at(scale, owner, moduli)
    off_scale = np.zeros(num)
    np.maximum.at(off_scale, owner[~on_diagonal], moduli[~on_diagonal])
    # The diagonals of all couplings, from their entries (no dense blocks).
    starts = plan.diag_bounds
    diagonals = np.zeros((count, int(starts[-1])), dtype=complex)
    diagonals[:, starts[owner[on_diagonal]] + plan.coupling_row[on_diagonal]] = values[
        :, on_diagonal
    ]
    dense: list[Any] = []

    def dense_block(s: int) -> ComplexArray:
        if not dense:
            dense.extend(
                _scatter_blocks(
                    values, plan.coupling_flat, plan.coupling_offsets, sizes,
                    np.append(sizes[1:], 0),
                )
            )  # fmt: skip
        return np.asarray(dense[s])

    def diagonal_of(s: int) -> ComplexArray:
        return diagonals[:, starts[s] : starts[s + 1]]

    # Scalar and diagonal couplings are recognized for all slices at once (a field sweep
    # changes every coupling at every call): whether a coupling is diagonal, a multiple of
    # the identity, and the same in all elements.
    square = sizes[:-1] == sizes[1:]
    tolerance = _STRUCTURE_TOLERANCE * scale[:-1]
    diagonal_kind = square & (scale[:-1] > 0) & (off_scale[:-1] <= tolerance)
    first = starts[:-1]
    index_slice = np.repeat(np.arange(num), sizes)
    spread = np.abs(diagonals - diagonals[:, first[index_slice]]).max(axis=0, initial=0.0)
    spread = np.maximum.reduceat(spread, first) if spread.size else np.zeros(num)
    shared = np.all(diagonals == diagonals[:1], axis=0) if count else np.ones(0, dtype=bool)
    shared_all = np.logical_and.reduceat(shared, first) if shared.size else np.ones(num, bool)
    couplings = []
    for s in range(num - 1):
        shape = (int(sizes[s]), int(sizes[s + 1]))
        if not diagonal_kind[s]:
            couplings.append(
                _full_coupling(shape, float(scale[s]), functools.partial(dense_block, s))
            )
            continue
        diag = diagonal_of(s)
        if spread[s] <= tolerance[s]:
            scalars: Any = (
                complex(diag[0, 0])
                if count == 1 or shared[first[s]]
                else _PerElement(np.ascontiguousarray(diag[:, 0]))
            )
            couplings.append(_Coupling("scalar", scalar=scalars, shape=shape))
        else:
            values_s = (
                diag[0].copy()
                if count == 1 or shared_all[s]
                else _PerElement(np.ascontiguousarray(diag))
            )
            couplings.append(_Coupling("diagonal", diagonal=values_s, shape=shape))
    return tuple(couplings)


# --------------------------------------------------------------------------------------------
# The problem: everything prepared once on the host
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RGFProblem:
    """A scattering problem prepared for the recursive Green's function solver.

    Built by :func:`prepare` from a Hamiltonian and its leads: the slicing, the slice blocks
    (equal blocks stored once) and the leads' closed-form decompositions. It holds plain
    NumPy arrays only, so it can be sent to worker processes, and solves any number of
    energies with :meth:`transmission` and :meth:`smatrices`.

    Attributes
    ----------
    slicing : Slicing
        The block-tridiagonal ordering.
    leads : tuple of LeadData
        The leads.
    closed_form : tuple of (ClosedFormLead or None)
        Per lead, its decomposition into independent chains when it has one.
    num_orbitals : int
        Orbitals of the scattering region.
    num_elements : int
        Elements of a parameter batch (:func:`prepare_batch`): Hamiltonians of one structure
        whose values differ. 1 for a problem from :func:`prepare`.
    batched : bool
        Whether the problem came from :func:`prepare_batch`: its results then have a leading
        axis over the elements.
    """

    slicing: Slicing
    leads: tuple[AnyLeadData, ...]
    closed_form: tuple[ClosedFormLead | None, ...]
    num_orbitals: int
    _blocks: _SliceBlocks
    _lead_local: tuple[IntArray, ...]  # interface orbitals' positions within their slice
    # Per element, for energies where the recursion meets a singular slice.
    _hamiltonians: tuple[sp.csr_matrix, ...]
    # Per element, its leads; per lead, whether it differs between elements.
    _element_leads: tuple[tuple[AnyLeadData, ...], ...]
    _lead_varies: tuple[bool, ...]
    batched: bool = False

    @property
    def num_leads(self) -> int:
        """Number of leads."""
        return len(self.leads)

    @property
    def num_elements(self) -> int:
        """Elements of the parameter batch (1 unless made by :func:`prepare_batch`)."""
        return len(self._hamiltonians)

    def memory_per_energy(self, *, smatrix: bool = False) -> int:
        """Estimated working memory of the sweep per energy, in bytes.

        The largest slice needs a handful of ``n_max x n_max`` complex matrices (the
        Green's function, the matrix being inverted, and the inverse's workspace); each lead
        adds its self-energy and its projected rows and columns.
        """
        n_max = self.slicing.max_size
        widths = [len(lead.interface_sys) for lead in self.leads]
        total = sum(widths)
        entries = 6 * n_max * n_max + 4 * n_max * total + 2 * total * total
        entries += sum(w * w for w in widths)
        if smatrix:
            entries += 2 * total * total
        return 16 * entries

    def chunk_size(
        self,
        num_energies: int,
        xp: ModuleType,
        *,
        smatrix: bool = False,
        memory_limit: float | None = None,
        requested: int | None = None,
    ) -> int:
        """Energies per batch: as many as fit in the memory budget, capped."""
        budget = _backend.device_memory_bytes(xp) if memory_limit is None else memory_limit
        per_energy = self.memory_per_energy(smatrix=smatrix)
        fit = int(budget // per_energy)
        if fit < 1:
            device = "gpu" if xp is not np else "cpu"
            raise MemoryError(
                f"one energy needs about {per_energy / 2**20:.1f} MiB of {device} memory "
                f"(largest slice {self.slicing.max_size} orbitals), more than the "
                f"{budget / 2**20:.1f} MiB available; use solver='sparse' or a machine with "
                "more memory"
            )
        if requested is None:
            cap = _DEFAULT_MAX_CHUNK["cpu" if xp is np else "gpu"]
            if xp is np:
                # Large slices gain nothing from long batches on the CPU (each matrix is its
                # own BLAS call), while short chunks of sorted energies keep the lead
                # projections narrow (fewer open channels to pad to).
                cap = min(cap, max(8, _CPU_CHUNK_ENTRIES // max(1, self.slicing.max_size) ** 2))
        else:
            cap = requested
        return max(1, min(num_energies, fit, cap))

    def transmission(
        self,
        energies: ArrayLike,
        *,
        device: str = "cpu",
        chunk_size: int | None = None,
        workers: int = 1,
        memory_limit: float | None = None,
        blas_threads: int | None = None,
        stats: dict[str, Any] | None = None,
    ) -> FloatArray:
        """Transmission matrices for a batch of energies; see :func:`transmission_matrices`."""
        return _run(
            self,
            energies,
            smatrix=False,
            device=device,
            chunk_size=chunk_size,
            workers=workers,
            memory_limit=memory_limit,
            blas_threads=blas_threads,
            stats=stats,
        )

    def smatrices(
        self,
        energies: ArrayLike,
        *,
        device: str = "cpu",
        chunk_size: int | None = None,
        workers: int = 1,
        memory_limit: float | None = None,
        blas_threads: int | None = None,
        stats: dict[str, Any] | None = None,
    ) -> list[SMatrix]:
        """Scattering matrices for a batch of energies; see :func:`scattering_matrices`."""
        return _run(
            self,
            energies,
            smatrix=True,
            device=device,
            chunk_size=chunk_size,
            workers=workers,
            memory_limit=memory_limit,
            blas_threads=blas_threads,
            stats=stats,
        )


def prepare(
    h_sys: ArrayLike | sp.spmatrix,
    leads: Sequence[AnyLeadData],
    *,
    slicing: Slicing | None = None,
) -> RGFProblem:
    """Slice a scattering problem and extract its blocks, once for any number of energies.

    Parameters
    ----------
    h_sys : (N, N) array_like or scipy.sparse matrix
        Hermitian Hamiltonian of the scattering region (energy units).
    leads : sequence of LeadData, SelfEnergyLeadData or ModesLeadData
        The leads, numbered in this order (see :mod:`mesoscopic.solvers._embedding`).
    slicing : Slicing, optional, keyword-only
        A slicing to use instead of the automatic one (see
        :func:`mesoscopic.solvers._slicing.slice_orbitals`).

    Returns
    -------
    RGFProblem

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> chain = -(np.eye(5, k=1) + np.eye(5, k=-1))
    >>> left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> right = LeadData([[0.0]], [[-1.0]], interface_sys=[4], interface_cell=[0])
    >>> problem = prepare(chain, [left, right])
    >>> problem.slicing.num_slices, problem.slicing.max_size
    (5, 1)
    >>> problem.transmission([-1.0, 0.5])[:, 1, 0].round(12).tolist()
    [1.0, 1.0]
    """
    return _prepare([h_sys], [leads], slicing=slicing, batched=False)


def prepare_batch(
    hamiltonians: Sequence[ArrayLike | sp.spmatrix],
    leads: Sequence[Sequence[AnyLeadData]],
    *,
    slicing: Slicing | None = None,
) -> RGFProblem:
    """Prepare many problems of one structure (a parameter batch) as one RGF problem.

    The elements share the system's graph and the leads' interfaces; the values of the
    Hamiltonian (disorder, gate, field) and of the leads may differ. All elements are solved
    together in each sweep: blocks equal in all elements are stored once, the others per
    element.

    Parameters
    ----------
    hamiltonians : sequence of (N, N) array_like or scipy.sparse matrix
        The Hamiltonian of each element (same size; the slicing uses the union of their
        sparsity patterns).
    leads : sequence of sequences of LeadData, SelfEnergyLeadData or ModesLeadData
        The leads of each element: the same number, with the same interface orbitals. A lead
        whose matrices differ between elements takes its modes element by element.
    slicing : Slicing, optional, keyword-only
        A slicing to use instead of the automatic one.

    Returns
    -------
    RGFProblem
        With ``batched=True``: :meth:`RGFProblem.transmission` returns shape
        (P, n_E, n_leads, n_leads) and :meth:`RGFProblem.smatrices` a list of P lists.

    Raises
    ------
    ValueError
        No elements, Hamiltonians of different sizes, or leads that differ in number or in
        interface orbitals.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> lead = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> problem = prepare_batch([[[0.0]], [[1.0]]], [[lead, lead], [lead, lead]])
    >>> problem.transmission([0.0])[:, 0, 1, 0].round(12).tolist()   # 1 / (1 + eps^2 / 4)
    [1.0, 0.8]
    """
    if isinstance(hamiltonians, (str, bytes)) or len(hamiltonians) == 0:
        raise ValueError("hamiltonians is empty; give at least one element of the batch")
    if len(leads) != len(hamiltonians):
        raise ValueError(
            f"give the leads of every element: {len(hamiltonians)} Hamiltonians but "
            f"{len(leads)} lists of leads"
        )
    return _prepare(hamiltonians, leads, slicing=slicing, batched=True)


def _same_lead(a: AnyLeadData, b: AnyLeadData) -> bool:
    """Whether two leads are the same lead (equal matrices; functions never compare equal)."""
    if a is b:
        return True
    if not (isinstance(a, LeadData) and isinstance(b, LeadData)):
        return False
    return (
        np.array_equal(a.h_cell, b.h_cell)
        and np.array_equal(a.hop, b.hop)
        and np.array_equal(a.interface_cell, b.interface_cell)
        and (a.projectors is None) == (b.projectors is None)
        and (
            a.projectors is None
            or (
                b.projectors is not None
                and len(a.projectors) == len(b.projectors)
                and all(np.array_equal(x, y) for x, y in zip(a.projectors, b.projectors))
            )
        )
    )


def _prepare(
    hamiltonians: Sequence[Any],
    leads: Sequence[Sequence[AnyLeadData]],
    *,
    slicing: Slicing | None,
    batched: bool,
    hermitian: bool = False,
) -> RGFProblem:
    """The problem of :func:`prepare` or :func:`prepare_batch`; ``hermitian``: the
    Hamiltonians were built and checked by a finalized system (not checked again)."""
    matrices = [_system_hamiltonian(h, hermitian=hermitian) for h in hamiltonians]
    size = matrices[0].shape[0]
    for k, matrix in enumerate(matrices):
        if matrix.shape[0] != size:
            raise ValueError(
                f"the Hamiltonians of a batch must have one size; element 0 has {size} "
                f"orbitals, element {k} has {matrix.shape[0]}"
            )
    element_leads = [tuple(_checked_leads(lead_list, size)) for lead_list in leads]
    lead_list = element_leads[0]
    for k, other in enumerate(element_leads[1:], start=1):
        if len(other) != len(lead_list):
            raise ValueError(
                f"every element of a batch needs the same leads; element 0 has "
                f"{len(lead_list)}, element {k} has {len(other)}"
            )
        for i, (a, b) in enumerate(zip(lead_list, other)):
            if not np.array_equal(a.interface_sys, b.interface_sys):
                raise ValueError(
                    f"lead {i} attaches to other orbitals in element {k} than in element 0; "
                    "a batch shares the system's structure"
                )
    varies = tuple(
        not all(_same_lead(lead, other[i]) for other in element_leads[1:])
        for i, lead in enumerate(lead_list)
    )
    row, col, data = _common_pattern(matrices)
    if slicing is not None and not isinstance(slicing, Slicing):
        raise TypeError(f"slicing must be a Slicing, got {type(slicing).__name__}")
    # Sliced where any element couples; the plan is reused by calls with the same pattern.
    interfaces = [np.asarray(lead.interface_sys, dtype=np.int64) for lead in lead_list]
    plan = _block_plan(row, col, data, size, interfaces, slicing)
    slicing = plan.slicing
    blocks = _extract_blocks(plan, data)
    lead_local = tuple(plan.local[lead.interface_sys] for lead in lead_list)
    return RGFProblem(
        slicing=slicing,
        leads=tuple(lead_list),
        closed_form=tuple(
            closed_form_lead(lead.h_cell, lead.hop)
            if isinstance(lead, LeadData) and not vary
            else None
            for lead, vary in zip(lead_list, varies)
        ),
        num_orbitals=int(size),
        _blocks=blocks,
        _lead_local=lead_local,
        _hamiltonians=tuple(matrices),
        _element_leads=tuple(element_leads),
        _lead_varies=varies,
        batched=batched,
    )


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def _needed_pairs(problem: RGFProblem, smatrix: bool) -> list[tuple[int, int]]:
    count = problem.num_leads
    if smatrix:
        return [(i, j) for i in range(count) for j in range(count)]
    if count == 2:
        # Only T_10 is needed (T_01 = T_10 in a two-terminal system); rows are taken from the
        # lead reached last so that its row projection is formed as late as possible. Its
        # own block checks T (see _transmission_from_blocks); it costs one product where that
        # lead sits in the last slice.
        first, second = problem.slicing.lead_slices
        return [(0, 1), (0, 0)] if first > second else [(1, 0), (1, 1)]
    return [(i, j) for i in range(count) for j in range(count) if i != j]


def _to_device_value(xp: ModuleType, value: Any) -> Any:
    if isinstance(value, _PerElement):
        return _PerElement(_backend.to_device(xp, value.array))
    return _backend.to_device(xp, value)


def _dagger(value: Any) -> Any:
    """Conjugate transpose over the last two axes (of every element of a stack)."""
    if isinstance(value, _PerElement):
        return _PerElement(value.array.conj().transpose(0, 2, 1).copy())
    return value.conj().T.copy()


@dataclass(frozen=True, eq=False)
class _BatchCoupling:
    """A coupling for one chunk: values shared, or (B, ...) gathered per batch entry.

    ``scalar`` is a complex or a (B,) array; ``first`` the diagonal ((n,) or (B, n)) or the
    dense ``V`` ((n_prev, n) or (B, n_prev, n)); ``second`` the dense ``V^dagger``, or for a
    diagonal coupling its weights ``conj(d_i) d_j`` (None: made when used).
    """

    kind: str
    scalar: Any
    first: Any
    second: Any
    shape: tuple[int, int]


def _device_couplings(
    xp: ModuleType, blocks: _SliceBlocks
) -> list[tuple[_Coupling, Any, Any, Any]]:
    """Each coupling on the device: (coupling, scalar, V or its diagonal, V^dagger or the
    diagonal's weights)."""
    couplings: list[tuple[_Coupling, Any, Any, Any]] = []
    # A diagonal coupling d turns G into conj(d_i) G_ij d_j: its weights are kept, once
    # per distinct d (a Peierls phase in the Landau gauge: one for all slices), within
    # a budget of entries; beyond it they are made when used.
    weights: dict[bytes, Any] = {}
    budget = _DIAGONAL_WEIGHT_ENTRIES
    for c in blocks.couplings:
        scalar = c.scalar
        if isinstance(scalar, _PerElement):
            scalar = _to_device_value(xp, scalar)
        if c.kind == "diagonal":
            d = c.diagonal.array if isinstance(c.diagonal, _PerElement) else c.diagonal
            key = d.tobytes() + repr(d.shape).encode()
            if key not in weights and d.size * d.shape[-1] <= budget:
                budget -= d.size * d.shape[-1]
                w = d.conj()[..., :, None] * d[..., None, :]
                weights[key] = _to_device_value(
                    xp, _PerElement(w) if isinstance(c.diagonal, _PerElement) else w
                )
            first = _to_device_value(xp, c.diagonal)
            couplings.append((c, scalar, first, weights.get(key)))
        elif c.kind == "sparse" and xp is np:
            v = sp.csr_matrix(c.dense)
            couplings.append((c, scalar, v, v.conj().T.tocsr()))
        elif c.kind in ("dense", "sparse"):
            v = _to_device_value(xp, c.dense)
            dense = _Coupling("dense", dense=c.dense, shape=c.shape)
            couplings.append((dense, scalar, v, _dagger(v)))
        else:
            couplings.append((c, scalar, None, None))
    return couplings


class _DeviceBlocks:
    """Slice blocks copied to the device once."""

    def __init__(self, xp: ModuleType, blocks: _SliceBlocks) -> None:
        self.templates = [_to_device_value(xp, t) for t in blocks.templates]
        self.template_is_zero = [
            not np.any(t.array if isinstance(t, _PerElement) else t) for t in blocks.templates
        ]
        self.diagonals = [_to_device_value(xp, d) for d in blocks.diagonals]
        # On the CPU the couplings of the last blocks are reused while the plan reuses them
        # (unchanged values: a disorder or gate loop).
        self.couplings: list[tuple[_Coupling, Any, Any, Any]] = (
            _kept_flat("device couplings", blocks.couplings, lambda: _device_couplings(np, blocks))
            if xp is np
            else _device_couplings(xp, blocks)
        )
        self.template_of_slice = blocks.template_of_slice
        self._shared: dict[int, _BatchCoupling] = {}
        self._flat: _FlatBlocks | None = None
        self.source = blocks
        self._lock = threading.Lock()

    def flat(self, kinds: dict[str, int], sizes: IntArray) -> _FlatBlocks:
        """The blocks as the compiled recursion reads them (made once, on the CPU)."""
        with self._lock:
            if self._flat is None:
                self._flat = _flat_blocks(self, sizes, kinds)
            return self._flat

    def coupling(self, index: int, elements: Any) -> _BatchCoupling:
        """Coupling ``V_index`` for a chunk whose entries belong to ``elements``."""
        c, scalar, first, second = self.couplings[index]
        if elements is None:
            # One element: the same object for every chunk.
            shared = self._shared.get(index)
            if shared is None:
                shared = self._shared[index] = _BatchCoupling(
                    c.kind, scalar, first, second, c.shape
                )
            return shared
        return _BatchCoupling(
            c.kind, _at(scalar, elements), _at(first, elements), _at(second, elements), c.shape
        )


def _apply_vdag(xp: ModuleType, coupling: _BatchCoupling, q: Any) -> Any:
    """``V^dagger q`` for q of shape (B, n_prev, w) -> (B, n, w)."""
    kind = coupling.kind
    if kind == "scalar":
        scalar = coupling.scalar
        if isinstance(scalar, complex):
            return q * np.conj(scalar)
        return q * scalar.conj()[:, None, None]
    if kind == "diagonal":
        return q * coupling.first.conj()[..., :, None]
    if kind == "sparse":
        return _sparse_times(coupling.second, q)
    if kind == "dense":
        return xp.matmul(coupling.second, q)
    return xp.zeros((q.shape[0], coupling.shape[1], q.shape[2]), dtype=complex)


def _apply_v_right(xp: ModuleType, coupling: _BatchCoupling, p: Any) -> Any:
    """``p V`` for p of shape (B, a, n_prev) -> (B, a, n)."""
    kind = coupling.kind
    if kind == "scalar":
        scalar = coupling.scalar
        if isinstance(scalar, complex):
            return p * scalar
        return p * scalar[:, None, None]
    if kind == "diagonal":
        return p * coupling.first[..., None, :]
    if kind == "sparse":
        return _times_sparse(p, coupling.first)
    if kind == "dense":
        return xp.matmul(p, coupling.first)
    return xp.zeros((p.shape[0], p.shape[1], coupling.shape[1]), dtype=complex)


def _sparse_times(op: sp.csr_matrix, q: ComplexArray) -> ComplexArray:
    """``op @ q[b]`` for every b: a sparse (n, m) matrix times a (B, m, w) stack."""
    batch, m, w = q.shape
    out = op @ q.transpose(1, 0, 2).reshape(m, batch * w)
    return np.ascontiguousarray(np.asarray(out).reshape(op.shape[0], batch, w).transpose(1, 0, 2))


def _times_sparse(p: ComplexArray, op: sp.csr_matrix) -> ComplexArray:
    """``p[b] @ op`` for every b: a (B, a, m) stack times a sparse (m, n) matrix."""
    batch, a, m = p.shape
    out = op.T @ p.reshape(batch * a, m).T  # (n, B a): the transpose of the products
    return np.ascontiguousarray(np.asarray(out).T).reshape(batch, a, op.shape[1])


class _SingularSlice(ValueError):
    """A slice's partial Green's function has a pole at some energies of the batch."""

    def __init__(self, energies: Any, indices: NDArray[np.intp]) -> None:
        super().__init__(
            f"the recursion meets a singular slice at energies {np.asarray(energies).tolist()}:"
            " a part of the system cut off by the slicing has a bound state there"
        )
        self.indices = indices


def _singular(energies: Any, index: Any) -> _SingularSlice:
    indices = np.atleast_1d(np.asarray(index, dtype=np.intp))
    return _SingularSlice(np.asarray(energies)[indices], indices)


@functools.lru_cache(maxsize=64)
def _inverse_routines(n: int) -> tuple[Any, Any, int]:
    """LAPACK's complex getrf and getri, and getri's workspace for ``n x n`` matrices."""
    getrf, getri, getri_lwork = la_lapack.get_lapack_funcs(
        ("getrf", "getri", "getri_lwork"), dtype=np.complex128
    )
    return getrf, getri, max(int(getri_lwork(n)[0].real), 3 * n, 1)


def _cpu_inverse(matrix: ComplexArray, energies: FloatArray) -> ComplexArray:
    """Inverse of every matrix of a (B, n, n) batch, overwriting it.

    LAPACK's LU with partial pivoting and its in-place inverse (getrf + getri, ``8 n^3``
    flops) run on each matrix in turn; this is about twice as fast as NumPy's batched
    inverse, which solves against the identity (``32/3 n^3`` flops) and copies. A C-ordered
    matrix is the Fortran-ordered storage of its transpose, and ``inv(A^T)^T = inv(A)``, so
    the factorization runs in place without copies. Small matrices, where the per-call cost
    dominates, use NumPy's batched routine.

    Conditioning: a matrix whose condition number ``||A||_inf ||A^-1||_inf`` (from the
    explicit inverse) is below ``1 / _SLICE_RCOND`` is accepted; the few others are decided
    on the row-equilibrated condition number (:func:`_check_conditioning`), which keeps
    orbitals at very different energy scales (a hard wall) from counting as ill conditioned.
    """
    batch, n, _ = matrix.shape
    if n < _LAPACK_LOOP_MIN_SIZE:
        norms = _one_norms(np, matrix)
        try:
            result = np.asarray(np.linalg.inv(matrix), dtype=complex)
        except np.linalg.LinAlgError:
            for k in range(batch):
                if np.linalg.cond(matrix[k]) > 1 / np.finfo(float).eps:
                    raise _singular(energies, k) from None
            raise
        _check_conditioning(np, norms, result, energies)
        return result
    getrf, getri, lwork = _inverse_routines(n)
    moduli = np.abs(matrix)
    norms = moduli.sum(axis=-1).max(axis=-1)
    for k in range(batch):
        lu, piv, info = getrf(matrix[k].T, overwrite_a=1)
        if info > 0:
            raise _singular(energies, k)
        inverse, info = getri(lu, piv, lwork=lwork, overwrite_lu=1)
        if info != 0:
            raise _singular(energies, k)
        if not np.shares_memory(inverse, matrix):
            matrix[k] = inverse.T
    norms *= np.abs(matrix).sum(axis=-1).max(axis=-1)
    if not (norms < 1.0 / _SLICE_RCOND).all():  # NaN too
        doubtful = np.flatnonzero(~(norms < 1.0 / _SLICE_RCOND))
        try:
            _check_conditioning(np, _one_norms(np, moduli[doubtful]), matrix[doubtful], energies)
        except _SingularSlice as error:
            raise _singular(energies, doubtful[error.indices]) from None
    return matrix


def _one_norms(xp: ModuleType, matrix: Any) -> tuple[Any, Any]:
    """Row scales ``r`` and 1-norms of the row-equilibrated matrices ``diag(1/r) A``.

    ``r_i`` is the largest modulus in row ``i`` (B, n); with the inverse, the condition
    number of the equilibrated matrix follows (:func:`_check_conditioning`). Equilibrating
    keeps orbitals at very different energy scales (a hard wall of onsite 1e10) from
    looking ill conditioned. A zero row gets the scale of the smallest normal number (the
    matrix is then singular, which its factorization reports).
    """
    moduli = xp.abs(matrix)
    rows = moduli.max(axis=-1)
    xp.maximum(rows, _TINY, out=rows)
    moduli /= rows[..., None]
    return rows, moduli.sum(axis=-2).max(axis=-1)


def _check_conditioning(xp: ModuleType, norms: Any, inverse: Any, energies: Any) -> None:
    """Raise :class:`_SingularSlice` for the matrices with ``rcond < _SLICE_RCOND``.

    ``rcond = 1 / (||D^-1 A||_1 ||A^-1 D||_1)`` with ``D`` the row scales, computed from the
    explicit inverse for free. A slice matrix at a pole of its partial Green's function is
    singular, but rounding rarely leaves an exactly zero pivot: its inverse is then finite
    and wrong (by up to 100% in T). NaN and infinite inverses count as singular too.
    """
    rows, norm = norms
    condition = (xp.abs(inverse).sum(axis=-2) * rows).max(axis=-1)
    condition *= norm
    good = condition < 1.0 / _SLICE_RCOND
    if xp is not np:
        good = _backend.to_host(xp, good)
    if not good.all():
        raise _singular(_backend.to_host(xp, energies), np.flatnonzero(~good))


def _device_inverse(xp: ModuleType) -> Any:
    def inverse(matrix: Any, energies: Any) -> Any:
        norms = _one_norms(xp, matrix)
        result = xp.linalg.inv(matrix)
        _check_conditioning(xp, norms, result, energies)
        return result

    return inverse


def _rescale(xp: ModuleType, array: Any) -> tuple[Any, Any, Any]:
    """Divide each batch entry by a power of two near its largest modulus (exact).

    Returns the rescaled array, the (B,) exponents removed and the (B,) factors applied.
    """
    batch = array.shape[0]
    if array.size == 0:
        return array, xp.zeros(batch), xp.ones(batch)
    peak = xp.max(xp.abs(array).reshape(batch, -1), axis=1)
    _, exponent = xp.frexp(xp.where(peak > 0, peak, 1.0))
    factor = xp.ldexp(xp.ones(batch), -exponent)
    scaled = array * factor[:, None, None]
    scaled += _FLUSH
    scaled -= _FLUSH
    return scaled, exponent.astype(float), factor


_KERNEL_CHOICES = ("auto", "compiled", "numpy")


def _kernel() -> Any:
    """The compiled recursion (:mod:`._rgf_kernel`), or None for the NumPy recursion.

    ``MESOSCOPIC_RGF_KERNEL``: ``auto`` (the default) takes the compiled recursion once it
    is compiled (on disk, or in this process) and until then starts its compilation in a
    separate process and uses NumPy's; ``compiled`` compiles it in this process if needed
    (about 15 s, once per installation); ``numpy`` never uses it. Without numba
    (``mesoscopic[fast]``) the NumPy recursion runs; both give the same numbers.
    """
    choice = os.environ.get("MESOSCOPIC_RGF_KERNEL", "auto").strip().lower()
    if choice not in _KERNEL_CHOICES:
        raise ValueError(
            f"MESOSCOPIC_RGF_KERNEL={choice!r} is not a recursion; valid are 'auto' (the "
            "default), 'compiled' (numba, when installed) and 'numpy'"
        )
    if choice == "numpy":
        return None
    try:
        from . import _rgf_kernel
    except (ImportError, RuntimeError, OSError, AttributeError, ValueError):
        # No numba, numba without a place for its compiled cache, or a SciPy without
        # its Cython LAPACK: the NumPy recursion.
        return None
    if choice == "compiled" or _rgf_kernel.ready():
        return _rgf_kernel
    _rgf_kernel.build_in_background()
    return None


@dataclass(frozen=True, eq=False)
class _FlatCouplings:
    """The couplings as :func:`._rgf_kernel.sweep` reads them, for both directions.

    Coupling ``c`` stores ``V`` and the form of ``V^dagger`` the kernel applies (scalar,
    diagonal, dense or sparse values), per element where the elements differ (stride: the
    size of one element's values; 0 where shared). Taken from the last slice to the first,
    the coupling is ``V^dagger``: its ``V`` and ``V^dagger`` parts swap (a sparse one also
    has its conjugate transpose's pattern).
    """

    kind: IntArray
    data: ComplexArray
    stride: IntArray
    v_start: tuple[IntArray, IntArray]  # forward, reverse
    h_start: tuple[IntArray, IntArray]
    ptr_start: tuple[IntArray, IntArray]
    sparse_ptr: IntArray
    sparse_idx: IntArray


@dataclass(frozen=True, eq=False)
class _FlatBlocks:
    """The slice blocks as flat arrays with offsets, as :func:`._rgf_kernel.sweep` reads them.

    Every value is stored once per element where it differs between the elements of a
    parameter batch (stride: its size) and once otherwise (stride 0).
    """

    sizes: IntArray
    template_data: ComplexArray
    template_start: IntArray
    template_stride: IntArray  # -1: a zero template
    template_of_slice: IntArray
    diagonal_data: ComplexArray
    diagonal_start: IntArray
    diagonal_stride: IntArray
    couplings: _FlatCouplings


class _Packer:
    """Appends arrays to one flat complex array, recording where each starts."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def add(self, value: Any) -> tuple[int, int]:
        """Append ``value`` (an array or :class:`_PerElement`); returns (start, stride)."""
        per_element = isinstance(value, _PerElement)
        array = value.array if per_element else value
        start = self.size
        self.parts.append(array.reshape(-1))
        self.size += array.size
        return start, (array.size // array.shape[0] if per_element else 0)

    def data(self) -> ComplexArray:
        if not self.parts:
            return np.zeros(0, dtype=complex)
        return np.concatenate(self.parts).astype(complex, copy=False)


def _flat_couplings(dev: _DeviceBlocks, kinds: dict[str, int]) -> _FlatCouplings:
    values = _Packer()
    count = len(dev.couplings)
    kind = np.zeros(count, dtype=np.int64)
    stride = np.zeros(count, dtype=np.int64)
    starts = np.zeros((2, count), dtype=np.int64)  # V and V^dagger, forward
    sparse = np.zeros((2, count), dtype=np.int64)  # sparse: row pointers, forward / reverse
    pointers: list[Any] = [np.zeros(1, dtype=np.int64)]
    indices: list[Any] = []
    ptr_size, idx_size = 1, 0
    for index, (c, scalar, first, second) in enumerate(dev.couplings):
        kind[index] = kinds[c.kind]
        if c.kind == "zero":
            continue
        if c.kind == "sparse":
            # Values at their index's position plus the start; pointers into all indices.
            for part, v in enumerate((first, second)):
                sparse[part, index] = ptr_size
                pointers.append(v.indptr.astype(np.int64) + idx_size)
                indices.append(v.indices)
                ptr_size += v.indptr.size
                starts[part, index] = values.add(v.data)[0] - idx_size
                idx_size += v.indices.size
            continue
        if c.kind == "scalar":
            value = np.asarray(scalar.array if isinstance(scalar, _PerElement) else scalar)
            value = value[..., None].astype(complex)  # (1,) or (P, 1)
            pair: Any = np.stack([value, value.conj()], axis=-2)
        elif c.kind == "diagonal":
            value = first.array if isinstance(first, _PerElement) else first
            pair = np.stack([value, value.conj()], axis=-2)
        else:
            v = first.array if isinstance(first, _PerElement) else first
            vh = second.array if isinstance(second, _PerElement) else second
            lead = v.shape[:-2]
            pair = np.stack([v.reshape(*lead, -1), vh.reshape(*lead, -1)], axis=-2)
        per_element = isinstance(first if c.kind != "scalar" else scalar, _PerElement)
        start, stride[index] = values.add(_PerElement(pair) if per_element else pair)
        starts[0, index] = start
        starts[1, index] = start + pair.shape[-1]
    data = values.data()
    # Reversed, V^dagger is the coupling: the parts swap; a sparse one uses its second part.
    return _FlatCouplings(
        kind=kind,
        data=data,
        stride=stride,
        v_start=(starts[0], starts[1]),
        h_start=(starts[1], starts[0]),
        ptr_start=(sparse[0], sparse[1]),
        sparse_ptr=np.concatenate(pointers),
        sparse_idx=np.concatenate([*indices, np.zeros(1, dtype=np.int64)]).astype(np.int64),
    )


#: The last flattened templates and couplings, by the tuples they were made from (which
#: a plan reuses while the values are unchanged).
_FLAT_KEPT: dict[str, tuple[Any, Any]] = {}
_FLAT_LOCK = threading.Lock()


def _kept_flat(name: str, source: Any, make: Callable[[], Any]) -> Any:
    with _FLAT_LOCK:
        kept = _FLAT_KEPT.get(name)
        if kept is not None and kept[0] is source:
            return kept[1]
    value = make()
    with _FLAT_LOCK:
        _FLAT_KEPT[name] = (source, value)
    return value


def _flat_blocks(dev: _DeviceBlocks, sizes: IntArray, kinds: dict[str, int]) -> _FlatBlocks:
    """:class:`_FlatBlocks` of ``dev``."""

    def templates() -> tuple[ComplexArray, IntArray, IntArray]:
        packer = _Packer()
        start = np.zeros(len(dev.templates), dtype=np.int64)
        stride = np.zeros(len(dev.templates), dtype=np.int64)
        for t, (template, zero) in enumerate(zip(dev.templates, dev.template_is_zero)):
            start[t], stride[t] = (0, -1) if zero else packer.add(template)
        return packer.data(), start, stride

    template_data, template_start, template_stride = _kept_flat(
        "templates", dev.source.templates, templates
    )
    couplings = _kept_flat("couplings", dev.source.couplings, lambda: _flat_couplings(dev, kinds))
    diagonals = _Packer()
    placed = np.array([diagonals.add(d) for d in dev.diagonals], dtype=np.int64).reshape(-1, 2)
    return _FlatBlocks(
        sizes=np.asarray(sizes, dtype=np.int64),
        template_data=template_data,
        template_start=template_start,
        template_stride=template_stride,
        template_of_slice=np.asarray(dev.template_of_slice, dtype=np.int64),
        diagonal_data=diagonals.data(),
        diagonal_start=placed[:, 0].copy(),
        diagonal_stride=placed[:, 1].copy(),
        couplings=couplings,
    )


#: Fewest slices for which a single entry is swept from both ends at once (by two threads).
_MIN_TWO_SIDED_SLICES = 8


@dataclass
class _KernelLeads:
    """The leads' terms of one chunk as the compiled recursion reads them."""

    local_idx: IntArray
    local_start: IntArray
    sigma: ComplexArray
    sigma_start: IntArray
    columns: ComplexArray
    column_start: IntArray
    width: IntArray
    rows: ComplexArray
    row_start: IntArray
    height: IntArray


def _kernel_leads(
    problem: RGFProblem, terms: Sequence[_LeadTerms], pairs: Sequence[tuple[int, int]]
) -> _KernelLeads:
    local = [np.asarray(idx, dtype=np.int64) for idx in problem._lead_local]
    row_leads = {i for i, _ in pairs}
    col_leads = {m for _, m in pairs}
    num_leads = len(terms)
    width = np.zeros(num_leads, dtype=np.int64)
    height = np.zeros(num_leads, dtype=np.int64)
    sigma, columns, rows = _Packer(), _Packer(), _Packer()
    sigma_start, column_start, row_start = [], [], []
    for k, term in enumerate(terms):
        sigma_start.append(sigma.add(term.selfenergy)[0])
        column_start.append(0)
        row_start.append(0)
        if k in col_leads:
            width[k] = term.columns.shape[2]
            column_start[-1] = columns.add(term.columns)[0]
        if k in row_leads:
            height[k] = term.rows.shape[2]
            conj_rows = np.ascontiguousarray(term.rows.conj().transpose(0, 2, 1))
            row_start[-1] = rows.add(conj_rows)[0]
    return _KernelLeads(
        local_idx=np.concatenate([*local, np.zeros(0, dtype=np.int64)]),
        local_start=np.concatenate([[0], np.cumsum([len(idx) for idx in local])]).astype(np.int64),
        sigma=sigma.data(),
        sigma_start=np.asarray(sigma_start, dtype=np.int64),
        columns=columns.data(),
        column_start=np.asarray(column_start, dtype=np.int64),
        width=width,
        rows=rows.data(),
        row_start=np.asarray(row_start, dtype=np.int64),
        height=height,
    )


@dataclass
class _KernelRun:
    """One call of the compiled recursion: its outputs, and the final state if kept."""

    pairs: list[tuple[int, int]]
    block_data: ComplexArray
    block_start: IntArray
    exponents: FloatArray
    green: ComplexArray
    cols: ComplexArray
    rows: ComplexArray
    state_exponents: FloatArray
    status: IntArray
    width: IntArray
    height: IntArray


def _kernel_run(
    kernel: ModuleType,
    flat: _FlatBlocks,
    leads: _KernelLeads,
    energies: FloatArray,
    element_of: IntArray,
    order: IntArray,
    step_coupling: IntArray,
    lead_position: IntArray,
    pairs: list[tuple[int, int]],
    keep_state: bool,
    width: IntArray,
    height: IntArray,
    reverse: bool = False,
) -> tuple[_KernelRun, Callable[[int, int], float]]:
    """Arguments and outputs of the compiled recursion over the positions ``order``
    (``reverse``: from the last slice towards the first).

    Returns the outputs and a function running the entries ``first <= b < last``.
    """
    couplings = flat.couplings
    batch = int(energies.shape[0])
    num_leads = len(lead_position)
    placed = np.flatnonzero(lead_position < order.size)
    lead_order = placed[np.argsort(lead_position[placed], kind="stable")].astype(np.int64)
    lead_ptr = np.searchsorted(lead_position[lead_order], np.arange(order.size + 1)).astype(
        np.int64
    )
    block_sizes = [batch * height[i] * width[m] for i, m in pairs]
    block_start = np.concatenate([[0], np.cumsum(block_sizes)]).astype(np.int64)
    n_last = int(flat.sizes[order[-1]]) if keep_state else 0
    run = _KernelRun(
        pairs=pairs,
        block_data=np.zeros(int(block_start[-1]), dtype=complex),
        block_start=block_start,
        exponents=np.zeros((len(pairs), batch)),
        green=np.zeros(batch * n_last * n_last, dtype=complex),
        cols=np.zeros(batch * n_last * int(width.sum()), dtype=complex),
        rows=np.zeros(batch * n_last * int(height.sum()), dtype=complex),
        state_exponents=np.zeros((2, num_leads, batch)),
        status=np.zeros(batch, dtype=np.int64),
        width=width,
        height=height,
    )
    getrf, getri = kernel.LAPACK
    arguments = (
        np.asarray(energies, dtype=float),
        element_of,
        flat.sizes,
        order,
        flat.template_data,
        flat.template_start,
        flat.template_stride,
        flat.template_of_slice,
        flat.diagonal_data,
        flat.diagonal_start,
        flat.diagonal_stride,
        couplings.kind,
        couplings.data,
        couplings.v_start[reverse],
        couplings.h_start[reverse],
        couplings.stride,
        couplings.sparse_ptr,
        couplings.ptr_start[reverse],
        couplings.sparse_idx,
        step_coupling,
        lead_position,
        lead_ptr,
        lead_order,
        leads.local_idx,
        leads.local_start,
        leads.sigma,
        leads.sigma_start,
        leads.columns,
        leads.column_start,
        width,
        leads.rows,
        leads.row_start,
        height,
        np.array(pairs, dtype=np.int64).reshape(-1, 2),
        run.block_data,
        block_start[:-1].copy(),
        run.exponents,
        keep_state,
        run.green,
        run.cols,
        run.rows,
        run.state_exponents,
        run.status,
    )
    # Writable C-ordered arrays of fixed types only: one compiled signature serves all.
    checked = tuple(
        np.require(a, requirements=["C", "W"]) if isinstance(a, np.ndarray) else a
        for a in arguments
    )
    constants = (_RESCALE_INTERVAL, _FLUSH_INTERVAL, _FLUSH, 1.0 / _SLICE_RCOND, getrf, getri)

    def entries(first: int, last: int) -> float:
        return float(kernel.sweep(*checked, first, last, *constants))

    return run, entries


def _run_blocks(run: _KernelRun, batch: int) -> tuple[dict[Any, Any], dict[Any, Any]]:
    blocks: dict[tuple[int, int], Any] = {}
    scales: dict[tuple[int, int], Any] = {}
    for p, (i, m) in enumerate(run.pairs):
        shape = (batch, int(run.height[i]), int(run.width[m]))
        blocks[(i, m)] = run.block_data[run.block_start[p] : run.block_start[p + 1]].reshape(shape)
        scales[(i, m)] = run.exponents[p]
    return blocks, scales


def _run_state(run: _KernelRun, batch: int, n: int) -> tuple[Any, list[Any], list[Any]]:
    """The kept ``G`` (B, n, n), per lead ``G columns`` (B, n, w) and ``rows G`` (B, h, n)."""
    green = run.green.reshape(batch, n, n)
    cols, rows = [], []
    col_at = row_at = 0
    for w, h in zip(run.width, run.height):
        cols.append(run.cols[col_at : col_at + batch * n * w].reshape(batch, n, w))
        rows.append(run.rows[row_at : row_at + batch * h * n].reshape(batch, h, n))
        col_at += batch * n * w
        row_at += batch * h * n
    return green, cols, rows


def _dense_coupling(coupling: _BatchCoupling, batch: int) -> ComplexArray:
    """The coupling ``V`` as a dense (B, rows, cols) stack."""
    rows, cols = coupling.shape
    kind = coupling.kind
    if kind == "zero":
        return np.zeros((batch, rows, cols), dtype=complex)
    if kind == "scalar":
        scalar = np.broadcast_to(np.asarray(coupling.scalar, dtype=complex), (batch,))
        return scalar[:, None, None] * np.eye(rows, dtype=complex)
    if kind == "diagonal":
        d = np.broadcast_to(coupling.first, (batch, rows))
        out = np.zeros((batch, rows, cols), dtype=complex)
        out[:, np.arange(rows), np.arange(rows)] = d
        return out
    if kind == "sparse":
        return np.broadcast_to(coupling.first.toarray(), (batch, rows, cols))
    return np.broadcast_to(coupling.first, (batch, rows, cols))


def _open_at(terms: Sequence[_LeadTerms], side: NDArray[np.bool_]) -> bool:
    """Whether at every entry a lead of `side` has an open channel.

    A half of the system joined to no open lead is a closed box: near its eigenvalues the
    Dyson join of two halves loses digits that the sweep from one end, whose partial
    systems all hold the open leads, keeps.
    """
    counts = [np.asarray(terms[int(k)].num_modes) for k in np.flatnonzero(side)]
    return bool(counts) and bool(np.all(np.any(np.array(counts) > 0, axis=0)))


def _compiled_sweep(
    kernel: ModuleType,
    problem: RGFProblem,
    dev: _DeviceBlocks,
    energies: FloatArray,
    terms: Sequence[_LeadTerms],
    pairs: Sequence[tuple[int, int]],
    elements: Any,
    threads: int,
) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], Any], float]:
    """:func:`_sweep` on the CPU by the compiled recursion.

    Entries are split over ``threads``; with at least two threads per entry (one energy of
    one system on two cores), all leads at the two ends and an open one at each, each entry
    is swept from both ends at once and the halves are joined in the middle
    (:func:`_join`).
    """
    slicing = problem.slicing
    num_slices = slicing.num_slices
    batch = int(energies.shape[0])
    lead_slice = np.asarray(slicing.lead_slices, dtype=np.int64)
    leads = _kernel_leads(problem, terms, pairs)
    element_of = (
        np.zeros(batch, dtype=np.int64) if elements is None else np.asarray(elements, np.int64)
    )
    flat = dev.flat(kernel.KINDS, slicing.sizes)
    forward = np.arange(num_slices, dtype=np.int64)
    steps = np.maximum(forward - 1, 0)
    two_sided = (
        2 * batch <= threads
        and num_slices >= _MIN_TWO_SIDED_SLICES
        and bool(np.all((lead_slice == 0) | (lead_slice == num_slices - 1)))
        and _open_at(terms, lead_slice == 0)
        and _open_at(terms, lead_slice == num_slices - 1)
    )
    if not two_sided:
        run, entries = _kernel_run(
            kernel,
            flat,
            leads,
            energies,
            element_of,
            forward,
            steps,
            lead_slice,
            list(pairs),
            False,
            leads.width,
            leads.height,
        )
        threads = max(1, min(threads, batch))
        if threads == 1:
            flops = entries(0, batch)
        else:
            bounds = np.linspace(0, batch, threads + 1).astype(int)
            flops = sum(
                _chunk_pool(threads).map(
                    lambda k: entries(int(bounds[k]), int(bounds[k + 1])), range(threads)
                )
            )
        if run.status.any():
            raise _singular(energies, np.flatnonzero(run.status))
        blocks, scales = _run_blocks(run, batch)
        return blocks, scales, flops
    # Cut after slice `cut`, balancing the cubic cost of the two halves.
    cost = np.cumsum(slicing.sizes.astype(float) ** 3)
    cut = int(np.clip(np.searchsorted(cost, cost[-1] / 2), 1, num_slices - 3))
    left = lead_slice == 0
    runs = []
    for side in (left, ~left):
        width = np.where(side, leads.width, 0)
        height = np.where(side, leads.height, 0)
        inside = [(i, m) for i, m in pairs if side[i] and side[m]]
        # A half's own leads join at its first position; the others never (beyond the last).
        position = np.where(side, 0, num_slices)
        if side is left:
            order, step = forward[: cut + 1], steps[: cut + 1]
        else:
            order = forward[:cut:-1].copy()
            step = order.copy()  # into slice s from s + 1: coupling s, reversed
        runs.append(
            _kernel_run(
                kernel,
                flat,
                leads,
                energies,
                element_of,
                order,
                step,
                position.astype(np.int64),
                inside,
                True,
                width,
                height,
                reverse=side is not left,
            )
        )
    # Every entry's two halves side by side (2 * batch <= threads).
    halves = [(entries, b) for _, entries in runs for b in range(batch)]
    flops = sum(_chunk_pool(len(halves)).map(lambda task: task[0](task[1], task[1] + 1), halves))
    status = runs[0][0].status | runs[1][0].status
    if status.any():
        raise _singular(energies, np.flatnonzero(status))
    coupling = _dense_coupling(dev.coupling(cut, elements), batch)
    blocks, scales, more = _join(
        runs[0][0],
        runs[1][0],
        coupling,
        pairs,
        left,
        batch,
        int(slicing.sizes[cut]),
        int(slicing.sizes[cut + 1]),
        energies,
    )
    return blocks, scales, flops + more


def _join(
    left_run: _KernelRun,
    right_run: _KernelRun,
    v: ComplexArray,
    pairs: Sequence[tuple[int, int]],
    left: NDArray[np.bool_],
    batch: int,
    n_left: int,
    n_right: int,
    energies: FloatArray,
) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], Any], float]:
    """The blocks of the whole system from two half sweeps meeting at ``V`` (B, n_l, n_r).

    ``g_l`` (the left part's Green's function at its last slice) and ``g_r`` (the right
    part's at its first) couple through ``V``; with ``P = g_l V`` and ``Q = g_r V^dagger``,
    the Dyson equation gives the whole system's columns at the cut: ``X = (1 - P Q)^-1
    G_l columns`` for a left lead's columns, ``Y = (1 - Q P)^-1 G_r columns`` for a right
    lead's. Then a block between two left leads is the left part's block plus
    ``rows V Q X``, between a right row and a left column ``rows V^dagger X``, and the
    mirror images for right columns. A near-singular ``1 - P Q`` (a pole of a half at an
    energy where the whole has none) hands the energy to the sparse solver, as a singular
    slice does.
    """
    g_left, cols_left, rows_left = _run_state(left_run, batch, n_left)
    g_right, cols_right, rows_right = _run_state(right_run, batch, n_right)
    vh = v.conj().transpose(0, 2, 1)
    p = g_left @ v
    q = g_right @ vh
    flops = 16.0 * batch * n_left * n_right * (n_left + n_right)
    inverses = []
    for a, b, n in ((p, q, n_left), (q, p, n_right)):
        matrix = -(a @ b)
        matrix[:, np.arange(n), np.arange(n)] += 1.0
        inverses.append(_cpu_inverse(matrix, energies))
        flops += 16.0 * batch * n**3
    x_inv, y_inv = inverses
    blocks: dict[tuple[int, int], Any] = {}
    scales: dict[tuple[int, int], Any] = {}
    left_blocks, left_scales = _run_blocks(left_run, batch)
    right_blocks, right_scales = _run_blocks(right_run, batch)
    solved: dict[int, Any] = {}
    for i, m in pairs:
        if m not in solved:
            solved[m] = (x_inv @ cols_left[m]) if left[m] else (y_inv @ cols_right[m])
        z = solved[m]
        if left[m] and left[i]:
            block = left_blocks[(i, m)] + rows_left[i] @ (v @ (q @ z))
            scale = left_scales[(i, m)]
        elif left[m]:
            block = rows_right[i] @ (vh @ z)
            scale = left_run.state_exponents[0, m] + right_run.state_exponents[1, i]
        elif not left[i]:
            block = right_blocks[(i, m)] + rows_right[i] @ (vh @ (p @ z))
            scale = right_scales[(i, m)]
        else:
            block = rows_left[i] @ (v @ z)
            scale = right_run.state_exponents[0, m] + left_run.state_exponents[1, i]
        blocks[(i, m)] = block
        scales[(i, m)] = scale
    return blocks, scales, flops


def _sweep(
    xp: ModuleType,
    problem: RGFProblem,
    dev: _DeviceBlocks,
    energies_dev: Any,
    terms: Sequence[_LeadTerms],
    pairs: Sequence[tuple[int, int]],
    elements: Any = None,
    threads: int = 1,
) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], Any], float]:
    """Run the recursion; returns the blocks M_lm, their (B,) log2 scales and the flops.

    ``elements`` (B,) on the device: the element of a parameter batch each entry belongs to
    (None: a problem of one element). On the CPU the compiled recursion runs when numba is
    installed, its entries split over ``threads``.
    """
    kernel = _kernel() if xp is np else None
    if kernel is not None:
        return _compiled_sweep(kernel, problem, dev, energies_dev, terms, pairs, elements, threads)
    batch = int(energies_dev.shape[0])
    slicing = problem.slicing
    lead_slice = slicing.lead_slices
    row_leads = {i for i, _ in pairs}
    col_leads = {m for _, m in pairs}
    leads_in_slice: dict[int, list[int]] = {}
    for lead, s in enumerate(lead_slice):
        leads_in_slice.setdefault(s, []).append(lead)
    local = [xp.asarray(idx) for idx in problem._lead_local]
    whole_slice = [
        len(idx) == slicing.sizes[lead_slice[k]] and bool(np.all(idx == np.arange(len(idx))))
        for k, idx in enumerate(problem._lead_local)
    ]

    inverse = _cpu_inverse if xp is np else _device_inverse(xp)
    rows: dict[int, Any] = {}  # P_l = rows_l^dagger G_{l, s}: (B, a_l, n_s)
    cols: dict[int, Any] = {}  # Q_m = G_{s, m} columns_m: (B, n_s, w_m)
    row_exp: dict[int, Any] = {}
    col_exp: dict[int, Any] = {}
    blocks: dict[tuple[int, int], Any] = {}
    flops = 0.0
    # The recursion keeps green = sign * G^L with sign = +-1: the matrix to invert is built in
    # place over it with the sign that needs no extra pass (inverting -A gives -G).
    green: Any = None
    sign = 1.0
    n_prev = 0
    for s in range(slicing.num_slices):
        n = int(slicing.sizes[s])
        coupling = dev.coupling(s - 1, elements) if s > 0 else None
        kind = coupling.kind if coupling is not None else "zero"
        # target * (E - H_s - Sigma_leads(s) - V^dagger G^L V), target = -sign where the
        # coupling term is reused in place.
        target = -sign
        if kind == "scalar":
            assert coupling is not None
            matrix = green
            if isinstance(coupling.scalar, complex):
                weight = abs(coupling.scalar) ** 2
                if weight != 1.0:
                    matrix *= weight
            else:
                matrix *= (xp.abs(coupling.scalar) ** 2)[:, None, None]
        elif kind == "diagonal":
            assert coupling is not None
            d = coupling.first
            matrix = green
            if coupling.second is not None:
                matrix *= coupling.second
            else:
                matrix *= d.conj()[..., :, None] * d[..., None, :]
        elif kind == "sparse":
            assert coupling is not None
            matrix = _sparse_times(coupling.second, _times_sparse(green, coupling.first))
            flops += 8.0 * batch * coupling.first.nnz * (n_prev + n)
        elif kind == "dense":
            assert coupling is not None
            matrix = xp.matmul(coupling.second, xp.matmul(green, coupling.first))
            flops += 8.0 * batch * (n_prev * n_prev * n + n * n_prev * n)
        else:
            matrix = xp.zeros((batch, n, n), dtype=complex)
            target = 1.0
        template = dev.template_of_slice[s]
        if not dev.template_is_zero[template]:
            if target > 0:
                matrix -= _at(dev.templates[template], elements)
            else:
                matrix += _at(dev.templates[template], elements)
        flat = matrix.reshape(batch, n * n)
        flat[:, :: n + 1] += target * (energies_dev[:, None] - _at(dev.diagonals[s], elements))
        for lead in leads_in_slice.get(s, []):
            sigma = terms[lead].selfenergy
            if whole_slice[lead]:
                if target > 0:
                    matrix -= sigma
                else:
                    matrix += sigma
            else:
                ix = local[lead]
                matrix[:, ix[:, None], ix[None, :]] -= target * sigma
        green = inverse(matrix, energies_dev)
        sign = target
        del matrix
        flops += 8.0 * batch * n**3

        if coupling is not None:
            dense = kind == "dense"
            moved: dict[int, Any] = {}
            for m in cols:
                moved[m] = _apply_vdag(xp, coupling, cols[m])
                width = moved[m].shape[2]
                cols[m] = xp.matmul(green, moved[m])
                if sign < 0:
                    cols[m] *= -1
                flops += 8.0 * batch * (n * n * width + (n * n_prev * width if dense else 0))
            for i in rows:
                height = rows[i].shape[1]
                rows[i] = xp.matmul(_apply_v_right(xp, coupling, rows[i]), green)
                if sign < 0:
                    rows[i] *= -1
                flops += 8.0 * batch * (height * n * n + (height * n_prev * n if dense else 0))
            for (i, m), block in blocks.items():
                if i in rows and m in moved:
                    block += xp.matmul(rows[i], moved[m])
                    flops += 8.0 * batch * rows[i].shape[1] * n * moved[m].shape[2]

        new = leads_in_slice.get(s, [])
        for a in new:
            ia = local[a]
            if a in col_leads:
                cols[a] = xp.matmul(green[:, :, ia], terms[a].columns)
                if sign < 0:
                    cols[a] *= -1
                col_exp[a] = xp.zeros(batch)
                flops += 8.0 * batch * n * len(ia) * terms[a].columns.shape[2]
            if a in row_leads:
                rows[a] = xp.matmul(terms[a].rows.conj().transpose(0, 2, 1), green[:, ia, :])
                if sign < 0:
                    rows[a] *= -1
                row_exp[a] = xp.zeros(batch)
                flops += 8.0 * batch * terms[a].rows.shape[2] * len(ia) * n
        for i, m in pairs:
            if (i, m) in blocks or lead_slice[i] > s or lead_slice[m] > s:
                continue
            # Both leads are present from this slice on; one of them sits in it.
            if lead_slice[m] == s:
                block = xp.matmul(rows[i][:, :, local[m]], terms[m].columns)
            else:
                block = xp.matmul(terms[i].rows.conj().transpose(0, 2, 1), cols[m][:, local[i], :])
            blocks[(i, m)] = block
            flops += 8.0 * batch * block.shape[1] * len(local[m]) * block.shape[2]

        if (s + 1) % _FLUSH_INTERVAL == 0:
            # In tunnelling regions parts of G^L (its coupling to the lead behind) decay
            # without bound; flush what falls below ~1e-287 to zero so that no subnormal
            # numbers slow the arithmetic down (x + c - c == x exactly for |x| >> c).
            green += _FLUSH
            green -= _FLUSH
        if (s + 1) % _RESCALE_INTERVAL == 0 or s == slicing.num_slices - 1:
            for m in cols:
                cols[m], exponent, factor = _rescale(xp, cols[m])
                col_exp[m] = col_exp[m] + exponent
                for key in blocks:
                    if key[1] == m:
                        blocks[key] = blocks[key] * factor[:, None, None]
            for i in rows:
                rows[i], exponent, factor = _rescale(xp, rows[i])
                row_exp[i] = row_exp[i] + exponent
                for key in blocks:
                    if key[0] == i:
                        blocks[key] = blocks[key] * factor[:, None, None]
        n_prev = n
    zero = xp.zeros(batch)
    scales = {key: row_exp.get(key[0], zero) + col_exp.get(key[1], zero) for key in blocks}
    return blocks, scales, flops


# --------------------------------------------------------------------------------------------
# Read-out and driver
# --------------------------------------------------------------------------------------------


def _scaled(values: NDArray[Any], exponents: FloatArray) -> NDArray[Any]:
    """``values * 2**exponents`` without overflow of the power itself."""
    e = exponents.astype(np.int64).reshape((-1,) + (1,) * (values.ndim - 1))
    if np.iscomplexobj(values):
        return np.ldexp(values.real, e) + 1j * np.ldexp(values.imag, e)
    return np.ldexp(values, e)


def _transmission_from_blocks(
    xp: ModuleType,
    problem: RGFProblem,
    blocks: dict[tuple[int, int], Any],
    scales: dict[tuple[int, int], Any],
    terms: Sequence[_LeadTerms],
    batch: int,
) -> tuple[FloatArray, FloatArray]:
    """Transmission matrices (B, n, n) from the blocks ``W_i^dagger G_im W_m`` of the
    sources (``i (Sigma - Sigma^dagger) = W W^dagger``), and how far each breaks current
    conservation (B,), as a measure of its rounding.

    ``T_im = ||W_i^dagger G_im W_m||^2`` (the Caroli formula) and the diagonal is what the
    others leave of the open channels. The check: with two leads, lead ``i``'s own block
    ``B = W_i^dagger G_ii W_i`` gives ``T_im`` independently, ``i (G - G^dagger) = G Gamma
    G^dagger`` making ``T_im = -2 Im tr B - ||B||^2``; with more, each lead's row sum
    must equal its column sum. Exact arithmetic gives 0; rounding, ordinarily ~1e-13, grows
    next to a pole of a slice's partial Green's function.
    """
    count = problem.num_leads
    result = np.zeros((batch, count, count))
    for (i, j), block in blocks.items():
        if i != j:
            weight = _backend.to_host(xp, xp.sum(block.real**2 + block.imag**2, axis=(1, 2)))
            result[:, i, j] = _scaled(weight, 2 * _backend.to_host(xp, scales[(i, j)]))
    if count == 2:
        i, m = next(key for key in blocks if key[0] != key[1])
        result[:, m, i] = result[:, i, m]
        if (i, i) in blocks:
            own = _scaled(
                _backend.to_host(xp, blocks[(i, i)]), _backend.to_host(xp, scales[(i, i)])
            )
            trace = np.trace(own, axis1=1, axis2=2)
            again = -2 * trace.imag - np.sum(own.real**2 + own.imag**2, axis=(1, 2))
            broken = np.abs(result[:, i, m] - again)
        else:
            broken = np.zeros(batch)
    else:
        broken = np.abs(result.sum(axis=2) - result.sum(axis=1)).max(axis=1)
    for i in range(count):
        others = result[:, :, i].sum(axis=1) - result[:, i, i]
        result[:, i, i] = terms[i].num_modes - others
    return result, broken


def _smatrices_from_blocks(
    xp: ModuleType,
    problem: RGFProblem,
    blocks: dict[tuple[int, int], Any],
    scales: dict[tuple[int, int], Any],
    terms: Sequence[_LeadTerms],
    energies: FloatArray,
) -> list[SMatrix]:
    count = problem.num_leads
    host = {
        key: _scaled(_backend.to_host(xp, block), _backend.to_host(xp, scales[key]))
        for key, block in blocks.items()
    }
    result = []
    for k, energy in enumerate(energies):
        embeddings = [t.embeddings[k] for t in terms]  # type: ignore[index]
        props = tuple(emb.propagating for emb in embeddings)
        rows = []
        for i in range(count):
            incident = terms[i].incident[k]  # type: ignore[index]
            height = (
                embeddings[i].row_projection.shape[1]
                if incident is None
                else embeddings[i].num_modes
            )
            projected = np.hstack(
                [host[(i, j)][k][:height, : embeddings[j].num_modes] for j in range(count)]
            )
            start = sum(emb.num_modes for emb in embeddings[:i])
            own = slice(start, start + embeddings[i].num_modes)
            if incident is None:
                rows.append(embeddings[i].outgoing_amplitudes(projected, own))
            else:
                # The rows already read the outgoing amplitudes (see _outgoing_rows).
                projected[:, own] -= incident
                rows.append(projected)
        result.append(SMatrix(data=np.vstack(rows), energy=float(energy), lead_info=props))
    return result


def _solve_chunk(
    problem: RGFProblem,
    energies: FloatArray,
    smatrix: bool,
    xp: ModuleType,
    dev: _DeviceBlocks,
    elements: IntArray | None = None,
    lead_threads: int = 1,
) -> tuple[Any, float, int]:
    """:func:`_recursion` on a chunk; energies where it meets a singular slice go sparse.

    A slice's partial Green's function (the part of the system left of it, with its leads)
    can have a pole exactly at an energy where the whole system has none, for example a
    zero mode of a cut through a graphene flake at the charge-neutrality point. Those
    energies are solved by the sparse direct solver, which raises only if the whole
    problem is singular; the rest of the chunk stays in the recursion, reusing the lead
    modes already computed. Close to such a pole the recursion's rounding grows: an
    S-matrix that is not unitary to ``_RESOLVE_UNITARITY``, or transmissions that break
    current conservation by more than ``_RECHECK_TRANSMISSION``, are solved again by the
    sparse solver. Returns the values, the flops of the recursion and the
    number of energies handed to the sparse solver. ``elements`` gives the element of a
    parameter batch of every energy (None: all of element 0).
    """
    if elements is None:
        elements = np.zeros(energies.size, dtype=np.int64)
    modes_cache: dict[tuple[int, int, float], LeadEmbedding] = {}
    sparse_results: dict[int, SMatrix] = {}
    remaining = np.arange(energies.size)
    values: Any = [] if smatrix else np.zeros((0, problem.num_leads, problem.num_leads))
    flops = 0.0
    doubtful = np.zeros(0, dtype=bool)

    def sparse_solve(k: int) -> SMatrix:
        element = int(elements[k])
        return scattering_matrix(
            problem._hamiltonians[element], problem._element_leads[element], float(energies[k])
        )

    while remaining.size:
        try:
            values, flops, doubtful = _recursion(
                problem,
                energies[remaining],
                smatrix,
                xp,
                dev,
                modes_cache,
                elements[remaining],
                lead_threads=lead_threads,
            )
            break
        except _SingularSlice as singular:
            for k in remaining[singular.indices]:
                sparse_results[int(k)] = sparse_solve(int(k))
            remaining = np.delete(remaining, singular.indices)
    if smatrix:
        # An S-matrix that is not unitary to rounding (next to a bound state in the
        # continuum the recursion's rounding grows as eps over the distance to it) is
        # solved again by the sparse solver, which leaves such states out; the more
        # unitary of the two is kept.
        for index, k in enumerate(remaining):
            error = values[index].check_unitarity()
            if not error > _RESOLVE_UNITARITY:
                continue
            try:
                again = sparse_solve(int(k))
            except ValueError:
                continue
            if again.check_unitarity() < error:
                sparse_results[int(k)] = again
    else:
        for k in remaining[doubtful]:
            with contextlib.suppress(ValueError):
                sparse_results[int(k)] = sparse_solve(int(k))
    if not sparse_results:
        return values, flops, 0
    position = {int(k): i for i, k in enumerate(remaining)}
    if smatrix:
        merged = [
            sparse_results[k] if k in sparse_results else values[position[k]]
            for k in range(energies.size)
        ]
        return merged, flops, len(sparse_results)
    out = np.empty((energies.size, problem.num_leads, problem.num_leads))
    if remaining.size:
        out[remaining] = values
    for k, s in sparse_results.items():
        out[k] = s.transmission_matrix()
    return out, flops, len(sparse_results)


#: Largest deviation of an S-matrix of the recursion from unitarity that is left as it is.
_RESOLVE_UNITARITY = 1e-10
#: Largest break of current conservation left in transmissions of the recursion (see
#: _transmission_from_blocks), for up to _RECHECK_CHANNELS open channels (in proportion
#: above): measured at up to ~3e-12 ordinarily (up to 13 channels), and at 6e-11 ... 2e-9,
#: with the same error in T, next to a graphene zigzag ribbon's edge-state energy, where
#: the sparse solver is exact.
_RECHECK_TRANSMISSION = 5e-11
_RECHECK_CHANNELS = 100


def _lead_cell_size(lead: AnyLeadData) -> int:
    """Orbitals of a periodic lead's cell (0 for leads given by functions)."""
    return int(lead.h_cell.shape[0]) if isinstance(lead, LeadData) else 0


def _recursion(
    problem: RGFProblem,
    energies: FloatArray,
    smatrix: bool,
    xp: ModuleType,
    dev: _DeviceBlocks,
    modes_cache: dict[tuple[int, int, float], LeadEmbedding] | None = None,
    elements: IntArray | None = None,
    lead_threads: int = 1,
) -> tuple[Any, float, NDArray[np.bool_]]:
    """Values (S-matrices or transmission matrices), flops, and the transmissions that break
    current conservation beyond rounding (see :func:`_transmission_from_blocks`)."""
    if elements is None:
        elements = np.zeros(energies.size, dtype=np.int64)
    energies_dev = _backend.to_device(xp, energies)
    elements_dev = _backend.to_device(xp, elements) if problem.num_elements > 1 else None
    # Modes energy by energy, all leads at each: a lead and its mirror image (the two ends of
    # a wire) then share their eigenproblem (see mesoscopic.leads).
    cache = {} if modes_cache is None else modes_cache
    # Closed-form leads need exact modes only next to their chains' band edges (and for the
    # S-matrix, which needs the modes themselves).
    needed = [
        np.ones(len(energies), dtype=bool)
        if closed is None or smatrix
        else closed.near_edge(energies)
        for closed in problem.closed_form
    ]
    computed: dict[int, list[LeadEmbedding]] = {
        k: [] for k, mask in enumerate(needed) if mask.any()
    }
    wanted: list[tuple[int, int, float]] = []
    for position, energy in enumerate(energies):
        element = int(elements[position])
        for k in computed:
            if needed[k][position]:
                # A lead equal in all elements is solved once per energy.
                owner = element if problem._lead_varies[k] else 0
                wanted.append((k, owner, float(energy)))
    # Missing embeddings grouped by (element, energy), each group's leads in order.
    groups: dict[tuple[int, float], list[tuple[int, int, float]]] = {}
    for key in wanted:
        if key not in cache and key not in groups.get(key[1:], []):
            groups.setdefault(key[1:], []).append(key)

    def embed_group(keys: list[tuple[int, int, float]]) -> None:
        for key in keys:
            k, owner, energy = key
            cache[key] = embed_lead(problem._element_leads[owner][k], energy, k)

    def embed_group_in_turn(keys: list[tuple[int, int, float]]) -> None:
        with interpreter_stages.stage():
            embed_group(keys)

    largest = max((_lead_cell_size(lead) for lead in problem.leads), default=0)
    if lead_threads > 1 and len(groups) > 1 and largest >= _MIN_THREADED_LEAD_CELL:
        # The eigenproblems of different energies side by side, the interpreted stretches
        # in turn (see mesoscopic.leads.interpreter_stages).
        list(_chunk_pool(lead_threads).map(embed_group_in_turn, groups.values()))
    elif _in_chunk_pool():
        # A chunk of a batch that threads share: its leads' interpreted stretches take
        # turns with the other chunks' (their eigenproblems and sweeps run side by side).
        for keys in groups.values():
            embed_group_in_turn(keys)
    else:
        for keys in groups.values():
            embed_group(keys)
    for key in wanted:
        computed[key[0]].append(cache[key])
    terms = [
        _lead_terms(xp, lead, closed, energies, energies_dev, computed.get(k), exact=smatrix)
        for k, (lead, closed) in enumerate(zip(problem.leads, problem.closed_form))
    ]
    blocks, scales, flops = _sweep(
        xp,
        problem,
        dev,
        energies_dev,
        terms,
        _needed_pairs(problem, smatrix),
        elements_dev,
        threads=lead_threads,
    )
    if smatrix:
        values = _smatrices_from_blocks(xp, problem, blocks, scales, terms, energies)
        return values, flops, np.zeros(len(energies), dtype=bool)
    result, broken = _transmission_from_blocks(xp, problem, blocks, scales, terms, len(energies))
    channels = np.max([t.num_modes for t in terms], axis=0)
    allowed = _RECHECK_TRANSMISSION * np.maximum(1.0, channels / _RECHECK_CHANNELS)
    return result, flops, ~(broken <= allowed)


#: Most threads an RGF batch is split over by default (more cores go to ``workers``).
MAX_DEFAULT_THREADS = 8
#: Fewest energies (or parameter elements) per thread: fewer make fewer threads (each one
#: waits for the interpreter lock between its LAPACK calls; short pieces gain nothing).
_MIN_ENTRIES_PER_THREAD = 4
#: Smallest slice (orbitals) whose batches are split over threads. The threads run side by
#: side only inside LAPACK and BLAS; below this size each call is too short and the threads
#: mostly wait for the interpreter lock (measured on two cores: 0.4x at 24 x 200, 0.8x at
#: 40 x 200, 1.2x at 80 x 100 and 1.4x at 100 x 100 with 16 energies).
_MIN_THREADED_SLICE = 64
#: Smallest lead cell (orbitals) whose modes at different energies are found by threads.
_MIN_THREADED_LEAD_CELL = 24


def default_threads() -> int:
    """Threads that share an RGF batch on the CPU: ``MESOSCOPIC_THREADS``, else the cores.

    The cores this process may run on (its CPU affinity), at most
    :data:`MAX_DEFAULT_THREADS`. The batch is cut into that many chunks of neighbouring
    energies, solved by threads of this process: LAPACK and BLAS release the interpreter
    lock, so the chunks' slice recursions run side by side without starting processes.
    ``MESOSCOPIC_THREADS=1`` solves every batch in the calling thread.

    Examples
    --------
    >>> default_threads() >= 1
    True
    """
    value = os.environ.get("MESOSCOPIC_THREADS", "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(
                f"MESOSCOPIC_THREADS={value!r} is not a number of threads; give a positive "
                "integer (1: no threads), or unset it to use the cores available"
            )
        return count
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


_CHUNK_POOL: list[ThreadPoolExecutor] = []
_CHUNK_POOL_LOCK = threading.Lock()
_POOL_THREAD_PREFIX = "mesoscopic-rgf"


def _forget_chunk_pool() -> None:
    """In a forked child: the parent's pool threads do not exist here; start afresh."""
    global _CHUNK_POOL_LOCK
    _CHUNK_POOL.clear()
    _CHUNK_POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_chunk_pool)


def _in_chunk_pool() -> bool:
    """Whether this thread is one of the chunk pool's (a solve started from user code, a
    self-energy function, that runs there): it then solves alone, since waiting for the
    pool's other threads from inside the pool could wait forever."""
    return threading.current_thread().name.startswith(_POOL_THREAD_PREFIX)


def _chunk_pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of chunk threads, grown to ``threads`` when needed."""
    with _CHUNK_POOL_LOCK:
        if not _CHUNK_POOL or _CHUNK_POOL[0]._max_workers < threads:
            if _CHUNK_POOL:
                _CHUNK_POOL.pop().shutdown(wait=False)
            _CHUNK_POOL.append(
                ThreadPoolExecutor(max_workers=threads, thread_name_prefix=_POOL_THREAD_PREFIX)
            )
        return _CHUNK_POOL[0]


_THREAD_POOLS: list[Any] = []


def _thread_pools() -> Any:
    """The process's ``threadpoolctl.ThreadpoolController``, found once.

    Finding the loaded BLAS libraries reads the process's memory map (milliseconds), which
    would dominate a one-energy solve if done on every call.
    """
    if not _THREAD_POOLS:
        from threadpoolctl import ThreadpoolController

        _THREAD_POOLS.append(ThreadpoolController())
    return _THREAD_POOLS[0]


class _BlasLimits:
    """Context manager pinning the BLAS thread count with threadpoolctl (None: unchanged)."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self.controller: Any = None

    def __enter__(self) -> _BlasLimits:
        if self.threads is not None:
            self.controller = _thread_pools().limit(limits=self.threads, user_api="blas")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.controller is not None:
            self.controller.restore_original_limits()


def _worker(
    args: tuple[RGFProblem, FloatArray, IntArray, bool, int | None],
) -> tuple[Any, float, int]:
    problem, energies, elements, smatrix, blas_threads = args
    with _BlasLimits(blas_threads):
        dev = _DeviceBlocks(np, problem._blocks)
        return _solve_chunk(problem, energies, smatrix, np, dev, elements)


def _run(
    problem: RGFProblem,
    energies: ArrayLike,
    *,
    smatrix: bool,
    device: str,
    chunk_size: int | None,
    workers: int,
    memory_limit: float | None,
    blas_threads: int | None,
    stats: dict[str, Any] | None,
) -> Any:
    e = check_energies(energies)
    device = _backend.check_device(device)
    workers = _checks.positive_int(workers, "workers")
    if chunk_size is not None:
        chunk_size = _checks.positive_int(chunk_size, "chunk_size", also=" or None")
    if blas_threads is not None:
        blas_threads = _checks.positive_int(blas_threads, "blas_threads", also=" or None")
    elif device == "cpu":
        # The slice loop is a chain of LAPACK calls on matrices of a few hundred rows, which
        # extra BLAS threads slow down (measured on two cores: 5x at 100 x 100, 1.4x even at
        # 400 x 100); processes (workers) are the way to use more cores.
        blas_threads = DEFAULT_BLAS_THREADS
    if memory_limit is not None:
        memory_limit = float(_checks.positive(memory_limit, "memory_limit"))
    if workers > 1 and device != "cpu":
        raise ValueError(
            f"workers > 1 runs processes on the CPU; got workers={workers} with "
            f"device={device!r} (one process drives the GPU)"
        )
    xp = _backend.array_module(device)
    # A parameter batch solves every energy for every element: entry k * n_E + j is energy
    # j of element k.
    num_energies = e.size
    count = problem.num_elements
    element_of = np.repeat(np.arange(count, dtype=np.int64), num_energies)
    e = np.tile(e, count)
    # Threads share a batch on the CPU unless processes (workers) do.
    cpu_threads = 1
    if workers == 1 and device == "cpu" and not _in_chunk_pool():
        cpu_threads = default_threads()
    threads = cpu_threads if problem.slicing.max_size >= _MIN_THREADED_SLICE else 1
    threads = min(threads, e.size // _MIN_ENTRIES_PER_THREAD) or 1
    requested = chunk_size
    if requested is None and workers > 1:
        requested = math.ceil(e.size / workers)
    elif requested is None and threads > 1:
        requested = math.ceil(e.size / threads)
    chunk = problem.chunk_size(
        e.size, xp, smatrix=smatrix, memory_limit=memory_limit, requested=requested
    )
    # Chunks of sorted energies: neighbouring energies have similar numbers of open channels,
    # so the lead projections padded to the chunk's widest are narrow.
    order = np.argsort(e, kind="stable")
    pieces = [order[i : i + chunk] for i in range(0, e.size, chunk)]
    start = time.perf_counter()
    if workers == 1 or len(pieces) == 1:
        with _BlasLimits(blas_threads):
            dev = _DeviceBlocks(xp, problem._blocks)

            # Threads take whole chunks, or else the lead modes of a chunk's energies.
            chunked = threads > 1 and len(pieces) > 1

            def solve(piece: IntArray) -> tuple[Any, float, int]:
                return _solve_chunk(
                    problem,
                    e[piece],
                    smatrix,
                    xp,
                    dev,
                    element_of[piece],
                    lead_threads=1 if chunked else cpu_threads,
                )

            if chunked:
                results = list(_chunk_pool(threads).map(solve, pieces))
            else:
                results = [solve(piece) for piece in pieces]
    else:
        jobs = [(problem, e[piece], element_of[piece], smatrix, blas_threads) for piece in pieces]
        with ProcessPoolExecutor(
            max_workers=min(workers, len(pieces)), initializer=exit_with_parent
        ) as pool:
            results = list(pool.map(_worker, jobs))
    elapsed = time.perf_counter() - start
    flops = sum(r[1] for r in results)
    if stats is not None:
        stats.update(
            solver="rgf",
            sparse_fallback_energies=int(sum(r[2] for r in results)),
            flops=flops,
            seconds=elapsed,
            num_energies=int(e.size),
            num_elements=int(count),
            chunk_size=chunk,
            num_chunks=len(pieces),
            threads=threads if workers == 1 and len(pieces) > 1 else 1,
            num_slices=problem.slicing.num_slices,
            max_slice=problem.slicing.max_size,
            closed_form_leads=tuple(c is not None for c in problem.closed_form),
        )
    if smatrix:
        ordered = [s for r in results for s in r[0]]
        flat = [ordered[k] for k in np.argsort(order, kind="stable")]
        if not problem.batched:
            return flat
        return [flat[k * num_energies : (k + 1) * num_energies] for k in range(count)]
    values = np.concatenate([r[0] for r in results], axis=0)
    out = np.empty_like(values)
    out[order] = values
    if problem.batched:
        return out.reshape(count, num_energies, *out.shape[1:])
    return out


# --------------------------------------------------------------------------------------------
# Public functions on plain matrices
# --------------------------------------------------------------------------------------------


def transmission_matrices(
    h_sys: ArrayLike | sp.spmatrix,
    leads: Sequence[AnyLeadData],
    energies: ArrayLike,
    *,
    device: str = "cpu",
    chunk_size: int | None = None,
    workers: int = 1,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    slicing: Slicing | None = None,
    stats: dict[str, Any] | None = None,
) -> FloatArray:
    """Transmission between all pairs of leads for a batch of energies.

    Parameters
    ----------
    h_sys : (N, N) array_like or scipy.sparse matrix
        Hermitian Hamiltonian of the scattering region (energy units).
    leads : sequence of LeadData, SelfEnergyLeadData or ModesLeadData
        The leads, numbered in this order (see :mod:`mesoscopic.solvers._embedding`).
    energies : (n_E,) array_like
        Real, finite energies (same units), at least one.
    device : {"cpu", "gpu"}, keyword-only
        Where the recursion runs (NumPy or CuPy; the slicing is always done on the CPU).
    chunk_size : int, optional, keyword-only
        Energies solved together; by default as many as fit in the memory budget (capped
        at 256 on the CPU, 2048 on the GPU), or ``ceil(n_E / workers)``.
    workers : int, keyword-only
        Processes on the CPU, each solving contiguous chunks of energies (1: no pool).
    memory_limit : float, optional, keyword-only
        Memory budget in bytes for one chunk (default: half the free memory, at most
        8 GiB, on the CPU; 60% of the free device memory on the GPU).
    blas_threads : int, optional, keyword-only
        BLAS threads in every process during a CPU sweep, pinned with threadpoolctl (default
        :data:`DEFAULT_BLAS_THREADS`: the slice loop's small LAPACK calls run slower with
        more threads; use ``workers`` for more cores).
    slicing : Slicing, optional, keyword-only
        Use this slicing instead of the automatic one.
    stats : dict, optional, keyword-only
        Filled with ``flops`` (floating-point operations of the sweep, counting an
        ``n x n`` complex inverse as ``8 n^3`` and a product as ``8 n m k``), ``seconds``,
        the chunking and the slicing sizes, ``solver="rgf"`` and
        ``sparse_fallback_energies``: how many energies met a singular slice, or lost
        digits next to one, and were solved by the sparse direct solver instead (see the
        module docstring). A
        comparison of the recursion with the sparse solver must check that it is zero.

    Returns
    -------
    (n_E, n_leads, n_leads) float ndarray
        ``T[k, i, j]``: transmission from lead ``j`` into lead ``i`` at ``energies[k]``;
        ``T[k, i, i]`` is the total reflection of lead ``i``, ``N_i - sum_{j != i} T[k, j, i]``
        with ``N_i`` its open channels.

    Raises
    ------
    ValueError
        Bad energies (empty, NaN, not 1-D), unknown device, bad options.
    RuntimeError
        ``device="gpu"`` without CuPy or a CUDA device.
    MemoryError
        A single energy needs more memory than the budget.

    Examples
    --------
    A 1D chain with one impurity of energy 1: ``T = 1 / (1 + (1 / (2 sin k))^2)``.

    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> chain = -(np.eye(3, k=1) + np.eye(3, k=-1)) + np.diag([0.0, 1.0, 0.0])
    >>> left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> right = LeadData([[0.0]], [[-1.0]], interface_sys=[2], interface_cell=[0])
    >>> t = transmission_matrices(chain, [left, right], [0.0, -1.0])
    >>> k = np.arccos(-np.array([0.0, -1.0]) / 2)
    >>> bool(np.allclose(t[:, 1, 0], 1 / (1 + 1 / (2 * np.sin(k)) ** 2)))
    True
    >>> t[:, 0, 0] + t[:, 1, 0]    # reflection + transmission = one open channel
    array([1., 1.])
    """
    problem = prepare(h_sys, leads, slicing=slicing)
    return problem.transmission(
        energies,
        device=device,
        chunk_size=chunk_size,
        workers=workers,
        memory_limit=memory_limit,
        blas_threads=blas_threads,
        stats=stats,
    )


def scattering_matrices(
    h_sys: ArrayLike | sp.spmatrix,
    leads: Sequence[AnyLeadData],
    energies: ArrayLike,
    *,
    device: str = "cpu",
    chunk_size: int | None = None,
    workers: int = 1,
    memory_limit: float | None = None,
    blas_threads: int | None = None,
    slicing: Slicing | None = None,
    stats: dict[str, Any] | None = None,
) -> list[SMatrix]:
    """Scattering matrices for a batch of energies (Fisher-Lee read-out of the RGF blocks).

    Parameters
    ----------
    h_sys, leads, energies, device, chunk_size, workers, memory_limit, blas_threads, slicing, \
stats
        As in :func:`transmission_matrices`.

    Returns
    -------
    list of SMatrix
        One per energy, over all leads, in the mode basis and order of
        :func:`mesoscopic.leads.modes`: the same matrices as
        :func:`mesoscopic.solvers.sparse.scattering_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> lead = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> s = scattering_matrices([[1.0]], [lead, lead], [0.0])[0]
    >>> round(s.transmission(1, 0), 12), s.check_unitarity() < 1e-12
    (0.8, True)
    """
    problem = prepare(h_sys, leads, slicing=slicing)
    return problem.smatrices(
        energies,
        device=device,
        chunk_size=chunk_size,
        workers=workers,
        memory_limit=memory_limit,
        blas_threads=blas_threads,
        stats=stats,
    )
