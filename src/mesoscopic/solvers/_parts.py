"""Independent parts of a scattering problem, for transmissions solved part by part.

A system whose orbitals fall into groups that no hopping joins, in the scattering region,
in the leads or between them, is several scattering problems side by side: explicit spin
without spin-orbit coupling (``norbs=2`` with spin-independent hoppings), the two spin
blocks of a BHZ model, orbitals that never mix. The transmission between two leads is then
the sum over the parts, each with its share of the leads' orbitals. Solving the parts
separately costs less: the lead modes (an eigenproblem of twice a lead cell's orbitals) and
the slice inverses of the recursive Green's functions grow as the cube of the size, so two
equal parts cost a quarter of the whole each.

Only the transmission matrix is assembled this way (its diagonal, the total reflection,
too): an S-matrix would need the modes of the whole leads in their order. Leads given by
functions of the energy (self-energy or modes leads) and leads with a conservation law keep
the problem whole, and so does a part holding lead orbitals but no orbital of the
scattering region (its reflection would need its modes). Orbitals of the scattering region
joined to no lead do not scatter and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from ..leads import LeadData

__all__ = ["Part", "independent_parts"]

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Part:
    """One independent part: its orbitals of the scattering region and of each lead."""

    orbitals: IntArray  # of the scattering region, ascending
    leads: IntArray  # the leads with orbitals in this part, ascending
    cells: tuple[IntArray, ...]  # per lead of `leads`: its cell orbitals in this part

    def hamiltonian(self, ham: Any) -> sp.csr_matrix:
        """The part's block of a scattering region's Hamiltonian."""
        matrix = sp.csr_matrix(ham)
        return matrix[self.orbitals][:, self.orbitals]

    def lead_data(self, leads: Sequence[Any]) -> list[Any]:
        """The part's share of the leads `self.leads` of a list of (builder) leads."""
        local = np.full(int(self.orbitals.max(initial=-1)) + 1, -1, dtype=np.int64)
        local[self.orbitals] = np.arange(self.orbitals.size)
        out: list[Any] = []
        for k, cell in zip(self.leads, self.cells):
            lead = leads[int(k)]
            in_cell = np.full(lead.h_cell.shape[0], -1, dtype=np.int64)
            in_cell[cell] = np.arange(cell.size)
            keep = in_cell[lead.interface_cell] >= 0
            out.append(
                LeadData(
                    lead.h_cell[np.ix_(cell, cell)],
                    lead.hop[np.ix_(cell, cell)],
                    local[lead.interface_sys[keep]],
                    in_cell[lead.interface_cell[keep]],
                )
            )
        return out


def independent_parts(
    hams: Sequence[Any], lead_lists: Sequence[Sequence[Any]]
) -> list[Part] | None:
    """The independent parts of the problems ``(hams[p], lead_lists[p])`` (elements of a
    parameter batch: their couplings together), or None where it stays whole.

    None: one part holding all orbitals, a lead that is not a
    :class:`~mesoscopic.leads.LeadData` or has a conservation law, or a part with lead
    orbitals but none of the scattering region. A single part is returned when orbitals of
    the scattering region are joined to no lead (they are left out).
    """
    first = lead_lists[0]
    if any(
        not isinstance(lead, LeadData) or lead.projectors is not None
        for leads in lead_lists
        for lead in leads
    ):
        return None
    size = sp.csr_matrix(hams[0]).shape[0]
    starts = np.cumsum([size] + [lead.h_cell.shape[0] for lead in first])
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    for ham, leads in zip(hams, lead_lists):
        coo = sp.coo_matrix(ham)
        nonzero = coo.data != 0
        rows.append(coo.row[nonzero].astype(np.int64))
        cols.append(coo.col[nonzero].astype(np.int64))
        for k, lead in enumerate(leads):
            if lead.h_cell.shape[0] != starts[k + 1] - starts[k]:
                return None  # elements whose leads differ in size: not one structure
            for matrix in (lead.h_cell, lead.hop):
                r, c = np.nonzero(matrix)
                rows.append(r + starts[k])
                cols.append(c + starts[k])
            rows.append(lead.interface_sys.astype(np.int64))
            cols.append(lead.interface_cell.astype(np.int64) + starts[k])
    total = int(starts[-1])
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    graph = sp.coo_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(total, total))
    count, labels = connected_components(graph, directed=False)
    if count == 1:
        return None
    parts = []
    system_labels = labels[:size]
    for label in np.unique(labels[size:]):
        orbitals = np.flatnonzero(system_labels == label).astype(np.int64)
        if orbitals.size == 0:
            return None  # lead orbitals scattering only among themselves
        present, cells = [], []
        for k in range(len(first)):
            cell = np.flatnonzero(labels[starts[k] : starts[k + 1]] == label).astype(np.int64)
            if cell.size:
                present.append(k)
                cells.append(cell)
        parts.append(Part(orbitals, np.asarray(present, dtype=np.int64), tuple(cells)))
    if len(parts) == 1 and parts[0].orbitals.size == size:
        return None
    return parts
