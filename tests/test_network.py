"""Tests of mesoscopic.network: Büttiker circuits, probes, resistances, Onsager relations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoscopic import network as nw
from mesoscopic.landauer import fermi_dirac

# A grid too narrow or a T that loses current would silently spoil the comparisons below.
pytestmark = [
    pytest.mark.filterwarnings("error::mesoscopic.network.EnergyGridWarning"),
    pytest.mark.filterwarnings("error::mesoscopic.network.CurrentConservationWarning"),
]

# --------------------------------------------------------------------------------------------
# Random scattering matrices
# --------------------------------------------------------------------------------------------


def random_unitary(size: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random unitary from the QR decomposition of a complex Gaussian matrix."""
    gaussian = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / np.sqrt(2)
    q, r = np.linalg.qr(gaussian)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def block_transmission(smatrix: np.ndarray, channels: list[int]) -> np.ndarray:
    """T[..., i, j] = sum |S_ij|^2 over the channel blocks of terminals i and j."""
    edges = np.cumsum([0, *channels])
    n = len(channels)
    probability = np.abs(smatrix) ** 2
    out = np.empty((*smatrix.shape[:-2], n, n))
    for i, j in itertools.product(range(n), repeat=2):
        block = probability[..., edges[i] : edges[i + 1], edges[j] : edges[j + 1]]
        out[..., i, j] = block.sum(axis=(-2, -1))
    return out


def smooth_transmission(
    energies: np.ndarray, channels: list[int], seed: int, *, rate: tuple[float, float] = (1, 3)
) -> np.ndarray:
    """Energy-dependent T(E) of a unitary S(E) = U1 exp(i phi E) U2, smooth on the scale 1/3."""
    rng = np.random.default_rng(seed)
    size = sum(channels)
    first, second = random_unitary(size, rng), random_unitary(size, rng)
    phase = np.exp(1j * np.outer(energies, rng.uniform(*rate, size)))
    smatrix = np.einsum("ij,ej,jk->eik", first, phase, second)
    return block_transmission(smatrix, channels)


channel_lists = st.lists(st.integers(min_value=1, max_value=3), min_size=2, max_size=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
# Derandomized, so that every run draws the same examples.
property_settings = settings(max_examples=50, deadline=None, derandomize=True)


def trapezoid_weights(energies: np.ndarray) -> np.ndarray:
    steps = np.diff(energies)
    weights = np.zeros(energies.size)
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    return weights


# --------------------------------------------------------------------------------------------
# Properties over random unitary S-matrices
# --------------------------------------------------------------------------------------------


@property_settings
@given(channels=channel_lists, seed=seeds)
def test_rows_and_columns_of_G_sum_to_zero(channels, seed):
    rng = np.random.default_rng(seed)
    T = block_transmission(random_unitary(sum(channels), rng), channels)
    G = nw.conductance_matrix(T)
    np.testing.assert_allclose(G.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(G.sum(axis=0), 0.0, atol=1e-12)
    # The diagonal counts the channels not reflected: G_ii = N_i - T_ii.
    np.testing.assert_allclose(np.diag(G), np.array(channels) - np.diag(T), atol=1e-12)


@property_settings
@given(channels=channel_lists, seed=seeds)
def test_dissipated_power_is_never_negative(channels, seed):
    rng = np.random.default_rng(seed)
    T = block_transmission(random_unitary(sum(channels), rng), channels)
    G = nw.conductance_matrix(T)
    voltages = rng.normal(size=(20, len(channels)))
    power = np.einsum("bi,ij,bj->b", voltages, G, voltages)
    assert np.all(power >= -1e-12)
    assert np.linalg.eigvalsh((G + G.T) / 2).min() >= -1e-12
    # The same power through the circuit solver, with the voltages imposed everywhere.
    solution = nw.solve(G, voltages=dict(enumerate(voltages.T)))
    np.testing.assert_allclose(solution.power, power, atol=1e-12)


@property_settings
@given(channels=channel_lists, seed=seeds)
def test_symmetric_S_gives_reciprocal_G(channels, seed):
    rng = np.random.default_rng(seed)
    u = random_unitary(sum(channels), rng)
    symmetric = u @ u.T  # symmetric and unitary: a time-reversal invariant conductor
    G = nw.conductance_matrix(block_transmission(symmetric, channels))
    np.testing.assert_allclose(G, G.T, atol=1e-12)
    assert nw.check_onsager(G, G, atol=1e-12).ok


@property_settings
@given(channels=channel_lists, seed=seeds)
def test_four_terminal_resistances_obey_onsager_casimir(channels, seed):
    rng = np.random.default_rng(seed)
    smatrix = random_unitary(sum(channels), rng)
    G_plus = nw.conductance_matrix(block_transmission(smatrix, channels))
    G_minus = nw.conductance_matrix(block_transmission(smatrix.T, channels))  # S(-B) = S(B)^T
    assert nw.check_onsager(G_plus, G_minus, atol=1e-12)
    n = len(channels)
    i, j = rng.choice(n, size=2, replace=False)
    k, m = rng.choice(n, size=2, replace=False)
    forward = nw.four_terminal_resistance(G_plus, current=(i, j), voltage=(k, m))
    backward = nw.four_terminal_resistance(G_minus, current=(k, m), voltage=(i, j))
    np.testing.assert_allclose(forward, backward, rtol=1e-9, atol=1e-9)
    # Every pair at once, from the resistance matrices grounded at terminal 0.
    R_plus = nw.resistance_matrix(G_plus, ground=0)
    R_minus = nw.resistance_matrix(G_minus, ground=0)

    def four_terminal(R, a, b, c, d):
        return R[c, a] - R[c, b] - R[d, a] + R[d, b]

    for a, b, c, d in itertools.product(range(n), repeat=4):
        np.testing.assert_allclose(
            four_terminal(R_plus, a, b, c, d),
            four_terminal(R_minus, c, d, a, b),
            rtol=1e-8,
            atol=1e-8,
        )


@property_settings
@given(channels=channel_lists, seed=seeds)
def test_current_bias_inverts_voltage_bias(channels, seed):
    rng = np.random.default_rng(seed)
    n = len(channels)
    G = nw.conductance_matrix(block_transmission(random_unitary(sum(channels), rng), channels))
    voltages = rng.normal(size=n)
    voltages[0] = 0.0
    forward = nw.solve(G, voltages=dict(enumerate(voltages)))
    np.testing.assert_allclose(forward.currents, G @ voltages, atol=1e-14)
    backward = nw.solve(
        G, voltages={0: 0.0}, currents={t: forward.currents[t] for t in range(1, n)}
    )
    np.testing.assert_allclose(backward.voltages, voltages, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(backward.currents, forward.currents, atol=1e-10)


@property_settings
@given(
    channels=st.lists(st.integers(min_value=1, max_value=3), min_size=3, max_size=6), seed=seeds
)
def test_eliminating_probes_equals_floating_them(channels, seed):
    rng = np.random.default_rng(seed)
    n = len(channels)
    T = block_transmission(random_unitary(sum(channels), rng), channels)
    n_probes = int(rng.integers(1, n - 1))
    probes = sorted(rng.choice(n, size=n_probes, replace=False).tolist())
    kept = [t for t in range(n) if t not in probes]
    T_eff = nw.eliminate_probes(T, probes)
    G_eff = nw.conductance_matrix(T_eff)
    # The effective network still conserves current and every channel it had.
    np.testing.assert_allclose(G_eff.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(T_eff.sum(axis=1), np.array(channels)[kept], atol=1e-12)
    voltages = rng.normal(size=len(kept))
    floating = nw.solve(nw.conductance_matrix(T), voltages=dict(zip(kept, voltages, strict=True)))
    np.testing.assert_allclose(floating.currents[kept], G_eff @ voltages, atol=1e-10)
    np.testing.assert_allclose(floating.currents[probes], 0.0, atol=1e-14)


# --------------------------------------------------------------------------------------------
# Exact results
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 0.3, 1e-3])
def test_two_terminal_conductance_is_the_transmission(t):
    T = np.array([[1 - t, t], [t, 1 - t]])
    np.testing.assert_allclose(nw.conductance_matrix(T), [[t, -t], [-t, t]], rtol=1e-15)
    np.testing.assert_allclose(
        nw.conductance_matrix(T, spin_degeneracy=2), [[2 * t, -2 * t], [-2 * t, 2 * t]]
    )
    assert nw.two_terminal_resistance(nw.conductance_matrix(T), 0, 1) == pytest.approx(1 / t)
    solution = nw.solve(nw.conductance_matrix(T), voltages={0: 1.0, 1: 0.0})
    np.testing.assert_allclose(solution.currents, [t, -t], rtol=1e-15)


def test_one_probe_reproduces_buttiker_dephasing_formula():
    # Terminals 1 and 2 of the formula are 0 and 1 here; the probe f is terminal 2.
    rng = np.random.default_rng(7)
    T = block_transmission(random_unitary(6, rng), [2, 3, 1])
    expected_10 = T[1, 0] + T[2, 0] * T[1, 2] / (T[0, 2] + T[1, 2])
    expected_01 = T[0, 1] + T[2, 1] * T[0, 2] / (T[0, 2] + T[1, 2])
    T_eff = nw.eliminate_probes(T, [2])
    assert T_eff[1, 0] == pytest.approx(expected_10, rel=1e-13)
    assert T_eff[0, 1] == pytest.approx(expected_01, rel=1e-13)


def test_one_probe_formula_in_exact_fractions():
    # Symmetric (hence current-conserving) T with simple fractions.
    T = np.array([[0.0, 0.5, 0.25], [0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    T_eff = nw.eliminate_probes(T, 2)
    assert T_eff[1, 0] == pytest.approx(0.5 + 0.25 * 0.25 / 0.5, rel=1e-15)
    assert T_eff[0, 0] == pytest.approx(0.0 + 0.25 * 0.25 / 0.5, rel=1e-15)


def test_eliminate_probes_is_batched_over_energies():
    energies = np.linspace(-1, 1, 7)
    T = smooth_transmission(energies, [1, 2, 1, 1], seed=3)
    batched = nw.eliminate_probes(T, [1, 3])
    for k in range(energies.size):
        np.testing.assert_allclose(batched[k], nw.eliminate_probes(T[k], [1, 3]), rtol=1e-14)


def hall_bar(channels: float = 1.0) -> np.ndarray:
    """Six terminals 0..5 along one chiral edge: T[i + 1, i] = channels."""
    return channels * np.roll(np.eye(6), 1, axis=0)


@pytest.mark.parametrize("n_edge", [1, 2, 3, 4])
def test_perfect_quantum_hall_bar(n_edge):
    # Terminals 0 (source), 1, 2 on one edge, 3 (drain), 4, 5 on the other edge.
    G = nw.conductance_matrix(hall_bar(n_edge))
    r_xy = nw.hall_resistance(G, current=(0, 3), voltage=(1, 5))
    r_xx = nw.four_terminal_resistance(G, current=(0, 3), voltage=(1, 2))
    assert r_xy == pytest.approx(1 / n_edge, rel=1e-14)
    assert r_xx == pytest.approx(0.0, abs=1e-14)
    assert nw.two_terminal_resistance(G, 0, 3) == pytest.approx(1 / n_edge, rel=1e-14)
    # Reversing the field reverses the chirality, T(-B) = T(B)^T, and the Hall voltage.
    G_reversed = nw.conductance_matrix(hall_bar(n_edge).T)
    r_xy_reversed = nw.hall_resistance(G_reversed, current=(0, 3), voltage=(1, 5))
    assert r_xy_reversed == pytest.approx(-1 / n_edge, rel=1e-14)
    assert nw.check_onsager(G, G_reversed, atol=0.0).ok


@pytest.mark.parametrize("transmission", [1.0, 0.7, 0.25, 0.01])
def test_four_probe_resistance_of_a_scatterer_is_one_over_T_minus_one(transmission):
    # One chiral channel around a Hall bar (0 source, 1-2 top, 3 drain, 4-5 bottom) with a
    # point contact between the top and bottom pairs transmitting `transmission`: the four-
    # terminal resistance of the scatterer alone is h/e^2 (1/T - 1), the two-terminal one 1/T.
    t = transmission
    T = np.zeros((6, 6))
    T[1, 0] = T[3, 2] = T[4, 3] = T[0, 5] = 1.0
    T[2, 1] = T[5, 4] = t
    T[5, 1] = T[2, 4] = 1 - t
    G = nw.conductance_matrix(T)
    r_4t = nw.four_terminal_resistance(G, current=(0, 3), voltage=(1, 2))
    assert r_4t == pytest.approx(1 / t - 1, rel=1e-12, abs=1e-14)
    assert nw.two_terminal_resistance(G, 0, 3) == pytest.approx(1 / t, rel=1e-12)
    assert nw.hall_resistance(G, current=(0, 3), voltage=(1, 5)) == pytest.approx(1.0, rel=1e-12)
    # Spin-degenerate channels halve every resistance.
    G2 = nw.conductance_matrix(T, spin_degeneracy=2)
    r_4t_2 = nw.four_terminal_resistance(G2, current=(0, 3), voltage=(1, 2))
    assert r_4t_2 == pytest.approx((1 / t - 1) / 2, rel=1e-12, abs=1e-14)


def test_resistance_matrix_agrees_with_four_terminal_resistance():
    rng = np.random.default_rng(11)
    G = nw.conductance_matrix(block_transmission(random_unitary(8, rng), [2, 1, 2, 1, 2]))
    R = nw.resistance_matrix(G, ground=2)
    assert np.all(R[2] == 0) and np.all(R[:, 2] == 0)
    for i, j, k, m in [(0, 1, 3, 4), (4, 0, 1, 2), (3, 2, 0, 3)]:
        expected = R[k, i] - R[k, j] - R[m, i] + R[m, j]
        result = nw.four_terminal_resistance(G, current=(i, j), voltage=(k, m))
        assert result == pytest.approx(expected, rel=1e-10)


def test_solve_is_batched_and_broadcasts_given_values():
    energies = np.linspace(-1, 1, 9)
    G = nw.conductance_matrix(smooth_transmission(energies, [1, 1, 2, 1], seed=5))
    bias = np.linspace(0.5, 1.5, energies.size)
    batched = nw.solve(G, voltages={0: bias, 1: 0.0}, currents={3: 0.1})
    assert batched.voltages.shape == batched.currents.shape == (energies.size, 4)
    for k in range(energies.size):
        single = nw.solve(G[k], voltages={0: bias[k], 1: 0.0}, currents={3: 0.1})
        np.testing.assert_allclose(batched.voltages[k], single.voltages, rtol=1e-13)
        np.testing.assert_allclose(batched.currents[k], single.currents, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        np.einsum("eij,ej->ei", G, batched.voltages), batched.currents, atol=1e-13
    )
    np.testing.assert_allclose(batched.currents[:, 2], 0.0, atol=1e-14)  # floating
    np.testing.assert_allclose(batched.currents.sum(axis=-1), 0.0, atol=1e-13)
    resistances = nw.four_terminal_resistance(G, current=(0, 1), voltage=(2, 3))
    assert resistances.shape == (energies.size,)


# --------------------------------------------------------------------------------------------
# Onsager check as a user-facing testing helper
# --------------------------------------------------------------------------------------------


def test_check_onsager_reports_the_worst_element():
    T = np.roll(np.eye(4), 1, axis=0)
    broken = T.T.copy()
    broken[2, 1] += 0.01
    result = nw.check_onsager(T, broken)
    assert not result.ok and not result
    assert result.max_deviation == pytest.approx(0.01)
    assert result.worst == (1, 2)
    assert "is violated" in str(result)
    with pytest.raises(AssertionError, match=r"largest deviation 0\.01 at i=1, j=2"):
        nw.check_onsager(T, broken, raise_on_failure=True)
    batched = nw.check_onsager(np.stack([T, T]), np.stack([T.T, broken]))
    assert batched.worst == (1, 1, 2)
    assert nw.check_onsager(T, broken, atol=0.02).ok


def test_check_onsager_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nw.check_onsager(np.eye(3), np.eye(4))


# --------------------------------------------------------------------------------------------
# Errors are for people
# --------------------------------------------------------------------------------------------


def test_current_conservation_warning_names_the_terminal():
    T = np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.2, 0.0]])
    with pytest.warns(nw.CurrentConservationWarning, match=r"column 1 .* sums to 0\.3"):
        nw.conductance_matrix(T)
    with pytest.warns(nw.CurrentConservationWarning, match=r"batch index \(1,\)"):
        nw.conductance_matrix(np.stack([np.eye(3), T]))


def test_solve_errors_are_clear():
    G = nw.conductance_matrix(np.roll(np.eye(4), 1, axis=0))
    with pytest.raises(ValueError, match=r"no terminal has a given voltage.*ground one terminal"):
        nw.solve(G, currents={0: 1.0})
    with pytest.raises(
        ValueError, match=r"terminal in voltages 5 does not exist; valid .* 0\.\.3"
    ):
        nw.solve(G, voltages={5: 0.0})
    with pytest.raises(ValueError, match="terminal in currents -1 does not exist"):
        nw.solve(G, voltages={0: 0.0}, currents={-1: 1.0})
    with pytest.raises(
        ValueError, match=r"terminals \[1\] are given both a voltage and a current"
    ):
        nw.solve(G, voltages={0: 0.0, 1: 1.0}, currents={1: 1.0})
    with pytest.raises(ValueError, match="G must be square"):
        nw.solve(np.zeros((3, 4)), voltages={0: 0.0})
    with pytest.raises(ValueError, match="G must be finite"):
        nw.solve(np.full((2, 2), np.nan), voltages={0: 0.0})
    with pytest.raises(TypeError, match="voltages must be a mapping"):
        nw.solve(G, voltages=[0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="must broadcast against the batch shape"):
        nw.solve(G, voltages={0: np.zeros(3), 1: np.zeros(4)})


def test_floating_island_is_named():
    # Terminals 0-1 coupled to each other, 2-3 coupled to each other only.
    T = np.array(
        [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]
    )
    G = nw.conductance_matrix(T)
    with pytest.raises(ValueError, match=r"terminals \[2, 3\] are not connected to any voltage"):
        nw.solve(G, voltages={0: 1.0, 1: 0.0}, on_singular="raise")
    with pytest.raises(ValueError, match=r"currents given at terminals \[2\] cannot be sunk"):
        nw.solve(G, voltages={0: 0.0}, currents={2: 1.0}, on_singular="raise")
    batch = np.stack([nw.conductance_matrix(np.ones((4, 4))), G])
    with pytest.raises(ValueError, match=r"\[2, 3\].*batch indices \[\(1,\)\] \(1 of 2"):
        nw.solve(batch, voltages={0: 1.0, 1: 0.0}, on_singular="raise")
    with pytest.raises(ValueError, match=r"not connected to the ground terminal 0"):
        nw.resistance_matrix(G, ground=0, on_singular="raise")
    # By default the island's voltages are NaN (inf where a current is pushed in), with a
    # warning, and the connected part is solved.
    with pytest.warns(nw.SingularCircuitWarning, match=r"terminals \[2, 3\]"):
        sol = nw.solve(G, voltages={0: 0.0}, currents={1: 1.0, 2: 1.0})
    np.testing.assert_allclose(sol.voltages[:2], [0.0, 1.0])
    assert sol.voltages[2] == np.inf and np.isnan(sol.voltages[3])
    np.testing.assert_allclose(sol.currents, [-1.0, 1.0, 1.0, 0.0])
    with pytest.warns(nw.SingularCircuitWarning, match="not connected to the ground terminal"):
        r = nw.resistance_matrix(G, ground=0)
    assert r[1, 1] == pytest.approx(1.0) and r[2, 2] == np.inf and np.isnan(r[2, 3])
    with pytest.raises(ValueError, match=r"probes \[2, 3\] are not connected to any remaining"):
        nw.eliminate_probes(T, [2, 3])


def test_singular_reduced_conductance_is_reported():
    # Connected, but the two free terminals respond identically: no unique solution.
    G = np.array([[2.0, -1.0, -1.0], [-2.0, 1.0, 1.0], [-2.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"no unique solution: .*unknown voltage \[1, 2\]"):
        nw.solve(G, voltages={0: 1.0}, on_singular="raise")
    stack = np.stack([nw.conductance_matrix(np.ones((3, 3))), G])
    with pytest.raises(ValueError, match=r"no unique solution at batch indices \[\(1,\)\]"):
        nw.solve(stack, voltages={0: 1.0}, on_singular="raise")
    with pytest.warns(nw.SingularCircuitWarning, match=r"batch indices \[\(1,\)\]"):
        sol = nw.solve(stack, voltages={0: 1.0})
    np.testing.assert_allclose(sol.voltages[0], 1.0)
    assert np.all(np.isnan(sol.voltages[1, 1:]))
    with pytest.raises(ValueError, match="on_singular must be 'warn'"):
        nw.solve(G, voltages={0: 1.0}, on_singular="ignore")


def test_hall_sweep_through_an_insulator_keeps_the_batch():
    """Edge channels n = 2, 1, 0, 1 (a field sweep emptying every Landau level at one point).

    Büttiker's chiral edge picture: R_xy = 1/n, R_xx = 0, R_2t = 1/n (h/e^2); with n = 0 no
    current flows, R_2t = inf and the Hall voltage is undetermined (NaN), with a warning that
    names the batch index; the old code raised and the sweep was lost.
    """
    channels = np.array([2, 1, 0, 1])
    T = channels[:, None, None] * np.roll(np.eye(6), 1, axis=0)
    G = nw.conductance_matrix(T)
    with pytest.warns(
        nw.SingularCircuitWarning,
        match=r"from terminal 0 to terminal 3.*batch indices \[\(2,\)\] \(1 of 4",
    ):
        r_xy = nw.hall_resistance(G, current=(0, 3), voltage=(1, 5))
    np.testing.assert_allclose(r_xy[[0, 1, 3]], [0.5, 1.0, 1.0])
    assert np.isnan(r_xy[2])
    with pytest.warns(nw.SingularCircuitWarning, match="an insulator"):
        r_2t = nw.two_terminal_resistance(G, 0, 3)
    np.testing.assert_allclose(r_2t[[0, 1, 3]], [0.5, 1.0, 1.0])
    assert r_2t[2] == np.inf
    with pytest.warns(nw.SingularCircuitWarning):
        r_xx = nw.four_terminal_resistance(G, current=(0, 3), voltage=(1, 2))
    np.testing.assert_allclose(r_xx[[0, 1, 3]], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"no current can flow from terminal 0 to terminal 3"):
        nw.hall_resistance(G, current=(0, 3), voltage=(1, 5), on_singular="raise")


def test_resistance_errors_speak_of_the_terminals_the_user_gave():
    # Terminal 4 is coupled to nothing; the current path 0 -> 3 is fine.
    T = np.roll(np.eye(6), 1, axis=0)
    T[:, 4] = T[4, :] = 0.0
    T[5, 3] = 1.0  # the edge skips terminal 4
    G = nw.conductance_matrix(T, check=False)
    with pytest.raises(ValueError) as caught:
        nw.four_terminal_resistance(G, current=(0, 3), voltage=(4, 5), on_singular="raise")
    message = str(caught.value)
    assert "voltage terminals [4] of voltage=(4, 5)" in message
    assert "current path 0 -> 3" in message
    assert "voltages are given at" not in message  # no internally grounded terminal


def test_resistance_and_probe_argument_errors():
    G = nw.conductance_matrix(hall_bar())
    with pytest.raises(ValueError, match="two different terminals"):
        nw.four_terminal_resistance(G, current=(1, 1), voltage=(2, 3))
    with pytest.raises(TypeError, match="current must be a pair"):
        nw.four_terminal_resistance(G, current=1, voltage=(2, 3))
    with pytest.raises(ValueError, match="terminal in voltage 9 does not exist"):
        nw.hall_resistance(G, current=(0, 3), voltage=(1, 9))
    with pytest.raises(ValueError, match="must not repeat"):
        nw.eliminate_probes(hall_bar(), [1, 1])
    with pytest.raises(ValueError, match="at least one terminal must remain"):
        nw.eliminate_probes(hall_bar(), range(6))
    with pytest.raises(ValueError, match="probe terminal 6 does not exist"):
        nw.eliminate_probes(hall_bar(), [6])


# --------------------------------------------------------------------------------------------
# Energy-resolved probes
# --------------------------------------------------------------------------------------------

WIDE = np.linspace(-2.0, 2.0, 4001)


def constant_transmission(matrix, energies=WIDE):
    return np.broadcast_to(np.asarray(matrix, dtype=float), (energies.size, *np.shape(matrix)))


@pytest.mark.parametrize(("bias", "probe_kT"), [(1e-3, 0.05), (0.4, 0.05), (0.4, 0.01)])
def test_voltage_probe_takes_the_weighted_average_at_any_bias(bias, probe_kT):
    # With energy-independent T the probe current is sum_j T_pj (mu_p - mu_j) exactly.
    T = [[0.0, 0.8, 0.3], [0.8, 0.0, 0.1], [0.3, 0.1, 0.0]]
    solution = nw.solve_probes(
        WIDE,
        constant_transmission(T),
        mu={0: bias / 2, 1: -bias / 2},
        kT={0: 0.03, 1: 0.05, 2: probe_kT},
        probes={2: "voltage"},
    )
    expected = (0.3 * bias / 2 - 0.1 * bias / 2) / 0.4
    assert solution.mu[2] == pytest.approx(expected, rel=1e-10)
    assert solution.charge_current[0] == pytest.approx(0.8 * bias + 0.3 * (bias / 2 - expected))
    assert abs(solution.charge_residual[2]) < 1e-12
    assert np.isnan(solution.charge_residual[0]) and np.isnan(solution.energy_residual[2])


def test_thermal_probe_matches_sommerfeld_closed_form_with_joule_heating():
    # For constant T: I_pj ~ mu_p - mu_j and J_pj ~ (mu_p^2 - mu_j^2)/2 + pi^2/6 (kT_p^2 - kT_j^2),
    # both exact, so the probe's mu is the weighted average and its kT follows in closed form.
    couplings = np.array([0.6, 0.2])
    T = [[0.0, 0.5, 0.6], [0.5, 0.0, 0.2], [0.6, 0.2, 0.0]]
    mu_res, kT_res = np.array([0.15, -0.15]), np.array([0.02, 0.08])
    energies = np.linspace(-3.0, 3.0, 6001)  # the closed form needs tails below 1e-15
    solution = nw.solve_probes(
        energies,
        constant_transmission(T, energies),
        mu=dict(enumerate(mu_res)),
        kT=dict(enumerate(kT_res)),
        probes={2: "thermal"},
    )
    mu_p = couplings @ mu_res / couplings.sum()
    kT_p = math.sqrt(
        couplings @ (kT_res**2 + 3 / math.pi**2 * (mu_res**2 - mu_p**2)) / couplings.sum()
    )
    assert solution.mu[2] == pytest.approx(mu_p, rel=1e-10)
    assert solution.kT[2] == pytest.approx(kT_p, rel=1e-10)
    assert abs(solution.charge_current[2]) < 1e-12 and abs(solution.energy_current[2]) < 1e-12
    assert solution.heat_current[2] == pytest.approx(0.0, abs=1e-12)
    mu_all = np.array([*mu_res, mu_p])
    kT_all = np.array([*kT_res, kT_p])
    energy_0 = np.asarray(T[0]) @ (
        (mu_all[0] ** 2 - mu_all**2) / 2 + math.pi**2 / 6 * (kT_all[0] ** 2 - kT_all**2)
    )
    assert solution.energy_current[0] == pytest.approx(energy_0, rel=1e-10)
    # Energy is conserved, heat is not: the reservoirs absorb the Joule heat mu_0 I_0 + mu_1 I_1.
    assert abs(solution.energy_current.sum()) < 1e-12
    joule = solution.mu[:2] @ solution.charge_current[:2]
    assert -solution.heat_current.sum() == pytest.approx(joule, rel=1e-10)


def test_thermal_probe_between_hot_and_cold_reservoirs_is_in_between():
    energies = np.linspace(-1.5, 1.5, 3001)
    T = smooth_transmission(energies, [1, 2, 1], seed=21)
    solution = nw.solve_probes(
        energies, T, mu={0: 0.0, 1: 0.0}, kT={0: 0.02, 1: 0.1}, probes={2: "thermal"}
    )
    assert 0.02 < solution.kT[2] < 0.1
    assert abs(solution.charge_current[2]) < 1e-12
    assert abs(solution.energy_current[2]) < 1e-12
    assert abs(solution.energy_current.sum()) < 1e-12
    assert abs(solution.charge_current.sum()) < 1e-12


@pytest.mark.parametrize("kind", ["voltage", "thermal"])
def test_symmetric_setup_puts_the_probe_halfway(kind):
    # L <-> R symmetric couplings, even in energy about 0: by symmetry mu_p = (mu_L + mu_R)/2,
    # far beyond linear response.
    energies = 0.2 + np.linspace(-3.5, 3.5, 7001)
    lorentzian = 1 / (1 + ((energies - 0.2) / 0.3) ** 2)
    T = np.zeros((energies.size, 3, 3))
    T[:, 0, 1] = T[:, 1, 0] = 0.5 * lorentzian
    T[:, 0, 2] = T[:, 2, 0] = T[:, 1, 2] = T[:, 2, 1] = 0.4 * lorentzian
    kT = {0: 0.05, 1: 0.05} | ({2: 0.02} if kind == "voltage" else {})
    solution = nw.solve_probes(
        energies, T, mu={0: 0.2 + 0.3, 1: 0.2 - 0.3}, kT=kT, probes={2: kind}
    )
    assert solution.mu[2] == pytest.approx(0.2, abs=1e-12)
    assert solution.charge_current[0] == pytest.approx(-solution.charge_current[1], rel=1e-12)


def test_voltage_probe_at_small_bias_reproduces_linear_response_elimination():
    energies = np.linspace(-1.5, 1.5, 3001)
    kT, bias = 0.05, 1e-6
    T = smooth_transmission(energies, [1, 2, 1], seed=5)
    solution = nw.solve_probes(
        energies,
        T,
        mu={0: bias / 2, 1: -bias / 2},
        kT={0: kT, 1: kT, 2: kT},
        probes={2: "voltage"},
    )
    # Linear response: eliminate the probe from the thermally averaged transmission.
    occupation = fermi_dirac(energies, 0.0, kT)
    thermal_window = trapezoid_weights(energies) * occupation * (1 - occupation) / kT
    T_average = np.einsum("e,eij->ij", thermal_window, T)
    T_eff = nw.eliminate_probes(T_average, [2])
    assert solution.charge_current[0] / bias == pytest.approx(T_eff[1, 0], rel=1e-8)
    linear = nw.solve(nw.conductance_matrix(T_average), voltages={0: bias / 2, 1: -bias / 2})
    assert solution.mu[2] == pytest.approx(linear.voltages[2], rel=1e-8)


def test_dephasing_probe_is_eliminate_probes_at_each_energy():
    energies = np.linspace(-1.5, 1.5, 3001)
    T = smooth_transmission(energies, [2, 1, 1, 1], seed=9)
    mu = {0: 0.25, 1: -0.1, 3: -0.25}
    kT = {0: 0.05, 1: 0.02, 3: 0.08}
    solution = nw.solve_probes(energies, T, mu=mu, kT=kT, probes={2: "dephasing"})
    kept = [0, 1, 3]
    occupations = np.stack([fermi_dirac(energies, mu[t], kT[t]) for t in kept], axis=-1)
    G_eff = nw.conductance_matrix(nw.eliminate_probes(T, [2]))
    expected = trapezoid_weights(energies) @ np.einsum("eij,ej->ei", G_eff, occupations)
    np.testing.assert_allclose(solution.charge_current[kept], expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(solution.distributions[:, kept], occupations, rtol=1e-15)
    # Elastic: the probe draws no current at any energy, so neither charge nor energy.
    per_energy = np.einsum("ej,ej->e", nw.conductance_matrix(T)[:, 2], solution.distributions)
    np.testing.assert_allclose(per_energy, 0.0, atol=1e-14)
    assert np.isnan(solution.mu[2]) and np.isnan(solution.kT[2])
    assert abs(solution.energy_current[2]) < 1e-13
    assert solution.iterations == 0


def test_dephasing_probe_distribution_is_a_double_step():
    T = [[0.0, 0.3, 0.6], [0.3, 0.0, 0.2], [0.6, 0.2, 0.0]]
    solution = nw.solve_probes(
        WIDE,
        constant_transmission(T),
        mu={0: 0.3, 1: -0.3},
        kT={0: 0.01, 1: 0.01},
        probes={2: "dephasing"},
    )
    expected = (0.6 * fermi_dirac(WIDE, 0.3, 0.01) + 0.2 * fermi_dirac(WIDE, -0.3, 0.01)) / 0.8
    np.testing.assert_allclose(solution.distributions[:, 2], expected, rtol=1e-14)
    # Direct path plus Büttiker's incoherent path through the probe.
    effective = 0.3 + 0.6 * 0.2 / 0.8
    assert solution.charge_current[0] == pytest.approx(effective * 0.6, rel=1e-12)


def test_mixed_probes_conserve_charge_and_energy():
    energies = np.linspace(-2.5, 2.5, 5001)
    T = smooth_transmission(energies, [2, 1, 1, 1, 2], seed=3)
    solution = nw.solve_probes(
        energies,
        T,
        mu={0: 0.3, 4: -0.3},
        kT={0: 0.05, 4: 0.05, 1: 0.05},
        probes={1: "voltage", 2: "thermal", 3: "dephasing"},
        spin_degeneracy=2,
    )
    assert abs(solution.charge_current.sum()) < 1e-10
    assert abs(solution.energy_current.sum()) < 1e-10
    assert solution.max_residual < 1e-12
    assert np.all(np.abs(solution.charge_current[1:4]) < 1e-12)
    assert np.all(np.abs(solution.energy_current[2:4]) < 1e-12)
    assert solution.probes == {1: "voltage", 2: "thermal", 3: "dephasing"}
    single = nw.solve_probes(
        energies,
        T,
        mu={0: 0.3, 4: -0.3},
        kT={0: 0.05, 4: 0.05, 1: 0.05},
        probes={1: "voltage", 2: "thermal", 3: "dephasing"},
    )
    np.testing.assert_allclose(solution.mu, single.mu, rtol=1e-10)
    np.testing.assert_allclose(solution.charge_current, 2 * single.charge_current, atol=1e-12)


def test_solve_probes_input_errors():
    T = constant_transmission([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    good = {"mu": {0: 0.1, 1: -0.1}, "kT": {0: 0.02, 1: 0.02, 2: 0.02}}
    with pytest.raises(ValueError, match=r"terminals \[2\] are neither reservoirs"):
        nw.solve_probes(WIDE, T, probes={}, **good)
    with pytest.raises(ValueError, match="valid kinds are voltage, thermal, dephasing"):
        nw.solve_probes(WIDE, T, probes={2: "volt"}, **good)
    with pytest.raises(ValueError, match="thermal probe, whose temperature is not an input"):
        nw.solve_probes(WIDE, T, probes={2: "thermal"}, **good)
    with pytest.raises(ValueError, match=r"kT\[2\] of voltage probe 2 must be > 0"):
        nw.solve_probes(
            WIDE, T, mu=good["mu"], kT={0: 0.02, 1: 0.02, 2: 0.0}, probes={2: "voltage"}
        )
    with pytest.raises(ValueError, match=r"missing terminals \[2\]"):
        nw.solve_probes(WIDE, T, mu=good["mu"], kT={0: 0.02, 1: 0.02}, probes={2: "voltage"})
    with pytest.raises(ValueError, match="whose chemical potential is solved for"):
        nw.solve_probes(WIDE, T, mu={0: 0.1, 1: 0.0, 2: 0.0}, kT=good["kT"], probes={2: "voltage"})
    with pytest.raises(ValueError, match="no reservoir given"):
        nw.solve_probes(WIDE, T, mu={}, kT={}, probes={0: "thermal", 1: "thermal", 2: "thermal"})
    with pytest.raises(
        ValueError, match=r"energies must be strictly increasing, got energies\[0\]"
    ):
        nw.solve_probes(WIDE[::-1], T, probes={2: "voltage"}, **good)
    with pytest.raises(ValueError, match=r"energies must have at least 2 points, got 1"):
        nw.solve_probes(WIDE[:1], T[:1], probes={2: "voltage"}, **good)
    # The iteration count is a positive integer of any integer type; 0 would skip Newton.
    with pytest.raises(ValueError, match=r"max_iterations must be a positive integer, got 0"):
        nw.solve_probes(WIDE, T, probes={2: "voltage"}, max_iterations=0, **good)
    with pytest.raises(TypeError, match=r"max_iterations must be a positive integer, got 2\.5"):
        nw.solve_probes(WIDE, T, probes={2: "voltage"}, max_iterations=2.5, **good)
    counted = nw.solve_probes(WIDE, T, probes={2: "voltage"}, max_iterations=np.int64(50), **good)
    np.testing.assert_allclose(counted.mu[2], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"transmission must have shape \(n_E, N, N\)"):
        nw.solve_probes(WIDE[:10], T, probes={2: "voltage"}, **good)
    with pytest.raises(ValueError, match=r"kT\[0\] must be >= 0"):
        nw.solve_probes(WIDE, T, mu=good["mu"], kT={0: -1.0, 1: 0.02}, probes={2: "dephasing"})


def test_uncoupled_probe_is_reported():
    T = constant_transmission([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"probes \[2\] are not coupled"):
        nw.solve_probes(
            WIDE, T, mu={0: 0.1, 1: -0.1}, kT={0: 0.02, 1: 0.02, 2: 0.02}, probes={2: "voltage"}
        )


def test_narrow_energy_grid_warns():
    narrow = np.linspace(-0.1, 0.1, 201)
    T = constant_transmission([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.5, 0.5, 0.0]], narrow)
    with pytest.warns(nw.EnergyGridWarning, match="does not cover the transport window"):
        nw.solve_probes(
            narrow,
            T,
            mu={0: 0.1, 1: -0.1},
            kT={0: 0.02, 1: 0.02, 2: 0.02},
            probes={2: "voltage"},
        )


def test_probes_between_reservoirs_in_equilibrium_take_their_state_even_at_zero_temperature():
    energies = np.linspace(-1.5, 1.5, 601)
    t = np.zeros((*energies.shape, 4, 4))
    t[:, 0, 1] = t[:, 1, 0] = 0.5 + 0.4 * np.tanh(energies / 0.1)
    t[:, 0, 2] = t[:, 2, 0] = 0.3
    t[:, 1, 2] = t[:, 2, 1] = 0.4
    t[:, 2, 3] = t[:, 3, 2] = 0.2
    for kT in (0.0, 0.05):
        solution = nw.solve_probes(
            energies,
            t,
            mu={0: 0.1, 1: 0.1, 3: 0.1},
            kT={0: kT, 1: kT, 3: kT},
            probes={2: "thermal"},
        )
        np.testing.assert_allclose(solution.mu, 0.1)
        assert solution.kT[2] == kT
        np.testing.assert_allclose(solution.charge_current, 0.0, atol=1e-12)
