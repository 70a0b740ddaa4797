"""Tight-binding systems that several test modules build: wires, chains, a Hall bar.

Each function returns the unfinalized builder, so that a test can add sites or leads
and finalize it with the options it needs (spin degeneracy, magnetic flux).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import mesoscopic as meso


def attach_wire_leads(syst: Any, lat: Any, width: int, onsite: Any = 4.0) -> None:
    """Attach leads of `width` sites along x: lead 0 on the left, lead 1 on the right.

    The lead sites lie at y = 0 .. width - 1 with onsite `onsite` and hopping -1.
    """
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = onsite
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())


def square_wire(
    width: int, length: int, onsite: Any = 4.0, lead_onsite: Any = 4.0, *, lat: Any = None
) -> meso.Builder:
    """A `width` x `length` square-lattice wire (hopping -1) between two leads.

    Sites (x, y) with 0 <= x < length, 0 <= y < width have onsite `onsite` (a value or a
    function); the leads of `attach_wire_leads` have onsite `lead_onsite`. `lat` is the
    lattice (one orbital, constant 1) to build on; a new one when not given.
    """
    lat = meso.lattice.square(1.0, norbs=1) if lat is None else lat
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    attach_wire_leads(syst, lat, width, lead_onsite)
    return syst


def chain_with_leads(n_sites: int, onsite: Any) -> meso.Builder:
    """Sites 0 .. n_sites - 1 of a chain at onsite `onsite` (hopping -1) between two leads.

    The leads are clean chains (onsite 0): lead 0 on the left, lead 1 on the right.
    """
    lat = meso.lattice.chain(norbs=1)
    syst = meso.Builder()
    syst[(lat(x) for x in range(n_sites))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst


def barrier_chain(height: float, length: int, *, margin: int = 2) -> meso.Builder:
    """A chain with `length` sites at onsite `height`, `margin` clean sites either side."""

    def onsite(site: Any) -> float:
        return height if margin <= site.tag[0] < margin + length else 0.0

    return chain_with_leads(length + 2 * margin, onsite)


def hall_bar(width: int, length: int, arm: int, onsite: Callable[..., Any]) -> meso.Builder:
    """Six-terminal Hall bar: 0 left, 1 right, 2/3 top (left/right), 4/5 bottom.

    A `width` x `length` bar with two arms of `arm` columns, two rows deep, on each side;
    bar and arms have onsite `onsite`, the leads onsite 4, hopping -1. Finalize with
    ``magnetic_flux`` for a field.
    """
    lat = meso.lattice.square(1.0, norbs=1)
    syst = meso.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    arms = [length // 4 - arm // 2, 3 * length // 4 - arm // 2]
    for x0 in arms:
        for x in range(x0, x0 + arm):
            for y in (-2, -1, width, width + 1):
                syst[lat(x, y)] = onsite
    syst[lat.neighbors()] = -1.0
    horizontal = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    horizontal[(lat(0, y) for y in range(width))] = 4.0
    leads = [horizontal, horizontal.reversed()]
    for direction in (1, -1):
        for x0 in arms:
            lead = meso.Builder(meso.TranslationalSymmetry((0, direction)))
            lead[(lat(x, 0) for x in range(x0, x0 + arm))] = 4.0
            leads.append(lead)
    for lead in leads:
        lead[lat.neighbors()] = -1.0
        syst.attach_lead(lead)
    return syst


def spin_barrier_wire(width: int, length: int, start: int, stop: int) -> meso.Builder:
    """A two-orbital square wire whose columns start .. stop - 1 are raised by diag(0.3, 1.1).

    Nothing flips the spin: the system and its leads (onsite 4, hopping -1 per orbital)
    carry the conservation law -sigma_z, so that block 0 is spin up.
    """
    sigma_z = np.diag([1.0, -1.0])
    barrier = np.diag([0.3, 1.1])
    lat = meso.lattice.square(1.0, norbs=2)

    def onsite(site: Any) -> np.ndarray:
        return 4 * np.eye(2) + (barrier if start <= site.tag[0] < stop else 0 * barrier)

    syst = meso.Builder(conservation_law=-sigma_z)
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -np.eye(2)
    lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)), conservation_law=-sigma_z)
    lead[(lat(0, y) for y in range(width))] = 4 * np.eye(2)
    lead[lat.neighbors()] = -np.eye(2)
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst
