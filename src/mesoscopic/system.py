"""Finalized, immutable tight-binding systems: a scattering region and its leads.

``Builder.finalized()`` produces a :class:`System` (the scattering region with
leads attached) or, for a Builder with a translational symmetry, an
:class:`InfiniteSystem` (a lead). Both evaluate their Hamiltonian for a set of
named parameters.

Magnetic field
--------------
``finalized(magnetic_flux="phi")`` multiplies every hopping ``<a|H|b>`` by the
Peierls factor ``exp(-2j*pi*phi * integral_b^a A.dl)`` of a uniform field along
+z, for particles of charge -e (electrons), with ``A`` normalized to unit curl:
``phi`` is the flux through a unit area of the xy-plane in units of the flux
quantum h/e. In the scattering region the gauge is the Landau gauge
``A = (-y, 0)``; each lead with direction ``u`` uses ``A_u = (u x r).z * u``...
precisely ``A_u = (s x - c y) (c, s)`` for ``u = (c, s)``, which is
translation invariant along the lead. The two are joined by the exact gauge
transformation ``A_u = A + grad chi_u`` applied to the lead's interface sites,
so any number of leads in any directions (a Hall bar) is handled consistently.

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.chain(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(i) for i in range(3))] = 0.0
>>> syst[lat.neighbors()] = -1.0
>>> fsys = syst.finalized()
>>> fsys.hamiltonian_submatrix().real.tolist()
[[0.0, -1.0, 0.0], [-1.0, 0.0, -1.0], [0.0, -1.0, 0.0]]
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .lattice import Site

__all__ = ["InfiniteSystem", "System"]


# --------------------------------------------------------------------------------------
# Value functions
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _signature_info(func: Callable[..., Any], n_sites: int) -> tuple[tuple[str, ...], frozenset[str], bool]:
    """Parameter names a value function takes after its site arguments.

    Returns (names, names_with_defaults, takes_all_params).
    """
    target = func
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return (), frozenset(), True
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < n_sites and not any(
        p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()
    ):
        what = "an onsite function takes the site" if n_sites == 1 else "a hopping function takes two sites"
        raise TypeError(
            f"value function {getattr(func, '__name__', func)!r} takes {len(positional)} positional "
            f"arguments, but {what} first, then parameters by name"
        )
    names = []
    defaults = set()
    takes_all = False
    for p in list(sig.parameters.values())[n_sites:]:
        if p.kind == p.VAR_KEYWORD:
            takes_all = True
        elif p.kind == p.VAR_POSITIONAL:
            continue
        else:
            names.append(p.name)
            if p.default is not p.empty:
                defaults.add(p.name)
    return tuple(names), frozenset(defaults), takes_all


def _call_value(
    func: Callable[..., Any], sites: tuple[Site, ...], params: Mapping[str, Any], what: str
) -> Any:
    names, defaults, takes_all = _signature_info(func, len(sites))
    missing = [n for n in names if n not in params and n not in defaults]
    if missing:
        given = sorted(params) if params else "none"
        raise ValueError(
            f"missing parameter {missing[0]!r} needed by the {what} function "
            f"{getattr(func, '__name__', func)!r}; parameters given: {given}. "
            "Pass it at solve time, e.g. params={" + repr(missing[0]) + ": ...}"
        )
    kwargs = dict(params) if takes_all else {n: params[n] for n in names if n in params}
    return func(*sites, **kwargs)


def _function_parameters(func: Callable[..., Any], n_sites: int) -> set[str]:
    names, _, _ = _signature_info(func, n_sites)
    return set(names)


# --------------------------------------------------------------------------------------
# Peierls phases
# --------------------------------------------------------------------------------------


def _landau_line_integral(ra: NDArray[np.float64], rb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Integral of A = (-y, 0) along the straight line from rb to ra (unit curl)."""
    return -0.5 * (ra[..., 1] + rb[..., 1]) * (ra[..., 0] - rb[..., 0])


def _lead_line_integral(
    ra: NDArray[np.float64], rb: NDArray[np.float64], direction: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Integral of A_u = (s x - c y)(c, s) from rb to ra, translation invariant along u = (c, s)."""
    c, s = direction
    mid = 0.5 * (ra + rb)
    d = ra - rb
    return (s * mid[..., 0] - c * mid[..., 1]) * (c * d[..., 0] + s * d[..., 1])


def _gauge_function(r: NDArray[np.float64], direction: NDArray[np.float64]) -> NDArray[np.float64]:
    """chi_u with A_u = A_landau + grad chi_u."""
    c, s = direction
    x, y = r[..., 0], r[..., 1]
    return s * c * (x * x - y * y) / 2 + s * s * x * y


def _lead_direction(period: NDArray[np.float64]) -> NDArray[np.float64]:
    if period.size < 2:
        raise ValueError("a magnetic field needs a system in at least two dimensions")
    if period.size > 2 and abs(period[2]) > 1e-12 * np.linalg.norm(period):
        raise ValueError(
            f"leads along z (period {period.tolist()}) are not supported with a field along z"
        )
    u = period[:2] / np.linalg.norm(period[:2])
    return u


# --------------------------------------------------------------------------------------
# Shared assembly
# --------------------------------------------------------------------------------------


def _infer_norbs(builder: Any) -> dict[int, int]:
    """Orbitals per site family: declared, else from constant matrix values, else 1."""
    norbs: dict[int, int] = {}
    for site, value in builder.site_value_pairs():
        fam = site.family
        if fam.norbs is not None:
            norbs[id(fam)] = fam.norbs
        elif not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(id(fam), int(np.shape(value)[0]))
    for (a, b), value in builder.hopping_value_pairs():
        if not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(id(a.family), int(np.shape(value)[0]))
            norbs.setdefault(id(b.family), int(np.shape(value)[1]))
    return norbs


class _Terms:
    """Sites, hoppings and their values, evaluated into matrices for given parameters."""

    def __init__(
        self,
        sites: list[Site],
        onsite_values: list[Any],
        hop_i: NDArray[np.int64],
        hop_j: NDArray[np.int64],
        hop_sites: list[tuple[Site, Site]],
        hop_values: list[Any],
        norbs: NDArray[np.int64],
    ) -> None:
        self.sites = sites
        self.onsite_values = onsite_values
        self.hop_i = hop_i
        self.hop_j = hop_j
        self.hop_sites = hop_sites
        self.hop_values = hop_values
        self.norbs = norbs
        self.offsets = np.concatenate([[0], np.cumsum(norbs)]).astype(np.int64)
        self.parameters = set()
        for v in onsite_values:
            if callable(v):
                self.parameters |= _function_parameters(v, 1)
        for v in hop_values:
            if callable(v):
                self.parameters |= _function_parameters(v, 2)

    def _block(self, value: Any, shape: tuple[int, int], what: str) -> NDArray[np.complex128]:
        block = np.asarray(value, dtype=complex)
        if block.ndim == 0:
            if shape != (1, 1):
                raise ValueError(
                    f"{what} is a scalar but the sites have {shape[0]} and {shape[1]} orbitals; "
                    "give a matrix"
                )
            return block.reshape(1, 1)
        if block.shape != shape:
            raise ValueError(
                f"{what} has shape {block.shape}, expected {shape} from the sites' norbs "
                "(set norbs= on the lattice)"
            )
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{what} contains NaN or inf")
        return block

    def onsite_blocks(self, params: Mapping[str, Any], *, check_hermiticity: bool = True) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]], list[NDArray[np.complex128]]]:
        rows, cols, data = [], [], []
        for i, (site, value) in enumerate(zip(self.sites, self.onsite_values)):
            n = int(self.norbs[i])
            if callable(value):
                value = _call_value(value, (site,), params, "onsite")
                what = f"onsite value of {site!r}"
                block = self._block(value, (n, n), what)
                if check_hermiticity and not np.allclose(block, block.conj().T, atol=1e-12):
                    raise ValueError(f"{what} is not Hermitian: {block.tolist()}")
            else:
                block = self._block(value, (n, n), f"onsite value of {site!r}")
            o = self.offsets[i]
            r, c = np.meshgrid(np.arange(o, o + n), np.arange(o, o + n), indexing="ij")
            rows.append(r.ravel())
            cols.append(c.ravel())
            data.append(block.ravel())
        return rows, cols, data

    def hopping_blocks(
        self,
        params: Mapping[str, Any],
        indices: Sequence[int] | None = None,
        phases: NDArray[np.complex128] | None = None,
    ) -> list[NDArray[np.complex128]]:
        out = []
        idx = range(len(self.hop_values)) if indices is None else indices
        for k in idx:
            value = self.hop_values[k]
            a, b = self.hop_sites[k]
            shape = (int(self.norbs[self.hop_i[k]]), int(self.norbs[self.hop_j[k]]))
            if callable(value):
                value = _call_value(value, (a, b), params, "hopping")
            block = self._block(value, shape, f"hopping value of {(a, b)!r}")
            if phases is not None:
                block = block * phases[k]
            out.append(block)
        return out


def _params_dict(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of parameter values by name, got {params!r}")
    return params


def _flux_value(params: Mapping[str, Any], name: str | None) -> float:
    if name is None:
        return 0.0
    if name not in params:
        raise ValueError(
            f"missing parameter {name!r} (the magnetic flux per unit area in units of h/e); "
            f"parameters given: {sorted(params) or 'none'}"
        )
    value = params[name]
    try:
        flux = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"magnetic flux {name!r} must be a real number, got {value!r}") from exc
    if not np.isfinite(flux):
        raise ValueError(f"magnetic flux {name!r} must be finite, got {value!r}")
    return flux


# --------------------------------------------------------------------------------------
# Leads
# --------------------------------------------------------------------------------------


class InfiniteSystem:
    """A finalized lead: one unit cell repeated along a translational symmetry.

    Cells are numbered ``m = 0, 1, 2, ...`` along the symmetry period (away from
    the scattering region when attached). :meth:`cell_hamiltonian` is
    ``<m|H|m>`` and :meth:`inter_cell_hopping` is ``<m|H|m+1>``, so the Bloch
    Hamiltonian is ``H(k) = h_cell + hop e^{ik} + hop^dagger e^{-ik}``.

    Attributes
    ----------
    sites : list of Site
        Sites of the unit cell (the fundamental domain).
    symmetry : TranslationalSymmetry
    spin_degeneracy : int
    """

    def __init__(self, builder: Any, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None) -> None:
        sym = builder.symmetry
        self.symmetry = sym
        self.spin_degeneracy = _check_degeneracy(spin_degeneracy)
        self.magnetic_flux = magnetic_flux
        self.conservation_law = builder.conservation_law
        sites = sorted(builder._sites, key=lambda s: (s.family.name, id(s.family), s.tag))
        if not sites:
            raise ValueError("the lead has no sites")
        index = {s: i for i, s in enumerate(sites)}
        norbs_map = _infer_norbs(builder)
        norbs = np.array([norbs_map.get(id(s.family), 1) for s in sites], dtype=np.int64)
        onsite = [builder._sites[s] for s in sites]
        cell_i, cell_j, cell_sites, cell_vals = [], [], [], []
        inter_i, inter_j, inter_sites, inter_vals, inter_conj = [], [], [], [], []
        for (a, b), value in builder._hoppings.items():
            dom_b = sym.which(b)
            if dom_b == 0:
                cell_i.append(index[a])
                cell_j.append(index[b])
                cell_sites.append((a, b))
                cell_vals.append(value)
            elif dom_b in (1, -1):
                # <a|H|b> with b one period away; stored so that the hopping maps to
                # <cell 0|H|cell 1>: directly when b is in cell 1, conjugated otherwise.
                inter_i.append(index[a] if dom_b == 1 else index[sym.to_fd(b)])
                inter_j.append(index[sym.to_fd(b)] if dom_b == 1 else index[a])
                inter_sites.append((a, b))
                inter_vals.append(value)
                inter_conj.append(dom_b == -1)
            else:
                raise ValueError(
                    f"lead hopping {(a, b)!r} spans {abs(dom_b)} periods; lead hoppings may only "
                    "connect neighbouring unit cells (use a longer period)"
                )
        if not inter_vals:
            raise ValueError(
                "the lead has no hoppings between neighbouring unit cells, so it carries no "
                "current; add hoppings across the period (e.g. lead[lat.neighbors()] = -t)"
            )
        self.sites = sites
        self.pos = np.array([s.pos for s in sites], dtype=float)
        self._cell = _Terms(
            sites, onsite, np.array(cell_i, dtype=np.int64), np.array(cell_j, dtype=np.int64),
            cell_sites, cell_vals, norbs,
        )
        self._inter = _Terms(
            sites, onsite, np.array(inter_i, dtype=np.int64), np.array(inter_j, dtype=np.int64),
            inter_sites, inter_vals, norbs,
        )
        self._inter_conj = np.array(inter_conj, dtype=bool)
        self.norbs = norbs
        self.orb_offsets = self._cell.offsets
        self.parameters = frozenset(self._cell.parameters | self._inter.parameters) | (
            frozenset([magnetic_flux]) if magnetic_flux else frozenset()
        )
        if magnetic_flux is not None:
            self._direction = _lead_direction(sym.period)

    def __repr__(self) -> str:
        return f"<InfiniteSystem with {len(self.sites)} sites per cell, {self.num_orbitals} orbitals>"

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    def _phases(self, terms: _Terms, params: Mapping[str, Any]) -> NDArray[np.complex128] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0 or not terms.hop_sites:
            return None
        ra = np.array([a.pos[:2] for a, _ in terms.hop_sites])
        rb = np.array([b.pos[:2] for _, b in terms.hop_sites])
        return np.exp(-2j * np.pi * flux * _lead_line_integral(ra, rb, self._direction))

    def cell_hamiltonian(self, params: Mapping[str, Any] | None = None, *, sparse: bool = False) -> Any:
        """Hamiltonian of one unit cell, ``<m|H|m>``, shape (n, n) with n orbitals per cell."""
        params = _params_dict(params)
        n = self.num_orbitals
        rows, cols, data = self._cell.onsite_blocks(params)
        blocks = self._cell.hopping_blocks(params, phases=self._phases(self._cell, params))
        off = self.orb_offsets
        for k, block in enumerate(blocks):
            i, j = self._cell.hop_i[k], self._cell.hop_j[k]
            r, c = np.meshgrid(
                np.arange(off[i], off[i + 1]), np.arange(off[j], off[j + 1]), indexing="ij"
            )
            rows += [r.ravel(), c.T.ravel()]
            cols += [c.ravel(), r.T.ravel()]
            data += [block.ravel(), block.conj().T.ravel()]
        mat = sp.coo_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        ).tocsr()
        return mat if sparse else mat.toarray()

    def inter_cell_hopping(self, params: Mapping[str, Any] | None = None, *, sparse: bool = False) -> Any:
        """Hopping from cell m+1 to cell m, ``<m|H|m+1>``, shape (n, n)."""
        params = _params_dict(params)
        n = self.num_orbitals
        blocks = self._inter.hopping_blocks(params, phases=self._phases(self._inter, params))
        off = self.orb_offsets
        rows, cols, data = [], [], []
        for k, block in enumerate(blocks):
            i, j = self._inter.hop_i[k], self._inter.hop_j[k]
            if self._inter_conj[k]:
                block = block.conj().T
            r, c = np.meshgrid(
                np.arange(off[i], off[i + 1]), np.arange(off[j], off[j + 1]), indexing="ij"
            )
            rows.append(r.ravel())
            cols.append(c.ravel())
            data.append(block.ravel())
        mat = sp.coo_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        ).tocsr()
        return mat if sparse else mat.toarray()

    def conservation_projectors(self) -> list[NDArray[np.complex128]] | None:
        """Projectors onto the blocks of the conservation law, or None.

        Returns a list of (n, n_b) matrices with orthonormal columns, one per
        distinct eigenvalue of the conservation law, in ascending order.
        """
        law = self.conservation_law
        if law is None:
            return None
        n = self.num_orbitals
        mat = np.zeros((n, n), dtype=complex)
        for i, site in enumerate(self.sites):
            value = law(site) if callable(law) else law
            block = np.atleast_2d(np.asarray(value, dtype=complex))
            k = int(self.norbs[i])
            if block.shape != (k, k):
                raise ValueError(
                    f"conservation law on {site!r} has shape {block.shape}, expected ({k}, {k})"
                )
            if not np.allclose(block, block.conj().T, atol=1e-12):
                raise ValueError(f"conservation law on {site!r} must be Hermitian")
            o = self.orb_offsets[i]
            mat[o : o + k, o : o + k] = block
        vals, vecs = np.linalg.eigh(mat)
        groups: list[list[int]] = []
        for idx in np.argsort(vals, kind="stable"):
            if groups and abs(vals[idx] - vals[groups[-1][0]]) < 1e-8:
                groups[-1].append(int(idx))
            else:
                groups.append([int(idx)])
        return [vecs[:, g] for g in groups]

    def modes(self, energy: float = 0.0, params: Mapping[str, Any] | None = None) -> Any:
        """Propagating and stabilized modes at `energy` (see :func:`mesoscopic.leads.modes`)."""
        from . import leads

        return leads.modes(
            self.cell_hamiltonian(params),
            self.inter_cell_hopping(params),
            energy,
            projectors=self.conservation_projectors(),
        )

    def selfenergy(self, energy: float = 0.0, params: Mapping[str, Any] | None = None) -> NDArray[np.complex128]:
        """Retarded self-energy on a copy of the unit cell next to the lead, shape (n, n)."""
        from . import leads

        return leads.selfenergy(self.cell_hamiltonian(params), self.inter_cell_hopping(params), energy)  # type: ignore[no-any-return]


def _check_degeneracy(value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(
            f"spin_degeneracy must be 1 (spinless or explicit spin orbitals) or 2 "
            f"(spin-degenerate), got {value!r}"
        )
    return int(value)


# --------------------------------------------------------------------------------------
# Finite systems
# --------------------------------------------------------------------------------------


class System:
    """A finalized scattering region with its leads.

    Attributes
    ----------
    sites : list of Site
        All sites, in the order of the Hamiltonian's rows (orbital blocks).
    pos : ndarray, shape (n_sites, dim)
        Site positions.
    leads : list of InfiniteSystem
        The leads, numbered in the order they were attached.
    lead_interfaces : list of ndarray of int
        For each lead, the indices of the sites that are images of the lead's
        unit cell sites (same order as ``leads[k].sites``).
    parameters : frozenset of str
        Names of all parameters the value functions take.
    spin_degeneracy : int
        1 or 2; multiplies conductances.
    """

    def __init__(self, builder: Any, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None) -> None:
        self.spin_degeneracy = _check_degeneracy(spin_degeneracy)
        if magnetic_flux is not None and not isinstance(magnetic_flux, str):
            raise TypeError(f"magnetic_flux must be a parameter name (str), got {magnetic_flux!r}")
        self.magnetic_flux = magnetic_flux
        sites = list(builder._sites)
        if not sites:
            raise ValueError("the system has no sites")
        index = {s: i for i, s in enumerate(sites)}
        norbs_map = _infer_norbs(builder)
        for lead in builder.leads:
            for fam_id, n in _infer_norbs(lead.builder).items():
                if norbs_map.setdefault(fam_id, n) != n:
                    raise ValueError("a lead and the scattering region disagree on norbs")
        norbs = np.array([norbs_map.get(id(s.family), 1) for s in sites], dtype=np.int64)
        hop_i, hop_j, hop_sites, hop_vals = [], [], [], []
        for (a, b), value in builder._hoppings.items():
            hop_i.append(index[a])
            hop_j.append(index[b])
            hop_sites.append((a, b))
            hop_vals.append(value)
        self.sites = sites
        self.id_by_site = index
        self.pos = np.array([s.pos for s in sites], dtype=float)
        self._terms = _Terms(
            sites, [builder._sites[s] for s in sites], np.array(hop_i, dtype=np.int64),
            np.array(hop_j, dtype=np.int64), hop_sites, hop_vals, norbs,
        )
        self.norbs = norbs
        self.orb_offsets = self._terms.offsets
        self.leads = [
            InfiniteSystem(lead.builder, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux)
            for lead in builder.leads
        ]
        self.lead_interfaces = []
        for lead, flead in zip(builder.leads, self.leads):
            sym = lead.builder.symmetry
            images = [sym.act(lead.domain, s) for s in flead.sites]
            missing = [s for s in images if s not in index]
            if missing:
                raise ValueError(f"lead interface site {missing[0]!r} is not in the system")
            self.lead_interfaces.append(np.array([index[s] for s in images], dtype=np.int64))
        params = set(self._terms.parameters)
        for flead in self.leads:
            params |= flead.parameters
        if magnetic_flux:
            params.add(magnetic_flux)
        self.parameters = frozenset(params)
        self._check_connected()
        if magnetic_flux is not None:
            self._setup_gauge()

    def __repr__(self) -> str:
        return (
            f"<System with {len(self.sites)} sites, {len(self._terms.hop_values)} hoppings, "
            f"{len(self.leads)} leads>"
        )

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    @property
    def graph(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Hoppings as two index arrays ``(i, j)``, each hopping once."""
        return self._terms.hop_i, self._terms.hop_j

    def _check_connected(self) -> None:
        n = len(self.sites)
        if n == 1 or not self.leads:
            return
        adj = sp.coo_matrix(
            (np.ones(len(self._terms.hop_i)), (self._terms.hop_i, self._terms.hop_j)), shape=(n, n)
        )
        ncomp, labels = sp.csgraph.connected_components(adj, directed=False)
        if ncomp == 1:
            return
        lead_comps = {int(labels[iface[0]]) for iface in self.lead_interfaces}
        orphan = [i for i in range(n) if int(labels[i]) not in lead_comps]
        if orphan:
            raise ValueError(
                f"the system is disconnected: {len(orphan)} sites (e.g. {self.sites[orphan[0]]!r}) "
                "are not connected to any lead; remove them or add hoppings"
            )

    def _setup_gauge(self) -> None:
        if self.pos.shape[1] < 2:
            raise ValueError("a magnetic field needs a system in at least two dimensions")
        chi = np.zeros(len(self.sites))
        owner = np.full(len(self.sites), -1)
        for k, (flead, iface) in enumerate(zip(self.leads, self.lead_interfaces)):
            direction = _lead_direction(flead.symmetry.period)
            values = _gauge_function(self.pos[iface, :2], direction)
            clash = (owner[iface] >= 0) & ~np.isclose(chi[iface], values)
            if np.any(clash):
                raise ValueError(
                    f"site {self.sites[iface[np.argmax(clash)]]!r} is an interface site of two "
                    "leads in different directions; enlarge the scattering region"
                )
            chi[iface] = values
            owner[iface] = k
        ra = self.pos[self._terms.hop_i, :2]
        rb = self.pos[self._terms.hop_j, :2]
        self._gauge_integral = (
            _landau_line_integral(ra, rb) + chi[self._terms.hop_i] - chi[self._terms.hop_j]
        )

    def _phases(self, params: Mapping[str, Any]) -> NDArray[np.complex128] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0:
            return None
        return np.exp(-2j * np.pi * flux * self._gauge_integral)

    def hamiltonian_submatrix(
        self,
        args: Sequence[Any] = (),
        to_sites: Any = None,
        from_sites: Any = None,
        sparse: bool = False,
        return_norb: bool = False,
        *,
        params: Mapping[str, Any] | None = None,
        check_hermiticity: bool = True,
    ) -> Any:
        """The Hamiltonian of the scattering region (without leads).

        Parameters
        ----------
        params : dict, optional
            Values of the parameters the value functions take, by name.
        sparse : bool
            Return a scipy.sparse CSR matrix instead of a dense array.

        Returns
        -------
        ndarray or scipy.sparse.csr_matrix, shape (n_orbitals, n_orbitals)
            Complex Hamiltonian, orbitals ordered site by site (``orb_offsets``).

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain()
        >>> syst = meso.Builder()
        >>> syst[lat(0)] = lambda site, v: v
        >>> syst.finalized().hamiltonian_submatrix(params={"v": 2.0}).real.tolist()
        [[2.0]]
        """
        if args:
            raise TypeError("positional args are not supported; pass params={name: value}")
        if to_sites is not None or from_sites is not None:
            raise NotImplementedError("to_sites/from_sites selections are not supported")
        params = _params_dict(params)
        n = self.num_orbitals
        rows, cols, data = self._terms.onsite_blocks(params, check_hermiticity=check_hermiticity)
        blocks = self._terms.hopping_blocks(params, phases=self._phases(params))
        off = self.orb_offsets
        hi, hj = self._terms.hop_i, self._terms.hop_j
        if blocks and all(b.shape == (1, 1) for b in blocks):
            vals = np.array([b[0, 0] for b in blocks])
            rows += [off[hi], off[hj]]
            cols += [off[hj], off[hi]]
            data += [vals, vals.conj()]
        else:
            for k, block in enumerate(blocks):
                i, j = hi[k], hj[k]
                r, c = np.meshgrid(
                    np.arange(off[i], off[i + 1]), np.arange(off[j], off[j + 1]), indexing="ij"
                )
                rows += [r.ravel(), c.T.ravel()]
                cols += [c.ravel(), r.T.ravel()]
                data += [block.ravel(), block.conj().T.ravel()]
        mat = sp.coo_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        ).tocsr()
        out = mat if sparse else mat.toarray()
        if return_norb:
            return out, self.norbs.copy()
        return out

    def lead_interface_orbitals(self, lead: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Orbital indices of lead `lead`'s interface: (system orbitals, lead-cell orbitals)."""
        flead = self.leads[lead]
        iface = self.lead_interfaces[lead]
        sys_orbs, cell_orbs = [], []
        for k, i in enumerate(iface):
            n = int(self.norbs[i])
            if n != int(flead.norbs[k]):
                raise ValueError(
                    f"site {self.sites[i]!r} has {n} orbitals in the system but "
                    f"{int(flead.norbs[k])} in lead {lead}"
                )
            sys_orbs.append(np.arange(self.orb_offsets[i], self.orb_offsets[i] + n))
            cell_orbs.append(np.arange(flead.orb_offsets[k], flead.orb_offsets[k] + n))
        return np.concatenate(sys_orbs), np.concatenate(cell_orbs)

    def slices(self) -> list[NDArray[np.int64]]:
        """Order sites into slices so the Hamiltonian is block tridiagonal.

        Slices are breadth-first layers from lead 0's interface; every hopping
        connects sites in the same or in neighbouring slices.

        Returns
        -------
        list of ndarray of int
            Site indices per slice.
        """
        n = len(self.sites)
        adj = sp.coo_matrix(
            (np.ones(len(self._terms.hop_i)), (self._terms.hop_i, self._terms.hop_j)), shape=(n, n)
        ).tocsr()
        adj = (adj + adj.T).tocsr()
        start = self.lead_interfaces[0] if self.leads else np.array([0])
        layer = np.full(n, -1)
        layer[start] = 0
        queue = deque(int(i) for i in start)
        while queue:
            i = queue.popleft()
            for j in adj.indices[adj.indptr[i] : adj.indptr[i + 1]]:
                if layer[j] < 0:
                    layer[j] = layer[i] + 1
                    queue.append(int(j))
        if np.any(layer < 0):
            rest = np.flatnonzero(layer < 0)
            layer[rest] = layer.max() + 1
        return [np.flatnonzero(layer == k) for k in range(int(layer.max()) + 1)]

    def pos_of(self, i: int) -> NDArray[np.float64]:
        return self.pos[i]
