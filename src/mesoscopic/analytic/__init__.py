"""Closed-form transport results from the Landauer-Büttiker formalism.

Exact formulas that need no numerical scattering calculation, each a reference for
the numerical solvers and a building block for users:

* :mod:`~mesoscopic.analytic.waveguide`: hard-wall strip subbands and channel staircase;
* :mod:`~mesoscopic.analytic.barriers`: delta and rectangular barriers (continuum), single
  impurity and rectangular barrier on a tight-binding chain;
* :mod:`~mesoscopic.analytic.btk`: Andreev reflection at a normal / superconductor junction
  (BTK, spin-polarized currents, and the exact tight-binding BTK chain);
* :mod:`~mesoscopic.analytic.fabry_perot`: double barrier, coherent and phase averaged;
* :mod:`~mesoscopic.analytic.qpc`: Büttiker's saddle-point quantum point contact;
* :mod:`~mesoscopic.analytic.resistance`: contact, two- and four-terminal resistances;
* :mod:`~mesoscopic.analytic.quantum_hall`: thermal rounding of a quantum Hall plateau;
* :mod:`~mesoscopic.analytic.resonances`: Breit-Wigner and Coulomb-blockade peaks;
* :mod:`~mesoscopic.analytic.charge_relaxation`: the mesoscopic capacitor (R_q, C_mu);
* :mod:`~mesoscopic.analytic.luttinger`: Luttinger-liquid wire, dc and ac.

Units. Continuum models use meV, nm and the effective mass in units of m_e (default
0.067, GaAs); tight-binding chains use the hopping t (matrix element -t, band
``E = -2t cos k``); other energies share any one unit, with temperatures as ``kT``.
Conductances are in units of e^2/h with an explicit ``spin_degeneracy``; resistances
in units of h/e^2 (:data:`mesoscopic.constants.R_K` converts to ohm).

Examples
--------
>>> from mesoscopic import analytic
>>> float(analytic.fabry_perot_average_transmission(0.5, 0.5))
0.3333333333333333
"""

from __future__ import annotations

from .barriers import (
    chain_barrier_transmission,
    chain_impurity_transmission,
    delta_barrier_transmission,
    rectangular_barrier_transmission,
)
from .btk import (
    btk_barrier_height,
    btk_barrier_strength,
    btk_chain_reflection,
    btk_conductance,
    btk_reflection,
)
from .charge_relaxation import (
    cavity_density_of_states,
    cavity_reflection_amplitude,
    charge_relaxation_resistance,
    electrochemical_capacitance,
    wigner_smith_dos,
)
from .fabry_perot import (
    fabry_perot_average_transmission,
    fabry_perot_finesse,
    fabry_perot_peak_transmission,
    fabry_perot_transmission,
)
from .luttinger import (
    luttinger_ac_conductance,
    luttinger_bulk_conductance,
    luttinger_contact_reflection,
    luttinger_wire_conductance,
)
from .qpc import saddle_point_conductance, saddle_point_transmission
from .quantum_hall import quantum_hall_conductance
from .resistance import contact_resistance, four_terminal_resistance, two_terminal_resistance
from .resonances import (
    breit_wigner_transmission,
    metallic_dot_conductance,
    sequential_tunneling_conductance,
)
from .waveguide import (
    hard_wall_conductance,
    hard_wall_open_channels,
    hard_wall_subband_energies,
)

__all__ = [
    "breit_wigner_transmission",
    "btk_barrier_height",
    "btk_barrier_strength",
    "btk_chain_reflection",
    "btk_conductance",
    "btk_reflection",
    "cavity_density_of_states",
    "cavity_reflection_amplitude",
    "chain_barrier_transmission",
    "chain_impurity_transmission",
    "charge_relaxation_resistance",
    "contact_resistance",
    "delta_barrier_transmission",
    "electrochemical_capacitance",
    "fabry_perot_average_transmission",
    "fabry_perot_finesse",
    "fabry_perot_peak_transmission",
    "fabry_perot_transmission",
    "four_terminal_resistance",
    "hard_wall_conductance",
    "hard_wall_open_channels",
    "hard_wall_subband_energies",
    "luttinger_ac_conductance",
    "luttinger_bulk_conductance",
    "luttinger_contact_reflection",
    "luttinger_wire_conductance",
    "metallic_dot_conductance",
    "quantum_hall_conductance",
    "rectangular_barrier_transmission",
    "saddle_point_conductance",
    "saddle_point_transmission",
    "sequential_tunneling_conductance",
    "two_terminal_resistance",
    "wigner_smith_dos",
]
