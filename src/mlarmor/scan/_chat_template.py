"""Static audit of Jinja chat templates (GGUF ``tokenizer.chat_template``): parse, never render.

The template is parsed to a Jinja AST with ``Environment().parse`` and walked for any route to
Python internals (``__class__``, ``__globals__``, ``__subclasses__``, gadget objects such as
``cycler`` or ``lipsum``), including names built from string pieces, ``|attr`` filters and format
strings — the shapes of published server-side template-injection payloads (CVE-2024-34359).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any, Final

from jinja2 import Environment, TemplateSyntaxError, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from mlarmor.findings import Severity

__all__ = ["TemplateAudit", "audit_template"]


INTERNAL_NAMES: Final = frozenset(
    {
        "__class__",
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "__import__",
        "__init__",
        "__base__",
        "__bases__",
        "__mro__",
        "__dict__",
        "__code__",
        "__func__",
        "__self__",
        "__closure__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__loader__",
        "__spec__",
        "__wrapped__",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "tb_frame",
        "mro",
        "_module",
        "_TemplateReference__context",
    }
)
"""Attributes that lead from any object to classes, modules, frames or builtins. Every dunder
counts as internal too; these are the named ones, including Python 2 and frame spellings and
the private Jinja/warnings attributes published SSTI payloads use."""

SINK_NAMES: Final = frozenset(
    {
        "os",
        "sys",
        "popen",
        "system",
        "eval",
        "exec",
        "execfile",
        "subprocess",
        "importlib",
        "import_module",
        "load_module",
        "spawn",
        "fork",
        "check_output",
        "check_call",
        "getoutput",
        "Popen",
        "environ",
        "builtins",
        "globals",
        "locals",
        "getattr",
        "setattr",
        "delattr",
        "compile",
        "open",
        "modules",
        "socket",
        "pty",
        "shutil",
    }
)
"""Attribute names that reach processes, code execution, modules or files once an attacker holds
a module or builtins object."""

GADGET_OBJECTS: Final = frozenset(
    {
        "cycler",
        "joiner",
        "namespace",
        "lipsum",
        "self",
        "config",
        "request",
        "url_for",
        "get_flashed_messages",
        "range",
    }
)
"""Objects Jinja (or Flask) puts in every template whose attributes lead to module globals."""

_CALLABLE_SINKS: Final = frozenset(
    {"eval", "exec", "__import__", "getattr", "setattr", "open", "compile", "vars"}
)
_ATTRIBUTE_FILTERS: Final = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
_FIELD_PART = re.compile(r"[.\[]([^.\[\]]+)")
_DUNDER = re.compile(r"__[A-Za-z_][A-Za-z0-9_]*?__")
_MAX_FOLD_DEPTH: Final = 64
_MAX_FOLD_CHARS: Final = 4096
_MAX_REASONS: Final = 20


def _is_internal(name: str) -> bool:
    return name in INTERNAL_NAMES or (len(name) > 4 and name.startswith("__") and name.endswith("__"))


class _GenerationTag(Extension):
    """Parses Hugging Face's ``{% generation %}`` block (transformers' AssistantTracker); parse only."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@dataclass(slots=True)
class TemplateAudit:
    """What :func:`audit_template` found: (severity, line, reason) triples or a parse error."""

    reasons: list[tuple[Severity, int, str]] = field(default_factory=list)
    parse_error: str | None = None

    @property
    def severity(self) -> Severity:
        """Highest severity among the reasons (medium for a template that does not parse)."""
        if self.parse_error is not None:
            return Severity.MEDIUM
        return max((s for s, _, _ in self.reasons), default=Severity.NONE)

    @property
    def headline(self) -> str:
        """Short description for a finding title."""
        if self.parse_error is not None:
            return "cannot be parsed as Jinja"
        if self.severity >= Severity.CRITICAL:
            return "reaches Python internals (server-side template injection)"
        return "uses constructs that can reach Python internals"

    def evidence(self) -> dict[str, Any]:
        """The reasons as report evidence, strongest first."""
        if self.parse_error is not None:
            return {"parse_error": self.parse_error}
        ordered = sorted(self.reasons, key=lambda r: (-r[0], r[1]))
        return {
            "reasons": [f"line {line}: {reason}" for _, line, reason in ordered[:_MAX_REASONS]],
            "reason_count": len(ordered),
        }


def audit_template(source: str) -> TemplateAudit:
    r"""Parse a Jinja chat template (never render it) and list what reaches Python internals.

    Looks at attribute and item names (``x.__class__``, ``x['__globals__']``, ``|attr(...)``,
    attribute arguments of ``map``/``selectattr``/..., ``'{0.__class__}'.format``), folding
    names built from constants by ``~``, ``+``, ``*``, ``%``, ``|join``, ``|format``,
    ``|reverse``, ``|replace``, slicing and ``{% set %}`` variables; escapes such as
    ``\x5f`` are already decoded by Jinja's lexer. Attribute access on Jinja's global objects
    (``cycler``, ``lipsum``, ``self``...), calls of ``eval``-like names, names computed at render
    time, and template includes are reported too.
    """
    # autoescape only matters when rendering, which never happens here.
    env = Environment(
        autoescape=True, extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag]
    )
    audit = TemplateAudit()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as e:
        audit.parse_error = f"line {e.lineno}: {e.message}"
        return audit
    except (RecursionError, MemoryError, ValueError) as e:
        audit.parse_error = f"{type(e).__name__} while parsing"
        return audit
    try:
        _TemplateWalk(tree, audit).run()
    except RecursionError:
        audit.reasons.append((Severity.HIGH, 0, "expressions nested too deeply to analyse"))
    return audit


class _TemplateWalk:
    def __init__(self, tree: nodes.Template, audit: TemplateAudit) -> None:
        self.tree = tree
        self.audit = audit
        self.assigned: dict[str, list[nodes.Node]] = {}
        self.folding: set[str] = set()
        self.dynamic = False
        self.internal_seen: set[str] = set()
        self.folded: dict[int, str | None] = {}

    def hit(self, severity: Severity, node: nodes.Node, reason: str) -> None:
        self.audit.reasons.append((severity, node.lineno, reason))

    def check_name(self, name: str, node: nodes.Node, how: str, *, strict: bool = False) -> None:
        shown = name[:80]
        if _is_internal(name):
            self.internal_seen.add(name)
            self.hit(Severity.CRITICAL, node, f"{how} {shown!r} reaches Python internals")
        elif strict:
            return
        elif name in SINK_NAMES:
            self.hit(Severity.HIGH, node, f"{how} {shown!r} reaches processes, code or modules")
        elif name.startswith("_"):
            self.hit(Severity.MEDIUM, node, f"{how} {shown!r} is private")

    def run(self) -> None:
        for assign in self.tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name):
                self.assigned.setdefault(assign.target.name, []).append(assign.node)
        for block in self.tree.find_all(nodes.AssignBlock):
            if isinstance(block.target, nodes.Name):
                self.assigned.setdefault(block.target.name, []).append(block)
        constants: list[str] = []
        for node in self.tree.find_all(nodes.Node):
            self.visit(node, constants)
        self.assembled(constants)

    def visit(self, node: nodes.Node, constants: list[str]) -> None:
        if isinstance(node, nodes.Getattr):
            self.check_name(node.attr, node, "attribute")
            self.gadget(node.node, node)
        elif isinstance(node, nodes.Getitem):
            self.item(node)
        elif isinstance(node, nodes.Filter):
            self.filter(node)
        elif isinstance(node, nodes.Call):
            self.call(node)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            constants.append(node.value)
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self.hit(Severity.MEDIUM, node, "loads another template through the environment's loader")
        elif isinstance(node, (nodes.Concat, nodes.Add, nodes.Mul, nodes.Mod)):
            built = self.fold(node)
            if built is not None:
                for name in sorted(set(_DUNDER.findall(built))):
                    if _is_internal(name):
                        self.internal_seen.add(name)
                        self.hit(Severity.HIGH, node, f"builds the name {name!r} from pieces")

    def gadget(self, target: nodes.Node, node: nodes.Node) -> None:
        if isinstance(target, nodes.Name) and target.name in GADGET_OBJECTS:
            self.hit(Severity.HIGH, node, f"reaches into the Jinja global {target.name!r}")

    def item(self, node: nodes.Getitem) -> None:
        self.gadget(node.node, node)
        if isinstance(node.arg, nodes.Slice):
            return
        name = self.fold(node.arg)
        if name is not None:
            # A constant key such as message['system'] is ordinary data access; a key built from
            # pieces is only worth building to hide a name.
            self.check_name(name, node, "item", strict=isinstance(node.arg, nodes.Const))
        elif isinstance(node.arg, (nodes.Concat, nodes.Add, nodes.Mod, nodes.Mul, nodes.Filter)):
            self.dynamic = True
            self.hit(Severity.HIGH, node, "item name is assembled at render time")

    def filter(self, node: nodes.Filter) -> None:
        args = list(node.args) + [kw.value for kw in node.kwargs]
        if node.name == "attr":
            name = self.fold(node.args[0]) if node.args else None
            if name is None:
                self.dynamic = True
                self.hit(Severity.HIGH, node, "|attr() looks up an attribute name computed at render time")
            else:
                self.check_name(name, node, "|attr()")
            if node.node is not None:
                self.gadget(node.node, node)
        elif node.name in _ATTRIBUTE_FILTERS:
            for arg in args:
                name = self.fold(arg)
                if name is not None:
                    self.check_name(name, node, f"|{node.name}() argument", strict=True)

    def call(self, node: nodes.Call) -> None:
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name in _CALLABLE_SINKS:
            self.hit(Severity.HIGH, node, f"calls {callee.name}()")
        if isinstance(callee, nodes.Getattr) and callee.attr in ("format", "format_map"):
            fmt = self.fold(callee.node)
            if fmt is not None:
                for part in _format_fields(fmt):
                    self.check_name(part, node, "format field", strict=True)

    def assembled(self, constants: list[str]) -> None:
        """Internal names that only appear once the template's strings are put together."""
        joined = "".join(constants)
        for name in set(_DUNDER.findall(joined)) - self.internal_seen:
            if not _is_internal(name):
                continue
            if any(name in c for c in constants):
                self.audit.reasons.append((Severity.MEDIUM, 0, f"a string mentions {name!r}"))
            elif self.dynamic:
                self.audit.reasons.append(
                    (
                        Severity.CRITICAL,
                        0,
                        f"{name!r} is split across strings and attributes are looked up dynamically",
                    )
                )
            else:
                self.audit.reasons.append((Severity.MEDIUM, 0, f"{name!r} is split across separate strings"))

    # -- constant folding: what string would this expression produce, if it only uses constants
    def fold(self, node: nodes.Node | None, depth: int = 0) -> str | None:
        if node is None or depth > _MAX_FOLD_DEPTH:
            return None
        key = id(node)
        if key in self.folded:
            return self.folded[key]
        result = self._fold(node, depth + 1)
        if result is not None and len(result) > _MAX_FOLD_CHARS:
            result = None
        if depth == 0:
            # Only complete (top-level) results are remembered: a deeper call may have been cut
            # short by the depth limit. The cache keeps long '~' chains linear.
            self.folded[key] = result
        return result

    def _fold(self, node: nodes.Node, depth: int) -> str | None:
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, nodes.TemplateData):
            return node.data
        if isinstance(node, nodes.Concat):
            parts = [self.fold(n, depth) for n in node.nodes]
            return None if any(p is None for p in parts) else "".join(p for p in parts if p is not None)
        if isinstance(node, nodes.Add):
            left, right = self.fold(node.left, depth), self.fold(node.right, depth)
            return None if left is None or right is None else left + right
        if isinstance(node, nodes.Mul):
            return self._repeat(node, depth)
        if isinstance(node, nodes.Mod):
            return self._percent(self.fold(node.left, depth), node.right, depth)
        if isinstance(node, nodes.Filter):
            return self._filter(node, depth)
        if isinstance(node, nodes.Call):
            return self._method(node, depth)
        if isinstance(node, nodes.Getitem):
            return self._slice(node, depth)
        if isinstance(node, nodes.Name):
            return self._variable(node.name, depth)
        if isinstance(node, nodes.AssignBlock):
            pieces = [
                self.fold(n, depth) for out in node.body if isinstance(out, nodes.Output) for n in out.nodes
            ]
            if len(pieces) != sum(len(o.nodes) for o in node.body if isinstance(o, nodes.Output)):
                return None
            return None if any(p is None for p in pieces) else "".join(p for p in pieces if p is not None)
        return None

    def _repeat(self, node: nodes.Mul, depth: int) -> str | None:
        for text_node, count_node in ((node.left, node.right), (node.right, node.left)):
            text = self.fold(text_node, depth)
            if text is not None and isinstance(count_node, nodes.Const) and isinstance(count_node.value, int):
                count = count_node.value
                return text * count if count >= 0 and len(text) * count <= _MAX_FOLD_CHARS else None
        return None

    def _percent(self, fmt: str | None, right: nodes.Node, depth: int) -> str | None:
        items = list(right.items) if isinstance(right, (nodes.Tuple, nodes.List)) else [right]
        values = [self.fold(i, depth) for i in items]
        return _percent_format(fmt, values)

    def _filter(self, node: nodes.Filter, depth: int) -> str | None:
        args = [self.fold(a, depth) for a in node.args]
        if any(a is None for a in args) or node.kwargs:
            return None
        if node.name == "join" and isinstance(node.node, (nodes.List, nodes.Tuple)):
            items = [self.fold(i, depth) for i in node.node.items]
            if any(i is None for i in items):
                return None
            return (args[0] if args else "").join(i for i in items if i is not None)  # type: ignore[union-attr]
        value = self.fold(node.node, depth)
        if value is None:
            return None
        if node.name == "format":
            return _percent_format(value, args)
        simple = {
            "reverse": value[::-1],
            "lower": value.lower(),
            "upper": value.upper(),
            "trim": value.strip(),
        }
        if node.name in simple and not args:
            return simple[node.name]
        if node.name == "string":
            return value
        if node.name == "replace" and len(args) == 2:
            return value.replace(args[0], args[1])  # type: ignore[arg-type]
        return None

    def _method(self, node: nodes.Call, depth: int) -> str | None:
        callee = node.node
        if not isinstance(callee, nodes.Getattr) or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        if (
            callee.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], (nodes.List, nodes.Tuple))
        ):
            sep = self.fold(callee.node, depth)
            items = [self.fold(i, depth) for i in node.args[0].items]
            if sep is None or any(i is None for i in items):
                return None
            return sep.join(i for i in items if i is not None)
        value = self.fold(callee.node, depth)
        args = [self.fold(a, depth) for a in node.args]
        if value is None or any(a is None for a in args):
            return None
        strs = [a for a in args if a is not None]
        if callee.attr in ("lower", "upper", "strip") and not strs:
            return str(getattr(value, callee.attr)())
        if callee.attr == "replace" and len(strs) == 2:
            return value.replace(strs[0], strs[1])
        if callee.attr == "format":
            return _simple_format(value, strs)
        return None

    def _slice(self, node: nodes.Getitem, depth: int) -> str | None:
        value = self.fold(node.node, depth)
        if value is None:
            return None
        arg = node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, int):
            return value[arg.value] if -len(value) <= arg.value < len(value) else None
        if isinstance(arg, nodes.Slice):
            bounds: list[int | None] = []
            for part in (arg.start, arg.stop, arg.step):
                if part is None:
                    bounds.append(None)
                elif isinstance(part, nodes.Const) and isinstance(part.value, int) and part.value != 0:
                    bounds.append(part.value)
                elif isinstance(part, nodes.Const) and part.value == 0 and part is not arg.step:
                    bounds.append(0)
                else:
                    return None
            return value[slice(*bounds)]
        return None

    def _variable(self, name: str, depth: int) -> str | None:
        if name in self.folding or name not in self.assigned:
            return None
        self.folding.add(name)
        try:
            for value in reversed(self.assigned[name]):
                folded = self.fold(value, depth)
                if folded is not None:
                    return folded
            return None
        finally:
            self.folding.discard(name)


def _percent_format(fmt: str | None, values: list[str | None]) -> str | None:
    """``fmt % values`` when the format and every value are known strings (no code runs)."""
    if fmt is None or any(v is None for v in values):
        return None
    try:
        return fmt % tuple(values)
    except (TypeError, ValueError, KeyError):
        return None


def _format_fields(fmt: str) -> list[str]:
    """Attribute and item names inside ``str.format`` replacement fields (parsing only)."""
    names: list[str] = []
    try:
        for _, field_name, spec, _ in string.Formatter().parse(fmt):
            for text in (field_name, spec):
                if text:
                    names.extend(_FIELD_PART.findall(text))
    except ValueError:
        return names
    return names


def _simple_format(fmt: str, args: list[str]) -> str | None:
    """``fmt.format(*args)`` for plain ``{}``/``{0}`` fields only; anything else is not folded."""
    out: list[str] = []
    auto = 0
    try:
        for literal, field_name, spec, conversion in string.Formatter().parse(fmt):
            out.append(literal)
            if field_name is None:
                continue
            if spec or conversion or not (field_name == "" or field_name.isdigit()):
                return None
            index = auto if field_name == "" else int(field_name)
            auto += field_name == ""
            if index >= len(args):
                return None
            out.append(args[index])
    except ValueError:
        return None
    return "".join(out)
