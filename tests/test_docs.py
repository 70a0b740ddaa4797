"""The documentation builds without a warning, covers the whole API, and its code runs.

* The Sphinx site is built exactly as CI builds it, with warnings as errors.
* Every public module, and every name in every public module's ``__all__``, has an entry in
  the API reference (read from the built site's ``objects.inv``).
* The gallery page lists every example script and the files it writes.
* The ``python`` code blocks of the tutorial and of the user guide run as written, page by
  page in one session each, and the tutorial's numbers are the physics it claims.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

import mesoscopic

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
GUIDE_PAGES = sorted((DOCS / "guide").glob("*.md"))
# Pages whose code draws figures.
NEEDS_MATPLOTLIB = {"figures.md", "cli.md"}


# -- the build --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    for module, extra in (("sphinx", "docs"), ("myst_parser", "docs"), ("numpydoc", "docs")):
        pytest.importorskip(
            module, reason=f"building the documentation needs {module} (the '{extra}' extra)"
        )
    out = tmp_path_factory.mktemp("docs") / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    completed = subprocess.run(
        [*command, str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert completed.returncode == 0, (
        "sphinx -W failed (warnings are errors):\n" + completed.stdout + completed.stderr
    )
    return out


def inventory(site: pathlib.Path) -> dict[str, set[str]]:
    """Object names by role ('py:module', 'py:function', ...) from a built objects.inv."""
    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four plain-text header lines, then zlib-compressed entries
        header_end = raw.index(b"\n", header_end) + 1
    entries: dict[str, set[str]] = {}
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+-?\d+\s+\S+\s+.*", line)
        if match:
            entries.setdefault(match.group(2), set()).add(match.group(1))
    return entries


def public_modules() -> list[str]:
    """mesoscopic and every submodule none of whose name components starts with '_'."""
    names = ["mesoscopic"]
    for info in pkgutil.walk_packages(mesoscopic.__path__, prefix="mesoscopic."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_docs_build_with_warnings_as_errors(built_site: pathlib.Path) -> None:
    pages = ["index", "tutorial", "gallery", "kwant", "conventions", "api/index"]
    pages += [f"guide/{source.stem}" for source in GUIDE_PAGES]
    for page in pages:
        assert (built_site / f"{page}.html").is_file(), f"{page}.html was not built"


def test_every_module_in_the_package_all_has_an_api_page(built_site: pathlib.Path) -> None:
    documented = inventory(built_site).get("py:module", set())
    exported = [
        f"mesoscopic.{name}"
        for name in mesoscopic.__all__
        if inspect.ismodule(getattr(mesoscopic, name))
    ]
    assert exported, "mesoscopic.__all__ should export its modules"
    missing = sorted(set(exported) - documented)
    assert not missing, f"modules in mesoscopic.__all__ without an API page: {missing}"
    missing = sorted(set(public_modules()) - documented)
    assert not missing, f"public modules without an API page (add one to docs/api/): {missing}"


def test_every_public_name_is_described(built_site: pathlib.Path) -> None:
    objects = set().union(*(names for role, names in inventory(built_site).items()))
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            # Described under this module, where it is defined, or in a package above that
            # re-exports it (the analytic functions are described as mesoscopic.analytic.*).
            names = {f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"}
            parts = module_name.split(".")
            for depth in range(1, len(parts) + 1):
                package = importlib.import_module(".".join(parts[:depth]))
                if getattr(package, name, None) is obj:
                    names.add(f"{package.__name__}.{name}")
            if not names & objects:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names missing from the API reference: {missing}"


# -- the gallery ------------------------------------------------------------------------


def test_gallery_lists_every_example_and_the_files_it_writes() -> None:
    gallery = (DOCS / "gallery.md").read_text()
    scripts = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert scripts
    for script in scripts:
        assert f"`{script.name}`" in gallery, f"{script.name} is not in docs/gallery.md"
        outputs = set(re.findall(r"""["']([\w-]+\.(?:png|nc))["']""", script.read_text()))
        outputs |= set(re.findall(r"``(?:<out>/)?([\w-]+\.(?:png|nc))``", script.read_text()))
        assert outputs, f"{script.name} names no figure or data file"
        for output in outputs:
            assert f"`{output}`" in gallery, f"docs/gallery.md does not name {output}"


# -- the code on the pages --------------------------------------------------------------


def run_page(page: pathlib.Path, folder: pathlib.Path) -> dict:
    """Run a page's python blocks in order in `folder`; toml blocks named '# x.toml' are files."""
    text = page.read_text()
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    previous = pathlib.Path.cwd()
    os.chdir(folder)
    try:
        pathlib.Path("out").mkdir()
        blocks = re.findall(r"^```(python|toml)\n(.*?)^```", text, flags=re.S | re.M)
        for number, (language, body) in enumerate(blocks):
            if language == "toml":
                name = re.match(r"# (\S+\.toml)\n", body)
                if name:
                    pathlib.Path(name.group(1)).write_text(body)
                continue
            code = compile(body, f"{page.relative_to(ROOT)} (code block {number})", "exec")
            exec(code, namespace)
    finally:
        os.chdir(previous)
    return namespace


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=lambda page: page.name)
def test_code_of_the_user_guide_runs(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    if page.name in NEEDS_MATPLOTLIB:
        matplotlib = pytest.importorskip("matplotlib", reason="the page draws figures")
        matplotlib.use("Agg")
    run_page(page, tmp_path)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The namespace left by running the tutorial's code blocks in order."""
    return run_page(DOCS / "tutorial.md", tmp_path_factory.mktemp("tutorial"))


def test_tutorial_closed_form_conductance_is_quantized(tutorial: dict) -> None:
    np.testing.assert_allclose(tutorial["transmission"](np.array([1.0, 2.0, 3.0])), [1, 2, 3])
    G = tutorial["G"]  # the last G of the page: 61 Fermi energies x 3 gates, step 3
    assert G.shape == (61, 3)
    landauer = tutorial["landauer"]
    g_plateau = landauer.linear_conductance(
        None, tutorial["transmission"], 2.0, 1e-3, spin_degeneracy=2
    )
    assert float(g_plateau) == pytest.approx(4.0, abs=1e-6)  # 2 modes x 2e^2/h


def test_tutorial_four_terminal_resistance_is_landauer_buttiker(tutorial: dict) -> None:
    t = tutorial["t_thermal"]
    assert np.all((t > 0) & (t < 1))
    np.testing.assert_allclose(tutorial["R_4t"], 1 / t - 1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tutorial["R_2t"] - tutorial["R_4t"], 1.0, rtol=1e-9)
    assert tutorial["R_4t"][20] == pytest.approx(1.0, rel=1e-6)  # t = 1/2 at mu = V0 + w_y/2
    np.testing.assert_allclose(tutorial["solution"].voltages, [2, 2, 1, 0, 0, 1], atol=1e-6)


def test_tutorial_tight_binding_qpc_and_sweep(tutorial: dict) -> None:
    s = tutorial["S"]
    assert s.check_unitarity() < 1e-10
    assert s.transmission(1, 0) + s.transmission(0, 0) == pytest.approx(s.num_propagating(0))
    saved, result = tutorial["saved"], tutorial["result"]
    assert saved["transmission"].equals(result["transmission"])
    assert saved.attrs["grid"]["gate"] == [0.0, 0.1, 0.2]
    plateaus = saved["transmission"].sel(gate=0.0, energy=[0.2, 0.4, 0.65, 0.9], method="nearest")
    np.testing.assert_allclose(plateaus.values, [1, 2, 3, 4], atol=0.01)
    # A higher gate closes the constriction: T(E) never increases with the gate voltage.
    T = saved["transmission"].values
    assert np.all(np.diff(T, axis=1) <= 1e-9)
    # The conductance is g_s = 2 times a transmission between 0 and the open channels.
    assert np.all(tutorial["G"] >= 0) and np.all(tutorial["G"] <= 2 * 5)
