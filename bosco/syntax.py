"""Syntax checking and lexical facts of JS and CSS inputs (issue 5).

JS is parsed with tree-sitter (``tree-sitter-javascript``): a C parser with error recovery whose
ERROR/MISSING nodes give the first syntax error with line and column. CSS is scanned with the
tokenizer rules of CSS Syntax Level 3 (https://www.w3.org/TR/css-syntax-3/): the only errors that
grammar knows are unterminated comments and strings and unbalanced ``{}``/``()``/``[]``, which a
regex scan over those tokens finds exactly. (``tree-sitter-css`` 0.25 rejects valid modern CSS:
``@container``, keyframe percentages such as ``16.67%`` and IE hacks in Bootstrap 5, Bulma and
Font Awesome; tinycss2 parses at under 1 MB/s.)

Positions are UTF-16 code units, the unit of JavaScript strings and of Source Map v3 columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tree_sitter_javascript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

_JS = Language(tree_sitter_javascript.language())
_JS_SPANS = Query(_JS, """
(comment) @comment
(string) @literal
(template_string) @literal
(regex) @literal
(template_substitution) @substitution
""")
_CSS_TOKENS = re.compile(
    r"""(?P<esc>\\.)|(?P<comment>/\*.*?(?:\*/|\Z))"""
    r"""|(?P<string>"(?:[^"\\\n]|\\.|\\\n)*(?P<end1>")?|'(?:[^'\\\n]|\\.|\\\n)*(?P<end2>')?)"""
    r"""|(?P<open>[{(\[])|(?P<close>[})\]])""",
    re.S,
)
_PAIRS = {"}": "{", ")": "(", "]": "["}
SNIPPET = 160  # characters of the offending line shown around the column


@dataclass(frozen=True)
class SyntaxProblem:
    """The first syntax error of a file: 1-based ``line`` and ``column`` (UTF-16 units), a
    ``message`` and the offending ``source_line`` (shortened around the column when long)."""

    line: int
    column: int
    message: str
    source_line: str

    def describe(self, path: str) -> str:
        """``path:line:col: message`` and the offending line (the asset set prefixes the service)."""
        return f"{path}:{self.line}:{self.column}: {self.message}\n    {self.source_line}"


@dataclass(frozen=True)
class Facts:
    """Lexical facts of one file: ``literals`` and ``comments`` as ``(start, end)`` spans and
    ``holes`` (template substitutions, code inside a literal), in UTF-16 units; ``nodes`` is the
    parse tree size without comments (JS only, else -1); ``problem`` the first syntax error."""

    literals: tuple[tuple[int, int], ...]
    comments: tuple[tuple[int, int], ...]
    holes: tuple[tuple[int, int], ...]
    nodes: int
    problem: SyntaxProblem | None


def utf16(text: str) -> bytes:
    """``text`` as UTF-16-LE bytes (lone surrogates kept), the buffer positions are counted in."""
    return text.encode("utf-16-le", "surrogatepass")


def _problem(text: str, row: int, column: int, message: str) -> SyntaxProblem:
    lines = text.split("\n")
    line = lines[row] if row < len(lines) else ""
    start = max(0, column - SNIPPET // 2)
    snippet = ("…" if start else "") + line[start:start + SNIPPET].rstrip() + (
        "…" if len(line) > start + SNIPPET else "")
    return SyntaxProblem(row + 1, column + 1, message, snippet)


def _first_error(root: Node) -> Node | None:
    node = root
    while node.has_error:
        for child in node.children:
            if child.is_error or child.is_missing:
                return child
            if child.has_error:
                node = child
                break
        else:
            return node if node is not root else None
    return None


def _js_problem(text: str, root: Node) -> SyntaxProblem | None:
    node = _first_error(root)
    if node is None:
        return None
    while not node.is_missing:
        inner = next((c for c in node.children if c.is_error or c.is_missing), None)
        if inner is None:
            break
        node = inner
    if node.is_missing:
        message = f"missing `{node.type}`"
    else:
        snippet = (node.text or b"").decode("utf-16-le", "replace").split("\n", 1)[0].strip()[:40]
        message = f"syntax error at `{snippet}`" if snippet else "syntax error"
    return _problem(text, node.start_point.row, node.start_point.column // 2, message)


@lru_cache(maxsize=1)
def _js_parser() -> Parser:
    return Parser(_JS)


def js_tree_size(text: str) -> tuple[int, bool]:
    """``(node count without comments, has error)`` of the tree-sitter parse of ``text``."""
    root = _js_parser().parse(utf16(text), encoding="utf16").root_node
    comments = QueryCursor(_JS_SPANS).captures(root).get("comment", [])
    return root.descendant_count - len(comments), root.has_error


def js_facts(text: str) -> Facts:
    """Parse ``text`` as JavaScript (script or module) and return its ``Facts``."""
    root = _js_parser().parse(utf16(text), encoding="utf16").root_node
    captures = QueryCursor(_JS_SPANS).captures(root)

    def spans(name: str) -> tuple[tuple[int, int], ...]:
        return tuple(sorted((n.start_byte // 2, n.end_byte // 2) for n in captures.get(name, [])))

    comments = spans("comment")
    return Facts(spans("literal"), comments, spans("substitution"), root.descendant_count - len(comments),
                 _js_problem(text, root) if root.has_error else None)


def _position(text: str, index: int) -> tuple[int, int]:
    row = text.count("\n", 0, index)
    col_start = text.rfind("\n", 0, index) + 1
    return row, len(utf16(text[col_start:index])) // 2


def css_facts(text: str) -> Facts:
    """Scan ``text`` as CSS and return its ``Facts`` (literals are quoted strings)."""
    literals: list[tuple[int, int]] = []
    comments: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    problem_at: tuple[int, str] | None = None
    for match in _CSS_TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            stack.append((match.group(), match.start()))
        elif kind == "close":
            char = match.group()
            if not stack or stack[-1][0] != _PAIRS[char]:
                problem_at = problem_at or (match.start(), f"unexpected `{char}`")
            else:
                stack.pop()
        elif kind == "comment":
            comments.append(match.span())
            if not match.group().endswith("*/") or match.end() - match.start() < 4:
                problem_at = problem_at or (match.start(), "unterminated comment")
        elif kind == "string":
            literals.append(match.span())
            if match.group("end1") is None and match.group("end2") is None:
                problem_at = problem_at or (match.start(), "unterminated string")
    if problem_at is None and stack:
        problem_at = (stack[-1][1], f"`{stack[-1][0]}` is never closed")
    problem = None
    if problem_at is not None:
        problem = _problem(text, *_position(text, problem_at[0]), problem_at[1])
    if not text.isascii():
        units = unit_offsets(text)
        literals = [(int(units[a]), int(units[b])) for a, b in literals]
        comments = [(int(units[a]), int(units[b])) for a, b in comments]
    return Facts(tuple(literals), tuple(comments), (), -1, problem)


def unit_offsets(text: str) -> np.ndarray:
    """UTF-16 offset of every code point index of ``text`` (length ``len(text) + 1``)."""
    wide = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4") > 0xFFFF
    return np.concatenate(([0], np.cumsum(1 + wide)))


def problem(type_: str, text: str) -> SyntaxProblem | None:
    """Only the syntax check of ``facts`` (no literal or comment spans: cheaper for unminified files)."""
    if type_ != "js":
        return css_facts(text).problem
    root = _js_parser().parse(utf16(text), encoding="utf16").root_node
    return _js_problem(text, root) if root.has_error else None


def facts(type_: str, text: str) -> Facts:
    """``js_facts`` or ``css_facts`` by bundle type (``js``/``css``)."""
    return js_facts(text) if type_ == "js" else css_facts(text)
