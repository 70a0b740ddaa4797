"""Kwant's plotter vocabulary: every function draws (Agg backend), from the right data.

The smoothed current is checked against current conservation: its flux through a cut
is the total bond current across the cut, in 1, 2 and 3 dimensions.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import plotter
from model_systems import square_wire

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def wire():
    return square_wire(3, 6)


def _offsets(coll):
    return np.asarray(coll.get_offsets())


# ---- plot ---------------------------------------------------------------------------


@pytest.mark.parametrize("finalized", [False, True])
def test_plot_draws_sites_hoppings_and_lead_cells(wire, finalized):
    syst = wire.finalized() if finalized else wire
    fig = plotter.plot(syst, num_lead_cells=2, show=False)
    colls = fig.axes[0].collections
    # system sites, system hoppings, then sites and hoppings of each lead
    assert len(colls) == 2 + 2 * 2
    assert len(_offsets(colls[0])) == 18
    assert len(colls[1].get_segments()) == 3 * 5 + 2 * 6
    left = _offsets(colls[2])
    right = _offsets(colls[4])
    # lead 0 sits left of x = 0, lead 1 right of x = 5, two cells of three sites each
    assert sorted(set(left[:, 0])) == [-2.0, -1.0]
    assert sorted(set(right[:, 0])) == [6.0, 7.0]
    assert len(left) == len(right) == 6
    # lead hoppings: 2 inside the cell and 3 to the previous cell, per copy
    segments = np.asarray(colls[3].get_segments())
    assert len(segments) == 2 * 5
    assert segments[..., 0].max() == 0.0  # the first lead cell joins the interface x = 0


def test_plot_of_builder_and_system_agree(wire):
    a = plotter.plot(wire, show=False).axes[0].collections
    b = plotter.plot(wire.finalized(), show=False).axes[0].collections
    for ca, cb in zip(a, b):
        if hasattr(ca, "get_offsets") and len(ca.get_offsets()):
            assert sorted(map(tuple, _offsets(ca))) == sorted(map(tuple, _offsets(cb)))


def test_plot_value_functions_for_size_and_color(wire):
    fig = plotter.plot(
        wire,
        site_color=lambda site: float(site.tag[0]),
        site_size=lambda site: 0.1 * (1 + site.tag[1]),
        hop_color=lambda a, b: float(a.tag[1] + b.tag[1]),
        show=False,
    )
    sites, hops = fig.axes[0].collections[:2]
    xs = _offsets(sites)[:, 0]
    np.testing.assert_array_equal(sites.get_array(), xs)
    np.testing.assert_allclose(sites._base_sizes, 0.1 * (1 + _offsets(sites)[:, 1]))
    assert hops.get_array() is not None
    assert len(fig.axes) == 3  # two color bars


def test_plot_site_arrays_of_a_finalized_system():
    fsys = square_wire(2, 3).finalized()
    colors = np.arange(len(fsys.sites), dtype=float)
    fig = plotter.plot(fsys, site_color=colors, site_symbol=["o", "s"] * 3, show=False)
    # one collection per symbol, then hoppings and the leads
    assert len(fig.axes[0].collections) == 2 + 1 + 4
    drawn = np.concatenate([c.get_array() for c in fig.axes[0].collections[:2]])
    assert sorted(drawn) == sorted(colors)


def test_plot_refuses_arrays_for_a_builder(wire):
    with pytest.raises(TypeError, match="function of the site"):
        plotter.plot(wire, site_size=[0.2] * 18, show=False)
    with pytest.raises(ValueError, match="18 sites"):
        plotter.plot(wire.finalized(), site_color=[0.0, 1.0], show=False)
    with pytest.raises(ValueError, match="unit must be"):
        plotter.plot(wire, unit="cm", show=False)
    with pytest.raises(ValueError, match="unknown site symbol"):
        plotter.plot(wire, site_symbol="x", show=False)


def test_plot_one_and_three_dimensional_systems():
    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(chain(i) for i in range(4))] = 0.0
    syst[chain.neighbors()] = -1.0
    fig = plotter.plot(syst, show=False)
    np.testing.assert_array_equal(_offsets(fig.axes[0].collections[0])[:, 1], 0.0)

    cubic = meso.lattice.general([(1, 0, 0), (0, 1, 0), (0, 0, 1)], norbs=1)
    syst3 = meso.Builder()
    syst3[(cubic(x, y, z) for x in range(3) for y in range(2) for z in range(2))] = 0.0
    syst3[cubic.neighbors()] = -1.0
    fig = plotter.plot(syst3, show=False)
    assert fig.axes[0].name == "3d"
    fig = plotter.plot(syst3, pos_transform=lambda r: r[:2], show=False)
    assert fig.axes[0].name != "3d"
    # Sites without hoppings (Kwant's FAQ draws a cuboid before its hoppings).
    bare = meso.Builder()
    bare[(cubic(x, y, z) for x in range(3) for y in range(2) for z in range(2))] = 4.0
    fig = plotter.plot(bare, show=False)
    assert fig.axes[0].name == "3d"
    assert len(_offsets(fig.axes[0].collections[0])) == 12


def test_plot_file_ax_and_show_semantics(wire, tmp_path, monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("pyplot.show must not be called with a non-interactive backend")

    monkeypatch.setattr(plt, "show", no_show)
    fig = plotter.plot(wire)  # show=True under Agg: returns, no window, no warning
    assert fig is not None
    path = tmp_path / "syst.png"
    fig = plotter.plot(wire, file=str(path), dpi=30, fig_size=(2, 3))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tuple(fig.get_size_inches()) == (2.0, 3.0)
    assert fig not in [plt.figure(n) for n in plt.get_fignums()]  # not kept by pyplot
    buffer = io.BytesIO()
    plotter.plot(wire, file=buffer)
    assert buffer.getvalue()[:4] == b"\x89PNG"
    _, ax = plt.subplots()
    assert plotter.plot(wire, ax=ax) is None
    assert len(ax.collections) == 6


def test_only_the_matplotlib_engine():
    assert plotter.get_engine() == "matplotlib"
    with pytest.raises(RuntimeError, match="plotly"):
        plotter.set_engine("plotly")
    plotter.set_engine("matplotlib")


# ---- map and mask_interpolate ---------------------------------------------------------------


def test_map_pixels_hold_the_site_values(wire):
    fsys = wire.finalized()
    values = np.array([10 * s.tag[0] + s.tag[1] for s in fsys.sites], dtype=float)
    fig = plotter.map(fsys, values, oversampling=1, show=False)
    image = fig.axes[0].images[0].get_array()
    # oversampling 1 on a square lattice: one pixel per site, image[y, x]
    for (x, y), value in zip(fsys.pos, values):
        assert image[int(y), int(x)] == value
    fig = plotter.map(wire, lambda site: site.tag[0], num_lead_cells=1, show=False)
    assert fig.axes[0].images
    with pytest.raises(ValueError, match="function of the site"):
        plotter.map(wire, values)
    with pytest.raises(ValueError, match="2-D"):
        plotter.map(wire, lambda s: 1.0, pos_transform=lambda r: (r[0], r[1], 0.0))


def test_mask_interpolate_checks_its_input():
    coords = np.array([[0, 0], [1e-9, 0], [1, 1], [1, 0]], dtype=float)
    with pytest.warns(RuntimeWarning, match="coinciding"):
        plotter.mask_interpolate(coords, np.ones(4), a=1)
    with pytest.raises(ValueError, match="one value per point"):
        plotter.mask_interpolate(coords, np.ones(3), a=1)
    grid = np.array([[x, y] for x in range(3) for y in range(2)], dtype=float)
    masked, img, cmin, cmax = plotter.mask_interpolate(grid, np.arange(6.0), oversampling=1)
    assert img.shape == (3, 2)
    np.testing.assert_array_equal(img.ravel(), np.arange(6.0))
    np.testing.assert_array_equal(cmin, [0, 0])
    np.testing.assert_array_equal(cmax, [2, 1])
    assert not masked.mask.any()


# ---- bands and spectrum ------------------------------------------------------------------


def test_bands_draw_the_lead_dispersion(wire):
    lead = wire.finalized().leads[0]
    fig = plotter.bands(lead, momenta=[0.0, np.pi / 2], show=False)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    transverse = 2 * np.cos(np.pi * np.arange(1, 4) / 4)
    for k_index, k in enumerate([0.0, np.pi / 2]):
        drawn = sorted(line.get_ydata()[k_index] for line in lines)
        np.testing.assert_allclose(drawn, sorted(4 - 2 * np.cos(k) - transverse), atol=1e-12)
    fig = plotter.bands(lead, momenta=np.linspace(0, 2 * np.pi), show=False)
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 50
    with pytest.raises(TypeError, match="InfiniteSystem"):
        plotter.bands(wire.finalized())


def test_spectrum_curves_and_surfaces():
    def ham(a, b):
        return np.array([[a, b], [b, -a]])

    values = np.linspace(0, 1, 4)
    fig = plotter.spectrum(ham, ("a", values), params={"b": 0.5}, show=False)
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), np.sqrt(values**2 + 0.25))
    assert fig.axes[0].get_title() == "b = 0.5"

    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(chain(i) for i in range(3))] = lambda site, a: a
    syst[chain.neighbors()] = -1.0
    fig = plotter.spectrum(syst.finalized(), ("a", values), show=False)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), values - np.sqrt(2))

    fig = plotter.spectrum(
        ham, ("a", values), ("b", values), mask=lambda a, b: a > 0.5, show=False
    )
    assert fig.axes[0].name == "3d"
    _, flat = plt.subplots()
    with pytest.raises(TypeError, match="projection='3d'"):
        plotter.spectrum(ham, ("a", values), ("b", values), ax=flat)


# ---- interpolated current and density ----------------------------------------------------


def _flux_through_x(field, box, x0):
    """Integral over the other coordinates of j_x on the grid plane nearest to x0."""
    xs = np.linspace(*box[0], field.shape[0])
    plane = field[np.argmin(np.abs(xs - x0)), ..., 0]
    for axis_box in reversed(box[1:]):
        coords = np.linspace(*axis_box, plane.shape[-1])
        plane = np.trapezoid(plane, coords, axis=-1)
    return float(plane)


@pytest.mark.parametrize("theta", [0.0, 0.3])
def test_interpolated_current_carries_the_current_through_a_cut(theta):
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    lat = meso.lattice.general(list(rotation.T), norbs=1)
    rng = np.random.default_rng(3)
    disorder = {(x, y): rng.uniform(-0.5, 0.5) for x in range(20) for y in range(3)}
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(20) for y in range(3))] = lambda site: 4 + disorder[site.tag]
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry(lat.vec((-1, 0))))
    lead[(lat(0, y) for y in range(3))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    psi = meso.wave_function(fsys, energy=1.5)(0)
    bonds = meso.bond_currents(fsys, psi)
    i, j = fsys.hopping_indices
    tags = np.array([s.tag for s in fsys.sites])
    crossing = (tags[i, 0] == 10) & (tags[j, 0] == 9)
    reverse = (tags[i, 0] == 9) & (tags[j, 0] == 10)
    exact = bonds[crossing].sum() - bonds[reverse].sum()
    assert exact > 0.1

    field, box = plotter.interpolate_current(fsys, bonds, abswidth=1.0, n=16)
    # the cut between columns 9 and 10, as a straight line in the rotated frame
    local = np.stack(
        np.meshgrid(*(np.linspace(*b, s) for b, s in zip(box, field.shape)), indexing="ij"),
        axis=-1,
    )
    if theta == 0.0:
        assert _flux_through_x(field, box, 9.5) == pytest.approx(exact, rel=2e-3)
    # in general: the flux through the line {x' = 9.5} of the lattice frame
    along = local @ rotation[:, 0]
    j_along = field @ rotation[:, 0]
    spacing = [(b[1] - b[0]) / (s - 1) for b, s in zip(box, field.shape)]
    band = np.abs(along - 9.5) < 0.5  # flux per unit length of x' averaged over one cell
    flux = j_along[band].sum() * spacing[0] * spacing[1]
    assert flux == pytest.approx(exact, rel=2e-2)


def test_interpolated_current_in_one_and_three_dimensions():
    chain = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(chain(i) for i in range(12))] = 0.0
    syst[chain.neighbors()] = -1.0
    fsys = syst.finalized()
    i, j = fsys.hopping_indices
    current = np.where(i > j, 0.7, -0.7)  # 0.7 flowing towards +x on every bond
    field, box = plotter.interpolate_current(fsys, current, abswidth=2.0)
    xs = np.linspace(*box[0], field.shape[0])
    middle = np.abs(xs - 5.5) < 3
    np.testing.assert_allclose(field[middle, 0], 0.7, rtol=1e-12)
    np.testing.assert_array_equal(field[[0, -1]], 0.0)

    cubic = meso.lattice.general([(1, 0, 0), (0, 1, 0), (0, 0, 1)], norbs=1)
    syst3 = meso.Builder()
    syst3[(cubic(x, y, z) for x in range(8) for y in range(2) for z in range(2))] = 0.0
    syst3[cubic.neighbors()] = -1.0
    fsys3 = syst3.finalized()
    i, j = fsys3.hopping_indices
    step = fsys3.pos[i] - fsys3.pos[j]
    current = 0.25 * step[:, 0]  # 0.25 along each of the four x chains
    field, box = plotter.interpolate_current(fsys3, current, abswidth=1.5, n=12)
    assert _flux_through_x(field, box, 3.5) == pytest.approx(1.0, rel=1e-3)


def test_interpolated_current_takes_both_current_layouts():
    fsys = square_wire(2, 4).finalized()
    psi = meso.wave_function(fsys, energy=3.5)(0)
    assert len(psi) == 2
    one_way = meso.bond_currents(fsys, psi)
    from mesoscopic.operator import Current

    both_ways = Current(fsys)(psi[0]) + Current(fsys)(psi[1])
    a, box_a = plotter.interpolate_current(fsys, one_way)
    b, box_b = plotter.interpolate_current(fsys, both_ways)
    assert box_a == box_b
    np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="one value per hopping"):
        plotter.interpolate_current(fsys, one_way[:-1])
    with pytest.raises(TypeError, match="finalized"):
        plotter.interpolate_current(square_wire(2, 4), one_way)


def test_interpolated_density_integrates_to_the_total():
    fsys = square_wire(3, 8).finalized()
    rng = np.random.default_rng(0)
    rho = rng.uniform(0, 1, len(fsys.sites))
    field, box = plotter.interpolate_density(fsys, rho, abswidth=1.5, n=12, mask=False)
    assert field.shape[-1] == 1
    spacing = [(b[1] - b[0]) / (s - 1) for b, s in zip(box, field.shape)]
    assert field.sum() * np.prod(spacing) == pytest.approx(rho.sum(), rel=1e-3)
    for border in (field[0], field[-1], field[:, 0], field[:, -1]):
        np.testing.assert_allclose(border, 0.0, atol=1e-12)
    twice, _ = plotter.interpolate_density(fsys, 2 * rho, abswidth=1.5, n=12, mask=False)
    np.testing.assert_allclose(twice, 2 * field)
    masked, _ = plotter.interpolate_density(fsys, rho)
    assert masked.mask.any() and not masked.mask.all()


# ---- figures from fields -------------------------------------------------------------------


def test_current_density_streamplot_and_scalarplot_draw(tmp_path):
    fsys = square_wire(3, 10).finalized()
    psi = meso.wave_function(fsys, energy=1.0)(0)
    bonds = meso.bond_currents(fsys, psi)
    fig = plotter.current(fsys, bonds, show=False)
    assert fig.axes[0].images and len(fig.axes) == 2  # speed map and its color bar
    _, ax = plt.subplots()
    assert plotter.current(fsys, bonds, ax=ax, bgcolor="w", linecolor="b") is None
    path = tmp_path / "current.png"
    plotter.current(fsys, bonds, file=str(path))
    assert path.stat().st_size > 0
    density = (np.abs(psi) ** 2).sum(axis=0)
    fig = plotter.density(fsys, density, show=False, cmap="viridis")
    assert fig.axes[0].images[0].get_cmap().name == "viridis"
    field, box = plotter.interpolate_current(fsys, bonds)
    fig = plotter.streamplot(field, box, vmax=1.0, show=False)
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="either cmap"):
        plotter.streamplot(field, box, cmap="Reds", bgcolor="w")
    fig = plotter.scalarplot(*plotter.interpolate_density(fsys, density), show=False)
    assert fig.axes[0].images


def test_sys_leads_helpers_agree_between_builder_and_system(wire):
    for syst in (wire, wire.finalized()):
        sites, cells = plotter.sys_leads_sites(syst, 3)
        pos = plotter.sys_leads_pos(syst, sites)
        assert len(sites) == 18 + 2 * 3 * 3 and pos.shape == (36, 2)
        assert sorted(set(pos[cells[0], 0])) == [-3.0, -2.0, -1.0]
        hops, _ = plotter.sys_leads_hoppings(syst, 1)
        end, start = plotter.sys_leads_hopping_pos(syst, hops)
        lengths = np.linalg.norm(end - start, axis=1)
        np.testing.assert_allclose(lengths, 1.0)  # every drawn hopping joins neighbours
        assert len(hops) == 27 + 2 * 5


def test_plot_symbols_have_their_size_in_units_of_the_shortest_hopping():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, 0) for x in range(4))] = 0.0
    syst[lat.neighbors()] = -1.0
    fig = plotter.plot(syst, site_color="red", hop_lw=0, site_size=0.3, dpi=100, show=False)
    fig.canvas.draw()
    ax = fig.axes[0]
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)

    def pixel(x, y):
        col, row = ax.transData.transform((x, y))
        return image[image.shape[0] - round(float(row)), round(float(col))]

    red = np.array([255, 0, 0])
    for x in range(4):
        np.testing.assert_allclose(pixel(x, 0), red, atol=1)  # the site centre
        np.testing.assert_allclose(pixel(x + 0.2, 0.1), red, atol=1)  # inside radius 0.3
        np.testing.assert_allclose(pixel(x - 0.2, -0.1), red, atol=1)
    for x in (0.5, 1.5, 2.5):  # halfway between neighbours: outside every symbol
        assert np.abs(pixel(x, 0) - red).max() > 100
