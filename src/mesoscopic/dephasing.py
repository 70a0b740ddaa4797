"""Phase breaking with Büttiker probes attached to the sites of a tight-binding system.

A Büttiker probe is a fictitious terminal that takes electrons out of the conductor and puts
them back with a random phase (Büttiker, Phys. Rev. B 33, 3020 (1986); IBM J. Res. Dev. 32, 63
(1988)). Here each probe is a *wide-band* lead coupled to one site: it adds the energy
independent self-energy ``Sigma_p = -i eta / 2`` to every orbital of that site, so its
broadening is ``Gamma_p = i (Sigma_p - Sigma_p^dagger) = eta`` times the identity on the site.
Such a lead has one open channel per orbital of the site, and its scattering matrix is unitary,
so the probes obey the same conventions as the real leads (see below).

Coupling and dephasing rate
    A particle on a site with a probe escapes into it at the rate ``eta / hbar`` (the width of
    its level), so with a probe on every site of a region the probability of staying coherent
    decays as ``exp(-t / tau_phi)`` with

    ``eta = hbar / tau_phi``,   ``l_phi = v tau_phi = hbar v / eta``.

    With energies in units of the hopping and lengths in lattice constants (``hbar = 1``, the
    velocities ``dE/dk`` of :class:`mesoscopic.leads.PropagatingModes`), ``l_phi = v / eta``
    lattice constants; for a chain with hopping ``t`` at ``E = -2 t cos k``, ``v = 2 t sin k``.
    An electron that escapes is re-emitted in a random direction, so a long single-channel
    region with probes on every site has the resistance ``(h/e^2) (1 + L / (2 l_phi))``
    for ``eta`` small compared to the band width: the ohmic regime, with a constant resistance
    per length once ``L >> l_phi``.

Transmission matrix
    With ``G = (E - H - sum_l Sigma_l - sum_p Sigma_p)^-1`` (all real leads and all probes),
    the transmission from terminal ``q`` into terminal ``p != q`` is the Caroli formula
    ``T[p, q] = Tr[Gamma_p G Gamma_q G^dagger]``. Writing ``Gamma_q = W_q W_q^dagger``
    (for a lead, ``W_q`` holds its incoming-mode sources; for a probe, ``sqrt(eta)`` on the
    site's orbitals). The probes are attached as
    self-energy leads (:class:`~mesoscopic.system.SelfEnergyLead`, :meth:`System.with_leads
    <mesoscopic.system.System.with_leads>`) and the ordinary batched solver
    (:func:`mesoscopic.batch.transmission`, RGF or sparse) computes the matrix for all
    energies at once; this module solves no linear system of its own. As in
    :mod:`mesoscopic.network`, ``T[p, p]`` is the total reflection
    ``N_p - sum_{q != p} T[q, p]``, with ``N_p`` the number of open channels of a lead and the
    number of orbitals of a probe's site. Current conservation,
    ``sum_{q != p} T[q, p] = sum_{q != p} T[p, q]``, holds identically for the Caroli formula;
    it is checked on every result.

Eliminating the probes
    Each probe draws no net current. In linear response (or at zero temperature) and for
    energy-resolved *dephasing* probes at any bias, this is :func:`network.eliminate_probes`
    applied at each energy: :func:`dephased_transmission`. Inelastic *voltage* probes and
    *thermal* probes at finite temperature and bias are solved self-consistently over an
    energy grid by :func:`network.solve_probes`: :func:`dephased_transport`.

Units: energies (``energy``, ``eta``, ``mu``, ``kT``) in the unit of the Hamiltonian;
transmissions dimensionless.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks, batch, landauer, network
from ._compat import renamed_keyword
from .lattice import Site
from .system import SelfEnergyLead, System

__all__ = [
    "dephased_transmission",
    "dephased_transport",
    "probe_sites",
    "probe_transmission",
]

FloatArray = NDArray[np.float64]
SiteSelection = Site | int | Iterable[Site | int] | Callable[[Site], bool]

# Relative tolerance of the current-conservation check of the Caroli matrix.
_CONSERVATION_RTOL = 1e-10

# Automatic energy grids of dephased_transport: the window reaches this many kT beyond the
# chemical potentials (the Fermi functions differ by < 1e-17 there) with this many points
# per kT; the trapezoidal rule then integrates the Fermi functions, analytic within pi kT of
# the real axis, to ~exp(-2 pi^2 kT / h) = exp(-4 pi^2) relative.
_WINDOW_KT = landauer.THERMAL_WINDOW_KT
_POINTS_PER_KT = 2


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _sites_type_error(value: Any) -> TypeError:
    return TypeError(
        "sites must be a site of the system, a site index (int), a sequence of them or a "
        f"function site -> bool; got {_checks._show(value)}"
    )


def _site_index(syst: System, site: Any, n_sites: int) -> int:
    if isinstance(site, Site):
        try:
            return int(syst.id_by_site[site])
        except KeyError:
            raise ValueError(
                f"site {site!r} is not a site of the scattering region, so no probe can be "
                f"attached to it (the system has {n_sites} sites; pass one of syst.sites or "
                f"an index 0..{n_sites - 1})"
            ) from None
    if isinstance(site, bool) or not isinstance(site, numbers.Integral):
        raise _sites_type_error(site)
    if not 0 <= int(site) < n_sites:
        raise ValueError(
            f"site index {int(site)} does not exist; this system has sites 0..{n_sites - 1}"
        )
    return int(site)


def _probe_site_indices(syst: System, sites: Any) -> NDArray[np.intp]:
    n_sites = len(syst.pos)
    if callable(sites) and not isinstance(sites, Site):
        chosen = [k for k, site in enumerate(syst.sites) if sites(site)]
        if not chosen:
            raise ValueError("the function given as sites selects no site of the system")
        return np.array(chosen, dtype=np.intp)
    if isinstance(sites, (Site, numbers.Integral)) or (
        isinstance(sites, np.ndarray) and sites.ndim == 0
    ):
        sites = [sites.item() if isinstance(sites, np.ndarray) else sites]
    try:
        listed = list(sites)
    except TypeError:
        raise _sites_type_error(sites) from None
    indices = [
        _site_index(syst, s.item() if isinstance(s, np.generic) else s, n_sites) for s in listed
    ]
    if len(set(indices)) != len(indices):
        repeated = sorted({k for k in indices if indices.count(k) > 1})
        raise ValueError(
            f"sites repeats site indices {repeated}; attach at most one probe per site"
        )
    return np.array(indices, dtype=np.intp)


def _probe_couplings(eta: ArrayLike, n_probes: int) -> FloatArray:
    values = _checks.real_array(eta, "eta")
    if values.ndim == 0:
        values = np.full(n_probes, float(values))
    elif values.shape != (n_probes,):
        raise ValueError(
            f"eta must be a number or an array of one coupling per probe, shape ({n_probes},); "
            f"got shape {values.shape}"
        )
    if np.any(values < 0):
        bad = float(values[values < 0][0])
        raise ValueError(
            f"eta must be >= 0 (the probe coupling hbar/tau_phi, an energy); got {bad!r}"
        )
    return values


def _probes(system: System, sites: Any, eta: ArrayLike) -> tuple[NDArray[np.intp], FloatArray]:
    """Site indices and couplings of the probes."""
    indices = _probe_site_indices(system, sites)
    return indices, _probe_couplings(eta, indices.size)


@renamed_keyword("fsys", "syst", "0.2")
def probe_sites(syst: System, sites: SiteSelection) -> NDArray[np.intp]:
    """Indices of the sites that `sites` designates, in the order the probes are numbered.

    Parameters
    ----------
    syst : System
        A finalized system.
    sites : Site, int, sequence of Site or int, or callable
        Sites of ``syst`` (as in ``syst.sites``), site indices ``0..len(syst.sites) - 1``, or
        a function ``site -> bool`` selecting a region (probes in the order of
        ``syst.sites``).

    Returns
    -------
    ndarray of int, shape (n_probes,)
        Site index of each probe.

    Raises
    ------
    ValueError
        A site not in the system, an index out of range, a repeated site, or a function that
        selects no site.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(5))] = 0.0
    >>> fsys = syst.finalized()
    >>> probe_sites(fsys, lambda site: site.tag[0] >= 3).tolist()
    [3, 4]
    """
    return _probe_site_indices(syst, sites)


# --------------------------------------------------------------------------------------------
# Transmission matrix with probes
# --------------------------------------------------------------------------------------------


def _wide_band_selfenergy(eta: float, num_orbitals: int) -> Callable[[float], Any]:
    """``Sigma(E) = -i eta / 2`` on every orbital of a site: a wide-band (energy-free) lead."""
    sigma = np.asarray(-0.5j * eta * np.eye(num_orbitals), dtype=np.complex128)
    sigma.flags.writeable = False

    def selfenergy(energy: float) -> NDArray[np.complex128]:
        return sigma

    return selfenergy


class _ProbedSystem:
    """A system with its probes attached as self-energy leads, for many energies at once.

    Each probe with ``eta > 0`` is a :class:`~mesoscopic.system.SelfEnergyLead` attached
    after the real leads; the ordinary batched solver (:func:`mesoscopic.batch.transmission`)
    gives the Caroli transmission matrix of all terminals. Probes with ``eta = 0`` are left
    out of the solve: decoupled, with a zero row and column and full reflection.
    """

    def __init__(
        self,
        syst: System,
        probe_site_ids: NDArray[np.intp],
        eta: FloatArray,
        params: Mapping[str, Any] | None,
    ) -> None:
        norbs = syst.norbs[probe_site_ids]
        self.num_leads = len(syst.leads)
        self.probe_channels = norbs.astype(float)
        coupled = np.flatnonzero(eta > 0)
        self.coupled = coupled
        sites = syst.sites
        probes = [
            SelfEnergyLead(
                _wide_band_selfenergy(float(eta[k]), int(norbs[k])), [sites[probe_site_ids[k]]]
            )
            for k in coupled
        ]
        self.system = syst.with_leads(probes, [[int(probe_site_ids[k])] for k in coupled])
        self.params = params

    def transmission(self, energies: FloatArray) -> FloatArray:
        """Checked transmission matrices (leads first, then probes), shape (n_E, n_t, n_t)."""
        n_leads, n_probes = self.num_leads, self.probe_channels.size
        solved = np.asarray(
            batch.transmission(self.system, np.atleast_1d(energies), params=self.params)
        )
        terminals = np.concatenate([np.arange(n_leads), n_leads + self.coupled])
        size = n_leads + n_probes
        result = np.zeros((solved.shape[0], size, size))
        result[:, terminals[:, None], terminals[None, :]] = solved
        decoupled = n_leads + np.setdiff1d(np.arange(n_probes), self.coupled)
        result[:, decoupled, decoupled] = self.probe_channels[decoupled - n_leads]
        channels = np.concatenate([np.zeros(n_leads), self.probe_channels])
        for k, energy in enumerate(np.atleast_1d(energies)):
            lead_channels = channels.copy()
            lead_channels[:n_leads] = result[k, :, :n_leads].sum(axis=0)
            _check_conservation(result[k], lead_channels, float(energy))
        return result


def _check_conservation(transmission: FloatArray, channels: FloatArray, energy: float) -> None:
    off = transmission.copy()
    diagonal = np.arange(off.shape[0])
    off[diagonal, diagonal] = 0.0
    imbalance = np.abs(off.sum(axis=0) - off.sum(axis=1))
    scale = max(1.0, float(np.max(channels, initial=1.0)))
    worst = int(np.argmax(imbalance)) if imbalance.size else 0
    if imbalance.size and imbalance[worst] > _CONSERVATION_RTOL * scale:
        warnings.warn(
            f"the transmission matrix at energy {energy!r} does not conserve current: terminal "
            f"{worst} receives {off[worst].sum():.12g} but emits {off[:, worst].sum():.12g}; "
            "the Hamiltonian or a lead self-energy is not what the Caroli formula assumes",
            network.CurrentConservationWarning,
            stacklevel=4,
        )


@renamed_keyword("fsys", "syst", "0.2")
def probe_transmission(
    syst: System,
    energy: float,
    sites: SiteSelection,
    *,
    eta: ArrayLike,
    params: Mapping[str, Any] | None = None,
) -> FloatArray:
    """Transmission matrix between all leads and Büttiker probes on chosen sites.

    Every probe is a wide-band lead on one site, self-energy ``-i eta / 2`` on each of the
    site's orbitals (``eta = hbar / tau_phi``, see the module notes). ``T[p, q]`` is
    ``Tr[Gamma_p G Gamma_q G^dagger]`` with ``G`` the retarded Green's function including all
    leads and probes; ``T[p, p]`` is the total reflection ``N_p - sum_{q != p} T[q, p]``.

    Parameters
    ----------
    syst : System
        Finalized system with leads.
    energy : float
        Real energy, in the unit of the Hamiltonian.
    sites : Site, int, sequence of Site or int, or callable
        Where the probes go, one probe per site: sites of ``syst``, site indices, or a function
        ``site -> bool`` (see :func:`probe_sites`). An empty sequence attaches no probe: the
        result is then the coherent transmission matrix of the leads.
    eta : float or array_like, shape (n_probes,)
        Coupling ``eta >= 0`` of each probe (or one for all), in energy units. ``eta = 0``
        leaves the probe decoupled: its row and column vanish and it reflects fully.
    params : dict, optional
        Parameter values of the Hamiltonian, by name.

    Returns
    -------
    ndarray, shape (n_leads + n_probes, n_leads + n_probes)
        ``T[p, q]``: transmission from terminal ``q`` into terminal ``p``, the leads
        ``0..n_leads - 1`` first (in the system's order), then the probes in the order of
        `sites`. Dimensionless. Columns sum to the channel counts ``N_q`` (open modes of a lead,
        orbitals of a probe's site); off-diagonal rows and columns balance to 1e-10.

    Raises
    ------
    ValueError
        A site not in the system, an index out of range, negative `eta`, or an energy at
        which the Green's function does not exist.

    Warns
    -----
    mesoscopic.network.CurrentConservationWarning
        If the off-diagonal rows and columns do not balance to 1e-10 relative.

    Examples
    --------
    A clean chain with a probe on its middle site; the probe takes what does not go through:

    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> T = probe_transmission(syst.finalized(), 0.0, [1], eta=1.0)
    >>> T.shape
    (3, 3)
    >>> print(np.round(T, 6))
    [[0.04 0.64 0.32]
     [0.64 0.04 0.32]
     [0.32 0.32 0.36]]
    """
    system = _checks.finalized_system(syst, min_leads=1, what="probe_transmission")
    e = _checks.real_energy(energy)
    indices, couplings = _probes(system, sites, eta)
    return _ProbedSystem(system, indices, couplings, params).transmission(np.array([e]))[0]


# --------------------------------------------------------------------------------------------
# Linear response: effective transmission
# --------------------------------------------------------------------------------------------


@renamed_keyword("fsys", "syst", "0.2")
def dephased_transmission(
    syst: System,
    energy: ArrayLike,
    sites: SiteSelection,
    *,
    eta: ArrayLike,
    params: Mapping[str, Any] | None = None,
) -> FloatArray:
    """Effective transmission between the real leads once the dephasing probes are eliminated.

    At each energy the probes draw no current (elastic, energy-resolved dephasing probes, or
    voltage probes in linear response at ``kT = 0``), so
    ``T_eff = T_LL + T_LP G_PP^{-1} T_PL`` (:func:`network.eliminate_probes`). For one probe
    ``f`` between leads 0 and 1,
    ``T_eff[1, 0] = T[1, 0] + T[f, 0] T[1, f] / (T[0, f] + T[1, f])``.
    The linear conductance at ``kT = 0`` is ``g_s T_eff[i, j]`` in units of ``e^2/h`` (with
    ``g_s = syst.spin_degeneracy``).

    Parameters
    ----------
    syst : System
        Finalized system with leads.
    energy : float or array_like, shape (n_E,)
        Real energy or energies, in the unit of the Hamiltonian.
    sites : Site, int, sequence of Site or int, or callable
        Probe sites, as in :func:`probe_transmission`.
    eta : float or array_like, shape (n_probes,)
        Probe couplings ``>= 0`` (``hbar / tau_phi``), energy units. Probes with ``eta = 0``
        are decoupled and dropped; with all ``eta = 0`` the result is the coherent ``T``.
    params : dict, optional
        Parameter values of the Hamiltonian, by name.

    Returns
    -------
    ndarray, shape (n_leads, n_leads) or (n_E, n_leads, n_leads)
        ``T_eff[i, j]`` from lead ``j`` into lead ``i``; the diagonal is the effective
        reflection. Columns sum to the numbers of open channels.

    Examples
    --------
    A probe on the middle site of a clean three-site chain (see :func:`probe_transmission`):
    the direct 0.64 plus 0.32 x 0.32 / 0.64 through the probe.

    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> T = dephased_transmission(syst.finalized(), 0.0, [1], eta=1.0)
    >>> round(float(T[1, 0]), 12)
    0.8
    """
    system = _checks.finalized_system(syst, min_leads=1, what="dephased_transmission")
    grid = _checks.real_array(energy, "energy")
    if grid.ndim > 1:
        raise ValueError(f"energy must be a number or a 1-D array, got shape {grid.shape}")
    indices, couplings = _probes(system, sites, eta)
    coupled = couplings > 0
    indices, couplings = indices[coupled], couplings[coupled]
    probed = _ProbedSystem(system, indices, couplings, params)
    n_leads = probed.num_leads
    probes = list(range(n_leads, n_leads + indices.size))
    out = np.empty((grid.size, n_leads, n_leads))
    for k, transmission in enumerate(probed.transmission(grid.ravel())):
        leads_block = transmission[:n_leads, :n_leads]
        if not probes or not np.any(transmission[:, :n_leads] > 0):
            # No probe, or no open channel in any lead (outside the bands): nothing to route.
            out[k] = leads_block
        else:
            out[k] = network.eliminate_probes(transmission, probes, check=False)
    return out[0] if grid.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# Finite temperature and bias
# --------------------------------------------------------------------------------------------


def _per_lead(value: Any, n_leads: int, name: str) -> FloatArray:
    """A value per lead from a number, a sequence of n_leads values or a {lead: value} dict."""
    if isinstance(value, Mapping):
        missing = [k for k in range(n_leads) if k not in value]
        extra = [
            k for k in value if not (isinstance(k, numbers.Integral) and 0 <= int(k) < n_leads)
        ]
        if missing or extra:
            raise ValueError(
                f"{name} must give a value for every lead 0..{n_leads - 1}; "
                f"missing {missing}, unknown keys {extra}"
            )
        value = [value[k] for k in range(n_leads)]
    arr = _checks.real_array(value, name)
    if arr.ndim == 0:
        return np.full(n_leads, float(arr))
    if arr.shape != (n_leads,):
        raise ValueError(
            f"{name} must be a number, one value per lead (shape ({n_leads},)) or a "
            f"{{lead: value}} mapping; got shape {arr.shape}"
        )
    return arr


def _transport_grid(mu: FloatArray, kT: FloatArray) -> FloatArray:
    """Energies covering every chemical potential +- 34 kT, 2 points per smallest kT."""
    hot = kT[kT > 0]
    if hot.size == 0:
        if np.ptp(mu) == 0:
            raise ValueError(
                "with all kT = 0 and equal chemical potentials no current flows and there is "
                "no energy window; give a bias, a temperature or energies="
            )
        # The chemical potentials are grid points, so the trapezoidal rule integrates the
        # zero-temperature window (1/2 at its edges) exactly for piecewise linear T(E).
        step = float(np.ptp(mu)) / 100
        grid = np.asarray(float(mu.min()) + step * np.arange(-4, 105), dtype=np.float64)
        grid[4], grid[104] = mu.min(), mu.max()
        return grid
    low = float(mu.min() - _WINDOW_KT * hot.max())
    high = float(mu.max() + _WINDOW_KT * hot.max())
    count = int(np.ceil((high - low) * _POINTS_PER_KT / hot.min())) + 1
    return np.asarray(np.linspace(low, high, max(count, 201)), dtype=np.float64)


@renamed_keyword("fsys", "syst", "0.2")
def dephased_transport(
    syst: System,
    sites: SiteSelection,
    *,
    eta: ArrayLike,
    mu: ArrayLike | Mapping[int, float],
    kT: ArrayLike | Mapping[int, float],
    kind: Literal["dephasing", "voltage", "thermal"] = "dephasing",
    probe_kT: float | None = None,
    energies: ArrayLike | None = None,
    params: Mapping[str, Any] | None = None,
    tol: float = 1e-12,
) -> network.ProbeSolution:
    """Currents through a system with Büttiker probes at finite temperature and bias.

    The transmission matrix with probes (:func:`probe_transmission`) is computed on an energy
    grid and the probes are solved self-consistently by :func:`network.solve_probes`:

    ``"dephasing"``
        elastic: no current at any energy; the occupation inside the probe is not a Fermi
        function. Phase is lost, energy is not exchanged.
    ``"voltage"``
        inelastic: a Fermi function at ``probe_kT`` whose chemical potential floats so that
        the net charge current vanishes (energy relaxation, Joule heat absorbed).
    ``"thermal"``
        chemical potential and temperature both float: no charge or energy current.

    Parameters
    ----------
    syst : System
        Finalized system with leads.
    sites : Site, int, sequence of Site or int, or callable
        Probe sites, as in :func:`probe_transmission`.
    eta : float or array_like, shape (n_probes,)
        Probe couplings ``> 0`` (``hbar / tau_phi``), energy units.
    mu : float, sequence or mapping
        Chemical potential of every lead (one number for all, ``n_leads`` numbers or
        ``{lead: mu}``), energy units.
    kT : float, sequence or mapping
        Thermal energy ``>= 0`` of every lead, like `mu`.
    kind : {"dephasing", "voltage", "thermal"}, optional
        Kind of every probe.
    probe_kT : float, optional
        Thermal energy of voltage probes; by default the leads' common ``kT`` (an error if
        the leads' temperatures differ).
    energies : array_like, shape (n_E,), optional
        Strictly increasing energy grid. By default every chemical potential ``+- 34 kT``,
        with 2 points per smallest nonzero ``kT`` (at least 201 points); pass a finer grid
        where ``T(E)`` has structure narrower than that.
    params : dict, optional
        Parameter values of the Hamiltonian, by name.
    tol : float, optional
        Convergence target of the probe conditions (see :func:`network.solve_probes`).

    Returns
    -------
    network.ProbeSolution
        Terminals numbered as in :func:`probe_transmission` (leads, then probes). Currents
        include the system's spin degeneracy: ``charge_current`` in units of ``e/h`` times
        energy (particles into the conductor from each terminal), energy and heat currents in
        ``1/h`` times energy squared.

    Raises
    ------
    ValueError
        Bad sites, a non-positive `eta`, an unknown `kind`, mismatched `mu`/`kT`, or leads at
        different temperatures with voltage probes and no `probe_kT`.

    Examples
    --------
    A dephasing probe on a three-site chain at small bias carries the linear-response
    current ``T_eff (mu_0 - mu_1)``:

    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> sol = dephased_transport(syst.finalized(), [1], eta=1.0, mu=[1e-3, -1e-3], kT=0.0)
    >>> round(float(sol.charge_current[0]) / 2e-3, 6)
    0.8
    """
    system = _checks.finalized_system(syst, min_leads=1, what="dephased_transport")
    if kind not in network.PROBE_KINDS:
        raise ValueError(
            f"kind must be one of {', '.join(repr(k) for k in network.PROBE_KINDS)}, got {kind!r}"
        )
    indices, couplings = _probes(system, sites, eta)
    if np.any(couplings == 0):
        bad = int(indices[int(np.argmax(couplings == 0))])
        raise ValueError(
            f"eta must be > 0 for dephased_transport (the probe on site {bad} has eta = 0 and "
            "would be decoupled, with an undetermined state); leave that site out"
        )
    n_leads = len(system.leads)
    lead_mu = _per_lead(mu, n_leads, "mu")
    lead_kT = _per_lead(kT, n_leads, "kT")
    _checks.temperature(lead_kT, "kT")
    probe_terminals = list(range(n_leads, n_leads + indices.size))
    kT_map = {k: float(lead_kT[k]) for k in range(n_leads)}
    if kind == "voltage":
        if probe_kT is None:
            if np.ptp(lead_kT) != 0:
                raise ValueError(
                    f"the leads have different temperatures kT = {lead_kT.tolist()}; give the "
                    "voltage probes' temperature as probe_kT="
                )
            probe_kT = float(lead_kT[0])
        probe_value = float(_checks.positive(probe_kT, "probe_kT"))
        kT_map.update({p: probe_value for p in probe_terminals})
    if energies is None:
        grid = _transport_grid(lead_mu, lead_kT)
    else:
        grid = _checks.real_array(energies, "energies")
        if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError(
                "energies must be a strictly increasing 1-D grid of at least 2 points, got "
                f"{_checks._show(energies)}"
            )
    transmission = _ProbedSystem(system, indices, couplings, params).transmission(grid)
    return network.solve_probes(
        grid,
        transmission,
        mu={k: float(lead_mu[k]) for k in range(n_leads)},
        kT=kT_map,
        probes=dict.fromkeys(probe_terminals, kind),
        spin_degeneracy=system.spin_degeneracy,
        check=False,
        tol=tol,
    )
