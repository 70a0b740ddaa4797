"""The RGF solver on a CUDA GPU through CuPy: the CPU suite's agreement checks, on the device.

Skipped, with the reason, where CuPy or a CUDA device is missing; test_rgf.py covers the same
algorithm with NumPy.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'mesoscopic[gpu]')")

try:
    _DEVICES = cupy.cuda.runtime.getDeviceCount()
except Exception as exc:  # CUDA driver or runtime missing
    pytest.skip(f"CuPy cannot reach a CUDA device: {exc}", allow_module_level=True)
if _DEVICES < 1:
    pytest.skip("CuPy sees no CUDA device", allow_module_level=True)

import mesoscopic as meso  # noqa: E402
from mesoscopic import analytic, batch  # noqa: E402
from mesoscopic.leads import _selfenergy_at_energy as selfenergy  # noqa: E402
from mesoscopic.solvers import rgf  # noqa: E402
from reference.systems import SYSTEMS  # noqa: E402

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "reference" / "kwant_reference.json").read_text()
)


def disordered_wire(width, length, strength, seed):
    values = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(length, width))
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = lambda site: (
        4.0 + strength * values[site.tag]
    )
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_kwant_reference_systems_on_the_gpu(name):
    fsys, params, energies = SYSTEMS[name](meso)
    stored = REFERENCE["systems"][name]["results"]
    t_gpu = batch.transmission(fsys, energies, params=params, solver="rgf", device="gpu")
    s_gpu = batch.smatrices(fsys, energies, params=params, solver="rgf", device="gpu")
    s_cpu = batch.smatrices(fsys, energies, params=params, solver="sparse")
    for k, entry in enumerate(stored):
        np.testing.assert_allclose(t_gpu[k], entry["transmission"], rtol=0, atol=1e-8)
        np.testing.assert_allclose(s_gpu[k].data, s_cpu[k].data, rtol=0, atol=1e-10)
    np.testing.assert_allclose(t_gpu, s_cpu.transmission_matrix(), rtol=0, atol=1e-10)
    assert s_gpu.check_unitarity().max() < 1e-10


def test_gpu_equals_cpu_on_a_disordered_wire_batch():
    fsys = disordered_wire(16, 40, strength=2.0, seed=4)
    energies = np.linspace(0.1, 2.5, 37)
    cpu = batch.transmission(fsys, energies, solver="rgf")
    gpu = batch.transmission(fsys, energies, solver="rgf", device="gpu")
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-10)
    chunked = batch.transmission(fsys, energies, solver="rgf", device="gpu", chunk_size=5)
    np.testing.assert_allclose(chunked, cpu, rtol=0, atol=1e-10)


def test_long_wire_with_a_tunnel_barrier_on_the_gpu():
    width, length, height, start, barrier = 20, 2000, 1.2, 800, 330
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.ArrayBuilder()
    syst.fill(
        lat,
        lambda pos: np.ones(len(pos), bool),
        ((0, 0), (length - 1, width - 1)),
        onsite=lambda s: (
            4.0 + height * ((s.tags[:, 0] >= start) & (s.tags[:, 0] < start + barrier))
        ),
    )
    syst.add_hoppings(lat.neighbors(), -1.0)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    energies = np.array([0.3, 0.4, 0.6])
    t = batch.transmission(syst.finalized(), energies, 1, 0, solver="rgf", device="gpu")
    transverse = 2 - 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    exact = sum(
        analytic.chain_barrier_transmission(energies - 2 - e_m, height, barrier)
        for e_m in transverse
    )
    np.testing.assert_allclose(t, exact, rtol=1e-8, atol=0)


def test_closed_form_selfenergy_on_the_device():
    h = 4 * np.eye(5) - (np.eye(5, k=1) + np.eye(5, k=-1))
    lead = rgf.closed_form_lead(h, -np.eye(5))
    energies = np.array([0.2, 1.1, 3.9, 8.5])
    sigma, _ = lead.selfenergy_diagonal(cupy, cupy.asarray(energies))
    u = lead.basis
    fast = np.einsum("ik,bk,jk->bij", u, cupy.asnumpy(sigma), u.conj())
    exact = np.array([selfenergy(h, -np.eye(5), e) for e in energies])
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-12)


def test_gpu_memory_budget_is_respected():
    fsys = disordered_wire(30, 10, strength=1.0, seed=1)
    with pytest.raises(MemoryError, match="one energy needs about"):
        batch.transmission(fsys, [1.0], solver="rgf", device="gpu", memory_limit=1e4)
    stats: dict = {}
    h = fsys.hamiltonian_submatrix(sparse=True)
    leads = meso.transport.lead_data(fsys)
    problem = rgf.prepare(h, leads)
    limit = 3.5 * problem.memory_per_energy()
    problem.transmission(np.linspace(0.5, 1.5, 10), device="gpu", memory_limit=limit, stats=stats)
    assert stats["chunk_size"] == 3 and stats["num_chunks"] == 4
