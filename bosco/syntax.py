"""Syntax checking and lexical facts of JS and CSS inputs.

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

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tree_sitter_javascript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from bosco import cache

_JS = Language(tree_sitter_javascript.language())
# One query, so one walk of the tree: the spans of comments and literals, and module-only syntax (a
# <script> without type=module runs its file as a classic script, ECMA-262 §16.1).
_JS_QUERY = Query(_JS, """
(comment) @comment
(string) @literal
(template_string) @literal
(regex) @literal
(template_substitution) @substitution
(program (import_statement) @module)
(program (export_statement) @module)
(meta_property) @meta
(await_expression) @await
""")
_FUNCTIONS = frozenset({"function_declaration", "function_expression", "arrow_function", "method_definition",
                        "generator_function_declaration", "generator_function", "class_static_block"})


def _top_level_await(node: Node) -> bool:
    """An ``await x`` outside every function: module syntax (``await(x)`` stays a call in a script)."""
    argument = node.named_children[0] if node.named_children else None
    if argument is None or argument.type == "parenthesized_expression":
        return False
    parent = node.parent
    while parent is not None:
        if parent.type in _FUNCTIONS:
            return False
        parent = parent.parent
    return True
# HTML-like comments (ECMA-262 Annex B.1.1): ``<!--`` anywhere, ``-->`` first on a line, after
# nothing but spaces, tabs and one-line block comments.
_BEFORE_HTML_CLOSE = re.compile(r"(?:[ \t]|/\*(?:[^*\n]|\*(?!/))*\*/)*")
_LONE_CR = re.compile(r"\r(?!\n)")
# Escapes, comments and strings; a bracket outside them is a block (CSS Syntax 3, 5.4.7-5.4.9).
# Every alternative starts with a character of the leading class, so the regex engine jumps between
# those characters instead of trying each alternative at every position; lookbehinds tell them apart.
_CSS_TOKENS = re.compile(
    r"""[\\/"'](?:(?<=\\)(?P<esc>.)|(?<=/)(?P<comment>\*.*?(?:\*/|\Z))"""
    r"""|(?P<string>(?<=")(?:[^"\\\n]|\\.|\\\n)*(?P<end1>")?|(?<=')(?:[^'\\\n]|\\.|\\\n)*(?P<end2>')?))""",
    re.S,
)
_PAIRS = {"}": "{", ")": "(", "]": "["}
_BRACKET_KIND = np.zeros(128, dtype=np.int8)  # an opening bracket's kind, minus it for the closing one
_BRACKET_KIND[[ord(c) for c in "{(["]] = [1, 2, 3]
_BRACKET_KIND[[ord(c) for c in "})]"]] = [-1, -2, -3]
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


def to_units(text: str) -> np.ndarray:
    """``text`` as an array of UTF-16 code units (``<u2``; lone surrogates kept)."""
    return np.frombuffer(utf16(text), dtype="<u2")


def from_units(code_units: np.ndarray) -> str:
    """The text of UTF-16 ``code_units`` (lone surrogates kept): the inverse of ``to_units``."""
    return code_units.astype("<u2").tobytes().decode("utf-16-le", "surrogatepass")


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


class _Parse:
    """One parse of a JS text: its ``root`` node, the ``captures`` of ``_JS_QUERY`` on it by capture
    name, and their ``(start, end)`` spans in UTF-16 units (``spans``, each list read once)."""

    def __init__(self, text: str) -> None:
        self.root = _js_parser().parse(utf16(text), encoding="utf16").root_node
        self.captures = QueryCursor(_JS_QUERY).captures(self.root)
        self._spans: dict[str, tuple[tuple[int, int], ...]] = {}

    def spans(self, name: str) -> tuple[tuple[int, int], ...]:
        """The sorted spans of the nodes captured as ``name``."""
        found = self._spans.get(name)
        if found is None:
            found = self._spans[name] = tuple(sorted(
                (start // 2, end // 2) for start, end in (n.byte_range for n in self.captures.get(name, []))))
        return found


_handed: list[tuple[str, _Parse]] = []  # ``classic``'s last parse, for the next ``_parse``


def _parse(text: str) -> _Parse:
    """The ``_Parse`` of ``text``. When ``classic`` returned this very text (the same object), its
    parse is taken over instead of parsing again (``classic`` then ``js_facts``/``problem`` is how a
    JS file is read); it is kept for that next call only, so no tree outlives its use."""
    try:
        handed = _handed.pop()
    except IndexError:  # nothing handed over (or another thread took it)
        handed = None
    if handed is not None and handed[0] is text:
        return handed[1]
    return _Parse(text)


def find_all(text: str, needle: str, start: int = 0) -> list[int]:
    """Every index of ``needle`` in ``text`` from ``start`` on, not overlapping (``str.find``: a
    regex tries every position, many times slower)."""
    found = []
    at = text.find(needle, start)
    while at != -1:
        found.append(at)
        at = text.find(needle, at + len(needle))
    return found


def classic(text: str) -> str:
    """``text`` as tree-sitter and rjsmin should read a classic script, same length: a lone CR
    becomes LF (a line terminator, ECMA-262 §12.3) and each HTML-like comment (Annex B.1.1) a ``//``
    comment. The meaning is unchanged (template values normalise CR to LF), so positions still
    point into ``text``."""
    if "\r" in text:
        text = _LONE_CR.sub("\n", text)
    if "<!--" not in text and "-->" not in text:
        return text
    done = 0
    while True:
        parsed = _parse(text)
        spans = sorted(parsed.spans("comment") + parsed.spans("literal"))
        starts = [a for a, _ in spans]
        candidates = sorted(find_all(text, "<!--", done) + [
            at for at in find_all(text, "-->", done)
            if (line := text.rfind("\n", 0, at) + 1) >= done and _BEFORE_HTML_CLOSE.fullmatch(text, line, at)])
        units = unit_offsets(text) if not text.isascii() else None
        for at in candidates:
            unit = int(units[at]) if units is not None else at
            i = bisect.bisect_right(starts, unit) - 1
            if i < 0 or spans[i][1] <= unit:
                text = text[:at] + "//" + text[at + 2:]
                done = at + 2
                break
        else:
            _handed[:] = [(text, parsed)]
            return text


def _module_problem(text: str, captures: dict[str, list[Node]]) -> SyntaxProblem | None:
    nodes = captures.get("module", []) + [n for n in captures.get("meta", []) if (n.text or b"").startswith(
        "import".encode("utf-16-le"))] + [n for n in captures.get("await", []) if _top_level_await(n)]
    if not nodes:
        return None
    node = min(nodes, key=lambda n: n.start_byte)
    word = (node.text or b"").decode("utf-16-le", "replace").split(None, 1)[0].split(".", 1)[0]
    return _problem(text, node.start_point.row, node.start_point.column // 2,
                    f"`{word}` is module syntax: a <script> runs this file as a classic script "
                    f"(compile it to a classic script, or load it with <script type=\"module\"> outside bosco)")


def js_tree_size(text: str) -> tuple[int, bool]:
    """``(node count without comments, has error)`` of the tree-sitter parse of ``text``."""
    parsed = _parse(text)
    return parsed.root.descendant_count - len(parsed.spans("comment")), parsed.root.has_error


def js_facts(text: str) -> Facts:
    """Parse ``text`` as a classic JavaScript script (pass it through ``classic`` first) and return
    its ``Facts``; module syntax (``import``/``export`` statements, ``import.meta``, ``await`` outside
    a function) is a problem."""
    parsed = _parse(text)
    root, comments = parsed.root, parsed.spans("comment")
    return Facts(parsed.spans("literal"), comments, parsed.spans("substitution"), root.descendant_count - len(comments),
                 _js_problem(text, root) if root.has_error else _module_problem(text, parsed.captures))


def _position(text: str, index: int) -> tuple[int, int]:
    row = text.count("\n", 0, index)
    col_start = text.rfind("\n", 0, index) + 1
    return row, len(utf16(text[col_start:index])) // 2


def _brackets(text: str, skipped: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, kinds)`` (``_BRACKET_KIND``) of the brackets of ``text`` outside the ``skipped``
    spans (escapes, comments, strings: sorted, disjoint), in code points."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    found = codes == ord("{")
    for char in "}()[]":
        found |= codes == ord(char)
    positions = np.flatnonzero(found)
    if skipped and len(positions):
        spans = np.array(skipped, dtype=np.int64)
        inside = np.searchsorted(spans[:, 0], positions, side="right") - 1
        positions = positions[(inside < 0) | (positions >= spans[np.maximum(inside, 0), 1])]
    return positions, _BRACKET_KIND[codes[positions]]


def _balanced(kinds: np.ndarray) -> bool:
    """True when every bracket of ``kinds`` (in order) closes the innermost open one of its kind and
    none stays open. Vectorised: with a depth that never goes below 0, the brackets at one depth
    alternate opening, closing, so grouped by depth (stably) they pair up in twos."""
    depth = np.cumsum(np.where(kinds > 0, 1, -1))
    if not len(kinds):
        return True
    if depth.min() < 0 or depth[-1] != 0:
        return False
    paired = kinds[np.argsort(np.where(kinds > 0, depth, depth + 1), kind="stable")]
    return bool(np.array_equal(paired[0::2], -paired[1::2]))


def _bracket_problem(text: str, positions: np.ndarray) -> tuple[int, str] | None:
    """The first unexpected closing bracket at ``positions`` of ``text``, else the innermost one never
    closed, as ``(position, message)``; None when they balance."""
    stack: list[tuple[str, int]] = []
    for at in positions.tolist():
        char = text[at]
        if char in _PAIRS:
            if not stack or stack[-1][0] != _PAIRS[char]:
                return at, f"unexpected `{char}`"
            stack.pop()
        else:
            stack.append((char, at))
    return (stack[-1][1], f"`{stack[-1][0]}` is never closed") if stack else None


def css_facts(text: str) -> Facts:
    """Scan ``text`` as CSS and return its ``Facts`` (literals are quoted strings), with the first of
    these problems: an unterminated comment or string, a closing bracket that closes nothing or
    another kind of bracket, else a bracket never closed."""
    literals: list[tuple[int, int]] = []
    comments: list[tuple[int, int]] = []
    skipped: list[tuple[int, int]] = []
    problem_at: tuple[int, str] | None = None
    for match in _CSS_TOKENS.finditer(text):
        kind = match.lastgroup
        skipped.append(match.span())
        if kind == "comment":
            comments.append(match.span())
            if not match.group().endswith("*/") or match.end() - match.start() < 4:
                problem_at = problem_at or (match.start(), "unterminated comment")
        elif kind == "string":
            literals.append(match.span())
            if match.group("end1") is None and match.group("end2") is None:
                problem_at = problem_at or (match.start(), "unterminated string")
    positions, kinds = _brackets(text, skipped)
    if not _balanced(kinds):
        bracket = _bracket_problem(text, positions)
        if bracket is not None and (problem_at is None or (bracket[0] < problem_at[0]
                                                           and not bracket[1].endswith("never closed"))):
            problem_at = bracket
    problem = None
    if problem_at is not None:
        problem = _problem(text, *_position(text, problem_at[0]), problem_at[1])
    if not text.isascii():
        units = unit_offsets(text)
        literals = [(int(units[a]), int(units[b])) for a, b in literals]
        comments = [(int(units[a]), int(units[b])) for a, b in comments]
    return Facts(tuple(literals), tuple(comments), (), -1, problem)


# Characters of one file above which bosco neither parses nor minifies it (README "Bundles you can
# trust"): a parse tree and the alignment arrays take many times a file's size (a 200 MB file needed
# 12.9 GB). Such a file is shipped as it is and mapped line by line, with a warning.
LARGE_FILE = 20_000_000
# A ``//#`` comment ending the file; no backtick in its URL: it may be the last line of a template literal.
_LAST_LINE_MAP_URL = re.compile(r"(?:\A|\n)(//[#@][ \t]*sourceMappingURL=([^\s'\"*`]*)[ \t]*)\s*\Z")
_MAP_URL = re.compile(r"(?://|/\*)[#@][ \t]*sourceMappingURL=([^\s'\"*]*)\s*(?:\*/)?\Z")
_LAST_CSS_MAP_URL = re.compile(r"/\*[#@][ \t]*sourceMappingURL=([^\s'\"*]*)\s*\*/\s*\Z")


def _last_css_map_comment(text: str) -> tuple[int, int, str] | None:
    """The ``/*# sourceMappingURL=... */`` comment that ends ``text`` on a line of its own, when no
    scan is needed to know it is one: no comment is open before that line (the last ``/*`` before
    it is closed before it) and no string goes on into it (the line before does not end in ``\\``,
    CSS Syntax 3, 4.3.5). Else None (scan the file)."""
    line = text.rfind("\n", 0, text.rfind("sourceMappingURL")) + 1
    last = _LAST_CSS_MAP_URL.match(text, line)
    if last is None or text[max(0, line - 3):line].rstrip("\r\n").endswith("\\"):
        return None
    opened = text.rfind("/*", 0, line)
    if opened != -1 and text.find("*/", opened + 2, line) == -1:
        return None
    return last.start(), text.rindex("*/") + 2, last.group(1)


def map_comments(type_: str, text: str) -> tuple[tuple[int, int, str], ...]:
    """The ``sourceMappingURL`` comments of ``text`` (``//# ...`` or ``/*# ... */``, ``@`` too; the
    Source Map v3 spec) that are real comments, not text inside a string, template or regex, as
    ``(start, end, url)`` code point spans, in order. Cached by content (``bosco.cache``)."""
    if "sourceMappingURL" not in text:
        return ()
    if len(text) > LARGE_FILE:  # never parsed: only a comment at the very end counts
        last = (_LAST_LINE_MAP_URL if type_ == "js" else _MAP_URL).search(text)
        if last is None:
            return ()
        return ((last.start(1), last.end(1), last.group(2)),) if type_ == "js" else (
            (last.start(), last.end(), last.group(1)),)
    if type_ == "js" and text.count("sourceMappingURL") == 1:
        # The usual case needs no parse: a ``//#`` line at the very end of a file is a comment
        # (a string, template, regex or block comment open there would be a syntax error: none of
        # ``'"*` `` closes it in the URL); searched from the line break before the comment: from the
        # start, the regex tries every position
        last = _LAST_LINE_MAP_URL.search(text, max(text.rfind("\n", 0, text.find("sourceMappingURL")), 0))
        if last:
            return ((last.start(1), last.end(1), last.group(2)),)
    if type_ == "css" and text.count("sourceMappingURL") == 1:
        found = _last_css_map_comment(text)
        if found is not None:
            return (found,)
    name = cache.key("map-comments-1", type_, text)
    found = cache.load(name)
    if found is None:
        comments = list((js_facts(classic(text)) if type_ == "js" else css_facts(text)).comments)
        if not text.isascii():
            units = unit_offsets(text)
            comments = [(int(np.searchsorted(units, a)), int(np.searchsorted(units, b))) for a, b in comments]
        starts = [a for a, _ in comments]
        found = []
        for hit in re.finditer("sourceMappingURL", text):
            i = bisect.bisect_right(starts, hit.start()) - 1
            if i < 0 or comments[i][1] <= hit.start() or (found and found[-1][0] == comments[i][0]):
                continue
            start, end = comments[i]
            match = _MAP_URL.match(text[start:end].rstrip("\r"))
            if match:
                found.append((start, end, match.group(1)))
        found = tuple(found)
        cache.store(name, found)
    return found


def unit_offsets(text: str) -> np.ndarray:
    """UTF-16 offset of every code point index of ``text`` (length ``len(text) + 1``)."""
    if text.isascii() or len(utf16(text)) == 2 * len(text):  # no character outside the BMP
        return np.arange(len(text) + 1)
    wide = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4") > 0xFFFF
    return np.concatenate(([0], np.cumsum(1 + wide)))


def problem(type_: str, text: str) -> SyntaxProblem | None:
    """Only the syntax check of ``facts`` (no literal or comment spans: cheaper for unminified files)."""
    if type_ != "js":
        return css_facts(text).problem
    parsed = _parse(text)
    return _js_problem(text, parsed.root) if parsed.root.has_error else _module_problem(text, parsed.captures)


def facts(type_: str, text: str) -> Facts:
    """``js_facts`` or ``css_facts`` by bundle type (``js``/``css``)."""
    return js_facts(text) if type_ == "js" else css_facts(text)
