"""The ``meso`` command: studies from TOML files, clear config errors, plots."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import cli, io

STUDY = """
[device]
model = "double_barrier"
well = 8
barrier = 2

[parameters]
well_potential = 0.0

[sweep]
energy = {{ start = 0.2, stop = 1.6, num = 15 }}
barrier_height = [0.8, 1.6]

[observable]
quantity = "transmission"

[output]
path = "{out}/study.nc"
figure = "{out}/study.png"
"""


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_run_writes_dataset_and_figure_with_correct_values(tmp_path):
    out = tmp_path / "results"
    study = write(tmp_path, STUDY.format(out=out))
    assert cli.main(["run", str(study), "--no-progress"]) == 0
    data = io.load(out / "study.nc")
    assert (out / "study.png").stat().st_size > 1000
    fsys = meso.models.double_barrier(well=8, barrier=2)
    for height in (0.8, 1.6):
        for energy in (0.2, 0.9, 1.6):
            expected = meso.smatrix(
                fsys, energy, params={"barrier_height": height, "well_potential": 0.0}
            ).transmission(1, 0)
            got = data["transmission"].sel(energy=energy, barrier_height=height, method="nearest")
            assert float(got) == pytest.approx(expected, abs=1e-10)
    assert data.attrs["model"] == "double_barrier"
    assert cli.main(["plot", str(out / "study.nc"), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s.replace('model = "double_barrier"', 'model = "transistor"'),
            r"\[device.model\] unknown model 'transistor'; valid models: .*double_barrier",
        ),
        (
            lambda s: s.replace("well_potential = 0.0", ""),
            r"\[parameters\] missing parameter\(s\) \['well_potential'\]",
        ),
        (
            lambda s: s + '\n[units]\nenergy = "eV"\n',
            r"\[units.energy\] unknown unit 'eV'; valid units: t, meV",
        ),
        (
            lambda s: s + '\n[units]\nenergy = "meV"\n',
            r"\[discretization\] physical units need lattice_constant",
        ),
        (
            lambda s: s.replace('quantity = "transmission"', 'quantity = "noise"'),
            r"\[observable.quantity\] unknown quantity 'noise'",
        ),
        (lambda s: s.replace("well = 8", "well = 8\nwell = 9"), r"malformed TOML"),
        (lambda s: s.replace("num = 15", "num = 0"), r"\[sweep.energy\] num must be a positive"),
        (
            lambda s: s.replace("well_potential = 0.0", "well_potential = 0.0\nbarrier = 1"),
            r"\[parameters\] double_barrier has no parameter",
        ),
        (
            lambda s: s.replace('figure = "', 'figur = "'),
            r"\[output\] unknown field\(s\) \['figur'\]; valid: path, figure",
        ),
        (
            lambda s: s.replace("study.png", "study.txt"),
            r"\[output.figure\] must be a file name ending in one of \.png",
        ),
        (
            lambda s: re.sub(r'path = ".*"', "path = 3", s),
            r"\[output.path\] must be a file name ending in .nc, got 3",
        ),
        (
            lambda s: "device = 3\n[parameters]" + s.split("[parameters]")[1],
            r"\[device\] must be a table",
        ),
        (
            lambda s: s.replace(
                'quantity = "transmission"', 'quantity = "conductance_matrix"\nfrom_lead = 0'
            ),
            r"\[observable.from_lead\] only with quantity = 'transmission'",
        ),
        (
            lambda s: s + '\n[units]\ntemperature = "K"\n',
            r"\[units\] unknown quantity 'temperature'; valid: \['energy', 'flux'\]",
        ),
    ],
)
def test_bad_study_names_file_and_field_and_writes_nothing(tmp_path, change, message, capsys):
    out = tmp_path / "results"
    study = write(tmp_path, change(STUDY.format(out=out)))
    with pytest.raises(cli.ConfigError, match=message):
        cli.load_study(study)
    assert cli.main(["run", str(study)]) == 2
    err = capsys.readouterr().err
    assert str(study) in err
    assert not out.exists()


def test_model_names_are_the_devices_only():
    assert "parameter_units" not in cli._model_names()
    assert "quantum_point_contact" in cli._model_names()


def test_info_and_console_script():
    result = subprocess.run(
        [sys.executable, "-m", "mesoscopic.cli", "info"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "mesoscopic" in result.stdout and "models" in result.stdout
    assert cli.main(["plot", "/nonexistent.nc"]) == 2


def test_physical_units_are_converted_once(tmp_path):
    out = tmp_path / "r"
    text = (
        STUDY.format(out=out)
        .replace("energy = { start = 0.2, stop = 1.6, num = 15 }", "energy = [1.0, 2.0]")
        .replace("energy = {{ start = 0.2, stop = 1.6, num = 15 }}", "energy = [1.0, 2.0]")
    )
    text += '\n[units]\nenergy = "meV"\n\n[discretization]\nlattice_constant = 10.0\n'
    study = cli.load_study(write(tmp_path, text))
    data = cli.run_study(study, progress=False)
    disc = meso.models.Discretization(lattice_constant=10.0)
    fsys = meso.models.double_barrier(well=8, barrier=2)
    expected = meso.smatrix(
        fsys,
        float(disc.energy(2.0)),
        params={"barrier_height": float(disc.energy(1.6)), "well_potential": 0.0},
    ).transmission(1, 0)
    got = float(data["transmission"].sel(energy=2.0, barrier_height=1.6))
    assert got == pytest.approx(expected, abs=1e-10)
    assert np.all(data["energy"].values == [1.0, 2.0])


def test_gallery_study_file_runs(tmp_path, monkeypatch):
    import pathlib

    study_file = (
        pathlib.Path(__file__).resolve().parents[1]
        / "examples"
        / "studies"
        / "qpc_gate_sweep.toml"
    )
    monkeypatch.chdir(tmp_path)
    study = cli.load_study(study_file, output_dir=tmp_path)
    study.grid["energy"] = study.grid["energy"][::8]
    data = cli.run_study(study, progress=False)
    assert (tmp_path / "out" / "qpc_gate_sweep.nc").is_file()
    assert (tmp_path / "out" / "qpc_gate_sweep.png").is_file()
    t = data["transmission"]
    # A lower saddle opens more channels at every energy; all values are physical.
    assert np.all(t.sel(gate=0.2).values >= t.sel(gate=0.4).values - 1e-9)
    assert float(t.min()) >= -1e-12 and float(t.max()) <= 6


def test_values_the_model_rejects_and_a_missing_gpu_fail_before_writing(tmp_path, capsys):
    out = tmp_path / "results"
    study = write(
        tmp_path,
        f"""
        [device]
        model = "disordered_wire"
        width = 3
        length = 4
        [parameters]
        disorder = 1.0
        seed = 1.5
        [sweep]
        energy = [0.5, 1.0]
        [output]
        path = "{out}/wire.nc"
        """,
    )
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    assert "[parameters] disordered_wire rejects the parameter values: seed" in (
        capsys.readouterr().err
    )
    assert not out.exists()
    study.write_text(study.read_text().replace("seed = 1.5", "seed = 1"))
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert cli.main(["run", str(study), "--no-progress", "--device", "gpu"]) == 2
        assert "--device gpu" in capsys.readouterr().err
        assert not out.exists()


def test_plot_draws_a_slice_of_data_with_three_swept_axes(tmp_path):
    import xarray as xr

    data = xr.Dataset(
        {"transmission": (("energy", "gate", "phi"), np.random.default_rng(0).random((5, 3, 2)))},
        coords={"energy": np.linspace(0, 1, 5), "gate": [0.1, 0.2, 0.3], "phi": [0.0, 0.5]},
        attrs={"title": "three axes"},
    )
    figure = cli.plot_dataset(data, tmp_path / "slice.png")
    assert figure.stat().st_size > 1000


QPC_STUDY = """
[device]
model = "quantum_point_contact"
width = 8
length = 12
smoothness = 3.0

[parameters]
{fixed}

[sweep]
{sweep}

[units]
energy = "meV"

[discretization]
lattice_constant = 5.0
effective_mass = 0.067

[output]
path = "out/qpc.nc"
figure = "out/qpc.png"
"""


def test_units_convert_exactly_the_parameters_the_model_declares(tmp_path):
    # confinement is a curvature (meV/nm^2 with energies in meV), gate an energy (meV).
    curvature = float(meso.constants.confinement_curvature(6.0, 0.067))
    study_file = write(
        tmp_path,
        QPC_STUDY.format(
            fixed=f"confinement = {curvature!r}", sweep="energy = [20.0]\ngate = [1.0, 4.0]"
        ),
    )
    data = cli.run_study(cli.load_study(study_file), progress=False)
    gaas = meso.models.Discretization(lattice_constant=5.0, effective_mass=0.067)
    fsys = meso.models.quantum_point_contact(8, 12, smoothness=3.0)
    for gate in (1.0, 4.0):
        params = gaas.params("quantum_point_contact", gate=gate, confinement=curvature)
        expected = meso.smatrix(fsys, float(gaas.energy(20.0)), params=params).transmission(1, 0)
        got = float(data["transmission"].sel(energy=20.0, gate=gate))
        assert got == pytest.approx(expected, abs=1e-10)
    assert data["gate"].attrs["units"] == "meV"
    assert data["energy"].attrs["units"] == "meV"
    assert data.attrs["fixed_params_units"] == {"confinement": "meV/nm^2"}
    assert io.load(tmp_path / "out" / "qpc.nc").attrs["fixed_params_units"] == {
        "confinement": "meV/nm^2"
    }
    # A swept curvature is labelled in its own unit.
    swept = write(
        tmp_path,
        QPC_STUDY.format(
            fixed="gate = 1.0", sweep=f"energy = [20.0]\nconfinement = [{curvature!r}]"
        ).replace("out/qpc", "out/swept"),
        name="swept.toml",
    )
    again = cli.run_study(cli.load_study(swept), progress=False)
    assert again["confinement"].attrs["units"] == "meV/nm^2"
    assert float(again["transmission"].squeeze()) == pytest.approx(
        float(data["transmission"].sel(gate=1.0).squeeze()), abs=1e-12
    )


def test_results_carry_units_and_spin_degeneracy(tmp_path):
    out = tmp_path / "r"
    text = STUDY.format(out=out).replace(
        'quantity = "transmission"', 'quantity = "conductance_matrix"'
    )
    text = text.replace("barrier = 2\n", "barrier = 2\nspin_degeneracy = 2\n")
    data = cli.run_study(cli.load_study(write(tmp_path, text)), progress=False)
    g = data["conductance_matrix"]
    assert g.attrs["units"] == "e^2/h" and g.attrs["spin_degeneracy"] == 2
    stored = io.load(out / "study.nc")["conductance_matrix"]
    assert stored.attrs["spin_degeneracy"] == 2
    # The degeneracy is in the numbers: G_10 = -2 T_10.
    fsys = meso.models.double_barrier(well=8, barrier=2)
    t = meso.smatrix(fsys, 0.9, params={"barrier_height": 0.8, "well_potential": 0.0})
    got = g.sel(energy=0.9, barrier_height=0.8, method="nearest").values
    assert got[1, 0] == pytest.approx(-2 * t.transmission(1, 0), abs=1e-10)
    one = cli.run_study(
        cli.load_study(write(tmp_path, STUDY.format(out=tmp_path / "t"), name="t.toml")),
        progress=False,
    )
    assert one["transmission"].attrs == {
        "units": "1",
        "long_name": "transmission",
        "spin_degeneracy": 1,
    }


def test_a_parameter_without_declared_unit_is_refused_with_physical_units(
    tmp_path, monkeypatch, capsys
):
    from mesoscopic import models

    def undeclared_barrier(well: int = 3) -> meso.System:
        return models.double_barrier(well)  # the same device, with no units declared

    monkeypatch.setattr(models, "undeclared_barrier", undeclared_barrier, raising=False)
    monkeypatch.setattr(models, "__all__", [*models.__all__, "undeclared_barrier"])
    base = """
    [device]
    model = "undeclared_barrier"
    [parameters]
    well_potential = 0.0
    [sweep]
    energy = [0.5]
    barrier_height = [1.0]
    [output]
    path = "out/u.nc"
    """
    physical = '[units]\nenergy = "meV"\n[discretization]\nlattice_constant = 5.0\n'
    study = write(tmp_path, textwrap.dedent(base) + physical)
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "[units] undeclared_barrier does not declare the unit of parameter(s)" in err
    assert "'barrier_height', 'well_potential'" in err
    assert not (tmp_path / "out").exists()
    # In lattice units nothing is converted, so nothing is ambiguous.
    write(tmp_path, base)
    assert cli.main(["run", str(tmp_path / "study.toml"), "--no-progress"]) == 0


def test_physical_units_are_refused_for_a_lattice_that_is_no_effective_mass_model(
    tmp_path, capsys
):
    study = write(
        tmp_path,
        """
        [device]
        model = "graphene_ribbon"
        width = 2
        length = 2.0
        [parameters]
        potential = 0.0
        [sweep]
        energy = [0.5]
        [units]
        energy = "meV"
        [discretization]
        lattice_constant = 0.246
        [output]
        path = "out/g.nc"
        """,
    )
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    assert "graphene_ribbon is not the discretization of an electron gas" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "sweep",
    [
        "energy = [0.5]\nbarrier_height = { start = 0.5, stop = 2.0, num = 12 }",  # G(V_g)
        "energy = [0.5]\nbarrier_height = [0.8, 1.6]",
        "energy = { start = 0.2, stop = 1.6, num = 12 }\nbarrier_height = [1.0]",
        "energy = [0.5]\nbarrier_height = [1.0]",  # every axis of length one
        "energy = [0.5]\nbarrier_height = [1.0]\nwell_potential = [0.0, 0.2, 0.4, 0.5]",
        "energy = { start = 0.2, stop = 1.6, num = 3 }",
    ],
)
def test_run_and_plot_with_axes_of_length_one(tmp_path, sweep):
    fixed = "" if "well_potential" in sweep else "well_potential = 0.0"
    study = write(
        tmp_path,
        f"""
[device]
model = "double_barrier"
well = 8
barrier = 2
[parameters]
{fixed}
{"barrier_height = 1.0" if "barrier_height" not in sweep else ""}
[sweep]
{sweep}
[output]
path = "out/s.nc"
figure = "out/s.png"
""",
    )
    assert cli.main(["run", str(study), "--no-progress"]) == 0
    data = io.load(tmp_path / "out" / "s.nc")
    assert data["transmission"].size >= 1
    assert (tmp_path / "out" / "s.png").stat().st_size > 1000
    assert (
        cli.main(["plot", str(tmp_path / "out" / "s.nc"), "--out", str(tmp_path / "p.png")]) == 0
    )
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_the_figure_of_a_gate_sweep_at_one_energy_is_a_curve_over_the_gate():
    import xarray as xr

    data = xr.Dataset(
        {"transmission": (("energy", "gate"), np.linspace(0, 1, 12)[None, :], {"units": "1"})},
        coords={"energy": ("energy", [0.5], {"units": "t"}), "gate": np.linspace(0, 1, 12)},
    )
    array, sliced = cli._figure_array(data, None)
    assert array.dims == ("gate",)
    assert sliced == "energy = 0.5 t"
    point, _ = cli._figure_array(data.isel(gate=[3]), None)
    assert point.ndim == 0 and float(point) == pytest.approx(3 / 11)


def test_gaas_gate_sweep_study_shows_plateaus_where_the_saddle_model_puts_them(tmp_path):
    """G(V_g) at one Fermi energy, in meV: plateau N is centred at V_g = E_F - N hbar omega.

    The study gives E_F from the sheet density and the curvature from hbar omega = 2 meV;
    subband n crosses E_F at V_g = E_F - (n + 1/2) hbar omega, where T rises by 1/2.
    """
    import pathlib

    study_file = (
        pathlib.Path(__file__).resolve().parents[1]
        / "examples"
        / "studies"
        / "qpc_gaas_gate_sweep.toml"
    )
    study = cli.load_study(study_file, output_dir=tmp_path)
    e_f = float(meso.constants.density_to_fermi_energy(1.5e15, 0.067))
    spacing = 2.0
    assert study.grid["energy"].tolist() == [pytest.approx(e_f, rel=1e-12)]
    assert study.fixed["confinement"] == pytest.approx(
        float(meso.constants.confinement_curvature(spacing, 0.067)), rel=1e-12
    )
    study.grid["gate"] = np.array([e_f - 2 * spacing, e_f - 1.5 * spacing, e_f - spacing])
    data = cli.run_study(study, progress=False)
    t = data["transmission"].isel(energy=0).values
    assert t[0] == pytest.approx(2.0, abs=0.02)
    assert t[1] == pytest.approx(1.5, abs=0.1)
    assert t[2] == pytest.approx(1.0, abs=0.02)
    assert (tmp_path / "out" / "qpc_gaas_gate_sweep.png").stat().st_size > 1000


def test_a_gate_sweep_at_one_energy_is_one_parameter_batch(tmp_path, monkeypatch):
    # At a single energy the study solves the gate values together (a parameter batch):
    # one solver call per chunk, the same numbers as point by point.
    from mesoscopic import batch

    calls = []
    original = batch.transmission

    def counted(*args, **kwargs):
        calls.append(kwargs.get("params"))
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "transmission", counted)
    heights = np.linspace(0.5, 2.0, 7)
    study = write(
        tmp_path,
        f"""
[device]
model = "double_barrier"
well = 8
barrier = 2
[parameters]
well_potential = 0.1
[sweep]
energy = [0.7]
barrier_height = {heights.tolist()}
[output]
path = "out/g.nc"
figure = false
""",
    )
    assert cli.main(["run", str(study), "--no-progress"]) == 0
    data = io.load(tmp_path / "out" / "g.nc")
    assert data.attrs["batch_axis"] == "barrier_height"
    assert len(calls) == 1 and len(calls[0]) == heights.size
    fsys = meso.models.double_barrier(well=8, barrier=2)
    for height in heights:
        expected = meso.smatrix(
            fsys, 0.7, params={"barrier_height": height, "well_potential": 0.1}
        ).transmission(1, 0)
        got = data["transmission"].sel(energy=0.7, barrier_height=height, method="nearest")
        assert float(got) == pytest.approx(expected, abs=1e-10)
