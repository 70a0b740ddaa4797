"""The retarded Green's function between lead interfaces (``greens_function``).

Checked against an independent dense inverse of ``E - H - sum Sigma`` built from the leads'
self-energies, against the S-matrix through the Fisher-Lee relation (transmissions,
reflections, the eigenvalues of ``t t^dagger``), and against closed forms (a resonant level
between wide-band leads).
"""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic.scattering import GreensFunction
from mesoscopic.system import SelfEnergyLead
from mesoscopic.transport import greens_function


def _four_terminal(flux: float = 0.02) -> meso.System:
    """A square with a hole and four leads, in a magnetic field (no time-reversal symmetry)."""
    lat = meso.lattice.square(norbs=1)

    def hopping(a, b):
        (xa, ya), (xb, yb) = a.pos, b.pos
        return -np.exp(-1j * flux * 0.5 * (ya + yb) * (xb - xa))

    syst = meso.Builder()
    syst[(lat(x, y) for x in range(-4, 4) for y in range(-4, 4) if x**2 + y**2 >= 2)] = 3.0
    syst[lat.neighbors()] = hopping
    for rows in (range(-4, -1), range(4)):
        lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        lead[(lat(0, y) for y in rows)] = 4.0
        lead[lat.neighbors()] = hopping
        syst.attach_lead(lead)
        syst.attach_lead(lead.reversed())
    return syst.finalized()


def _dense_green(fsys: meso.System, energy: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(E - H - sum Sigma)^-1`` by a dense inverse, with each lead's self-energy."""
    ham = fsys.hamiltonian_submatrix()
    total = energy * np.eye(len(ham)) - ham
    sigmas, orbitals = [], []
    for k, lead in enumerate(fsys.leads):
        sys_orbs, cell_orbs = fsys.lead_interface_orbitals(k)
        sigma = lead.selfenergy(energy)[np.ix_(cell_orbs, cell_orbs)]
        total[np.ix_(sys_orbs, sys_orbs)] -= sigma
        sigmas.append(sigma)
        orbitals.append(sys_orbs)
    return np.linalg.inv(total), sigmas


def test_green_function_blocks_are_the_dense_inverse_between_interfaces():
    fsys = _four_terminal()
    energy = 2.1
    dense, sigmas = _dense_green(fsys, energy)
    gf = greens_function(fsys, energy)
    assert isinstance(gf, GreensFunction)
    for k, sigma in enumerate(sigmas):
        np.testing.assert_allclose(gf.lead_info[k], sigma, atol=1e-12)
    for i in range(4):
        rows = fsys.lead_interface_orbitals(i)[0]
        for j in range(4):
            cols = fsys.lead_interface_orbitals(j)[0]
            np.testing.assert_allclose(
                gf.submatrix(i, j), dense[np.ix_(rows, cols)], rtol=0, atol=1e-11
            )


def test_transmissions_and_reflections_match_the_smatrix():
    fsys = _four_terminal()
    for energy in (0.7, 2.1):
        s = meso.smatrix(fsys, energy)
        gf = greens_function(fsys, energy)
        np.testing.assert_allclose(
            gf.transmission_matrix(), s.transmission_matrix(), rtol=0, atol=1e-10
        )
        np.testing.assert_allclose(
            gf.conductance_matrix(), s.conductance_matrix(), rtol=0, atol=1e-10
        )
        for lead in range(4):
            assert gf.num_propagating(lead) == s.num_propagating(lead)
        # Without time-reversal symmetry T[1, 0] and T[0, 1] differ; both must match.
        assert abs(s.transmission(1, 0) - s.transmission(0, 1)) > 1e-6


def test_caroli_product_has_the_eigenvalues_of_t_t_dagger():
    fsys = _four_terminal()
    energy = 2.1
    t = meso.smatrix(fsys, energy).submatrix(1, 0)
    gf = greens_function(fsys, energy, in_leads=[0], out_leads=[1])
    product = gf._a_ttdagger_a_inv(1, 0)
    eigenvalues = np.linalg.eigvals(product)
    expected = np.sort(np.linalg.eigvalsh(t @ t.conj().T))
    np.testing.assert_allclose(eigenvalues.imag, 0, atol=1e-10)
    np.testing.assert_allclose(np.sort(eigenvalues.real)[-len(expected) :], expected, atol=1e-10)


def test_resonant_level_between_wide_band_leads_is_breit_wigner():
    eps, gamma_l, gamma_r = 0.3, 0.1, 0.25
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = eps
    fsys = syst.finalized().with_leads(
        [
            SelfEnergyLead(lambda e: [[-0.5j * gamma_l]], [lat(0)]),
            SelfEnergyLead(lambda e: [[-0.5j * gamma_r]], [lat(0)]),
        ]
    )
    for energy in (-0.2, 0.3, 0.8):
        gf = greens_function(fsys, energy)
        g = 1 / (energy - eps + 0.5j * (gamma_l + gamma_r))
        np.testing.assert_allclose(gf.data, np.full((2, 2), g), atol=1e-14)
        exact = gamma_l * gamma_r / ((energy - eps) ** 2 + (gamma_l + gamma_r) ** 2 / 4)
        assert gf.transmission(1, 0) == pytest.approx(exact, abs=1e-13)
        assert gf.transmission(0, 0) == pytest.approx(1 - exact, abs=1e-13)


def test_lead_without_open_modes_reflects_nothing():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(3))] = 4.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    gf = greens_function(syst.finalized(), 0.0)  # below the band: no open channel
    assert gf.num_propagating(0) == 0
    assert gf.transmission(0, 0) == pytest.approx(0, abs=1e-12)
    assert gf.transmission(1, 0) == pytest.approx(0, abs=1e-12)


def test_a_lead_left_out_is_inferred_from_the_sum_rules():
    fsys = _four_terminal()
    energy = 2.1
    full = greens_function(fsys, energy).transmission_matrix()
    part = greens_function(fsys, energy, out_leads=[1, 2, 3], in_leads=[0, 1, 2])
    for i in range(4):
        for j in range(4):
            assert part.transmission(i, j) == pytest.approx(full[i, j], abs=1e-10)
    narrow = greens_function(fsys, energy, out_leads=[1, 3], in_leads=[1, 2, 3])
    with pytest.raises(ValueError, match="lead 0 was not computed as an outgoing lead"):
        narrow.transmission(0, 2)
    unchecked = greens_function(
        fsys, energy, out_leads=[1, 2, 3], in_leads=[0, 1, 2], check_hermiticity=False
    )
    with pytest.raises(ValueError, match="lead 3 was not computed as an incoming lead"):
        unchecked.transmission(1, 3)


def test_bad_lead_selections_are_refused():
    fsys = _four_terminal()
    with pytest.raises(ValueError, match="out_leads is empty"):
        greens_function(fsys, 1.0, out_leads=[])
    with pytest.raises(ValueError, match="lead 7 does not exist"):
        greens_function(fsys, 1.0, in_leads=[7])
    gf = greens_function(fsys, 1.0, in_leads=[0], out_leads=[1])
    with pytest.raises(ValueError, match="lead 9 does not exist"):
        gf.transmission(9, 0)
