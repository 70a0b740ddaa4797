"""Keep prose inside a numpydoc entry list from rendering as a fake entry.

numpydoc reads every unindented line of a ``Parameters`` (``Other Parameters``,
``Attributes``, ``Receives``) section as the name of an entry, so a closing remark such as

    Parameters
    ----------
    width : int
        Width of the wire.

    Parameters at solve time: ``gate`` (t), ``confinement`` (t).

renders as a bold "parameter" named ``Parameters at solve time: ``gate`` ...`` with the
backticks shown literally. Entry names are identifiers (``width``, ``width, length``,
``*args``); an unindented paragraph that does not start with such a name is prose, and this
extension moves it, unchanged, to the end of the docstring's ``Notes`` section (created if
there is none) before numpydoc reads the docstring.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx

ENTRY_SECTIONS = frozenset({"Parameters", "Other Parameters", "Attributes", "Receives"})
_NAME = re.compile(r"\*{0,2}[A-Za-z_][\w.]*")
_UNDERLINE = re.compile(r"-{3,}")


def is_entry_header(line: str) -> bool:
    """Whether `line` names numpydoc entries: ``name``, ``a, b`` or ``name : type``."""
    names = line.split(" : ", 1)[0].rstrip().removesuffix(":")
    return all(_NAME.fullmatch(name.strip()) for name in names.split(","))


def _sections(lines: list[str]) -> list[tuple[str, int, int]]:
    """(title, first body line, end) of each section, in order."""
    heads = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and not lines[i][0].isspace()
        and _UNDERLINE.fullmatch(lines[i + 1].strip())
        and len(lines[i + 1].strip()) >= len(lines[i].strip())
    ]
    ends = [*heads[1:], len(lines)]
    return [(lines[h].strip(), h + 2, end) for h, end in zip(heads, ends)]


def move_prose_to_notes(lines: list[str]) -> list[str]:
    """`lines` of a numpydoc docstring with prose paragraphs of entry lists moved to Notes."""
    prose_lines: set[int] = set()
    for title, start, end in _sections(lines):
        if title not in ENTRY_SECTIONS:
            continue
        in_prose = False
        after_blank = True
        for i in range(start, end):
            line = lines[i]
            if not line.strip():
                after_blank = True
                if in_prose:
                    prose_lines.add(i)
                continue
            unindented = not line[0].isspace()
            if unindented and (after_blank or not in_prose):
                in_prose = not is_entry_header(line)
            if in_prose:
                prose_lines.add(i)
            after_blank = False
    if not prose_lines:
        return lines
    moved = [lines[i] for i in sorted(prose_lines)]
    while moved and not moved[-1].strip():
        moved.pop()
    kept = [line for i, line in enumerate(lines) if i not in prose_lines]
    notes = [(s, e) for title, s, e in _sections(kept) if title == "Notes"]
    if notes:
        _, end = notes[0]
        while end > 0 and not kept[end - 1].strip():
            end -= 1
        return [*kept[:end], "", *moved, "", *kept[end:]]
    while kept and not kept[-1].strip():
        kept.pop()
    return [*kept, "", "Notes", "-----", *moved, ""]


def process_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    lines[:] = move_prose_to_notes(lines)


def setup(app: Sphinx) -> dict[str, Any]:
    # Before numpydoc, which rewrites the docstring at the default priority (500).
    app.connect("autodoc-process-docstring", process_docstring, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
