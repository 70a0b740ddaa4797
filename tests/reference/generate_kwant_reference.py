"""Regenerate the Kwant reference transmissions stored in ``kwant_reference.json``.

Run with a Python that has Kwant 1.5 installed (``../shared/tools/kwant-reference.sh``
builds one into /tmp/kwant-ref):

    /tmp/kwant-ref/bin/python tests/reference/generate_kwant_reference.py

The tests compare against the stored numbers and never need Kwant.
"""

from __future__ import annotations

import json
import pathlib
import sys

import kwant
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from systems import SYSTEMS


def transmission_matrix(smatrix, n_leads):
    return [[float(smatrix.transmission(i, j)) for j in range(n_leads)] for i in range(n_leads)]


def main() -> None:
    out = {"kwant_version": kwant.__version__, "systems": {}}
    for name, make in SYSTEMS.items():
        fsys, params, energies = make(kwant)
        entries = []
        for energy in energies:
            s = kwant.smatrix(fsys, energy, params=params)
            n = len(fsys.leads)
            entries.append(
                {
                    "energy": energy,
                    "transmission": transmission_matrix(s, n),
                    "num_propagating": [int(s.num_propagating(i)) for i in range(n)],
                }
            )
        plain = {k: v for k, v in params.items() if isinstance(v, (int, float))}
        out["systems"][name] = {"params": plain, "results": entries}
        print(name, [np.round(e["transmission"][1][0], 6) for e in entries])
    path = pathlib.Path(__file__).with_name("kwant_reference.json")
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
