"""Tight-binding systems written once against the Kwant vocabulary.

Each ``make_*`` function takes the module to build with (``kwant`` or
``mesoscopic``) so the very same script is run by both packages: this checks
the numbers and that ``import mesoscopic as kwant`` ports a transport script.
Each returns ``(finalized_system, params, energies)``.
"""

from __future__ import annotations

import numpy as np

SIGMA_0 = np.eye(2)
SIGMA_X = np.array([[0, 1], [1, 0]], dtype=complex)
SIGMA_Y = np.array([[0, -1j], [1j, 0]])
SIGMA_Z = np.array([[1, 0], [0, -1]], dtype=complex)


def _disorder(tag, seed, strength):
    """Onsite disorder in [-strength/2, strength/2], reproducible from the tag and seed."""
    rng = np.random.default_rng([seed, *(int(t) + 10_000 for t in tag)])
    return strength * (rng.random() - 0.5)


def finalized_with_wire_leads(kw, syst, lat, width):
    """`syst` with two leads along x, square-lattice wires `width` sites wide (onsite 4,
    hopping -1) at y = 0..width-1, finalized."""
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def make_wire(kw, width=7, length=12):
    lat = kw.lattice.square(1.0, norbs=1)
    syst = kw.Builder()

    def onsite(site, gate):
        return 4.0 + gate

    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    return finalized_with_wire_leads(kw, syst, lat, width), {"gate": 0.05}, [0.3, 0.7, 1.1, 1.9]


def make_disordered_wire(kw, width=10, length=30, seed=7, strength=2.0):
    lat = kw.lattice.square(1.0, norbs=1)
    syst = kw.Builder()

    def onsite(site, w):
        return 4.0 + w * _disorder(site.tag, seed, 1.0)

    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"w": strength}, [0.25, 0.8, 1.4]


def make_spin_orbit_wire(kw, width=6, length=15):
    """Rashba wire with a Zeeman field (two orbitals per site: spin up and down)."""
    lat = kw.lattice.square(1.0, norbs=2)
    syst = kw.Builder()

    def onsite(site, ez):
        return 4.0 * SIGMA_0 + ez * SIGMA_Z

    def hop_x(a, b, alpha):
        return -SIGMA_0 + 0.5j * alpha * SIGMA_Y

    def hop_y(a, b, alpha):
        return -SIGMA_0 - 0.5j * alpha * SIGMA_X

    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[kw.builder.HoppingKind((1, 0), lat, lat)] = hop_x
    syst[kw.builder.HoppingKind((0, 1), lat, lat)] = hop_y
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = onsite
    lead[kw.builder.HoppingKind((1, 0), lat, lat)] = hop_x
    lead[kw.builder.HoppingKind((0, 1), lat, lat)] = hop_y
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"alpha": 0.3, "ez": 0.1}, [0.2, 0.6, 1.3]


def make_graphene_zigzag(kw, width=5, length=8):
    """Graphene ribbon with bearded edges, leads along x.

    One single-bond atom per cell on each edge: the geometry of
    ``models.graphene_ribbon(width, edge="bearded")``; nearest-neighbour hopping -1.
    """
    lat = kw.lattice.honeycomb(1.0, norbs=1)

    def ribbon(pos):
        x, y = pos
        return 0 <= x < length and 0 <= y < width * np.sqrt(3) / 2 - 0.1

    def lead_shape(pos):
        return 0 <= pos[1] < width * np.sqrt(3) / 2 - 0.1

    syst = kw.Builder()

    def onsite(site, v):
        return v

    syst[lat.shape(ribbon, (0.1, 0.1))] = onsite
    syst[lat.neighbors()] = -1.0
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[lat.shape(lead_shape, (0.1, 0.1))] = 0.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"v": 0.02}, [0.05, 0.4, 0.9]


def make_two_orbital_wire(kw, width=4, length=10):
    """Two orbitals per site with inter-orbital hopping and a bump in the middle."""
    lat = kw.lattice.square(1.0, norbs=2)
    h0 = np.array([[0.5, 0.2], [0.2, -0.3]])
    tx = np.array([[-1.0, 0.3], [-0.1, -0.7]])
    ty = np.array([[-0.8, 0.0], [0.25, -1.1]])

    def onsite(site, bump):
        x = site.pos[0]
        return h0 + bump * np.exp(-((x - length / 2) ** 2) / 4) * np.eye(2)

    syst = kw.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[kw.builder.HoppingKind((1, 0), lat, lat)] = tx
    syst[kw.builder.HoppingKind((0, 1), lat, lat)] = ty
    lead = kw.Builder(kw.TranslationalSymmetry((1, 0)))
    lead[(lat(0, y) for y in range(width))] = h0
    lead[kw.builder.HoppingKind((1, 0), lat, lat)] = tx
    lead[kw.builder.HoppingKind((0, 1), lat, lat)] = ty
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"bump": 0.4}, [-0.9, 0.1, 1.2]


def make_wire_in_field(kw, length=20, width=9):
    """Disordered wire in a perpendicular field, Peierls phases written by hand (Landau gauge)."""
    lat = kw.lattice.square(1.0, norbs=1)

    def hopping(a, b, phi):
        xa, ya = a.pos
        xb, yb = b.pos
        return -np.exp(-2j * np.pi * phi * (-0.5 * (ya + yb) * (xa - xb)))

    def onsite(site, w):
        return 4.0 + w * _disorder(site.tag, 11, 1.0)

    syst = kw.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    syst[lat.neighbors()] = hopping
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 4.0
    lead[lat.neighbors()] = hopping
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"phi": 0.03, "w": 1.5}, [0.3, 0.6, 1.2]


def make_hall_bar(kw, length=24, width=10, arm=6, flux=0.03):
    """Six-terminal Hall bar in a perpendicular field, with disorder.

    Leads: 0 left, 1 right (along x); 2, 3 on top and 4, 5 at the bottom (along y).
    Kwant fixes the gauge with ``kwant.physics.magnetic_gauge``; mesoscopic with
    ``finalized(magnetic_flux=...)``. Transmissions are gauge invariant.
    """
    lat = kw.lattice.square(1.0, norbs=1)
    is_kwant = kw.__name__ == "kwant"

    def onsite(site, w):
        return 4.0 + w * _disorder(site.tag, 5, 1.0)

    if is_kwant:

        def hopping(a, b, peierls):
            return -peierls(a, b)
    else:
        hopping = -1.0

    syst = kw.Builder()
    syst[(lat(x, y) for x in range(length) for y in range(width))] = onsite
    arms = [(length // 4 - arm // 2, width), (3 * length // 4 - arm // 2, width)]
    for x0, _ in arms:
        for x in range(x0, x0 + arm):
            for y in list(range(width, width + 2)) + list(range(-2, 0)):
                syst[lat(x, y)] = onsite
    syst[lat.neighbors()] = hopping
    leads = []
    horizontal = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    horizontal[(lat(0, y) for y in range(width))] = 4.0
    leads += [horizontal, horizontal.reversed()]
    for direction in (1, -1):
        for x0, _ in arms:
            lead = kw.Builder(kw.TranslationalSymmetry((0, direction)))
            lead[(lat(x, 0) for x in range(x0, x0 + arm))] = 4.0
            leads.append(lead)
    for k, lead in enumerate(leads):
        lead[lat.neighbors()] = hopping
        if is_kwant:
            lead = lead.substituted(peierls=f"peierls_lead_{k}")
        syst.attach_lead(lead)
    params = {"w": 1.0}
    if is_kwant:
        fsys = syst.finalized()
        gauge = kw.physics.magnetic_gauge(fsys)
        # Kwant's field argument is twice our flux in units of h/e (checked against
        # hand-written Landau-gauge Peierls phases, which agree between the packages).
        phases = gauge(2 * flux, *([2 * flux] * len(leads)))
        params["peierls"] = phases[0]
        for k in range(len(leads)):
            params[f"peierls_lead_{k}"] = phases[k + 1]
        return fsys, params, [0.6, 1.0]
    params["phi"] = flux
    return syst.finalized(magnetic_flux="phi"), params, [0.6, 1.0]


def make_graphene_flake_fill(kw, radius=7.0, lead_half_width=4.0):
    """A graphene disk and its leads flood-filled from a template (``Builder.fill``)."""
    lat = kw.lattice.honeycomb(norbs=1)
    template = kw.Builder(kw.TranslationalSymmetry(*lat.prim_vecs))
    template[lat.a(0, 0)] = 0.0
    template[lat.b(0, 0)] = 0.0
    template[lat.neighbors()] = -1.0

    def disk(site):
        x, y = site.pos
        return x**2 + y**2 < radius**2

    syst = kw.Builder()
    syst.fill(template, disk, (0, 0))

    def onsite(site, v):
        return v * np.tanh(site.pos[0])

    syst[list(syst.sites())] = onsite
    lead = kw.Builder(kw.TranslationalSymmetry(lat.vec((-1, 0))))
    lead.fill(template, lambda site: abs(site.pos[1]) < lead_half_width, (0, 0))
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"v": 0.1}, [0.35, 0.6, 0.95]


def make_ring_with_branch_cut(kw, inner=5.0, outer=10.0, width=5):
    """Kwant's Aharonov-Bohm ring: a key function selects the hoppings across a cut."""
    lat = kw.lattice.square(1.0, norbs=1)
    syst = kw.Builder()

    def ring(pos):
        x, y = pos
        return inner**2 < x**2 + y**2 < outer**2

    syst[lat.shape(ring, (0, inner + 1))] = 4.0
    syst[lat.neighbors()] = -1.0

    def hops_across_cut(builder):
        for hop in kw.builder.HoppingKind((1, 0), lat, lat)(builder):
            x0, y0 = hop[0].tag
            if y0 < 0 and x0 == 1:
                yield hop

    def phase(a, b, phi):
        return -np.exp(1j * phi)

    syst[hops_across_cut] = phase
    lead = kw.Builder(kw.TranslationalSymmetry((-1, 0)))
    lead[lat.shape(lambda pos: -width / 2 < pos[1] < width / 2, (0, 0))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(), {"phi": 0.9}, [0.4, 0.8, 1.3]


def make_graphene_disk_two_directions(kw, r=10, w=2.0, pot=0.1):
    """Kwant's graphene tutorial: a disk with a p-n step, leads along two lattice vectors.

    Uses ``add_site_family(..., other_vectors=...)``, ``del syst[site]``, an explicit extra
    hopping and a lead along the second primitive vector.
    """
    sin_30, cos_30 = 1 / 2, np.sqrt(3) / 2
    graphene = kw.lattice.general(
        [(1, 0), (sin_30, cos_30)], [(0, 0), (0, 1 / np.sqrt(3))], norbs=1
    )
    a, b = graphene.sublattices

    def circle(pos):
        x, y = pos
        return x**2 + y**2 < r**2

    def potential(site):
        x, y = site.pos
        return pot * np.tanh((y * cos_30 + x * sin_30) / w)

    syst = kw.Builder()
    syst[graphene.shape(circle, (0, 0))] = potential
    hoppings = (((0, 0), a, b), ((0, 1), a, b), ((-1, 1), a, b))
    syst[[kw.builder.HoppingKind(*hopping) for hopping in hoppings]] = -1
    del syst[a(0, 0)]
    syst[a(-2, 1), b(2, 2)] = -1
    leads = []
    for vector, onsite, across in (
        ((-1, 0), -pot, lambda pos: -0.4 * r < pos[1] < 0.4 * r),
        ((0, 1), pot, lambda pos: -0.4 * r < pos[1] * sin_30 - pos[0] * cos_30 < 0.4 * r),
    ):
        sym = kw.TranslationalSymmetry(graphene.vec(vector))
        sym.add_site_family(a, other_vectors=[(-1, 2)])
        sym.add_site_family(b, other_vectors=[(-1, 2)])
        lead = kw.Builder(sym)
        lead[graphene.shape(across, (0, 0))] = onsite
        lead[[kw.builder.HoppingKind(*hopping) for hopping in hoppings]] = -1
        leads.append(lead)
    for lead in leads:
        syst.attach_lead(lead)
    return syst.finalized(), {}, [-0.15, -0.05, 0.07, 0.13]


SYSTEMS = {
    "wire": make_wire,
    "disordered_wire": make_disordered_wire,
    "spin_orbit_wire": make_spin_orbit_wire,
    "graphene_zigzag": make_graphene_zigzag,
    "two_orbital_wire": make_two_orbital_wire,
    "wire_in_field": make_wire_in_field,
    "hall_bar": make_hall_bar,
    "graphene_flake_fill": make_graphene_flake_fill,
    "ring_with_branch_cut": make_ring_with_branch_cut,
    "graphene_disk_two_directions": make_graphene_disk_two_directions,
}
