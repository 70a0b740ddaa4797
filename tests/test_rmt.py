"""mesoscopic.rmt: the ten symmetry classes hold exactly, the ensembles have the right statistics.

* Every Gaussian Hamiltonian is Hermitian and has exactly its class's time-reversal,
  particle-hole and chiral symmetries; their consequences follow (a spectrum symmetric about
  zero, Kramers pairs) and are absent where the class has no such symmetry.
* Entries have the standard deviation ``v``; level-spacing ratios are those of the Gaussian
  and circular orthogonal, unitary and symplectic ensembles (Atas et al., PRL 110, 084101
  (2013)); the circular ensembles have the exact second moments of Haar measure.
* Scattering matrices are unitary with their class's symmetries and the requested
  topological charge (determinant, Pfaffian, number of eigenvalues -1).
* The numbers equal Kwant 1.5's for the same seed (fixture printed by ``kwant.rmt``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from mesoscopic import rmt

ENTRIES = [(7, 0), (2, 5), (1, 6), (4, 4)]
KWANT_GAUSSIAN = {
    # class: [kwant.rmt.gaussian(8, class, v=1.7, rng=7)[i, j] for (i, j) in ENTRIES]
    "A": [
        (-3.83426475132128 - 0.1295257815793636j),
        (0.8683805978162364 - 2.4251886346042033j),
        (-0.9224217059096673 - 0.9120648730710798j),
        (-2.8951408641341594 + 0j),
    ],
    "AI": [
        (-3.83426475132128 + 0j),
        (0.8683805978162364 + 0j),
        (-0.9224217059096673 + 0j),
        (-2.8951408641341594 + 0j),
    ],
    "AII": [
        (-2.058983963161439 + 0.5533386981373526j),
        (0.2848861811417099 - 1.3241355334871598j),
        (2.058983963161439 - 0.5533386981373526j),
        (-5.112441456935104 + 0j),
    ],
    "AIII": [
        (-3.83426475132128 - 0.1295257815793636j),
        (0.8683805978162364 - 2.4251886346042033j),
        (-0.9224217059096673 - 0.9120648730710798j),
        0j,
    ],
    "BDI": [(-0 + 0.3843785995197262j), -0.4973328052387947j, (-0 + 0.33881333907877637j), 0j],
    "CII": [
        (-3.325272415890517 + 1.6232787706919207j),
        (3.325272415890517 - 1.6232787706919207j),
        (-0.9814022715873679 - 0.2541954609325917j),
        0j,
    ],
    "D": [
        (-0 + 0.3843785995197262j),
        -0.4973328052387947j,
        (-0 + 0.33881333907877637j),
        (-0 + 0j),
    ],
    "DIII": [
        (-2.058983963161439 + 0.5533386981373526j),
        (0.2848861811417099 - 1.3241355334871598j),
        (2.058983963161439 - 0.5533386981373526j),
        0j,
    ],
    "C": [
        (-3.3634852498862173 - 0.7365158151238639j),
        (0.9431894375916677 - 2.105599124883193j),
        (-3.3634852498862173 - 0.7365158151238639j),
        (1.0180939818960142 + 0j),
    ],
    "CI": [
        (-3.3634852498862173 - 0.7365158151238639j),
        (0.9431894375916677 - 2.105599124883193j),
        (-3.3634852498862173 - 0.7365158151238639j),
        0j,
    ],
}
KWANT_CIRCULAR = {
    # (class, charge): [kwant.rmt.circular(8, class, charge, rng=7)[i, j] for (i, j) in ENTRIES]
    ("A", None): [
        (-0.3265830646989259 - 0.08884798569285011j),
        (-0.29706525408293727 - 0.19409541301305022j),
        (-0.13482493199874485 - 0.1528095075991691j),
        (-0.23935172607770372 + 0.16140971760269512j),
    ],
    ("AI", None): [
        (-0.06204013208454191 - 0.2892194818138504j),
        (-0.2969830603519373 - 0.553490533184446j),
        (0.36168389814233726 - 0.02980565466258235j),
        (0.37007779426019854 - 0.6045080202947428j),
    ],
    ("AII", None): [
        (-0.11602259576881527 + 0.3651895290244745j),
        (-0.3376180541341859 - 0.21576232589289496j),
        (-0.1382521684220676 + 0.04124996693870403j),
        (-6.938893903907228e-18 - 1.8273185120218567e-17j),
    ],
    ("AIII", None): [
        (0.12649865933687143 - 0.015323230165221483j),
        (-0.1507796984801016 + 0.20747990230043964j),
        (0.3862532355673342 + 0.26663128113072065j),
        (-0.7969714391708788 + 0j),
    ],
    ("AIII", 3): [
        (0.3372338561414947 - 0.32968904711212577j),
        (-0.0619064418854256 + 0.025315430962480928j),
        (0.43466690294615196 + 0.1369727324831695j),
        (0.5764141415103704 + 0j),
    ],
    ("BDI", None): [
        (-0.38709304130404487 + 0j),
        (0.7175084243420593 + 0j),
        (-0.10788464915633951 + 0j),
        (0.6616195786074054 + 0j),
    ],
    ("BDI", 2): [
        (0.25463484632549005 + 0j),
        (-0.10426547384749879 + 0j),
        (0.06103712910408673 + 0j),
        (0.8861802134570382 + 0j),
    ],
    ("CII", None): [
        (2.7755575615628914e-17 + 0j),
        (-4.5102810375396984e-17 - 2.7755575615628914e-17j),
        (2.7755575615628914e-17 + 4.163336342344337e-17j),
        (-0.9999999999999993 + 0j),
    ],
    ("CII", 1): [
        (0.4361156674339903 - 0.05859830811053196j),
        (-0.15709567826831783 + 0.31551078891328543j),
        (-0.43611566743399016 + 0.058598308110532j),
        (0.6155772374559421 + 0j),
    ],
    ("D", None): [
        (-0.45913929893976274 + 0j),
        (-0.0050330046000688 + 0j),
        (0.025143488805527137 + 0j),
        (-0.3872788321518655 + 0j),
    ],
    ("D", -1): [
        (-0.45913929893976274 + 0j),
        (-0.0050330046000688 + 0j),
        (0.025143488805527137 + 0j),
        (-0.3872788321518655 + 0j),
    ],
    ("DIII", None): [
        0.6836375356450994j,
        (-0 - 0.30112164973102773j),
        (-0 - 0.07620595711058133j),
        3.204304650209112e-18j,
    ],
    ("DIII", -1): [
        0.6836375356450994j,
        (-0 - 0.30112164973102773j),
        (-0 - 0.07620595711058133j),
        3.204304650209112e-18j,
    ],
    ("C", None): [
        (0.20527821354789574 - 0.4206521894237517j),
        (0.10204793670499393 + 0.17489359762909124j),
        (-0.24935811088095272 - 0.15418377056811153j),
        (0.2715476092711414 + 0.1720402004616596j),
    ],
    ("CI", None): [
        (0.07618551146933655 - 0.1941263699817867j),
        (0.34893515221728766 + 0.1195867474597859j),
        (0.07618551146933655 - 0.1941263699817867j),
        (-0.5376571243033103 + 3.9872047068585027e-17j),
    ],
}

PAIRING = np.array([[0, 1j], [-1j, 0]])  # Y of the scattering-matrix conventions


def block_operator(block, n: int) -> np.ndarray:
    block = np.asarray(block)
    return np.kron(np.eye(n // len(block)), block)


def tau_z(n: int) -> np.ndarray:
    return np.kron(np.eye(n // 2), np.diag([1, -1]))


def spacing_ratios(levels: np.ndarray) -> np.ndarray:
    """min(s_k, s_k+1) / max(s_k, s_k+1) of consecutive spacings of sorted levels."""
    spacings = np.diff(np.sort(levels))
    return np.minimum(spacings[1:], spacings[:-1]) / np.maximum(spacings[1:], spacings[:-1])


def pfaffian(matrix: np.ndarray) -> float:
    """Pfaffian of a real antisymmetric matrix by Parlett-Reid elimination with pivoting."""
    a = np.array(matrix, dtype=float)
    n = len(a)
    result = 1.0
    for k in range(0, n - 1, 2):
        pivot = k + 1 + int(np.argmax(np.abs(a[k + 1 :, k])))
        if pivot != k + 1:
            a[[k + 1, pivot], :] = a[[pivot, k + 1], :]
            a[:, [k + 1, pivot]] = a[:, [pivot, k + 1]]
            result = -result
        if a[k + 1, k] == 0:
            return 0.0
        result *= a[k, k + 1]
        if k + 2 < n:
            tau = a[k, k + 2 :] / a[k, k + 1]
            column = a[k + 2 :, k + 1].copy()
            a[k + 2 :, k + 2 :] += np.outer(tau, column) - np.outer(column, tau)
    return result


# -- the classes ------------------------------------------------------------------------


def test_the_ten_classes_are_the_nine_antiunitary_pairs_and_AIII() -> None:
    assert len(set(rmt.sym_list)) == 10
    pairs = {(rmt.t(sym), rmt.p(sym)) for sym in rmt.sym_list}
    assert pairs == set(itertools.product((-1, 0, 1), repeat=2))
    for sym in rmt.sym_list:
        has_both = rmt.t(sym) != 0 and rmt.p(sym) != 0
        assert rmt.c(sym) == int(has_both or sym == "AIII")
    assert (rmt.t("AII"), rmt.p("AII")) == (-1, 0)  # the symplectic class
    assert (rmt.t("DIII"), rmt.p("DIII")) == (-1, 1)
    assert (rmt.t("CI"), rmt.p("CI")) == (1, -1)
    assert set(rmt.h_t_matrix) == {sym for sym in rmt.sym_list if rmt.t(sym)}
    assert set(rmt.h_p_matrix) == {sym for sym in rmt.sym_list if rmt.p(sym)}


@pytest.mark.parametrize("sym", [s for s in rmt.sym_list if rmt.t(s) or rmt.p(s)])
def test_antiunitary_operators_square_to_their_sign(sym: str) -> None:
    # An antiunitary U K squares to U U^*, which must be t(sym) (or p(sym)) times 1.
    for table, square in [(rmt.h_t_matrix, rmt.t(sym)), (rmt.h_p_matrix, rmt.p(sym))]:
        if sym in table:
            u = np.array(table[sym])
            np.testing.assert_array_equal(u @ u.conj(), square * np.eye(len(u)))
            np.testing.assert_array_equal(u @ u.conj().T, np.eye(len(u)))


@pytest.mark.parametrize("call", [rmt.t, rmt.p, rmt.c])
def test_unknown_class_is_refused_by_name(call) -> None:
    with pytest.raises(ValueError, match=r"unknown symmetry class 'BD'.*'AIII'"):
        call("BD")
    with pytest.raises(ValueError, match="unknown symmetry class 'E'"):
        rmt.gaussian(4, "E")
    with pytest.raises(ValueError, match="unknown symmetry class 'E'"):
        rmt.circular(4, "E")


# -- Gaussian ensembles -----------------------------------------------------------------


def gaussian_sizes(sym: str) -> list[int]:
    if sym == "CII":
        return [4, 8, 12]
    if sym in ("A", "AI", "D"):
        return [1, 5, 8]
    return [2, 6, 8]


@pytest.mark.parametrize("sym", rmt.sym_list)
def test_gaussian_hamiltonians_have_exactly_their_symmetries(sym: str) -> None:
    rng = np.random.RandomState(4)
    for n in gaussian_sizes(sym):
        h = rmt.gaussian(n, sym, rng=rng)
        assert h.shape == (n, n)
        np.testing.assert_allclose(h, h.conj().T, atol=1e-12)
        if rmt.t(sym):
            u = block_operator(rmt.h_t_matrix[sym], n)
            np.testing.assert_allclose(h, u @ h.conj() @ u.conj().T, atol=1e-12)
        if rmt.p(sym):
            u = block_operator(rmt.h_p_matrix[sym], n)
            np.testing.assert_allclose(h, -u @ h.conj() @ u.conj().T, atol=1e-12)
        if rmt.c(sym):
            np.testing.assert_allclose(h, -tau_z(n) @ h @ tau_z(n), atol=1e-12)
        assert np.isrealobj(h) == (sym == "AI")
        if sym in ("D", "BDI"):
            assert np.all(h.real == 0)

    # The consequences, and their absence where the class lacks the symmetry.
    h = rmt.gaussian(8, sym, rng=rng)
    energies = np.linalg.eigvalsh(h)
    mirrored = np.max(np.abs(energies + energies[::-1]))
    if rmt.p(sym) or rmt.c(sym):
        assert mirrored < 1e-12
    else:
        assert mirrored > 1e-3
    kramers = np.max(np.abs(energies[::2] - energies[1::2]))
    if rmt.t(sym) == -1:
        assert kramers < 1e-12
    else:
        assert kramers > 1e-3
    if not (rmt.t(sym) or rmt.p(sym)):
        assert np.max(np.abs(h.imag)) > 1e-3 and np.max(np.abs(h.real)) > 1e-3


@pytest.mark.parametrize("v", [0.5, 2.0])
@pytest.mark.parametrize("sym", rmt.sym_list)
def test_gaussian_entries_have_standard_deviation_v(sym: str, v: float) -> None:
    rng = np.random.RandomState(11)
    samples = np.array([rmt.gaussian(8, sym, v=v, rng=rng) for _ in range(1500)])
    # h[7, 0] couples two different blocks of every symmetry operator, so its real (or,
    # in D and BDI, imaginary) part is a free parameter.
    free = samples[:, 7, 0].imag if sym in ("D", "BDI") else samples[:, 7, 0].real
    assert abs(free.std() / v - 1) < 4 / np.sqrt(2 * free.size)
    assert stats.kstest(free / v, "norm").pvalue > 1e-3
    diagonal = samples[:, 4, 4]
    if rmt.c(sym) or sym == "D":
        assert np.all(diagonal == 0)
    else:
        assert abs(diagonal.real.std() / (np.sqrt(2) * v) - 1) < 4 / np.sqrt(2 * free.size)


@pytest.mark.parametrize(
    ("sym", "kramers", "expected"),
    # <r> of the large-N Gaussian ensembles (Atas et al. 2013): GOE, GUE, GSE.
    [("AI", 1, 0.5307), ("A", 1, 0.5996), ("AII", 2, 0.6744)],
)
def test_gaussian_level_spacing_ratio(sym: str, kramers: int, expected: float) -> None:
    rng = np.random.RandomState(2)
    n = 80
    ratios = []
    for _ in range(80):
        levels = np.linalg.eigvalsh(rmt.gaussian(kramers * n, sym, rng=rng))[::kramers]
        ratios.append(spacing_ratios(levels[n // 4 : 3 * n // 4]))  # the flat middle
    ratios = np.concatenate(ratios)
    assert abs(ratios.mean() - expected) < 4 * ratios.std() / np.sqrt(ratios.size)
    assert 4 * ratios.std() / np.sqrt(ratios.size) < 0.02  # tells GOE, GUE and GSE apart


# -- circular ensembles -----------------------------------------------------------------


def circular_sizes(sym: str) -> list[int]:
    if rmt.t(sym) == -1 or rmt.p(sym) == -1:
        return [2, 4, 8]
    return [1, 5, 8]


@pytest.mark.parametrize("sym", rmt.sym_list)
def test_scattering_matrices_are_unitary_with_their_symmetries(sym: str) -> None:
    rng = np.random.RandomState(6)
    for n in circular_sizes(sym):
        s = rmt.circular(n, sym, rng=rng)
        y = block_operator(PAIRING, n) if n % 2 == 0 else None
        np.testing.assert_allclose(s @ s.conj().T, np.eye(n), atol=1e-12)
        time_reversed = {
            "AI": s.T, "BDI": s.T, "AII": -s.T, "DIII": -s.T,
            "CI": None if y is None else -y @ s.T @ y,
            "CII": None if y is None else y @ s.T @ y,
        }  # fmt: skip
        particle_hole = {
            "D": s.conj(), "BDI": s.conj(), "DIII": -s.conj(),
            "C": None if y is None else y @ s.conj() @ y,
            "CII": None if y is None else y @ s.conj() @ y,
            "CI": None if y is None else -y @ s.conj() @ y,
        }  # fmt: skip
        assert (sym in time_reversed) == bool(rmt.t(sym))
        assert (sym in particle_hole) == bool(rmt.p(sym))
        if sym in time_reversed:
            np.testing.assert_allclose(s, time_reversed[sym], atol=1e-12)
        if sym in particle_hole:
            np.testing.assert_allclose(s, particle_hole[sym], atol=1e-12)
        if rmt.c(sym):
            np.testing.assert_allclose(s, s.conj().T, atol=1e-12)
    # Without time reversal S is not symmetric; without chiral symmetry not Hermitian.
    s = rmt.circular(8, sym, rng=rng)
    if not rmt.t(sym) and not rmt.c(sym):
        assert np.max(np.abs(s - s.T)) > 1e-3
    if not rmt.c(sym):
        assert np.max(np.abs(s - s.conj().T)) > 1e-3


def test_pfaffian_helper() -> None:
    rng = np.random.RandomState(0)
    a = rng.randn(6, 6)
    a = a - a.T
    assert pfaffian(a) ** 2 == pytest.approx(np.linalg.det(a))
    assert pfaffian(np.kron(np.eye(3), [[0, 1], [-1, 0]])) == 1
    assert pfaffian(np.kron(np.eye(3), [[0, -1], [1, 0]])) == -1


def topological_charge(s: np.ndarray, sym: str) -> int:
    if sym == "D":
        return round(np.linalg.det(s).real)
    if sym == "DIII":
        assert np.all(s.real == 0) or np.max(np.abs(s.real)) < 1e-12
        return int(np.sign(pfaffian((1j * s).real)))
    negative = int(np.sum(np.linalg.eigvalsh(s) < 0))
    return negative // 2 if sym == "CII" else negative


@pytest.mark.parametrize(
    ("sym", "charges"),
    [("D", (-1, 1)), ("DIII", (-1, 1)), ("AIII", range(7)), ("BDI", range(7)),
     ("CII", range(4))],
)  # fmt: skip
def test_circular_charge_is_the_topological_invariant(sym: str, charges) -> None:
    rng = np.random.RandomState(8)
    for charge in charges:
        for _ in range(3):
            s = rmt.circular(6, sym, charge=charge, rng=rng)
            assert topological_charge(s, sym) == charge
    drawn = [topological_charge(rmt.circular(6, sym, rng=rng), sym) for _ in range(200)]
    assert set(drawn) == set(charges)


def test_circular_ensembles_have_the_moments_of_haar_measure() -> None:
    rng = np.random.RandomState(3)
    n, count = 4, 3000
    off_diagonal = ~np.eye(n, dtype=bool)
    expected = {
        # E|S_ij|^2: CUE 1/n; COE (1 + delta_ij)/(n + 1); Haar orthogonal 1/n.
        "A": np.full((n, n), 1 / n),
        "AI": (1 + np.eye(n)) / (n + 1),
        "D": np.full((n, n), 1 / n),
    }
    for sym, moments in expected.items():
        weights = np.abs(np.array([rmt.circular(n, sym, rng=rng) for _ in range(count)])) ** 2
        error = weights.std(axis=0) / np.sqrt(count)
        assert np.all(np.abs(weights.mean(axis=0) - moments) < 5 * error), sym
    # CUE: E|S_ij|^4 = 2 / (n (n + 1)).
    fourth = np.abs(np.array([rmt.circular(n, "A", rng=rng)[0, 1] for _ in range(count)])) ** 4
    assert abs(fourth.mean() - 2 / (n * (n + 1))) < 5 * fourth.std() / np.sqrt(count)
    assert off_diagonal.sum() == n * (n - 1)


@pytest.mark.parametrize(
    ("sym", "kramers", "expected"), [("AI", 1, 0.5307), ("A", 1, 0.5996), ("AII", 2, 0.6744)]
)
def test_circular_eigenphase_spacing_ratio(sym: str, kramers: int, expected: float) -> None:
    # Dyson's circular ensembles share the local statistics of the Gaussian ones.
    rng = np.random.RandomState(5)
    n = 80
    ratios = []
    for _ in range(40):
        s = rmt.circular(kramers * n, sym, rng=rng)
        if sym == "AII":
            # Y S is the self-dual (quaternion) form of the CSE: Kramers-degenerate phases.
            s = block_operator(PAIRING, kramers * n) @ s
        phases = np.sort(np.angle(np.linalg.eigvals(s)))
        if kramers == 2:
            if not np.isclose(phases[0], phases[1], atol=1e-8):
                phases = np.roll(phases, -1)  # a pair split at -pi/pi
            pair_gaps = np.mod(phases[1::2] - phases[::2] + np.pi, 2 * np.pi) - np.pi
            assert np.max(np.abs(pair_gaps)) < 1e-8
            phases = phases[::2]
        spacings = np.mod(np.diff(np.append(phases, phases[0])), 2 * np.pi)  # around the circle
        following = np.roll(spacings, -1)
        ratios.append(np.minimum(spacings, following) / np.maximum(spacings, following))
    ratios = np.concatenate(ratios)
    assert abs(ratios.mean() - expected) < 4 * ratios.std() / np.sqrt(ratios.size)
    assert 4 * ratios.std() / np.sqrt(ratios.size) < 0.02


# -- Kwant's numbers, random generators, errors -----------------------------------------


@pytest.mark.parametrize("sym", rmt.sym_list)
def test_gaussian_equals_kwants_for_the_same_seed(sym: str) -> None:
    h = rmt.gaussian(8, sym, v=1.7, rng=7)
    np.testing.assert_allclose([h[i, j] for i, j in ENTRIES], KWANT_GAUSSIAN[sym], atol=1e-12)


@pytest.mark.parametrize(("sym", "charge"), list(KWANT_CIRCULAR))
def test_circular_equals_kwants_for_the_same_seed(sym: str, charge: int | None) -> None:
    s = rmt.circular(8, sym, charge=charge, rng=7)
    expected = KWANT_CIRCULAR[sym, charge]
    np.testing.assert_allclose([s[i, j] for i, j in ENTRIES], expected, atol=1e-12)


@pytest.mark.parametrize("draw", [rmt.gaussian, rmt.circular])
def test_random_sources(draw) -> None:
    seeded = draw(6, "BDI", rng=12)
    np.testing.assert_array_equal(seeded, draw(6, "BDI", rng=12))
    np.testing.assert_array_equal(seeded, draw(6, "BDI", rng=np.random.RandomState(12)))
    generator = draw(6, "BDI", rng=np.random.default_rng(12))
    np.testing.assert_array_equal(generator, draw(6, "BDI", rng=np.random.default_rng(12)))
    assert not np.allclose(generator, draw(6, "BDI", rng=np.random.default_rng(13)))
    # One generator gives a new matrix at each call.
    rng = np.random.default_rng(1)
    assert not np.allclose(draw(8, "CII", rng=rng), draw(8, "CII", rng=rng))
    # None uses NumPy's global state, which numpy.random.seed makes reproducible.
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(12)  # noqa: NPY002
        np.testing.assert_array_equal(draw(6, "BDI"), seeded)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    with pytest.raises(ValueError, match=r"rng must be None, an integer seed.*got 'seed'"):
        draw(4, "A", rng="seed")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rmt.gaussian(5, "AIII"), "class AIII needs an even matrix size n.*n=5"),
        (lambda: rmt.gaussian(7, "C"), "class C needs an even"),
        (
            lambda: rmt.gaussian(6, "CII"),
            "class CII needs a matrix size n divisible by 4, got n=6",
        ),
        (lambda: rmt.circular(5, "DIII"), "class DIII needs an even matrix size n"),
        (lambda: rmt.gaussian(0), "positive integer, got 0"),
        (lambda: rmt.circular(2.5), "positive integer, got 2.5"),
        (lambda: rmt.circular(4, "D", charge=0), "charge of class D must be -1 or 1, got 0"),
        (lambda: rmt.circular(4, "AIII", charge=5), "from 0 to n=4, got 5"),
        (lambda: rmt.circular(4, "BDI", charge=1.5), "from 0 to n=4, got 1.5"),
        (lambda: rmt.circular(4, "CII", charge=3), "from 0 to n/2=2, got 3"),
        (lambda: rmt.circular(4, "A", charge=1), "class A has no topological invariant"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_sizes_kwant_accepts() -> None:
    # Odd sizes where no symmetry pairs states; CII circular matrices need only an even size.
    for sym in ("A", "AI", "D"):
        assert rmt.gaussian(3, sym, rng=0).shape == (3, 3)
    for sym in ("A", "AI", "D", "AIII", "BDI"):
        assert rmt.circular(3, sym, rng=0).shape == (3, 3)
    assert rmt.circular(6, "CII", rng=0).shape == (6, 6)
