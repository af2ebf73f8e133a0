"""Concatenation rules, minification and source maps for JS and CSS bundles.

Concatenation never changes what the code means: every JS file is followed by a newline (so a
trailing ``//`` comment ends) and a ``;`` unless it already ends with one (so the next file cannot
be called or continued), BOMs are removed, and per-file ``sourceMappingURL`` comments are blanked
(line numbers kept) so only the bundle's own comment remains, at the very end.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import csscompressor
import numpy as np

from bosco import stamps
from bosco.assets import Asset
from bosco.config import CSS_MINIFIERS, CssSection, MinifySection
from bosco.css import prepare as prepare_css
from bosco.errors import BoscoError, BundleError, InputFileError
from bosco.files import inside, problem, read_text
from bosco.jsonfile import parse_json
from bosco.sourcemap import MapWriter, decode_mappings
from bosco.syntax import map_comments, to_units, unit_offsets
from bosco.verify import Minified, exact_map, minify_verified


@dataclass(frozen=True)
class Bundle:
    """One bundle's output: ``code`` (UTF-8, ending with its ``sourceMappingURL`` comment) and
    its source map as compact JSON (UTF-8); ``warnings`` and ``errors`` are readable lines (an error,
    such as a syntax error, fails ``build``/``s3push``; ``cdn`` shows both on the index page);
    ``legal`` is the text of ``<bundle>.LEGAL.txt`` (legal comments ``linked``), else empty;
    ``details`` readable lines that need no action (a minifier fault bosco repaired), for ``-v``;
    ``pending`` True when a quick build left inputs unchecked, unminified or mapped line by line
    (build it again without ``quick`` for the complete result)."""

    code: bytes
    source_map: bytes
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    legal: str = ""
    details: tuple[str, ...] = ()
    pending: bool = False


@lru_cache(maxsize=64)
def csscompressor_minify(text: str) -> str:
    """csscompressor output for ``text`` (cached by content). Its rewrites (``0px`` -> ``0``, colour
    shortening, whitespace in ``calc()``) are not deletions, so its output is neither verified nor
    mapped token by token; the CLI warns when it is selected."""
    return csscompressor.compress(text)


def _needs_semicolon(text: str) -> bool:
    stripped = text[-4096:].rstrip()  # only the end matters; avoid copying megabytes
    last_line = stripped.rsplit("\n", 1)[-1]
    return not stripped.endswith(";") or "//" in last_line


def _source_name(service: str, asset: Asset) -> str:
    return f"{service}/{asset.repo_rel}"


_URL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _own_map(asset: Asset, comments: tuple[tuple[int, int, str], ...], maps: dict[Path, Asset],
             used: set[Path], repo: Path, errors: list[str], warnings: list[str]) -> OwnMap | None:
    """The map of ``asset``: its own (last) ``sourceMappingURL`` comment's target when that is a
    listed map, a file or an inline ``data:`` URL (RFC 2397, as bundlers write them), else a listed
    ``<file>.map``, else a listed ``<stem>.map`` (jQuery's ``jquery.min.map`` next to
    ``jquery.min.js``). A listed map found is added to ``used``. A comment target outside ``repo``
    is never read or checked for existence (an error in ``errors`` for an already-minified file,
    whose map would be read), nor is a remote or ``file:`` URL (a warning when no other map is found)."""
    candidates = []
    url = comments[-1][2] if comments else ""
    local = bool(url) and not _URL.match(url)
    if url[:5].lower() == "data:":
        inline = _inline_map(url)
        if inline is not None:
            return asset.path, f"{asset.repo_rel} (its inline source map)", inline
        if asset.already_minified:
            errors.append(f"{asset.repo_rel}: sourceMappingURL data: URL cannot be decoded (RFC 2397); not used")
    if local:
        candidates.append(asset.path.parent / unquote(url.split("?")[0].split("#")[0]))
    candidates += [asset.path.with_name(asset.path.name + ".map"), asset.path.with_suffix(".map")]
    for n, candidate in enumerate(candidates):
        comment = n == 0 and local
        try:
            real = inside(repo, candidate, f"{asset.repo_rel}: sourceMappingURL {url!r}")
        except InputFileError as exc:
            if comment and asset.already_minified:
                errors.append(str(exc))
            continue
        if real in maps:
            used.add(real)
            return candidate, maps[real].repo_rel, None
        if comment:
            shown = real.relative_to(repo.resolve()).as_posix()
            reason = problem(real)
            if reason is None:
                return real, shown, None
            if reason != "does not exist" and asset.already_minified:
                errors.append(f"{asset.repo_rel}: sourceMappingURL {shown}: {reason}, not a regular file; not read")
    if url and not local and url[:5].lower() != "data:" and asset.already_minified:
        warnings.append(f"{asset.repo_rel}: sourceMappingURL {url[:80]!r} is not a path in the repository, so bosco "
                        f"does not read it and maps the bundle to the minified file (list the map beside the file)")
    return None


def _inline_map(url: str) -> str | None:
    """The text of a ``data:`` URL (RFC 2397: percent-encoded or ``;base64``), decoded as UTF-8;
    None when it is malformed. Decoded by the standard library's ``data:`` URL handler."""
    from urllib.request import urlopen  # here: it imports http.client, needed only for inline maps

    try:
        with urlopen(url) as response:  # a data: URL only (the caller checks): nothing is fetched
            return response.read().decode("utf-8")
    except (ValueError, OSError, UnicodeDecodeError):
        return None


def _shift_segments(lines: list[list[tuple[int, ...]]], original: str, text: str,
                    edits: tuple[tuple[int, int, int], ...]) -> list[list[tuple[int, ...]]]:
    """``lines`` of segments generated for ``original``, moved to where the same characters are in
    ``text`` (``original`` rewritten by ``edits``: ``(start, end, new length)`` in UTF-16 units); a
    segment inside a rewritten stretch moves to the start of its replacement."""
    flat = [(n, seg) for n, segments in enumerate(lines) for seg in segments]
    if not flat:
        return lines
    units_o, units_t = to_units(original), to_units(text)
    starts_o = np.concatenate(([0], np.flatnonzero(units_o == 10) + 1))
    starts_t = np.concatenate(([0], np.flatnonzero(units_t == 10) + 1))
    gen_line = np.minimum(np.array([n for n, _ in flat]), len(starts_o) - 1)
    offset = starts_o[gen_line] + np.array([seg[0] for _, seg in flat])
    start, end, size = (np.array(column, dtype=np.int64) for column in zip(*edits, strict=True))
    before = np.concatenate(([0], np.cumsum(size - (end - start))))  # shift caused by the first k edits
    k = np.searchsorted(start, offset, side="right")
    inside = (k > 0) & (offset < end[np.maximum(k - 1, 0)])
    moved = np.where(inside, start[np.maximum(k - 1, 0)] + before[np.maximum(k - 1, 0)], offset + before[k])
    new_line = np.searchsorted(starts_t, moved, side="right") - 1
    new_col = moved - starts_t[new_line]
    out: list[list[tuple[int, ...]]] = [[] for _ in range(int(new_line.max()) + 1)]
    for (_, seg), line, col in zip(flat, new_line.tolist(), new_col.tolist(), strict=True):
        out[line].append((col, *seg[1:]))
    return out


def _map_problem(data: Any) -> str | None:
    """What makes parsed map JSON unusable (the field and why), or None (Source Map v3 fields)."""
    if not isinstance(data, dict):
        return "must hold a JSON object"
    if not isinstance(data.get("mappings"), str):
        return "mappings must be a string"
    if not isinstance(data.get("sourceRoot", ""), (str, type(None))):
        return f"sourceRoot must be a string, not {json.dumps(data['sourceRoot'])}"
    sources = data.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, (str, type(None))) for s in sources):
        return "sources must be a list of strings (or null)"
    contents = data.get("sourcesContent", [])
    if not isinstance(contents, (list, type(None))) or not all(isinstance(c, (str, type(None)))
                                                              for c in contents or []):
        return "sourcesContent must be a list of strings (or null)"
    return None


def _decoded(data: dict[str, Any]) -> tuple[list[list[tuple[int, ...]]] | None, str | None]:
    """The decoded ``mappings`` of a map that passed ``_map_problem``, or the field error."""
    try:
        lines = decode_mappings(data["mappings"])
    except (KeyError, IndexError, ValueError):
        return None, "mappings is not valid Base64 VLQ"
    count = len(data["sources"])
    for n, segments in enumerate(lines):
        for seg in segments:
            if len(seg) >= 4 and not 0 <= seg[1] < count:
                return None, f"mappings line {n + 1} refers to source {seg[1]}, but sources has {count} entries"
            if min(seg[:4]) < 0:
                return None, f"mappings line {n + 1} has a negative position"
    return lines, None


def _compose(writer: MapWriter, map_path: Path, shown: str, inline: str | None, service: str, repo: Path,
             line0: int, errors: list[str], original: str = "", text: str = "",
             edits: tuple[tuple[int, int, int], ...] = ()) -> bool:
    """Copy the segments of an input's own map (``shown``: its repo path) into ``writer``, shifted
    down by ``line0`` lines and, when bosco rewrote the input (``original`` became ``text`` by
    ``edits``, see ``_shift_segments``), to where the rewritten text holds each mapped character.
    ``inline`` is the map's text when the input holds it (a ``data:`` URL); ``map_path`` then is
    the input itself (relative ``sources`` resolve from its folder).

    A source without ``sourcesContent`` is read only when it resolves inside ``repo`` (else an
    error, and its content stays null). A malformed map adds an error naming the map and the
    field to ``errors``, writes nothing and returns False."""
    try:
        data = parse_json(read_text(map_path, shown) if inline is None else inline, shown, BundleError)
    except BoscoError as exc:
        errors.append(f"{exc} (not a usable source map)")
        return False
    reason = _map_problem(data)
    lines, reason = (None, reason) if reason else _decoded(data)
    if lines is None:
        errors.append(f"{shown}: not a usable source map: {reason}")
        return False
    repo_real = repo.resolve()
    root = data.get("sourceRoot") or ""
    contents = data.get("sourcesContent") or []
    index: list[int | None] = []
    for i, src in enumerate(data["sources"]):
        if src is None:  # an unnamed source (Source Map v3 allows null): its segments are dropped
            index.append(None)
            continue
        written = posixpath.join(root, src) if root else src
        content = contents[i] if i < len(contents) else None
        name = written
        if not _URL.match(written):
            try:
                real = inside(repo, map_path.parent / written, f"{shown}: sources[{i}] {src!r}")
            except InputFileError as exc:
                if content is None:
                    errors.append(str(exc))
            else:
                repo_path = real.relative_to(repo_real).as_posix()
                name = f"{service}/{repo_path}"
                if content is None and problem(real) != "does not exist":
                    try:
                        content = read_text(real, f"{shown}: sources[{i}] {repo_path}")
                    except InputFileError as exc:
                        errors.append(str(exc))
        index.append(writer.add_source(name, content))
    if edits:
        lines = _shift_segments(lines, original, text, edits)
    for n, segments in enumerate(lines):
        for seg in segments:
            if len(seg) >= 4 and index[seg[1]] is not None:
                writer.segment(line0 + n, seg[0], index[seg[1]], seg[2], seg[3])
    return True


# Whitespace and comments, other directives (a string literal ending its statement), then the
# directive. Every alternative matches one way only: a block comment cannot run past its first
# ``*/`` (a lazy ``.*?`` could, backtracking over the whole file).
_GAP = r"""(?:\s|//[^\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)*"""
_DIRECTIVE = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')[ \t]*[;\n\r]"""
_STRICT = re.compile(rf"""\A{_GAP}(?:{_DIRECTIVE}{_GAP})*(["'])use strict\1""")


def is_strict(text: str) -> bool:
    """True when the directive prologue of ``text`` (ECMA-262 §11.2.1) holds ``'use strict'``, first
    or after other directives (``'use asm'; 'use strict';``)."""
    return _STRICT.match(text) is not None


def strict_warnings(files: list[tuple[str, str]]) -> list[str]:
    """Warnings for a JS bundle of ``(repo path, text)`` files that mixes strict and non-strict
    files: a leading ``'use strict'`` makes the whole bundle strict, a later one stops being a
    directive. Nothing is rewritten."""
    strict = [name for name, text in files if is_strict(text)]
    if not strict or len(strict) == len(files):
        return []
    sloppy = [name for name, text in files if not is_strict(text)]
    first = files[0][0]
    if first in strict:
        return [f"{first} starts with 'use strict', which makes the non-strict files "
                f"concatenated after it strict too ({', '.join(sloppy)})"]
    return [f"{name} starts with 'use strict' but follows non-strict files in the bundle, "
            f"so it runs non-strict" for name in strict]


def _without_map_comments(text: str, comments: tuple[tuple[int, int, str], ...]) -> str:
    """``text`` with its ``sourceMappingURL`` comments (``syntax.map_comments``) blanked, their line
    breaks kept, so only the bundle's own comment remains."""
    out, last = [], 0
    for start, end, _ in comments:
        out += [text[last:start], "\n" * text.count("\n", start, end)]
        last = end
    out.append(text[last:])
    return "".join(out)


def _without_hashbang(text: str) -> str:
    """``text`` with a leading ``#!`` line (ECMA-262 §12.5 Hashbang Comments, valid only at the very
    start of a script) made a ``//`` comment of the same length."""
    return "//" + text[2:] if text.startswith("#!") else text


def minify_inputs(service: str, repo: Path, type_: str, tag: str, assets: tuple[Asset, ...], build: str = "local",
                  css_minifier: str = CssSection.minifier, known_keys: frozenset[str] = frozenset(),
                  keep: bool = False) -> list[tuple[str, str | None, tuple[tuple[int, int, int], ...]]]:
    """The ``(text, source, edits)`` that ``build_bundle`` with ``minify`` will pass to
    ``minify_verified`` for these assets (for ``verify.Prewarm``); empty when an input cannot be
    read (``build_bundle`` reports it). ``keep`` hands what was read and prepared (and what reading
    it saw, ``stamps.recording``) to the next ``build_bundle`` of the same bundle, so each input is
    read and scanned once; that call must follow (each kept bundle is held in memory until then). A
    file changed in between is read again by ``build_bundle``."""
    if type_ == "css" and css_minifier != "rcssmin":
        return []
    try:
        with stamps.recording() as record:
            prepared = _units(service, repo, type_, f"{tag}.{type_}", assets, build, known_keys)
    except InputFileError:
        return []
    if keep:
        _kept[(service, repo, type_, tag, assets, build, known_keys)] = (prepared, record)
    return [(text, original if edits else None, edits) for _, original, text, edits, own_map, may_minify, _
            in prepared[0] if may_minify and own_map is None]


OwnMap = tuple[Path, str, "str | None"]  # an input's own map: (map file, its repo path, inline map text)
_Unit = tuple[str, str, str, tuple[tuple[int, int, int], ...], "OwnMap | None", bool, str]
_Units = tuple[list[_Unit], list[str], list[str], list[str]]
_kept: dict[tuple[object, ...], tuple[_Units, stamps.Record]] = {}  # see ``minify_inputs(keep=True)``


def _units(service: str, repo: Path, type_: str, name: str, assets: tuple[Asset, ...], build: str,
           known_keys: frozenset[str]) -> _Units:
    """``(units, head parts, warnings, errors)`` of a bundle: each unit is ``(source name, original
    text, text to bundle, url edits, own map and its repo path, may minify, repo path)``."""
    js = type_ == "js"
    maps = {a.path.resolve(): a for a in assets if a.source_map}
    used: set[Path] = set()
    errors: list[str] = []
    warnings: list[str] = []
    inputs = []
    for asset in assets:
        if asset.source_map:
            continue
        raw = read_text(asset.path, asset.repo_rel)
        comments = map_comments(type_, raw)
        # only an already-minified file's own map is used, and a listed map must be named by some file
        own_map = _own_map(asset, comments, maps, used, repo, errors, warnings) if asset.already_minified or maps \
            else None
        inputs.append((asset, _without_map_comments(raw, comments), own_map if asset.already_minified else None))
    warnings += [
        f"{a.repo_rel}: listed as a source map, but no file of the bundle names it (by its sourceMappingURL "
        f"comment, <file>.map or <stem>.map), so it is not used" for real, a in maps.items() if real not in used]
    parts: list[str] = []
    units: list[_Unit] = []
    if js:
        warnings += strict_warnings([(a.repo_rel, text) for a, text, _ in inputs])
        for a, text, _ in inputs:
            if text.startswith("#!"):
                warnings.append(f"{a.repo_rel}:1:1: a hashbang line ({text.split(chr(10), 1)[0][:60]}) is a syntax "
                                f"error after other code in a bundle; bosco turned it into a comment")
        units = [(_source_name(service, a), text, _without_hashbang(text), (), m, not a.already_minified, a.repo_rel)
                 for a, text, m in inputs]
    else:
        prepared = prepare_css(service, repo, f"{service}/{build}/css/{name}", known_keys, [
            (a.path, text, _source_name(service, a), f"{service}/{build}/{a.rel}") for a, text, _ in inputs])
        warnings += prepared.warnings
        errors += prepared.errors
        parts += [statement + "\n" for statement in prepared.head]
        flags = {_source_name(service, a): (m, not a.already_minified) for a, _, m in inputs}
        for part in prepared.parts:
            own_map, may_minify = flags.get(part.name, (None, True))
            units.append((part.name, part.original, part.text, _unit_edits(part.original, part.edits), own_map,
                          may_minify, part.name.split("/", 1)[1]))
    # the same file in many services (a vendored library) is one text in memory while the bundles
    # wait for their workers: an interned str goes when its last user does (CPython interns are
    # mortal), and the hash the lookup computes is the one ``cache.key`` looks the text up by anyway
    units = [(source, sys.intern(original), sys.intern(text), *rest) for source, original, text, *rest in units]
    return units, parts, warnings, errors


def build_bundle(
    service: str,
    repo: Path,
    type_: str,
    tag: str,
    assets: tuple[Asset, ...],
    minify: bool,
    css_minifier: str = CssSection.minifier,
    build: str = "local",
    known_keys: frozenset[str] = frozenset(),
    legal_comments: str = MinifySection.legalcomments,
    check: bool = True,
    quick: bool = False,
) -> Bundle:
    """Concatenate (and with ``minify`` minify) the ``js`` or ``css`` ``assets`` of one bundle.

    ``assets`` may include source-map files (``Asset.source_map``): they are composed into the
    bundle's map for the already-minified file they belong to. Files of ``alreadyMinified`` sections
    are never minified again. Every input is syntax-checked; a file with a syntax error is shipped
    unminified and reported in ``Bundle.errors``. rjsmin/rcssmin output is verified and mapped
    exactly (``bosco.verify``); CSS ``url()``/``@charset``/``@import`` are handled by ``bosco.css``
    against the bundle key ``<service>/<build>/css/<tag>.css`` and ``known_keys`` (the keys a
    ``url()`` may reach). The map's ``sources`` are ``<service>/<repo path>``. Legal comments of the
    files bosco minifies (``/*!``, ``//!``, ``@license``, ``@preserve``) follow ``legal_comments``
    as esbuild's ``--legal-comments`` does: ``inline`` (kept in place), ``eof`` (at the end of the
    bundle), ``linked`` (in ``Bundle.legal``, the bundle links ``<tag>.<type>.LEGAL.txt``), ``none``.
    Without ``minify`` the map is exact too (``verify.exact_map``: every token of the concatenation
    points at itself in its file), and ``check`` False skips the syntax check of the inputs
    (unminified ``cdn`` checks each file it serves on its own instead). ``quick`` (the first pass of
    a ``cdn -w`` rebuild) computes nothing that is not cached: an input whose verified result or
    exact map is not cached yet is shipped as it is, mapped line by line (``Bundle.pending``).
    A path an input names (map ``sources``, ``sourceMappingURL``, ``@import``) is read only inside
    ``repo`` (``bosco.files``), else it is an error line. Raises ``InputFileError`` when an input is
    not a readable UTF-8 regular file.
    """
    if css_minifier not in CSS_MINIFIERS:
        raise BundleError(f"css.minifier {css_minifier!r} is unknown", f"use one of: {', '.join(CSS_MINIFIERS)}")
    js = type_ == "js"
    name = f"{tag}.{type_}"
    writer = MapWriter(name)
    kept = _kept.pop((service, repo, type_, tag, assets, build, known_keys), None)
    if kept is not None and not stamps.unchanged(kept[1]):
        kept = None  # a file changed since ``minify_inputs`` read it (a save during cdn's complete pass): read again
    if kept is not None:
        stamps.include(kept[1])
    units, parts, warnings, errors = kept[0] if kept is not None else _units(
        service, repo, type_, name, assets, build, known_keys)
    line = len(parts)
    legal: list[str] = []
    details: list[str] = []
    pending = False
    for source, original, text, edits, own_map, may_minify, repo_path in units:
        found = minify_verified(type_, text, minify and may_minify and own_map is None and (
            js or css_minifier == "rcssmin"), original if edits else None, edits, legal_comments == "inline",
            quick) if minify or check else Minified(text, None)
        result = found or Minified(text, None)  # quick and not cached: as it is, for now
        if not minify and own_map is None and result.file_map is None:
            result = replace(result, file_map=exact_map(type_, text, original if edits else None, edits, quick))
        pending = pending or found is None or (quick and not minify and result.file_map is None and own_map is None)
        legal += [comment for comment in result.legal if comment not in legal]
        if result.problem is not None:
            errors.append(result.problem.describe(repo_path))
        if result.fault is not None:
            warnings.append(f"{repo_path}: {result.fault}")
        if result.repaired is not None:
            details.append(f"{repo_path}: {result.repaired}; repaired from the source")
        out = result.code
        if own_map is None or not _compose(writer, *own_map, service, repo, line, errors, original, text, edits):
            if minify and may_minify and not js and css_minifier != "rcssmin":
                out = csscompressor_minify(text)
                writer.segment(line, 0, writer.add_source(source, original), 0, 0)
            elif result.file_map is not None:
                writer.append(line, writer.add_source(source, original), result.file_map)
            else:
                writer.lines(line, writer.add_source(source, original), out.count("\n") + (not out.endswith("\n")))
        if not out.endswith("\n"):
            out += "\n"
        if js and _needs_semicolon(out):
            out += ";\n"
        parts.append(out)
        line += out.count("\n")
    body = "".join(parts)
    if legal and legal_comments == "eof":
        body += "\n".join(legal) + "\n"
    elif legal and legal_comments == "linked":
        body += f"/*! For license information please see {name}.LEGAL.txt */\n"
    trailer = f"//# sourceMappingURL={name}.map\n" if js else f"/*# sourceMappingURL={name}.map */\n"
    return Bundle((body + trailer).encode("utf-8"), writer.to_json(), tuple(warnings), tuple(errors),
                  "\n".join(legal) + "\n" if legal and legal_comments == "linked" else "", tuple(details), pending)


@lru_cache(maxsize=256)
def _unit_edits(text: str, edits: tuple[tuple[int, int, int], ...]) -> tuple[tuple[int, int, int], ...]:
    """``edits`` with code point positions turned into UTF-16 units (the same for ASCII text).
    Remembered: the same style sheet is prepared again by every bundle and rebuild that lists it."""
    if not edits or text.isascii():
        return edits
    units = unit_offsets(text)
    return tuple((int(units[a]), int(units[b]), n) for a, b, n in edits)
