"""Shot noise of a two-terminal conductor from its scattering matrix (Kwant's
``kwant.physics.two_terminal_shotnoise``).

At zero temperature and bias ``V``, the current noise of a phase-coherent two-terminal
conductor is ``S = (2 e^3 |V| / h) sum_n T_n (1 - T_n)`` (per spin, Büttiker 1990), with
``T_n`` the transmission eigenvalues, the eigenvalues of ``t t^dagger``. The function
returns the dimensionless sum ``sum_n T_n (1 - T_n) = tr(t t^dagger - (t t^dagger)^2)``;
dividing it by ``sum_n T_n`` gives the Fano factor. :mod:`mesoscopic.noise` has the
multi-terminal, finite-temperature noise.

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.chain(norbs=1)
>>> syst = meso.Builder()
>>> syst[lat(0)] = 1.0                      # a one-site barrier in a chain
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
>>> lead[lat(0)] = 0.0
>>> lead[lat.neighbors()] = -1.0
>>> syst[lat.neighbors()] = -1.0
>>> _ = syst.attach_lead(lead)
>>> _ = syst.attach_lead(lead.reversed())
>>> s = meso.smatrix(syst.finalized(), 0.0)
>>> t = s.transmission(1, 0)               # T = 4 / (4 + 1) at E = 0
>>> round(float(meso.physics.two_terminal_shotnoise(s)), 12) == round(t * (1 - t), 12)
True
"""

from __future__ import annotations

import numpy as np

from ..scattering import SMatrix

__all__ = ["two_terminal_shotnoise"]


def two_terminal_shotnoise(smatrix: SMatrix) -> float:
    """Zero-temperature shot noise of a two-terminal conductor, ``sum_n T_n (1 - T_n)``.

    Parameters
    ----------
    smatrix : SMatrix
        Scattering matrix of a system with exactly two leads (from :func:`mesoscopic.smatrix`).

    Returns
    -------
    float
        ``tr(t t^dagger - (t t^dagger)^2)`` with ``t`` the transmission block from the
        first incoming lead to the first outgoing lead of ``smatrix``. Times
        ``2 e^3 |V| / h`` it is the zero-frequency (single-sided) current noise of one spin
        species; Kwant quotes it in units of ``2 e^3 |V| / (pi hbar)``, which includes a spin
        degeneracy of two.

    Raises
    ------
    NotImplementedError
        ``smatrix`` is not an :class:`~mesoscopic.SMatrix` (a Green's function result).
    ValueError
        The system does not have exactly two leads.
    """
    if not isinstance(smatrix, SMatrix):
        raise NotImplementedError(
            "two_terminal_shotnoise needs a scattering matrix (SMatrix); noise from a "
            f"Green's function is not implemented, got {type(smatrix).__name__}"
        )
    count = len(smatrix.lead_info)
    if count != 2:
        raise ValueError(
            f"two_terminal_shotnoise works for two-terminal systems only; this one has "
            f"{count} leads (use mesoscopic.noise for multi-terminal noise)"
        )
    if not smatrix.out_leads or not smatrix.in_leads:
        raise ValueError("the scattering matrix must have at least one incoming and outgoing lead")
    t = np.asarray(smatrix.submatrix(smatrix.out_leads[0], smatrix.in_leads[0]))
    ttdag = t @ t.conj().T
    return float(np.trace(ttdag - ttdag @ ttdag).real)
