"""Unit helpers of mesoscopic.constants against numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mesoscopic import constants as c


def test_named_constants_are_codata():
    assert c.mu_B == pytest.approx(9.27401007e-24, rel=1e-8)  # CODATA 2018 or 2022
    assert c.mu_B_meV == pytest.approx(0.0578838180, rel=1e-8)
    assert c.flux_quantum == pytest.approx(4.135667696e-15, rel=1e-9)  # h/e
    assert c.superconducting_flux_quantum == pytest.approx(2.067833848e-15, rel=1e-9)  # h/2e
    assert c.flux_quantum == pytest.approx(c.R_K * c.e)


def test_gaas_density_and_fermi_energy():
    # E_F = pi hbar^2 n / m* for g_s = 2: by hand 1.144898e-21 J = 7.1459 meV.
    assert float(c.density_to_fermi_energy(2e15, 0.067)) == pytest.approx(7.1459, abs=1e-4)
    # Graphene-like valley degeneracy halves E_F at fixed n and mass.
    assert float(c.density_to_fermi_energy(2e15, 0.067, valley_degeneracy=2)) == pytest.approx(
        7.1459 / 2, abs=1e-4
    )
    n = np.array([1e15, 3e15])
    np.testing.assert_allclose(
        c.fermi_energy_to_density(c.density_to_fermi_energy(n, 0.067), 0.067), n, rtol=1e-12
    )
    with pytest.raises(ValueError, match="effective_mass must be > 0"):
        c.density_to_fermi_energy(1e15, 0.0)
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        c.density_to_fermi_energy(1e15, 0.067, spin_degeneracy=0)


def test_filling_factor():
    # n h / e = 2e15 * 4.135667696e-15 T = 8.2713 T: nu = 2 at 4.1357 T.
    assert float(c.filling_factor(2e15, 8.271335392 / 2)) == pytest.approx(2.0, rel=1e-9)
    with pytest.raises(ValueError, match="field must be nonzero"):
        c.filling_factor(2e15, 0.0)


def test_subband_spacing_and_curvature():
    # k = 0.01 meV/nm^2 = 1.602e-6 J/m^2; omega = sqrt(k / m*) = 5.1236e12 /s; 3.3724 meV.
    assert float(c.subband_spacing(0.01, 0.067)) == pytest.approx(3.3724, abs=1e-4)
    assert float(c.confinement_curvature(3.3724, 0.067)) == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ValueError, match="curvature must be >= 0"):
        c.subband_spacing(-1.0, 0.067)


def test_field_and_flux_per_cell():
    # 1 T through (5 nm)^2 = 2.5e-17 Wb = 0.0060450 h/e.
    assert float(c.field_to_flux(1.0, 25.0)) == pytest.approx(2.5e-17 / 4.135667696e-15)
    assert float(c.flux_to_field(c.field_to_flux(3.0, 25.0), 25.0)) == pytest.approx(3.0)


def test_kelvin_and_kT():
    assert float(c.kelvin_to_meV(1.0)) == pytest.approx(0.08617333262, rel=1e-9)
    assert float(c.meV_to_kelvin(0.08617333262)) == pytest.approx(1.0, rel=1e-9)
