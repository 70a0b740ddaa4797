"""Run the code blocks of a documentation page as a reader would, and keep its figures.

Shared by the documentation build (``executed_pages``) and the test suite
(``tests/test_docs.py``), so both run the same blocks the same way: the page's fenced
````python`` blocks in order, in one namespace, in an empty working folder (nothing prepared
for them, as on a fresh machine), with a matplotlib that needs no display. A
``{code-block} python`` directive shows code that is not meant to run as it stands.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import shutil
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

_PYTHON_FENCE = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ````python`` blocks of a Markdown page, in order."""
    return _PYTHON_FENCE.findall(text)


@dataclass
class PageRun:
    """What running a page's blocks left behind."""

    namespace: dict[str, Any]
    #: PNG files shown after each block, by block number (in the `figures` folder).
    figures: dict[int, list[pathlib.Path]] = field(default_factory=dict)
    #: Number of the block that raised and its traceback, or None.
    failure: tuple[int, str] | None = None
    output: str = ""


def _pngs(folder: pathlib.Path) -> dict[pathlib.Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*.png")}


def run_blocks(
    blocks: list[str],
    label: str,
    figures: pathlib.Path,
    *,
    workdir: pathlib.Path | None = None,
    prefix: str = "",
    quiet: bool = True,
) -> PageRun:
    """Run `blocks` in one namespace; copy the figures each block makes into `figures`.

    The blocks run in `workdir` (default: a new empty temporary folder). After each block,
    the PNG files it wrote or changed under the working folder and the matplotlib figures it
    left open (saved, then closed) are recorded as that block's figures, named
    ``<prefix>block<number>-<name>.png``. The run stops at the
    first block that raises. With `quiet`, what the blocks print and warn is kept from the
    terminal (printed text is in ``output``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = PageRun(namespace={"__name__": label.replace("/", "_")})
    figures.mkdir(parents=True, exist_ok=True)
    printed = io.StringIO()
    previous = pathlib.Path.cwd()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
        os.chdir(workdir)
        stack.callback(os.chdir, previous)
        if quiet:
            stack.enter_context(contextlib.redirect_stdout(printed))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        plt.close("all")
        for number, body in enumerate(blocks):
            before = _pngs(workdir)
            try:
                exec(compile(body, f"{label} (code block {number})", "exec"), run.namespace)
            except Exception:
                plt.close("all")
                kind, error, tb = sys.exc_info()
                # Drop this function's own frame: the traceback starts in the page's code.
                lines = traceback.format_exception(kind, error, tb.tb_next if tb else None)
                run.failure = (number, "".join(lines))
                break
            made = []
            for path, stamp in sorted(_pngs(workdir).items()):
                if before.get(path) != stamp:
                    target = figures / f"{prefix}block{number}-{path.stem}.png"
                    shutil.copy2(path, target)
                    made.append(target)
            for count, fignum in enumerate(plt.get_fignums()):
                target = figures / f"{prefix}block{number}-figure{count}.png"
                plt.figure(fignum).savefig(target, dpi=100)
                made.append(target)
            plt.close("all")
            if made:
                run.figures[number] = made
    run.output = printed.getvalue()
    return run
