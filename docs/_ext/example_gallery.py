"""Gallery figures made at build time by running the example scripts.

``.. example-figure:: qpc_staircase.py``
    The figures (PNG files) that ``examples/qpc_staircase.py`` writes, shown where the
    directive stands.

When the builder starts, every script in ``gallery_examples_dir`` whose name does not start
with ``_`` runs in its own Python process, ``gallery_workers`` at a time, as
``main(<folder>, **gallery_example_arguments.get(<script name>, {}))`` in an empty working
folder with a matplotlib that needs no display. Its figures are kept in ``gallery_cache_dir``
(default: ``gallery`` under the build's doctree folder) under a key made of the script's
source, the shared ``_common.py``, the arguments and the package version, so a second build
runs only the scripts that changed. A script that fails or writes no PNG is a build warning
(an error under ``-W``) that quotes the end of its output.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

# Runs one script's main(folder, **arguments) in a fresh interpreter (argv: script, folder,
# arguments); every example accepts the output folder as a pathlib.Path.
_RUNNER = """
import ast, importlib.util, pathlib, sys
script, folder, arguments = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, str(script.parent))
spec = importlib.util.spec_from_file_location(script.stem, script)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.main(pathlib.Path(folder), **ast.literal_eval(arguments))
"""


# What builder-inited found, for the directives of this build (kept out of the pickled
# environment: the figures are files, and a later build looks at the scripts again).
_GALLERY: dict[str, Any] = {"folder": None, "runs": {}}


@dataclass
class ExampleRun:
    """What running one example left: its figures, or why there are none."""

    figures: list[pathlib.Path] = field(default_factory=list)
    error: str = ""
    cached: bool = False
    seconds: float = 0.0


def example_scripts(folder: pathlib.Path) -> list[pathlib.Path]:
    """The gallery's scripts: every ``*.py`` in `folder` whose name does not start with ``_``."""
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def cache_key(script: pathlib.Path, arguments: dict[str, Any], version: str) -> str:
    digest = hashlib.sha256()
    digest.update(script.read_bytes())
    common = script.parent / "_common.py"
    if common.is_file():
        digest.update(common.read_bytes())
    digest.update(repr(sorted(arguments.items())).encode())
    digest.update(version.encode())
    return f"{script.stem}-{digest.hexdigest()[:16]}"


def run_example(
    script: pathlib.Path, arguments: dict[str, Any], cache: pathlib.Path, key: str, timeout: float
) -> ExampleRun:
    """Run one script (or take its figures from the cache) and list the PNG files it wrote."""
    target = cache / key
    if target.is_dir():
        figures = sorted(target.glob("*.png"))
        if figures:
            return ExampleRun(figures, cached=True)
    with tempfile.TemporaryDirectory(prefix=f"gallery-{script.stem}-") as scratch:
        folder = pathlib.Path(scratch) / "out"
        folder.mkdir()
        env = {**os.environ, "MPLBACKEND": "Agg"}
        command = [sys.executable, "-c", _RUNNER, str(script), str(folder), repr(arguments)]
        start = time.perf_counter()
        try:
            completed = subprocess.run(
                command, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return ExampleRun(error=f"did not finish within {timeout:g} s (gallery_timeout)")
        if completed.returncode != 0:
            tail = (completed.stdout + completed.stderr)[-3000:]
            return ExampleRun(error=f"exited with status {completed.returncode}:\n{tail}")
        written = sorted(folder.rglob("*.png"))
        if not written:
            return ExampleRun(error=f"wrote no PNG file into the folder given to main({folder})")
        for stale in cache.glob(f"{script.stem}-*"):  # figures of older versions of the script
            shutil.rmtree(stale, ignore_errors=True)
        target.mkdir(parents=True)
        for png in written:
            shutil.copy2(png, target / png.name)
    return ExampleRun(sorted(target.glob("*.png")), seconds=time.perf_counter() - start)


def run_gallery(app: Sphinx) -> None:
    """Run every example (or take its figures from the cache) before any page is read."""
    import mesoscopic

    config = app.config
    folder = pathlib.Path(app.confdir, config.gallery_examples_dir).resolve()
    cache = pathlib.Path(
        config.gallery_cache_dir or pathlib.Path(app.doctreedir) / "gallery"
    ).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    scripts = example_scripts(folder)
    unknown = set(config.gallery_example_arguments) - {s.name for s in scripts}
    if unknown:
        logger.warning(
            "gallery_example_arguments names scripts that are not in %s: %s",
            folder,
            ", ".join(sorted(unknown)),
        )
    runs: dict[str, ExampleRun] = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, config.gallery_workers)) as pool:
        futures = {}
        for script in scripts:
            arguments = dict(config.gallery_example_arguments.get(script.name, {}))
            key = cache_key(script, arguments, mesoscopic.__version__)
            futures[script.name] = pool.submit(
                run_example, script, arguments, cache, key, config.gallery_timeout
            )
        for name, future in futures.items():
            runs[name] = future.result()
    ran = [f"{name} ({run.seconds:.0f} s)" for name, run in runs.items() if run.seconds]
    if ran:
        logger.info("gallery: ran %s", ", ".join(ran))
    _GALLERY.clear()
    _GALLERY.update(folder=folder, runs=runs)


class ExampleFigure(SphinxDirective):
    """The figures an example script writes, made when the documentation is built."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        runs: dict[str, ExampleRun] = _GALLERY["runs"]
        folder: pathlib.Path = _GALLERY["folder"]
        if name not in runs:
            valid = ", ".join(sorted(runs)) or "none"
            raise self.error(f"example-figure: no script {name!r} in {folder}; scripts: {valid}")
        self.env.note_dependency(str(folder / name))
        run = runs[name]
        shown = _shown_figures(self.env)
        shown.setdefault(self.env.docname, {})[name] = [str(png) for png in run.figures]
        if run.error:
            logger.warning(
                "example-figure: examples/%s %s", name, run.error, location=self.get_location()
            )
            return []
        source = pathlib.Path(self.env.doc2path(self.env.docname)).parent
        result: list[nodes.Node] = []
        for png in run.figures:
            uri = pathlib.Path(os.path.relpath(png, source)).as_posix()
            image = nodes.image(uri=uri, alt=f"{png.name}, written by examples/{name}")
            image["classes"].append("gallery-figure")
            result.append(image)
        return result


def _shown_figures(env: BuildEnvironment) -> dict[str, dict[str, list[str]]]:
    """Per page, per script: the figure files its directives showed when it was read."""
    if not hasattr(env, "example_gallery_shown"):
        env.example_gallery_shown = {}  # type: ignore[attr-defined]
    return env.example_gallery_shown  # type: ignore[attr-defined]


def pages_with_new_figures(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Pages to read again: an example they show now has other figures (or an error)."""
    runs: dict[str, ExampleRun] = _GALLERY["runs"]
    return [
        docname
        for docname, scripts in _shown_figures(env).items()
        if docname not in removed
        and any(
            name not in runs or [str(png) for png in runs[name].figures] != figures
            for name, figures in scripts.items()
        )
    ]


def forget_page(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _shown_figures(env).pop(docname, None)


def merge_pages(
    app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment
) -> None:
    """What a parallel reader recorded (the runs themselves finished before reading)."""
    theirs = _shown_figures(other)
    _shown_figures(env).update({name: theirs[name] for name in docnames if name in theirs})


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("gallery_examples_dir", "../examples", "env", types=[str])
    app.add_config_value("gallery_example_arguments", {}, "env", types=[dict])
    app.add_config_value("gallery_cache_dir", "", "env", types=[str])
    app.add_config_value("gallery_workers", 2, "env", types=[int])
    app.add_config_value("gallery_timeout", 600.0, "env", types=[float, int])
    app.connect("builder-inited", run_gallery)
    app.add_directive("example-figure", ExampleFigure)
    app.connect("env-get-outdated", pages_with_new_figures)
    app.connect("env-purge-doc", forget_page)
    app.connect("env-merge-info", merge_pages)
    # Every example has run when builder-inited returns, before any (forked) reader starts.
    return {"parallel_read_safe": True, "parallel_write_safe": True}
