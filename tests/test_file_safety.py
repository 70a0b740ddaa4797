"""Files from outside are never trusted: where results go, what a checkpoint may hold.

* ``meso run`` writes only under the study's folder (or ``--output-dir``) and never
  replaces an existing result without ``--overwrite``.
* Checkpoint chunks and :func:`mesoscopic.io.load` read regular NetCDF files only, check
  the fingerprint before the data, refuse absurd sizes, and verify a checksum per chunk.
* The fingerprint sees constants the observable uses, ignores where the study file and
  figure are, and a refusal says what differs.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import xarray as xr

import sweep_helpers
from mesoscopic import cli, io
from mesoscopic.sweep import run_sweep

TESTS_DIR = pathlib.Path(__file__).resolve().parent

STUDY = """
[device]
model = "double_barrier"
well = 4
barrier = 1

[parameters]
well_potential = 0.0

[sweep]
energy = [0.5, 1.0, 1.5]
barrier_height = [0.8, 1.6]

[output]
path = "{path}"
figure = {figure}
"""


def write_study(folder: pathlib.Path, path: str = "out/study.nc", figure: str = "false"):
    folder.mkdir(parents=True, exist_ok=True)
    study = folder / "study.toml"
    study.write_text(textwrap.dedent(STUDY.format(path=path, figure=figure)))
    return study


def files_under(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- where meso run writes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "figure", "field"),
    [
        ("../victim/data.nc", "false", "output.path"),
        ("{victim}/data.nc", "false", "output.path"),
        ("out/study.nc", '"{victim}/figure.png"', "output.figure"),
        ("out/study.nc", '"../victim/figure.png"', "output.figure"),
    ],
)
def test_study_cannot_write_outside_its_folder(tmp_path, capsys, path, figure, field):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data.nc").write_bytes(b"precious")
    (victim / "figure.png").write_bytes(b"precious")
    study = write_study(
        tmp_path / "study", path.format(victim=victim), figure.format(victim=victim)
    )
    with pytest.raises(cli.ConfigError, match=rf"\[{field}\] .* outside the study's folder"):
        cli.load_study(study)
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(study) in err and "--output-dir" in err and "Traceback" not in err
    assert (victim / "data.nc").read_bytes() == b"precious"
    assert (victim / "figure.png").read_bytes() == b"precious"
    assert files_under(tmp_path / "study") == ["study.toml"]


def test_a_link_out_of_the_study_folder_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    study = write_study(tmp_path / "study", "out/study.nc")
    (tmp_path / "study" / "out").symlink_to(victim, target_is_directory=True)
    with pytest.raises(cli.ConfigError, match=r"\[output.path\] .* outside the study's folder"):
        cli.load_study(study)
    assert not list(victim.iterdir())


def test_output_paths_are_relative_to_the_study_folder_not_the_current_one(tmp_path, monkeypatch):
    study = write_study(tmp_path / "study", "out/study.nc", '"out/study.png"')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["run", str(study), "--no-progress"]) == 0
    assert (tmp_path / "study" / "out" / "study.nc").is_file()
    assert (tmp_path / "study" / "out" / "study.png").is_file()
    assert not list(elsewhere.iterdir())


def test_output_dir_on_the_command_line_moves_the_outputs(tmp_path):
    study = write_study(tmp_path / "study", "results/study.nc", '"results/study.png"')
    target = tmp_path / "elsewhere"
    assert cli.main(["run", str(study), "--no-progress", "--output-dir", str(target)]) == 0
    assert (target / "results" / "study.nc").is_file()
    assert (target / "results" / "study.png").is_file()
    assert files_under(tmp_path / "study") == ["study.toml"]
    # ... and the rule then holds for that folder.
    escaping = write_study(tmp_path / "other", "../../x.nc")
    with pytest.raises(cli.ConfigError, match=r"outside the output folder .*elsewhere"):
        cli.load_study(escaping, output_dir=target)


def test_an_existing_result_is_replaced_only_with_overwrite(tmp_path, capsys):
    study = write_study(tmp_path, "out/study.nc", '"out/study.png"')
    assert cli.main(["run", str(study), "--no-progress"]) == 0
    result = tmp_path / "out" / "study.nc"
    figure = tmp_path / "out" / "study.png"
    before = io.load(result)
    result.write_bytes(b"someone's edited result")
    capsys.readouterr()
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{result} already exists" in err and "--overwrite" in err
    assert result.read_bytes() == b"someone's edited result"
    # The figure is a result too.
    result.unlink()
    figure.write_bytes(b"someone's figure")
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    assert f"{figure} already exists" in capsys.readouterr().err
    assert figure.read_bytes() == b"someone's figure"
    assert cli.main(["run", str(study), "--no-progress", "--overwrite"]) == 0
    xr.testing.assert_identical(io.load(result).drop_attrs(), before.drop_attrs())
    assert figure.stat().st_size > 1000


def test_run_sweep_does_not_replace_a_file_it_did_not_write(tmp_path):
    grid = {"energy": [0.1, 0.2], "gate": [1.0, 2.0]}
    (tmp_path / "study.nc").write_bytes(b"precious")
    with pytest.raises(ValueError, match=r"study.nc' exists and is not the result of this sweep"):
        run_sweep(
            sweep_helpers.product_with_offset,
            grid,
            checkpoint=tmp_path / "study",
            progress=False,
        )
    assert (tmp_path / "study.nc").read_bytes() == b"precious"
    assert not (tmp_path / "study.chunks").exists()
    first = run_sweep(
        sweep_helpers.product_with_offset,
        grid,
        checkpoint=tmp_path / "study",
        progress=False,
        overwrite=True,
    )
    # Its own result may be written again; another sweep's may not.
    run_sweep(sweep_helpers.product_with_offset, grid, checkpoint=tmp_path / "study")
    with pytest.raises(ValueError, match=r"different sweep"):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1, 0.3], "gate": [1.0, 2.0]},
            checkpoint=tmp_path / "study",
            progress=False,
        )
    other = run_sweep(
        sweep_helpers.product_with_offset,
        {"energy": [0.1, 0.3], "gate": [1.0, 2.0]},
        checkpoint=tmp_path / "study",
        progress=False,
        overwrite=True,
    )
    assert float(other["product_with_offset"][1, 0]) == pytest.approx(0.3 + 0.5)
    assert float(first["product_with_offset"][1, 0]) == pytest.approx(0.2 + 0.5)
    assert io.load(tmp_path / "study.nc").attrs["grid"]["energy"] == [0.1, 0.3]


def test_unchanged_study_resumes_by_absolute_path_or_with_another_figure(tmp_path, monkeypatch):
    study = write_study(tmp_path / "study", "out/study.nc", '"out/study.png"')
    monkeypatch.chdir(tmp_path / "study")
    assert cli.main(["run", "study.toml", "--no-progress"]) == 0
    (tmp_path / "study" / "out" / "study.nc").unlink()  # as if killed before the end
    (tmp_path / "study" / "out" / "study.png").unlink()
    study.write_text(study.read_text().replace("out/study.png", "out/other.png"))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["run", str(study.resolve()), "--no-progress"]) == 0
    assert (tmp_path / "study" / "out" / "other.png").is_file()


# --- what a checkpoint and io.load read ---------------------------------------------------

GRID = {"energy": [0.1, 0.2, 0.3], "gate": [1.0, 2.0]}
OPTIONS = {"chunk_size": 2, "progress": False}


def first_run(tmp_path):
    checkpoint = tmp_path / "study"
    result = run_sweep(sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS)
    (tmp_path / "study.nc").unlink()
    chunks = sorted((tmp_path / "study.chunks").glob("chunk-*.nc"))
    assert len(chunks) == 3
    return checkpoint, result, chunks


def test_a_directory_among_the_chunks_is_refused_without_opening_it(tmp_path, monkeypatch):
    checkpoint, _, chunks = first_run(tmp_path)
    planted = chunks[0].with_name("chunk-0000000000-planted0.nc")
    planted.mkdir()
    (planted / ".zgroup").write_text('{"zarr_format": 2}')
    opened = []
    real_open = xr.open_dataset

    def spy(*args, **kwargs):
        opened.append(kwargs.get("engine"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(xr, "open_dataset", spy)
    with pytest.raises(ValueError, match=r"chunk-0000000000-planted0.nc' is not a regular file"):
        run_sweep(sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS)
    assert "zarr" not in opened and None not in opened


def test_a_chunk_in_another_format_is_refused(tmp_path):
    checkpoint, _, chunks = first_run(tmp_path)
    chunks[0].write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError, match=r"is not a NetCDF3 file written by mesoscopic"):
        run_sweep(sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS)


def test_io_load_reads_netcdf_only_unless_zarr_is_asked_for(tmp_path):
    store = tmp_path / "data.zarr"
    store.mkdir()
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(ValueError, match=r"data.zarr' is a directory.*format='zarr'"):
        io.load(store)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"folder' is a directory"):
        io.load(folder)
    (tmp_path / "file.zarr").write_bytes(b"CDF\x01")
    with pytest.raises(ValueError, match=r"file.zarr' .*format='zarr'"):
        io.load(tmp_path / "file.zarr")


def tiny_file_asking_for_gigabytes(path: pathlib.Path) -> pathlib.Path:
    data = xr.Dataset(
        {"x": ("n", np.arange(4, dtype=np.int32), {"mesoscopic_dtype": "V1500000000"})}
    )
    data.to_netcdf(path, engine="scipy")
    assert path.stat().st_size < 200
    return path


def test_attributes_asking_for_absurd_allocations_are_refused(tmp_path, capsys):
    path = tiny_file_asking_for_gigabytes(tmp_path / "tiny.nc")
    with pytest.raises(ValueError, match=r"tiny.nc.* variable 'x' .*dtype 'V1500000000'"):
        io.load(path)
    # Complex parts of different shapes would broadcast into a huge array.
    parts = xr.Dataset(
        {
            "z__real": (
                "a",
                np.zeros(3000),
                {"mesoscopic_complex_of": "z", "mesoscopic_complex_part": "real"},
            ),
            "z__imag": (
                "b",
                np.zeros(3000),
                {"mesoscopic_complex_of": "z", "mesoscopic_complex_part": "imag"},
            ),
        }
    )
    parts.to_netcdf(tmp_path / "parts.nc", engine="scipy")
    with pytest.raises(ValueError, match=r"parts.nc.*complex variable 'z'.*shapes"):
        io.load(tmp_path / "parts.nc")
    assert cli.main(["plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err


def test_fingerprint_is_checked_before_the_data_are_read(tmp_path):
    checkpoint, _, chunks = first_run(tmp_path)
    # Decoding this dtype would ask for 400 TB: the data must not be read at all.
    foreign = xr.Dataset(
        {"x": ("n", np.arange(4, dtype=np.int32), {"mesoscopic_dtype": "V100000000000000"})},
        attrs={"fingerprint": "0" * 32},
    )
    chunks[0].unlink()
    foreign.to_netcdf(chunks[0], engine="scipy")
    with pytest.raises(ValueError, match=r"belongs to a different sweep"):
        run_sweep(sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS)


def test_meso_plot_of_a_damaged_file_names_it(tmp_path, capsys):
    damaged = tmp_path / "result.nc"
    damaged.write_bytes(b"CDF\x01" + bytes(range(256)) * 2)
    assert cli.main(["plot", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert str(damaged) in err and "Traceback" not in err
    assert not (tmp_path / "result.png").exists()


# --- checkpoint integrity -----------------------------------------------------------------


def rewrite_chunk(path: pathlib.Path, change) -> None:
    """Rewrite a chunk file with changed data, keeping every attribute (the checksum too)."""
    with xr.open_dataset(path, engine="scipy") as opened:
        raw = opened.load()
    path.unlink()
    change(raw).to_netcdf(path, engine="scipy")


def flip_one_bit(path: pathlib.Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x10  # inside the last value of the last variable
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage",
    [
        flip_one_bit,
        lambda path: rewrite_chunk(
            path,
            lambda d: d.assign(product_with_offset=d["product_with_offset"].astype(np.float32)),
        ),
        lambda path: rewrite_chunk(
            path, lambda d: d.assign(product_with_offset=d["product_with_offset"] * np.nan)
        ),
    ],
    ids=["flipped bit", "changed dtype", "NaN-filled"],
)
def test_a_chunk_that_fails_its_checksum_is_recomputed(tmp_path, damage):
    checkpoint, first, chunks = first_run(tmp_path)
    damage(chunks[2])
    with pytest.warns(RuntimeWarning, match=r"fails its checksum.*computed again"):
        again = run_sweep(
            sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS
        )
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())
    assert again["product_with_offset"].dtype == np.float64


def test_chunks_round_trip_bit_for_bit(tmp_path):
    """Signed zeros, NaN and infinite imaginary parts survive, so checksums can match."""
    values = np.array([-0.0 + 1j, complex(1.0, np.inf), complex(np.nan, -0.0), 2.5 - 3j])
    data = xr.Dataset({"z": ("n", values)})
    back = io.load(io.save(data, tmp_path / "z.nc"))
    assert back["z"].values.tobytes() == values.tobytes()


def test_a_changed_module_constant_is_a_different_sweep(tmp_path, monkeypatch):
    grid = {"energy": [0.1, 0.2]}
    run_sweep(sweep_helpers.scaled_energy, grid, checkpoint=tmp_path / "s", progress=False)
    (tmp_path / "s.nc").unlink()
    monkeypatch.setattr(sweep_helpers, "ENERGY_SCALE", 3.0)
    with pytest.raises(
        ValueError, match=r"different sweep: .*ENERGY_SCALE.* \(stored 2\.0, now 3\.0\)"
    ):
        run_sweep(sweep_helpers.scaled_energy, grid, checkpoint=tmp_path / "s", progress=False)
    # ... also when the constant is used by a function of the same module that it calls.
    run_sweep(sweep_helpers.shifted_energy, grid, checkpoint=tmp_path / "t", progress=False)
    (tmp_path / "t.nc").unlink()
    monkeypatch.setattr(sweep_helpers, "ENERGY_SCALE", 4.0)
    with pytest.raises(ValueError, match=r"ENERGY_SCALE.* \(stored 3\.0, now 4\.0\)"):
        run_sweep(sweep_helpers.shifted_energy, grid, checkpoint=tmp_path / "t", progress=False)


def test_a_changed_closure_value_is_a_different_sweep(tmp_path):
    def make_observable(scale):
        def scaled(energy):
            return scale * energy

        return scaled

    grid = {"energy": [0.1, 0.2]}
    run_sweep(make_observable(2.0), grid, checkpoint=tmp_path / "s", progress=False)
    (tmp_path / "s.nc").unlink()
    with pytest.raises(ValueError, match=r"closure scale \(stored 2\.0, now 3\.0\)"):
        run_sweep(make_observable(3.0), grid, checkpoint=tmp_path / "s", progress=False)
    resumed = run_sweep(make_observable(2.0), grid, checkpoint=tmp_path / "s", progress=False)
    assert resumed["scaled"].values.tolist() == [0.2, 0.4]


def test_a_refusal_says_which_parameter_differs(tmp_path):
    grid = {"energy": [0.1, 0.2], "gate": [1.0]}
    options = {"checkpoint": tmp_path / "s", "progress": False}
    log = str(tmp_path / "log")
    run_sweep(
        sweep_helpers.logged_product, grid, fixed_params={"log_path": log, "delay": 0.0}, **options
    )
    with pytest.raises(ValueError, match=r"fixed_params.delay \(stored 0\.0, now 0\.5\)") as info:
        run_sweep(
            sweep_helpers.logged_product,
            grid,
            fixed_params={"log_path": log, "delay": 0.5},
            **options,
        )
    assert "log_path" not in str(info.value)


def test_a_stray_temporary_of_a_killed_final_save_is_removed(tmp_path):
    checkpoint, _, _ = first_run(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stray = tmp_path / f".study.nc.{int(dead.stdout)}-0123abcd.tmp"
    stray.write_bytes(b"CDF\x01 half written")
    run_sweep(sweep_helpers.product_with_offset, GRID, checkpoint=checkpoint, **OPTIONS)
    assert not stray.exists()
    assert (tmp_path / "study.nc").is_file()


def test_a_failed_figure_leaves_the_old_one_whole(tmp_path, monkeypatch):
    import matplotlib.figure

    data = xr.Dataset({"T": ("energy", [0.0, 1.0])}, coords={"energy": [0.1, 0.2]})
    figure = tmp_path / "T.png"
    figure.write_bytes(b"the old figure")

    def broken_savefig(self, target, **kwargs):
        pathlib.Path(target).write_bytes(b"half a fig")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        cli.plot_dataset(data, figure)
    assert figure.read_bytes() == b"the old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["T.png"]


# --- sizes, duplicates, the __main__ guard -------------------------------------------------


def test_a_sweep_too_large_for_memory_is_refused_before_computing(tmp_path):
    grid = {"energy": np.arange(2_000_000), "gate": np.arange(2_000_000)}
    with pytest.raises(ValueError, match=r"4000000000000 points .* at least [\d.]+ TiB"):
        run_sweep(
            sweep_helpers.product_with_offset, grid, checkpoint=tmp_path / "s", progress=False
        )
    assert not list(tmp_path.iterdir())
    # Once the first results show their size: 10^6 points of 8 MB each.
    calls = []

    def big(energy):
        calls.append(energy)
        return np.zeros(1_000_000)

    with pytest.raises(ValueError, match=r"1000000 points of 8000000 bytes .* [\d.]+ TiB"):
        run_sweep(big, {"energy": np.arange(1_000_000) * 1.0}, chunk_size=1, progress=False)
    assert len(calls) == 1


def test_meso_run_refuses_a_study_too_large_for_memory(tmp_path, capsys):
    study = write_study(tmp_path)
    study.write_text(
        study.read_text()
        .replace("energy = [0.5, 1.0, 1.5]", "energy = { start = 0.1, stop = 1.9, num = 3000000 }")
        .replace(
            "barrier_height = [0.8, 1.6]",
            "barrier_height = { start = 0.1, stop = 2, num = 2000000 }",
        )
    )
    assert cli.main(["run", str(study), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(study) in err and "6000000000000 points" in err and "TiB" in err
    assert files_under(tmp_path) == ["study.toml"]


def test_duplicate_grid_values_are_refused():
    with pytest.raises(ValueError, match=r"grid axis 'gate' holds 2.0 more than once"):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1], "gate": [1.0, 2.0, 2.0]},
            progress=False,
        )


@pytest.mark.parametrize(
    "axis",
    ["[0.8, 1.6, 0.8]", "{ start = 1.0, stop = 1.0, num = 3 }"],
)
def test_duplicate_study_axis_values_are_refused(tmp_path, axis):
    study = write_study(tmp_path)
    study.write_text(study.read_text().replace("[0.8, 1.6]", axis))
    with pytest.raises(cli.ConfigError, match=r"\[sweep.barrier_height\] .* more than once"):
        cli.load_study(study)


def test_a_missing_main_guard_is_explained(monkeypatch):
    import concurrent.futures

    bootstrap = RuntimeError(
        "An attempt has been made to start a new process before the current process has "
        "finished its bootstrapping phase."
    )

    class Unbootstrapped(concurrent.futures.ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            raise bootstrap

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Unbootstrapped)
    with pytest.raises(RuntimeError, match=r'if __name__ == "__main__":') as info:
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1], "gate": [1.0]},
            executor="processes",
            workers=1,
            progress=False,
        )
    assert info.value.__cause__ is bootstrap
    distributed = pytest.importorskip("distributed")

    def unbootstrapped_cluster(*args, **kwargs):
        raise bootstrap

    monkeypatch.setattr(distributed, "LocalCluster", unbootstrapped_cluster)
    with pytest.raises(RuntimeError, match=r'if __name__ == "__main__":'):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1], "gate": [1.0]},
            executor="dask",
            workers=1,
            progress=False,
        )

    # In the driver, Dask reports only that the worker processes did not start.
    def cluster_whose_workers_died(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(distributed, "LocalCluster", cluster_whose_workers_died)
    with pytest.raises(RuntimeError, match=r'could not start .* if __name__ == "__main__":'):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1], "gate": [1.0]},
            executor="dask",
            workers=1,
            progress=False,
        )


def test_a_spawned_script_without_the_guard_gets_the_explanation(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing

            import sweep_helpers
            from mesoscopic.sweep import run_sweep

            multiprocessing.set_start_method("spawn", force=True)
            run_sweep(
                sweep_helpers.product_with_offset,
                {"energy": [0.1, 0.2], "gate": [1.0]},
                executor="processes",
                workers=1,
                progress=False,
            )
            """
        )
    )
    paths = [str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    completed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert completed.returncode != 0
    assert 'if __name__ == "__main__":' in completed.stderr


def test_checksum_and_fingerprint_parts_are_readable(tmp_path):
    run_sweep(sweep_helpers.scaled_energy, {"energy": [0.1]}, checkpoint=tmp_path / "s")
    chunk = next((tmp_path / "s.chunks").glob("chunk-*.nc"))
    with xr.open_dataset(chunk, engine="scipy") as opened:
        assert len(opened.attrs["checksum"]) == 64
    manifest = (tmp_path / "s.chunks" / "sweep.json").read_text()
    assert '"ENERGY_SCALE"' in manifest
