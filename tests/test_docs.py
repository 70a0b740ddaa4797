"""The documentation builds without a warning, covers the whole API, and its code runs.

* The Sphinx site is built exactly as CI builds it, with warnings as errors.
* Every public module, and every name in every public module's ``__all__``, has an entry in
  the API reference (read from the built site's ``objects.inv``).
* The gallery page lists every example script and the files it writes.
* The ``python`` code blocks of the tutorial and of the user guide run as written, page by
  page in one session each, in an empty folder (as on a fresh machine), and the tutorial's
  numbers are the physics it claims.
* The site has figures: one or more per gallery example (made by running the example when the
  site is built), per tutorial section and per guide page whose code draws; its math is
  rendered by a MathJax copied into the site, and no page loads anything from the network.
* numpydoc renders no paragraph of prose as a fake parameter.
"""

from __future__ import annotations

import html
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

import mesoscopic

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
GUIDE_PAGES = sorted((DOCS / "guide").glob("*.md"))
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))

# The build's own extensions: the runner of a page's code blocks is shared with the build.
sys.path.insert(0, str(DOCS / "_ext"))
import page_runner  # noqa: E402

# Guide pages whose code computes something but draws no figure yet. Each should gain one;
# the test below fails when this list is out of date in either direction.
GUIDE_PAGES_WITHOUT_FIGURE: set[str] = set()


# -- the build --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    for module in ("sphinx", "myst_parser", "numpydoc", "sphinx-mathjax-offline", "matplotlib"):
        pytest.importorskip(
            module, reason=f"building the documentation needs {module} (the 'docs' extra)"
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
    pages = ["index", "tutorial", "first_day", "gallery", "kwant", "conventions", "api/index"]
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


def run_page(page: pathlib.Path, figures: pathlib.Path) -> page_runner.PageRun:
    """Run a page's python blocks as the build does, in an empty folder; fail on an error."""
    pytest.importorskip("matplotlib", reason="the pages draw figures (the 'plot' extra)")
    blocks = page_runner.python_blocks(page.read_text())
    run = page_runner.run_blocks(blocks, str(page.relative_to(ROOT)), figures)
    if run.failure is not None:
        number, error = run.failure
        pytest.fail(f"{page.relative_to(ROOT)}: code block {number} raised\n{error}")
    return run


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=lambda page: page.name)
def test_code_of_the_user_guide_runs(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run_page(page, tmp_path / "figures")


def test_cli_page_runs_the_study_file_it_shows() -> None:
    """The study the cli page writes from Python is the one it displays as qpc.toml."""
    text = (DOCS / "guide" / "cli.md").read_text()
    shown = re.search(r"^```toml\n(# qpc\.toml\n.*?)^```", text, flags=re.S | re.M)
    written = re.search(r'Path\("qpc\.toml"\)\.write_text\(\n    """\\\n(.*?)"""', text, re.S)
    assert shown and written, "guide/cli.md should show qpc.toml and write it from Python"
    assert written.group(1) == shown.group(1)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The namespace left by running the tutorial's code blocks in order."""
    return run_page(DOCS / "tutorial.md", tmp_path_factory.mktemp("tutorial")).namespace


def test_tutorial_runs_as_a_kwant_user_writes_it(tutorial: dict, tmp_path: pathlib.Path) -> None:
    """The tutorial with ``import mesoscopic as kwant`` and ``kwant.`` for ``meso.``."""
    text = (DOCS / "tutorial.md").read_text()
    text = text.replace("import mesoscopic as meso", "import mesoscopic as kwant")
    blocks = [re.sub(r"\bmeso\.", "kwant.", b) for b in page_runner.python_blocks(text)]
    assert any("kwant.Builder" in b for b in blocks)
    run = page_runner.run_blocks(blocks, "docs/tutorial.md (as kwant)", tmp_path / "figures")
    assert run.failure is None, f"code block raised: {run.failure}"
    np.testing.assert_allclose(run.namespace["G"], tutorial["G"], atol=1e-12)


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


# -- figures and math in the built site -------------------------------------------------


class _Tags(HTMLParser):
    """Start tags of a page, in order, as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def tags(page: pathlib.Path) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.tags


def shown_images(page: pathlib.Path) -> list[dict[str, str]]:
    """The <img> tags of a built page whose picture is a PNG file of the site."""
    images = [attrs for tag, attrs in tags(page) if tag == "img"]
    for image in images:
        picture = (page.parent / image["src"]).resolve()
        assert picture.is_file(), f"{page.name}: <img src={image['src']!r}> is not in the site"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{picture} is not a PNG"
    return images


def test_gallery_shows_the_figures_of_every_example(built_site: pathlib.Path) -> None:
    images = shown_images(built_site / "gallery.html")
    assert len(images) >= len(SCRIPTS)
    for script in SCRIPTS:
        alts = [image["alt"] for image in images if f"examples/{script.name}" in image["alt"]]
        assert alts, f"gallery.html shows no figure made by examples/{script.name}"


def test_every_tutorial_section_shows_a_figure(built_site: pathlib.Path) -> None:
    page = built_site / "tutorial.html"
    text = page.read_text(encoding="utf-8")
    sections = re.split(r"<h2>", text)[1:]
    assert len(sections) == 3, "the tutorial has three numbered sections"
    for section in sections:
        title = re.sub(r"<.*?>", "", section[: section.index("</h2>")])
        assert "<img" in section, f"tutorial section {title!r} shows no figure"
    assert len(shown_images(page)) >= 3


def test_first_day_page_shows_the_figure_of_each_script(built_site: pathlib.Path) -> None:
    """Each script of the first-day page runs when the site is built and its figure follows it."""
    scripts = page_runner.python_blocks((DOCS / "first_day.md").read_text(encoding="utf-8"))
    text = (built_site / "first_day.html").read_text(encoding="utf-8")
    sections = re.split(r"<h2>", text)[1:]
    assert len(sections) == len(scripts) == 3
    for section in sections:
        title = re.sub(r"<.*?>", "", section[: section.index("</h2>")])
        assert "executed-figure" in section, f"first-day section {title!r} shows no figure"
    assert len(shown_images(built_site / "first_day.html")) >= 3


def test_guide_pages_that_compute_show_figures(built_site: pathlib.Path) -> None:
    computing = {p.stem for p in GUIDE_PAGES if page_runner.python_blocks(p.read_text())}
    without = {name for name in computing if not shown_images(built_site / f"guide/{name}.html")}
    assert without <= GUIDE_PAGES_WITHOUT_FIGURE, f"guide pages without a figure: {without}"
    drawn = GUIDE_PAGES_WITHOUT_FIGURE - without
    assert not drawn, f"these guide pages draw figures now; remove them from the list: {drawn}"
    assert {"analytic", "figures", "cli"} <= computing - without


def test_math_is_rendered_from_the_site_itself(built_site: pathlib.Path) -> None:
    """Every script, stylesheet and image comes from the site: no CDN, no network."""
    remote = re.compile(r"^(https?:)?//", re.IGNORECASE)
    for page in built_site.rglob("*.html"):
        for tag, attrs in tags(page):
            resource = attrs.get("src", "") if tag in ("script", "img") else ""
            if tag == "link" and "stylesheet" in attrs.get("rel", ""):
                resource = attrs.get("href", "")
            assert not remote.match(resource), f"{page.name} loads {resource} from the network"
    page = built_site / "tutorial.html"
    assert 'class="math' in page.read_text(encoding="utf-8"), "the tutorial should have math"
    sources = [attrs["src"] for tag, attrs in tags(page) if tag == "script" and "src" in attrs]
    mathjax = [src for src in sources if "mathjax" in src.lower()]
    assert mathjax, f"tutorial.html loads no MathJax: {sources}"
    for src in mathjax:
        script = (page.parent / src.split("?")[0]).resolve()
        assert script.is_file() and script.stat().st_size > 100_000, f"{src} is not in the site"
    # MathJax finds its fonts beside its own script.
    fonts = built_site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file()


def test_numpydoc_renders_no_prose_as_a_parameter(built_site: pathlib.Path) -> None:
    """An entry of a Parameters or Attributes list is named by identifiers, not by a sentence."""
    name = re.compile(r"\*{0,2}[A-Za-z_][\w.]*")
    fake = []
    for page in sorted((built_site / "api").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for entry in re.findall(r"<dt><strong>(.*?)</strong>", text):
            names = html.unescape(entry).strip("()")
            if not all(name.fullmatch(part.strip()) for part in names.split(",")):
                fake.append(f"{page.name}: {entry}")
    assert not fake, "prose rendered as parameter entries:\n" + "\n".join(fake)


def test_prose_after_the_entries_moves_to_notes() -> None:
    from numpydoc_prose import move_prose_to_notes

    docstring = [
        "Summary.",
        "",
        "Parameters",
        "----------",
        "width, length : int",
        "    Size.",
        "*args",
        "",
        "Parameters at solve time: ``gate`` (t),",
        "``confinement`` (t).",
        "",
        "Returns",
        "-------",
        "System",
        "",
        "Notes",
        "-----",
        "A note.",
    ]
    prose = docstring[8:10]
    assert move_prose_to_notes(docstring) == [*docstring[:8], *docstring[11:], "", *prose, ""]
    # Without a Notes section one is added at the end; a clean docstring is left as it is.
    assert move_prose_to_notes(docstring[:14]) == [
        *docstring[:8],
        *docstring[11:14],
        "",
        "Notes",
        "-----",
        *prose,
        "",
    ]
    assert move_prose_to_notes(docstring[:8]) == docstring[:8]
