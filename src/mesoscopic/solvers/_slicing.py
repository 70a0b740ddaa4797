"""Ordering of the orbitals of a scattering region into slices for recursive Green's functions.

A slicing is a partition of the orbitals into slices ``0, 1, ..., S - 1`` such that the
Hamiltonian couples only orbitals in the same or in neighbouring slices (it is block
tridiagonal in this order) and the interface orbitals of each lead lie in one slice (the
lead's self-energy is dense over its interface).

Method: the orbital graph (an edge wherever ``h_sys`` has a nonzero off-diagonal element) is
contracted so that the interface of every lead becomes a single node (leads that share
orbitals share the node). Breadth-first layers of the contracted graph, counted from one
lead's node, are a valid slicing: an edge joins nodes whose distances differ by at most one,
and every interface is one node, hence in one layer. Layers are computed from each lead in
turn (at most :data:`MAX_START_LEADS` of them) and the slicing with the least work is kept,
measured by ``sum_s n_s^3`` (the cost of the recursion) and then by the largest slice (its
memory). Parts of the graph that no lead reaches are decoupled from all leads; they do not
change any scattering property and are left out (:attr:`Slicing.dropped`).

A two-lead wire gets the familiar slicing: lead 0's interface in the first slice and lead
1's in the last. Side leads (a Hall bar) land in whichever slice reaches them first, which the
recursion in :mod:`mesoscopic.solvers.rgf` handles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
from numpy.typing import NDArray

__all__ = ["MAX_START_LEADS", "Slicing", "slice_orbitals"]

IntArray = NDArray[np.int64]

#: Breadth-first orderings are tried from at most this many leads.
MAX_START_LEADS = 8


@dataclass(frozen=True, eq=False)
class Slicing:
    """A block-tridiagonal ordering of the orbitals of a scattering region.

    Attributes
    ----------
    slices : tuple of (n_s,) int ndarray
        Orbital indices of each slice, in the order of the slice's rows and columns.
    lead_slices : tuple of int
        Index of the slice that holds each lead's interface orbitals.
    dropped : (n_dropped,) int ndarray
        Orbitals coupled to no lead, left out of the slices.
    start_lead : int
        The lead the breadth-first layers were counted from.
    sizes : (num_slices,) int ndarray
        Orbitals per slice.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> chain = sp.diags([-1.0, -1.0], [-1, 1], shape=(4, 4), dtype=float)
    >>> s = slice_orbitals(chain, [[0], [3]])
    >>> [sl.tolist() for sl in s.slices], s.lead_slices
    ([[0], [1], [2], [3]], (0, 3))
    """

    slices: tuple[IntArray, ...]
    lead_slices: tuple[int, ...]
    dropped: IntArray
    start_lead: int
    sizes: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = np.array([len(s) for s in self.slices], dtype=np.int64)
        sizes.flags.writeable = False
        object.__setattr__(self, "sizes", sizes)
        if len(self.lead_slices) and (
            min(self.lead_slices) < 0 or max(self.lead_slices) >= len(self.slices)
        ):
            raise ValueError(
                f"lead_slices {list(self.lead_slices)} must be slice indices in "
                f"0..{len(self.slices) - 1}"
            )

    @property
    def num_slices(self) -> int:
        """Number of slices."""
        return len(self.slices)

    @property
    def max_size(self) -> int:
        """Orbitals in the largest slice."""
        return int(self.sizes.max()) if self.slices else 0

    @property
    def cost(self) -> float:
        """``sum_s n_s^3``: the recursion's work, in units of one n x n complex inverse."""
        return float(np.sum(self.sizes.astype(float) ** 3))

    @property
    def num_orbitals(self) -> int:
        """Orbitals in the slices (all but the dropped ones)."""
        return int(self.sizes.sum())


def _contracted_nodes(size: int, interfaces: Sequence[IntArray]) -> tuple[IntArray, IntArray]:
    """Node of every orbital, with each lead interface (and overlapping ones) one node.

    Returns ``(node_of_orbital, node_of_lead)``.
    """
    rows, cols = [], []
    for orbs in interfaces:
        if len(orbs) > 1:
            rows.append(orbs[:-1])
            cols.append(orbs[1:])
    if rows:
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        glue = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(size, size))
    else:
        glue = sp.coo_matrix((size, size))
    _, labels = csgraph.connected_components(glue, directed=False)
    node_of_orbital = labels.astype(np.int64)
    node_of_lead = np.array([node_of_orbital[orbs[0]] for orbs in interfaces], dtype=np.int64)
    return node_of_orbital, node_of_lead


def _layers(
    graph: sp.csr_matrix,
    components: IntArray,
    node_of_lead: IntArray,
    start_lead: int,
) -> IntArray:
    """Slice index of every contracted node (-1 for nodes no lead reaches)."""
    layer = np.full(graph.shape[0], -1, dtype=np.int64)
    # The component of the start lead first, then the other lead-carrying components, each
    # counted from its lowest-numbered lead; components are decoupled, so stacking their
    # layers keeps the matrix block tridiagonal.
    order = [start_lead] + [k for k in range(len(node_of_lead)) if k != start_lead]
    offset = 0
    seen: set[int] = set()
    for lead in order:
        comp = int(components[node_of_lead[lead]])
        if comp in seen:
            continue
        seen.add(comp)
        dist = csgraph.dijkstra(graph, unweighted=True, indices=int(node_of_lead[lead]))
        reached = np.isfinite(dist)
        layer[reached] = dist[reached].astype(np.int64) + offset
        offset = int(layer.max()) + 1
    return layer


def slice_orbitals(
    h_sys: sp.spmatrix | NDArray[np.complex128],
    interfaces: Sequence[Sequence[int] | IntArray],
    *,
    start_lead: int | None = None,
) -> Slicing:
    """Slices of the orbitals of ``h_sys`` with every lead interface inside one slice.

    Parameters
    ----------
    h_sys : (N, N) scipy.sparse matrix or array_like
        Hamiltonian of the scattering region; only its sparsity pattern is used.
    interfaces : sequence of (n_l,) int array_like
        System orbitals of each lead's interface.
    start_lead : int, optional, keyword-only
        Count the layers from this lead only; by default the best of up to
        :data:`MAX_START_LEADS` leads is taken.

    Returns
    -------
    Slicing

    Examples
    --------
    A 3 x 2 square-lattice strip with leads on its short ends has three slices of two:

    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> hop = sp.kron(sp.eye(3), sp.diags([1.0, 1.0], [-1, 1], (2, 2), dtype=float))
    >>> hop = hop + sp.kron(sp.diags([1.0, 1.0], [-1, 1], (3, 3), dtype=float), sp.eye(2))
    >>> s = slice_orbitals(hop, [[0, 1], [4, 5]])
    >>> [sl.tolist() for sl in s.slices]
    [[0, 1], [2, 3], [4, 5]]
    """
    matrix = sp.csr_matrix(h_sys)
    size = matrix.shape[0]
    ifaces = [np.asarray(orbs, dtype=np.int64).ravel() for orbs in interfaces]
    if not ifaces:
        raise ValueError("slicing needs at least one lead")
    for k, orbs in enumerate(ifaces):
        if orbs.size == 0:
            raise ValueError(f"lead {k} has no interface orbitals")
        if orbs.min() < 0 or orbs.max() >= size:
            raise ValueError(
                f"lead {k} has interface orbitals outside 0..{size - 1}: {orbs.tolist()[:8]}"
            )
    node_of_orbital, node_of_lead = _contracted_nodes(size, ifaces)
    num_nodes = int(node_of_orbital.max()) + 1
    coo = matrix.tocoo()
    off = (coo.row != coo.col) & (coo.data != 0)
    r = node_of_orbital[coo.row[off]]
    c = node_of_orbital[coo.col[off]]
    keep = r != c
    graph = sp.coo_matrix(
        (np.ones(int(keep.sum())), (r[keep], c[keep])), shape=(num_nodes, num_nodes)
    ).tocsr()
    graph = (graph + graph.T).tocsr()
    _, components = csgraph.connected_components(graph, directed=False)

    if start_lead is not None:
        candidates = [int(start_lead)]
    else:
        candidates = list(range(min(len(ifaces), MAX_START_LEADS)))
    best: tuple[tuple[float, int], IntArray, int] | None = None
    for lead in candidates:
        node_layer = _layers(graph, components.astype(np.int64), node_of_lead, lead)
        orbital_layer = node_layer[node_of_orbital]
        used = orbital_layer[orbital_layer >= 0]
        sizes = np.bincount(used).astype(float)
        key = (float(np.sum(sizes**3)), int(sizes.max()))
        if best is None or key < best[0]:
            best = (key, orbital_layer, lead)
    assert best is not None
    _, orbital_layer, chosen = best
    order = np.argsort(orbital_layer, kind="stable")
    counts = np.bincount(orbital_layer[orbital_layer >= 0])
    dropped = order[: int(np.sum(orbital_layer < 0))]
    bounds = np.concatenate([[0], np.cumsum(counts)]) + dropped.size
    slices = tuple(order[bounds[k] : bounds[k + 1]].astype(np.int64) for k in range(len(counts)))
    lead_slices = tuple(int(orbital_layer[orbs[0]]) for orbs in ifaces)
    return Slicing(
        slices=slices,
        lead_slices=lead_slices,
        dropped=np.sort(dropped).astype(np.int64),
        start_lead=chosen,
    )
