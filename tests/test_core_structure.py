"""The core's shape: lattice -> builder -> system, one way, and a System that is frozen.

The Builder hands the System its parts through the System's public constructor; the
lattice and system modules never import the builder, no module imports the package's own
``__init__``, ``Builder.finalized`` has a concrete return type, and a finalized System
(and its leads and term groups) refuses assignment and exposes read-only arrays.
"""

from __future__ import annotations

import ast
import pickle
import typing
from pathlib import Path

import numpy as np
import pytest

import mesoscopic as meso
from mesoscopic import lattice
from mesoscopic.builder import ArrayBuilder, Builder
from mesoscopic.system import InfiniteSystem, System, TermGroup

PACKAGE = Path(meso.__file__).parent


def _imports_in(source: str, package: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every import in `source`, a module of `package`, made absolute."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.append((module, tuple(a.name for a in node.names)))
    return found


def _imported_modules(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    return _imports_in(path.read_text(), package)


def _submodules(package_dir: Path) -> set[str]:
    return {p.stem for p in package_dir.iterdir() if p.suffix == ".py"} | {
        p.name for p in package_dir.iterdir() if (p / "__init__.py").exists()
    }


def _face_imports(imports: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    """Imports of the package's ``__init__`` itself: ``import mesoscopic``, ``from .. import x``
    for an ``x`` that is not a submodule."""
    submodules = _submodules(PACKAGE)
    return [
        (module, names)
        for module, names in imports
        if module == "mesoscopic" and (not names or any(n not in submodules for n in names))
    ]


@pytest.mark.parametrize("name", ["lattice", "system"])
def test_lattice_and_system_import_nothing_from_builder(name):
    imports = _imported_modules(PACKAGE / f"{name}.py")
    assert imports, "the import parser found nothing"
    offending = [
        (module, names)
        for module, names in imports
        if module == "mesoscopic.builder" or (module == "mesoscopic" and "builder" in names)
    ]
    assert offending == []


def test_import_parser_sees_a_builder_import():
    # The check above could pass by not recognizing imports; builder.py imports lattice.
    modules = {module for module, _ in _imported_modules(PACKAGE / "builder.py")}
    assert {"mesoscopic.lattice", "mesoscopic.system"} <= modules


def test_no_module_imports_the_package_face():
    """``import mesoscopic`` or ``from .. import __version__`` inside the package is a cycle."""
    offending = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        faces = _face_imports(_imported_modules(path))
        if faces:
            offending[str(path.relative_to(PACKAGE))] = faces
    assert offending == {}


@pytest.mark.parametrize(
    ("source", "package", "caught"),
    [
        ("from .. import __version__", ("mesoscopic", "sweep"), True),
        ("from . import Builder", ("mesoscopic",), True),
        ("import mesoscopic", ("mesoscopic",), True),
        ("import mesoscopic.lattice", ("mesoscopic",), False),
        ("from . import lattice, _checks", ("mesoscopic",), False),
        ("from .._version import __version__", ("mesoscopic", "sweep"), False),
        ("from .lattice import Site", ("mesoscopic",), False),
    ],
)
def test_face_check_tells_face_imports_from_submodule_imports(source, package, caught):
    assert bool(_face_imports(_imports_in(source, package))) is caught


def test_hopping_kind_and_symmetry_live_with_the_lattice():
    assert meso.builder.HoppingKind is lattice.HoppingKind
    assert meso.builder.TranslationalSymmetry is lattice.TranslationalSymmetry
    assert meso.HoppingKind is lattice.HoppingKind
    assert lattice.HoppingKind.__module__ == "mesoscopic.lattice"


def test_finalized_has_a_concrete_return_type():
    hints = typing.get_type_hints(Builder.finalized)
    assert hints["return"] == System | InfiniteSystem
    assert typing.get_type_hints(ArrayBuilder.finalized)["return"] is System


# ---- a finalized System is frozen ----------------------------------------------------


def _gated_onsite(site, v):
    return 4.0 + v


def _wire(field: bool = False) -> System:
    lat = lattice.square(norbs=1)
    syst = Builder()
    syst[(lat(x, y) for x in range(3) for y in range(2))] = _gated_onsite
    syst[lat.neighbors()] = -1.0
    lead = Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(2))] = 4.0
    lead[lat.neighbors()] = -1.0
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized(magnetic_flux="phi" if field else None)


def _array_wire() -> System:
    lat = lattice.square(norbs=1)
    arr = ArrayBuilder()
    arr.add_sites(lat, [(x, y) for x in range(3) for y in range(2)], 4.0)
    arr.add_hoppings(lat.neighbors(), -1.0)
    lead = Builder(meso.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(2))] = 4.0
    lead[lat.neighbors()] = -1.0
    arr.attach_lead(lead)
    arr.attach_lead(lead.reversed())
    return arr.finalized()


def _arrays_of(fsys: System) -> dict[str, np.ndarray]:
    arrays = {
        "pos": fsys.pos,
        "norbs": fsys.norbs,
        "orb_offsets": fsys.orb_offsets,
        "graph[0]": fsys.hopping_indices[0],
        "graph[1]": fsys.hopping_indices[1],
    }
    for k, iface in enumerate(fsys.lead_interfaces):
        arrays[f"lead_interfaces[{k}]"] = iface
    for k, flead in enumerate(fsys.leads):
        arrays[f"leads[{k}].pos"] = flead.pos
        arrays[f"leads[{k}].norbs"] = flead.norbs
        arrays[f"leads[{k}].orb_offsets"] = flead.orb_offsets
    for k, group in enumerate([*fsys._onsite, *fsys._hoppings]):
        arrays[f"group {k} rows"] = group.rows
        arrays[f"group {k} cols"] = group.cols
    if fsys._chi is not None:
        arrays["gauge"] = fsys._chi
    return arrays


@pytest.mark.parametrize("make", [_wire, lambda: _wire(True), _array_wire])
def test_system_arrays_are_read_only(make):
    fsys = make()
    arrays = _arrays_of(fsys)
    assert len(arrays) >= 12
    for name, array in arrays.items():
        assert not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0


@pytest.mark.parametrize("make", [_wire, _array_wire])
def test_system_sequences_are_tuples(make):
    fsys = make()
    assert isinstance(fsys.sites, tuple)
    # The leads: a read-only sequence whose items may only be replaced by fitting leads
    # (fsys.leads[k] = lead, as in Kwant; see test_kwant_parity_more).
    assert isinstance(fsys.leads, meso.system.LeadList)
    with pytest.raises(TypeError, match="cannot be added"):
        fsys.leads.append(fsys.leads[0])
    with pytest.raises(TypeError, match="cannot be removed"):
        del fsys.leads[0]
    assert isinstance(fsys.lead_interfaces, tuple)
    assert isinstance(fsys.parameters, frozenset)
    assert all(isinstance(flead.sites, tuple) for flead in fsys.leads)
    with pytest.raises(TypeError):
        fsys.id_by_site[fsys.sites[0]] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    "name", ["pos", "norbs", "leads", "lead_interfaces", "spin_degeneracy", "sites", "new_name"]
)
def test_system_refuses_assignment(name):
    fsys = _wire()
    with pytest.raises(AttributeError, match="immutable"):
        setattr(fsys, name, None)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(fsys, "pos")
    lead = fsys.leads[0]
    with pytest.raises(AttributeError, match="immutable"):
        lead.symmetry = None
    group = fsys._hoppings[0]
    with pytest.raises(AttributeError, match="immutable"):
        group.value = 0.0


def test_lazy_sites_and_pickle_survive_freezing():
    """Internal caches still fill; a pickled System (as sweeps send them) is equal and frozen."""
    for fsys in (_wire(True), _array_wire()):
        digest = fsys.content_digest()
        sites = fsys.sites  # filled lazily for the ArrayBuilder's system
        assert fsys.id_by_site[sites[3]] == 3
        copy = pickle.loads(pickle.dumps(fsys))
        assert copy.content_digest() == digest
        assert [s.tag for s in copy.sites] == [s.tag for s in sites]
        assert copy.id_by_site[copy.sites[3]] == 3
        assert not copy.pos.flags.writeable
        with pytest.raises(AttributeError, match="immutable"):
            copy.pos = None
        params = {"v": 0.1, "phi": 0.05} if "phi" in fsys.parameters else {}
        h0 = fsys.hamiltonian_submatrix(params=params)
        np.testing.assert_array_equal(copy.hamiltonian_submatrix(params=params), h0)
    # A pickled ArrayBuilder system whose sites were never asked for makes them on arrival.
    fresh = pickle.loads(pickle.dumps(_array_wire()))
    assert len(fresh.sites) == len(fresh.pos)


def test_public_constructor_builds_the_same_system():
    """The parts a Builder hands over are enough to construct the System directly."""
    fsys = _wire()
    rebuilt = System(
        sites=fsys.sites,
        norbs=fsys.norbs,
        onsite=fsys._onsite,
        hoppings=fsys._hoppings,
        leads=fsys.leads,
        lead_interfaces=fsys.lead_interfaces,
    )
    assert rebuilt.content_digest() == fsys.content_digest()
    transmission = meso.smatrix(rebuilt, 1.0, params={"v": 0.0}).transmission(1, 0)
    assert transmission == pytest.approx(
        meso.smatrix(fsys, 1.0, params={"v": 0.0}).transmission(1, 0)
    )


def test_public_constructor_refuses_inconsistent_parts():
    fsys = _wire()
    parts = dict(
        sites=fsys.sites,
        norbs=fsys.norbs,
        onsite=fsys._onsite,
        hoppings=fsys._hoppings,
        leads=fsys.leads,
        lead_interfaces=fsys.lead_interfaces,
    )
    with pytest.raises(ValueError, match="one positive orbital count per site"):
        System(**{**parts, "norbs": fsys.norbs[:-1]})
    with pytest.raises(ValueError, match="2 leads but 1 lead interfaces"):
        System(**{**parts, "lead_interfaces": fsys.lead_interfaces[:1]})
    with pytest.raises(TypeError, match="must be TermGroups"):
        System(**{**parts, "hoppings": [(0, 1)]})
    with pytest.raises(ValueError, match=r"outside 0\.\.5"):
        System(**{**parts, "hoppings": [TermGroup([9], [0], -1.0, (1, 1), [None], onsite=False)]})
    with pytest.raises(ValueError, match="no sites"):
        System(sites=(), norbs=())


def test_constructing_from_a_builder_is_deprecated():
    lat = lattice.chain(norbs=1)
    syst = Builder()
    syst[(lat(i) for i in range(3))] = 0.0
    syst[lat.neighbors()] = -1.0
    with pytest.warns(DeprecationWarning, match=r"builder.finalized\(\)"):
        old = System(syst)
    assert old.content_digest() == syst.finalized().content_digest()
    lead = Builder(meso.TranslationalSymmetry((-1,)))
    lead[lat(0)] = 0.0
    lead[lat.neighbors()] = -1.0
    with pytest.warns(DeprecationWarning):
        old_lead = InfiniteSystem(lead)
    np.testing.assert_array_equal(old_lead.hopping_away(), lead.finalized().hopping_away())
