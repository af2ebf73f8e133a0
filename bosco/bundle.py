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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import csscompressor
import rcssmin
import rjsmin

from bosco.assets import Asset
from bosco.errors import BundleError
from bosco.jsonfile import read_text
from bosco.sourcemap import MapWriter, decode_mappings

CSS_MINIFIERS = ("rcssmin", "csscompressor")
_JS_MAP_COMMENT = re.compile(r"^[ \t]*//[#@][ \t]*sourceMappingURL=([^\s'\"]*)[ \t]*$", re.M)
_CSS_MAP_COMMENT = re.compile(r"/\*[#@][ \t]*sourceMappingURL=([^\s*]*)[ \t]*\*/")
_CHARSET = re.compile(r'^@charset\s+["\'][^"\']*["\'];[ \t]*', re.I)


@dataclass(frozen=True)
class Bundle:
    """One bundle's output: ``code`` (UTF-8, ending with its ``sourceMappingURL`` comment) and
    its source map as a JSON-ready dict; ``warnings`` are readable lines for the index page."""

    code: bytes
    source_map: dict[str, Any]
    warnings: tuple[str, ...] = ()


@lru_cache(maxsize=512)
def minify_js(text: str) -> str:
    """rjsmin output for ``text`` (cached by content: unchanged files are minified once)."""
    return rjsmin.jsmin(text)


@lru_cache(maxsize=512)
def minify_css(text: str, minifier: str = "rcssmin") -> str:
    """CSS minified with ``minifier`` (``rcssmin`` or ``csscompressor``), cached by content."""
    if minifier == "rcssmin":
        return rcssmin.cssmin(text)
    if minifier == "csscompressor":
        return csscompressor.compress(text)
    raise BundleError(f"css.minifier {minifier!r} is unknown", f"use one of: {', '.join(CSS_MINIFIERS)}")


def _blank(match: re.Match[str]) -> str:
    return "\n" * match.group(0).count("\n")


def _needs_semicolon(text: str) -> bool:
    stripped = text[-4096:].rstrip()  # only the end matters; avoid copying megabytes
    last_line = stripped.rsplit("\n", 1)[-1]
    return not stripped.endswith(";") or "//" in last_line


def _source_name(service: str, asset: Asset) -> str:
    return f"{service}/{asset.repo_rel}"


def _own_map(asset: Asset, text: str, maps: dict[str, Asset], pattern: re.Pattern[str]) -> Path | None:
    """The map file of an already-minified input: a listed ``<file><ext>``, else its comment's target."""
    listed = maps.get(asset.repo_rel)
    if listed is not None:
        return listed.path
    match = pattern.search(text)
    if match and match.group(1) and not re.match(r"^[a-z]+:", match.group(1)):
        candidate = asset.path.parent / match.group(1)
        return candidate if candidate.is_file() else None
    return None


def _compose(writer: MapWriter, map_path: Path, service: str, repo: Path, line0: int) -> None:
    """Copy the segments of an input's own map into ``writer``, shifted down by ``line0`` lines."""
    try:
        data = json.loads(read_text(map_path))
        lines = decode_mappings(data["mappings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{map_path}: not a usable source map ({exc})", "fix or remove the map") from exc
    root = data.get("sourceRoot") or ""
    contents = data.get("sourcesContent") or []
    index = []
    for i, src in enumerate(data.get("sources", [])):
        target = (map_path.parent / root / src).resolve()
        try:
            name = f"{service}/{target.relative_to(repo.resolve()).as_posix()}"
        except ValueError:
            name = posixpath.join(root, src) if root else src
        content = contents[i] if i < len(contents) else None
        if content is None and target.is_file():
            content = read_text(target)
        index.append(writer.add_source(name, content))
    for n, segments in enumerate(lines):
        for seg in segments:
            if len(seg) >= 4:
                writer.segment(line0 + n, seg[0], index[seg[1]], seg[2], seg[3])


def build_bundle(
    service: str,
    repo: Path,
    type_: str,
    tag: str,
    assets: tuple[Asset, ...],
    minify: bool,
    css_minifier: str = "rcssmin",
) -> Bundle:
    """Concatenate (and with ``minify`` minify) the ``js`` or ``css`` ``assets`` of one bundle.

    ``assets`` may include source-map files (``Asset.source_map``): they are composed into the
    bundle's map for the already-minified file they belong to. Files of ``alreadyMinified`` sections
    are never minified again. The map's ``sources`` are ``<service>/<repo path>``. Raises
    ``AssetError``-free ``BundleError`` when an input cannot be read or minified.
    """
    js = type_ == "js"
    name = f"{tag}.{type_}"
    writer = MapWriter(name)
    maps = {a.repo_rel[: -len(".map")]: a for a in assets if a.source_map and a.repo_rel.endswith(".map")}
    comment = _JS_MAP_COMMENT if js else _CSS_MAP_COMMENT
    inputs = []
    for asset in assets:
        if asset.source_map:
            continue
        try:
            text = read_text(asset.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"{asset.path}: cannot read as UTF-8 ({exc})") from exc
        own_map = _own_map(asset, text, maps, comment) if asset.already_minified else None
        if "sourceMappingURL" in text:  # the regex is slow over megabytes; most files have no comment
            text = comment.sub(_blank, text)
        inputs.append((asset, text, own_map))
    parts: list[str] = []
    if not js and any(_CHARSET.match(text) for _, text, _ in inputs):
        parts.append('@charset "UTF-8";\n')
        inputs = [(a, _CHARSET.sub("", text, count=1), m) for a, text, m in inputs]
    line = len(parts)
    for asset, text, own_map in inputs:
        if own_map is not None:
            out = text
            _compose(writer, own_map, service, repo, line)
        elif minify and not asset.already_minified:
            out = minify_js(text) if js else minify_css(text, css_minifier)
            writer.segment(line, 0, writer.add_source(_source_name(service, asset), text), 0, 0)
        else:
            out = text
            src = writer.add_source(_source_name(service, asset), text)
            writer.lines(line, src, text.count("\n") + (not text.endswith("\n")))
        if not out.endswith("\n"):
            out += "\n"
        if js and _needs_semicolon(out):
            out += ";\n"
        parts.append(out)
        line += out.count("\n")
    body = "".join(parts)
    trailer = f"//# sourceMappingURL={name}.map\n" if js else f"/*# sourceMappingURL={name}.map */\n"
    return Bundle((body + trailer).encode("utf-8"), writer.to_dict())
