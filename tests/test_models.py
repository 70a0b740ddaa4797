"""Ready-made devices reproduce the physics they are built for."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import models, network


def transmission(fsys, energy, **params):
    return meso.smatrix(fsys, energy, params=params).transmission(1, 0)


def test_discretization_units():
    d = models.Discretization(lattice_constant=10.0, effective_mass=0.067)
    # hbar^2 / (2 m* a^2) for GaAs with a = 10 nm is 5.69 meV.
    assert d.hopping == pytest.approx(5.687, abs=2e-3)
    assert d.to_meV(d.energy(3.0)) == pytest.approx(3.0)
    # One flux quantum h/e through a 10 nm x 10 nm cell needs 41.36 T.
    assert d.flux(41.357) == pytest.approx(1.0, rel=1e-4)
    assert d.thermal_energy(1.0) == pytest.approx(0.0861733 / 5.687, rel=1e-3)
    with pytest.raises(ValueError, match="lattice_constant must be a positive number"):
        models.Discretization(lattice_constant=-1.0)


def test_saddle_qpc_has_flat_plateaus():
    # hbar w_y = sqrt(2 t k) = 0.2 t is three times hbar w_x = sqrt(2 t gate) / smoothness.
    fsys = models.quantum_point_contact(24, 72, smoothness=12.0)
    params = {"gate": 0.3, "confinement": 0.02}
    assert fsys.spin_degeneracy == 2
    energies = np.linspace(0.3, 1.1, 33)
    t = np.array([transmission(fsys, e, **params) for e in energies])
    assert np.all(np.diff(t) > -1e-6)  # monotonic staircase
    near_integer = np.abs(t - np.round(t)) < 0.02
    assert near_integer.sum() > len(t) / 2  # flat plateaus dominate
    assert set(np.round(t[near_integer]).astype(int)) >= {0, 1, 2, 3, 4}


def test_zeeman_qpc_splits_plateaus_into_spin_resolved_steps():
    fsys = models.quantum_point_contact(16, 30, kind="abrupt", constriction=6, zeeman=True)
    assert fsys.spin_degeneracy == 1
    energies = np.linspace(0.1, 1.2, 45)
    t0 = np.array([transmission(fsys, e, gate=0.0, zeeman=0.0) for e in energies])
    t1 = np.array([transmission(fsys, e, gate=0.0, zeeman=0.15) for e in energies])
    # Without field the spins are degenerate: the total is even; with field odd values appear.
    assert np.all(np.abs(t0 / 2 - np.round(t0 / 2)) < 0.5)
    assert np.any(np.abs(t1 - 1) < 0.05)
    assert np.max(np.abs(t1 - t0)) > 0.5


def test_disordered_wire_is_reproducible_per_seed():
    fsys = models.disordered_wire(6, 40)
    a = transmission(fsys, 1.0, disorder=2.0, seed=5)
    b = transmission(fsys, 1.0, disorder=2.0, seed=5)
    c = transmission(fsys, 1.0, disorder=2.0, seed=6)
    assert a == b and a != c
    assert transmission(fsys, 1.0, disorder=0.0, seed=5) == pytest.approx(2.0, abs=1e-10)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        transmission(fsys, 1.0, disorder=1.0, seed=-1)


def test_double_barrier_resonance_is_perfect_for_symmetric_barriers():
    fsys = models.double_barrier(well=12, barrier=2)
    energies = np.linspace(0.05, 1.2, 400)
    t = np.array([transmission(fsys, e, barrier_height=1.5, well_potential=0.0) for e in energies])
    peak = int(np.argmax(t))
    # Refine the resonance: a symmetric Fabry-Perot resonance transmits perfectly.
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda e: -transmission(fsys, e, barrier_height=1.5, well_potential=0.0),
        bracket=(energies[peak - 1], energies[peak], energies[peak + 1]),
        tol=1e-12,
    )
    assert -res.fun == pytest.approx(1.0, abs=1e-8)
    assert np.median(t) < 0.2


def test_hall_bar_plateau_and_zero_longitudinal_resistance():
    fsys = models.hall_bar(40, 18, arm=10)
    s = meso.smatrix(fsys, 0.9, params={"phi": 0.08, "disorder": 0.5, "seed": 2})
    g = s.conductance_matrix()
    assert network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 4)) == pytest.approx(
        1.0, abs=1e-9
    )
    assert abs(network.four_terminal_resistance(g, current=(0, 1), voltage=(2, 3))) < 1e-9
    four = models.hall_bar(30, 12, terminals=4)
    assert len(four.leads) == 4


def test_aharonov_bohm_ring_oscillates_and_is_reciprocal():
    fsys = models.aharonov_bohm_ring(10.0, 6.0)
    fluxes = np.linspace(0, 0.02, 9)
    t = np.array([transmission(fsys, 0.5, phi=p) for p in fluxes])
    assert np.ptp(t) > 0.2
    for p in (0.003, 0.011):
        assert transmission(fsys, 0.5, phi=p) == pytest.approx(
            transmission(fsys, 0.5, phi=-p), abs=1e-10
        )


@pytest.mark.parametrize(
    ("edge", "width", "channels"),
    [("zigzag", 6, 1), ("armchair", 8, 1), ("armchair", 9, 0), ("armchair", 10, 0)],
)
def test_graphene_ribbon_channels_near_neutrality(edge, width, channels):
    fsys = models.graphene_ribbon(width, edge=edge)
    s = meso.smatrix(fsys, 0.05, params={"potential": 0.0})
    assert s.num_propagating(0) == channels
    assert s.transmission(1, 0) == pytest.approx(channels, abs=1e-10)


def test_graphene_pn_junction_transmits_less_than_the_unipolar_ribbon():
    fsys = models.graphene_pn_junction(16, 30)
    unipolar = transmission(fsys, 0.0, v_left=-0.3, v_right=-0.3)
    bipolar = transmission(fsys, 0.0, v_left=-0.3, v_right=0.3)
    assert unipolar == pytest.approx(round(unipolar), abs=1e-8)
    assert bipolar < unipolar - 0.1


def test_quantum_spin_hall_edges_are_robust_to_disorder():
    fsys = models.bhz_ribbon(24, 20)
    assert transmission(fsys, 0.02, mass=-0.5, disorder=0.0, seed=1) == pytest.approx(2, abs=1e-8)
    assert transmission(fsys, 0.02, mass=0.5, disorder=0.0, seed=1) < 1e-6
    for seed in (1, 2, 3):
        assert transmission(fsys, 0.02, mass=-0.5, disorder=1.0, seed=seed) > 1.99


def test_model_errors():
    with pytest.raises(ValueError, match="kind must be 'saddle' or 'abrupt'"):
        models.quantum_point_contact(kind="smooth")
    with pytest.raises(ValueError, match="terminals must be 4 or 6"):
        models.hall_bar(terminals=5)
    with pytest.raises(ValueError, match="edge must be one of 'zigzag', 'armchair', 'bearded'"):
        models.graphene_ribbon(edge="chiral")
    with pytest.raises(ValueError, match="width must be a positive integer"):
        models.disordered_wire(0)


def test_qpc_options_are_checked_against_the_kind():
    with pytest.raises(ValueError, match="smoothness must be a positive length"):
        models.quantum_point_contact(12, 24, smoothness=0.0)
    with pytest.raises(ValueError, match="smoothness must be a positive length"):
        models.quantum_point_contact(12, 24, smoothness=-3.0)
    with pytest.raises(ValueError, match="applies to kind='abrupt'"):
        models.quantum_point_contact(12, 24, constriction=4)
    with pytest.raises(ValueError, match="applies to kind='saddle' only"):
        models.quantum_point_contact(12, 24, kind="abrupt", smoothness=2.0)
