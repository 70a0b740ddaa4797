"""Figures are drawn from the right data (matplotlib Agg backend)."""

from __future__ import annotations

import numpy as np
import pytest

import mesoscopic as meso
from model_systems import square_wire

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture
def wire():
    return square_wire(3, 6).finalized()


def test_system_plot_draws_every_site_and_lead_cells(wire):
    ax = meso.plot.system(wire, num_lead_cells=2)
    scatter = ax.collections[1]
    assert len(scatter.get_offsets()) == len(wire.sites)
    lead_points = sum(
        len(c.get_offsets())
        for c in ax.collections[2:]
        if hasattr(c, "get_sizes") and len(c.get_sizes())
    )
    assert lead_points == 2 * 2 * 3
    plt.close("all")


def test_bands_plot_matches_band_structure(wire):
    ax = meso.plot.bands(wire.leads[0], momenta=[0.0, np.pi])
    lines = ax.get_lines()
    assert len(lines) == 3
    bottom = min(line.get_ydata()[0] for line in lines)
    assert bottom == pytest.approx(4 - 2 - 2 * np.cos(np.pi / 4))
    plt.close("all")


def test_current_map_and_conductance_plot(wire):
    psi = meso.wave_function(wire, 1.0)(0)
    currents = meso.bond_currents(wire, psi)
    ax = meso.plot.current(wire, currents)
    assert ax.get_aspect() == 1.0
    with pytest.raises(ValueError, match="one per hopping"):
        meso.plot.current(wire, currents[:-1])
    ax = meso.plot.conductance([0, 1, 2], [0.0, 1.0, 2.0], unit="2e2/h")
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()[1:]) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"unit must be a conductance unit.*got 'mS'"):
        meso.plot.conductance([0], [0], unit="mS")
    plt.close("all")


def test_conductance_plot_converts_rather_than_relabels():
    import xarray as xr

    g = xr.DataArray([0.0, 2.0, 4.0, 6.0], attrs={"units": "e^2/h", "spin_degeneracy": 2})
    x = [0, 1, 2, 3]
    halved = meso.plot.conductance(x, g, unit="2e2/h").lines[0].get_ydata()
    np.testing.assert_allclose(halved, [0.0, 1.0, 2.0, 3.0])
    ax = meso.plot.conductance(x, g, unit="S")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), g.values * meso.constants.e2_h)
    plateaus = sorted(line.get_ydata()[0] for line in ax.get_lines()[1:])
    np.testing.assert_allclose(plateaus, np.arange(7) * meso.constants.e2_h)
    assert ax.get_ylabel() == "G (S)"
    # Transmissions become conductances through the spin degeneracy they carry.
    t = xr.DataArray([0.0, 1.0, 2.0], attrs={"units": "1", "spin_degeneracy": 2})
    np.testing.assert_allclose(
        meso.plot.conductance(x[:3], t).lines[0].get_ydata(), [0.0, 2.0, 4.0]
    )
    np.testing.assert_allclose(
        meso.plot.conductance(x[:3], t, unit="2e2/h").lines[0].get_ydata(), [0.0, 1.0, 2.0]
    )
    # Plain arrays: values_unit says what they are; without it they are in `unit`.
    np.testing.assert_allclose(
        meso.plot.conductance(x[:2], [1.0, 3.0], values_unit="1", spin_degeneracy=1, unit="2e2/h")
        .lines[0]
        .get_ydata(),
        [0.5, 1.5],
    )
    with pytest.raises(ValueError, match=r"transmissions.*give spin_degeneracy"):
        meso.plot.conductance(x[:2], [1.0, 3.0], values_unit="1")
    with pytest.raises(ValueError, match="spin_degeneracy must be 1"):
        meso.plot.conductance(x[:2], [1.0, 3.0], values_unit="1", spin_degeneracy=3)
    with pytest.raises(ValueError, match="values_unit must be a conductance unit"):
        meso.plot.conductance(x[:2], [1.0, 3.0], values_unit="ohm")
    plt.close("all")


def test_parameter_map_draws_values_on_the_grid():
    x, y = np.linspace(0, 1, 4), np.linspace(-1, 1, 3)
    values = np.outer(y, x)
    ax = meso.plot.parameter_map(x, y, values, symmetric=True, xlabel="gate", ylabel="bias")
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 4), values)
    assert mesh.get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="values must have shape"):
        meso.plot.parameter_map(x, y, values.T)
    plt.close("all")


def test_the_module_is_callable_as_kwants_plot():
    """Kwant scripts call ``kwant.plot(syst)``: the module forwards to plotter.plot."""
    import matplotlib.figure

    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = 0.0
    syst[lat.neighbors()] = -1.0
    fig = meso.plot(syst, show=False)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert meso.plot.conductance.__module__ == "mesoscopic.plot"  # its own functions stay


def test_system_plot_marks_the_sites_of_function_leads():
    from mesoscopic.system import SelfEnergyLead

    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(4))] = 0.0
    syst[lat.neighbors()] = -1.0
    fsys = syst.finalized().with_leads([SelfEnergyLead(lambda e: [[-0.5j]], [lat(0)])])
    ax = meso.plot.system(fsys)
    assert any(text.get_text() == "lead 0" for text in ax.texts)
    plt.close(ax.figure)
