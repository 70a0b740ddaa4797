"""Models declare the units of their parameters; physical units convert through them."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import constants, models

# One small instance of every model under each option that changes its parameters.
SMALL = {
    "quantum_point_contact": [
        {"width": 6, "length": 8},
        {"width": 6, "length": 8, "kind": "abrupt"},
        {"width": 6, "length": 8, "zeeman": True},
    ],
    "disordered_wire": [{"width": 3, "length": 4}],
    "double_barrier": [{"well": 3, "barrier": 1}],
    "hall_bar": [{"length": 8, "width": 4, "arm": 2}],
    "aharonov_bohm_ring": [{"outer_radius": 5.0, "inner_radius": 3.0}],
    "graphene_ribbon": [{"width": 2, "length": 2.0}],
    "graphene_pn_junction": [{"width": 2, "length": 4.0}],
    "bhz_ribbon": [{"width": 2, "length": 2}],
    "btk_junction": [{}],
    "molecular_junction": [
        {"hamiltonian": models.huckel_ring(6)[0], "contacts": [0, 3]},
        {
            "hamiltonian": models.huckel_ring(6)[0],
            "contacts": [0, 3],
            "electrodes": "tight-binding",
        },
    ],
}
# Public functions of `models` that build no system (helpers of the models).
HELPERS = {"parameter_units", "huckel_ring", "chain_surface_green_function"}
MODELS = sorted(n for n in models.__all__ if n[0].islower() and n not in HELPERS)
EXPLICIT_SPIN = {"bhz_ribbon": {}, "quantum_point_contact": {"zeeman": True}}


def test_every_model_is_covered_here():
    assert sorted(SMALL) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_of_every_model_has_a_declared_kind(name):
    kinds = models.parameter_units(name)
    assert kinds == models.parameter_units(getattr(models, name))
    seen = set()
    for options in SMALL[name]:
        fsys = getattr(models, name)(**options)
        assert set(fsys.parameters) <= set(kinds), options
        seen |= set(fsys.parameters)
        assert fsys.magnetic_flux is None or kinds[fsys.magnetic_flux] == "flux"
    assert seen == set(kinds)  # no declaration for a parameter that no variant takes
    assert set(kinds.values()) <= set(models.PARAMETER_KINDS)


def test_the_declared_kinds_of_the_qpc_and_the_hall_bar():
    assert dict(models.parameter_units("quantum_point_contact")) == {
        "gate": "energy",
        "confinement": "energy/length^2",
        "zeeman": "energy",
    }
    assert dict(models.parameter_units("hall_bar")) == {
        "phi": "flux",
        "disorder": "energy",
        "seed": "seed",
    }
    with pytest.raises(ValueError, match=r"declares no units.*quantum_point_contact"):
        models.parameter_units(np.sin)


def test_qpc_in_gaas_from_physical_units_equals_the_lattice_call():
    """A QPC in GaAs with a = 5 nm: meV, meV/nm^2 through the declaration = hand conversion.

    The hand conversion uses only the lattice: t = hbar^2 / (2 m* a^2), and a parabola of
    curvature c (t/a^2) has the subband spacing hbar omega = sqrt(2 c) t (mass 1/2 in
    units hbar = a = t = 1), so c = (hbar omega / t)^2 / 2.
    """
    gaas = models.Discretization(lattice_constant=5.0, effective_mass=0.067)
    t_meV = (constants.hbar**2 / (2 * 0.067 * constants.m_e * (5e-9) ** 2)) / constants.meV
    assert gaas.hopping == pytest.approx(t_meV, rel=1e-12)
    spacing_meV, gate_meV = 3.0, 2.0
    curvature = constants.confinement_curvature(spacing_meV, 0.067)  # meV/nm^2
    lattice = {"gate": gate_meV / t_meV, "confinement": (spacing_meV / t_meV) ** 2 / 2}
    physical = gaas.params("quantum_point_contact", gate=gate_meV, confinement=curvature)
    assert physical == pytest.approx(lattice, rel=1e-12)
    assert all(type(v) is float for v in physical.values())

    fsys = models.quantum_point_contact(12, 20, smoothness=4.0)
    energies_meV = np.array([3.0, 6.0, 9.0])
    t_physical = meso.batch.transmission(fsys, gaas.energy(energies_meV), 1, 0, params=physical)
    t_lattice = meso.batch.transmission(fsys, energies_meV / t_meV, 1, 0, params=lattice)
    np.testing.assert_allclose(t_physical, t_lattice, atol=1e-12)
    assert t_lattice.max() > 0.5  # a channel is open: the comparison is not 0 == 0


def test_conversions_of_every_kind():
    d = models.Discretization(lattice_constant=4.0, effective_mass=0.05)
    assert d.convert("energy", 2 * d.hopping) == pytest.approx(2.0)
    assert d.convert("energy/length^2", d.hopping / 16.0) == pytest.approx(1.0)
    assert d.convert("flux", 1.0) == pytest.approx(1.0 * 16e-18 / constants.flux_quantum)
    assert d.convert("seed", 3) == 3
    assert d.convert("dimensionless", 0.5) == 0.5
    with pytest.raises(ValueError, match="unknown parameter kind 'volt'"):
        d.convert("volt", 1.0)
    params = d.params("hall_bar", phi=2.0, disorder=d.hopping, seed=4)
    assert params == {"phi": pytest.approx(float(d.flux(2.0))), "disorder": 1.0, "seed": 4}
    assert type(params["seed"]) is int


def test_density_to_fermi_energy_matches_the_lattice_density_of_states():
    # Near the band bottom the square lattice has 1/(4 pi t a^2) states per spin and unit
    # area, so n a^2 = g_s E_F / (4 pi t).
    d = models.Discretization(lattice_constant=5.0, effective_mass=0.067)
    n = 2e15  # m^-2
    e_f = d.fermi_energy(n)
    assert e_f == pytest.approx(n * (5e-9) ** 2 * 4 * np.pi / 2, rel=1e-12)
    assert d.to_meV(e_f) == pytest.approx(float(constants.density_to_fermi_energy(n, 0.067)))


def test_zeeman_uses_the_bohr_magneton():
    d = models.Discretization(lattice_constant=5.0)
    assert d.zeeman(2.0) == pytest.approx(0.44 * constants.mu_B_meV * 2.0 / d.hopping)


def test_params_refuses_unknown_names_and_non_effective_mass_models():
    d = models.Discretization(lattice_constant=5.0)
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['gates'\].*gate \(meV\)"):
        d.params("quantum_point_contact", gates=1.0)
    with pytest.raises(ValueError, match="graphene_ribbon is not the discretization"):
        d.params(models.graphene_ribbon, potential=1.0)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_takes_a_validated_spin_degeneracy(name):
    model = getattr(models, name)
    options = SMALL[name][0]
    assert model(**options, spin_degeneracy=1).spin_degeneracy == 1
    if name in EXPLICIT_SPIN and not EXPLICIT_SPIN[name]:
        with pytest.raises(ValueError, match="spin_degeneracy must be 1 here"):
            model(**options, spin_degeneracy=2)
    else:
        assert model(**options, spin_degeneracy=2).spin_degeneracy == 2
    for bad in (3, 0, True):
        with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
            model(**options, spin_degeneracy=bad)


def test_explicit_spin_orbitals_refuse_a_degeneracy_of_two():
    with pytest.raises(ValueError, match=r"quantum_point_contact\(zeeman=True\).*explicit"):
        models.quantum_point_contact(6, 8, zeeman=True, spin_degeneracy=2)
    assert models.quantum_point_contact(6, 8, zeeman=True).spin_degeneracy == 1


def test_hall_bar_conductance_scales_with_its_spin_degeneracy():
    params = {"phi": 0.05, "disorder": 0.0, "seed": 0}
    g = [
        meso.smatrix(
            models.hall_bar(8, 4, arm=2, spin_degeneracy=gs), 1.5, params=params
        ).conductance_matrix()
        for gs in (1, 2)
    ]
    np.testing.assert_allclose(g[1], 2 * g[0], atol=1e-12)
    assert np.abs(g[0]).max() > 0.5
