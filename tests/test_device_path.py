"""The GPU's code path of the recursive Green's functions, run on the CPU.

``device="gpu"`` runs the recursion with CuPy as the array module ``xp``. Here a stand-in
module that forwards to NumPy plays CuPy's part (``asnumpy``, ``cuda.runtime``), so every
branch taken for a device (``xp is not numpy``: batched inverses with their conditioning
test, dense couplings on the device, closed-form self-energies on the device, copies to and
from the host) runs in the CPU test suite and must give the CPU's numbers.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import batch
from mesoscopic.solvers import _backend, rgf
from reference.systems import SYSTEMS, make_spin_orbit_wire


class NumpyDevice(types.ModuleType):
    """NumPy under another name, with the parts of CuPy's interface the solvers use."""

    def __init__(self) -> None:
        super().__init__("numpy_device")
        runtime = types.SimpleNamespace(
            memGetInfo=lambda: (4 << 30, 8 << 30), getDeviceCount=lambda: 1
        )
        self.cuda = types.SimpleNamespace(runtime=runtime)
        self.used = 0

    def __getattr__(self, name: str):
        return getattr(np, name)

    def asnumpy(self, array):
        return np.asarray(array)

    def asarray(self, array, *args, **kwargs):
        self.used += 1
        return np.asarray(array, *args, **kwargs)


@pytest.fixture
def device(monkeypatch):
    module = NumpyDevice()
    original = _backend.array_module

    def array_module(name):
        return module if _backend.check_device(name) == "gpu" else original(name)

    monkeypatch.setattr(_backend, "array_module", array_module)
    return module


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_reference_systems_on_the_device_path(device, name):
    fsys, params, energies = SYSTEMS[name](meso)
    cpu = batch.smatrices(fsys, energies, params=params, solver="rgf")
    stats: dict = {}
    dev = batch.smatrices(fsys, energies, params=params, solver="rgf", device="gpu", stats=stats)
    assert device.used > 0 and stats["solver"] == "rgf"
    for a, b in zip(cpu, dev, strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-11)


def test_transmission_and_parameter_batches_on_the_device_path(device):
    fsys, params, energies = make_spin_orbit_wire(meso, width=30, length=6)
    elements = [dict(params, alpha=a) for a in (0.1, 0.3, 0.5)]
    cpu = batch.transmission(fsys, energies, 1, 0, params=elements, solver="rgf")
    dev = batch.transmission(fsys, energies, 1, 0, params=elements, solver="rgf", device="gpu")
    np.testing.assert_allclose(dev, cpu, rtol=0, atol=1e-11)


def test_a_singular_slice_on_the_device_path_goes_to_the_sparse_solver(device):
    ribbon = meso.models.graphene_ribbon(8, 10.0, edge="armchair")
    params = {"potential": 0.0}
    expected = batch.transmission(ribbon, [0.0, 0.1, 0.3], params=params, solver="sparse")
    stats: dict = {}
    t = batch.transmission(
        ribbon, [0.0, 0.1, 0.3], params=params, solver="rgf", device="gpu", stats=stats
    )
    np.testing.assert_allclose(t, expected, atol=1e-12)
    assert stats["sparse_fallback_energies"] == 1


def test_workers_and_threads_are_for_the_cpu(device):
    fsys, params, energies = SYSTEMS[sorted(SYSTEMS)[0]](meso)
    with pytest.raises(ValueError, match="workers"):
        batch.transmission(fsys, energies, params=params, device="gpu", workers=2)
    stats: dict = {}
    batch.transmission(fsys, energies, params=params, solver="rgf", device="gpu", stats=stats)
    assert stats["threads"] == 1
    assert rgf.default_threads() >= 1
