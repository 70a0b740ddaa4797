"""The scattering matrix does not depend on the unit of energy nor on its origin.

``S(c H, c E) = S(H, E)`` for any ``c > 0`` and ``S(H + s, E + s) = S(H, E)``: every
tolerance of the lead-mode solver and of the solvers must be relative to the scale of the
Hamiltonian it works on. Checked on random small systems with a superconducting (BdG) lead
and a normal lead with an electron-hole conservation law, by mode-resolved probabilities
``|S_ij|^2`` (the phases of the modes are a gauge choice).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoscopic.leads import LeadData
from mesoscopic.solvers import scattering_matrix

TAU_Z = np.diag([1.0, -1.0])
TAU_X = np.array([[0.0, 1.0], [1.0, 0.0]])
ELECTRON_HOLE = [np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]])]


def random_junction(seed, smallest_gap=1e-4):
    """(h_sys, lead cells, energy) of a random N / scatterer / S junction, hopping ~ 1.

    Two sites of two orbitals (electron, hole) in the scattering region with random
    onsite energies and pairing; a normal BdG lead with the electron-hole conservation law
    on the left, a superconducting lead with a gap of `smallest_gap` to 1e-1 times the
    hopping on the right.
    """
    rng = np.random.default_rng(seed)
    xi = rng.uniform(-1.2, 1.2)
    gap = 10 ** rng.uniform(np.log10(smallest_gap), -1)
    energy = gap * rng.choice([0.3, 0.8, 1.3, 2.5])
    h_sys = np.zeros((4, 4), dtype=complex)
    for site in range(2):
        block = rng.uniform(-0.5, 0.5) * TAU_Z + xi * TAU_Z + rng.uniform(0, 0.1) * TAU_X
        h_sys[2 * site : 2 * site + 2, 2 * site : 2 * site + 2] = block
    h_sys[0:2, 2:4] = -TAU_Z * rng.uniform(0.6, 1.2)
    h_sys[2:4, 0:2] = h_sys[0:2, 2:4].conj().T
    normal = (xi * TAU_Z, -TAU_Z)
    superconducting = (xi * TAU_Z + gap * TAU_X, -TAU_Z)
    return h_sys, normal, superconducting, energy


def probabilities(h_sys, normal, superconducting, energy, *, scale=1.0, shift=0.0):
    eye = np.eye(2)
    left = LeadData(
        scale * normal[0] + shift * eye, scale * normal[1], interface_sys=[0, 1],
        interface_cell=[0, 1], projectors=ELECTRON_HOLE,
    )  # fmt: skip
    right = LeadData(
        scale * superconducting[0] + shift * eye, scale * superconducting[1],
        interface_sys=[2, 3], interface_cell=[0, 1],
    )  # fmt: skip
    h = scale * h_sys + shift * np.eye(4)
    s = scattering_matrix(h, [left, right], scale * energy + shift)
    assert s.check_unitarity() < 1e-10
    return np.abs(s.data) ** 2


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), exponent=st.floats(-10, 10))
def test_same_smatrix_in_any_energy_unit(seed, exponent):
    """Gaps down to 1e-8 of the hopping: the electron- and hole-like solutions of the
    superconducting lead are then 1e-8 apart (the lead modes refine them in extended
    precision). A change of unit rounds every number relatively, which such a gap does not
    feel; a change of origin (below) rounds ``h + s`` by ``eps |s|``, a change of
    ``eps |s| / Delta`` in ``E / Delta``, so that test keeps gaps from 1e-4."""
    junction = random_junction(seed, smallest_gap=1e-8)
    reference = probabilities(*junction)
    scaled = probabilities(*junction, scale=10.0**exponent)
    assert scaled.shape == reference.shape
    assert np.max(np.abs(scaled - reference), initial=0.0) < 1e-10


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-3, 3))
def test_same_smatrix_for_any_energy_origin(seed, shift):
    junction = random_junction(seed)
    reference = probabilities(*junction)
    shifted = probabilities(*junction, shift=shift)
    assert shifted.shape == reference.shape
    assert np.max(np.abs(shifted - reference), initial=0.0) < 1e-10
