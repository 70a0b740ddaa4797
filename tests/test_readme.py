"""The code a new user copies from the README (and from the issue's Kwant-style API) runs."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def as_kwant(code):
    """The same code written by a Kwant user: ``import mesoscopic as kwant``, ``kwant.``."""
    code = code.replace("import mesoscopic as meso", "import mesoscopic as kwant")
    return re.sub(r"\bmeso\.", "kwant.", code)


@pytest.mark.parametrize("spelling", ["meso", "kwant"])
def test_readme_python_examples_run(spelling):
    blocks = python_blocks(README.read_text())
    assert blocks, "the README should show a first calculation"
    for block in blocks:
        if spelling == "kwant":
            block = as_kwant(block)
            assert "meso" not in block.replace("mesoscopic", "")
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)
        s = namespace["S"]
        # 10-site-wide wire at E = 0.5: two open channels; the gated region (0.1 above the
        # leads) reflects a little, and what is not transmitted is reflected.
        assert s.num_propagating(0) == 2
        assert 1.5 < s.transmission(1, 0) < 2.0
        assert s.transmission(1, 0) + s.transmission(0, 0) == pytest.approx(2.0, abs=1e-10)
        g = namespace["G"]
        np.testing.assert_allclose(g.sum(axis=0), 0, atol=1e-10)


def test_kwant_script_runs_with_mesoscopic_as_kwant():
    import mesoscopic as kwant

    lat = kwant.lattice.general([(1, 0), (0, 1)], [(0, 0)], norbs=1)
    assert len(lat.sublattices) == 1
    square = kwant.lattice.square(1.0, norbs=1)
    np.testing.assert_allclose(square.vec((2, 3)), [2, 3])
    syst = kwant.Builder()
    syst[(square(x, y) for x in range(6) for y in range(3))] = 4
    syst[square.neighbors()] = -1
    del syst[square(2, 1)]
    syst[kwant.builder.HoppingKind((1, 0), square, square)] = -1
    lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
    lead[(square(0, y) for y in range(3))] = 4
    lead[square.neighbors()] = -1
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    fsys = syst.finalized()
    ham = fsys.hamiltonian_submatrix(params={}, sparse=True)
    assert ham.shape == (17, 17)
    bands = kwant.physics.Bands(fsys.leads[0])
    np.testing.assert_allclose(bands(0.0), [4 - 2 - 2 * np.cos(k * np.pi / 4) for k in (1, 2, 3)])
    s = kwant.smatrix(fsys, 1.0, params={})
    assert 0 < s.transmission(1, 0) < s.num_propagating(0)


def test_lead_that_does_not_meet_the_region_is_an_error():
    import mesoscopic as meso

    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(4) for y in range(3))] = 4
    syst[lat.neighbors()] = -1
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(10, 13))] = 4
    lead[lat.neighbors()] = -1
    with pytest.raises(ValueError, match="does not overlap the scattering region"):
        syst.attach_lead(lead)
