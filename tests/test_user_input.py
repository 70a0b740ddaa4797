"""Mistakes in user input come back as warnings or errors that say what is wrong.

A misspelt parameter name, a value function that raises or returns something that is
not a Hamiltonian block, and a dense matrix that cannot fit in memory.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import _checks, models
from mesoscopic.system import UnusedParameterWarning, UserCodeError


def chain_with_leads(onsite, hopping=-1.0, *, lead_onsite=0.0, length=4):
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(length))] = onsite
    syst[lat.neighbors()] = hopping
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = lead_onsite
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def square_with_leads(onsite, *, width=3, length=4):
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


@contextlib.contextmanager
def no_unused_parameter_warning():
    """A context in which an UnusedParameterWarning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedParameterWarning)
        yield


# --------------------------------------------------------------------------------------
# Parameters that no value function takes
# --------------------------------------------------------------------------------------


def test_misspelt_parameter_warns_naming_it_and_the_known_parameters():
    def onsite(site, gate):
        return gate

    fsys = chain_with_leads(onsite)
    assert issubclass(UnusedParameterWarning, UserWarning)
    with pytest.warns(UnusedParameterWarning) as record:
        s = meso.smatrix(fsys, 0.5, params={"gate": 0.0, "gaet": 0.3})
    message = str(record[0].message)
    assert "'gaet'" in message and "['gate']" in message and "did you mean 'gate'" in message
    # The warning points at the caller's line, not at the package's internals.
    assert record[0].filename == __file__
    # The unknown parameter is ignored: the result is that of the known ones alone.
    with no_unused_parameter_warning():
        reference = meso.smatrix(fsys, 0.5, params={"gate": 0.0})
    assert s.transmission(1, 0) == pytest.approx(reference.transmission(1, 0), abs=1e-14)


def test_unused_parameter_of_a_system_without_parameters():
    fsys = chain_with_leads(0.0)
    with pytest.warns(UnusedParameterWarning, match="'v'.*takes no parameters"):
        fsys.hamiltonian_submatrix(params={"v": 1.0})
    with pytest.warns(UnusedParameterWarning, match="'v'"):
        fsys.hamiltonian(0, 0, params={"v": 1.0})
    with pytest.warns(UnusedParameterWarning, match="'v'"):
        meso.transmission(fsys, [0.5], params={"v": 1.0})


def test_parameters_of_leads_flux_defaults_and_kwargs_are_known():
    def lead_onsite(site, v_lead):
        return v_lead

    def onsite(site, v, scale=1.0):
        return scale * v

    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(2))] = lead_onsite
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed().substituted(v_lead="v_right"))
    fsys = syst.finalized(magnetic_flux="phi")
    assert fsys.parameters == {"v", "scale", "v_lead", "v_right", "phi"}
    params = {"v": 0.1, "scale": 2.0, "v_lead": 0.0, "v_right": 0.2, "phi": 0.05}
    with no_unused_parameter_warning():
        meso.smatrix(fsys, 1.0, params=params)
        meso.transmission(fsys, [1.0, 1.5], params=params)
    with pytest.warns(UnusedParameterWarning, match="'v_left'"):
        meso.smatrix(fsys, 1.0, params={**params, "v_left": 0.0})

    # A value function that takes **kwargs takes every name: nothing is unused.
    kwargs_sys = chain_with_leads(lambda site, **params: params["v"])
    with no_unused_parameter_warning():
        kwargs_sys.hamiltonian_submatrix(params={"v": 1.0, "anything": 2.0})


def test_model_parameters_are_known():
    with no_unused_parameter_warning():
        fsys = models.quantum_point_contact(width=6, length=6)
        meso.smatrix(fsys, 0.5, params={"gate": 0.0, "confinement": 0.0})
        wire = models.disordered_wire(4, 6)
        meso.smatrix(wire, 1.0, params={"disorder": 1.0, "seed": 3})
    with pytest.warns(UnusedParameterWarning, match="'disorder_strength'.*'disorder'"):
        meso.smatrix(wire, 1.0, params={"disorder_strength": 1.0, "disorder": 1.0, "seed": 3})


# --------------------------------------------------------------------------------------
# Errors inside value functions
# --------------------------------------------------------------------------------------


def test_error_in_onsite_function_names_function_site_and_parameters():
    def onsite(site, v):
        return 1.0 / (v - float(site.pos[0]))

    fsys = chain_with_leads(onsite)
    with pytest.raises(UserCodeError) as info:
        meso.smatrix(fsys, 0.5, params={"v": 2.0})
    message = str(info.value)
    assert "test_user_input." in message and "onsite" in message
    assert f"{__file__}:" in message  # where the function is defined
    assert "ZeroDivisionError" in message
    assert "Site(" in message and "(2,)" in message and "position (2.0,)" in message
    assert "v=2.0" in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_error_in_hopping_function_names_both_sites():
    def hopping(a, b, t):
        if a.tag[0] + b.tag[0] == 5:
            raise RuntimeError("bad bond")
        return -t

    fsys = chain_with_leads(0.0, hopping)
    with pytest.raises(UserCodeError, match="RuntimeError: bad bond") as info:
        fsys.hamiltonian_submatrix(params={"t": 1.0})
    message = str(info.value)
    assert "hopping" in message and "(2,)" in message and "(3,)" in message
    assert "t=1.0" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_error_in_lead_function_and_in_vectorized_function():
    def lead_onsite(site, mu):
        return mu["value"]  # a number was given: TypeError

    fsys = chain_with_leads(0.0, lead_onsite=lead_onsite)
    with pytest.raises(UserCodeError, match=r"(?s)lead_onsite.*TypeError.*mu=0\.5"):
        meso.smatrix(fsys, 0.5, params={"mu": 0.5})

    def vectorized_onsite(sites, v):
        raise KeyError(v)

    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder(vectorize=True)
    syst[(lat(x) for x in range(5))] = vectorized_onsite
    syst[lat.neighbors()] = -1.0
    with pytest.raises(UserCodeError, match=r"5 site\(s\) of family") as info:
        syst.finalized().hamiltonian_submatrix(params={"v": "x"})
    assert "vectorized_onsite" in str(info.value) and "v='x'" in str(info.value)


def test_substituted_function_is_named_by_its_own_name():
    def barrier(site, height):
        raise ValueError("height out of range")

    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[lat(0)] = barrier
    renamed = syst.substituted(height="h1")
    with pytest.raises(UserCodeError, match=r"(?s)barrier.*ValueError: height out of range"):
        renamed.finalized().hamiltonian_submatrix(params={"h1": 3.0})


def test_our_own_errors_are_not_wrapped():
    fsys = chain_with_leads(lambda site, v: v)
    with pytest.raises(ValueError, match="missing parameter 'v'") as info:
        fsys.hamiltonian_submatrix(params={})
    assert not isinstance(info.value, UserCodeError)
    # A model's value function is package code: its refusal of a value stays a ValueError.
    wire = models.disordered_wire(4, 6)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        meso.smatrix(wire, 1.0, params={"disorder": 1.0, "seed": -1})


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1.0, 2.0], ValueError, r"has shape \(2,\), expected \(1, 1\)"),
        (float("nan"), ValueError, "is nan; values must be finite"),
        (np.array([[np.inf]]), ValueError, "contains NaN or inf"),
        ("four", TypeError, "must be a number or a matrix of numbers, got 'four'"),
        (None, TypeError, "got None \\(does the value function lack a return statement"),
        ({"v": 1}, TypeError, "must be a number or a matrix of numbers, got {'v': 1}"),
    ],
)
def test_bad_return_value_names_function_and_site(value, error, match):
    def onsite(site):
        return value if site.tag == (1, 1) else 4.0

    fsys = square_with_leads(onsite).finalized()
    with pytest.raises(error, match=match) as info:
        fsys.hamiltonian_submatrix()
    message = str(info.value)
    assert "Site(" in message and "(1, 1)" in message and "position (1.0, 1.0)" in message
    assert "onsite" in message and f"{__file__}:" in message


def test_bad_return_value_of_vectorized_function_names_function():
    def onsite(sites):
        values = np.full(len(sites.tags), 4.0)
        values[2] = np.nan
        return values

    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder(vectorize=True)
    syst[(lat(x) for x in range(4))] = onsite
    with pytest.raises(ValueError, match=r"onsite.*NaN or inf.*tag \[2\]"):
        syst.finalized().hamiltonian_submatrix()
    syst[(lat(x) for x in range(4))] = lambda sites: np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"<lambda>.*has shape \(3, 3\)"):
        syst.finalized().hamiltonian_submatrix()


# --------------------------------------------------------------------------------------
# Dense matrices that cannot fit in memory
# --------------------------------------------------------------------------------------


def test_dense_hamiltonian_of_a_million_orbitals_is_refused_before_allocation():
    lat = meso.lattice.chain(norbs=10)
    syst = meso.ArrayBuilder()
    syst.fill(lat, lambda pos: np.ones(len(pos), bool), ((0,), (99_999,)), onsite=np.eye(10))
    syst.add_hoppings(lat.neighbors(), -np.eye(10))
    fsys = syst.finalized()
    assert fsys.num_orbitals == 10**6
    # 16 bytes x 10^12 = 14.6 TiB, more than any machine's memory.
    with pytest.raises(MemoryError, match=r"needs 14\.6 TiB.*sparse=True"):
        fsys.hamiltonian_submatrix(sparse=False)


def test_dense_matrices_are_refused_beyond_the_available_memory(monkeypatch):
    fsys = square_with_leads(4.0, width=10, length=30).finalized()
    n = fsys.num_orbitals
    # A machine with 1 MiB of memory: the 300 x 300 dense matrix (1.4 MiB) does not fit.
    monkeypatch.setattr(_checks, "available_memory", lambda: 1 << 20)
    with pytest.raises(
        MemoryError, match=rf"\({n} x {n} complex numbers\) needs 1\.4 MiB"
    ) as info:
        fsys.hamiltonian_submatrix()
    assert "1.0 MiB of memory available" in str(info.value)
    assert fsys.hamiltonian_submatrix(sparse=True).shape == (n, n)
    # The lead's 10-orbital cell fits, a lead with a 300-orbital cell does not.
    assert fsys.leads[0].cell_hamiltonian().shape == (10, 10)
    lat = meso.lattice.square(norbs=1)
    wide = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    wide[(lat(0, y) for y in range(300))] = 4.0
    wide[lat.neighbors()] = -1.0
    with pytest.raises(MemoryError, match="fewer orbitals per unit cell"):
        wide.finalized().cell_hamiltonian()
    with pytest.raises(MemoryError, match="inter-cell hopping"):
        wide.finalized().hopping_away()
    # With the memory unknown nothing is refused.
    monkeypatch.setattr(_checks, "available_memory", lambda: None)
    assert fsys.hamiltonian_submatrix().shape == (n, n)


def test_memory_check_compares_with_a_fraction_of_the_available_memory(monkeypatch):
    available = _checks.available_memory()
    assert available is None or available > 0
    monkeypatch.setattr(_checks, "available_memory", lambda: 1000)
    _checks.memory(_checks.MEMORY_FRACTION * 1000, "a buffer")
    with pytest.raises(MemoryError, match="a buffer needs 801 B, more than 80% of the 1000 B"):
        _checks.memory(801, "a buffer")
    with pytest.raises(MemoryError, match="; use less"):
        _checks.memory(10**4, "a buffer", alternative="use less")
    assert _checks.format_bytes(3 * 2**30) == "3.0 GiB"


# --------------------------------------------------------------------------------------
# Lead bands: many momenta in bounded batches, clear errors for bad momenta
# --------------------------------------------------------------------------------------


def test_band_energies_in_batches_match_the_exact_bands(monkeypatch):
    width = 3
    lat = meso.lattice.square(norbs=1)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    bands = meso.physics.Bands(lead.finalized())
    momenta = np.linspace(-np.pi, np.pi, 11)
    transverse = 2 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
    exact = np.sort(4 - 2 * np.cos(momenta)[:, None] - transverse[None, :], axis=1)
    # Batches of 2 momenta (2 x 3 x 3 complex numbers each): six batches, the last one short.
    monkeypatch.setattr(meso.physics, "_BATCH_BYTES", 2 * 16 * width * width)
    np.testing.assert_allclose(bands.energies(momenta), exact, atol=1e-12)
    np.testing.assert_allclose(bands(float(momenta[3])), exact[3], atol=1e-12)
    assert bands.energies([]).shape == (0, width)
    with pytest.raises(TypeError, match="momenta must be a real number or array"):
        bands.energies(["a"])
    with pytest.raises(ValueError, match="momenta must be finite"):
        bands.energies([0.0, np.nan])
    with pytest.raises(TypeError, match=r"one momentum .* shape \(2,\); use Bands.energies"):
        bands([0.0, 1.0])


def test_bond_currents_refuse_states_that_are_not_wave_functions():
    fsys = chain_with_leads(0.0)
    n = fsys.num_orbitals
    psi = meso.wave_function(fsys, 0.5)(0)
    # Current conservation along the chain: every bond carries the transmitted current.
    currents = meso.bond_currents(fsys, psi)
    np.testing.assert_allclose(np.abs(currents), 1.0, atol=1e-10)
    with pytest.raises(TypeError, match="state must be an array of complex amplitudes"):
        meso.bond_currents(fsys, ["a"] * n)
    with pytest.raises(ValueError, match=r"\(n_states, n_orbitals\), got \(1, 1, 4\)"):
        meso.bond_currents(fsys, np.zeros((1, 1, n)))
    with pytest.raises(ValueError, match="state contains NaN or inf"):
        meso.bond_currents(fsys, np.full(n, np.nan))
    with pytest.raises(TypeError, match="needs a finalized system"):
        meso.bond_currents(object(), psi)


def test_hermiticity_check_of_value_functions_is_relative_to_the_energy_unit():
    """A 2x2 onsite value function in Hartree-sized or 1e-15-sized units is checked alike."""
    lat = meso.lattice.chain(norbs=2)

    def system(scale, asymmetry):
        syst = meso.Builder()
        syst[lat(0)] = lambda site: scale * np.array([[1.0, 1.0 + asymmetry], [1.0, -1.0]])
        return syst.finalized()

    # Rounding-sized asymmetry at a large scale is accepted ...
    system(1e6, 1e-14).hamiltonian_submatrix()
    # ... and a real asymmetry at a tiny scale is refused.
    with pytest.raises(ValueError, match="not Hermitian"):
        system(1e-15, 0.5).hamiltonian_submatrix()


def test_one_rule_for_the_spin_degeneracy_everywhere():
    """System, SMatrix, landauer, network, noise and the closed forms accept and refuse alike."""
    from mesoscopic import analytic, landauer, network, noise

    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(i) for i in range(2))] = 0.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    s = meso.smatrix(syst.finalized(), 0.5)
    T = np.array([[0.0, 1.0], [1.0, 0.0]])
    uses = {
        "System": lambda g: syst.finalized(spin_degeneracy=g).spin_degeneracy,
        "SMatrix": lambda g: s.conductance_matrix(spin_degeneracy=g)[0, 0],
        "landauer": lambda g: landauer.linear_conductance(
            None, lambda e: 1.0 + 0 * e, 0.0, 0.0, spin_degeneracy=g
        ),
        "network": lambda g: network.conductance_matrix(T, spin_degeneracy=g)[0, 0],
        "noise": lambda g: noise.shot_noise_matrix(s, mu=[0.1, 0.0], spin_degeneracy=g)[0, 0],
        "analytic": lambda g: analytic.hard_wall_conductance(
            100.0, 10.0, effective_mass=0.067, spin_degeneracy=g
        ),
    }
    for name, use in uses.items():
        assert np.all(np.asarray(use(2.0)) == np.asarray(use(2))), name
        for bad in (1.5, 3, 0, True, "2"):
            with pytest.raises(ValueError, match=r"spin_degeneracy must be 1 .* or 2 "):
                use(bad)
