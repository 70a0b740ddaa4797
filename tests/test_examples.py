"""Every gallery script runs (at reduced size where it allows) and shows its physics."""

from __future__ import annotations

import importlib
import pathlib
import sys

import numpy as np
import pytest

import mesoscopic as meso

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module", autouse=True)
def examples_on_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


def example(name):
    return importlib.import_module(name)


def test_every_script_is_covered():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    tested = {name[len("test_") :] for name in globals() if name.startswith("test_")}
    assert scripts <= tested, f"untested examples: {sorted(scripts - tested)}"


def test_qpc_staircase(tmp_path):
    data = example("qpc_staircase").main(str(tmp_path))
    assert (tmp_path / "qpc_staircase.nc").is_file() and (tmp_path / "qpc_staircase.png").is_file()
    g0 = data["conductance"].sel(kT=0.0).values  # units of 2e^2/h
    on_plateau = np.abs(g0 - np.round(g0)) < 0.01
    assert on_plateau.mean() > 0.4
    assert set(np.round(g0[on_plateau]).astype(int)) >= {1, 2, 3}
    hot = data["conductance"].sel(kT=data["kT"].values[-1]).values
    assert np.max(np.abs(np.diff(hot))) < np.max(np.abs(np.diff(g0)))  # thermal smearing


def test_four_probe(tmp_path):
    r = example("four_probe").main(tmp_path, num=5)
    t = r["transmission"]
    np.testing.assert_allclose(r["r_two_terminal"], 1 / t, rtol=1e-6)
    np.testing.assert_allclose(r["r_four_terminal"], 1 / t - 1, atol=1e-6 / t.min())
    np.testing.assert_allclose(r["r_two_terminal"] - r["r_four_terminal"], 1.0, atol=1e-5)


def test_onsager(tmp_path):
    r = example("onsager").main(tmp_path, num=5)
    assert r["two_terminal_asymmetry"] < 1e-10
    assert r["onsager_deviation"] < 1e-10
    assert r["four_terminal_asymmetry"] > 1e-2


def test_quantum_hall(tmp_path):
    r = example("quantum_hall").main(tmp_path, temperatures=(0.0, 0.1), fields=[2.3, 4.1, 6.0])
    # Panel (b): GaAs bar at n = 2e11 cm^-2; plateaus R_xy = h/(nu e^2) at nu = 4 and 2.
    np.testing.assert_allclose(
        r["filling"],
        2e15 * 6.62607015e-34 / 1.602176634e-19 / np.array([2.3, 4.1, 6.0]),
        rtol=1e-9,
    )
    b_xy, b_xx = r["field_curves"]
    np.testing.assert_allclose(b_xy, [1 / 4, 1 / 2, 1 / 2], atol=5e-3)
    assert np.max(np.abs(b_xx)) < 5e-3
    mu = r["mu"]
    middle = (mu > 0.85) & (mu < 1.0)  # middle of the first plateau
    r_xy, r_xx = r["curves"][0.0]
    # kT = 0 values come from a cubic interpolation of T_ij(E) on a 0.1 t grid.
    np.testing.assert_allclose(r_xy[middle], 1.0, atol=5e-3)
    assert np.max(np.abs(r_xx[middle])) < 5e-3
    hot_xy, _ = r["curves"][0.1]
    assert np.max(np.abs(hot_xy[middle] - 1)) > np.max(np.abs(r_xy[middle] - 1))


def test_graphene(tmp_path):
    r = example("graphene").main(tmp_path, num=6, widths=range(4, 10))
    assert r["armchair_channels"] == {n: int(n % 3 == 2) for n in range(4, 10)}
    assert r["zigzag_channels"] == {n: 1 for n in range(4, 10)}  # gapless at every width
    # Zigzag edges: one channel from E = 0.001 t up to the next subband (no gap at E = 0);
    # bearded edges (one bond per edge atom) are gapped there.
    assert r["energies"][0] <= 1e-3
    low = r["energies"] < 0.35
    np.testing.assert_allclose(r["zigzag"][low], 1.0, atol=1e-8)
    assert r["bearded"][0] < 1e-8


def test_btk_junction(tmp_path):
    data = example("btk_junction").main(str(tmp_path), num_energies=24)
    assert (tmp_path / "btk_junction.png").is_file()
    x, g = data["energy_over_gap"], data["conductance"]
    assert np.allclose(g[0, x < 0.9], 2.0, atol=1e-3)  # Andreev plateau at Z = 0
    assert np.max(np.abs(g - data["textbook"])) < 2e-2  # lattice vs BTK at Delta = 0.01 t


def test_molecular_junction(tmp_path):
    r = example("molecular_junction").main(tmp_path, num_energies=40)
    assert (tmp_path / "molecular_junction.png").is_file()
    e, t = r["energies"], r["transmission"]
    zero = np.flatnonzero(e == 0.0)
    assert zero.size == 1
    assert t["meta"][zero[0]] < 1e-12  # meta antiresonance at the Fermi level
    np.testing.assert_allclose(t["para"][zero[0]], r["para_at_zero"], rtol=1e-12)
    np.testing.assert_allclose(t["ortho"][zero[0]], r["para_at_zero"], rtol=1e-12)
    gap = (np.abs(e) < 0.9) & (e != 0.0)
    assert np.all(t["meta"][gap] < t["para"][gap])  # destructive interference across the gap
    assert np.all(t["meta"][gap] > 0)  # a dip to zero at one energy, not a gap


def test_quantum_spin_hall(tmp_path):
    r = example("quantum_spin_hall").main(tmp_path, num=6, seeds=(1,))
    inside = np.abs(r["energies"]) < 0.2
    np.testing.assert_allclose(r["topological"][inside], 2.0, atol=1e-6)
    assert np.all(r["trivial"][inside] < 1e-6)
    assert np.all(r["disordered"][:, inside] > 1.9)


def test_disordered_wire(tmp_path):
    r = example("disordered_wire").main(tmp_path, samples=80)
    std0, std_b = r["std"]["B = 0"], r["std"]["B > 0"]
    assert 0.25 < std0 < 0.45  # UCF, sqrt(2/15) = 0.37 e^2/h
    assert std_b < std0  # the unitary ensemble fluctuates less, sqrt(1/15)
    assert r["mean"]["B > 0"] > r["mean"]["B = 0"]  # weak localization lifted by the field


def test_coulomb_blockade(tmp_path):
    path = example("coulomb_blockade").main(str(tmp_path))
    assert pathlib.Path(path).is_file()
    from mesoscopic import analytic, coulomb

    dot = coulomb.QuantumDot([0.0], [[0.001], [0.001]], charging_energy=1.0)
    for kT in (0.02, 0.04):
        g = coulomb.linear_conductance(dot, gate=0.5 + 0.0, kT=kT)
        g_peak = max(
            coulomb.linear_conductance(dot, gate=x, kT=kT) for x in np.linspace(0.3, 0.7, 401)
        )
        expected = analytic.sequential_tunneling_conductance(
            0.0, kT=kT, gamma_left=0.001, gamma_right=0.001, spin_degeneracy=1
        )
        assert g_peak == pytest.approx(expected, rel=1e-3)
        assert g <= g_peak


def test_shot_noise(tmp_path):
    path = example("shot_noise").main(tmp_path)
    assert pathlib.Path(path).is_file()
    from mesoscopic import noise

    mod = example("shot_noise")
    fsys = mod.chain(3, lambda site: 0.0)
    s = meso.smatrix(fsys, 0.3)
    assert noise.fano_factor(s, 1, 0) == pytest.approx(
        0.0, abs=1e-10
    )  # a clean chain is noiseless


def test_mesoscopic_capacitor(tmp_path):
    mod = example("mesoscopic_capacitor")
    path = mod.main(tmp_path)
    assert pathlib.Path(path).is_file()
    from mesoscopic import capacitor

    dot = mod.quantum_dot()
    r_q = capacitor.charge_relaxation_resistance(
        dot, mod.FERMI_ENERGY, params={"gate": 0.0, "barrier": mod.barrier_for(0.4)}
    )
    assert r_q == pytest.approx(0.5, abs=1e-6)


def test_dephasing(tmp_path):
    mod = example("dephasing")
    assert pathlib.Path(mod.main(str(tmp_path))).is_file()
    from mesoscopic import dephasing

    # Ohmic growth: resistance (h/e^2) of a dephased chain is 1 + L / (2 l_phi).
    eta, energy = 0.1, 0.0
    resistances = []
    for length in (100, 140):
        fsys = mod.chain(length)
        t = dephasing.dephased_transmission(fsys, energy, range(length), eta=eta)
        resistances.append(1 / t[1, 0])
    slope = (resistances[1] - resistances[0]) / 40
    velocity = 2.0  # chain velocity at E = 0 (hopping 1)
    assert slope == pytest.approx(1 / (2 * velocity / eta), rel=1e-2)


def test_thermoelectric_qpc(tmp_path):
    mod = example("thermoelectric_qpc")
    assert pathlib.Path(mod.main(str(tmp_path))).is_file()
    from mesoscopic import thermoelectric

    fsys = mod.make_qpc()
    data = thermoelectric.thermoelectric_response(
        fsys, np.linspace(0.1, 0.9, 9), 0.01, params={"gate": 1.0}
    )
    assert bool(data.attrs["converged"])
    lorenz = data["lorenz"].values
    conductance = data["conductance"].values
    plateau = np.abs(conductance / 2 - np.round(conductance / 2)) < 1e-3
    if plateau.any():
        np.testing.assert_allclose(lorenz[plateau], np.pi**2 / 3, rtol=1e-2)
    assert np.all(data["thermal_conductance"].values >= 0)


def test_spin_valve(tmp_path):
    mod = example("spin_valve")
    assert pathlib.Path(mod.main(str(tmp_path))).is_file()
    from mesoscopic import spin

    polarization, tmr = mod.tmr_vs_polarization([0.3, 0.6])
    julliere = [spin.julliere_tmr(p, p) for p in polarization]
    np.testing.assert_allclose(tmr, julliere, rtol=0.05)


def test_qpc_zeeman(tmp_path):
    r = example("qpc_zeeman").main(tmp_path, num=66)
    split = r["conductance"][0.1]
    degenerate = r["conductance"][0.0]
    for odd in (1, 3, 5):
        assert np.any(np.abs(split - odd) < 0.05), f"no half plateau at {odd} e^2/h"
    on_integer = np.abs(degenerate - np.round(degenerate)) < 0.05
    assert np.all(np.round(degenerate[on_integer]).astype(int) % 2 == 0)


def test_tight_binding_resonance_is_breit_wigner_and_thermally_broadened():
    """The coherent side of the Coulomb-blockade comparison, on the lattice."""
    from scipy.optimize import minimize_scalar

    from mesoscopic import analytic, landauer

    fsys = meso.models.double_barrier(well=6, barrier=2)
    params = {"barrier_height": 3.0, "well_potential": 0.0}

    def t(e):
        return meso.smatrix(fsys, e, params=params).transmission(1, 0)

    grid = np.linspace(0.2, 1.2, 201)
    guess = grid[np.argmax(meso.transmission(fsys, grid, 1, 0, params=params))]
    level = minimize_scalar(lambda e: -t(e), bracket=(guess - 0.005, guess, guess + 0.005)).x
    assert t(level) == pytest.approx(1.0, abs=1e-8)
    # Width from the half-maximum points; the line shape is then Breit-Wigner.
    from scipy.optimize import brentq

    half = brentq(lambda e: t(e) - 0.5, level, level + 0.2)
    gamma = 2 * (half - level)
    for offset in (0.5, 1.0, 2.0):
        e = level + offset * gamma
        bw = analytic.breit_wigner_transmission(
            e, level=level, gamma_left=gamma / 2, gamma_right=gamma / 2
        )
        assert t(e) == pytest.approx(bw, rel=0.05)
    # kT >> Gamma: the coherent peak is thermally broadened, height x kT = pi Gamma / 8.
    kT = 10 * gamma
    energies = np.linspace(level - 40 * kT, level + 40 * kT, 801)
    energies = energies[(energies > -1.99) & (energies < 1.99)]
    fine = np.unique(np.concatenate([energies, level + gamma * np.linspace(-8, 8, 161)]))
    g = landauer.linear_conductance(
        fine, meso.transmission(fsys, fine, 1, 0, params=params), level, kT
    )
    assert g * kT == pytest.approx(np.pi * gamma / 8, rel=0.05)


def test_graphene_bulk_bands(tmp_path):
    r = example("graphene_bulk_bands").main(tmp_path, points_per_segment=12)
    assert (tmp_path / "graphene_bulk_bands.png").is_file()
    np.testing.assert_allclose(r["bands"], r["closed_form"], atol=1e-12)
    np.testing.assert_allclose(r["dirac_point_energies"], 0.0, atol=1e-12)  # the cone at K


def test_continuum_nanowire(tmp_path):
    pytest.importorskip("sympy", reason="the continuum extra (SymPy) is not installed")
    r = example("continuum_nanowire").main(tmp_path, num_energies=60)
    assert (tmp_path / "continuum_nanowire.png").is_file()
    e, low, high = r["energies"], *r["gap"]
    g_field = r["conductance"][0.15]
    inside = (e > low + 0.02) & (e < high - 0.02)
    assert inside.sum() > 5
    np.testing.assert_allclose(g_field[inside], 1.0, atol=1e-9)  # the half plateau
    above = e > high + 0.05
    np.testing.assert_allclose(g_field[above], 2.0, atol=1e-9)
    g_zero = r["conductance"][0.0]
    assert set(np.round(g_zero, 9)) <= {0.0, 2.0}  # spin-degenerate steps without field


def test_kpm_graphene_dos(tmp_path):
    r = example("kpm_graphene_dos").main(tmp_path, cells=120, num_moments=300)
    assert (tmp_path / "kpm_graphene_dos.png").is_file()
    e, clean, disordered = r["energies"], r["clean"], r["disordered"]
    # Sum rule: two states per unit cell (exact: the zeroth moment of unit-modulus vectors).
    assert r["integrals"]["clean"] == pytest.approx(2.0, rel=1e-12)
    assert r["integrals"]["disordered"] == pytest.approx(2.0, rel=1e-12)
    assert np.trapezoid(clean, e) == pytest.approx(2.0, rel=2e-3)
    # Dirac cones: the states within 0.3 t of E = 0, the integral of 2|E| / (sqrt(3) pi t^2)
    # (the band's curvature and the kernel's broadening add ~1%).
    window = np.abs(e) <= 0.3
    near_dirac = np.trapezoid(clean[window], e[window])
    assert near_dirac == pytest.approx(2 * 0.3**2 / (np.sqrt(3) * np.pi), rel=0.04)
    np.testing.assert_allclose(
        r["dirac_density"][window], 2 * np.abs(e[window]) / (np.sqrt(3) * np.pi)
    )
    # Van Hove peaks at |E| = t (to the kernel's resolution, ~ 3 pi t / num_moments).
    for side in (e > 0, e < 0):
        assert abs(abs(e[side][np.argmax(clean[side])]) - 1.0) < 0.03
    # Disorder fills the dip at the Dirac point and lowers the van Hove peaks.
    at_zero = np.argmin(np.abs(e))
    assert disordered[at_zero] > 2.5 * clean[at_zero]
    assert disordered.max() < 0.7 * clean.max()
