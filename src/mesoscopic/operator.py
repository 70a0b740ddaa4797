"""Local observables of wave functions: densities, currents and sources.

An operator is built once for a finalized system (or a lead) and then evaluated on
many wave functions. It is defined by an onsite matrix ``M_a`` on each site ``a``
(the "density" it measures: 1 for the charge, a Pauli matrix for a spin
component) and the sites or hoppings where it is evaluated (``where``):

- :class:`Density`: ``rho_a = phi_a^dagger M_a psi_a`` on each site ``a``.
- :class:`Current`: the current of that density along each hopping ``(a, b)``,
  ``J_ab = i [phi_b^dagger H_ab^dagger M_a psi_a - phi_a^dagger M_a H_ab psi_b]``,
  which for ``phi = psi`` and ``M = 1`` is ``2 Im(psi_a^dagger H_ab psi_b)``,
  positive when the particle current flows from site ``b`` to site ``a``.
- :class:`Source`: the rate at which the onsite Hamiltonian creates that density on
  each site, ``K_a = phi_a^dagger i (H_aa^dagger M_a - M_a H_aa) psi_a`` (zero when
  ``M_a`` commutes with ``H_aa``; a spin torque when it does not).

With these definitions the continuity equation holds site by site for a stationary
state: the density's rate of change ``d rho_a / dt = sum_b J_ab + K_a`` vanishes, so
the currents into a site balance its source.

Names, signatures and values follow Kwant's ``kwant.operator`` (``Density``,
``Current``, ``Source``; calling, ``act``, ``bind``, ``tocoo``, ``sum``, ``where``,
``check_hermiticity``), so Kwant scripts run unchanged. The evaluation is
vectorized: the orbital indices of every site and hopping are gathered once at
construction, and a call is a handful of array operations on all of them at once.

Units: with ``hbar = 1`` a current is in units of energy (the Hamiltonian's) times
the density's unit. For a scattering state normalized to unit incoming current
(:func:`mesoscopic.wave_function`), the current through a cross-section is the
transmitted probability, so summing over the incoming modes of lead ``j`` gives
``T_ij``.

Beyond Kwant, every operator also accepts a stack of wave functions, an array of
shape ``(n_states, n_orbitals)`` (such as the rows ``wave_function(...)(lead)``
returns), and returns one row of values per state.

Examples
--------
>>> import numpy as np
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(4) for y in range(2))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
>>> lead[(lat(0, y) for y in range(2))] = 4.0
>>> lead[lat.neighbors()] = -1.0
>>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
>>> fsys = syst.finalized()
>>> psi = meso.wave_function(fsys, 3.5)(0)            # both modes of lead 0
>>> cut = [(lat(2, y), lat(1, y)) for y in range(2)]  # hoppings from x=1 to x=2
>>> current = meso.operator.Current(fsys, where=cut, sum=True)
>>> round(float(current(psi).sum()), 8)               # T_10 of a clean wire
2.0
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from . import _checks
from ._params import PositionalArgs, legacy_params
from .system import InfiniteSystem, System, UserCodeError, _function_name, _signature_info

__all__ = ["Current", "Density", "Source"]

_HERMITICITY_TOL = 1e-13

# One evaluated piece of an operator: ``value[n] += phi[rows[k]]^dagger blocks[k] psi[cols[k]]``
# with ``n = out[k]``; `blocks` is (n_k, ka, kb), or one (ka, kb) block shared by all.
_Term = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.complex128]]


# --------------------------------------------------------------------------------------
# The system: what an operator reads from a System or a lead (InfiniteSystem)
# --------------------------------------------------------------------------------------


def _num_sites(syst: System | InfiniteSystem) -> int:
    return len(syst.norbs)


def _check_norbs_declared(syst: System | InfiniteSystem, name: str) -> None:
    """Refuse, as Kwant's operators do, sites whose family has no declared ``norbs``.

    The system guesses the orbital count of such a family (from its matrices, else 1),
    but an operator's onsite matrix is only meaningful for a known orbital structure.
    A system whose sites are produced on demand is checked by the families its site
    source names, without building every Site object of a possibly huge system.
    """
    source = getattr(syst, "_site_source", None) if isinstance(syst, System) else None
    if source is not None:
        families = set(getattr(source, "families", ()))
    else:
        families = {site.family for site in syst.sites[: _num_sites(syst)]}
    undeclared = sorted((f for f in families if f.norbs is None), key=repr)
    if undeclared:
        raise ValueError(
            f"{name} needs the number of orbitals of every site family, but "
            f"{undeclared[0]!r} has norbs=None; create the lattice with norbs=..., e.g. "
            "lattice.chain(norbs=1)"
        )


def _site_index(syst: System | InfiniteSystem) -> Mapping[Any, int]:
    if isinstance(syst, System):
        return syst.id_by_site
    return {site: i for i, site in enumerate(syst.sites[: syst.cell_size])}


def _hopping_keys(syst: System | InfiniteSystem) -> NDArray[np.int64]:
    """Every hopping ``(a, b)``, both directions, as sorted unique keys ``a * n_sites + b``."""
    if isinstance(syst, System):
        hi, hj = syst.hopping_indices
    else:
        # Hoppings inside the lead's unit cell; those to the next cell leave the cell.
        groups = syst._cell
        hi = np.concatenate([g.rows for g in groups]) if groups else np.zeros(0, np.int64)
        hj = np.concatenate([g.cols for g in groups]) if groups else np.zeros(0, np.int64)
    n = _num_sites(syst)
    hi = np.asarray(hi, dtype=np.int64)
    hj = np.asarray(hj, dtype=np.int64)
    proper = hi != hj
    hi, hj = hi[proper], hj[proper]
    keys = np.sort(np.concatenate([hi * n + hj, hj * n + hi]))
    # np.sort and a mask rather than np.unique, which is several times slower here.
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _hamiltonian(
    syst: System | InfiniteSystem,
    args: tuple[Any, ...],
    params: Mapping[str, Any] | None,
    check_hermiticity: bool,
    *,
    onsite: bool = True,
) -> sp.csr_matrix:
    """The Hamiltonian the operator reads; with ``onsite=False`` the hoppings alone, so
    that (as in Kwant) a current calls no onsite value function and needs none of its
    parameters."""
    from .transport import params_from_args

    # Kwant hands positional args to the system's value functions too: the same values by
    # name (the deprecation warning was given when the operator was called).
    params = params_from_args(syst, args, params, warn=False)
    if not onsite:
        return sp.csr_matrix(syst._hopping_matrix(params or {}))
    if isinstance(syst, System):
        ham = syst.hamiltonian_submatrix(
            sparse=True, params=params, check_hermiticity=check_hermiticity
        )
    else:
        ham = syst.cell_hamiltonian(params, sparse=True)
    return sp.csr_matrix(ham)


def _gather_blocks(
    ham: sp.csr_matrix, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.complex128]:
    """The blocks ``ham[rows[k][:, None], cols[k][None, :]]``, shape (n, ka, kb)."""
    n, ka = rows.shape
    kb = cols.shape[1]
    r = np.broadcast_to(rows[:, :, None], (n, ka, kb)).ravel()
    c = np.broadcast_to(cols[:, None, :], (n, ka, kb)).ravel()
    if len(r) == 0:
        return np.zeros((n, ka, kb), dtype=complex)
    values = np.asarray(ham[r, c]).ravel().astype(complex, copy=False)
    return values.reshape(n, ka, kb)


def _orbitals(
    syst: System | InfiniteSystem, sites: NDArray[np.int64], k: int
) -> NDArray[np.int64]:
    return syst.orb_offsets[sites][:, None] + np.arange(k, dtype=np.int64)[None, :]


# --------------------------------------------------------------------------------------
# where
# --------------------------------------------------------------------------------------


def _as_site_id(syst: System | InfiniteSystem, item: Any, what: str) -> int:
    n = _num_sites(syst)
    if isinstance(item, (bool, np.bool_)):
        raise TypeError(f"{what} must be a site or a site index, got {item!r}")
    if isinstance(item, numbers.Integral):
        if not 0 <= int(item) < n:
            raise ValueError(f"{what} {int(item)} is not a site index; valid are 0..{n - 1}")
        return int(item)
    try:
        return int(_site_index(syst)[item])
    except (KeyError, TypeError):
        place = "the lead's unit cell" if isinstance(syst, InfiniteSystem) else "the system"
        raise ValueError(f"{what} {_checks._show(item)} is not a site of {place}") from None


def _int_array(where: Any) -> NDArray[np.int64] | None:
    """`where` as an integer array when it is one (the fast path), else None."""
    if not isinstance(where, (list, tuple, np.ndarray)) or len(where) == 0:
        return None
    try:
        arr = np.asarray(where)
    except (TypeError, ValueError):
        return None
    if not np.issubdtype(arr.dtype, np.integer):
        return None
    return arr.astype(np.int64)


def _normalize_site_where(syst: System | InfiniteSystem, where: Any) -> NDArray[np.int64]:
    n = _num_sites(syst)
    if where is None:
        ids = np.arange(n, dtype=np.int64)
    elif callable(where):
        ids = np.array(
            [i for i, site in enumerate(syst.sites[: _num_sites(syst)]) if where(site)],
            dtype=np.int64,
        )
    else:
        if isinstance(where, (str, bytes)) or not hasattr(where, "__iter__"):
            raise TypeError(
                f"where must be a sequence of sites or site indices, or a function of a "
                f"site, got {_checks._show(where)}"
            )
        arr = _int_array(where)
        if arr is not None and arr.ndim == 1:
            bad = (arr < 0) | (arr >= n)
            if np.any(bad):
                raise ValueError(
                    f"where holds site index {int(arr[bad][0])}; valid are 0..{n - 1}"
                )
            ids = arr
        else:
            ids = np.array(
                [_as_site_id(syst, item, "where holds") for item in where], dtype=np.int64
            )
    out = ids.reshape(-1, 1)
    out.flags.writeable = False
    return out


def _normalize_hopping_where(syst: System | InfiniteSystem, where: Any) -> NDArray[np.int64]:
    n = _num_sites(syst)
    keys = _hopping_keys(syst)
    if where is None:
        pairs = np.stack([keys // n, keys % n], axis=1)
    elif callable(where):
        sites = syst.sites
        hops = np.stack([keys // n, keys % n], axis=1)
        keep = [k for k, (a, b) in enumerate(hops.tolist()) if where(sites[a], sites[b])]
        pairs = hops[np.array(keep, dtype=np.int64)]
    else:
        if isinstance(where, (str, bytes)) or not hasattr(where, "__iter__"):
            raise TypeError(
                f"where must be a sequence of hoppings (pairs of sites or site indices), or "
                f"a function of two sites, got {_checks._show(where)}"
            )
        arr = _int_array(where)
        if arr is not None and arr.ndim == 2 and arr.shape[1] == 2:
            bad = (arr < 0) | (arr >= n)
            if np.any(bad):
                raise ValueError(
                    f"where holds site index {int(arr[bad][0])}; valid are 0..{n - 1}"
                )
            pairs = arr
        else:
            rows = []
            for item in where:
                try:
                    a, b = item
                except (TypeError, ValueError):
                    raise TypeError(
                        f"where must hold hoppings, pairs (a, b) of sites or site indices; "
                        f"got {_checks._show(item)}"
                    ) from None
                rows.append(
                    (
                        _as_site_id(syst, a, "a hopping in where has"),
                        _as_site_id(syst, b, "a hopping in where has"),
                    )
                )
            pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
        # Every pair must be a hopping of the system (one lookup for all of them).
        wanted = pairs[:, 0] * n + pairs[:, 1]
        pos = np.searchsorted(keys, wanted)
        found = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == wanted)
        if len(keys) == 0:
            found = np.zeros(len(wanted), dtype=bool)
        if not np.all(found):
            a, b = (int(x) for x in pairs[~found][0])
            sites = syst.sites
            place = (
                "inside the lead's unit cell (an operator on a lead acts on one unit cell)"
                if isinstance(syst, InfiniteSystem)
                else "of the system"
            )
            raise ValueError(
                f"where holds ({sites[a]!r}, {sites[b]!r}) (site indices ({a}, {b})), which is "
                f"not a hopping {place}"
            )
    out = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    out.flags.writeable = False
    return out


# --------------------------------------------------------------------------------------
# onsite
# --------------------------------------------------------------------------------------


def _constant_block(value: Any, what: str) -> NDArray[np.complex128]:
    try:
        block = np.asarray(value, dtype=complex)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} must be a number or a square matrix, got {_checks._show(value)}"
        ) from None
    if block.ndim == 0:
        block = block.reshape(1, 1)
    if block.ndim != 2 or block.shape[0] != block.shape[1]:
        raise ValueError(f"{what} must be a number or a square matrix, got shape {block.shape}")
    if not np.all(np.isfinite(block)):
        raise ValueError(f"{what} contains NaN or inf: {_checks._show(block.tolist())}")
    return block


def _is_hermitian(blocks: NDArray[np.complex128]) -> NDArray[np.bool_]:
    """Per block: Hermitian to a tolerance relative to the block's size."""
    asym = np.abs(blocks - np.swapaxes(blocks.conj(), -1, -2)).max(axis=(-2, -1))
    scale = np.maximum(np.abs(blocks).max(axis=(-2, -1)), 1.0)
    return np.asarray(asym <= _HERMITICITY_TOL * scale)


class _OnsiteFunction:
    """The onsite value of an operator as a function of a site index.

    Wraps the user's function of a site (or a dict from site families to values) so
    that ``onsite(i, *args, params=...)`` gives the value on site ``i`` of the system.
    """

    def __init__(self, syst: System | InfiniteSystem, value: Any) -> None:
        self.syst = syst
        self.value = value

    def __repr__(self) -> str:
        return f"<onsite {_checks._show(self.value)}>"

    def parameters(self) -> frozenset[str]:
        if isinstance(self.value, Mapping):
            return frozenset()
        names, _, _ = _signature_info(self.value, 1)
        return frozenset(names)

    def __call__(self, i: int, *args: Any, params: Mapping[str, Any] | None = None) -> Any:
        site = self.syst.sites[i]
        if isinstance(self.value, Mapping):
            try:
                return self.value[site.family]
            except KeyError:
                raise ValueError(
                    f"the onsite dict has no value for the site family of {site!r}; it has "
                    f"values for {list(self.value)!r}"
                ) from None
        func = self.value
        if args:
            return _call_user(func, site, args, {})
        return _call_user(func, site, (), params or {})


def _call_user(
    func: Callable[..., Any], site: Any, args: tuple[Any, ...], params: Mapping[str, Any]
) -> Any:
    if args:
        kwargs: dict[str, Any] = {}
    else:
        names, defaults, takes_all = _signature_info(func, 1)
        missing = [n for n in names if n not in params and n not in defaults]
        if missing:
            given = sorted(params) if params else "none"
            raise TypeError(
                f"the operator's onsite function {_function_name(func)!r} needs parameter "
                f"{missing[0]!r}; parameters given: {given}. Pass it as params={{"
                f"{missing[0]!r}: ...}}"
            )
        kwargs = dict(params) if takes_all else {n: params[n] for n in names if n in params}
    try:
        return func(site, *args, **kwargs)
    except Exception as exc:
        if isinstance(exc, UserCodeError):
            raise
        shown = ", ".join(f"{k}={_checks._show(v)}" for k, v in kwargs.items()) or "none"
        raise UserCodeError(
            f"the operator's onsite function {_function_name(func)} raised "
            f"{type(exc).__name__}: {exc}\n  while evaluating it on {site!r}\n"
            f"  with parameters: {shown}"
        ) from exc


def _check_args_params(args: Any, params: Any) -> tuple[tuple[Any, ...], Mapping[str, Any] | None]:
    """Kwant's deprecated positional ``args`` or ``params``, by the package's one rule."""
    given = legacy_params(args, params)
    if isinstance(given, PositionalArgs):
        return given.args, None
    if given is not None and not isinstance(given, Mapping):
        raise TypeError(f"params must be a dict of values by name, got {_checks._show(given)}")
    return (), given


# --------------------------------------------------------------------------------------
# The operators
# --------------------------------------------------------------------------------------


class _LocalOperator:
    """Shared machinery: onsite values, where, evaluation, act, bind."""

    _kind = "operator"
    _needs_hamiltonian = False

    syst: System | InfiniteSystem
    # Also a class attribute, as on Kwant's operator types (``Density.onsite`` exists).
    onsite: Any = None
    where: NDArray[np.int64]
    check_hermiticity: bool
    sum: bool

    def __init__(
        self,
        syst: Any,
        onsite: Any = 1,
        where: Any = None,
        check_hermiticity: bool = True,
        *,
        sum: bool = False,
    ) -> None:
        syst = _checks.finalized_system(syst, type(self).__name__, lead=True)
        _check_norbs_declared(syst, type(self).__name__)
        self.syst = syst
        self.check_hermiticity = bool(check_hermiticity)
        self.sum = bool(sum)
        self.where = self._normalize_where(where)
        self._bound: list[_Term] | None = None
        # The orbital count of every site an onsite value is needed on.
        self._onsite_sites = self.where[:, 0]
        if callable(onsite) or isinstance(onsite, Mapping):
            self.onsite = _OnsiteFunction(syst, onsite)
            self._scalar_onsite = False
            if isinstance(onsite, Mapping):
                for family, value in onsite.items():
                    block = _constant_block(value, f"the onsite value for family {family!r}")
                    if self.check_hermiticity and not _is_hermitian(block):
                        raise ValueError(
                            f"the onsite value for family {family!r} is not Hermitian: "
                            f"{block.tolist()}; pass check_hermiticity=False for a "
                            "non-Hermitian operator"
                        )
        else:
            block = _constant_block(onsite, "onsite")
            if self.check_hermiticity and not _is_hermitian(block):
                raise ValueError(
                    f"onsite is not Hermitian: {block.tolist()}; pass check_hermiticity=False "
                    "for a non-Hermitian operator"
                )
            scalar = np.ndim(onsite) == 0 or block.shape == (1, 1)
            if not scalar:
                norbs = syst.norbs[self._onsite_sites]
                bad = norbs != block.shape[0]
                if np.any(bad):
                    site = int(self._onsite_sites[bad][0])
                    raise ValueError(
                        f"onsite has shape {block.shape}, but the site {syst.sites[site]!r} "
                        f"has {int(syst.norbs[site])} orbitals; give a scalar or a "
                        f"{int(syst.norbs[site])}x{int(syst.norbs[site])} matrix (or a "
                        "function of the site)"
                    )
            self.onsite = block
            self._scalar_onsite = scalar

    # ---- construction helpers -----------------------------------------------------

    def _normalize_where(self, where: Any) -> NDArray[np.int64]:
        return _normalize_site_where(self.syst, where)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {len(self.where)} {self._kind}s, sum={self.sum}>"

    # ---- evaluation of the onsite values --------------------------------------------

    def _onsite_blocks(
        self,
        sites: NDArray[np.int64],
        k: int,
        args: tuple[Any, ...],
        params: Mapping[str, Any] | None,
    ) -> NDArray[np.complex128]:
        """M_a for the given sites, all with `k` orbitals: (n, k, k) or one (k, k)."""
        if not isinstance(self.onsite, _OnsiteFunction):
            block = self.onsite
            return block[0, 0] * np.eye(k, dtype=complex) if self._scalar_onsite else block
        out = np.empty((len(sites), k, k), dtype=complex)
        cache: dict[int, NDArray[np.complex128]] = {}
        for n, site in enumerate(sites):
            site = int(site)
            value = self.onsite(site, *args, params=params)
            block = cache.get(id(value)) if isinstance(value, np.ndarray) else None
            if block is None:
                block = _constant_block(
                    value, f"the operator's onsite value on {self.syst.sites[site]!r}"
                )
                if block.shape == (1, 1) and k != 1:
                    block = block[0, 0] * np.eye(k, dtype=complex)
                if block.shape != (k, k):
                    raise ValueError(
                        f"the operator's onsite value on {self.syst.sites[site]!r} has shape "
                        f"{block.shape}, but the site has {k} orbitals"
                    )
            out[n] = block
        if self.check_hermiticity:
            ok = _is_hermitian(out)
            if not np.all(ok):
                site = int(sites[~ok][0])
                raise ValueError(
                    f"the operator's onsite value on {self.syst.sites[site]!r} is not "
                    f"Hermitian: {out[int(np.argmin(ok))].tolist()}; pass "
                    "check_hermiticity=False for a non-Hermitian operator"
                )
        return out

    def _terms(self, args: tuple[Any, ...], params: Mapping[str, Any] | None) -> list[_Term]:
        """Evaluate the operator's blocks for these parameters."""
        raise NotImplementedError

    def _evaluated(self, args: Any, params: Any) -> list[_Term]:
        args, params = _check_args_params(args, params)
        if self._bound is not None:
            if args or params is not None:
                raise ValueError(
                    "this operator is bound to its parameters (bind()); call it without "
                    "args or params"
                )
            return self._bound
        return self._terms(args, params)

    def _system_params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The parameters to hand to the system: without those only the onsite takes."""
        if params is None or not isinstance(self.onsite, _OnsiteFunction):
            return params
        if getattr(self.syst, "_takes_any_parameter", False):
            return params
        own = self.onsite.parameters() - self.syst.parameters
        return {k: v for k, v in params.items() if k not in own}

    # ---- the public interface -------------------------------------------------------

    def _states(self, value: Any, name: str) -> NDArray[np.complex128]:
        try:
            arr = np.asarray(value, dtype=complex)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be an array of complex amplitudes, got {_checks._show(value)}"
            ) from None
        n = self.syst.num_orbitals
        if arr.ndim not in (1, 2) or arr.shape[-1] != n:
            raise ValueError(
                f"{name} must have shape ({n},) (one amplitude per orbital) or "
                f"(n_states, {n}), got shape {arr.shape}"
            )
        return arr

    def __call__(
        self,
        bra: Any,
        ket: Any = None,
        args: Any = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Matrix elements ``<bra|Q_n|ket>`` for every site or hopping ``n`` of ``where``.

        Parameters
        ----------
        bra, ket : array_like of complex, shape (n_orbitals,) or (n_states, n_orbitals)
            Wave functions on all orbitals of the system; ``ket`` defaults to ``bra``
            (the expectation value).
        params : dict, optional
            Parameter values by name, for the onsite function and (currents and
            sources) the Hamiltonian.

        Returns
        -------
        ndarray, shape (len(where),) or (n_states, len(where)); or a number when sum=True
            Real when ``ket`` is not given and ``check_hermiticity`` is True, else
            complex. Ordered as ``where``.
        """
        bra_arr = self._states(bra, "bra")
        ket_arr = bra_arr if ket is None else self._states(ket, "ket")
        if ket is not None and bra_arr.shape != ket_arr.shape:
            raise ValueError(
                f"bra and ket must have the same shape, got {bra_arr.shape} and {ket_arr.shape}"
            )
        terms = self._evaluated(args, params)
        lead_shape = bra_arr.shape[:-1]
        out = np.zeros((*lead_shape, len(self.where)), dtype=complex)
        bra_conj = bra_arr.conj()
        for index, rows, cols, blocks in terms:
            left = bra_conj[..., rows]
            right = ket_arr[..., cols]
            if rows.shape[1] == 1 and cols.shape[1] == 1:
                b = blocks[..., 0, 0]
                out[..., index] += left[..., 0] * b * right[..., 0]
            elif blocks.ndim == 2:
                out[..., index] += np.einsum("...na,ab,...nb->...n", left, blocks, right)
            else:
                out[..., index] += np.einsum("...na,nab,...nb->...n", left, blocks, right)
        if ket is None and self.check_hermiticity:
            result: Any = out.real
        else:
            result = out
        if self.sum:
            total = result.sum(axis=-1)
            return total if total.ndim else total[()]
        return result

    def act(
        self, ket: Any, args: Any = (), *, params: Mapping[str, Any] | None = None
    ) -> NDArray[np.complex128]:
        """The operator applied to a wave function, ``sum_n Q_n |ket>``.

        Parameters
        ----------
        ket : array_like of complex, shape (n_orbitals,) or (n_states, n_orbitals)
        params : dict, optional

        Returns
        -------
        ndarray of complex, the shape of ``ket``
            ``bra.conj() @ op.act(ket)`` equals ``op(bra, ket).sum()``.
        """
        ket_arr = self._states(ket, "ket")
        matrix = self._matrix(self._evaluated(args, params))
        return np.asarray((matrix @ ket_arr.T).T)

    def bind(self, args: Any = (), *, params: Mapping[str, Any] | None = None) -> Any:
        """A copy with the onsite values (and Hamiltonian blocks) evaluated for `params`.

        The bound operator is called without ``params``, and each call skips the
        evaluation of value functions and the Hamiltonian.
        """
        args, params = _check_args_params(args, params)
        if self._bound is not None:
            raise TypeError("this operator is already bound to its parameters")
        bound = copy.copy(self)
        bound._bound = self._terms(args, params)
        return bound

    def _matrix(self, terms: list[_Term]) -> sp.csr_matrix:
        n = self.syst.num_orbitals
        rows_all, cols_all, data_all = [], [], []
        for _, rows, cols, blocks in terms:
            m, ka = rows.shape
            kb = cols.shape[1]
            full = np.broadcast_to(blocks, (m, ka, kb))
            rows_all.append(np.broadcast_to(rows[:, :, None], (m, ka, kb)).ravel())
            cols_all.append(np.broadcast_to(cols[:, None, :], (m, ka, kb)).ravel())
            data_all.append(full.ravel())
        if not data_all:
            return sp.csr_matrix((n, n), dtype=complex)
        return sp.coo_matrix(
            (np.concatenate(data_all), (np.concatenate(rows_all), np.concatenate(cols_all))),
            shape=(n, n),
        ).tocsr()

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _groups_by_norbs(
    norbs: NDArray[np.int64],
) -> list[tuple[int, NDArray[np.int64]]]:
    """(k, indices) for each distinct orbital count k."""
    return [(int(k), np.flatnonzero(norbs == k)) for k in np.unique(norbs)]


class Density(_LocalOperator):
    """The density of an onsite quantity on each site: ``rho_a = phi_a^dagger M_a psi_a``.

    Parameters
    ----------
    syst : System or InfiniteSystem
        A finalized system, or a finalized lead (then wave functions live on one unit
        cell).
    onsite : number, square matrix, dict or callable, default 1
        ``M_a``: a number (times the identity on every site), one matrix for all
        sites (``norbs x norbs``), a dict from site families to such values, or a
        function of a site (then parameters by name) returning one.
    where : sequence of sites or site indices, or callable, optional
        The sites to evaluate on, in the order of the output; a function of a site
        selects those where it is true. Default: all sites, in the system's order.
    check_hermiticity : bool, default True
        Refuse a non-Hermitian ``M_a`` (ValueError), and return real expectation
        values.
    sum : bool, default False
        Return the sum over ``where`` instead of one value per site.

    Attributes
    ----------
    where : ndarray of int, shape (n, 1)
        Site indices evaluated on.
    onsite : complex ndarray or callable
        The constant matrix, or a function ``onsite(site_index, params=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = np.eye(2)
    >>> syst[lat.neighbors()] = -np.eye(2)
    >>> fsys = syst.finalized()
    >>> spin_z = Density(fsys, [[1, 0], [0, -1]])
    >>> psi = np.array([1, 0, 0, 1, 0.6, 0.8])         # up, down, tilted
    >>> np.round(spin_z(psi), 12).tolist()
    [1.0, -1.0, -0.28]
    """

    _kind = "site"

    def _terms(self, args: tuple[Any, ...], params: Mapping[str, Any] | None) -> list[_Term]:
        sites = self.where[:, 0]
        terms = []
        for k, idx in _groups_by_norbs(self.syst.norbs[sites]):
            orbs = _orbitals(self.syst, sites[idx], k)
            blocks = self._onsite_blocks(sites[idx], k, args, params)
            terms.append((idx, orbs, orbs, blocks))
        return terms

    def tocoo(self, args: Any = (), *, params: Mapping[str, Any] | None = None) -> sp.coo_matrix:
        """The operator as a sparse matrix on all orbitals (sum over ``where``).

        Returns
        -------
        scipy.sparse.coo_matrix, shape (n_orbitals, n_orbitals)
            Block diagonal: ``M_a`` on the orbitals of each site of ``where``.
        """
        return self._matrix(self._evaluated(args, params)).tocoo()


class Source(_LocalOperator):
    """The source of an onsite quantity on each site.

    ``K_a = phi_a^dagger i (H_aa^dagger M_a - M_a H_aa) psi_a``: the rate at which
    the onsite Hamiltonian ``H_aa`` changes the density ``M_a`` (a torque for a spin
    density); zero where they commute. Parameters as for
    :class:`Density`; the Hamiltonian takes the same ``params``.

    Examples
    --------
    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = np.array([[0, 1], [1, 0]])        # a field along x
    >>> torque_z = Source(syst.finalized(), [[1, 0], [0, -1]])
    >>> round(float(torque_z(np.array([1, 1j]) / np.sqrt(2))[0]), 12)  # spin along y
    2.0
    """

    _kind = "site"
    _needs_hamiltonian = True

    def _terms(self, args: tuple[Any, ...], params: Mapping[str, Any] | None) -> list[_Term]:
        sites = self.where[:, 0]
        groups = _groups_by_norbs(self.syst.norbs[sites])
        # The operator's own values first: a missing parameter is reported for them.
        onsite = [self._onsite_blocks(sites[idx], k, args, params) for k, idx in groups]
        ham = _hamiltonian(self.syst, args, self._system_params(params), self.check_hermiticity)
        terms = []
        for (k, idx), m in zip(groups, onsite):
            orbs = _orbitals(self.syst, sites[idx], k)
            h = _gather_blocks(ham, orbs, orbs)
            blocks = 1j * (np.swapaxes(h.conj(), -1, -2) @ m - m @ h)
            terms.append((idx, orbs, orbs, blocks))
        return terms


class Current(_LocalOperator):
    """The current of an onsite quantity along each hopping.

    For a hopping ``(a, b)`` with Hamiltonian block ``H_ab`` (from ``b`` to ``a``)
    ``J_ab = i [phi_b^dagger H_ab^dagger M_a psi_a - phi_a^dagger M_a H_ab psi_b]``:
    for ``M = 1`` and ``phi = psi`` the particle current ``2 Im(psi_a^dagger H_ab
    psi_b)`` (``hbar = 1``), positive when it flows from ``b`` to ``a``.

    Parameters
    ----------
    syst : System or InfiniteSystem
        A finalized system or lead (hoppings inside one unit cell).
    onsite : number, square matrix, dict or callable, default 1
        ``M_a`` of the density whose current this is (1: particles; a Pauli matrix:
        a spin current), taken on the site ``a`` the current flows to.
    where : sequence of hoppings, or callable, optional
        Pairs ``(a, b)`` of sites or site indices, each a hopping of the system; a
        function of two sites selects the hoppings where it is true. Default: every
        hopping in both directions, ordered by ``a`` then ``b`` (``J_ba = -J_ab``).
    check_hermiticity, sum
        As for :class:`Density`.

    Attributes
    ----------
    where : ndarray of int, shape (n, 2)
        The hoppings ``(a, b)`` as site indices.

    Examples
    --------
    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> fsys = syst.finalized()
    >>> k = 0.5
    >>> wave = np.exp(1j * k * np.arange(3))           # a plane wave moving right
    >>> J = Current(fsys, where=[(lat(1), lat(0)), (lat(2), lat(1))])
    >>> np.allclose(J(wave), 2 * np.sin(k))            # velocity 2 sin k
    True
    """

    _kind = "hopping"
    _needs_hamiltonian = True

    def _normalize_where(self, where: Any) -> NDArray[np.int64]:
        return _normalize_hopping_where(self.syst, where)

    def _terms(self, args: tuple[Any, ...], params: Mapping[str, Any] | None) -> list[_Term]:
        a_sites, b_sites = self.where[:, 0], self.where[:, 1]
        norbs = self.syst.norbs
        keys = norbs[a_sites] * (int(norbs.max()) + 1) + norbs[b_sites]
        groups = [np.flatnonzero(keys == key) for key in np.unique(keys)]
        shapes = [(int(norbs[a_sites[i[0]]]), int(norbs[b_sites[i[0]]])) for i in groups]
        # The operator's own values first: a missing parameter is reported for them.
        onsite = [
            self._onsite_blocks(a_sites[idx], ka, args, params)
            for idx, (ka, _) in zip(groups, shapes)
        ]
        ham = _hamiltonian(
            self.syst, args, self._system_params(params), self.check_hermiticity, onsite=False
        )
        terms = []
        for idx, (ka, kb), m in zip(groups, shapes, onsite):
            a_orbs = _orbitals(self.syst, a_sites[idx], ka)
            b_orbs = _orbitals(self.syst, b_sites[idx], kb)
            h = _gather_blocks(ham, a_orbs, b_orbs)
            m_h = m @ h
            h_dag_m = np.swapaxes(h.conj(), -1, -2) @ m
            terms.append((idx, b_orbs, a_orbs, 1j * h_dag_m))
            terms.append((idx, a_orbs, b_orbs, -1j * m_h))
        return terms
