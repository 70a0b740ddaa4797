"""API pages driven by each module's ``__all__``.

``.. api-summary:: module``
    A table of the module's public names: each row links a name to its description and
    gives the first paragraph of its docstring (for data, of the ``#:`` comment or the
    string literal after the assignment). With ``:definitions:`` the links go to where each
    object is defined (for a package that re-exports names from its modules).
``.. api-members:: module``
    The description of every public name (``autofunction``, ``autoclass`` with its members,
    ``autoexception``, ``autodata``), classes first, then functions, then data.

A page therefore never lists a name the module does not export, nor misses one that it does.

Cross-references to a re-exported name (``mesoscopic.smatrix``, ``mesoscopic.Builder.finalized``)
or to a name relative to the current module (``network.solve_probes`` inside
``mesoscopic.dephasing``) are resolved to the place where the object is documented, the
module that defines it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, ClassVar

from docutils import nodes
from docutils.nodes import Element
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer, PycodeError
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_ORDER = {"exception": 0, "class": 1, "function": 2, "data": 3}
_ROLE = {"exception": "exc", "class": "class", "function": "func", "data": "data"}


def public_names(module_name: str) -> list[str]:
    """Names in the module's ``__all__`` that are not modules themselves."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"module {module_name!r} has no __all__; list its public names there")
    return [name for name in names if not inspect.ismodule(getattr(module, name))]


def kind_of(obj: Any) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isroutine(obj):
        return "function"
    return "data"


def _first_paragraph(lines: list[str]) -> str:
    paragraph: list[str] = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return " ".join(paragraph)


def summary(module_name: str, name: str) -> str:
    """First paragraph of the object's docstring (of its source comment, for data)."""
    obj = getattr(importlib.import_module(module_name), name)
    if kind_of(obj) == "data":
        # An instance's __doc__ is its type's, so read the documentation comment instead.
        try:
            attr_docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except PycodeError:
            return ""
        return _first_paragraph(list(attr_docs.get(("", name), [])))
    return _first_paragraph((inspect.getdoc(obj) or "").splitlines())


def _sorted_members(module_name: str) -> list[tuple[str, str]]:
    module = importlib.import_module(module_name)
    kinds = {name: kind_of(getattr(module, name)) for name in public_names(module_name)}
    return sorted(kinds.items(), key=lambda item: (_ORDER[item[1]], item[0].lower()))


class _GeneratedRst(SphinxDirective):
    required_arguments = 1
    has_content = False

    def rst_lines(self, module_name: str) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        try:
            lines = self.rst_lines(self.arguments[0])
        except (ImportError, ValueError) as error:
            raise self.error(f"{self.name}: {error}") from error
        content = StringList(lines, source=self.get_source_info()[0])
        container = nodes.container()
        nested_parse_with_titles(self.state, content, container)
        return container.children


class ApiSummary(_GeneratedRst):
    option_spec: ClassVar[dict[str, Any]] = {"definitions": directives.flag}

    def rst_lines(self, module_name: str) -> list[str]:
        module = importlib.import_module(module_name)
        lines = [".. list-table::", "   :widths: 35 65", "   :class: api-summary", ""]
        for name, kind in _sorted_members(module_name):
            target = f"{module_name}.{name}"
            text = summary(module_name, name)
            if "definitions" in self.options and kind != "data":
                obj = getattr(module, name)
                target = f"{obj.__module__}.{obj.__qualname__}"
            lines.append(f"   * - :py:{_ROLE[kind]}:`{name} <{target}>`")
            lines.append(f"     - {text}" if text else "     -")
        return lines


class ApiMembers(_GeneratedRst):
    def rst_lines(self, module_name: str) -> list[str]:
        lines: list[str] = []
        for name, kind in _sorted_members(module_name):
            lines.append(f".. auto{kind}:: {module_name}.{name}")
            if kind in ("class", "exception"):
                lines.append("   :members:")
            lines.append("")
        return lines


def _canonical_name(dotted: str) -> str | None:
    """Where the object named by a dotted path is defined (and documented), or None."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        canonical = obj.__name__
        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                return None
            obj = getattr(obj, attribute)
            owner = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if inspect.ismodule(obj):
                canonical = obj.__name__
            elif isinstance(owner, str) and isinstance(qualname, str):
                canonical = f"{owner}.{qualname}"
            else:
                # Data and properties are named after the object that holds them.
                canonical = f"{canonical}.{attribute}"
        return canonical
    return None


def resolve_reexported(app: Sphinx, env: Any, node: Element, contnode: Element) -> Element | None:
    """Resolve a Python cross-reference through the object's defining module."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    candidates = [target]
    module = node.get("py:module")
    if module and not target.startswith("mesoscopic"):
        candidates.append(f"{module}.{target}")
        candidates.append(f"{module.rpartition('.')[0]}.{target}")
    domain = env.domains["py"]
    for candidate in candidates:
        canonical = _canonical_name(candidate) if candidate.startswith("mesoscopic") else None
        if canonical is None or canonical == target:
            continue
        resolved = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
        )
        if resolved is not None:
            return resolved
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("api-summary", ApiSummary)
    app.add_directive("api-members", ApiMembers)
    app.connect("missing-reference", resolve_reexported)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
