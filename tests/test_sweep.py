"""Parameter sweeps: layout, executors, checkpoints and resumption, data files."""

from __future__ import annotations

import collections
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import sweep_helpers
from mesoscopic import io
from mesoscopic.analytic import chain_barrier_transmission
from mesoscopic.sweep import Observable, Output, run_sweep

TESTS_DIR = pathlib.Path(__file__).resolve().parent

MIXED = Observable(
    sweep_helpers.mixed_outputs,
    outputs={
        "total": Output("1", long_name="sum of Lorentzian weights"),
        "spectrum": Output("1", dims=("level",)),
        "amplitude": "1",
    },
    coords={"level": [0, 1, 2]},
)
MIXED_GRID = {
    "energy": np.linspace(-1.0, 1.0, 5),
    "gate": [0.0, 0.25, 0.5],
    "seed": np.arange(3),
}


def without_time(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset without its creation time, the one attribute that differs between runs."""
    copy = dataset.copy()
    copy.attrs.pop("created")
    return copy


def assert_same_sweep(actual: xr.Dataset, expected: xr.Dataset) -> None:
    xr.testing.assert_identical(without_time(actual), without_time(expected))


def env_with_tests_on_path() -> dict[str, str]:
    paths = [str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


# --- layout, units, provenance ------------------------------------------------------------


def test_layout_units_and_provenance_of_a_closed_form_sweep():
    energies = np.linspace(-1.9, 1.9, 9)
    heights = np.array([0.0, 0.4, 1.1])
    result = run_sweep(
        Observable(
            sweep_helpers.closed_form_chain,
            outputs={"transmission": Output("1", long_name="T(E)")},
        ),
        {"energy": energies, "height": heights},
        fixed_params={"length": 4},
        units={"energy": "t", "height": "t"},
        attrs={"title": "chain barrier"},
        progress=False,
    )
    transmission = result["transmission"]
    assert transmission.dims == ("energy", "height")
    expected = chain_barrier_transmission(energies[:, None], heights[None, :], 4)
    np.testing.assert_array_equal(transmission.values, expected)
    np.testing.assert_array_equal(transmission.sel(height=0.0), 1.0)  # no barrier
    assert transmission.attrs == {"units": "1", "long_name": "T(E)"}
    assert result["energy"].attrs["units"] == "t"
    np.testing.assert_array_equal(result["height"], heights)
    attrs = result.attrs
    assert attrs["title"] == "chain barrier"
    assert attrs["grid"] == {"energy": energies.tolist(), "height": heights.tolist()}
    assert attrs["fixed_params"] == {"length": 4}
    assert attrs["observable"] == "sweep_helpers.closed_form_chain"
    assert attrs["mesoscopic_version"]
    assert attrs["batch_axis"] is None
    assert attrs["seeds"] == {}
    assert len(attrs["fingerprint"]) == 32
    assert attrs["created"].endswith("+00:00")


def test_tight_binding_chain_matches_closed_form_and_conserves_current():
    grid = {"energy": np.linspace(-1.8, 1.8, 7), "height": [0.3, 1.2]}
    numeric = run_sweep(
        sweep_helpers.tight_binding_chain, grid, fixed_params={"length": 3}, progress=False
    )
    exact = run_sweep(
        sweep_helpers.closed_form_chain,
        grid,
        fixed_params={"length": 3},
        batch_axis="energy",
        progress=False,
    )
    np.testing.assert_allclose(
        numeric["transmission"], exact["closed_form_chain"], rtol=0, atol=1e-12
    )
    # Unitarity of the two-terminal S matrix: T + R = 1 at every point.
    np.testing.assert_allclose(numeric["transmission"] + numeric["reflection"], 1.0, atol=1e-12)
    assert exact.attrs["batch_axis"] == "energy"


def test_batch_axis_gives_the_pointwise_result():
    grid = {"height": [0.2, 0.9], "energy": np.linspace(-1.5, 1.5, 11)}
    pointwise = run_sweep(
        sweep_helpers.closed_form_chain, grid, fixed_params={"length": 5}, progress=False
    )
    batched = run_sweep(
        sweep_helpers.closed_form_chain,
        grid,
        fixed_params={"length": 5},
        batch_axis="energy",
        chunk_size=1,
        progress=False,
    )
    # The batch axis keeps its place in the grid order.
    assert batched["closed_form_chain"].dims == ("height", "energy")
    xr.testing.assert_equal(batched, pointwise)


def test_dataarray_outputs_keep_dims_coords_and_attrs():
    def resolved(energy, gate):
        values = np.array([energy + gate, energy - gate])
        return xr.DataArray(
            values, dims="lead", coords={"lead": [0, 1]}, name="g", attrs={"units": "e^2/h"}
        )

    result = run_sweep(resolved, {"energy": [0.1, 0.2], "gate": [1.0, 2.0, 3.0]}, progress=False)
    assert result["g"].dims == ("energy", "gate", "lead")
    assert result["g"].attrs["units"] == "e^2/h"
    np.testing.assert_array_equal(result["lead"], [0, 1])
    np.testing.assert_allclose(result["g"].sel(energy=0.2, gate=3.0), [3.2, -2.8])


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    chunk_size=st.integers(1, 7),
    batch=st.booleans(),
)
def test_any_chunking_assembles_the_same_grid(sizes, chunk_size, batch):
    names = ["a", "b", "c"][: len(sizes)]
    grid = {
        name: np.arange(size) * (k + 1) + 0.5 for k, (name, size) in enumerate(zip(names, sizes))
    }

    def weighted_sum(**point):
        # Distinct digits per axis, so a misplaced value cannot go unnoticed.
        return sum(np.asarray(point[name]) * 10.0**k for k, name in enumerate(names))

    result = run_sweep(
        weighted_sum,
        grid,
        chunk_size=chunk_size,
        batch_axis=names[-1] if batch else None,
        progress=False,
    )
    mesh = np.meshgrid(*grid.values(), indexing="ij")
    expected = sum(m * 10.0**k for k, m in enumerate(mesh))
    np.testing.assert_array_equal(result["weighted_sum"].values, expected)


# --- executors --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serial_mixed():
    return run_sweep(MIXED, MIXED_GRID, chunk_size=4, progress=False)


def test_mixed_outputs_layout(serial_mixed):
    assert serial_mixed["total"].dims == ("energy", "gate", "seed")
    assert serial_mixed["spectrum"].dims == ("energy", "gate", "seed", "level")
    assert serial_mixed["amplitude"].dtype == np.complex128
    np.testing.assert_allclose(serial_mixed["spectrum"].sum("level"), serial_mixed["total"])
    assert serial_mixed.attrs["seeds"] == {"seed": [0, 1, 2]}


def test_processes_give_the_serial_result(serial_mixed):
    parallel = run_sweep(
        MIXED, MIXED_GRID, executor="processes", workers=2, chunk_size=5, progress=False
    )
    assert_same_sweep(parallel, serial_mixed)


def test_dask_local_cluster_gives_the_serial_result(serial_mixed):
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    on_dask = run_sweep(
        MIXED, MIXED_GRID, executor="dask", workers=2, chunk_size=3, progress=False
    )
    assert_same_sweep(on_dask, serial_mixed)


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dask_scheduler_address(tmp_path):
    """A real `dask scheduler` with two `dask worker` processes on the loopback interface."""
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    address = f"tcp://127.0.0.1:{free_local_port()}"
    host, port = address.removeprefix("tcp://").split(":")
    env = env_with_tests_on_path()
    # The HTTP servers start even without a dashboard: keep them on the loopback too.
    http = ["--no-dashboard", "--dashboard-address", f"{host}:0"]
    worker_options = ["--nthreads", "1", "--no-nanny", *http]
    commands = [
        ["scheduler", "--host", host, "--port", port, *http],
        *[
            ["worker", address, "--name", f"worker-{k}", "--host", host, *worker_options]
            for k in range(2)
        ],
    ]
    processes = []
    try:
        for k, command in enumerate(commands):
            log = open(tmp_path / f"dask-{k}.log", "w")  # noqa: SIM115 - closed below
            processes.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "dask", *command],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    ),
                    log,
                )
            )
        yield address
    finally:
        # Workers first: a worker outliving its scheduler waits for it to come back.
        for process, log in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def test_dask_scheduler_address_gives_the_serial_result(serial_mixed, dask_scheduler_address):
    import distributed

    with distributed.Client(dask_scheduler_address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        assert len(client.nthreads()) == 2
        with_client = run_sweep(MIXED, MIXED_GRID, client=client, chunk_size=4, progress=False)
    with_address = run_sweep(
        MIXED, MIXED_GRID, scheduler=dask_scheduler_address, chunk_size=6, progress=False
    )
    assert_same_sweep(with_client, serial_mixed)
    assert_same_sweep(with_address, serial_mixed)


# --- checkpoints and resumption -----------------------------------------------------------


def read_log(path: pathlib.Path) -> list[tuple[float, int]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(float(e), int(g)) for e, g in (line.split() for line in lines)]


def grid_point(call_index: int) -> tuple[float, int]:
    energies, gates = sweep_helpers.LOGGED_GRID["energy"], sweep_helpers.LOGGED_GRID["gate"]
    i, j = np.unravel_index(call_index, (len(energies), len(gates)))
    return float(energies[i]), int(gates[j])


def finished_points(chunk_dir: pathlib.Path) -> set[tuple[float, int]]:
    """Points in the checkpoint's chunk files; every file must be readable."""
    done = set()
    for path in chunk_dir.glob("chunk-*.nc"):
        chunk = io.load(path)
        done.update(grid_point(int(i)) for i in chunk["sweep_call_index"].values)
    return done


def test_kill_9_of_the_driver_resumes_without_recomputing(tmp_path):
    checkpoint = tmp_path / "sweep"
    chunk_dir = tmp_path / "sweep.chunks"
    log = tmp_path / "evaluations.log"
    delay = 0.03
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, sweep_helpers; sweep_helpers.run_logged_sweep(*sys.argv[1:3], 0.03)",
            str(checkpoint),
            str(log),
        ],
        env=env_with_tests_on_path(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(chunk_dir.glob("chunk-*.nc"))) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep wrote no chunks in 60 s"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    done_at_kill = finished_points(chunk_dir)
    evaluated_before = read_log(log)
    n_points = 6 * 8
    assert 3 * sweep_helpers.LOGGED_CHUNK_SIZE <= len(done_at_kill) < n_points
    assert not (tmp_path / "sweep.nc").exists()

    resumed = run_sweep(
        sweep_helpers.logged_product,
        sweep_helpers.LOGGED_GRID,
        fixed_params={"log_path": str(log), "delay": delay},
        chunk_size=sweep_helpers.LOGGED_CHUNK_SIZE,
        checkpoint=checkpoint,
        progress=False,
    )
    evaluated = read_log(log)
    evaluated_after = evaluated[len(evaluated_before) :]
    counts = collections.Counter(evaluated)
    grid_points = {grid_point(i) for i in range(n_points)}

    assert set(counts) == grid_points
    # Finished chunks are loaded, never computed again ...
    assert not done_at_kill & set(evaluated_after)
    assert all(counts[p] == 1 for p in done_at_kill)
    # ... and only the chunk in flight at the kill may have been evaluated twice.
    twice = {p for p, n in counts.items() if n == 2}
    assert max(counts.values()) <= 2
    assert len(twice) <= sweep_helpers.LOGGED_CHUNK_SIZE
    assert twice <= set(evaluated_before) - done_at_kill
    assert len(evaluated_after) == n_points - len(done_at_kill)

    # The resumed result equals an uninterrupted run, in memory and on disk.
    uninterrupted = run_sweep(
        sweep_helpers.logged_product,
        sweep_helpers.LOGGED_GRID,
        fixed_params={"log_path": str(tmp_path / "other.log"), "delay": 0.0},
        progress=False,
    )
    xr.testing.assert_equal(resumed, uninterrupted)
    for key in ("mesoscopic_version", "software", "observable", "grid", "seeds"):
        assert resumed.attrs[key] == uninterrupted.attrs[key]
    energies, gates = np.meshgrid(*sweep_helpers.LOGGED_GRID.values(), indexing="ij")
    np.testing.assert_array_equal(
        resumed["logged_product"], sweep_helpers.product_with_offset(energies, gates)
    )
    assert_same_sweep(io.load(tmp_path / "sweep.nc"), resumed)
    assert not list(chunk_dir.glob(".*.tmp"))


def test_interrupted_sweep_resumes_and_equals_an_uninterrupted_run(tmp_path):
    log = tmp_path / "evaluations.log"
    flag = tmp_path / "interrupt"
    flag.touch()
    options = {
        "fixed_params": {"log_path": str(log), "interrupt_flag": str(flag)},
        "chunk_size": 3,
        "checkpoint": tmp_path / "run.nc",
        "progress": False,
    }
    grid = sweep_helpers.LOGGED_GRID
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep_helpers.logged_product, grid, **options)
    first = read_log(log)
    # Energy 0.3, gate 5 is call 29 (of 0..47), in the tenth chunk of three: nine are
    # finished, and calls 27 and 28 of the tenth are lost with it.
    assert len(first) == 30
    assert len(list((tmp_path / "run.chunks").glob("chunk-*.nc"))) == 9

    flag.unlink()
    resumed = run_sweep(sweep_helpers.logged_product, grid, **options)
    second = read_log(log)[len(first) :]
    assert set(second) == {grid_point(i) for i in range(27, 48)}
    assert len(second) == 48 - 27

    # Running the finished sweep again computes nothing and gives the same data.
    again = run_sweep(sweep_helpers.logged_product, grid, **options)
    assert len(read_log(log)) == len(first) + len(second)
    assert_same_sweep(again, resumed)

    reference = run_sweep(
        sweep_helpers.logged_product,
        grid,
        fixed_params={"log_path": str(log), "interrupt_flag": str(tmp_path / "absent")},
        progress=False,
    )
    xr.testing.assert_equal(resumed, reference)
    assert_same_sweep(io.load(tmp_path / "run.nc"), resumed)


def test_killed_worker_process_loses_only_its_chunks(tmp_path):
    log = tmp_path / "evaluations.log"
    flag = tmp_path / "kill"
    flag.touch()
    options = {
        "fixed_params": {"log_path": str(log), "kill_flag": str(flag)},
        "executor": "processes",
        "workers": 2,
        "chunk_size": 4,
        "checkpoint": tmp_path / "run",
        "progress": False,
    }
    grid = sweep_helpers.LOGGED_GRID
    with pytest.raises(RuntimeError, match=r"a worker process died .* run the same sweep again"):
        run_sweep(sweep_helpers.logged_product, grid, **options)
    saved = finished_points(tmp_path / "run.chunks")
    assert grid_point(29) not in saved  # the chunk of the dead worker
    before = len(read_log(log))

    flag.unlink()
    resumed = run_sweep(sweep_helpers.logged_product, grid, **options)
    evaluated_after = read_log(log)[before:]
    assert set(evaluated_after) == {grid_point(i) for i in range(48)} - saved
    assert len(evaluated_after) == 48 - len(saved)
    energies, gates = np.meshgrid(*grid.values(), indexing="ij")
    np.testing.assert_array_equal(
        resumed["logged_product"], sweep_helpers.product_with_offset(energies, gates)
    )


def test_damaged_chunk_file_is_recomputed_with_a_warning(tmp_path):
    grid = {"energy": [0.1, 0.2, 0.3], "gate": [1.0, 2.0]}
    options = {"chunk_size": 2, "checkpoint": tmp_path / "study", "progress": False}
    first = run_sweep(sweep_helpers.product_with_offset, grid, **options)
    chunks = sorted((tmp_path / "study.chunks").glob("chunk-*.nc"))
    assert len(chunks) == 3
    chunks[1].write_bytes(b"CDF\x01 truncated by a disk failure")
    with pytest.warns(RuntimeWarning, match=r"checkpoint chunk .* is unreadable"):
        again = run_sweep(sweep_helpers.product_with_offset, grid, **options)
    xr.testing.assert_equal(again, first)
    assert len(list((tmp_path / "study.chunks").glob("chunk-*.nc.damaged"))) == 1
    assert len(list((tmp_path / "study.chunks").glob("chunk-*.nc"))) == 3


def test_checkpoint_of_a_different_sweep_is_refused(tmp_path):
    grid = {"energy": [0.1, 0.2, 0.3], "gate": [1.0, 2.0]}
    checkpoint = tmp_path / "study"
    run_sweep(sweep_helpers.product_with_offset, grid, checkpoint=checkpoint, progress=False)
    with pytest.raises(ValueError, match=r"different sweep: grid axis 'energy' differs"):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"energy": [0.1, 0.2, 0.4], "gate": [1.0, 2.0]},
            checkpoint=checkpoint,
            progress=False,
        )
    with pytest.raises(ValueError, match=r"different sweep: its grid axes are \['energy', "):
        run_sweep(
            sweep_helpers.product_with_offset,
            {"gate": [1.0, 2.0], "energy": [0.1, 0.2, 0.3]},
            checkpoint=checkpoint,
            progress=False,
        )
    with pytest.raises(
        ValueError,
        match=r"different sweep: it differs in observable.name \(stored "
        r"'sweep_helpers.product_with_offset', now 'sweep_helpers.logged_product'\); "
        r"observable.source differs",
    ):
        run_sweep(sweep_helpers.logged_product, grid, checkpoint=checkpoint, progress=False)
    with pytest.raises(
        ValueError,
        match=r"different sweep: it differs in fixed_params.log_path \(absent before, now '",
    ):
        run_sweep(
            sweep_helpers.logged_product,
            grid,
            fixed_params={"log_path": str(tmp_path / "log")},
            checkpoint=tmp_path / "study.nc",  # the same checkpoint, named by its file
            progress=False,
        )


# --- data files -------------------------------------------------------------------------------


def test_saved_sweep_round_trips_exactly(tmp_path, serial_mixed):
    path = io.save(serial_mixed, tmp_path / "mixed.nc")
    back = io.load(path)
    xr.testing.assert_identical(back, serial_mixed)
    assert back["seed"].dtype == np.int64
    assert back["amplitude"].dtype == np.complex128
    assert back.attrs["software"] == serial_mixed.attrs["software"]
    assert back.attrs["batch_axis"] is None
    # Other readers see plain NetCDF3: real and imaginary parts as real variables.
    with xr.open_dataset(path, engine="scipy") as raw:
        assert {"amplitude__real", "amplitude__imag"} <= set(raw.data_vars)
    assert [p.name for p in tmp_path.iterdir()] == ["mixed.nc"]


def test_io_errors_name_the_problem(tmp_path):
    huge = xr.Dataset({"seed": ("run", np.array([2**60], dtype=np.int64))})
    with pytest.raises(ValueError, match=r"'seed' holds integers up to 1152921504606846976"):
        io.save(huge, tmp_path / "huge.nc")
    assert not list(tmp_path.iterdir())  # nothing written half-way
    with pytest.raises(TypeError, match=r"dataset must be an xarray.Dataset, got dict"):
        io.save({"a": 1}, tmp_path / "x.nc")
    bad = xr.Dataset(attrs={"handle": object()})
    with pytest.raises(TypeError, match=r"attribute 'handle' of the dataset cannot be stored"):
        io.save(bad, tmp_path / "bad.nc")
    (tmp_path / "notes.nc").write_text("not a netcdf file")
    with pytest.raises(ValueError, match=r"is not a NetCDF file"):
        io.load(tmp_path / "notes.nc")
    with pytest.raises(FileNotFoundError, match=r"no dataset at"):
        io.load(tmp_path / "missing.nc")
    with pytest.raises(ValueError, match=r"format must be 'netcdf' or 'zarr', got 'hdf'"):
        io.save(xr.Dataset(), tmp_path / "x.nc", format="hdf")


def test_zarr_round_trip(tmp_path, serial_mixed):
    pytest.importorskip("zarr", reason="zarr is optional and not installed")
    back = io.load(io.save(serial_mixed, tmp_path / "mixed.zarr"), format="zarr")
    xr.testing.assert_identical(back, serial_mixed)


# --- errors -----------------------------------------------------------------------------------


GRID = {"energy": [0.1, 0.2], "gate": [1.0, 2.0]}


@pytest.mark.parametrize(
    ("grid", "error", "match"),
    [
        ({}, ValueError, r"grid is empty"),
        ({"energy": []}, ValueError, r"grid axis 'energy' is empty"),
        ({"energy": [[0.1, 0.2]]}, ValueError, r"grid axis 'energy' must be 1-D, got .*\(1, 2\)"),
        ({"energy": 0.5}, ValueError, r"grid axis 'energy' must be a 1-D sequence.*0\.5"),
        ({"energy": [0.1, np.nan]}, ValueError, r"grid axis 'energy' contains NaN"),
        ({"energy": [None, 1]}, TypeError, r"grid axis 'energy' must hold numbers"),
        ({"bias voltage": [0.1]}, ValueError, r"'bias voltage' must be a valid Python identi"),
        ([0.1, 0.2], TypeError, r"grid must be a mapping"),
    ],
)
def test_bad_grids_are_named(grid, error, match):
    with pytest.raises(error, match=match):
        run_sweep(sweep_helpers.product_with_offset, grid, progress=False)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"executor": "threads"}, ValueError, r"executor must be one of .* got 'threads'"),
        ({"chunk_size": 0}, ValueError, r"chunk_size must be a positive integer, got 0"),
        ({"workers": 0, "executor": "processes"}, ValueError, r"workers must be a positive"),
        ({"workers": 2}, ValueError, r"workers= sets the size of a local pool"),
        ({"batch_axis": "field"}, ValueError, r"batch_axis 'field' is not a grid axis"),
        ({"fixed_params": {"gate": 1.0}}, ValueError, r"fixed_params \['gate'\] are also grid"),
        ({"attrs": {"grid": "mine"}}, ValueError, r"attrs may not set \['grid'\]"),
        ({"executor": "serial", "scheduler": "tcp://x:1"}, ValueError, r"need executor='dask'"),
        ({"progress": "yes"}, TypeError, r"progress must be True, False or None"),
    ],
)
def test_bad_options_are_named(options, error, match):
    with pytest.raises(error, match=match):
        run_sweep(sweep_helpers.product_with_offset, GRID, **options)


def test_unpicklable_observable_with_processes_is_refused():
    with pytest.raises(TypeError, match=r"<lambda>' cannot be pickled.*def at module level"):
        run_sweep(lambda energy, gate: energy, GRID, executor="processes", progress=False)
    with pytest.raises(TypeError, match=r"fixed_params\['shift'\] cannot be pickled"):
        run_sweep(
            sweep_helpers.logged_product,
            GRID,
            fixed_params={"log_path": "unused", "shift": lambda x: x},
            executor="processes",
            progress=False,
        )


def test_units_for_unknown_names_are_reported():
    with pytest.warns(UserWarning, match=r"units were given for \['enrgy'\], which are neither"):
        run_sweep(sweep_helpers.product_with_offset, GRID, units={"enrgy": "t"}, progress=False)


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'mesoscopic\[dask\]'"):
        run_sweep(sweep_helpers.product_with_offset, GRID, executor="dask", progress=False)


def test_inconsistent_outputs_are_refused():
    def ragged(energy, gate):
        return np.zeros(int(gate))

    with pytest.raises(ValueError, match=r"output 'ragged' has dims .* at energy=0.1, gate=2"):
        run_sweep(ragged, {"energy": [0.1], "gate": [1, 2]}, progress=False)

    def scalar(energy, gate):
        return 1.0

    with pytest.raises(ValueError, match=r"batch_axis='energy' output 'scalar' must be an array"):
        run_sweep(scalar, GRID, batch_axis="energy", progress=False)
    with pytest.raises(ValueError, match=r"single value, but the Observable declares .*'b'\]"):
        run_sweep(Observable(scalar, outputs={"a": "1", "b": "1"}), GRID, progress=False)
    with pytest.raises(TypeError, match=r"output 'value' must be numeric"):
        run_sweep(lambda energy, gate: "high", GRID, progress=False)


def test_observable_errors_say_where_they_happened():
    def fails_at_high_gate(energy, gate):
        if gate > 1.5:
            raise ArithmeticError("diverges")
        return energy

    with pytest.raises(ArithmeticError, match="diverges") as caught:
        run_sweep(fails_at_high_gate, GRID, progress=False)
    if sys.version_info >= (3, 11):
        assert "while evaluating the sweep at {'energy': 0.1, 'gate': 2.0}" in (
            caught.value.__notes__
        )


def wire_transmission(energy, *, system):
    import mesoscopic as meso

    return meso.transmission(
        system, np.atleast_1d(energy), 1, 0, params={"disorder": 0.0, "seed": 0}
    )


def test_checkpoint_of_another_system_is_refused_even_without_pickling(tmp_path):
    # Model systems hold closures and cannot be pickled; their content digest still tells
    # a 4-wide wire from an 8-wide one, so a reused checkpoint is refused, not mixed.
    import mesoscopic as meso

    checkpoint = tmp_path / "wire"

    def sweep(width):
        return run_sweep(
            wire_transmission,
            {"energy": np.array([0.5, 1.0])},
            fixed_params={"system": meso.models.disordered_wire(width, 10)},
            batch_axis="energy",
            checkpoint=checkpoint,
            progress=False,
        )

    narrow = sweep(4)
    xr.testing.assert_equal(narrow, sweep(4))  # the same system built again resumes
    with pytest.raises(ValueError, match="belongs to a different sweep"):
        sweep(8)


@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="needs /proc")
def test_worker_processes_end_with_a_killed_driver(tmp_path):
    script = (
        "import time\n"
        "from mesoscopic import sweep\n"
        "def slow(x):\n"
        "    time.sleep(0.5)\n"
        "    return x\n"
        "if __name__ == '__main__':\n"
        "    sweep.run_sweep(slow, {'x': list(range(40))}, executor='processes', workers=2,\n"
        "                    chunk_size=2, progress=False)\n"
    )
    path = tmp_path / "driver.py"
    path.write_text(script)
    process = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.DEVNULL)

    def alive(pid: int) -> bool:
        try:
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def descendants(root: int) -> set[int]:
        parents = {}
        for entry in pathlib.Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = set(), {root}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
            found |= frontier
        return found

    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
            workers = {pid for pid in descendants(process.pid) if alive(pid)}
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers):
            left = [pid for pid in workers if alive(pid)]
            assert time.monotonic() < deadline, f"workers left behind: {left}"
            time.sleep(0.1)
    finally:
        process.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- the package's own layout -------------------------------------------------------------

#: The sibling modules each module of mesoscopic.sweep may import: dependencies point one
#: way (plan <- chunks <- executors <- run), and the checkpoint store knows no executor.
SWEEP_LAYERS = {
    "_observable": set(),
    "_plan": set(),
    "_memory": set(),
    "_chunks": {"_observable", "_plan"},
    "_fingerprint": {"_observable", "_plan"},
    "_dataset": {"_chunks", "_observable", "_plan"},
    "_checkpoint": {"_chunks", "_dataset", "_fingerprint"},
    "_executors": {"_chunks", "_observable", "_plan"},
    "_run": {
        "_checkpoint",
        "_chunks",
        "_dataset",
        "_executors",
        "_fingerprint",
        "_memory",
        "_observable",
        "_plan",
    },
    "__init__": {"_executors", "_memory", "_observable", "_run"},
}


def test_sweep_modules_depend_one_way():
    import ast

    import mesoscopic.sweep

    package = pathlib.Path(mesoscopic.sweep.__file__).parent
    found = {}
    for path in sorted(package.glob("*.py")):
        siblings = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                # "from . import name" would import the package's __init__ from inside it.
                assert node.module is not None, f"{path.name} imports from the package itself"
                siblings.add(node.module)
        found[path.stem] = siblings
    assert set(found) == set(SWEEP_LAYERS)
    for module, siblings in found.items():
        assert siblings <= SWEEP_LAYERS[module], (module, siblings - SWEEP_LAYERS[module])


def test_sweep_keeps_its_names():
    # The public names, and the two that the meso command uses.
    import mesoscopic
    import mesoscopic.sweep as sweep

    assert mesoscopic.sweep is sweep
    assert sweep.__all__ == ["Observable", "Output", "run_sweep"]
    assert [getattr(sweep, name).__name__ for name in sweep.__all__] == sweep.__all__
    assert callable(sweep._check_memory)
    assert sweep.ExecutorName.__args__ == ("serial", "processes", "dask")


def test_output_attributes_reach_the_dataset_and_are_checked():
    def conductance(energy):
        return 2.0 * energy

    observable = Observable(
        conductance, outputs={"conductance": Output("e^2/h", attrs={"spin_degeneracy": 2})}
    )
    result = run_sweep(observable, {"energy": [0.1, 0.2]}, progress=False)
    assert result["conductance"].attrs["spin_degeneracy"] == 2
    assert result["conductance"].attrs["units"] == "e^2/h"
    with pytest.raises(ValueError, match="'units'"):
        Output("1", attrs={"units": "S"})
    with pytest.raises(TypeError, match="spin_degeneracy"):
        Output("1", attrs={"spin_degeneracy": [2]})
