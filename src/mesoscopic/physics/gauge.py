"""Peierls phases for any magnetic field, fixed automatically: ``physics.magnetic_gauge``.

``magnetic_gauge(fsys)`` studies the hopping graph of a finalized system (a finite
system, a lead, or a finite system with leads) once; calling the result with magnetic
fields returns functions ``phase(a, b)`` that give the Peierls phase multiplying each
hopping ``<a|H|b>``, so that around every closed loop of hoppings ``a_0 -> a_1 -> ...
-> a_0`` the product of ``phase(a_k, a_k+1)`` is ``exp(i pi Phi)``, with ``Phi`` the
flux of the field through the loop (oriented by the right-hand rule), as in Kwant.
The field is in units of ``phi_0 / l**2`` with ``l`` the unit of length.

Notes
-----
How the gauge is fixed: in a finite system every hopping ``a -> b`` could get the flux
``F(a, b)`` through the triangle ``(o, a, b)`` for one point ``o``: the triangles over
the hoppings of any loop form a surface bounded by the loop, so the product around a
loop gives the flux through it for any divergence-free field (in a plane, any field).
To keep the triangles small, the sites are grouped in blocks a few bonds wide, each
with its own fan point, and the blocks are joined by the same construction one level
up (a gauge transformation of the single fan, see ``_reference_flux``).

A lead needs phases that repeat from cell to cell. In a window of two unit cells, the
hoppings of a spanning tree of the (connected) unit cell, of its copy in the next cell
and one hopping between the cells get phase 1; every other hopping gets the flux of the
loop it closes with the tree. A field with the lead's period gives the same flux in
every cell, so the phases of one cell serve all of them.

With leads attached, the hoppings from the scattering region into the first lead cell,
inside that cell, and among the sites ``attach_lead`` added (the lead's padding, listed
by ``System.lead_paddings``; their hoppings keep the lead's value functions) take the
lead's phases; the region's phases are the triangle fluxes above, changed by a gauge
transformation that agrees with them. That is impossible when hoppings fixed by two or
more leads close a loop (leads attached too close to each other); ``magnetic_gauge``
then raises ``ValueError``.

Examples
--------
>>> import numpy as np
>>> import mesoscopic as meso
>>> from mesoscopic.physics.gauge import magnetic_gauge
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(2) for y in range(2))] = 0.0
>>> syst[lat.neighbors()] = -1.0
>>> phase = magnetic_gauge(syst.finalized())(0.25)
>>> loop = [lat(0, 0), lat(1, 0), lat(1, 1), lat(0, 1), lat(0, 0)]
>>> product = np.prod([phase(a, b) for a, b in zip(loop, loop[1:])])
>>> bool(np.isclose(product, np.exp(1j * np.pi * 0.25)))
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .. import _checks
from ..lattice import Site, SiteArray, _described
from ..system import InfiniteSystem, System, UserCodeError

__all__ = ["magnetic_gauge"]

Edges = tuple[NDArray[np.int64], NDArray[np.int64]]


# --------------------------------------------------------------------------------------
# Flux through triangles
# --------------------------------------------------------------------------------------


def _field_vector(value: Any, dim: int, what: str) -> NDArray[np.float64]:
    """A field value as a 3-vector: a number is the z component (systems of 1 or 2 dims)."""
    array = np.asarray(value)
    if np.iscomplexobj(array):
        if np.any(np.imag(array) != 0):
            raise ValueError(f"{what} must be real, got {value!r}")
        array = np.real(array)
    try:
        array = array.astype(float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} must be a number, a 3-vector or a function of the position, got {value!r}"
        ) from None
    if array.ndim == 0:
        if dim > 2:
            raise ValueError(
                f"{what} is the number {value!r}, but the system is {dim}-dimensional; "
                "give the field as a 3-vector (Bx, By, Bz)"
            )
        return np.array([0.0, 0.0, float(array)])
    if array.shape == (3,):
        return array
    raise ValueError(
        f"{what} must be a number (the field along z) or a 3-vector (Bx, By, Bz), "
        f"got an array of shape {array.shape}"
    )


class _TriangleFlux:
    """Flux of one field through triangles ``(o, p, q)``, oriented by ``(p - o) x (q - o)``.

    Parameters
    ----------
    field : number, 3-vector or callable
        The field; a callable takes a position (shape (dim,)) and returns a number
        (1 or 2 dims) or a 3-vector.
    dim : int
        Dimension of the positions (1, 2 or 3).
    tol : float
        Absolute and relative tolerance of the numerical integrals (callable fields).
    average : bool
        Approximate each triangle's flux by its area times the field at its centroid.
    what : str
        Name of the field in error messages.
    """

    def __init__(self, field: Any, dim: int, tol: float, average: bool, what: str) -> None:
        if dim > 3:
            raise ValueError(
                f"magnetic fields need positions of at most 3 dimensions; the system has {dim}"
            )
        self.dim = dim
        self.tol = tol
        self.average = average
        self.what = what
        self.function: Callable[[Any], Any] | None = field if callable(field) else None
        self.constant = None if callable(field) else _field_vector(field, dim, what)

    def _normals(self, origin: NDArray[np.float64], p: Any, q: Any) -> NDArray[np.float64]:
        embed = np.zeros((len(p), 3))
        embed[:, : self.dim] = p - origin
        other = np.zeros((len(q), 3))
        other[:, : self.dim] = q - origin
        return np.cross(embed, other)

    def _field_values(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """The field at each of `points` (shape (m, dim)) as 3-vectors, shape (m, 3)."""
        function = self.function
        assert function is not None
        values = []
        position = points[:0]
        try:
            for position in points:
                values.append(function(position))
        except Exception as exc:
            name = getattr(function, "__qualname__", type(function).__name__)
            raise UserCodeError(
                f"the field function {name} ({self.what}) raised {type(exc).__name__}: {exc}\n"
                f"  at the position {position.tolist()}"
            ) from exc
        array = np.asarray(values)
        if array.ndim == 1 and array.dtype.kind in "biuf" and len(array):
            if self.dim > 2:
                _field_vector(values[0], self.dim, f"the value of {self.what}")  # refuses
            result = np.zeros((len(array), 3))
            result[:, 2] = array
            return result
        return np.array(
            [
                _field_vector(v, self.dim, f"the value of {self.what} at {r.tolist()}")
                for v, r in zip(values, points)
            ]
        ).reshape(-1, 3)

    def _product_rule(
        self, corners: NDArray[np.float64], normals: NDArray[np.float64], order: int
    ) -> NDArray[np.float64]:
        """Gauss-Legendre product rule over triangles ``corners[k] = (a, b, c)`` (shape
        (n, 3, dim)) in the coordinates ``r = a + t ((b - a) + s (c - b))``, ``0 <= s, t
        <= 1``, whose Jacobian ``t |(b - a) x (c - a)|`` carries the triangle's shape;
        `normals` are ``(b - a) x (c - a)`` as 3-vectors."""
        x, w = np.polynomial.legendre.leggauss(order)
        x, w = (x + 1) / 2, w / 2
        grid_s, grid_t = np.meshgrid(x, x, indexing="ij")
        weight = (w[:, None] * w[None, :] * grid_t).ravel()
        s, t = grid_s.ravel(), grid_t.ravel()
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        points = a[:, None, :] + t[None, :, None] * (
            (b - a)[:, None, :] + s[None, :, None] * (c - b)[:, None, :]
        )
        values = self._field_values(points.reshape(-1, self.dim))
        values = values.reshape(len(corners), len(weight), 3)
        return np.einsum("kmi,ki,m->k", values, normals, weight)

    def _normals_of(self, corners: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._normals(corners[:, 0], corners[:, 1], corners[:, 2])

    def _integrate(self, corners: NDArray[np.float64]) -> NDArray[np.float64]:
        """Flux through each triangle of `corners` (shape (n, 3, dim)) to `tol`.

        Gauss-Legendre rules of rising order are checked against each other; where even
        the finest pair disagrees (a field with kinks or steps), the triangle is split
        into four and each part integrated alike, with half the tolerance.
        """
        normals = self._normals_of(corners)
        flux = self._product_rule(corners, normals, 8)
        todo = np.arange(len(corners))
        previous = flux.copy()
        for order in (12, 20):
            estimate = self._product_rule(corners[todo], normals[todo], order)
            flux[todo] = estimate
            wrong = np.abs(estimate - previous) > self.tol * np.maximum(1, np.abs(estimate))
            todo, previous = todo[wrong], estimate[wrong]
            if len(todo) == 0:
                return flux
        # Adaptive subdivision of what is left: owner[k] is the triangle a part belongs to.
        owner = todo
        parts = corners[todo]
        tolerance = self.tol * np.maximum(1, np.abs(flux[todo]))
        flux[todo] = 0.0
        for depth in range(1, _MAX_SPLITS + 1):
            parts = _split_triangles(parts)
            owner = np.repeat(owner, 4)
            # Half the tolerance per part, not a quarter: parts that still fail lie along
            # a line (a kink or step of the field), about twice as many at each level.
            tolerance = np.repeat(tolerance / 2, 4)
            part_normals = self._normals_of(parts)
            fine = self._product_rule(parts, part_normals, 10)
            coarse = self._product_rule(parts, part_normals, 6)
            done = np.abs(fine - coarse) <= tolerance
            if depth == _MAX_SPLITS and not np.all(done):
                warnings.warn(
                    f"the flux of {self.what} did not converge to tol={self.tol:g} after "
                    f"{_MAX_SPLITS} subdivisions (a field with steps?); phases may be off by "
                    "about the field's jump times the area of a small triangle",
                    RuntimeWarning,
                    stacklevel=_checks.user_stacklevel(),
                )
                done[:] = True
            np.add.at(flux, owner[done], fine[done])
            owner, parts, tolerance = owner[~done], parts[~done], tolerance[~done]
            if len(owner) == 0:
                break
        return flux

    def __call__(self, origin: NDArray[np.float64], p: Any, q: Any) -> NDArray[np.float64]:
        """Fluxes through the triangles ``(origin[k], p[k], q[k])``, shape (n,); `origin`
        is one point or one per triangle."""
        p = np.asarray(p, dtype=float).reshape(-1, self.dim)
        q = np.asarray(q, dtype=float).reshape(-1, self.dim)
        origin = np.broadcast_to(np.asarray(origin, dtype=float), p.shape)
        normals = self._normals(origin, p, q)
        flux: NDArray[np.float64]
        if self.constant is not None:
            flux = normals @ self.constant / 2
            return flux
        flux = np.zeros(len(p))
        # A degenerate triangle holds no flux.
        live = np.flatnonzero(np.einsum("ki,ki->k", normals, normals) >= self.tol**2)
        if len(live) == 0:
            return flux
        if self.average:
            centroids = (origin[live] + p[live] + q[live]) / 3
            values = self._field_values(centroids)
            flux[live] = np.einsum("ki,ki->k", values, normals[live]) / 2
            return flux
        corners = np.stack([origin[live], p[live], q[live]], axis=1)
        flux[live] = self._integrate(corners)
        return flux


#: Most times a triangle is split in four while integrating a field that is not smooth.
_MAX_SPLITS = 8


def _split_triangles(corners: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each triangle ``(a, b, c)`` as four of the same orientation, shape (4 n, 3, dim)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
    parts = np.stack(
        [
            np.stack([a, ab, ca], axis=1),
            np.stack([ab, b, bc], axis=1),
            np.stack([ca, bc, c], axis=1),
            np.stack([ab, bc, ca], axis=1),
        ],
        axis=1,
    )
    return parts.reshape(-1, 3, corners.shape[2])


# --------------------------------------------------------------------------------------
# Graph helpers
# --------------------------------------------------------------------------------------


def _undirected(i: Any, j: Any) -> Edges:
    """Unique undirected edges ``(min, max)`` without self-loops."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    keep = i != j
    pairs = np.unique(np.sort(np.stack([i[keep], j[keep]], axis=1), axis=1), axis=0)
    pairs = pairs.reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _adjacency(num_nodes: int, edges: Edges) -> sp.csr_matrix:
    i, j = edges
    data = np.ones(len(i))
    adj = sp.coo_matrix((data, (i, j)), shape=(num_nodes, num_nodes))
    return (adj + adj.T).tocsr()


def _tree_edges(num_nodes: int, edges: Edges, nodes: NDArray[np.int64]) -> Edges:
    """Breadth-first spanning forest of the subgraph on `nodes`: ``(parent, child)`` pairs
    in an order where every parent comes before its children."""
    if len(edges[0]) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    adj = _adjacency(num_nodes, edges)
    seen = np.zeros(num_nodes, dtype=bool)
    parents: list[NDArray[np.int64]] = []
    children: list[NDArray[np.int64]] = []
    for root in nodes:
        if seen[root]:
            continue
        order, pred = sp.csgraph.breadth_first_order(
            adj, int(root), directed=False, return_predecessors=True
        )
        seen[order] = True
        parents.append(pred[order[1:]])
        children.append(order[1:])
    if not parents:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(parents).astype(np.int64), np.concatenate(children).astype(np.int64)


#: Below this many nodes the reference gauge fans out from one point.
_FAN_NODES = 64


def _reference_flux(
    pos: NDArray[np.float64], edges: Edges, flux: _TriangleFlux
) -> NDArray[np.float64]:
    """A gauge in which every loop of the graph has its flux: ``R[k]`` for the edge
    ``edges[k]`` (a -> b), so that ``exp(i pi R)`` are phases with the right loop products.

    Fanning triangles out from one point would do, but far from that point they grow
    long and thin and a varying field is costly to integrate over them. So the nodes are
    grouped in blocks of a few bonds: an edge from block 1 into block 2 (block centres o1,
    o2) gets the flux through the small triangles ``(o1, a, b)`` and ``(o1, b, o2)`` plus
    the gauge of the coarse edge ``o1 -> o2``, found the same way one level up. With ``F``
    the fan from any point ``o``, this is ``F(a, b)`` changed by the gauge transformation
    ``flux(o_block(x), o, x)`` at each node and by a transformation of the coarse gauge,
    as the tetrahedra ``(o1, o, a, b)`` and ``(o1, o, b, o2)`` enclose no flux.
    """
    i, j = edges
    if len(i) == 0:
        return np.zeros(0)
    centre = pos.mean(axis=0)
    lengths = np.linalg.norm(pos[i] - pos[j], axis=1)
    size = 4 * float(np.median(lengths))
    if len(pos) <= _FAN_NODES or size <= 0:
        return flux(centre, pos[i], pos[j])
    cells = np.floor((pos - pos.min(axis=0)) / size).astype(np.int64)
    _, block = np.unique(cells, axis=0, return_inverse=True)
    block = block.ravel()
    num_blocks = int(block.max()) + 1
    if num_blocks == 1 or num_blocks == len(pos):
        return flux(centre, pos[i], pos[j])
    counts = np.bincount(block, minlength=num_blocks)
    origins = (
        np.stack(
            [
                np.bincount(block, weights=pos[:, d], minlength=num_blocks)
                for d in range(pos.shape[1])
            ],
            axis=1,
        )
        / counts[:, None]
    )
    b1, b2 = block[i], block[j]
    result = flux(origins[b1], pos[i], pos[j])
    cross = np.flatnonzero(b1 != b2)
    if len(cross) == 0:
        return result
    result[cross] += flux(origins[b1[cross]], pos[j[cross]], origins[b2[cross]])
    low, high = np.minimum(b1[cross], b2[cross]), np.maximum(b1[cross], b2[cross])
    pairs, which = np.unique(np.stack([low, high], axis=1), axis=0, return_inverse=True)
    coarse = _reference_flux(origins, (pairs[:, 0], pairs[:, 1]), flux)
    sign = np.where(b1[cross] == low, 1.0, -1.0)
    result[cross] += sign * coarse[which.ravel()]
    return result


def _gauge_factors(
    num_nodes: int,
    tree: Edges,
    tree_phases: NDArray[np.complex128],
    tree_fluxes: NDArray[np.float64],
) -> NDArray[np.complex128]:
    """Factors ``u`` (one per node) of the gauge transformation that turns the fan gauge
    ``exp(i pi F(a, b))`` into the given phases on the tree edges ``(parent, child)``:
    ``phase(a, b) = exp(i pi F(a, b)) u[a] conj(u[b])``."""
    u = np.ones(num_nodes, dtype=complex)
    for parent, child, phase, flux in zip(*tree, tree_phases, tree_fluxes):
        u[child] = u[parent] * np.conj(phase) * np.exp(1j * np.pi * flux)
    return u


# --------------------------------------------------------------------------------------
# Phase functions
# --------------------------------------------------------------------------------------


class _NodePhases:
    """Gauge phases on the edges of a graph, ``exp(i pi R) u[a] conj(u[b])``, and the
    phases `fixed` where given."""

    def __init__(
        self,
        edges: Edges,
        reference: NDArray[np.float64],
        u: NDArray[np.complex128],
        fixed: dict[tuple[int, int], complex],
    ) -> None:
        i, j = edges
        values = np.exp(1j * np.pi * reference) * u[i] * np.conj(u[j])
        self.table: dict[tuple[int, int], complex] = {}
        for a, b, value in zip(i.tolist(), j.tolist(), values.tolist()):
            self.table[a, b] = value
            self.table[b, a] = value.conjugate()
        for (a, b), value in fixed.items():
            self.table[a, b] = value
            self.table[b, a] = value.conjugate()

    def phase(self, a: int, b: int) -> complex | None:
        """The phase of the edge ``a -> b``, or None if there is no such edge."""
        if a == b:
            return 1.0
        return self.table.get((a, b))


class _SystemPhases:
    """``phase(a, b)`` of a finite system: the Peierls phase of the hopping ``<a|H|b>``."""

    def __init__(self, syst: System, phases: _NodePhases) -> None:
        self._id_by_site = syst.id_by_site
        self._phases = phases

    def _index(self, site: Any) -> int:
        try:
            return int(self._id_by_site[site])
        except (KeyError, TypeError):
            raise ValueError(f"{_described(site)} is not a site of the system") from None

    def __call__(self, a: Site, b: Site) -> Any:
        if isinstance(a, SiteArray):  # a vectorized value function: one phase per pair
            return np.array([self(a[k], b[k]) for k in range(len(a))], dtype=complex)
        value = self._phases.phase(self._index(a), self._index(b))
        if value is None:
            raise ValueError(f"{a!r} and {b!r} are not joined by a hopping of the system")
        return value

    def __repr__(self) -> str:
        return "<Peierls phases of a finite system>"


class _LeadPhases:
    """``phase(a, b)`` of a lead: the same for every translate of a hopping."""

    def __init__(self, structure: _LeadStructure, phases: _NodePhases) -> None:
        self._structure = structure
        self._phases = phases

    def nodes(self, a: Site, b: Site) -> tuple[int, int]:
        """Nodes of the two-cell window (cell index 0 or 1 times the cell size plus the
        site's index in the cell) holding the pair, translated so its first cell is 0."""
        cell = self._structure.locate
        ia, da = cell(a)
        ib, db = cell(b)
        if abs(da - db) > 1:
            raise ValueError(
                f"{a!r} and {b!r} are {abs(da - db)} lead cells apart; "
                "lead hoppings join neighbouring cells only"
            )
        shift = min(da, db)
        n = self._structure.cell_size
        return ia + n * (da - shift), ib + n * (db - shift)

    def node_phase(self, a: int, b: int) -> complex:
        value = self._phases.phase(a, b)
        assert value is not None  # asked for hoppings of the window only
        return value

    def __call__(self, a: Site, b: Site) -> Any:
        if isinstance(a, SiteArray):  # a vectorized value function: one phase per pair
            return np.array([self(a[k], b[k]) for k in range(len(a))], dtype=complex)
        value = self._phases.phase(*self.nodes(a, b))
        if value is None:
            raise ValueError(f"{a!r} and {b!r} are not joined by a hopping of the lead")
        return value

    def __repr__(self) -> str:
        return "<Peierls phases of a lead>"


# --------------------------------------------------------------------------------------
# Structures: what magnetic_gauge(syst) learns from the hopping graph
# --------------------------------------------------------------------------------------


class _LeadStructure:
    """The two-cell window of a lead: nodes ``0..n-1`` (cell 0), ``n..2n-1`` (cell 1)."""

    def __init__(self, lead: InfiniteSystem, what: str = "the lead") -> None:
        self.lead = lead
        self.symmetry = lead.symmetry
        n = self.cell_size = lead.cell_size
        self.index = {site: k for k, site in enumerate(lead.sites[:n])}
        period = np.asarray(lead.symmetry.periods[0], dtype=float)
        self.pos = np.concatenate([lead.pos, lead.pos + period])
        self.dim = self.pos.shape[1]
        intra_i, intra_j, inter_i, inter_j = [], [], [], []
        for g in lead._cell:
            intra_i.append(g.rows)
            intra_j.append(g.cols)
        for g in lead._inter:
            # <m|H|m+1>: a forward group's rows are in cell m, a conjugated group's cols.
            inter_i.append(g.cols if g.conj else g.rows)
            inter_j.append(g.rows if g.conj else g.cols)
        empty = [np.zeros(0, np.int64)]
        self.intra = _undirected(np.concatenate(intra_i + empty), np.concatenate(intra_j + empty))
        inter = (np.concatenate(inter_i + empty), np.concatenate(inter_j + empty) + n)
        self.inter = _undirected(*inter)
        ncomp = sp.csgraph.connected_components(
            _adjacency(n, self.intra), directed=False, return_labels=False
        )
        if ncomp > 1:
            raise ValueError(
                f"the unit cell of {what} is not connected ({ncomp} parts joined only through "
                "other cells), so the loops of its hoppings cannot be found from two cells; "
                "choose a unit cell whose sites are connected by hoppings inside the cell "
                "(add zero hoppings if needed)"
            )
        # A spanning tree of the window: the cell's hoppings, their copy in cell 1 and one
        # hopping between the cells, walked breadth-first so parents precede children.
        first_inter = (self.inter[0][:1], self.inter[1][:1])
        both = (
            np.concatenate([self.intra[0], self.intra[0] + n, first_inter[0]]),
            np.concatenate([self.intra[1], self.intra[1] + n, first_inter[1]]),
        )
        self.tree = _tree_edges(2 * n, both, np.array([0], dtype=np.int64))
        self.edges = (
            np.concatenate([self.intra[0], self.inter[0]]),
            np.concatenate([self.intra[1], self.inter[1]]),
        )

    def locate(self, site: Any) -> tuple[int, int]:
        """Index in the unit cell and cell number of a site of the lead."""
        try:
            cell = int(self.symmetry.which(site)[0])
            index = self.index[self.symmetry.to_fd(site)]
        except (KeyError, TypeError, AttributeError, ValueError):
            raise ValueError(f"{site!r} is not a site of the lead") from None
        return index, cell

    def phases(self, field: Any, tol: float, average: bool, what: str) -> _LeadPhases:
        flux = _TriangleFlux(field, self.dim, tol, average, what)
        n_edges = len(self.edges[0])
        both = (
            np.concatenate([self.edges[0], self.tree[0]]),
            np.concatenate([self.edges[1], self.tree[1]]),
        )
        reference = _reference_flux(self.pos, both, flux)
        u = _gauge_factors(
            2 * self.cell_size, self.tree, np.ones(len(self.tree[0]), complex), reference[n_edges:]
        )
        return _LeadPhases(self, _NodePhases(self.edges, reference[:n_edges], u, {}))


class _SystemStructure:
    """A finite system and, for each builder lead, a copy of its first cell beyond the
    interface, with the hoppings whose phases the lead fixes."""

    def __init__(self, syst: System) -> None:
        self.syst = syst
        num_sites = len(syst.pos)
        self.region_edges = _undirected(*syst.hopping_indices)
        self.leads: list[_LeadStructure | None] = []
        paddings = getattr(syst, "lead_paddings", None)
        pos = [np.asarray(syst.pos, dtype=float)]
        # Per lead: fixed edges as (node_a, node_b, lead node_a, lead node_b) for the
        # window's own numbering (or None for padding hoppings, looked up by site).
        self.fixed: list[list[tuple[int, int, Any]]] = []
        next_node = num_sites
        sites = syst.sites
        for k, (flead, iface) in enumerate(zip(syst.leads, syst.lead_interfaces)):
            if not isinstance(flead, InfiniteSystem):
                self.leads.append(None)
                self.fixed.append([])
                continue
            structure = _LeadStructure(flead, f"lead {k}")
            self.leads.append(structure)
            n = structure.cell_size
            domain = int(flead.symmetry.which(sites[int(iface[0])])[0]) if len(iface) else 0
            period = np.asarray(flead.symmetry.periods[0], dtype=float)
            pos.append(flead.pos + (domain + 1) * period)
            # Cell-0 nodes of the window sit at the interface (region indices), cell-1
            # nodes at the copy of the next cell (new nodes).
            window_to_node = np.full(2 * n, -1, dtype=np.int64)
            window_to_node[np.asarray(flead.interface_sites)] = np.asarray(iface)
            window_to_node[n:] = next_node + np.arange(n)
            next_node += n
            fixed: list[tuple[int, int, Any]] = []
            for a, b in zip(*structure.intra):
                # The cell copy's own hoppings, as cell 1 of the window.
                fixed.append((int(window_to_node[a + n]), int(window_to_node[b + n]), (a, b)))
            for a, b in zip(*structure.inter):
                fixed.append((int(window_to_node[a]), int(window_to_node[b]), (a, b)))
            if paddings is not None and len(paddings[k]):
                padded = np.isin(self.region_edges, np.asarray(paddings[k])).any(axis=0)
                for a, b in zip(*(e[padded].tolist() for e in self.region_edges)):
                    fixed.append((a, b, None))
            self.fixed.append(fixed)
        self.num_nodes = next_node
        self.pos = np.concatenate(pos) if len(pos) > 1 else pos[0]
        self._check_fixable()
        fixed_i = [a for fixed in self.fixed for a, _, _ in fixed]
        fixed_j = [b for fixed in self.fixed for _, b, _ in fixed]
        fixed_edges = (np.array(fixed_i, dtype=np.int64), np.array(fixed_j, dtype=np.int64))
        touched = np.unique(np.concatenate(fixed_edges)) if fixed_i else np.zeros(0, np.int64)
        self.tree = _tree_edges(self.num_nodes, fixed_edges, touched)

    def _check_fixable(self) -> None:
        """Refuse loops made only of hoppings fixed by two or more leads."""
        owner: dict[tuple[int, int], int] = {}
        rank_sum = 0
        for k, fixed in enumerate(self.fixed):
            if not fixed:
                continue
            keys = {(min(a, b), max(a, b)) for a, b, _ in fixed}
            for key in keys:
                other = owner.setdefault(key, k)
                if other != k:
                    raise ValueError(
                        self._overlap_message(
                            f"leads {other} and {k} both hop between sites {key}"
                        )
                    )
            rank_sum += _cycle_rank(self.num_nodes, keys)
        if _cycle_rank(self.num_nodes, set(owner)) > rank_sum:
            edges = np.array(sorted(owner), dtype=np.int64).reshape(-1, 2)
            adj = _adjacency(self.num_nodes, (edges[:, 0], edges[:, 1]))
            _, labels = sp.csgraph.connected_components(adj, directed=False)
            groups: dict[int, set[int]] = {}
            for (a, _), k in owner.items():
                groups.setdefault(int(labels[a]), set()).add(k)
            involved = max(groups.values(), key=len)
            raise ValueError(
                self._overlap_message(
                    "the hoppings fixed by leads "
                    + ", ".join(str(k) for k in sorted(involved))
                    + " close a loop"
                )
            )

    @staticmethod
    def _overlap_message(detail: str) -> str:
        return (
            "cannot fix the magnetic gauge: each lead fixes the phases of the hoppings into "
            "its first cell, inside that cell and among the sites attach_lead added, and "
            f"{detail}, whose flux then no gauge choice controls; attach the leads further "
            "apart (enlarge the scattering region with sites of its own between them)"
        )

    def phases(
        self, syst_field: Any, lead_fields: Sequence[Any], tol: float, average: bool
    ) -> tuple[Any, ...]:
        syst = self.syst
        if len(lead_fields) != len(syst.leads):
            raise ValueError(
                f"give one magnetic field for the system and one for each of its "
                f"{len(syst.leads)} leads (in lead order); got {len(lead_fields)} lead fields"
            )
        dim = self.pos.shape[1]
        lead_phases: list[_LeadPhases | None] = [
            None
            if structure is None
            else structure.phases(field, tol, average, f"lead {k}'s field")
            for k, (structure, field) in enumerate(zip(self.leads, lead_fields))
        ]
        flux = _TriangleFlux(syst_field, dim, tol, average, "the system's field")
        fixed: dict[tuple[int, int], complex] = {}
        sites = syst.sites
        for k, entries in enumerate(self.fixed):
            lead = lead_phases[k]
            if lead is None:
                continue
            for a, b, window in entries:
                # Padding hoppings by their sites; the window's by their window nodes.
                fixed[a, b] = (
                    lead(sites[a], sites[b]) if window is None else lead.node_phase(*window)
                )
        parents, children = self.tree
        tree_phases = np.array(
            [
                fixed[p, c] if (p, c) in fixed else np.conj(fixed[c, p])
                for p, c in zip(parents, children)
            ],
            dtype=complex,
        )
        n_edges = len(self.region_edges[0])
        both = (
            np.concatenate([self.region_edges[0], parents]),
            np.concatenate([self.region_edges[1], children]),
        )
        reference = _reference_flux(self.pos, both, flux)
        u = _gauge_factors(self.num_nodes, self.tree, tree_phases, reference[n_edges:])
        region_fixed = {key: value for key, value in fixed.items() if max(key) < len(syst.pos)}
        phases = _NodePhases(self.region_edges, reference[:n_edges], u, region_fixed)
        return (_SystemPhases(syst, phases), *lead_phases)


def _cycle_rank(num_nodes: int, edges: set[tuple[int, int]]) -> int:
    """Number of independent loops of a graph given by its edges."""
    if not edges:
        return 0
    array = np.array(sorted(edges), dtype=np.int64)
    nodes = np.unique(array)
    adj = _adjacency(num_nodes, (array[:, 0], array[:, 1]))[nodes][:, nodes]
    ncomp = sp.csgraph.connected_components(adj, directed=False, return_labels=False)
    return len(array) - len(nodes) + int(ncomp)


# --------------------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------------------


class magnetic_gauge:
    """Fix the magnetic gauge of a finalized system, for Peierls phases of any field.

    Parameters
    ----------
    syst : System or InfiniteSystem
        A finalized system: a finite system (with or without leads) or a lead.

    Raises
    ------
    TypeError
        If `syst` is not a finalized system (e.g. a Builder).
    ValueError
        If a lead's unit cell is not connected by hoppings inside the cell, or if leads
        are attached so close together that hoppings fixed by different leads close a
        loop.

    Notes
    -----
    Calling the gauge, ``gauge(syst_field, *lead_fields, tol=1e-8, average=False)``,
    returns the phase functions:

    - for a finite system without leads, or a lead: one function ``phase(a, b)``;
    - for a finite system with leads: a tuple ``(phase_syst, phase_lead0, ...)``, one
      field per lead (``None`` in the place of a lead given by a function).

    Each field is a number (the flux density along z, for systems in 1 or 2 dimensions),
    a 3-vector, or a function of the position returning one of those, in units of
    ``phi_0 / l**2``. A lead's field must repeat with the lead's period. ``phase(a, b)``
    is the unit complex number that multiplies the hopping ``<a|H|b>``, for sites ``a``,
    ``b`` of the system (any translate, for a lead); around every loop of hoppings
    ``a_0 -> a_1 -> ... -> a_0`` the product of ``phase(a_k, a_k+1)`` is
    ``exp(i pi Phi)``, with ``Phi`` the flux through the loop (right-hand rule).
    Functions of the position are integrated over small triangles by Gauss-Legendre
    rules checked against each other, splitting a triangle where they disagree (near a
    kink or step of the field), to about `tol` (relative to the flux when it exceeds
    1); with ``average=True`` they are evaluated once per triangle, at its centroid
    (exact for fields linear in position). A pair of sites that no hopping joins has no
    phase (``ValueError``).

    In a system with leads, hoppings among the sites that ``attach_lead`` added keep the
    lead's phase (their value functions are the lead's); ``phase_syst`` returns the lead's
    phase for them too. The loops that run into a lead take the system's field.

    Examples
    --------
    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> from mesoscopic.physics.gauge import magnetic_gauge
    >>> lat = meso.lattice.square(norbs=1)
    >>> def hopping(a, b, peierls):
    ...     return -peierls(a, b)
    >>> syst = meso.Builder()
    >>> syst[(lat(x, y) for x in range(3) for y in range(4))] = 4.0
    >>> syst[lat.neighbors()] = hopping
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    >>> lead[(lat(0, y) for y in range(4))] = 4.0
    >>> lead[lat.neighbors()] = hopping
    >>> _ = syst.attach_lead(lead.substituted(peierls="peierls_left"))
    >>> _ = syst.attach_lead(lead.reversed().substituted(peierls="peierls_right"))
    >>> gauge = magnetic_gauge(syst.finalized())
    >>> peierls, peierls_left, peierls_right = gauge(0.1, 0.1, 0.1)
    >>> abs(peierls(lat(0, 0), lat(1, 0)))
    1.0
    """

    def __init__(self, syst: Any) -> None:
        if isinstance(syst, InfiniteSystem):
            self._lead: _LeadStructure | None = _LeadStructure(syst)
            self._system: _SystemStructure | None = None
        elif isinstance(syst, System):
            self._lead = None
            self._system = _SystemStructure(syst)
        else:
            raise TypeError(
                "magnetic_gauge needs a finalized system (builder.finalized()), got "
                f"{type(syst).__name__}"
            )

    def __call__(
        self, syst_field: Any, *lead_fields: Any, tol: float = 1e-8, average: bool = False
    ) -> Any:
        """Peierls phase functions for a magnetic field (see the class notes)."""
        tol = float(tol)
        if not np.isfinite(tol) or tol <= 0:
            raise ValueError(f"tol must be a positive number, got {tol!r}")
        if self._lead is not None:
            if lead_fields:
                raise ValueError(
                    f"a lead takes one magnetic field; got {1 + len(lead_fields)} fields"
                )
            return self._lead.phases(syst_field, tol, bool(average), "the field")
        assert self._system is not None
        if not self._system.syst.leads:
            if lead_fields:
                raise ValueError(
                    "the system has no leads, so it takes one magnetic field; got "
                    f"{1 + len(lead_fields)} fields"
                )
            return self._system.phases(syst_field, (), tol, bool(average))[0]
        return self._system.phases(syst_field, lead_fields, tol, bool(average))
