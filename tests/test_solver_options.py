"""SolverOptions: the solver settings in one validated object, accepted by the batched entries."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.solvers import SolverOptions
from mesoscopic.solvers.options import solver_options


def wire(width: int = 3, length: int = 4) -> meso.System:
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = 4.0
    syst[lat(1, 1)] = 4.7
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def test_defaults_and_normalization():
    options = SolverOptions()
    assert (options.solver, options.device, options.workers) == ("auto", "cpu", 1)
    assert options.chunk_size is options.memory_limit is options.blas_threads is None
    made = SolverOptions(device="CPU", workers=np.int64(2), chunk_size=np.int32(8))
    assert made.device == "cpu"
    assert type(made.workers) is int and type(made.chunk_size) is int
    assert SolverOptions(memory_limit=2**30).memory_limit == float(2**30)


def test_frozen_hashable_and_picklable():
    options = SolverOptions(solver="rgf", workers=2, chunk_size=16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(options)) == options
    assert hash(options) == hash(SolverOptions(solver="rgf", workers=2, chunk_size=16))
    changed = options.replace(workers=1)
    assert changed.workers == 1 and options.workers == 2
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        options.replace(workers=0)
    with pytest.raises(TypeError, match="no setting 'threads'"):
        options.replace(threads=2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"solver": "mumps"}, r"solver must be one of \('auto', 'rgf', 'sparse'\), got 'mumps'"),
        ({"device": "tpu"}, r"device must be one of \('cpu', 'gpu'\), got 'tpu'"),
        ({"solver": "sparse", "device": "gpu"}, "solver='sparse' runs on the CPU only"),
        ({"workers": 2, "device": "gpu"}, "workers > 1 runs processes on the CPU"),
        ({"workers": 0}, "workers must be a positive integer, got 0"),
        ({"workers": True}, "workers must be a positive integer, got True"),
        ({"workers": 1.5}, "workers must be a positive integer, got 1.5"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer or None, got 0"),
        ({"blas_threads": -1}, "blas_threads must be a positive integer or None, got -1"),
        ({"memory_limit": 0}, "memory_limit must be a positive, finite number of bytes"),
        ({"memory_limit": float("inf")}, "memory_limit must be a positive, finite number"),
        ({"memory_limit": "1GB"}, r"memory_limit .* got '1GB'"),
    ],
)
def test_bad_settings_are_refused_once_with_the_value(settings, message):
    with pytest.raises((TypeError, ValueError), match=message):
        SolverOptions(**settings)
    # The batched entries refuse the same settings given as keywords, with the same words.
    with pytest.raises((TypeError, ValueError), match=message):
        batch.transmission(wire(), [1.0], **settings)


def test_options_or_keywords_not_both():
    fsys = wire()
    with pytest.raises(TypeError, match=r"either as options=.* not both; got options and solver"):
        batch.transmission(fsys, [1.0], options=SolverOptions(), solver="rgf")
    with pytest.raises(TypeError, match="not both; got options and workers=2"):
        batch.smatrices(fsys, [1.0], options={"solver": "rgf"}, workers=2)
    with pytest.raises(TypeError, match=r"options must be a mesoscopic\.solvers\.SolverOptions"):
        batch.transmission(fsys, [1.0], options="rgf")
    with pytest.raises(TypeError, match="options has no setting 'threads'"):
        batch.transmission(fsys, [1.0], options={"threads": 2})
    with pytest.raises(TypeError, match="unknown solver setting 'gpu'"):
        solver_options(gpu=True)


@pytest.mark.parametrize("solver", ["rgf", "sparse"])
def test_options_and_keywords_run_the_same_solver(solver):
    fsys = wire()
    energies = np.linspace(0.3, 3.5, 7)
    by_keywords: dict = {}
    by_options: dict = {}
    by_mapping: dict = {}
    expected = batch.transmission(fsys, energies, solver=solver, chunk_size=3, stats=by_keywords)
    options = SolverOptions(solver=solver, chunk_size=3)
    got = batch.transmission(fsys, energies, options=options, stats=by_options)
    mapped = batch.smatrices(
        fsys, energies, options={"solver": solver, "chunk_size": 3}, stats=by_mapping
    )
    assert by_keywords["solver"] == by_options["solver"] == by_mapping["solver"] == solver
    assert by_options["sparse_fallback_energies"] == 0
    if solver == "rgf":
        assert by_options["chunk_size"] == 3
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(mapped.transmission_matrix(), expected, atol=1e-12)
