"""Ready-made devices: each function returns a finalized System with documented parameters.

Lattice models use a square (or honeycomb) lattice of constant a = 1 and hopping
t = 1; energies, potentials and temperatures are in units of t, curvatures in t/a^2,
the magnetic field is the flux per unit cell ``phi`` in units of h/e (see
:meth:`mesoscopic.Builder.finalized`).

Every model declares the unit of each of its solve-time parameters
(:func:`parameter_units`: ``"energy"``, ``"energy/length^2"``, ``"flux"``, ``"seed"``
...) and documents it; they are supplied at solve time,
``meso.smatrix(fsys, energy, params={...})``. :class:`Discretization` converts a
two-dimensional electron gas in physical units (meV, meV/nm^2, tesla, kelvin, sheet
density, effective mass) to these lattice units, parameter by parameter from that
declaration: ``Discretization(5.0).params(quantum_point_contact, gate=2.0, ...)``.
Random disorder is drawn from ``numpy.random.default_rng(seed)`` with ``seed`` a
parameter, so each configuration is reproducible and seeds can be swept.

Every model takes ``spin_degeneracy`` (1 or 2): the factor the conductances of the
finalized system carry (:attr:`mesoscopic.system.System.spin_degeneracy`). Models with
spin as explicit orbitals accept only 1.

Examples
--------
>>> import mesoscopic as meso
>>> fsys = meso.models.quantum_point_contact(width=12, length=16)
>>> sorted(fsys.parameters)
['confinement', 'gate']
>>> s = meso.smatrix(fsys, 0.5, params={"gate": 0.0, "confinement": 0.0})
>>> s.num_propagating(0)
2
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from . import _checks, constants
from .builder import Builder, HoppingKind, TranslationalSymmetry
from .lattice import Monatomic, SiteArray, SiteFamily, chain, honeycomb, square
from .system import System

__all__ = [
    "PARAMETER_KINDS",
    "Discretization",
    "aharonov_bohm_ring",
    "bhz_ribbon",
    "btk_junction",
    "chain_surface_green_function",
    "disordered_wire",
    "double_barrier",
    "graphene_pn_junction",
    "graphene_ribbon",
    "hall_bar",
    "huckel_ring",
    "molecular_junction",
    "parameter_units",
    "quantum_point_contact",
]

SIGMA_0 = np.eye(2)
SIGMA_Z = np.diag([1.0, -1.0])


PARAMETER_KINDS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "energy": ("t", "meV"),
        "energy/length^2": ("t/a^2", "meV/nm^2"),
        "flux": ("h/e per cell", "T"),
        "dimensionless": ("1", "1"),
        "seed": ("1", "1"),
    }
)
"""Kinds of solve-time parameters: kind -> (lattice unit, physical unit).

The physical units are those of :class:`Discretization`.

``"energy"``: potentials, gaps, disorder strengths (t, or meV). ``"energy/length^2"``:
curvatures of a confining potential ``V = k y^2 / 2`` (t/a^2, or meV/nm^2). ``"flux"``: the
flux per unit cell of the Peierls phase (h/e, or a field in tesla). ``"dimensionless"`` and
``"seed"`` (an integer for ``numpy.random.default_rng``) are never converted."""


@dataclass(frozen=True)
class _ModelUnits:
    kinds: Mapping[str, str]
    # True where the lattice discretizes a 2DEG of effective mass m*, so that
    # t = hbar^2 / (2 m* a^2) and a Discretization applies.
    effective_mass: bool


_MODEL_UNITS: dict[str, _ModelUnits] = {}
_Model = TypeVar("_Model", bound=Callable[..., Any])


def _declare_units(*, effective_mass: bool, **kinds: str) -> Callable[[_Model], _Model]:
    """Record the kind of each solve-time parameter of a model (see :data:`PARAMETER_KINDS`)."""
    for name, kind in kinds.items():
        if kind not in PARAMETER_KINDS:  # pragma: no cover - a mistake in this module
            raise ValueError(f"unknown parameter kind {kind!r} for {name!r}")

    def register(model: _Model) -> _Model:
        _MODEL_UNITS[model.__name__] = _ModelUnits(MappingProxyType(dict(kinds)), effective_mass)
        return model

    return register


def _model_units(model: str | Callable[..., Any]) -> _ModelUnits:
    name = model if isinstance(model, str) else getattr(model, "__name__", repr(model))
    if name not in _MODEL_UNITS:
        raise ValueError(
            f"{name!r} declares no units of its parameters; models that do: "
            f"{', '.join(sorted(_MODEL_UNITS))}"
        )
    return _MODEL_UNITS[name]


def parameter_units(model: str | Callable[..., Any]) -> Mapping[str, str]:
    """The kind of each solve-time parameter a model may take: name -> kind.

    Parameters
    ----------
    model : str or callable
        A model of this module, or its name.

    Returns
    -------
    Mapping from parameter name to a key of :data:`PARAMETER_KINDS`; it covers every
    parameter the model takes under any of its options (for example ``zeeman`` only
    with ``quantum_point_contact(zeeman=True)``).

    Raises
    ------
    ValueError
        For a function that declares no units.

    Examples
    --------
    >>> dict(parameter_units("quantum_point_contact"))
    {'gate': 'energy', 'confinement': 'energy/length^2', 'zeeman': 'energy'}
    >>> PARAMETER_KINDS["energy/length^2"]
    ('t/a^2', 'meV/nm^2')
    """
    return _model_units(model).kinds


def _spin_degeneracy(value: Any, *, explicit_spin: bool = False, why: str = "") -> int:
    from .system import _check_degeneracy

    value = _check_degeneracy(value)
    if explicit_spin and value != 1:
        raise ValueError(
            f"spin_degeneracy must be 1 here: {why} carries spin as explicit orbitals, so "
            f"its transmissions already count both spins; got {value!r}"
        )
    return value


@dataclass(frozen=True)
class Discretization:
    """Finite-difference discretization of a 2D electron gas: physical units <-> lattice units.

    The square lattice of constant ``a`` with hopping ``t = hbar^2 / (2 m* a^2)`` has the
    band ``E = 4t - 2t cos(k_x a) - 2t cos(k_y a)``, which near its bottom is the free
    band ``hbar^2 k^2 / 2 m*``. Energies measured from the band bottom in meV become
    units of t, curvatures in meV/nm^2 become t/a^2, fields in tesla become the flux per
    cell in units of h/e; :meth:`params` converts a model's parameters by the kind each
    one declares (:func:`parameter_units`).

    Parameters
    ----------
    lattice_constant : float
        Lattice constant a in nm.
    effective_mass : float
        Effective mass in units of the electron mass (0.067 for GaAs).

    Attributes
    ----------
    hopping : float
        t = hbar^2 / (2 m* a^2) in meV.

    Examples
    --------
    >>> d = Discretization(lattice_constant=5.0, effective_mass=0.067)
    >>> round(d.hopping, 3)
    22.746
    >>> round(float(d.flux(1.0)), 6)  # 1 T through a 5 nm x 5 nm cell, in units of h/e
    0.006045

    A QPC in GaAs with a gate of 2 meV and a subband spacing of 1.5 meV, in lattice units:

    >>> from mesoscopic import constants
    >>> k = constants.confinement_curvature(1.5, 0.067)     # meV/nm^2
    >>> p = d.params("quantum_point_contact", gate=2.0, confinement=k)
    >>> round(p["gate"], 5), round(p["confinement"], 6)
    (0.08793, 0.002174)
    """

    lattice_constant: float
    effective_mass: float = 0.067

    def __post_init__(self) -> None:
        for name in ("lattice_constant", "effective_mass"):
            value = getattr(self, name)
            if not (
                isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, bool)
                and np.isfinite(value)
                and value > 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @property
    def hopping(self) -> float:
        a = self.lattice_constant * 1e-9
        joule = constants.hbar**2 / (2 * self.effective_mass * constants.m_e * a**2)
        return float(joule / constants.meV)

    def energy(self, energy_meV: Any) -> Any:
        """Energy in meV -> units of t."""
        return np.asarray(energy_meV, dtype=float) / self.hopping

    def to_meV(self, energy_t: Any) -> Any:
        """Energy in units of t -> meV."""
        return np.asarray(energy_t, dtype=float) * self.hopping

    def curvature(self, curvature_meV_nm2: Any) -> Any:
        """Curvature ``k = d^2 V / dy^2`` in meV/nm^2 -> units of t/a^2.

        :func:`mesoscopic.constants.confinement_curvature` gives ``k`` from a subband
        spacing ``hbar omega``; on the lattice ``hbar omega = sqrt(2 k)`` (t, t/a^2).
        """
        return np.asarray(curvature_meV_nm2, dtype=float) * self.lattice_constant**2 / self.hopping

    def fermi_energy(self, density: Any, *, spin_degeneracy: int = 2) -> Any:
        """Sheet density in m^-2 -> Fermi energy from the band bottom in units of t.

        ``E_F = 2 pi hbar^2 n / (g_s m*)`` (:func:`mesoscopic.constants.density_to_fermi_energy`);
        valid where ``E_F << t``, the parabolic part of the lattice band.
        """
        e_f = constants.density_to_fermi_energy(
            density, self.effective_mass, spin_degeneracy=spin_degeneracy
        )
        return e_f / self.hopping

    def thermal_energy(self, temperature_K: Any) -> Any:
        """Temperature in kelvin -> kT in units of t."""
        return constants.kelvin_to_meV(temperature_K) / self.hopping

    def length(self, length_nm: Any) -> Any:
        """Length in nm -> number of lattice constants."""
        return np.asarray(length_nm, dtype=float) / self.lattice_constant

    def flux(self, field_T: Any) -> Any:
        """Magnetic field in tesla -> flux per unit cell in units of h/e."""
        return constants.field_to_flux(field_T, self.lattice_constant**2)

    def zeeman(self, field_T: Any, g_factor: float = -0.44) -> Any:
        """Zeeman splitting ``|g| mu_B B`` in units of t."""
        return abs(g_factor) * constants.mu_B_meV * np.asarray(field_T, dtype=float) / self.hopping

    def convert(self, kind: str, value: Any) -> Any:
        """A value in the physical unit of `kind` -> lattice units (see :data:`PARAMETER_KINDS`).

        Examples
        --------
        >>> d = Discretization(lattice_constant=5.0)
        >>> float(d.convert("energy", d.hopping))
        1.0
        >>> d.convert("seed", 7)
        7
        """
        if kind == "energy":
            return self.energy(value)
        if kind == "energy/length^2":
            return self.curvature(value)
        if kind == "flux":
            return self.flux(value)
        if kind in PARAMETER_KINDS:
            return value
        raise ValueError(f"unknown parameter kind {kind!r}; valid: {', '.join(PARAMETER_KINDS)}")

    def params(self, model: str | Callable[..., Any], **values: Any) -> dict[str, Any]:
        """A model's solve-time parameters in physical units -> ``params`` in lattice units.

        Each value is in the physical unit of the kind the model declares for it
        (:func:`parameter_units`, :data:`PARAMETER_KINDS`): energies in meV, curvatures in
        meV/nm^2, fields in tesla (``phi``), seeds as they are.

        Parameters
        ----------
        model : str or callable
            A model of :mod:`mesoscopic.models` (one that discretizes an effective-mass
            electron gas), or its name.
        **values
            Parameter values by name, in physical units.

        Returns
        -------
        dict
            The same names with values in lattice units, for ``params=``.

        Raises
        ------
        ValueError
            For a parameter the model does not take, or a model whose lattice is not an
            effective-mass discretization (graphene, BHZ, the BdG chain).
        """
        units = _model_units(model)
        name = model if isinstance(model, str) else getattr(model, "__name__", repr(model))
        if not units.effective_mass:
            raise ValueError(
                f"{name} is not the discretization of an electron gas of effective mass m*; "
                "its parameters are in units of its own hopping t, so a Discretization "
                "cannot convert them"
            )
        unknown = sorted(set(values) - set(units.kinds))
        if unknown:
            valid = ", ".join(
                f"{p} ({PARAMETER_KINDS[k][1]})" for p, k in sorted(units.kinds.items())
            )
            raise ValueError(f"{name} has no parameter(s) {unknown}; it takes {valid}")
        converted = {p: self.convert(units.kinds[p], v) for p, v in values.items()}
        return {
            p: float(v) if np.ndim(v) == 0 and units.kinds[p] != "seed" else v
            for p, v in converted.items()
        }


def _wire_lead(lat: Monatomic, width: int, direction: int, onsite: Any, hopping: Any) -> Builder:
    lead = Builder(TranslationalSymmetry((direction, 0)))
    lead[(lat(0, y) for y in range(width))] = onsite
    lead[lat.neighbors()] = hopping
    return lead


def _uniform_disorder(seed: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Uniform numbers in [-1/2, 1/2] for every lattice point of a box, from an explicit seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed)).uniform(-0.5, 0.5, size=shape)


@_declare_units(effective_mass=True, gate="energy", confinement="energy/length^2", zeeman="energy")
def quantum_point_contact(
    width: int = 40,
    length: int = 60,
    *,
    kind: Literal["saddle", "abrupt"] = "saddle",
    constriction: int | None = None,
    smoothness: float | None = None,
    zeeman: bool = False,
    spin_degeneracy: int | None = None,
) -> System:
    """A quantum point contact in a two-dimensional electron gas.

    Parameters
    ----------
    width, length : int
        Size of the scattering region in lattice constants; the leads are as wide.
    kind : {"saddle", "abrupt"}
        ``"saddle"``: smooth gate potential
        ``V(x, y) = env(x) [gate + confinement (y - yc)^2 / 2]`` with a Gaussian
        envelope of width `smoothness` (default length/7): near the centre a saddle
        point (Büttiker's model, adiabatic, flat plateaus). ``"abrupt"``: a hard-wall
        constriction `constriction` sites wide and length/3 long, with a uniform
        potential ``gate`` inside.
    zeeman : bool
        Two orbitals (spin up, down) per site with a Zeeman term ``zeeman * sigma_z / 2``:
        the plateaus split into e^2/h steps.
    spin_degeneracy : {1, 2}, optional
        Defaults to 2 without Zeeman (GaAs-like, conductance in 2e^2/h steps); with
        ``zeeman=True`` spin is two explicit orbitals and only 1 is valid.

    Notes
    -----
    Parameters at solve time, with their units (:func:`parameter_units`):

    * ``gate`` (energy, t): the potential at the saddle point (saddle) or inside the
      constriction (abrupt).
    * ``confinement`` (energy/length^2, t/a^2; saddle only): the curvature ``k`` of
      the transverse parabola ``k (y - yc)^2 / 2``; its subband spacing is
      ``hbar omega = sqrt(2 k)`` t.
    * ``zeeman`` (energy, t; with ``zeeman=True``): the splitting of the two spins.

    With physical units, ``Discretization(a, m*).params(quantum_point_contact, gate=meV,
    confinement=meV/nm^2)`` converts them (see :class:`Discretization`).
    """
    width = _checks.positive_int(width, "width", minimum=2)
    length = _checks.positive_int(length, "length", minimum=3)
    if kind not in ("saddle", "abrupt"):
        raise ValueError(f"kind must be 'saddle' or 'abrupt', got {kind!r}")
    norbs = 2 if zeeman else 1
    lat = square(1.0, norbs=norbs)
    if kind == "saddle" and constriction is not None:
        raise ValueError(
            f"constriction={constriction!r} applies to kind='abrupt'; the saddle's opening is "
            "set by the gate and confinement parameters"
        )
    if kind == "abrupt" and smoothness is not None:
        raise ValueError(f"smoothness={smoothness!r} applies to kind='saddle' only")
    if smoothness is not None and not (
        isinstance(smoothness, (int, float))
        and not isinstance(smoothness, bool)
        and smoothness > 0
    ):
        raise ValueError(f"smoothness must be a positive length (sites), got {smoothness!r}")
    x0, yc = (length - 1) / 2, (width - 1) / 2
    sigma = length / 7 if smoothness is None else float(smoothness)
    eye = np.eye(norbs)

    def spin_term(value: float) -> Any:
        return value * eye if norbs == 2 else value

    if kind == "saddle":

        def potential(x: float, y: float, gate: float, confinement: float) -> float:
            env = np.exp(-((x - x0) ** 2) / (2 * sigma**2))
            return float(env * (gate + 0.5 * confinement * (y - yc) ** 2))

        if zeeman:

            def onsite(site: Any, gate: float, confinement: float, zeeman: float) -> Any:
                x, y = site.pos
                return (4 + potential(x, y, gate, confinement)) * eye + 0.5 * zeeman * SIGMA_Z

        else:

            def onsite(site: Any, gate: float, confinement: float) -> Any:  # type: ignore[misc]
                x, y = site.pos
                return 4 + potential(x, y, gate, confinement)

        sites = [lat(x, y) for x in range(length) for y in range(width)]
    else:
        w0 = constriction if constriction is not None else max(2, width // 4)
        w0 = _checks.positive_int(w0, "constriction", minimum=1)
        if w0 > width:
            raise ValueError(f"constriction ({w0}) must not exceed width ({width})")
        lo, hi = length // 3, length - length // 3
        ylo = (width - w0) // 2

        def inside(x: int, y: int) -> bool:
            return not (lo <= x < hi) or ylo <= y < ylo + w0

        if zeeman:

            def onsite(site: Any, gate: float, zeeman: float) -> Any:  # type: ignore[misc]
                x = site.tag[0]
                return (4 + (gate if lo <= x < hi else 0.0)) * eye + 0.5 * zeeman * SIGMA_Z

        else:

            def onsite(site: Any, gate: float) -> Any:  # type: ignore[misc]
                x = site.tag[0]
                return 4 + (gate if lo <= x < hi else 0.0)

        sites = [lat(x, y) for x in range(length) for y in range(width) if inside(x, y)]
    syst = Builder()
    syst[sites] = onsite
    syst[lat.neighbors()] = spin_term(-1.0)
    if zeeman:

        def lead_onsite(site: Any, zeeman: float) -> Any:
            return 4 * eye + 0.5 * zeeman * SIGMA_Z

        lead_value: Any = lead_onsite
    else:
        lead_value = 4.0
    left = _wire_lead(lat, width, -1, lead_value, spin_term(-1.0))
    syst.attach_lead(left)
    syst.attach_lead(left.reversed())
    if spin_degeneracy is None:
        spin_degeneracy = 1 if zeeman else 2
    spin_degeneracy = _spin_degeneracy(
        spin_degeneracy, explicit_spin=zeeman, why="quantum_point_contact(zeeman=True)"
    )
    return syst.finalized(spin_degeneracy=spin_degeneracy)


@_declare_units(effective_mass=True, disorder="energy", seed="seed")
def disordered_wire(width: int = 20, length: int = 100, *, spin_degeneracy: int = 1) -> System:
    """A wire with uniform onsite (Anderson) disorder.

    Onsite energy ``4 + disorder * u(x, y)`` with u uniform in [-1/2, 1/2] drawn from
    ``default_rng(seed)``; clean leads of the same width. `width` and `length` are in
    lattice constants; `spin_degeneracy` (1 or 2, default 1) is the factor the
    conductances carry.

    Parameters at solve time: ``disorder`` (energy, the width W of the distribution, in
    t) and ``seed`` (seed, a non-negative integer).

    Examples
    --------
    >>> import mesoscopic as meso
    >>> fsys = meso.models.disordered_wire(5, 30)
    >>> t1 = meso.smatrix(fsys, 1.0, params={"disorder": 1.5, "seed": 1}).transmission(1, 0)
    >>> t2 = meso.smatrix(fsys, 1.0, params={"disorder": 1.5, "seed": 1}).transmission(1, 0)
    >>> t1 == t2
    True
    """
    width = _checks.positive_int(width, "width")
    length = _checks.positive_int(length, "length")
    lat = square(1.0, norbs=1)

    def onsite(sites: SiteArray, disorder: float, seed: int) -> NDArray[np.float64]:
        u = _uniform_disorder(seed, (length, width))
        return 4.0 + disorder * u[sites.tags[:, 0], sites.tags[:, 1]]

    syst = Builder(vectorize=True)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = _wire_lead(lat, width, -1, 4.0, -1.0)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(spin_degeneracy=spin_degeneracy)


@_declare_units(effective_mass=True, barrier_height="energy", well_potential="energy")
def double_barrier(
    well: int = 20, barrier: int = 2, *, width: int = 1, spin_degeneracy: int = 1
) -> System:
    """Double barrier (Fabry-Pérot cavity) in a chain (width 1) or a wire.

    Two barriers of `barrier` sites and height ``barrier_height`` enclose a well of
    `well` sites with potential ``well_potential`` (lengths in lattice constants);
    `spin_degeneracy` (1 or 2, default 1) is the factor the conductances carry.

    Parameters at solve time: ``barrier_height`` and ``well_potential`` (energy, t,
    from the band bottom of the leads).
    """
    well = _checks.positive_int(well, "well")
    barrier = _checks.positive_int(barrier, "barrier")
    width = _checks.positive_int(width, "width")
    total = 2 * barrier + well
    if width == 1:
        lat = square(1.0, norbs=1)
        onsite_base = 2.0  # the chain band E = 2 - 2 cos k sits at the bottom of the 2D band
    else:
        lat = square(1.0, norbs=1)
        onsite_base = 4.0

    def onsite(site: Any, barrier_height: float, well_potential: float) -> float:
        x = site.tag[0]
        if x < barrier or x >= barrier + well:
            return onsite_base + barrier_height
        return onsite_base + well_potential

    syst = Builder()
    syst[(lat(x, y) for x in range(total) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = _wire_lead(lat, width, -1, onsite_base, -1.0)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(spin_degeneracy=spin_degeneracy)


@_declare_units(effective_mass=True, phi="flux", disorder="energy", seed="seed")
def hall_bar(
    length: int = 40,
    width: int = 18,
    *,
    terminals: int = 6,
    arm: int | None = None,
    spin_degeneracy: int = 1,
) -> System:
    """A Hall bar in a perpendicular magnetic field, with optional disorder.

    Leads: 0 left and 1 right (along x); for 6 terminals 2, 3 on top (left, right)
    and 4, 5 at the bottom; for 4 terminals 2 on top and 3 at the bottom, at the
    centre. Side arms are `arm` sites wide (default width/2); lengths are in lattice
    constants. `spin_degeneracy` (1 or 2, default 1: spin-resolved, plateaus of
    R_xy = h/(nu e^2)) is the factor the conductances carry.

    Parameters at solve time: ``phi`` (flux, per unit cell in units of h/e),
    ``disorder`` (energy, t) and ``seed`` (seed, a non-negative integer). Use
    :func:`mesoscopic.network.four_terminal_resistance` with ``current=(0, 1)`` and
    ``voltage=(2, 4)`` (6 terminals) for R_xy, ``(2, 3)`` for R_xx.
    """
    length = _checks.positive_int(length, "length", minimum=4)
    width = _checks.positive_int(width, "width", minimum=2)
    if terminals not in (4, 6):
        raise ValueError(f"terminals must be 4 or 6, got {terminals!r}")
    arm = max(1, width // 2) if arm is None else _checks.positive_int(arm, "arm")
    lat = square(1.0, norbs=1)
    if terminals == 6:
        starts = [length // 4 - arm // 2, 3 * length // 4 - arm // 2]
    else:
        starts = [length // 2 - arm // 2]
    if min(starts) < 0 or max(starts) + arm > length:
        raise ValueError(f"side arms of width {arm} do not fit along a bar of length {length}")
    box = (length, width + 4)

    def onsite(sites: SiteArray, disorder: float, seed: int) -> NDArray[np.float64]:
        u = _uniform_disorder(seed, box)
        return 4.0 + disorder * u[sites.tags[:, 0], sites.tags[:, 1] + 2]

    syst = Builder(vectorize=True)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    for x0 in starts:
        syst[(lat(x, y) for x in range(x0, x0 + arm) for y in (-2, -1, width, width + 1))] = onsite
    syst[lat.neighbors()] = -1.0
    left = _wire_lead(lat, width, -1, 4.0, -1.0)
    leads = [left, left.reversed()]
    for direction in (1, -1):
        for x0 in starts:
            side = Builder(TranslationalSymmetry((0, direction)))
            side[(lat(x, 0) for x in range(x0, x0 + arm))] = 4.0
            side[lat.neighbors()] = -1.0
            leads.append(side)
    for lead in leads:
        syst.attach_lead(lead)
    return syst.finalized(magnetic_flux="phi", spin_degeneracy=_spin_degeneracy(spin_degeneracy))


@_declare_units(effective_mass=True, phi="flux")
def aharonov_bohm_ring(
    outer_radius: float = 12.0,
    inner_radius: float = 7.0,
    *,
    lead_width: int | None = None,
    spin_degeneracy: int = 1,
) -> System:
    """A ring threaded by a magnetic field, with two leads (Aharonov-Bohm interferometer).

    The flux through the hole is about ``phi * pi * r_mean^2`` (h/e): the
    conductance oscillates with period 1/(pi r_mean^2) in ``phi``. Radii and
    `lead_width` are in lattice constants; `spin_degeneracy` (1 or 2, default 1) is the
    factor the conductances carry.

    Parameters at solve time: ``phi`` (flux, per unit cell in units of h/e).
    """
    if not 0 < inner_radius < outer_radius:
        raise ValueError(
            f"need 0 < inner_radius < outer_radius, got {inner_radius!r}, {outer_radius!r}"
        )
    width = (
        int(np.floor(outer_radius - inner_radius))
        if lead_width is None
        else _checks.positive_int(lead_width, "lead_width")
    )
    lat = square(1.0, norbs=1)
    r_mean = (outer_radius + inner_radius) / 2
    y0 = -(width // 2)

    def in_ring(pos: NDArray[np.float64]) -> bool:
        r2 = pos[0] ** 2 + pos[1] ** 2
        return bool(inner_radius**2 <= r2 <= outer_radius**2)

    syst = Builder()
    syst[lat.shape(in_ring, (r_mean, 0.0))] = 4.0
    # Short straight stubs join the ring to the leads.
    stub = [
        lat(x, y)
        for x in range(-int(outer_radius) - 2, int(outer_radius) + 3)
        for y in range(y0, y0 + width)
        if abs(x) >= np.sqrt(max(inner_radius**2 - y**2, 0)) + 1 and abs(x) > r_mean
    ]
    syst[stub] = 4.0
    syst[lat.neighbors()] = -1.0
    lead = Builder(TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(y0, y0 + width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(magnetic_flux="phi", spin_degeneracy=_spin_degeneracy(spin_degeneracy))


_GRAPHENE_EDGES = ("zigzag", "armchair", "bearded")

# Honeycomb of constant 1 (carbon-carbon distance 1/sqrt(3)): A at (0, 0), B at
# (0, 1/sqrt(3)), so the A-B bond along y joins zigzag chains that run along x.
# Zigzag chain j holds the A atoms at y = j sqrt(3)/2 and the B atoms at
# y = j sqrt(3)/2 - 1/(2 sqrt(3)), joined by the two tilted bonds of each atom.
_ROW_MARGIN = 0.1  # less than half the smallest spacing between atom rows, 1/(2 sqrt(3))


def _positive_length(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number (lattice constants), got {value!r}")
    return float(value)


def _graphene_lead_and_region(
    edge: str, width: int, length: float
) -> tuple[Any, Builder, Callable[[NDArray[np.float64]], bool], tuple[float, float]]:
    """Honeycomb lattice, lead builder, region shape and flood start of a ribbon.

    ``width`` counts zigzag chains (zigzag, bearded) or dimer lines (armchair).
    """
    lat = honeycomb(1.0, norbs=1)
    if edge in ("zigzag", "bearded"):
        period: tuple[float, float] = (-1.0, 0.0)
        # Zigzag: chains 0..width-1 whole, so the lowest atoms are B (two tilted bonds up
        # to chain 0's A atoms) and the highest are A (two tilted bonds down). Bearded:
        # the same A rows with the B rows shifted up by one chain (1..width), so the A
        # atoms of chain 0 and the B atoms of chain `width` hang on a single bond.
        if edge == "zigzag":
            bottom = -1 / (2 * np.sqrt(3)) - _ROW_MARGIN
            top = (width - 1) * np.sqrt(3) / 2 + _ROW_MARGIN
        else:
            bottom = -_ROW_MARGIN
            top = width * np.sqrt(3) / 2 - 1 / (2 * np.sqrt(3)) + _ROW_MARGIN

        def across(pos: NDArray[np.float64]) -> bool:
            return bool(bottom < pos[1] < top)

        def region(pos: NDArray[np.float64]) -> bool:
            return bool(across(pos) and 0 <= pos[0] < length)

        start = (0.1, 0.1)
    elif edge == "armchair":
        period = (0.0, -np.sqrt(3))
        # Dimer line n is the column of A-B bonds at x = n/2; lines 0..width-1.
        right = (width - 1) / 2 + _ROW_MARGIN

        def across(pos: NDArray[np.float64]) -> bool:
            return bool(-_ROW_MARGIN < pos[0] < right)

        def region(pos: NDArray[np.float64]) -> bool:
            return bool(across(pos) and 0 <= pos[1] < length)

        start = (0.0, 0.1)
    else:
        raise ValueError(
            f"edge must be one of {', '.join(repr(e) for e in _GRAPHENE_EDGES)}, got {edge!r}"
        )
    lead = Builder(TranslationalSymmetry(period))
    lead[lat.shape(across, start)] = 0.0
    lead[lat.neighbors()] = -1.0
    return lat, lead, region, start


@_declare_units(effective_mass=False, potential="energy")
def graphene_ribbon(
    width: int = 6,
    length: float = 10.0,
    *,
    edge: Literal["zigzag", "armchair", "bearded"] = "zigzag",
    spin_degeneracy: int = 1,
) -> System:
    """A graphene nanoribbon (nearest-neighbour hopping t = 1, lattice constant 1).

    The honeycomb lattice is :func:`mesoscopic.lattice.honeycomb` with constant 1,
    so the carbon-carbon distance is ``1/sqrt(3)``. Zigzag and bearded ribbons run
    along x (period 1), armchair ribbons along y (period ``sqrt(3)``).

    Parameters
    ----------
    width : int
        Width in the convention of the literature, at least 2.
        Zigzag: the number N of zigzag chains (N-ZGNR), 2N atoms per unit cell; every
        edge atom has two bonds inside the ribbon. The ribbon is gapless for every N:
        its edge band is flat at E = 0 for ``2 pi/3 <= |k| <= pi``, and one channel is
        open at any small ``E != 0``.
        Armchair: the number N of dimer lines (N-AGNR), 2N atoms per unit cell; every
        edge atom has two bonds inside the ribbon. Metallic when ``N % 3 == 2``,
        otherwise a gap opens at E = 0 (the bands at k = 0 are
        ``+-|1 + 2 cos(p pi / (N + 1))|``, p = 1..N).
        Bearded: 2N atoms per unit cell, N - 1 whole zigzag chains and at each edge
        one atom per cell hanging on a single bond (Klein edges); no states within
        ``|E| < 0.095`` at N = 4 (0.023 at N = 6), a gap that halves with each chain.
    length : float
        Length of the scattering region along the ribbon, in lattice constants (> 0).
    edge : {"zigzag", "armchair", "bearded"}
        Edge termination.
    spin_degeneracy : {1, 2}
        The factor the conductances carry (default 1, per spin; 2 for real graphene,
        whose valleys are already in the lattice).

    Notes
    -----
    Parameters at solve time: ``potential`` (energy, the onsite energy in the scattering
    region, in units of the hopping t; not an effective-mass lattice, so a
    :class:`Discretization` does not apply).

    Examples
    --------
    >>> import mesoscopic as meso
    >>> fsys = meso.models.graphene_ribbon(4, 6.0, edge="zigzag")
    >>> s = meso.smatrix(fsys, 1e-3, params={"potential": 0.0})
    >>> s.num_propagating(0), round(float(s.transmission(1, 0)), 8)
    (1, 1.0)
    """
    width = _checks.positive_int(width, "width", minimum=2)
    length = _positive_length(length, "length")
    lat, lead, region, start = _graphene_lead_and_region(edge, width, length)

    def onsite(site: Any, potential: float) -> float:
        return potential

    syst = Builder()
    syst[lat.shape(region, start)] = onsite
    syst[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(spin_degeneracy=_spin_degeneracy(spin_degeneracy))


@_declare_units(effective_mass=False, v_left="energy", v_right="energy")
def graphene_pn_junction(
    width: int = 30, length: float = 40.0, *, smoothness: float = 2.0, spin_degeneracy: int = 1
) -> System:
    """A graphene p-n junction: a smooth potential step across a zigzag ribbon.

    The ribbon is the one of ``graphene_ribbon(width, length, edge="zigzag")``:
    ``width`` is the number of zigzag chains (at least 2), every edge atom has two
    bonds inside the ribbon, and the leads carry one channel at small energies
    ``|E - v| > 0``.

    ``V(x) = v_left + (v_right - v_left) / (1 + exp(-(x - length/2) / smoothness))``;
    the leads carry ``v_left`` and ``v_right``. ``length`` and ``smoothness`` are in
    lattice constants and positive. `spin_degeneracy` (1 or 2, default 1) is the factor
    the conductances carry.

    Parameters at solve time: ``v_left``, ``v_right`` (energy, in units of the hopping t).
    """
    width = _checks.positive_int(width, "width", minimum=2)
    length = _positive_length(length, "length")
    smoothness = _positive_length(smoothness, "smoothness")
    lat, lead, region, start = _graphene_lead_and_region("zigzag", width, length)

    def step(x: float, v_left: float, v_right: float) -> float:
        return float(v_left + (v_right - v_left) / (1 + np.exp(-(x - length / 2) / smoothness)))

    def onsite(site: Any, v_left: float, v_right: float) -> float:
        return step(site.pos[0], v_left, v_right)

    def left_onsite(site: Any, v_left: float) -> float:
        return v_left

    def right_onsite(site: Any, v_right: float) -> float:
        return v_right

    syst = Builder()
    syst[lat.shape(region, start)] = onsite
    syst[lat.neighbors()] = -1.0
    left = Builder(lead.symmetry)
    for site in lead.sites():
        left[site] = left_onsite
    left[lat.neighbors()] = -1.0
    right = left.reversed()
    for site in right.sites():
        right[site] = right_onsite
    syst.attach_lead(left)
    syst.attach_lead(right)
    return syst.finalized(spin_degeneracy=_spin_degeneracy(spin_degeneracy))


def _bhz_terms(
    a: float, b: float, d: float, m: float
) -> tuple[NDArray[np.complex128], NDArray[np.complex128], NDArray[np.complex128]]:
    """Onsite and hoppings of the BHZ model on a square lattice of spacing 1.

    Basis (E1 up, H1 up, E1 down, H1 down). Spin up: h(k) = eps(k) + d(k).sigma with
    eps = -D k^2, d = (A kx, -A ky, M - B k^2); spin down: h*(-k). On the lattice
    k^2 -> 2(2 - cos kx - cos ky) and k -> sin k. Hoppings are ``<x + 1|H|x>``, so
    H(k) = onsite + hop e^{-ik} + hop^dagger e^{ik} along each axis.
    """
    s0 = np.eye(2, dtype=complex)
    sx = np.array([[0, 1], [1, 0]], dtype=complex)
    sy = np.array([[0, -1j], [1j, 0]])
    sz = np.diag([1.0, -1.0]).astype(complex)
    up, down = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    diagonal = d * s0 + b * sz
    onsite_block = -4 * d * s0 + (m - 4 * b) * sz
    onsite = np.kron(up + down, onsite_block)
    hop_x = np.kron(up, diagonal + 0.5j * a * sx) + np.kron(down, diagonal - 0.5j * a * sx)
    hop_y = np.kron(up + down, diagonal - 0.5j * a * sy)
    return onsite, hop_x, hop_y


@_declare_units(effective_mass=False, mass="energy", disorder="energy", seed="seed")
def bhz_ribbon(
    width: int = 30,
    length: int = 30,
    *,
    a: float = 0.5,
    b: float = -1.0,
    d: float = 0.0,
    spin_degeneracy: int = 1,
) -> System:
    """Quantum spin Hall ribbon: the BHZ model (HgTe quantum well) with Anderson disorder.

    Four orbitals per site (E1 up, H1 up, E1 down, H1 down); Bernevig, Hughes and
    Zhang, Science 314, 1757 (2006). The bands are inverted (topological) for
    0 < M/B < 4 and trivial for M/B < 0: with the default B = -1, ``mass`` in (-4, 0)
    is a quantum spin Hall insulator. In its gap each edge carries one Kramers pair:
    T = 2 (G = 2 e^2/h), robust to non-magnetic disorder; the trivial gap has T = 0.
    Lengths are in lattice constants; `a`, `b`, `d` are the BHZ constants A, B, D in
    units of the energy scale with a = 1. Spin is explicit (both Kramers partners are
    orbitals), so `spin_degeneracy` must be 1.

    Parameters at solve time: ``mass`` (energy, M), ``disorder`` (energy) and ``seed``
    (seed, a non-negative integer), energies in the model's energy unit.
    """
    spin_degeneracy = _spin_degeneracy(spin_degeneracy, explicit_spin=True, why="bhz_ribbon")
    width = _checks.positive_int(width, "width", minimum=2)
    length = _checks.positive_int(length, "length")
    lat = square(1.0, norbs=4)

    def terms(mass: float) -> tuple[Any, Any, Any]:
        return _bhz_terms(a, b, d, mass)

    def onsite(sites: SiteArray, mass: float, disorder: float, seed: int) -> Any:
        u = _uniform_disorder(seed, (length, width))[sites.tags[:, 0], sites.tags[:, 1]]
        return terms(mass)[0][None] + disorder * u[:, None, None] * np.eye(4)[None]

    def hop_x(a_: SiteArray, b_: SiteArray, mass: float) -> Any:
        return terms(mass)[1]

    def hop_y(a_: SiteArray, b_: SiteArray, mass: float) -> Any:
        return terms(mass)[2]

    syst = Builder(vectorize=True)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[HoppingKind((1, 0), lat)] = hop_x
    syst[HoppingKind((0, 1), lat)] = hop_y
    lead = Builder(TranslationalSymmetry((-1, 0)), vectorize=True)

    def lead_onsite(sites: SiteArray, mass: float) -> Any:
        return terms(mass)[0]

    lead[(lat(0, y) for y in range(width))] = lead_onsite
    lead[HoppingKind((1, 0), lat)] = hop_x
    lead[HoppingKind((0, 1), lat)] = hop_y
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(spin_degeneracy=spin_degeneracy)


TAU_X = np.array([[0.0, 1.0], [1.0, 0.0]])
TAU_Y = np.array([[0.0, -1j], [1j, 0.0]])


@_declare_units(
    effective_mass=False,
    fermi_energy="energy",
    delta="energy",
    barrier="energy",
    exchange="energy",
)
def btk_junction(
    *, hopping: float = 1.0, lattice_constant: float = 1.0, spin_degeneracy: int = 1
) -> System:
    """Normal-metal / barrier / superconductor chain: the tight-binding BTK junction.

    A chain in the Bogoliubov-de Gennes basis (electron, hole) with hopping ``-t tau_z``:
    normal sites ``j < 0`` (lead 0, from the left), one barrier site ``j = 0``, and an
    s-wave superconductor ``j > 0`` (lead 1, to the right). Onsite terms:

    * normal, ``j < 0``: ``diag(2t - E_F, -(2t - E_F + exchange))``;
    * barrier, ``j = 0``: the normal onsite plus ``barrier * tau_z``;
    * superconductor, ``j > 0``: ``(2t - E_F) tau_z + delta * tau_x``.

    The normal lead has the electron-hole conservation law ``-tau_z``, as in Kwant's
    superconductor tutorial, so its block 0 is the electron and block 1 the hole: for an
    electron coming in from lead 0, ``s.transmission((0, 0), (0, 0))`` is the normal
    reflection ``R_ee = B`` and ``s.transmission((0, 1), (0, 0))`` the Andreev reflection
    ``R_he = A``; the conductance per spin channel is ``G = 1 - R_ee + R_he`` in ``e^2/h``.
    :func:`mesoscopic.analytic.btk_chain_reflection` is the exact solution of this chain,
    and :func:`mesoscopic.analytic.btk_barrier_height` converts BTK's ``Z`` to ``barrier``
    (``Z = barrier / (2 t sin k_F)``).

    Spin polarization. ``exchange`` shifts the band of the reflected hole (the opposite
    spin of a ferromagnetic normal side); above ``E_F + E`` the hole is evanescent and
    Andreev reflection is suppressed (a half metal). A current of polarization ``P`` in the
    sense of Mazin et al. and Strijkers et al. (see :mod:`mesoscopic.analytic.btk`) is
    ``G_P = (1 - P) G(exchange=0) + P G(exchange >> E_F)``.

    Parameters
    ----------
    hopping : float, optional, keyword-only
        ``t > 0`` in any energy unit (default 1); all parameters below share that unit.
        For a chain of lattice constant ``a`` and mass ``m``, ``t = hbar^2 / (2 m a^2)``.
    lattice_constant : float, optional, keyword-only
        ``a > 0`` (default 1), positions only.
    spin_degeneracy : {1, 2}, optional, keyword-only
        The factor the conductances carry: 1 (default) per spin channel of the BdG
        basis, 2 for both spins of a spin-singlet junction.

    Parameters at solve time: ``fermi_energy`` (``E_F`` from the band bottom,
    ``0 < E_F < 4t``), ``delta`` (gap), ``barrier`` (onsite barrier ``U`` of site 0) and
    ``exchange`` (default 0), all in the unit of `hopping`; the energy passed to the solver
    is measured from the Fermi level.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> fsys = meso.models.btk_junction()
    >>> params = {"fermi_energy": 1.0, "delta": 1e-2, "barrier": 0.0}
    >>> s = meso.smatrix(fsys, 0.5e-2, params=params)
    >>> round(s.transmission((0, 1), (0, 0)), 6)  # Andreev reflection inside the gap: 1 in the
    0.999956
    >>> # Andreev approximation, less by the lattice's band curvature at Delta = 0.01 t
    """
    t = float(_positive_length(hopping, "hopping"))
    a = float(_positive_length(lattice_constant, "lattice_constant"))
    lat = chain(a, norbs=2)

    def normal(fermi_energy: float, exchange: float) -> NDArray[np.float64]:
        xi = 2 * t - fermi_energy
        return np.diag([xi, -(xi + exchange)])

    def normal_onsite(site: Any, fermi_energy: float, exchange: float = 0.0) -> Any:
        return normal(fermi_energy, exchange)

    def barrier_onsite(
        site: Any, fermi_energy: float, barrier: float, exchange: float = 0.0
    ) -> Any:
        return normal(fermi_energy, exchange) + barrier * SIGMA_Z

    def super_onsite(site: Any, fermi_energy: float, delta: float) -> Any:
        return (2 * t - fermi_energy) * SIGMA_Z + delta * TAU_X

    hop = -t * SIGMA_Z
    syst = Builder()
    syst[lat(-1)] = normal_onsite
    syst[lat(0)] = barrier_onsite
    syst[lat(1)] = super_onsite
    syst[lat.neighbors()] = hop
    left = Builder(TranslationalSymmetry((-a,)), conservation_law=-SIGMA_Z, particle_hole=TAU_Y)
    left[lat(0)] = normal_onsite
    left[lat.neighbors()] = hop
    right = Builder(TranslationalSymmetry((a,)))
    right[lat(0)] = super_onsite
    right[lat.neighbors()] = hop
    syst.attach_lead(left)
    syst.attach_lead(right)
    return syst.finalized(spin_degeneracy=_spin_degeneracy(spin_degeneracy))


_ELECTRODES = ("wide-band", "tight-binding")


def _molecule_hamiltonian(hamiltonian: Any) -> NDArray[np.complex128]:
    try:
        h = np.asarray(hamiltonian, dtype=complex)
    except (TypeError, ValueError):
        raise ValueError(
            f"hamiltonian must be a square Hermitian matrix of numbers, got {hamiltonian!r}"
        ) from None
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise ValueError(
            f"hamiltonian must be a square (n, n) matrix with n >= 1, got shape {h.shape}"
        )
    if not np.all(np.isfinite(h)):
        raise ValueError("hamiltonian has non-finite entries (nan or inf)")
    scale = max(float(np.max(np.abs(h))), 1.0)
    mismatch = float(np.max(np.abs(h - h.conj().T)))
    if mismatch > 1e-12 * scale:
        raise ValueError(f"hamiltonian must be Hermitian: max |H - H^dagger| = {mismatch:.3g}")
    return h


def _electrode_contacts(contacts: Any, n: int) -> tuple[tuple[int, ...], ...]:
    if isinstance(contacts, (str, bytes)) or not hasattr(contacts, "__iter__"):
        raise ValueError(
            "contacts must be a sequence with one entry per electrode, each an atom index or a "
            f"sequence of atom indices, got {contacts!r}"
        )
    electrodes = []
    for k, atoms in enumerate(contacts):
        group = (atoms,) if isinstance(atoms, (int, np.integer)) else tuple(atoms)
        if not group:
            raise ValueError(f"contacts[{k}] names no atom; give at least one atom index")
        for atom in group:
            if (
                isinstance(atom, bool)
                or not isinstance(atom, (int, np.integer))
                or not 0 <= atom < n
            ):
                raise ValueError(f"contacts[{k}] has atom {atom!r}; atoms are integers 0..{n - 1}")
        if len(set(group)) != len(group):
            raise ValueError(f"contacts[{k}] names an atom twice: {group!r}")
        electrodes.append(tuple(int(a) for a in group))
    if not electrodes:
        raise ValueError("contacts is empty; give one entry per electrode")
    return tuple(electrodes)


def chain_surface_green_function(energy: Any, hopping: float) -> NDArray[np.complex128]:
    """Retarded surface Green's function of a semi-infinite chain (onsite 0, hopping ``t``).

    ``g(E) = (E - sqrt(E - 2|t|) sqrt(E + 2|t|)) / (2 t^2)``: ``-i sqrt(4t^2 - E^2) / (2t^2)``
    imaginary part inside the band ``|E| < 2|t|``, real and decaying outside it.

    Parameters
    ----------
    energy : float or array_like
        Energies, in the unit of `hopping`.
    hopping : float
        The chain's nearest-neighbour hopping ``t != 0``.

    Returns
    -------
    complex ndarray, the shape of `energy`.

    Examples
    --------
    >>> g = chain_surface_green_function([0.0, 3.0], 1.0)
    >>> np.round(g, 12).tolist()  # band centre: -i / t; outside the band: real
    [-1j, (0.38196601125+0j)]
    """
    t = abs(float(hopping))
    if not t > 0 or not np.isfinite(t):
        raise ValueError(f"hopping must be a finite nonzero number, got {hopping!r}")
    z = np.asarray(energy, dtype=float) + 0j
    return (z - np.sqrt(z - 2 * t) * np.sqrt(z + 2 * t)) / (2 * t * t)


class _Molecule(SiteFamily):
    """The atoms of a molecule: tag ``(i,)`` is atom ``i`` at ``positions[i]``."""

    def __init__(self, positions: NDArray[np.float64]) -> None:
        digest = hashlib.sha256(np.ascontiguousarray(positions).tobytes()).hexdigest()[:16]
        super().__init__(f"mesoscopic.models.molecule({digest})", "atom", 1)
        self._positions = np.array(positions, dtype=float)
        self._positions.flags.writeable = False

    def normalize_tag(self, tag: Sequence[Any]) -> Any:
        (index,) = tag
        if isinstance(index, (bool, np.bool_)) or not 0 <= int(index) < len(self._positions):
            raise ValueError(
                f"atom {index!r} does not exist; atoms are 0..{len(self._positions) - 1}"
            )
        return super().normalize_tag(tag)

    def pos(self, tag: Sequence[int]) -> NDArray[np.float64]:
        return np.array(self._positions[tag[0]])


@_declare_units(effective_mass=False, gamma="energy", coupling="energy", lead_hopping="energy")
def molecular_junction(
    hamiltonian: Any,
    contacts: Any,
    *,
    electrodes: Literal["wide-band", "tight-binding"] = "wide-band",
    positions: Any = None,
    spin_degeneracy: int = 2,
) -> System:
    """A molecule between electrodes attached at chosen atoms.

    The molecule is any tight-binding Hamiltonian, for example Hückel's (``alpha`` on the
    diagonal, ``beta`` between bonded atoms; :func:`huckel_ring`). One atom per site, one
    orbital per atom; site ``i`` is atom ``i``, at ``positions[i]``. Each electrode couples
    to its contact atoms, each contact atom through its own channel (a diagonal
    self-energy), and the electrodes are the leads ``0, 1, ...`` in the order of
    `contacts`. Transmissions are the Caroli ones,
    ``T_ij = Tr[Gamma_i G Gamma_j G^dagger]`` with ``G = (E - H - sum_k Sigma_k)^-1``.

    Parameters
    ----------
    hamiltonian : array_like, shape (n, n)
        Hermitian matrix of the molecule, in any energy unit (``|beta|`` of Hückel theory,
        or eV); every energy below and at solve time is in that unit.
    contacts : sequence
        One entry per electrode: an atom index, or a sequence of atom indices. Benzene
        (:func:`huckel_ring`) with two electrodes: ``[0, 1]`` ortho, ``[0, 2]`` meta,
        ``[0, 3]`` para.
    electrodes : {"wide-band", "tight-binding"}, optional, keyword-only
        ``"wide-band"`` (default): self-energy ``-i gamma / 2`` on each contact atom,
        independent of energy. ``"tight-binding"``: a semi-infinite chain (onsite 0,
        hopping ``lead_hopping``, band ``|E| < 2 |lead_hopping|``) bonded to each contact
        atom by the hopping ``coupling``, self-energy
        ``coupling^2 g(E)`` (:func:`chain_surface_green_function`).
    positions : array_like, shape (n, dim), optional, keyword-only
        Atom positions (for plots, ``site.pos``); by default atom ``i`` at ``(i, 0)``.
    spin_degeneracy : {1, 2}, optional, keyword-only
        The factor the conductances carry (default 2: a spinless Hückel orbital per atom).

    Notes
    -----
    Parameters at solve time, in the unit of `hamiltonian`: ``gamma`` (wide-band: the
    broadening ``Gamma > 0`` each contact atom gets from its electrode), or ``coupling``
    and ``lead_hopping`` (tight-binding). The electrodes' Fermi level is ``E = 0``.

    Examples
    --------
    Quantum interference in benzene: meta contacts transmit nothing at ``E = 0``, para
    contacts transmit ``4 x^2 / (1 + x^2)^2`` with ``x = gamma / (4 |beta|)``:

    >>> import mesoscopic as meso
    >>> h, pos = meso.models.huckel_ring(6)
    >>> meta = meso.models.molecular_junction(h, [0, 2], positions=pos)
    >>> para = meso.models.molecular_junction(h, [0, 3], positions=pos)
    >>> t_meta = meso.batch.transmission(meta, [0.0], 1, 0, params={"gamma": 1.0})
    >>> t_para = meso.batch.transmission(para, [0.0], 1, 0, params={"gamma": 1.0})
    >>> bool(t_meta[0] < 1e-20), round(float(t_para[0]), 6), round(4 * 0.25**2 / 1.0625**2, 6)
    (True, 0.221453, 0.221453)
    """
    from .system import SelfEnergyLead

    h = _molecule_hamiltonian(hamiltonian)
    n = h.shape[0]
    groups = _electrode_contacts(contacts, n)
    if electrodes not in _ELECTRODES:
        raise ValueError(
            f"electrodes must be one of {', '.join(repr(e) for e in _ELECTRODES)}, "
            f"got {electrodes!r}"
        )
    if positions is None:
        pos = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    else:
        pos = np.asarray(positions, dtype=float)
        if pos.ndim != 2 or pos.shape[0] != n or not np.all(np.isfinite(pos)):
            raise ValueError(
                f"positions must be a finite ({n}, dim) array, one row per atom, "
                f"got shape {np.shape(positions)}"
            )
    spin = _spin_degeneracy(spin_degeneracy)
    # One family whose tag is the atom's index: sites sort by tag, so site i of the system
    # is atom i of the Hamiltonian (a lattice basis would sort them by position).
    family = _Molecule(pos)
    atoms = [family(i) for i in range(n)]
    real = bool(np.all(h.imag == 0))
    syst = Builder()
    for i, atom in enumerate(atoms):
        syst[atom] = float(h[i, i].real)
    for i in range(n):
        for j in range(i + 1, n):
            if h[i, j] != 0:
                syst[atoms[i], atoms[j]] = float(h[i, j].real) if real else complex(h[i, j])
    fsys = syst.finalized(spin_degeneracy=spin)

    leads: list[Any] = []
    for group in groups:
        eye = np.eye(len(group))
        if electrodes == "wide-band":

            def wide_band(
                energy: Any, args: Any = (), *, params: Any = None, eye: Any = eye
            ) -> Any:
                return -0.5j * params["gamma"] * eye

            leads.append(SelfEnergyLead(wide_band, [atoms[a] for a in group], ("gamma",)))
        else:

            def chain_lead(
                energy: Any, args: Any = (), *, params: Any = None, eye: Any = eye
            ) -> Any:
                g = chain_surface_green_function(energy, params["lead_hopping"])
                return params["coupling"] ** 2 * g * eye

            leads.append(
                SelfEnergyLead(chain_lead, [atoms[a] for a in group], ("coupling", "lead_hopping"))
            )
    return fsys.with_leads(leads)


def huckel_ring(
    n: int = 6, *, alpha: float = 0.0, beta: float = -1.0, bond_length: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Hückel Hamiltonian of an n-membered ring (benzene for n = 6) and its atom positions.

    ``H_ii = alpha``, ``H_{i, i+1} = beta`` around the ring; orbital energies
    ``alpha + 2 beta cos(2 pi k / n)``. Atom ``i`` sits at angle ``2 pi i / n`` on a regular
    polygon of side `bond_length`, so neighbours in the ring are neighbours in space:
    for benzene, atoms ``(0, 1)`` are ortho, ``(0, 2)`` meta and ``(0, 3)`` para.

    Parameters
    ----------
    n : int
        Number of atoms, at least 3.
    alpha, beta : float, optional, keyword-only
        Coulomb and resonance integrals (default 0 and -1: energies in units of ``|beta|``
        measured from ``alpha``).
    bond_length : float, optional, keyword-only
        Side of the polygon (default 1).

    Returns
    -------
    hamiltonian : ndarray, shape (n, n)
    positions : ndarray, shape (n, 2)

    Examples
    --------
    >>> h, pos = huckel_ring(6)
    >>> np.round(np.linalg.eigvalsh(h), 12).tolist()
    [-2.0, -1.0, -1.0, 1.0, 1.0, 2.0]
    """
    n = _checks.positive_int(n, "n", minimum=3)
    for name, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    bond = _positive_length(bond_length, "bond_length")
    h = np.full(n, float(alpha))
    hamiltonian = np.diag(h)
    for i in range(n):
        hamiltonian[i, (i + 1) % n] = hamiltonian[(i + 1) % n, i] = float(beta)
    radius = bond / (2 * np.sin(np.pi / n))
    angles = 2 * np.pi * np.arange(n) / n
    positions = radius * np.column_stack([np.cos(angles), np.sin(angles)])
    return hamiltonian, positions
