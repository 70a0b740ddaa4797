"""MathJax served by the built site itself, so that its math renders without network access.

The MathJax 3 distribution comes from the ``sphinx-mathjax-offline`` package (in the
``docs`` extra), whose import name has dashes. This extension points ``sphinx.ext.mathjax``
at ``_static/mathjax/tex-chtml.js`` and copies the distribution (scripts and fonts) there
when the build ends. It does what that package's own extension does, and declares that it is
safe for parallel builds (``-j``).
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

ENTRY_POINT = "tex-chtml.js"


def mathjax_distribution() -> pathlib.Path:
    """The folder of the MathJax files shipped by ``sphinx-mathjax-offline``."""
    try:
        package = importlib.import_module("sphinx-mathjax-offline")
    except ImportError as error:
        raise ExtensionError(
            "the documentation renders math with a local MathJax from the "
            "'sphinx-mathjax-offline' package: pip install -e '.[docs]'"
        ) from error
    folder = pathlib.Path(package.__file__ or "").parent / "static" / "mathjax"
    if not (folder / ENTRY_POINT).is_file():
        raise ExtensionError(
            f"no MathJax at {folder / ENTRY_POINT}; reinstall sphinx-mathjax-offline"
        )
    return folder


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        target = pathlib.Path(app.outdir, "_static", "mathjax")
        copy_asset(mathjax_distribution(), target)


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.mathjax")
    mathjax_distribution()  # fail early, with the install command, if it is missing
    app.config.mathjax_path = f"mathjax/{ENTRY_POINT}"
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
