"""Verified minification with exact source maps.

rjsmin and rcssmin only delete characters (comments, whitespace; rcssmin also the ``;`` before a
``}``) or collapse a whitespace run to one separator. So the minified text can be *aligned* with its
input: every non-whitespace character of the output must be the next significant character of the
input, every whitespace character inside a literal (string, template, regex) must survive, and
between two significant characters the output may hold at most one separator. The alignment proves
that the token sequence is unchanged (comments and whitespace aside) when more checks hold: no
junction where whitespace was removed glues two tokens into one (``a+ +b``, ``x in y``,
``.a :first-child``, ``and (``, ``1px + 2px`` inside ``calc()``), no ``<!--`` (an HTML-like comment
in a classic script) appears in JS, and where a line break was removed or added so that automatic
semicolon insertion might read the two texts differently (``a\\n++b``; after ``return`` it is
rejected at once) or a number was joined to a ``.`` (``1 .x``), the JS output re-parses with no
syntax error into as many tree nodes as the input has without its comments: only those joins cost
a second parse.

The same alignment maps every output token to its input line and column, so the source map of a
minified file is exact. Everything is vectorised with numpy over UTF-16 code units (the column unit
of source maps); results are cached in memory and on disk by content hash (``bosco.cache``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rcssmin
import rjsmin

from bosco import cache, sourcemap, syntax
from bosco import workers as worker_pool
from bosco.sourcemap import FileMap, encode_segments
from bosco.syntax import Facts, SyntaxProblem, facts, find_all, from_units, js_tree_size, to_units, unit_offsets

# Cached results depend on the minifiers' versions and on this code (and the modules it uses).
VERSION = "/".join([f"rjsmin-{rjsmin.__version__}", f"rcssmin-{rcssmin.__version__}", cache.key(*(
    Path(module.__file__).read_text(encoding="utf-8") for module in (sys.modules[__name__], syntax, sourcemap)))])
_WS = np.zeros(65536, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True
_JS_WORD = np.zeros(65536, dtype=bool)
_JS_WORD[128:] = True
for _c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$\\":
    _JS_WORD[ord(_c)] = True
# CSS characters that continue an ident, number or dimension token (segment boundaries), and the
# wider set whose meeting across removed whitespace glues two tokens (``red #fff``, ``1px .5px``).
_CSS_WORD = _JS_WORD.copy()
_CSS_WORD[[ord("$")]] = False
for _c in "-%":
    _CSS_WORD[ord(_c)] = True
_CSS_GLUE_WORD = _CSS_WORD.copy()
for _c in "#.":
    _CSS_GLUE_WORD[ord(_c)] = True
# Two characters that start one longer JS token when the whitespace between them goes. Other
# gluings (``1 .x``, ``a - -b``, ``return\nx``) change the parse tree, which ``_compute`` compares.
_JS_GLUE = ("++", "--", "//", "/*")
_JS_PUNCT_PAIRS = ("==", "!=", "=>", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=",
                   "%=", "&=", "|=", "^=", "**", "<<", ">>", "..")


def _ws(units: np.ndarray) -> np.ndarray:
    """``_WS[units]`` by comparisons (no table look-up per unit: several times faster)."""
    return (units == 32) | ((units >= 9) & (units <= 13))


def _in(units: np.ndarray, codes: list[int]) -> np.ndarray:
    """``np.isin(units, codes)`` for a few UTF-16 ``codes`` (a comparison per code: much cheaper)."""
    found = units == codes[0]
    for code in codes[1:]:
        found |= units == code
    return found


def _pair_codes(pairs: tuple[str, ...]) -> np.ndarray:
    return np.array([ord(p[0]) * 65536 + ord(p[1]) for p in pairs], dtype=np.int64)


_JS_GLUE_CODES = _pair_codes(_JS_GLUE)
_JS_PAIRS = np.zeros(128 * 128, dtype=bool)  # ``_JS_PUNCT_PAIRS`` by ``first * 128 + second``
_JS_PAIRS[[ord(p[0]) * 128 + ord(p[1]) for p in _JS_PUNCT_PAIRS]] = True


def _table(chars: str) -> np.ndarray:
    table = np.zeros(65536, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


# Line terminators (ECMA-262 §12.3). Where the minifier removes one between two tokens, automatic
# semicolon insertion (§12.10) may have applied in the input and not in the output. It cannot after
# a punctuator that never ends a statement (``=``, ``(``, ``,``, ``{``...: the line continues), and
# it changes nothing before one that never starts one (``}``, ``)``, ``;``, ``.``... unless the
# previous token is a restricted keyword such as ``return``, or ``++``/``--`` start the next line).
_LT = _table("\n\r\u2028\u2029")
_NO_END = _table("{([,;:?=<>+-*/%&|^!~.")
_NO_START = _table(")]},;:?.=*%&|^<>+-/")  # ``/`` outside a literal: a division, never a regex
_AFTER_ANY = _table("};")  # ASI before these behaves the same with or without the line break
# A line break after these ends the statement (restricted productions, ECMA-262 §12.10.1): the
# minifier may not remove it before anything but ``;``/``}``. After the others it may matter.
_ENDS_STATEMENT = frozenset(("return", "break", "continue", "throw", "yield"))
_RESTRICTED = frozenset(("async", "let", "await", "get", "set", "static", "of"))
_DIGIT = _table("0123456789")


MINIFIED = "minified"  # kind of verified minify results in the shared cache


@dataclass(frozen=True)
class Minified:
    """One file after minification: ``code`` to ship, ``file_map`` its exact mappings (None: map
    line by line, the code being the input itself), ``problem`` the input's first syntax error and
    ``fault`` why the minifier's output was rejected (the input is shipped instead); ``legal`` the
    legal comments the minifier took out of ``code`` (for the end of the bundle or a LEGAL.txt);
    ``repaired`` a known fault of the minifier that bosco repaired from the source (information, not
    a problem: ``code`` is minified and exact)."""

    code: str
    file_map: FileMap | None
    problem: SyntaxProblem | None = None
    fault: str | None = None
    legal: tuple[str, ...] = ()
    repaired: str | None = None


def encode_minified(result: Minified) -> bytes:
    """``result`` as JSON for the shared cache (never a pickle: the store is shared)."""
    file_map = result.file_map
    return json.dumps({
        "code": result.code,
        "map": None if file_map is None else [list(file_map.first), file_map.tail, file_map.lines,
                                              file_map.last_col, list(file_map.end)],
        "problem": None if result.problem is None else [result.problem.line, result.problem.column,
                                                        result.problem.message, result.problem.source_line],
        "fault": result.fault,
        "legal": list(result.legal),
        "repaired": result.repaired,
    }).encode()


def decode_minified(payload: bytes) -> Minified | None:
    """The ``Minified`` of ``encode_minified``; None for anything else (also a map whose ``tail`` is
    not a ``mappings`` text)."""
    try:
        data = json.loads(payload)
        m, p = data["map"], data["problem"]
        file_map = None if m is None else FileMap(
            tuple(int(v) for v in m[0]), str(m[1]), int(m[2]), int(m[3]), tuple(int(v) for v in m[4]))
        problem = None if p is None else SyntaxProblem(int(p[0]), int(p[1]), str(p[2]), str(p[3]))
        fault, repaired = data["fault"], data["repaired"]
        result = Minified(str(data["code"]), file_map, problem, None if fault is None else str(fault),
                          tuple(str(c) for c in data["legal"]), None if repaired is None else str(repaired))
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    if file_map is not None and (len(file_map.first) != 4 or len(file_map.end) != 2
                                 or not sourcemap.MAPPINGS.fullmatch(file_map.tail)):
        return None  # a tail goes into map JSON as it is (``MapWriter.to_json``)
    return result


def _mask(n: int, spans: tuple[tuple[int, int], ...], holes: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    """True for the units ``0..n-1`` inside a ``(start, end)`` span of ``spans`` and not inside one of ``holes``.
    The nesting depth is counted at the span ends only, then spread over the runs between them."""
    s, h = (np.array(found, dtype=np.int64).reshape(-1, 2) for found in (spans, holes))
    pos = np.concatenate((s[:, 0], s[:, 1], h[:, 0], h[:, 1]))
    if not len(pos):
        return np.zeros(n, dtype=bool)
    delta = np.repeat(np.array([1, -1, -1, 1], dtype=np.int64), [len(s), len(s), len(h), len(h)])
    order = np.argsort(pos, kind="stable")
    pos, depth = pos[order], np.cumsum(delta[order])
    last = np.append(pos[1:] != pos[:-1], True)  # the depth after every change at one position
    bounds = np.concatenate(([0], pos[last], [n]))
    return np.repeat(np.concatenate(([False], depth[last] > 0)), np.diff(bounds))


def _line_col(units: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based ``(line, column)`` of each position of ``pos`` in ``units`` (lines end at LF)."""
    starts = np.concatenate(([0], np.flatnonzero(units == 10) + 1))
    if len(pos) > len(starts) and not np.any(pos[1:] < pos[:-1]):
        # sorted (the usual case): count the positions of each line, a search per line, not per position
        line = np.repeat(np.arange(len(starts)), np.diff(np.searchsorted(pos, starts), append=len(pos)))
    else:
        line = np.searchsorted(starts, pos, side="right") - 1
    return line, pos - starts[line]


def _where(text: str, a: np.ndarray, pos: int) -> str:
    line, col = _line_col(a, np.array([pos]))
    return f"line {int(line[0]) + 1}:{int(col[0]) + 1}"


def _gaps(css: bool, nonws: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """The gap of each whitespace position of ``ws``: how many positions of ``nonws`` come before it.
    In JS the two cover every unit, so that is the position less the whitespace before it."""
    return np.searchsorted(nonws, ws) if css else ws - np.arange(len(ws))


def _drop_semicolons(units: np.ndarray, nonws: np.ndarray) -> np.ndarray:
    chars = units[nonws]
    drop = np.zeros(len(nonws), dtype=bool)
    drop[:-1] = (chars[:-1] == ord(";")) & (chars[1:] == ord("}"))
    return nonws[~drop]


@dataclass(frozen=True)
class Alignment:
    """``origin[i]`` is the UTF-16 position in the input of output unit ``i`` (-1 for a separator);
    ``literal[i]`` is True for output units inside a string, template or regex literal;
    ``unproven`` is the input position of the first JS join the alignment alone cannot prove
    unchanged (see ``_unproven``), else None."""

    origin: np.ndarray
    literal: np.ndarray
    repaired: str | None = None
    fault: str | None = None
    unproven: int | None = None


def align(type_: str, text: str, minified: str, info: Facts) -> Alignment | str:
    """Align ``minified`` with ``text``: an ``Alignment``, or the reason (naming the input line and
    column) why the minifier's output is not ``text``'s tokens."""
    a, b = to_units(text), to_units(minified)
    literal = _mask(len(a), info.literals, info.holes)
    comment = _mask(len(a), info.comments)
    ws_a = _ws(a)
    a_nonws = np.flatnonzero(~ws_a & (~comment | literal))  # significant units
    a_litws = np.flatnonzero(ws_a & literal)  # significant whitespace
    ws_b = _ws(b)
    b_nonws, b_ws = np.flatnonzero(~ws_b), np.flatnonzero(ws_b)
    css = type_ == "css"
    if css:
        a_nonws, b_nonws = _drop_semicolons(a, a_nonws), _drop_semicolons(b, b_nonws)
    count = min(len(a_nonws), len(b_nonws))
    chars = a[a_nonws]  # the input's significant units, as the output must hold them
    differ = np.flatnonzero(chars[:count] != b[b_nonws[:count]])
    if len(differ) or len(a_nonws) != len(b_nonws):
        k = int(differ[0]) if len(differ) else count
        at = int(a_nonws[min(k, len(a_nonws) - 1)]) if len(a_nonws) else 0
        return f"the minifier changed the code at {_where(text, a, at)}"
    gaps = len(a_nonws) + 1
    gap_a = np.searchsorted(a_nonws, a_litws)
    gap_b = _gaps(css, b_nonws, b_ws)
    in_literal = np.zeros(gaps, dtype=bool)
    in_literal[gap_a] = True
    b_litws = b_ws[in_literal[gap_b]]
    same = len(b_litws) == len(a_litws) and bool(np.array_equal(b[b_litws], a[a_litws]))
    repaired = None
    if not same:
        count_a = np.bincount(gap_a, minlength=gaps)
        count_b = np.bincount(gap_b[in_literal[gap_b]], minlength=gaps)
        first = int(np.argmax(count_a != count_b)) if np.any(count_a != count_b) else int(
            gap_a[np.argmax(b[b_litws] != a[a_litws])])
        at = int(a_litws[np.searchsorted(gap_a, first)])
        reason = f"the minifier changed whitespace inside a string or template at {_where(text, a, at)}"
        if css:
            return reason
        # Put the literal's own whitespace back: output tokens, separators outside literals, and
        # every whitespace unit of the input's literals, ordered by gap (stable within a gap).
        b_sep = b_ws[~in_literal[gap_b]]
        order = np.argsort(np.concatenate((2 * np.arange(len(b_nonws)) + 1, 2 * gap_b[~in_literal[gap_b]],
                                           2 * gap_a)), kind="stable")
        units = np.concatenate((b[b_nonws], b[b_sep], a[a_litws]))[order]
        origin = np.concatenate((a_nonws, np.full(len(b_sep), -1), a_litws))[order]
        repaired = from_units(units)
        b = units
        ws_b = _ws(b)
        b_nonws, b_ws = np.flatnonzero(~ws_b), np.flatnonzero(ws_b)
        gap_b = _gaps(css, b_nonws, b_ws)
        b_litws = b_ws[in_literal[gap_b]]
    separated = np.zeros(gaps, dtype=bool)  # gaps that hold whitespace in the output
    separated[gap_b] = True
    spaced = np.ones(gaps, dtype=bool)  # gaps whose input holds whitespace (outside comments)
    if css:
        # CSS comments are not whitespace: ``.a/**/.b`` is ``.a.b``. A separator where the input
        # had only comments goes, a custom property's whitespace-only value keeps one space.
        before = np.zeros(len(a), dtype=bool)
        before[a_nonws] = True
        before = np.cumsum(before)  # significant units up to each unit: a whitespace unit's gap
        spaced = np.zeros(gaps, dtype=bool)
        spaced[before[ws_a & ~comment & ~literal]] = True
        b, changed = _css_separators(a, a_nonws, b, b_nonws, b_ws, gap_b, separated, spaced, in_literal)
        if changed:
            repaired = from_units(b)
            ws_b = _ws(b)
            b_nonws, b_ws = _drop_semicolons(b, np.flatnonzero(~ws_b)), np.flatnonzero(ws_b)
            gap_b = _gaps(css, b_nonws, b_ws)
            b_litws = b_ws[in_literal[gap_b]]
            separated = np.zeros(gaps, dtype=bool)
            separated[gap_b] = True
    # joins whose input whitespace or comments all went (between ``a_nonws[k]`` and ``a_nonws[k + 1]``)
    removed = (np.diff(a_nonws) > 1) & ~separated[1:-1]
    in_lit = literal[a_nonws]
    glued, merged = _glued(css, chars, a_nonws, removed, in_lit, spaced)
    if glued is not None:
        return f"the minifier joined two tokens at {_where(text, a, glued)}"
    origin = np.full(len(b), -1, dtype=np.int32)  # a parsed file has at most syntax.LARGE_FILE units
    origin[b_nonws] = a_nonws
    origin[b_litws] = a_litws
    literal_b = np.zeros(len(b), dtype=bool)
    literal_b[b_nonws] = in_lit
    literal_b[b_litws] = True  # whitespace is significant only inside a literal
    if len(merged):
        # Tokens that only a comment kept apart (``1px/**/2px``) keep an empty comment between them.
        at = np.repeat(b_nonws[merged], 4)
        b = np.insert(b, at, np.tile(to_units("/**/"), len(merged)))
        origin = np.insert(origin, at, -1)
        literal_b = np.insert(literal_b, at, False)
        repaired = from_units(b)
    unproven, changed = (None, False) if css else _unproven(a, a_nonws, chars, literal, in_lit, removed, b,
                                                            b_nonws, b_ws[~in_literal[gap_b]], text)
    if changed:
        return f"the minifier removed the line break that ends a statement at {_where(text, a, unproven)}"
    opened = None if css else _html_open(b, literal_b)
    if opened is not None:
        return f"the minifier made an HTML-like comment (`<!--`) at {_where(text, a, int(origin[opened]))}"
    return Alignment(origin, literal_b, repaired, reason if repaired and not css else None, unproven)


def _unproven(a: np.ndarray, nonws: np.ndarray, chars: np.ndarray, literal: np.ndarray, in_lit: np.ndarray,
              removed: np.ndarray, b: np.ndarray, b_nonws: np.ndarray, b_sep: np.ndarray,
              text: str) -> tuple[int | None, bool]:
    """``(input position, changed)`` of the first join (between input tokens ``nonws[k]`` and
    ``nonws[k + 1]``; ``chars`` and ``in_lit`` are ``a`` and ``literal`` there) the alignment cannot
    prove unchanged, else ``(None, False)``: a line break added or removed where automatic semicolon
    insertion might read the two versions differently (see ``_LT``), or whitespace removed between a
    number and a ``.`` (``1 .x``). ``changed`` is True when the join certainly changed meaning: a line
    break removed after ``return``/``break``/``continue``/``throw``/``yield``. (A ``<!--`` the
    minifier made is ``_html_open``'s.)"""
    if len(nonws) < 2:
        return None, False
    gaps = len(nonws) + 1
    lt = np.flatnonzero(_LT[a] if "\r" in text or "\u2028" in text or "\u2029" in text else a == 10)
    had = np.zeros(gaps, dtype=bool)  # gap ``g`` lies before ``nonws[g]``
    had[np.searchsorted(nonws, lt[~literal[lt]])] = True
    has = np.zeros(gaps, dtype=bool)
    has[np.searchsorted(b_nonws, b_sep[b[b_sep] == 10])] = True
    had, has = had[1:-1], has[1:-1]
    dot = chars == 46
    # Only joins whose line breaks differ, or with a ``.`` beside removed whitespace, can be risky:
    # the rest of the checks look at those alone (``k``: between ``nonws[k]`` and ``nonws[k + 1]``).
    k = np.flatnonzero((had != has) | (removed & (dot[:-1] | dot[1:])))
    had, has, removed = had[k], has[k], removed[k]
    left, right = chars[k], chars[k + 1]
    lit_l, lit_r = in_lit[k], in_lit[k + 1]
    before = np.where(k > 0, chars[np.maximum(k - 1, 0)], 0)
    after = np.where(k + 2 < len(chars), chars[np.minimum(k + 2, len(chars) - 1)], 0)
    postfix = _in(left, [43, 45]) & (before == left)
    continues = _NO_END[left] & ~lit_l & ~postfix & ~((left == 46) & _DIGIT[before])  # ``1.`` is a number
    closing = ~lit_r & (_AFTER_ANY[right] | (_NO_START[right] & ~(_in(right, [43, 45]) & (after == right))
                                             & ~((right == 46) & _DIGIT[after]) & ~((right == 61) & (after == 62))))
    glue = removed & (left == 46) & _DIGIT[right]
    risky = k[(has & ~had) | (had & ~has & ~continues & ~closing) | glue]
    restricted = np.flatnonzero(had & ~has & ~continues & ~_AFTER_ANY[right] & _JS_WORD[left] & ~lit_l)
    number_dot = k[removed & _DIGIT[left] & (right == 46)]
    ends = k[restricted[_word_is(a, nonws[k[restricted]], _ENDS_STATEMENT)]]
    if len(ends):
        return int(nonws[ends[0]]), True
    found = list(k[restricted[_word_is(a, nonws[k[restricted]], _RESTRICTED) & closing[restricted]]])
    found += [g for g in number_dot if _DIGIT[a[_word_start(a, int(nonws[g]))]]]
    first = min(risky[:1].tolist() + [int(g) for g in found], default=None)
    return (int(nonws[first]), False) if first is not None else (None, False)


def _html_open(b: np.ndarray, literal_b: np.ndarray) -> int | None:
    """Output position of the first ``<!--`` outside a literal in the minified units ``b`` (such as
    ``a<!--b`` from ``a < !--b``), else None. In a classic script it starts an HTML-like comment
    (ECMA-262 B.1.1) that hides the rest of the line, and the input (through ``syntax.classic``) has
    none left outside literals, so the minifier made it: tree-sitter, which reads ``<!--`` as
    ``<``, ``!`` and ``--``, would not notice."""
    if len(b) < 4:
        return None
    found = np.flatnonzero((b[:-3] == 60) & (b[1:-2] == 33) & (b[2:-1] == 45) & (b[3:] == 45) & ~literal_b[:-3])
    return int(found[0]) if len(found) else None


def _word_start(a: np.ndarray, end: int) -> int:
    """Start of the identifier, keyword or number ending at input position ``end``."""
    start = end
    while start > 0 and _JS_WORD[a[start - 1]]:
        start -= 1
    return start


def _word_is(a: np.ndarray, ends: np.ndarray, words: frozenset[str]) -> np.ndarray:
    """For each input position of ``ends``: True when the whole identifier or keyword ending there is
    one of ``words`` (ASCII) and not a property name (``a.return``)."""
    found = np.zeros(len(ends), dtype=bool)
    for word in words:
        start = ends - (len(word) - 1)
        same = start >= 0
        for i, char in enumerate(word):
            same &= a[np.maximum(start + i, 0)] == ord(char)
        before = np.where(start > 0, a[np.maximum(start - 1, 0)], 32)
        found |= same & ~_JS_WORD[before] & (before != 46)
    return found


def _css_separators(a: np.ndarray, a_nonws: np.ndarray, b: np.ndarray, b_nonws: np.ndarray, b_ws: np.ndarray,
                    gap_b: np.ndarray, separated: np.ndarray, spaced: np.ndarray,
                    in_literal: np.ndarray) -> tuple[np.ndarray, bool]:
    """``b`` without the separators in gaps where the input had only comments, and with one space
    in an empty value (``--x: ;``, input whitespace between ``:`` and ``;``/``}``) the minifier
    emptied; ``(units, changed)``."""
    drop = b_ws[(~spaced & ~in_literal)[gap_b]]
    colons = np.flatnonzero(a == ord(":"))
    at = np.searchsorted(a_nonws, colons)  # the gap after a significant ``:`` is ``at + 1``
    inner = at[(at + 1 < len(a_nonws)) & (a_nonws[np.minimum(at, len(a_nonws) - 1)] == colons)] + 1
    need = inner[spaced[inner] & ~separated[inner] & _in(a[a_nonws[inner]], [ord(";"), ord("}")])]
    if not len(drop) and not len(need):
        return b, False
    b = np.delete(b, drop)
    shift = np.searchsorted(drop, b_nonws[need])
    return np.insert(b, b_nonws[need] - shift, ord(" ")), True


def _glued(css: bool, chars: np.ndarray, nonws: np.ndarray, removed: np.ndarray, in_lit: np.ndarray,
           spaced: np.ndarray) -> tuple[int | None, np.ndarray]:
    """``(input position where removing all whitespace between two tokens makes them one, else None;
    gaps where only comments kept two CSS tokens apart and the output needs an empty comment)``.
    ``chars`` are the input's units at its significant positions ``nonws``, ``in_lit`` says which are
    in a literal; ``spaced[g]`` says whether the input's gap ``g`` (before ``nonws[g]``) holds whitespace."""
    merged = np.zeros(0, dtype=np.int64)
    if len(nonws) < 2:
        return None, merged
    # gaps ``k`` (between ``nonws[k]`` and ``nonws[k + 1]``) whose whitespace or comments all went
    k = np.flatnonzero(removed & ~in_lit[1:])
    left, right = chars[k].astype(np.int64), chars[k + 1].astype(np.int64)
    if css:
        word = _CSS_GLUE_WORD
        # parentheses open at each join: those opened up to its left token less those closed
        depth = (np.searchsorted(np.flatnonzero(chars == ord("(")), k, side="right")
                 - np.searchsorted(np.flatnonzero(chars == ord(")")), k, side="right"))
        lw, rw = word[left], word[right]
        sign_l, sign_r = _in(left, [43, 45]), _in(right, [43, 45])
        # A selector (or at-rule prelude) is followed by ``{`` before any ``;``/``}``: there the
        # whitespace before ``:``/``[``/``.``/``#`` is a descendant combinator.
        structural = np.flatnonzero(_in(chars, [ord("{"), ord(";"), ord("}")]))
        following = np.searchsorted(structural, k + 1)
        in_selector = np.zeros(len(k), dtype=bool)
        inside = following < len(structural)
        in_selector[inside] = chars[structural[following[inside]]] == ord("{")
        hazard = (lw & rw) | (lw & (right == ord("("))) | (
            (depth > 0) & (sign_l | sign_r) & ~_in(left, [40, 44]) & ~_in(right, [41, 44]))
        hazard |= in_selector & (lw | _in(left, [41, 93])) & (rw | _in(right, [ord(":"), ord("[")]))
        # Without whitespace or a comment between them, two tokens become one (CSS Syntax 4.3).
        digit_l, digit_r = (left >= 48) & (left <= 57), (right >= 48) & (right <= 57)
        cw_l, cw_r = _CSS_WORD[left], _CSS_WORD[right]
        merge = (cw_l & cw_r) | (cw_l & (right == ord("("))) | (_in(left, [ord("@"), ord("#")]) & cw_r) | (
            (left == ord("/")) & (right == ord("*"))) | (digit_l & (right == ord("."))) | (
            (left == ord(".")) & digit_r) | ((left == ord("+")) & (digit_r | (right == ord(".")))) | (
            (left == ord("<")) & (right == ord("!")))
        merged = k[~spaced[k + 1] & merge] + 1
        found = k[spaced[k + 1] & hazard]
    else:
        found = k[(_JS_WORD[left] & _JS_WORD[right]) | np.isin(left * 65536 + right, _JS_GLUE_CODES)]
    return (int(nonws[found[0]]) if len(found) else None), merged


def segments(type_: str, minified: str, origin: np.ndarray, literal_b: np.ndarray, source: str) -> FileMap | None:
    """The exact ``FileMap`` of ``minified``: one segment at the start of every output token and
    wherever the alignment jumps. ``origin`` maps output units to positions in ``source`` (-1 for
    separators), ``literal_b`` marks output units inside a literal (one token however long)."""
    b = to_units(minified)
    if len(b) == 0:
        return None
    step = np.diff(origin, prepend=-2)
    after_newline = np.concatenate(([True], b[:-1] == 10))
    word = (_CSS_WORD if type_ == "css" else _JS_WORD)[b]
    prev_word = np.concatenate(([False], word[:-1]))
    prev_lit = np.concatenate(([False], literal_b[:-1]))
    token = np.where(literal_b, ~prev_lit, (word != prev_word) | ~word | prev_lit)
    if type_ == "js":
        # a punctuator after a punctuator goes on one of two characters (``==``, ``=>``...): both ASCII
        k = np.flatnonzero(~word & ~prev_word & ~prev_lit & ~literal_b & ~after_newline)
        token[k[_JS_PAIRS[b[k - 1].astype(np.int64) * 128 + b[k]]]] = False
    # a rewritten stretch (a rebased url) maps every unit to one place: one segment is enough
    pos = np.flatnonzero((origin >= 0) & (step != 0) & ((step != 1) | after_newline | (token & ~_ws(b))))
    gen_line, gen_col = _line_col(b, pos)
    src_line, src_col = _line_col(to_units(source), origin[pos])
    return encode_segments(gen_line, gen_col, src_line, src_col)


_ASCII_WORD = _table("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


def exact_map(type_: str, text: str, source: str | None = None,
              edits: tuple[tuple[int, int, int], ...] = (), cached_only: bool = False) -> FileMap | None:
    """The exact ``FileMap`` of ``text`` shipped as it is (a concatenated, unminified bundle): one
    segment at the start of every line and token, pointing at the same token of ``source`` when
    ``text`` is ``source`` rewritten by ``edits`` (as in ``minify_verified``), else of ``text``.
    None for an empty text or one longer than ``syntax.LARGE_FILE`` (map it line by line), and with
    ``cached_only`` when it is not cached yet. Cached by content (``bosco.cache``)."""
    if not text or len(text) > syntax.LARGE_FILE:
        return None
    name = cache.key(VERSION, type_, "as-is", text, source or "", repr(edits))
    found = cache.load(name)
    if found is None and not cached_only:
        units = to_units(text)
        n = len(units)
        origin = _shift(n, edits) if source is not None else np.arange(n, dtype=np.int64)
        # a token starts at every unit that is neither white space nor the continuation of an
        # ASCII word: finer than a lexer's tokens, so every token of either language starts on one
        word = _ASCII_WORD[units]
        start = ~_WS[units] & ~(word & np.concatenate(([False], word[:-1])))
        prev_origin = np.concatenate(([-2], origin[:-1]))
        line_start = np.concatenate(([True], units[:-1] == 10))
        # a rewritten stretch (a rebased url) maps every unit to one place: one segment is enough
        pos = np.flatnonzero((start | line_start | (origin != prev_origin + 1)) & (origin != prev_origin))
        gen_line, gen_col = _line_col(units, pos)
        src_line, src_col = _line_col(units if source is None else to_units(source), origin[pos])
        found = encode_segments(gen_line, gen_col, src_line, src_col)
        cache.store(name, found)
    return found


def _minify(type_: str, text: str) -> str:
    return rjsmin.jsmin(text) if type_ == "js" else rcssmin.cssmin(text)


def check_output(type_: str, text: str, output: str, info: Facts) -> Alignment | str:
    """``align`` plus, for JS whose minified line breaks might change automatic semicolon insertion
    (``Alignment.unproven``), the parse check: the (repaired) output must parse without error into
    as many nodes as ``text`` has without comments. Elsewhere the alignment and the junction checks
    already prove the token sequence unchanged. Returns the ``Alignment`` or the reason."""
    aligned = align(type_, text, output, info)
    if not isinstance(aligned, str) and type_ == "js" and aligned.unproven is not None:
        nodes, broken = js_tree_size(aligned.repaired or output)
        if broken or nodes != info.nodes:
            return "the minified code parses differently from the input"
    return aligned


def _shift(length: int, edits: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """Positions of a rewritten text (``edits`` as ``(start, end, new length)`` in the original,
    UTF-16 units) -> positions in the original; a replacement maps to the start of what it replaced."""
    pieces, old = [], 0
    for start, end, new_length in edits:
        pieces += [np.arange(old, start), np.full(new_length, start)]
        old = end
    pieces.append(np.arange(old, old + length - sum(len(p) for p in pieces)))
    return np.concatenate(pieces).astype(np.int64)


# What makes a comment legal, as esbuild defines it (``--legal-comments``): it starts with ``/*!``
# or ``//!``, or holds one of these.
_LEGAL_INSIDE = ("@license", "@preserve")


def _legal_spans(text: str, a: np.ndarray, comments: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """The legal comments among ``comments`` (sorted, disjoint ``(start, end)`` spans of ``text`` in
    its UTF-16 units ``a``): every comment starts with ``/*`` or ``//``, so ``!`` as its third unit
    makes it legal; ``_LEGAL_INSIDE`` marks are searched in ``text`` once, not comment by comment."""
    if not comments:
        return []
    spans = np.array(comments, dtype=np.int64)
    start, end = spans[:, 0], spans[:, 1]
    third = np.minimum(start + 2, len(a) - 1)
    legal = (end - start >= 3) & _in(a[third - 1], [ord("*"), ord("/")]) & (a[third] == ord("!"))
    marks = [(at, at + len(mark)) for mark in _LEGAL_INSIDE for at in find_all(text, mark)]
    if marks:
        mark = np.array(marks, dtype=np.int64)
        if len(a) != len(text):  # characters outside the BMP: code point indices differ from units
            mark = unit_offsets(text)[mark]
        i = np.maximum(np.searchsorted(start, mark[:, 0], side="right") - 1, 0)
        legal[i[(mark[:, 0] >= start[i]) & (mark[:, 1] <= end[i])]] = True
    return [(s, e) for s, e in spans[legal].tolist()]


def _legal_comments(type_: str, text: str, minified: str, origin: np.ndarray, literal_b: np.ndarray,
                    info: Facts) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The units of ``minified`` (with ``origin``/``literal_b``) with the legal comments of the input
    ``text`` (``_legal_spans``) put back, each before the output token that followed it (a ``//!``
    comment with its line break), and the texts of those comments (none: ``minified``'s units as
    they are).

    This needs no new parse: each comment goes back into the gap between the two tokens it was
    between, where it cannot join them (after a ``/`` it gets a space: ``a/ /*!x*/``) and a line
    break it brings (a ``//!`` comment's own, or one inside a ``/*! */``, which counts as a line
    terminator, ECMA-262 §12.4) was in that gap of the input too, so that gap reads as the input's
    did; every other gap is as ``align`` proved it."""
    a, b = to_units(text), to_units(minified)
    spans = _legal_spans(text, a, info.comments)
    if not spans:
        return b, origin, literal_b, ()
    mapped = np.flatnonzero(origin >= 0)
    following = np.searchsorted(origin[mapped], [e for _, e in spans]).tolist()
    where, units, origins, texts = [], [], [], []
    for (s, e), k in zip(spans, following, strict=True):
        at = int(mapped[k]) if k < len(mapped) else len(b)
        piece, piece_origin = list(a[s:e]), list(range(s, e))
        if type_ == "js" and at > 0 and b[at - 1] == ord("/"):
            piece, piece_origin = [32, *piece], [-1, *piece_origin]  # ``a/ /*!x*/`` must not become ``a//*!x*/``
        if a[s + 1] == ord("/"):
            piece, piece_origin = [*piece, 10], [*piece_origin, -1]
        where += [at] * len(piece)
        units += piece
        origins += piece_origin
        texts.append(from_units(a[s:e]))
    b = np.insert(b, where, np.array(units, dtype=b.dtype))
    literal_b = np.insert(literal_b, where, np.array(origins) >= 0)
    return b, np.insert(origin, where, np.array(origins, dtype=np.int64)), literal_b, tuple(texts)


def large(text: str) -> Minified | None:
    """For a file above ``syntax.LARGE_FILE`` characters: the file as it is, mapped line by line,
    with the reason as ``fault`` (it is neither parsed nor minified: memory stays proportional to
    its size). None for any other file."""
    if len(text) <= syntax.LARGE_FILE:
        return None
    return Minified(text, None, None, f"{len(text):,} characters, more than the {syntax.LARGE_FILE:,} bosco "
                    f"parses and minifies in one file: shipped as it is (not syntax-checked, mapped line by line)")


def _compute(type_: str, text: str, minify: bool, source: str | None,
             edits: tuple[tuple[int, int, int], ...], keep_legal: bool = True) -> Minified:
    too_large = large(text)
    if too_large is not None:
        return too_large
    read = syntax.classic(text) if type_ == "js" else text  # same length: positions still point into text
    if not minify:
        return Minified(text, None, syntax.problem(type_, read))
    info = facts(type_, read)
    if info.problem is not None:
        return Minified(text, None, info.problem)
    output = _minify(type_, read)
    aligned = check_output(type_, read, output, info)
    if isinstance(aligned, str):
        return Minified(text, None, None, aligned + "; shipped unminified")
    output = aligned.repaired or output
    origin, literal_b, legal = aligned.origin, aligned.literal, ()
    if info.comments:
        b, origin_l, literal_l, legal = _legal_comments(type_, read, output, origin, literal_b, info)
        if keep_legal and legal:
            output, origin, literal_b, legal = from_units(b), origin_l, literal_l, ()
    if source is not None:
        shift = _shift(len(to_units(text)), edits)
        origin = np.where(origin >= 0, shift[np.maximum(origin, 0)], -1)
    return Minified(output, segments(type_, output, origin, literal_b, source or text), None, None, legal,
                    aligned.fault)


def _key(type_: str, text: str, minify: bool, source: str | None, edits: tuple[tuple[int, int, int], ...],
         keep_legal: bool = True) -> str:
    return cache.key(VERSION, type_, ("min" if keep_legal else "min-legal-apart") if minify else "check", text,
                     source or "", repr(edits))


Edits = tuple[tuple[int, int, int], ...]


def _compute_minified(item: tuple[str, str, str | None, Edits, bool]) -> Minified:
    type_, text, source, edits, keep_legal = item
    return _compute(type_, text, True, source, edits, keep_legal)


class Prewarm:
    """Verify-and-minify files in worker processes while the caller goes on (``bosco.workers``):
    ``add`` submits every distinct item not cached yet (locally or in the shared cache) as soon as
    it is known and returns its cache names; ``wait(names)`` blocks until those are computed and
    stored, so the build of one bundle starts while the pool still works on the next ones. Use it
    as a context manager (leaving it waits for, or on an exception terminates, the pool).

    ``workers`` processes at most (fewer than 2: nothing is computed ahead; the build computes
    inline). The pool starts with the second missing item (one file gains nothing from a pool);
    items are handed to it from a thread, so the caller never waits for the workers to start."""

    def __init__(self, workers: int, keep_legal: bool = True) -> None:
        self.workers, self.keep_legal = workers, keep_legal
        self.computed = 0
        self._pool: worker_pool.WorkerPool | None = None
        self._feeder: ThreadPoolExecutor | None = None  # submits to the pool: starting a worker blocks
        self._held: tuple[str, tuple[str, str, str | None, Edits, bool]] | None = None  # the first missing item
        self._futures: dict[str, Future[Future[Minified]]] = {}

    def add(self, type_: str, items: Iterable[str | tuple[str, str | None, Edits]]) -> list[str]:
        """Submit ``minify_verified(type_, text, True, source, edits)`` of every item (a text, or
        ``(text, source, edits)`` as ``bundle.minify_inputs`` gives them) not cached yet; the names to ``wait`` for."""
        wanted: dict[str, tuple[str, str | None, Edits]] = {}
        for item in items:
            text, source, edits = (item, None, ()) if isinstance(item, str) else item
            if len(text) > syntax.LARGE_FILE:
                continue  # nothing to compute ahead: ``large``
            wanted[_key(type_, text, True, source, edits, self.keep_legal)] = (text, source, edits)
        cache.fetch_shared(MINIFIED, list(wanted), decode_minified)
        for name, (text, source, edits) in wanted.items():
            if self.workers < 2 or name in self._futures or (self._held and self._held[0] == name) or cache.load(
                    name) is not None:
                continue
            task = (type_, text, source, edits, self.keep_legal)
            if self._pool is None and self._held is None:
                self._held = (name, task)
                continue
            if self._pool is None:
                self._pool = worker_pool.process_pool(self.workers)
                self._feeder = ThreadPoolExecutor(1, "bosco-prewarm")
                held, self._held = self._held, None
                self._futures[held[0]] = self._feeder.submit(self._pool.submit, _compute_minified, held[1])
            self._futures[name] = self._feeder.submit(self._pool.submit, _compute_minified, task)
        return list(wanted)

    def wait(self, names: Iterable[str]) -> None:
        """Block until every submitted item among ``names`` is computed, and store its result."""
        for name in names:
            future = self._futures.pop(name, None)
            if future is not None:
                cache.store_shared(MINIFIED, name, future.result().result(), encode_minified)
                self.computed += 1

    def __enter__(self) -> Prewarm:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        pool, self._pool = self._pool, None
        if pool is None or self._feeder is None:
            return
        with pool:  # an exception raised here (a worker that died) terminates the pool too
            try:
                if exc_type is None:
                    self.wait(list(self._futures))
            finally:
                self._feeder.shutdown(cancel_futures=True)
            if exc_type is not None:
                pool.terminate()


def minify_verified(type_: str, text: str, minify: bool = True, source: str | None = None,
                    edits: tuple[tuple[int, int, int], ...] = (), keep_legal: bool = True,
                    cached_only: bool = False) -> Minified | None:
    """Syntax-check ``text`` (``js`` or ``css``) and, with ``minify``, minify it with rjsmin/rcssmin,
    verify the result and derive its exact map. A syntax error or a rejected output leaves the
    code as it was (``file_map`` None). When ``text`` is ``source`` rewritten by ``edits``
    (``(start, end, new length)`` in UTF-16 units of ``source``), the map points into ``source``.
    Legal comments (``_legal_spans``) stay in the minified code, before the token that followed them
    (``keep_legal``, esbuild's ``inline``), else they go and ``Minified.legal`` lists them.
    Cached by content hash in memory, under ``bosco.cache.cache_dir()`` and in the shared cache
    (``cache.remote``); never raises for bad input. ``cached_only`` returns None instead of
    computing a result that is not in memory or the local folder (a quick first pass)."""
    too_large = large(text)  # before the cache: a copy of hundreds of MB is not worth storing
    if too_large is not None:
        return too_large
    key = _key(type_, text, minify, source, edits, keep_legal)
    if cached_only:
        return cache.load(key)
    hit = cache.shared(MINIFIED, key, decode_minified)
    if hit is not None:
        return hit
    result = _compute(type_, text, minify, source, edits, keep_legal)
    cache.store_shared(MINIFIED, key, result, encode_minified)
    return result
