"""Sphinx configuration of the mesoscopic documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
# Local extensions (API summaries, gallery figures, executed pages) live beside this file.
sys.path.insert(0, str(DOCS / "_ext"))
# Build from the source tree when the package is not installed.
sys.path.insert(0, str(DOCS.parent / "src"))

import mesoscopic  # noqa: E402

project = "mesoscopic"
author = "The mesoscopic developers"
copyright = "The mesoscopic developers"
release = mesoscopic.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    # MathJax served from the built site itself (_static/mathjax), not from a CDN, so the
    # math renders without network access (the files come from sphinx-mathjax-offline).
    "offline_mathjax",
    "sphinx.ext.viewcode",
    "api_summary",
    "numpydoc_prose",
    "example_gallery",
    "executed_pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# Unresolved cross-references (to NumPy, xarray, ... types named in docstrings) are not
# errors; every other warning is, because the build runs with -W.
nitpicky = False

# -- MyST (Markdown pages) --------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- autodoc and numpydoc ---------------------------------------------------------------
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry types, shapes and units
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- figures made at build time ----------------------------------------------------------
# The gallery runs every example script (docs/_ext/example_gallery.py); these arguments keep
# the slowest ones to a few seconds each, with the physics still visible.
gallery_example_arguments = {
    "disordered_wire.py": {"samples": 100},
    "quantum_spin_hall.py": {"num": 12, "seeds": (1,)},
    "qpc_zeeman.py": {"num": 161},
    "kpm_graphene_dos.py": {"cells": 300, "num_moments": 600},
}
# The code of these pages runs at build time and the figures it draws are shown below it
# (docs/_ext/executed_pages.py).
executed_pages = ["tutorial", "first_day", "guide/*"]

# -- HTML -------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"mesoscopic {release}"
html_theme_options = {
    "description": "Landauer–Büttiker quantum transport: conductance is transmission.",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_static_path: list[str] = []
