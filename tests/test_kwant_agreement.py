"""Agreement with Kwant 1.5 on the same tight-binding systems.

The systems are written once (tests/reference/systems.py) and run by both
packages; Kwant's transmissions are stored in kwant_reference.json by
tests/reference/generate_kwant_reference.py, so this test needs no Kwant.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import mesoscopic
from reference.systems import SYSTEMS

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "reference" / "kwant_reference.json").read_text()
)


def test_reference_covers_the_required_kinds_of_system():
    assert REFERENCE["kwant_version"].startswith("1.5")
    assert set(REFERENCE["systems"]) == set(SYSTEMS)
    assert len(SYSTEMS) >= 6


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_transmissions_agree_with_kwant(name):
    fsys, params, energies = SYSTEMS[name](mesoscopic)
    stored = REFERENCE["systems"][name]["results"]
    assert [entry["energy"] for entry in stored] == energies
    for entry in stored:
        s = mesoscopic.smatrix(fsys, entry["energy"], params=params)
        n = len(fsys.leads)
        assert [s.num_propagating(i) for i in range(n)] == entry["num_propagating"]
        ours = s.transmission_matrix()
        np.testing.assert_allclose(ours, entry["transmission"], rtol=0, atol=1e-8)
        assert s.check_unitarity() < 1e-10
