"""The three scripts of the "first day" page run as written and show the physics they claim.

The blocks are taken from ``docs/first_day.md`` and run as the documentation build runs them
(``docs/_ext/page_runner.py``: in order, in an empty folder, figures kept), so the page and
this test cannot drift apart.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "first_day.md"
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import page_runner  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> page_runner.PageRun:
    pytest.importorskip("matplotlib", reason="the page draws figures (the 'plot' extra)")
    blocks = page_runner.python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 3, "the first-day page has three scripts"
    run = page_runner.run_blocks(blocks, "docs/first_day.md", tmp_path_factory.mktemp("fd"))
    if run.failure is not None:
        number, error = run.failure
        pytest.fail(f"docs/first_day.md: code block {number} raised\n{error}")
    return run


def test_each_script_is_short_and_draws_a_figure(page: page_runner.PageRun) -> None:
    blocks = page_runner.python_blocks(PAGE.read_text(encoding="utf-8"))
    for number, block in enumerate(blocks):
        code = [line for line in block.splitlines() if line.strip()]
        assert len(code) <= 40, f"script {number} has {len(code)} lines"
        assert page.figures.get(number), f"script {number} draws no figure"


def crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """The x where a decreasing y(x) crosses `level` (linear between the samples)."""
    return float(np.interp(level, y[::-1], x[::-1]))


def test_point_contact_plateaus_and_saddle_thresholds(page: page_runner.PageRun) -> None:
    ns = page.namespace
    V_g, G = ns["V_gate"], ns["G_qpc"]  # meV, 2e^2/h
    assert np.all(np.diff(G) < 1e-3), "a higher gate never opens the contact"
    # Plateaus at 1 and 2 (2e^2/h) at 4 K.
    assert np.min(np.abs(G - 1)) < 5e-3 and np.min(np.abs(G - 2)) < 1e-2
    # Büttiker's saddle: the n-th step is half open where V_g = E_F - hw (n + 1/2).
    for n in (0, 1):
        expected = float(ns["E_F"]) - 5.0 * (n + 0.5)
        assert crossing(V_g, G, n + 0.5) == pytest.approx(expected, abs=0.5)


def test_hall_bar_plateaus_are_h_over_nu_e2(page: page_runner.PageRun) -> None:
    ns = page.namespace
    nu, R_xy, R_xx = ns["nu"], ns["R_xy"], ns["R_xx"]  # R in h/e^2
    for filling, width in ((2, 0.4), (4, 0.1)):
        plateau = np.abs(nu - filling) < width
        assert plateau.any()
        np.testing.assert_allclose(R_xy[plateau], 1 / filling, rtol=5e-3)
        assert np.all(np.abs(R_xx[plateau]) < 5e-3)
    # Between the plateaus the disordered bar dissipates: R_xx peaks.
    between = (nu > 2.5) & (nu < 3.5)
    assert np.max(R_xx[between]) > 0.05


def test_point_contact_thermopower_streda_peak(page: page_runner.PageRun) -> None:
    ns = page.namespace
    g, S, S_mott = ns["g"], ns["S"], np.asarray(ns["S_mott"], dtype=float)
    streda = -np.log(2) / 1.5  # k_B/e, N = 1 channel open below the step
    assert ns["S_streda"] == pytest.approx(streda)
    step = (g > 1.1) & (g < 1.9)  # the step between the plateaus 1 and 2
    # At the middle of the step (G = 3/2 x 2e^2/h): Středa's value.
    middle = float(np.interp(1.5, g[step][::-1], S[step][::-1]))
    assert middle == pytest.approx(streda, rel=0.05)
    # The extremum is -(k_B/e) x_1 with x_1 = ln(1 + exp(-x_1)): the log of the golden ratio.
    golden = np.log((1 + np.sqrt(5)) / 2)
    assert np.min(S[step]) == pytest.approx(-golden, rel=0.05)
    # The Mott formula assumes T(E) smooth on the scale of kT; at this sharp step it overshoots.
    assert np.min(S_mott[step]) < 2 * np.min(S[step])
