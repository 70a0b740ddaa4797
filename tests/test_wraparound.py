"""wraparound: Bloch Hamiltonians against closed-form bands and against the lead solver."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic._common import get_parameters
from mesoscopic.wraparound import plot_2d_bands, wraparound


def bulk(lat, onsite=0.0, hopping=-1.0):
    syst = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
    syst[lat.shape(lambda pos: True, (0, 0))] = onsite
    syst[lat.neighbors()] = hopping
    return syst


def energies(fsys, **params):
    h = fsys.hamiltonian_submatrix(params=params, sparse=False)
    np.testing.assert_allclose(h, h.conj().T, atol=1e-14)
    return np.linalg.eigvalsh(h)


@pytest.mark.parametrize("k", [(0.0, 0.0), (0.3, -1.2), (np.pi, 2.0)])
def test_square_lattice_has_the_cosine_band(k):
    fsys = wraparound(bulk(meso.lattice.square(norbs=1), onsite=4.0)).finalized()
    expected = 4 - 2 * np.cos(k[0]) - 2 * np.cos(k[1])
    np.testing.assert_allclose(energies(fsys, k_x=k[0], k_y=k[1]), [expected], atol=1e-14)


def test_graphene_bands_and_dirac_point():
    fsys = wraparound(bulk(meso.lattice.honeycomb(norbs=1))).finalized()
    rng = np.random.default_rng(1)
    for k1, k2 in rng.uniform(-np.pi, np.pi, (5, 2)):
        modulus = abs(1 + np.exp(1j * k1) + np.exp(1j * k2))
        np.testing.assert_allclose(energies(fsys, k_x=k1, k_y=k2), [-modulus, modulus], atol=1e-13)
    # The Dirac point: Bloch phases (2 pi / 3, -2 pi / 3) per period close the gap.
    np.testing.assert_allclose(
        energies(fsys, k_x=2 * np.pi / 3, k_y=-2 * np.pi / 3), [0, 0], atol=1e-14
    )


def test_kept_period_is_a_lead_with_the_same_bands():
    lat = meso.lattice.honeycomb(norbs=1)
    syst = bulk(lat, hopping=lambda a, b, t: t * (1 + 0.2j))
    everything = wraparound(syst).finalized()
    lead = wraparound(syst, keep=1).finalized()
    for k_x in (-1.0, 0.4, 2.5):
        bands = meso.physics.Bands(lead, params={"k_x": k_x, "t": -1.0})
        for k_y in (-2.0, 0.0, 1.3):
            np.testing.assert_allclose(
                bands(k_y), energies(everything, k_x=k_x, k_y=k_y, t=-1.0), atol=1e-12
            )


def test_supercell_folds_the_bands():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder(meso.TranslationalSymmetry((2, 0), (0, 1)))
    syst[lat.shape(lambda pos: True, (0, 0))] = 0.0
    syst[lat.neighbors()] = -1.0
    fsys = wraparound(syst).finalized()
    k_x, k_y = 0.7, -0.4  # Bloch phase per supercell period (2 sites along x)
    original = [-2 * np.cos((k_x + 2 * np.pi * n) / 2) - 2 * np.cos(k_y) for n in (0, 1)]
    np.testing.assert_allclose(energies(fsys, k_x=k_x, k_y=k_y), np.sort(original), atol=1e-13)


def test_value_functions_keep_their_parameters_and_momenta_come_last():
    lat = meso.lattice.square(norbs=1)
    syst = bulk(lat, onsite=lambda site, mu: -mu, hopping=lambda a, b, t: -t)
    wrapped = wraparound(syst)
    onsite = wrapped[lat(0, 0)]
    assert get_parameters(onsite)[1:] == ("mu", "t", "k_x", "k_y")
    fsys = wrapped.finalized()
    got = energies(fsys, mu=0.5, t=2.0, k_x=0.1, k_y=0.2)
    np.testing.assert_allclose(got, [-0.5 - 4 * (np.cos(0.1) + np.cos(0.2))], atol=1e-13)


def test_conservation_law_is_kept_and_time_reversal_dropped_with_a_warning():
    lat = meso.lattice.square(norbs=2)
    syst = meso.Builder(
        meso.TranslationalSymmetry((1, 0), (0, 1)),
        conservation_law=np.diag([1, -1]),
        time_reversal=np.eye(2),
    )
    syst[lat(0, 0)] = np.eye(2)
    syst[lat.neighbors()] = -np.eye(2)
    with pytest.warns(RuntimeWarning, match="time-reversal"):
        wrapped = wraparound(syst)
    assert wrapped.time_reversal is None
    np.testing.assert_array_equal(wrapped.conservation_law, np.diag([1, -1]))


def test_bad_input():
    lat = meso.lattice.square(norbs=1)
    with pytest.raises(TypeError, match="needs a Builder"):
        wraparound(42)
    finite = meso.Builder()
    finite[lat(0, 0)] = 0
    with pytest.raises(TypeError, match="TranslationalSymmetry"):
        wraparound(finite)
    with pytest.raises(ValueError, match="keep"):
        wraparound(bulk(lat), keep=2)
    with pytest.raises(ValueError, match="coordinate_names"):
        wraparound(bulk(lat), coordinate_names="x")


def test_plot_2d_bands_draws_graphene_and_refuses_what_it_cannot_draw():
    graphene = wraparound(bulk(meso.lattice.honeycomb(norbs=1))).finalized()
    fig = plot_2d_bands(graphene, k_x=7, k_y=7, mask_brillouin_zone=True, show=False)
    assert len(fig.axes[0].collections) == 2  # two band surfaces
    square = bulk(meso.lattice.square(norbs=1))
    lat = meso.lattice.square(norbs=1)
    finite = meso.Builder()
    finite[lat(0, 0)] = 0
    with pytest.raises(TypeError, match="wraparound"):
        plot_2d_bands(finite.finalized())
    with pytest.raises(TypeError, match="without keep"):
        plot_2d_bands(wraparound(square, keep=0).finalized())
    chain = meso.lattice.chain(norbs=1)
    line = meso.Builder(meso.TranslationalSymmetry((1,)))
    line[chain(0)] = 0
    line[chain.neighbors()] = -1
    with pytest.raises(ValueError, match="two periods"):
        plot_2d_bands(wraparound(line).finalized())
