"""Kwant behaviours found by Kwant's own test suite: disconnected sites, leads without
inter-cell hoppings, the site layout of a finalized lead, precalculated and self-energy-only
leads. Each test checks the behaviour against exact results or an independent method."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mesoscopic as meso
from model_systems import square_wire

# ---- sites that are not connected to the rest ------------------------------------------


def _wire_with_islands(*, islands: bool):
    """A 3 x 4 wire (onsite 4, hopping -1); with `islands`, also a lone site at onsite 1
    and a disconnected dimer (onsites 1, hopping -1) far away."""
    lat = meso.lattice.square(1.0, norbs=1)
    syst = square_wire(3, 4, 4.0, lat=lat)
    if islands:
        syst[lat(20, 20)] = 1.0
        syst[lat(30, 30)] = syst[lat(31, 30)] = 1.0
        syst[lat(30, 30), lat(31, 30)] = -1.0
    return lat, syst


def test_disconnected_sites_are_allowed_and_do_not_conduct():
    """Sites without a path to a lead (as Kwant allows) change no transmission, even at the
    energy of their own bound state (E = 1: the lone site; E = 0, 2: the dimer), where the
    whole scattering matrix E - H - Sigma is singular."""
    lat, syst = _wire_with_islands(islands=True)
    fsys = syst.finalized()
    _, clean = _wire_with_islands(islands=False)
    fclean = clean.finalized()
    for energy in (1.0, 0.0, 2.0):
        expected = meso.smatrix(fclean, energy).data
        np.testing.assert_allclose(meso.smatrix(fsys, energy).data, expected, atol=1e-10)
        for solver in ("sparse", "rgf"):
            t = meso.transmission(fsys, [energy], 1, 0, solver=solver)
            np.testing.assert_allclose(t, [meso.smatrix(fclean, energy).transmission(1, 0)])
    # Scattering states vanish on the islands (no source reaches them).
    psi = meso.wave_function(fsys, 1.0)
    for site in (lat(20, 20), lat(30, 30), lat(31, 30)):
        index = fsys.id_by_site[site]
        assert np.all(psi(0)[:, index] == 0) and np.all(psi(1)[:, index] == 0)
    ldos = meso.ldos(fsys, 1.0)
    assert ldos[fsys.id_by_site[lat(20, 20)]] == 0
    # The Green's function between the leads is that of the wire alone.
    np.testing.assert_allclose(
        meso.greens_function(fsys, 1.0).data, meso.greens_function(fclean, 1.0).data, atol=1e-10
    )


def test_padding_keeps_sites_outside_the_path_of_the_lead():
    """A lead given with padding sites (some not hopping to anything), as in Kwant: the
    finalized system lists the padding sites that are in it, sorted."""
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = 0.0
    lead = meso.Builder(meso.TranslationalSymmetry(lat.prim_vecs[0]))
    lead[lat(0)] = 0.0
    lead[lat(0), lat(1)] = -1.0
    padding = [lat(3), lat(0), lat(9)]
    syst.leads.append(meso.builder.BuilderLead(lead, [lat(0)], padding))
    fsys = syst.finalized()
    assert [fsys.sites[i] for i in fsys.lead_paddings[0]] == [lat(0), lat(3)]
    # The lone site 0 couples only to the lead: total reflection, |r| = 1.
    s = meso.smatrix(fsys, 0.3).data
    np.testing.assert_allclose(np.abs(s), [[1.0]])


# ---- orbitals of a site whose constant value contradicts its family's norbs -------------


def test_constant_onsite_value_gives_the_site_its_orbitals():
    """As Kwant's Hamiltonian: a 2 x 2 constant onsite on a norbs=1 family makes a
    2-orbital site (with a warning naming the overruled norbs); hoppings must then fit."""
    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[chain(0)] = np.array([[0, 1j], [-1j, 0]])
    syst[chain(1)] = np.array([[1]])
    syst[chain(1), chain(0)] = np.array([[1, 2j]])
    with pytest.warns(RuntimeWarning, match="declares norbs=1"):
        fsys = syst.finalized()
    assert fsys.norbs.tolist() == [2, 1]
    expected = np.array([[0, 1j, 1], [-1j, 0, -2j], [1, 2j, 1]])
    np.testing.assert_array_equal(fsys.hamiltonian_submatrix(), expected)
    np.testing.assert_array_equal(fsys.hamiltonian_submatrix(sparse=True).toarray(), expected)
    # A hopping whose shape fits neither site's orbitals is still refused.
    syst[chain(0), chain(1)] = np.array([[1, 2]])
    with pytest.warns(RuntimeWarning):
        bad = syst.finalized()
    with pytest.raises(ValueError, match="has shape"):
        bad.hamiltonian_submatrix()


def test_scalar_values_on_a_multi_orbital_lattice_are_one_orbital():
    """Scalars on a norbs=5 square lattice (Kwant's test systems do this): one orbital per
    site, so a clean 3-wide wire has the plateaus of the one-orbital wire: at E = -3
    (hopping -1, onsite 0) one channel is open, at E = 0.1 three are."""

    def wire(norbs):
        lat = meso.lattice.square(norbs=norbs)
        syst = meso.Builder()
        lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        syst[(lat(i, j) for i in range(3) for j in range(3))] = 0
        lead[(lat(0, j) for j in range(3))] = 0
        syst[lat.neighbors()] = -1
        lead[lat.neighbors()] = -1
        syst.attach_lead(lead)
        syst.attach_lead(lead.reversed())
        return syst

    with pytest.warns(RuntimeWarning, match="declares norbs=5"):
        fsys = wire(5).finalized()
    assert fsys.norbs.tolist() == [1] * 9
    for energy, channels in ((-3.0, 1), (0.1, 3)):
        assert meso.smatrix(fsys, energy).transmission(1, 0) == pytest.approx(channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wire(1).finalized()  # no warning where norbs and values agree
