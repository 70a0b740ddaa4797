"""Conservation laws and discrete symmetries of a Hamiltonian (Kwant's
``kwant.physics.DiscreteSymmetry``).

A :class:`DiscreteSymmetry` gathers

* ``projectors``: matrices with orthonormal columns that split the orbitals into blocks
  left invariant by the Hamiltonian (a conservation law, e.g. spin up / spin down);
* ``time_reversal``: the unitary part ``U_T`` of an antiunitary ``T = U_T K`` with
  ``U_T H^* U_T^dagger = H`` and ``U_T U_T^* = +-1``;
* ``particle_hole``: the unitary part ``U_P`` of an antiunitary ``P = U_P K`` with
  ``U_P H^* U_P^dagger = -H`` and ``U_P U_P^* = +-1``;
* ``chiral``: a unitary ``C`` with ``C H C^dagger = -H`` and ``C^2 = 1``.

All operators are sparse matrices (any ``scipy.sparse`` format; they are stored as CSR).
Giving two of the three discrete symmetries fixes the third (``C = U_P U_T^*``), which is
then computed. :func:`mesoscopic.leads.modes` uses the object to choose the basis of the
lead modes: modes are computed block by block, and the symmetries relate incoming and
outgoing modes (``time_reversal``, ``chiral``), modes at ``k`` and ``-k``
(``particle_hole``), or the modes of two blocks that a symmetry (or equality) maps onto each
other.

With projectors ``P_i``, a symmetry ``S`` must be in canonical form: its projection
``P_j^dagger S P_i`` (``P_j^dagger U P_i^*`` for an antiunitary one) is nonzero for at most
one block ``i`` per block ``j``, i.e. ``S`` maps each block onto itself or onto one other
block.

Examples
--------
>>> import numpy as np
>>> from scipy import sparse
>>> from mesoscopic.physics import DiscreteSymmetry
>>> sym = DiscreteSymmetry(time_reversal=sparse.identity(2))
>>> sym.validate(np.array([[0.0, 1.0], [1.0, 0.0]]))    # real: time-reversal symmetric
[]
>>> sym.validate(np.array([[0.0, 1j], [-1j, 0.0]]))
['Time reversal']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

__all__ = ["DiscreteSymmetry"]

_NAMES = ("Time reversal", "Particle-hole", "Chiral")
_ANTIUNITARY = (True, True, False)
_SIGNS = (1, -1, -1)
_IDENTITY_TOLERANCE = 1e-10
_BLOCK_TOLERANCE = 1e-7
_VALIDATE_TOLERANCE = 1e-8


def _as_csr(value: Any, what: str) -> sparse.csr_matrix:
    if not sparse.issparse(value):
        raise TypeError(
            f"{what} must be a scipy.sparse matrix, got {type(value).__name__}; wrap a dense "
            "array in scipy.sparse.csr_matrix(...)"
        )
    return sparse.csr_matrix(value, dtype=np.result_type(value.dtype, float))


def _deviation_from_identity(matrix: Any) -> float:
    diff = sparse.csr_matrix(matrix) - sparse.identity(matrix.shape[0], format="csr")
    return float(np.max(np.abs(diff.data), initial=0.0))


def _conj_if(matrix: Any, antiunitary: bool) -> Any:
    return matrix.conj() if antiunitary else matrix


class DiscreteSymmetry:
    """Conservation law (projectors) and discrete symmetries of a Hamiltonian.

    Parameters
    ----------
    projectors : sequence of sparse matrices, optional
        ``(n, n_b)`` (or square ``(n, n)``, zero columns are dropped) matrices whose columns
        together form a unitary matrix; each block is left invariant by the Hamiltonian.
    time_reversal : sparse (n, n) matrix, optional
        Unitary part of the time-reversal operator (``U U^* = +-1``).
    particle_hole : sparse (n, n) matrix, optional
        Unitary part of the particle-hole operator (``U U^* = +-1``).
    chiral : sparse (n, n) matrix, optional
        Chiral operator (unitary, ``C^2 = 1``).

    Raises
    ------
    TypeError
        An operator or projector that is not a ``scipy.sparse`` matrix.
    ValueError
        Projectors whose columns do not form a unitary matrix, a symmetry that is not
        (anti)unitary or does not square to the identity (``+-1`` for the antiunitary
        ones), three symmetries whose product ``C U_P U_T^*`` is not the identity, or a
        symmetry that is not in canonical form with respect to the projectors.

    Attributes
    ----------
    projectors : list of csr_matrix or None
    time_reversal, particle_hole, chiral : csr_matrix or None
        With two of the three given, the third is computed from them.

    Notes
    -----
    The object unpacks (and indexes) as
    ``(projectors, time_reversal, particle_hole, chiral)``.
    """

    def __init__(
        self,
        projectors: Sequence[Any] | None = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
    ) -> None:
        if projectors is not None:
            if sparse.issparse(projectors) or isinstance(projectors, np.ndarray):
                raise TypeError(
                    "projectors must be a sequence of scipy.sparse matrices (one per block), "
                    f"got a single {type(projectors).__name__}"
                )
            projectors = [_as_csr(p, f"projectors[{i}]") for i, p in enumerate(projectors)]
        given = [
            None if op is None else _as_csr(op, f"{name.lower()} symmetry")
            for op, name in zip((time_reversal, particle_hole, chiral), _NAMES, strict=True)
        ]
        t_op, p_op, c_op = given
        if t_op is not None and p_op is not None and c_op is not None:
            product = c_op @ p_op @ t_op.conj()
            if _deviation_from_identity(product) > _IDENTITY_TOLERANCE:
                raise ValueError(
                    "the product chiral @ particle_hole @ conj(time_reversal) of the three "
                    "symmetries must be the identity"
                )
        if t_op is not None and p_op is not None and c_op is None:
            c_op = p_op @ t_op.conj()
        elif p_op is not None and c_op is not None and t_op is None:
            # T = P K C: unitary part P C^*, written with P P^* = +-1 to keep the sign.
            t_op = p_op @ p_op.conj() @ p_op @ c_op.conj()
        elif c_op is not None and t_op is not None and p_op is None:
            p_op = t_op @ t_op.conj() @ c_op @ t_op
        symmetries = [t_op, p_op, c_op]
        for op, name, anti in zip(symmetries, _NAMES, _ANTIUNITARY, strict=True):
            if op is None:
                continue
            if op.shape[0] != op.shape[1]:
                raise ValueError(f"{name} symmetry must be a square matrix, got shape {op.shape}")
            if _deviation_from_identity(op.conj().T @ op) > _IDENTITY_TOLERANCE:
                kind = "the unitary part of an antiunitary operator" if anti else "unitary"
                raise ValueError(f"{name} symmetry must be {kind} (S^dagger S = 1)")
            square = op @ _conj_if(op, anti)
            plus = _deviation_from_identity(square) <= _IDENTITY_TOLERANCE
            minus = anti and _deviation_from_identity(-square) <= _IDENTITY_TOLERANCE
            if not (plus or minus):
                valid = "+1 or -1 (S S^* = +-1)" if anti else "+1 (S^2 = 1)"
                raise ValueError(f"{name} symmetry must square to {valid}")
        if projectors is not None:
            kept = []
            for p in projectors:
                weights = np.asarray(abs(p).sum(axis=0)).ravel()
                kept.append(sparse.csr_matrix(p[:, np.flatnonzero(weights > 1e-10)]))
            projectors = kept
            sizes = {p.shape[0] for p in projectors}
            if len(sizes) != 1:
                raise ValueError(
                    f"all projectors must have the same number of rows, got {sorted(sizes)}"
                )
            total = sum(p @ p.conj().T for p in projectors)
            if _deviation_from_identity(total) > _IDENTITY_TOLERANCE:
                raise ValueError(
                    "the projectors must stack to a unitary matrix: sum_i P_i P_i^dagger must "
                    "be the identity"
                )
            for op, name, anti in zip(symmetries, _NAMES, _ANTIUNITARY, strict=True):
                if op is None:
                    continue
                for j, p_j in enumerate(projectors):
                    targets = [
                        i
                        for i, p_i in enumerate(projectors)
                        if np.max(
                            np.abs((p_j.conj().T @ op @ _conj_if(p_i, anti)).data), initial=0.0
                        )
                        > _BLOCK_TOLERANCE
                    ]
                    if len(targets) > 1:
                        raise ValueError(
                            f"{name} symmetry is not in canonical form: it maps blocks "
                            f"{targets} onto block {j}; each block must map onto one block "
                            "only (see the DiscreteSymmetry documentation)"
                        )
        self.projectors: list[sparse.csr_matrix] | None = projectors
        self.time_reversal, self.particle_hole, self.chiral = symmetries

    def __getitem__(self, item: Any) -> Any:
        return (self.projectors, self.time_reversal, self.particle_hole, self.chiral)[item]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.projectors, self.time_reversal, self.particle_hole, self.chiral))

    def __repr__(self) -> str:
        parts = []
        if self.projectors is not None:
            parts.append(f"projectors=<{len(self.projectors)} blocks>")
        for name, op in zip(("time_reversal", "particle_hole", "chiral"), self[1:], strict=True):
            if op is not None:
                parts.append(f"{name}=<{op.shape[0]}x{op.shape[1]}>")
        return f"DiscreteSymmetry({', '.join(parts)})"

    def validate(self, matrix: Any) -> list[str]:
        """Names of the symmetries that ``matrix`` breaks.

        Parameters
        ----------
        matrix : (n, m) sparse or dense matrix
            A Hamiltonian (or hopping); an ``(n, m)`` matrix with ``m < n`` is padded with
            zero columns to ``(n, n)`` (a lead's inter-cell hopping).

        Returns
        -------
        list of str
            Any of ``"Conservation law"``, ``"Time reversal"``, ``"Particle-hole"``,
            ``"Chiral"``, in that order; empty when all hold (to ``1e-8``).
        """
        mat = sparse.csr_matrix(matrix) if sparse.issparse(matrix) else np.asarray(matrix)
        if mat.ndim != 2:
            raise ValueError(f"matrix must be 2-D, got shape {mat.shape}")
        n, m = mat.shape
        if m > n:
            raise ValueError(f"matrix must have at most as many columns as rows, got {mat.shape}")
        mat = sparse.csr_matrix(mat)
        if m < n:
            mat = sparse.hstack([mat, sparse.csr_matrix((n, n - m))], format="csr")

        def size(value: Any) -> float:
            return float(np.linalg.norm(sparse.csr_matrix(value).data))

        broken = []
        if self.projectors is not None:
            for p in self.projectors:
                full = p @ p.conj().T
                if size(full @ mat - mat @ full) > _VALIDATE_TOLERANCE:
                    broken.append("Conservation law")
                    break
        for op, name, anti, sign in zip(self[1:], _NAMES, _ANTIUNITARY, _SIGNS, strict=True):
            if op is None:
                continue
            transformed = op.conj().T @ mat @ op
            if size(transformed - sign * _conj_if(mat, anti)) > _VALIDATE_TOLERANCE:
                broken.append(name)
        return broken


def _site_block(
    law: Any, site: Any, norbs: int, what: str, args: tuple[Any, ...], params: Any
) -> NDArray[np.complex128]:
    """The ``norbs x norbs`` block of a per-site operator given as Kwant's Builder takes
    it: a number (times the identity), a matrix, a dict from site families to those, or
    a function of the site (and parameters by name)."""
    import inspect
    from collections.abc import Mapping

    value = law
    if isinstance(law, Mapping):
        if site.family not in law:
            raise ValueError(
                f"the {what} gives no value for the family of {site!r}; give one for "
                f"each of the system's families"
            )
        value = law[site.family]
    if callable(value):
        if args:
            value = value(site, *args)
        else:
            given = params or {}
            names = list(inspect.signature(value).parameters)[1:]
            missing = [n for n in names if n not in given]
            if missing:
                raise ValueError(
                    f"the {what} function needs the parameter {missing[0]!r}; pass it "
                    f"in params, e.g. params={{{missing[0]!r}: ...}}"
                )
            value = value(site, **{n: given[n] for n in names})
    block = np.asarray(value, dtype=complex)
    if block.ndim == 0:
        return block * np.eye(norbs, dtype=complex)
    if block.shape != (norbs, norbs):
        raise ValueError(
            f"the {what} on {site!r} has shape {block.shape}, but the site has {norbs} "
            f"orbitals; give a number or a {norbs}x{norbs} matrix"
        )
    return block


def _onsite_discrete_symmetry(
    sites: Sequence[Any],
    norbs: Any,
    conservation_law: Any = None,
    time_reversal: Any = None,
    particle_hole: Any = None,
    chiral: Any = None,
    *,
    args: tuple[Any, ...] = (),
    params: Any = None,
) -> DiscreteSymmetry:
    """The :class:`DiscreteSymmetry` of a system from a Builder's per-site operators.

    `sites` and `norbs` list the system's sites in the order of the Hamiltonian's rows
    and their orbital counts. The conservation law's eigenvalues must be integers (as
    in Kwant): each distinct eigenvalue, in increasing order, gives a projector whose
    columns are the law's eigenvectors on every site. The symmetries are the
    block-diagonal matrices of their per-site blocks.
    """
    norbs = np.asarray(norbs, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(norbs)])
    total = int(offsets[-1])

    def block_diagonal(law: Any, what: str) -> sparse.csr_matrix:
        blocks = [
            _site_block(law, site, int(n), what, args, params)
            for site, n in zip(sites, norbs, strict=True)
        ]
        return sparse.csr_matrix(sparse.block_diag(blocks, format="csr", dtype=complex))

    projectors = None
    if conservation_law is not None:
        rows: list[Any] = []
        cols: list[Any] = []
        vals: list[Any] = []
        labels: list[Any] = []
        for k, (site, n) in enumerate(zip(sites, norbs, strict=True)):
            block = _site_block(conservation_law, site, int(n), "conservation law", args, params)
            if not np.allclose(block, block.conj().T):
                raise ValueError(f"the conservation law on {site!r} is not Hermitian")
            eigenvalues, vectors = np.linalg.eigh(block)
            rounded = np.round(eigenvalues)
            if not np.allclose(eigenvalues, rounded):
                raise ValueError(
                    f"the conservation law must have integer eigenvalues, got "
                    f"{eigenvalues.tolist()} on {site!r}"
                )
            for j in range(int(n)):
                rows.append(offsets[k] + np.arange(int(n)))
                vals.append(vectors[:, j])
                labels.append(np.full(int(n), rounded[j]))
                cols.append(np.full(int(n), len(cols)))
        row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        val = np.concatenate(vals) if vals else np.zeros(0, complex)
        label = np.concatenate(labels) if labels else np.zeros(0)
        projectors = []
        for value in np.unique(label):
            keep = label == value
            columns = np.unique(col[keep])
            new_col = np.searchsorted(columns, col[keep])
            matrix = sparse.coo_matrix(
                (val[keep], (row[keep], new_col)), shape=(total, len(columns))
            )
            projectors.append(matrix.tocsr())
    symmetries = [
        None if law is None else block_diagonal(law, name.lower() + " symmetry")
        for law, name in zip((time_reversal, particle_hole, chiral), _NAMES, strict=True)
    ]
    return DiscreteSymmetry(projectors, *symmetries)
