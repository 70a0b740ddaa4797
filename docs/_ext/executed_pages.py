"""Run the code of a page when it is built, and show the figures it draws.

For every page whose name matches a pattern of ``executed_pages`` (``fnmatch`` patterns of
document names, such as ``"tutorial"`` or ``"guide/*"``), the page's fenced ````python``
blocks run as ``page_runner.run_blocks`` runs them: in order, in one namespace, in an empty
temporary folder. Below each block the build shows the PNG files the block wrote and the
matplotlib figures it left open. A block that raises is a build warning (an error under
``-W``) with its traceback, and the blocks after it do not run.
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import shutil
import time
from typing import Any

from docutils import nodes
from page_runner import python_blocks, run_blocks
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def execute_page(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not any(fnmatch.fnmatchcase(docname, pattern) for pattern in app.config.executed_pages):
        return
    source = pathlib.Path(app.env.doc2path(docname))
    blocks = python_blocks(source.read_text(encoding="utf-8"))
    if not blocks:
        return
    figures = pathlib.Path(app.doctreedir, "executed-pages", *docname.split("/"))
    shutil.rmtree(figures, ignore_errors=True)
    start = time.perf_counter()
    prefix = docname.replace("/", "-") + "-"
    run = run_blocks(blocks, f"docs/{docname}", figures, prefix=prefix)
    seconds = time.perf_counter() - start
    logger.info("executed %s: %d code blocks in %.1f s", docname, len(blocks), seconds)

    # Each block run is displayed by a literal block with the same text, in the same order.
    remaining = iter(list(doctree.findall(nodes.literal_block)))
    for number, body in enumerate(blocks):
        node = next((n for n in remaining if n.astext().rstrip("\n") == body.rstrip("\n")), None)
        if node is None:
            logger.warning("code block %d is not displayed on the page", number, location=docname)
            return
        if run.failure is not None and run.failure[0] == number:
            logger.warning(
                "code block %d raised; the blocks after it did not run:\n%s",
                number,
                run.failure[1],
                location=node,
            )
            return
        position = node.parent.index(node) + 1
        for png in run.figures.get(number, []):
            uri = pathlib.Path(os.path.relpath(png, source.parent)).as_posix()
            image = nodes.image(uri=uri, alt=f"figure drawn by the code above ({png.name})")
            image["classes"].append("executed-figure")
            node.parent.insert(position, image)
            position += 1


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("executed_pages", [], "env", types=[list])
    # Before the image collector (priority 500), so that the new images are collected.
    app.connect("doctree-read", execute_page, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
