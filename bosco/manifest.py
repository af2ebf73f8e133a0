"""``bosco-service.json`` -> a typed ``Manifest`` (reference: docs/manifest.md), validated with file-named
errors."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wcmatch import glob as wcglob
from wcmatch._wcparse import PatternLimitException  # what wcmatch raises past its brace-expansion limit

from bosco.assetset import segment_problem
from bosco.config import MAX_TIMEOUT_MS, TIMEOUT_MS_RANGE, valid_timeout_ms
from bosco.errors import ManifestError
from bosco.jsonfile import json_type, load_json_text, locate
from bosco.typos import close_match, misspelt

MANIFEST_NAME = "bosco-service.json"
TYPES = ("js", "css", "img", "html", "swf", "fonts", "pdf", "json")
SECTION_OPTIONS = ("basePath", "alreadyMinified", "sourceMapExtension")
# The keys bosco reads; any other key belongs to another tool (service.docker, dependsOn, ...).
TOP_KEYS = ("service", "tags", "assets", "files", "libraries", "siteAssets", "build", "budgets")
GLOB_SPEC_KEYS = ("basePath", "glob")
BUILD_KEYS = ("command", "timeout", "watch")
WATCH_KEYS = ("command", "ready", "timeout")
GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.NODIR
MAX_GLOB_LENGTH = 1024  # characters of one glob
MAX_GLOB_PATTERNS = 1000  # patterns one glob may expand to with braces (wcmatch's default limit)
HINT = f"fix {MANIFEST_NAME} (reference: `bosco docs manifest`, docs/manifest.md)"


@dataclass(frozen=True)
class BundleSpec:
    """The globs one section declares for one bundle: ``type`` (``js``…), ``tag`` and ordered globs."""

    type: str
    tag: str
    globs: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    """One ``assets`` block or one ``files.<tag>`` entry.

    ``base_path`` is normalised to a repo-relative POSIX path (``""`` for the repo root): Bosco's
    ``/public``, ``public``, ``public/`` and ``./public`` all become ``"public"``.
    """

    base_path: str
    already_minified: bool
    source_map_extension: str
    bundles: tuple[BundleSpec, ...]


@dataclass(frozen=True)
class GlobSpec:
    """A ``libraries[]`` or ``siteAssets[]`` entry: one glob under one base path."""

    base_path: str
    glob: str


@dataclass(frozen=True)
class BuildSpec:
    """``build``: ``command`` is a shell string or an argv tuple that may run ``command_timeout_ms``
    (``build.timeout``); ``watch_command``, ``ready`` and ``timeout_ms`` serve ``bosco cdn -w``."""

    command: str | tuple[str, ...] | None
    watch_command: str | tuple[str, ...] | None
    ready: str
    timeout_ms: int
    command_timeout_ms: int | None = None  # build.timeout; None: the configured default


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest. ``warnings`` lists ignored content (unknown types) as readable lines."""

    path: Path
    name: str | None
    service_tags: tuple[str, ...]
    sections: tuple[Section, ...]
    libraries: tuple[GlobSpec, ...]
    site_assets: tuple[GlobSpec, ...]
    build: BuildSpec | None
    warnings: tuple[str, ...]


def normalize_base_path(value: Any, where: str, path: Path) -> str:
    """Normalise a ``basePath`` to a repo-relative POSIX path; ``..`` escaping the repo is an error."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"{path}: {where} must be a string, not {json_type(value)}", HINT, where=where)
    rel = posixpath.normpath(value.replace("\\", "/").strip().lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise ManifestError(f"{path}: {where} {value!r} points outside the repository", HINT, where=where)
    return "" if rel == "." else rel


def _command(value: Any, where: str, path: Path) -> str | tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ManifestError(f"{path}: {where} must be a shell string or a list of strings", HINT, where=where)


def check_glob(glob: str, where: str, path: Path) -> None:
    """Refuse a glob before it is used: longer than ``MAX_GLOB_LENGTH`` characters, not valid
    Unicode (a lone surrogate such as ``"\\udc80"``), holding a NUL, or whose braces expand to more
    than ``MAX_GLOB_PATTERNS`` patterns. Raises ``ManifestError`` naming ``path`` and ``where``."""
    shown = json.dumps(glob[:60] + ("..." if len(glob) > 60 else ""))
    if not glob.strip():
        raise ManifestError(f"{path}: {where}: a glob cannot be empty", HINT, where=where)
    if len(glob) > MAX_GLOB_LENGTH:
        raise ManifestError(f"{path}: {where}: glob {shown} is {len(glob):,} characters long (at most "
                            f"{MAX_GLOB_LENGTH:,})", HINT, where=where)
    try:
        glob.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestError(f"{path}: {where}: glob {shown} is not valid Unicode (a lone surrogate at "
                            f"character {exc.start + 1})", HINT, where=where) from exc
    if "\0" in glob:
        raise ManifestError(f"{path}: {where}: glob {shown} holds a NUL character", HINT, where=where)
    try:
        if "{" in glob:  # only braces expand one glob into several patterns
            wcglob.translate(glob, flags=GLOB_FLAGS, limit=MAX_GLOB_PATTERNS)
    except PatternLimitException as exc:
        raise ManifestError(f"{path}: {where}: glob {shown} expands to more than {MAX_GLOB_PATTERNS:,} "
                            f"patterns (braces)", HINT, where=where) from exc


def _globs(value: Any, where: str, path: Path, warnings: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ManifestError(f"{path}: {where} must be a glob string or a list of glob strings, not {json_type(value)}",
                            HINT, where=where)
    for i, glob in enumerate(value):
        if not isinstance(glob, str):
            raise ManifestError(f"{path}: {where}[{i}] must be a glob string, not {json_type(glob)}",
                                HINT, where=f"{where}[{i}]")
    if not value:
        warnings.append(f"{path}: {where} lists no files; the bundle is empty")
    for i, glob in enumerate(value):
        check_glob(glob, f"{where}[{i}]", path)
    return tuple(value)


def _check_tag(tag: str, where: str, path: Path) -> None:
    problem = segment_problem(tag, "bundle tag")
    if problem:
        raise ManifestError(f"{path}: {where}: {problem}", HINT, where=where)


def _section(block: Any, where: str, tag: str | None, path: Path, warnings: list[str]) -> Section:
    if not isinstance(block, dict):
        raise ManifestError(f"{path}: {where} must be an object, not {json_type(block)}", HINT, where=where)
    bundles = []
    for type_, value in block.items():
        if type_ in SECTION_OPTIONS:
            continue
        if type_ not in TYPES:
            meant = close_match(type_, TYPES + SECTION_OPTIONS)
            warnings.append(f"{path}: unknown key {where}.{type_} ignored; did you mean {where}.{meant}?" if meant
                            else f"{path}: unknown asset type {where}.{type_} ignored (known: {', '.join(TYPES)})")
            continue
        if tag is not None:
            _check_tag(tag, where, path)
            bundles.append(BundleSpec(type_, tag, _globs(value, f"{where}.{type_}", path, warnings)))
            continue
        if not isinstance(value, dict):
            raise ManifestError(f"{path}: {where}.{type_} must map bundle tags to lists of globs",
                                HINT, where=f"{where}.{type_}")
        for t, globs in value.items():
            _check_tag(t, f"{where}.{type_}", path)
            bundles.append(BundleSpec(type_, t, _globs(globs, f"{where}.{type_}.{t}", path, warnings)))
    ext = block.get("sourceMapExtension", ".map")
    if not isinstance(ext, str) or not ext:
        raise ManifestError(f"{path}: {where}.sourceMapExtension must be a non-empty string",
                            HINT, where=f"{where}.sourceMapExtension")
    minified = block.get("alreadyMinified", False)
    if not isinstance(minified, bool):
        raise ManifestError(f"{path}: {where}.alreadyMinified must be true or false",
                            HINT, where=f"{where}.alreadyMinified")
    base = normalize_base_path(block.get("basePath"), f"{where}.basePath", path)
    return Section(base, minified, ext, tuple(bundles))


def _glob_specs(value: Any, where: str, path: Path) -> tuple[GlobSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ManifestError(f"{path}: {where} must be a list of {{basePath, glob}} objects, not {json_type(value)}",
                            HINT, where=where)
    specs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("glob"), str):
            raise ManifestError(f"{path}: {where}[{i}] must be an object with a string 'glob'",
                                HINT, where=f"{where}[{i}]")
        base = normalize_base_path(item.get("basePath"), f"{where}[{i}].basePath", path)
        check_glob(item["glob"], f"{where}[{i}].glob", path)
        specs.append(GlobSpec(base, item["glob"]))
    return tuple(specs)


def _object(value: Any, where: str, path: Path, shape: str = "an object") -> dict[str, Any]:
    """``value`` when it is a JSON object, ``{}`` when absent or null; anything else (``0``, ``""``,
    ``[]``) is a ``ManifestError`` naming ``path``, the key and what was found."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"{path}: {where} must be {shape}, not {json_type(value)}", HINT, where=where)
    return value


def _build(value: Any, path: Path) -> BuildSpec | None:
    if value is None:
        return None
    value = _object(value, "build", path)
    watch = _object(value.get("watch"), "build.watch", path)
    ready = watch.get("ready", "finished")
    timeout = watch.get("timeout", 10000)
    if not isinstance(ready, str) or not ready:
        raise ManifestError(f"{path}: build.watch.ready must be a non-empty string", HINT, where="build.watch.ready")
    if not valid_timeout_ms(timeout):
        raise ManifestError(f"{path}: build.watch.timeout must be a positive number of milliseconds "
                            f"up to {MAX_TIMEOUT_MS} (one day)", HINT, where="build.watch.timeout")
    command_timeout = value.get("timeout")
    if command_timeout is not None and not valid_timeout_ms(command_timeout):
        raise ManifestError(f"{path}: build.timeout must be {TIMEOUT_MS_RANGE}, not {json.dumps(command_timeout)}",
                            HINT, where="build.timeout")
    return BuildSpec(
        _command(value.get("command"), "build.command", path),
        _command(watch.get("command"), "build.watch.command", path),
        ready,
        timeout,
        command_timeout,
    )


def _typos(node: Any, known: tuple[str, ...], where: str, path: Path) -> list[str]:
    """Warnings for the keys of ``node`` that are not in ``known`` but close to one of them (a typo
    that would otherwise be ignored silently); other unknown keys belong to other tools."""
    if not isinstance(node, dict):
        return []
    return [f"{path}: unknown key {where}{key} ignored; did you mean {where}{meant}?"
            for key, meant in misspelt(node, known)]


def _key_typos(data: dict[str, Any], path: Path) -> list[str]:
    """Misspelt keys at the top level, in ``libraries[]``/``siteAssets[]`` entries and in ``build``."""
    warnings = _typos(data, TOP_KEYS, "", path)
    for name in ("libraries", "siteAssets"):
        if isinstance(data.get(name), list):
            for i, item in enumerate(data[name]):
                warnings += _typos(item, GLOB_SPEC_KEYS, f"{name}[{i}].", path)
    build = data.get("build")
    warnings += _typos(build, BUILD_KEYS, "build.", path)
    if isinstance(build, dict):
        warnings += _typos(build.get("watch"), WATCH_KEYS, "build.watch.", path)
    return warnings


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Validate already-parsed manifest JSON. Raises ``ManifestError`` naming ``path`` and the key.

    Keys bosco does not read are ignored (manifests carry settings of other tools); one close to a
    key bosco reads (``asset``, ``librarys``, ``basepath``) is a warning naming the key it means."""
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: must hold a JSON object", HINT)
    warnings = _key_typos(data, path)
    service = _object(data.get("service"), "service", path)
    name = service.get("name")
    if name is not None and not isinstance(name, str):
        raise ManifestError(f"{path}: service.name must be a string, not {json_type(name)}", HINT,
                            where="service.name")
    if name is not None and segment_problem(name):
        raise ManifestError(f"{path}: {segment_problem(name, 'service.name')}", HINT, where="service.name")
    tags = [] if data.get("tags") is None else data["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ManifestError(f"{path}: tags must be a list of strings", HINT, where="tags")
    sections = []
    if data.get("assets") is not None:
        sections.append(_section(data["assets"], "assets", None, path, warnings))
    files = _object(data.get("files"), "files", path, "an object mapping bundle tags to objects")
    for tag, block in files.items():
        sections.append(_section(block, f"files.{tag}", tag, path, warnings))
    return Manifest(
        path=path,
        name=name,
        service_tags=tuple(tags),
        sections=tuple(sections),
        libraries=_glob_specs(data.get("libraries"), "libraries", path),
        site_assets=_glob_specs(data.get("siteAssets"), "siteAssets", path),
        build=_build(data.get("build"), path),
        warnings=tuple(warnings),
    )


def load_manifest(path: Path) -> Manifest:
    """Load and validate ``path``. Raises ``ManifestError`` whose message starts ``file:line:col:``
    for invalid JSON and for an invalid value (at the line of its key)."""
    data, text = load_json_text(path, ManifestError, HINT)
    try:
        return parse_manifest(data, path)
    except ManifestError as exc:
        # a lone glob string stands for a one-glob list: "x.js[0]" is then the string at "x.js"
        place = exc.where and (locate(text, exc.where) or locate(text, re.sub(r"\[0\]$", "", exc.where)))
        prefix = f"{path}: "
        if not place or not str(exc).startswith(prefix):
            raise
        raise ManifestError(f"{path}:{place}: {str(exc)[len(prefix):]}", exc.hint, exc.where) from None
