"""Kwant's ``kwant.physics`` under the names Kwant scripts use.

``Bands(lead)`` (band structure, velocities, curvatures, eigenvectors), the raw lead
functions ``modes``/``selfenergy`` and their ``PropagatingModes``/``StabilizedModes``
(from :mod:`mesoscopic.leads`), ``DiscreteSymmetry`` (:mod:`mesoscopic.physics.symmetry`),
``two_terminal_shotnoise`` (:mod:`mesoscopic.physics.noise`) and ``magnetic_gauge``
(:mod:`mesoscopic.physics.gauge`).

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.chain(norbs=1)
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
>>> lead[lat(0)] = 0.0
>>> lead[lat.neighbors()] = -1.0
>>> bands = meso.physics.Bands(lead.finalized())
>>> [round(float(e), 12) for e in bands(0.0)]
[-2.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _checks
from .. import leads as _leads
from ..leads import PropagatingModes, StabilizedModes, modes, selfenergy
from ..system import InfiniteSystem
from .gauge import magnetic_gauge
from .noise import two_terminal_shotnoise
from .symmetry import DiscreteSymmetry

__all__ = [
    "Bands",
    "DiscreteSymmetry",
    "PropagatingModes",
    "StabilizedModes",
    "magnetic_gauge",
    "modes",
    "selfenergy",
    "two_terminal_shotnoise",
]

#: Largest stack of Bloch Hamiltonians (bytes) that ``Bands.energies`` diagonalizes at once.
_BATCH_BYTES = 64 << 20


class Bands:
    """Band structure of a finalized lead, callable on a momentum (Kwant's ``Bands``).

    Parameters
    ----------
    lead : InfiniteSystem
        A finalized lead (``fsys.leads[i]`` or ``lead_builder.finalized()``).
    args : tuple
        Kwant's deprecated positional parameters; must be empty.
    params : dict, optional
        Parameter values by name.

    Attributes
    ----------
    ham : (n, n) complex ndarray
        Cell Hamiltonian.
    hop : (n, n) complex ndarray
        Kwant's inter-cell hopping, so that ``H(k) = ham + hop e^{-ik} + hop^dagger e^{ik}``
        (``k`` in units of 1/period; the same momenta as the lead's modes).

    Raises
    ------
    ValueError
        A cell Hamiltonian that is not Hermitian.

    Notes
    -----
    ``bands(k)`` returns the sorted energies at momentum k, shape (n,).
    ``bands(k, derivative_order=1)`` returns ``(energies, velocities)``, ``2`` adds the
    curvatures ``d^2E/dk^2``, and ``return_eigenvectors=True`` appends the ``(n, n)``
    orthonormal eigenvectors (columns). Velocities come from the Hellmann-Feynman theorem
    (within degenerate bands the eigenvectors diagonalize the velocity operator);
    curvatures from second-order perturbation theory,
    ``E_n'' = <n|H''|n> + 2 sum_{m != n} |<m|H'|n>|^2 / (E_n - E_m)`` over non-degenerate
    ``m``, which is exact for non-degenerate bands.
    """

    #: Kept for Kwant compatibility (Kwant switches its velocity formula above this size).
    _crossover_size = 8

    def __init__(
        self,
        lead: InfiniteSystem,
        args: tuple[Any, ...] = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if args:
            raise TypeError("positional args are not supported; pass params={name: value}")
        if not isinstance(lead, InfiniteSystem):
            raise TypeError(
                f"Bands needs a finalized lead (InfiniteSystem), got {type(lead).__name__}"
            )
        ham = np.asarray(lead.cell_hamiltonian(params), dtype=complex)
        deviation = float(np.max(np.abs(ham - ham.conj().T), initial=0.0))
        if deviation > 1e-10 * max(float(np.max(np.abs(ham), initial=0.0)), 1.0):
            raise ValueError(
                f"the cell Hamiltonian is not Hermitian: max |H - H^dagger| = {deviation:.3g}"
            )
        # Kwant's inter-cell hopping, <m+1|H|m> (the dagger of hopping_away).
        hop = np.asarray(lead.inter_cell_hopping(params=params), dtype=complex)
        self.ham = ham
        self.hop = hop
        self._bands = _leads.Bands(ham, hop.conj().T)

    def __call__(
        self, k: float, derivative_order: int = 0, return_eigenvectors: bool = False
    ) -> Any:
        """Energies (and derivatives, eigenvectors) at momentum ``k``.

        Parameters
        ----------
        k : float
            Momentum (1/period).
        derivative_order : {0, 1, 2}
            Highest derivative ``d^n E / dk^n`` returned.
        return_eigenvectors : bool
            Append the eigenvectors (columns, orthonormal) to the result.

        Returns
        -------
        ndarray or tuple of ndarray
            ``energies`` alone, or ``(energies, [velocities, [curvatures]], [vectors])``;
            all sorted by energy.
        """
        if np.ndim(k) != 0:
            raise TypeError(
                f"k must be one momentum (a real number), got an array of shape {np.shape(k)}; "
                "use Bands.energies(momenta) for many"
            )
        momentum = float(_checks.real_array(k, "k"))
        if isinstance(derivative_order, bool) or not isinstance(
            derivative_order, int | np.integer
        ):
            raise TypeError(f"derivative_order must be an integer, got {derivative_order!r}")
        if derivative_order > 2:
            raise NotImplementedError(
                f"derivative_order={derivative_order}: band derivatives are implemented up to "
                "second order (0, 1 or 2)"
            )
        if derivative_order < 0:
            raise ValueError(f"derivative_order must be 0, 1 or 2, got {derivative_order}")
        phase = complex(math.cos(momentum), -math.sin(momentum))
        hop_term = self.hop * phase
        hamiltonian = self.ham + hop_term + hop_term.conj().T
        if derivative_order == 0 and not return_eigenvectors:
            return np.asarray(np.linalg.eigvalsh(hamiltonian), dtype=float)
        energies, vectors = np.linalg.eigh(hamiltonian)
        output: list[NDArray[Any]] = [np.asarray(energies, dtype=float)]
        if derivative_order >= 1:
            first = 1j * (hop_term.conj().T - hop_term)  # dH/dk
            scale = max(float(np.max(np.abs(energies), initial=0.0)), 1.0)
            degenerate = _leads._degenerate_groups(energies, 1e-10 * scale)
            for group in degenerate:
                if group.size > 1:
                    sub = vectors[:, group]
                    rotation = np.linalg.eigh(sub.conj().T @ first @ sub)[1]
                    vectors[:, group] = sub @ rotation
            coupling = vectors.conj().T @ first @ vectors
            output.append(np.diag(coupling).real.copy())
            if derivative_order == 2:
                second = -(hop_term + hop_term.conj().T)  # d^2H/dk^2
                gaps = energies[:, None] - energies[None, :]
                same = np.zeros(gaps.shape, dtype=bool)
                for group in degenerate:
                    same[np.ix_(group, group)] = True
                inverse = np.divide(1.0, gaps, out=np.zeros_like(gaps), where=~same)
                curvature = np.einsum("in,ij,jn->n", vectors.conj(), second, vectors).real
                curvature += 2 * np.sum(inverse * np.abs(coupling) ** 2, axis=1)
                output.append(curvature)
        if return_eigenvectors:
            output.append(vectors)
        return output[0] if len(output) == 1 else tuple(output)

    def energies(self, momenta: Any) -> NDArray[np.float64]:
        """Energies at many momenta, shape (n_k, n_orbitals).

        The Bloch Hamiltonians are diagonalized in batches of at most
        ``_BATCH_BYTES`` bytes, so the memory stays bounded for any number of momenta.
        """
        ks = np.ravel(_checks.real_array(momenta, "momenta"))
        n = self._bands.h_cell.shape[0]
        batch = max(1, _BATCH_BYTES // (16 * n * n))
        parts = [
            _leads.bands(self._bands.h_cell, self._bands.hop, ks[start : start + batch])
            for start in range(0, len(ks), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, n))
