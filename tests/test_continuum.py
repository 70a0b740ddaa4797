"""Continuum (k.p) discretization: dispersions, Hermiticity, transport through filled templates."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sympy", reason="mesoscopic.continuum needs SymPy (the 'continuum' extra)")

import sympy

import mesoscopic as meso
from mesoscopic import continuum
from mesoscopic.continuum import (
    build_discretized,
    discretize,
    discretize_landau,
    discretize_symbolic,
    lambdify,
    sympify,
)
from mesoscopic.physics import Bands


def bloch_hamiltonian(template, k, params=None):
    """H(k) = sum over hoppings of <0|H|d> e^{i k.d a}, straight from the template's values."""
    params = params or {}
    lat = template.lattice
    origin = lat(*([0] * lat.prim_vecs.shape[0]))

    def value(v, *sites):
        return v(*sites, **params) if callable(v) else v

    h = np.array(value(template[origin], origin), dtype=complex).reshape(lat.norbs, lat.norbs)
    for (a, b), v in template.hopping_value_pairs():
        hop = np.array(value(v, a, b), dtype=complex).reshape(h.shape)
        d = np.asarray(b.pos) - np.asarray(a.pos)  # <a|H|b>, b at a + d
        phase = np.exp(1j * np.dot(k, d))
        h += hop * phase + hop.conj().T * np.conj(phase)
    return h


# ---- dispersion: lattice form exactly, continuum limit as the grid shrinks ---------------


@pytest.mark.parametrize("a", [1.0, 0.5, 0.25])
def test_k_squared_on_square_grid_is_the_cosine_band(a):
    template = discretize("k_x**2 + k_y**2", grid=a)
    for k in [(0.3, -0.7), (1.1, 0.2), (0.0, 0.0)]:
        energy = bloch_hamiltonian(template, np.array(k))[0, 0].real
        exact = sum(2 * (1 - np.cos(q * a)) / a**2 for q in k)
        assert energy == pytest.approx(exact, abs=1e-12)


def test_lead_bands_converge_to_continuum_dispersion_quadratically():
    k, alpha = 0.8, 0.6
    errors = []
    for a in [0.4, 0.2, 0.1]:
        template = discretize("k_x**2 * sigma_0 + alpha * k_x * sigma_y", grid=a)
        lead = meso.Builder(meso.TranslationalSymmetry((a,)))
        lead.fill(template, lambda site: True, template.lattice(0))
        bands = Bands(lead.finalized(), params={"alpha": alpha})
        energies = np.sort(bands(k * a))  # Bands takes the momentum per unit cell
        # Independent: the discretized Rashba bands in closed form ...
        lattice_form = (
            2 * (1 - np.cos(k * a)) / a**2 + np.array([-1, 1]) * alpha * np.sin(k * a) / a
        )
        np.testing.assert_allclose(energies, np.sort(lattice_form), atol=1e-10)
        # ... and the continuum k^2 +- alpha k they approach.
        errors.append(np.max(np.abs(energies - (k**2 + np.array([-1, 1]) * alpha * k))))
    # Second-order accurate: halving the grid divides the error by about four.
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.05)
    assert errors[1] / errors[2] == pytest.approx(4, rel=0.05)


def test_rashba_2d_bloch_hamiltonian_converges_to_k_dot_sigma():
    ham = "(k_x**2 + k_y**2) * sigma_0 + alpha * (k_x * sigma_y - k_y * sigma_x)"
    k = np.array([0.4, -0.3])
    kk = np.hypot(*k)
    exact = kk**2 + np.array([-1, 1]) * 0.5 * kk
    errors = []
    for a in [0.2, 0.1]:
        h = bloch_hamiltonian(discretize(ham, grid=a), k, {"alpha": 0.5})
        np.testing.assert_allclose(h, h.conj().T, atol=1e-13)
        errors.append(np.max(np.abs(np.linalg.eigvalsh(h) - exact)))
    assert errors[1] < errors[0] / 3.5


# ---- position-dependent coefficients ------------------------------------------------------


def test_position_dependent_mass_sits_on_the_mid_bond_and_is_hermitian():
    a = 0.5
    template = discretize("k_x * A(x) * k_x + k_y * A(x) * k_y + V(x, y)", grid=a)
    lat = template.lattice
    syst = meso.Builder()
    nx, ny = 6, 3
    syst.fill(template, lambda s: 0 <= s.tag[0] < nx and 0 <= s.tag[1] < ny, lat(0, 0))
    fsyst = syst.finalized()

    def mass(x):
        return 1 + 0.5 * np.sin(x)

    params = {"A": mass, "V": lambda x, y: 0.1 * x * y}
    h = fsyst.hamiltonian_submatrix(params=params)
    np.testing.assert_allclose(h, h.conj().T, atol=1e-13)

    # Independent: the symmetric finite-difference operator written by hand.
    index = {tuple(s.tag): i for i, s in enumerate(fsyst.sites)}
    expected = np.zeros_like(h)
    for (i, j), n in index.items():
        x, y = i * a, j * a
        expected[n, n] = 0.1 * x * y + (mass(x + a / 2) + mass(x - a / 2) + 2 * mass(x)) / a**2
        for di, dj, coupling in [(1, 0, mass(x + a / 2)), (0, 1, mass(x))]:
            m = index.get((i + di, j + dj))
            if m is not None:
                expected[n, m] = expected[m, n] = -coupling / a**2
    np.testing.assert_allclose(h, expected, atol=1e-12)


def test_symbolic_form_of_k_A_k():
    tb, coords = discretize_symbolic("k_x * A(x) * k_x")
    x, a_x = continuum.position_operators[0], sympy.Symbol("a_x")
    A = sympy.Function("A")
    assert coords == ["x"]
    assert sympy.simplify(tb[(1,)] + A(x + a_x / 2) / a_x**2) == 0
    assert sympy.simplify(tb[(0,)] - (A(x + a_x / 2) + A(x - a_x / 2)) / a_x**2) == 0


# ---- transport through filled templates ---------------------------------------------------


def rashba_zeeman_wire(width=3, length=8):
    ham = (
        "(k_x**2 + k_y**2) * sigma_0 + alpha * (k_x * sigma_y - k_y * sigma_x)"
        " + B * sigma_z + V(x) * sigma_0"
    )
    template = discretize(ham)
    lat = template.lattice
    syst = meso.Builder()
    syst.fill(template, lambda s: 0 <= s.tag[0] < length and 0 <= s.tag[1] < width, lat(0, 0))
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead.fill(template, lambda s: 0 <= s.tag[1] < width, lat(0, 0))
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


@pytest.fixture(scope="module")
def wire():
    return rashba_zeeman_wire()


def test_rashba_zeeman_wire_has_a_helical_half_plateau(wire):
    # Lowest transverse level of a 3-site-wide grid: 2 - 2 cos(pi/4); Zeeman splits it by 2B.
    level = 2 - 2 * np.cos(np.pi / 4)
    params = {"alpha": 0.2, "B": 0.3, "V": lambda x: 0.0}
    in_gap = meso.smatrix(wire, level, params=params)
    above = meso.smatrix(wire, level + 0.6, params=params)
    assert in_gap.num_propagating(0) == 1
    assert in_gap.transmission(1, 0) == pytest.approx(1, abs=1e-8)  # G = e^2/h
    assert above.num_propagating(0) == 2
    assert above.transmission(1, 0) == pytest.approx(2, abs=1e-8)
    # Without the field the two spin branches are degenerate: no half plateau.
    no_field = meso.smatrix(wire, level, params={**params, "B": 0.0})
    assert no_field.transmission(1, 0) == pytest.approx(2, abs=1e-8)


def test_rashba_zeeman_wire_with_a_barrier_is_unitary(wire):
    params = {"alpha": 0.4, "B": 0.3, "V": lambda x: 0.4 * np.exp(-((x - 3.5) ** 2))}
    for energy in [0.5, 0.9, 1.3]:
        s = meso.smatrix(wire, energy, params=params)
        matrix = np.asarray(s.data)
        np.testing.assert_allclose(matrix.conj().T @ matrix, np.eye(len(matrix)), atol=1e-10)
        assert s.transmission(1, 0) + s.transmission(0, 0) == pytest.approx(
            s.num_propagating(0), abs=1e-9
        )


# ---- Landau levels ----------------------------------------------------------------------


def test_landau_levels_of_free_electron_are_the_oscillator_ladder():
    n_levels = 6
    syst = discretize_landau("(k_x**2 + k_y**2) * sigma_0 + g * B * sigma_z", n_levels).finalized()
    for field in [0.3, -1.2]:
        h = syst.hamiltonian_submatrix(params={"B": field, "g": 0.1})
        energies = np.sort(np.linalg.eigvalsh(h))
        n = np.arange(n_levels)
        exact = np.sort(
            np.concatenate(
                [abs(field) * (2 * n + 1) + 0.1 * field, abs(field) * (2 * n + 1) - 0.1 * field]
            )
        )
        np.testing.assert_allclose(energies, exact, atol=1e-12)


def test_landau_template_fills_a_slab_along_the_field():
    template = discretize_landau("k_x**2 + k_y**2 + k_z**2", 3)
    syst = meso.Builder()
    syst.fill(template, lambda s: 0 <= s.pos[0] < 4, (0,))
    assert sorted(tuple(s.tag) for s in syst.sites()) == [
        (i, n) for i in range(4) for n in range(3)
    ]


# ---- input handling -----------------------------------------------------------------------


def test_sympify_names_and_matrices():
    k_x, k_y, _ = continuum.momentum_operators
    x = continuum.position_operators[0]
    assert (
        sympify("k_x * sigma_y + k_y * sigma_x")
        == k_x * continuum.sigma_y + k_y * continuum.sigma_x
    )
    assert not (k_x * x - x * k_x).equals(0)  # operators do not commute
    assert sympify("[[1, k_x], [k_x, 0]]") == sympy.Matrix([[1, k_x], [k_x, 0]])
    assert sympify("A", locals={"A": "[[0, -1j], [1j, 0]]"}) == continuum.sigma_y
    assert lambdify("a + b", locals={"b": "b + c"})(1, 3, 5) == 9


@pytest.mark.parametrize("key", [1, "1x", "for"])
def test_invalid_locals_name_the_key(key):
    with pytest.raises(ValueError, match="locals"):
        sympify("x", locals={key: 1})


def test_scalar_plus_matrix_error_suggests_the_identity():
    with pytest.raises(TypeError, match="sigma_0"):
        sympify("k_x**2 + sigma_z")


def test_template_string_shows_value_functions():
    text = str(discretize("A * k_x + V(x)"))
    assert "def onsite(site, V)" in text and "def hopping" in text


def test_build_discretized_accepts_strings_and_conjugates_reversed_offsets():
    template = build_discretized({(0,): "0", (-1,): "1j * t"}, "x")
    lat = template.lattice
    assert template[lat(0), lat(1)](lat(0), lat(1), t=2.0) == pytest.approx(-2j)
    assert template[lat(1), lat(0)](lat(1), lat(0), t=2.0) == pytest.approx(2j)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"coords": "yx"}, "sorted"),
        ({"coords": "xw"}, "only 'x', 'y' and 'z'"),
        ({"grid": meso.lattice.Monatomic([[1, 0], [1, 1]], norbs=1)}, "orthogonal"),
        ({"grid": meso.lattice.Monatomic([[1, 0], [0, 1]], norbs=2)}, "norbs=2"),
        ({"grid": -0.5}, "positive"),
    ],
)
def test_bad_discretization_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        discretize("k_x**2 + k_y**2", **kwargs)


def test_invalid_symbol_name_and_reserved_spacing_symbol():
    with pytest.raises(ValueError, match="'for'"):
        discretize(sympy.Symbol("for"), "x")
    with pytest.raises(TypeError, match="grid spacings"):
        discretize_symbolic("a_x * k_x**2")
    with pytest.raises(ValueError, match="no coordinates"):
        discretize_symbolic("V + 1")
    with pytest.raises(ValueError, match="Landau levels"):
        discretize_landau("k_x**2 + k_y**2", 0)


def test_warnings_point_at_the_callers_line():
    expr = sympify("k_x**2 + V")
    with pytest.warns(RuntimeWarning, match="locals") as record:
        discretize_symbolic(expr, locals={"V": "V_0"})
    assert record[0].filename == __file__
    with pytest.warns(DeprecationWarning, match="grid_spacing") as record:
        discretize("k_x**2", grid_spacing=0.5)
    assert record[0].filename == __file__


def test_landau_lead_with_a_term_odd_in_the_field_direction_has_the_continuum_sign():
    # H = k_x^2 + k_y^2 + alpha k_x k_z: in N Landau levels k_x = sqrt(B/2) (a + a^dagger),
    # and on the grid k_z -> sin(k a) / a for a Bloch wave exp(i k z / a). The bands of the
    # lead are those of H_N(k) = B (2 a^dagger a + 1) + alpha k_x sin(k): a conjugated
    # hopping would give sin(-k) instead (the same set at +-k, different at each k).
    n, field, alpha = 6, 0.4, 0.7
    lead = continuum.discretize_landau("k_x**2 + k_y**2 + alpha * k_x * k_z", N=n)
    flead = lead.finalized()
    bands = Bands(flead, params={"B": field, "alpha": alpha})
    ladder = np.diag(np.sqrt(np.arange(1, n + 3)), k=1)
    k_x = np.sqrt(field / 2) * (ladder + ladder.T)
    k_y = 1j * np.sqrt(field / 2) * (ladder - ladder.T)
    landau = (k_x @ k_x + k_y @ k_y)[:n, :n].real
    for k in (-1.1, 0.3, 0.9):
        expected = np.linalg.eigvalsh(landau + alpha * k_x[:n, :n] * np.sin(k))
        np.testing.assert_allclose(bands(k), expected, atol=1e-12)
    # The spectrum is the same at +-k (Landau-level parity anticommutes with k_x), so the
    # hopping itself is compared: Kwant 1.5 gives -1j alpha k_x / 2 for this lead's
    # inter_cell_hopping (its own test_landau_levels checks the same matrix).
    hop = flead.inter_cell_hopping(params={"B": field, "alpha": alpha})
    np.testing.assert_allclose(hop, -0.5j * alpha * k_x[:n, :n], atol=1e-14)
