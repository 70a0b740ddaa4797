"""Public names: one name for the system argument, deprecation paths for renamed keywords."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import dephasing, spin


def wire():
    lat = meso.lattice.square(norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = 4.0
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(2))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


@pytest.mark.parametrize(
    ("call", "old"),
    [
        (
            lambda s, **kw: meso.transmission(energies=[1.0, 2.0], to_lead=1, from_lead=0, **kw),
            "system",
        ),
        (lambda s, **kw: meso.smatrices(energies=[1.0], **kw), "system"),
        (lambda s, **kw: dephasing.probe_sites(sites=[0, 1], **kw), "fsys"),
    ],
)
def test_old_keyword_still_works_with_a_deprecation_warning(call, old):
    fsys = wire()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = call(fsys, syst=fsys)
    with pytest.warns(DeprecationWarning, match=f"keyword {old}= is now syst="):
        old_result = call(fsys, **{old: fsys})
    if hasattr(new, "transmission_matrix"):
        new, old_result = new.transmission_matrix(), old_result.transmission_matrix()
    np.testing.assert_array_equal(np.asarray(new), np.asarray(old_result))


def test_old_and_new_keyword_together_is_an_error():
    fsys = wire()
    with pytest.raises(TypeError, match=r"got both system= .* and syst="):
        meso.transmission(syst=fsys, system=fsys, energies=[1.0])


def test_spin_valve_keyword_rename():
    fsys = spin.spin_valve(exchange_left=0.5)
    p = {"m_left": (0, 0, 1)}
    new = spin.lead_polarization(syst=fsys, lead=0, energy=0.2, params=p, kind="channels")
    with pytest.warns(DeprecationWarning, match="fsys= is now syst="):
        old = spin.lead_polarization(fsys=fsys, lead=0, energy=0.2, params=p, kind="channels")
    assert new == old
