"""Batched transmission of systems whose leads need the exact eigenmode method, against Kwant.

The square wires of ``bench_rgf.py`` have leads with a closed-form self-energy. Here the
leads are generic: graphene zigzag ribbons of 24 and 60 chains (a rank-deficient hopping
between cells), a spinful wire with Rashba coupling and a Zeeman field (two orbitals per
site, spin mixed by the hoppings) and a quantum spin Hall (BHZ) ribbon (four orbitals per
site, matrix hoppings), so every energy needs the lead-mode eigenproblem. The systems are
written once against the Kwant vocabulary and built by each package from the same code.
For each it prints, in milliseconds per energy, our batched solver (``meso.transmission``
over all energies, with ``--workers`` processes) and Kwant 1.5 (``kwant.smatrix`` energy by
energy, on the same energies unless ``--kwant-energies`` picks fewer) when ``import kwant``
works here or in the interpreter given by ``--kwant-python``, the ratio and the largest
difference of the transmissions.

Usage::

    python benchmarks/bench_generic_leads.py [--workers 2] [--kwant-energies 32]
                                             [--kwant-python /path/to/python-with-kwant]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

CASES = {
    "graphene_zigzag_24x60": (24, 60.0),
    "graphene_zigzag_60x60": (60, 60.0),
    "rashba_zeeman_30x100": (30, 100),
    "bhz_40x40": (40, 40),
}


def graphene_zigzag(kw, width: int, length: float):
    """Zigzag ribbon with `width` zigzag chains, a smooth p-n step of height 0.1."""
    lat = kw.lattice.honeycomb(1.0, norbs=1)
    low, high = -1 / (2 * np.sqrt(3)) - 0.1, (width - 1) * np.sqrt(3) / 2 + 0.1
    syst = kw.Builder()

    def region(p):
        return low < p[1] < high and 0 <= p[0] < length

    syst[lat.shape(region, (0.1, 0.1))] = lambda site: 0.1 * np.tanh(site.pos[0] - length / 2)
    syst[lat.neighbors()] = -1.0
    lead = kw.Builder(kw.TranslationalSymmetry((-1.0, 0.0)))
    lead[lat.shape(lambda p: low < p[1] < high, (0.1, 0.1))] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), np.linspace(0.05, 0.8, 32)


def bhz(kw, width: int, length: int):
    """BHZ ribbon (A = 0.5, B = -1, D = 0, M = -1), Anderson disorder 1, fixed seed."""
    s0, sx = np.eye(2), np.array([[0, 1], [1, 0]], complex)
    sy, sz = np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
    up, down = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    a, b, m = 0.5, -1.0, -1.0
    onsite = np.kron(s0, (m - 4 * b) * sz)
    hop_x = np.kron(up, b * sz + 0.5j * a * sx) + np.kron(down, b * sz - 0.5j * a * sx)
    hop_y = np.kron(s0, b * sz - 0.5j * a * sy)
    values = np.random.default_rng(1).uniform(-0.5, 0.5, size=(length, width))
    fsys = _square_wire_with_matrix_hoppings(kw, width, length, onsite, hop_x, hop_y, values)
    return fsys, np.linspace(0.01, 0.3, 32)


def _square_wire_with_matrix_hoppings(kw, width, length, onsite, hop_x, hop_y, values):
    """A W x L square-lattice wire, onsite ``onsite + values[x, y]``, two leads along x."""
    norbs = onsite.shape[0]
    lat = kw.lattice.square(1.0, norbs=norbs)
    syst = kw.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = onsite + values[x, y] * np.eye(norbs)
    syst[kw.builder.HoppingKind((1, 0), lat, lat)] = hop_x
    syst[kw.builder.HoppingKind((0, 1), lat, lat)] = hop_y
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = onsite
    lead[kw.builder.HoppingKind((1, 0), lat, lat)] = hop_x
    lead[kw.builder.HoppingKind((0, 1), lat, lat)] = hop_y
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def rashba_zeeman(kw, width: int, length: int):
    """Spinful wire with Rashba coupling 0.3 and Zeeman field 0.2 (t = 1), disorder 0.5."""
    s0, sx = np.eye(2), np.array([[0, 1], [1, 0]], complex)
    sy, sz = np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
    alpha, zeeman = 0.3, 0.2
    onsite = 4 * s0 + zeeman * sz
    hop_x = -s0 - 0.5j * alpha * sy
    hop_y = -s0 + 0.5j * alpha * sx
    values = np.random.default_rng(2).uniform(-0.25, 0.25, size=(length, width))
    fsys = _square_wire_with_matrix_hoppings(kw, width, length, onsite, hop_x, hop_y, values)
    return fsys, np.linspace(0.05, 1.0, 32)


BUILDERS = {
    "graphene_zigzag_24x60": graphene_zigzag,
    "graphene_zigzag_60x60": graphene_zigzag,
    "rashba_zeeman_30x100": rashba_zeeman,
    "bhz_40x40": bhz,
}


def kwant_timing(name: str, count: int) -> dict:
    import kwant

    fsys, energies = BUILDERS[name](kwant, *CASES[name])
    energies = energies[:: max(1, len(energies) // count)][:count]
    kwant.smatrix(fsys, float(energies[0]))  # warm-up
    start = time.perf_counter()
    values = [kwant.smatrix(fsys, float(e)).transmission(1, 0) for e in energies]
    seconds = time.perf_counter() - start
    return {
        "ms": 1e3 * seconds / len(energies),
        "energies": [float(e) for e in energies],
        "transmission": values,
    }


def run_kwant(name: str, count: int, python: str | None) -> dict | None:
    try:
        import kwant  # noqa: F401
    except ImportError:
        if python is None:
            return None
        out = subprocess.run(
            [python, __file__, "--kwant-json", json.dumps([name, count])],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    return kwant_timing(name, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="processes for our solver")
    parser.add_argument(
        "--kwant-energies",
        type=int,
        default=32,
        help="energies timed with Kwant, evenly picked from ours (default: all 32, the same)",
    )
    parser.add_argument("--kwant-python", default=None, help="interpreter with Kwant installed")
    parser.add_argument("--kwant-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kwant_json is not None:  # the Kwant side, run in another interpreter
        name, count = json.loads(args.kwant_json)
        print(json.dumps(kwant_timing(name, count)))
        return
    try:
        import mesoscopic as meso
    except ImportError:  # running from a checkout without installing
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
        import mesoscopic as meso

    print(f"generic leads: workers={args.workers}, cpus={os.cpu_count()}")
    header = ("system", "sites", "ours ms/E", "Kwant ms/E", "ratio", "max|dT|")
    print(" ".join(f"{h:>{w}s}" for h, w in zip(header, (22, 6, 10, 11, 6, 8))))
    for name in CASES:
        fsys, energies = BUILDERS[name](meso, *CASES[name])
        meso.transmission(fsys, [energies[0] / 2], 1, 0)  # warm-up, as Kwant's run has one
        start = time.perf_counter()
        ours = meso.transmission(fsys, energies, 1, 0, workers=args.workers)
        ms = 1e3 * (time.perf_counter() - start) / len(energies)
        kw = run_kwant(name, args.kwant_energies, args.kwant_python)
        if kw is None:
            print(f"{name:>22s} {len(fsys.sites):6d} {ms:10.1f} {'-':>11s}")
            continue
        index = [int(np.argmin(np.abs(energies - e))) for e in kw["energies"]]
        diff = float(np.max(np.abs(ours[index] - np.array(kw["transmission"]))))
        print(
            f"{name:>22s} {len(fsys.sites):6d} {ms:10.1f} {kw['ms']:11.1f} "
            f"{kw['ms'] / ms:6.1f} {diff:8.1e}"
        )


if __name__ == "__main__":
    main()
