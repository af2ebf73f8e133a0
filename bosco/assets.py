"""Glob expansion, ordering and ``Asset`` records (rules: docs/manifest.md, "Globs"; keys: docs/layout.md)."""

from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path

import bracex
from wcmatch import fnmatch

from bosco import stamps
from bosco.files import problem
from bosco.manifest import MAX_GLOB_PATTERNS, Manifest

# The primary order of printable ASCII in the Unicode Collation Algorithm with CLDR root data (what
# ICU's ``'a'.localeCompare(b, 'en')`` uses): space and punctuation, symbols, digits, then letters
# with case folded. Read from node 20 / ICU 78; the test pins it.
_PRIMARY = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_RANK = {c: i for i, c in enumerate(_PRIMARY)} | {c.upper(): i for i, c in enumerate(_PRIMARY) if c.isalpha()}


# Source languages that need a compiler before a browser can use them: suffix -> (language, example
# command compiling ``{src}`` to ``{out}``).
_ESBUILD = "esbuild {src} --outfile={out}"
FOREIGN_SOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "css": {".scss": ("Sass", "sass {src} {out}"), ".sass": ("Sass", "sass {src} {out}"),
            ".less": ("Less", "lessc {src} {out}"), ".styl": ("Stylus", "stylus {src} -o {out}")},
    "js": {".ts": ("TypeScript", _ESBUILD), ".mts": ("TypeScript", _ESBUILD), ".cts": ("TypeScript", _ESBUILD),
           ".tsx": ("TSX", _ESBUILD), ".jsx": ("JSX", _ESBUILD), ".coffee": ("CoffeeScript", "coffee -c {src}")},
}


def foreign_source(asset: Asset) -> str | None:
    """Why ``asset`` (listed under ``js``/``css``) is not JS/CSS a browser runs, with the command that
    would compile it (to run in ``build.command``), or None when its suffix is not a known source
    language (``.scss``, ``.sass``, ``.less``, ``.styl``; ``.ts``, ``.mts``, ``.cts``, ``.tsx``, ``.jsx``,
    ``.coffee``)."""
    suffix = posixpath.splitext(asset.repo_rel)[1].lower()
    found = FOREIGN_SOURCES.get(asset.type, {}).get(suffix)
    if found is None or asset.source_map:
        return None
    language, command = found
    out = asset.repo_rel[: -len(suffix)] + "." + asset.type
    return (f"{asset.repo_rel} is {language} source, not {asset.type.upper()}: browsers cannot use it; compile it "
            f"in build.command (e.g. `{command.format(src=asset.repo_rel, out=out)}`) and list {out} instead")


def glob_order(path: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Sort key giving node-glob 7's order (``a.localeCompare(b, 'en')``, the order of the original
    Bosco) for ASCII paths without ICU: compare the primary ranks of every character (``_PRIMARY``;
    case ignored), then case, lower before upper (``a.js``, ``A.js``, ``ab.js``, ``aB.js``, ``Ab.js``).
    Characters outside printable ASCII rank after ``z`` in code point order (ICU would interleave
    accented letters with their base letter)."""
    return (tuple(_RANK.get(c, len(_PRIMARY) + ord(c)) for c in path), tuple(c.isupper() for c in path))


@dataclass(frozen=True)
class Asset:
    """One declared source file.

    ``path`` is absolute; ``rel`` is relative to its section's basePath (the key suffix, docs/layout.md);
    ``repo_rel`` is relative to the repo (used in source maps). ``source_map`` marks files ending with
    the section's ``sourceMapExtension`` in a js/css bundle: maps of the section's code, not code.
    """

    path: Path
    rel: str
    repo_rel: str
    type: str
    tag: str
    already_minified: bool = False
    source_map: bool = False


@dataclass(frozen=True)
class BundleInput:
    """Everything declared for one (type, tag) of a service, in order, with glob errors."""

    type: str
    tag: str
    assets: tuple[Asset, ...]
    errors: tuple[str, ...] = field(default=())

    @property
    def code(self) -> tuple[Asset, ...]:
        """The assets that are code (source maps excluded)."""
        return tuple(a for a in self.assets if not a.source_map)


@dataclass(frozen=True)
class Collected:
    """The assets of one service: bundles in declaration order, then library and site files as
    ``(asset key, Asset)`` pairs (``vendor/library/<path>``, ``asset/<path>``)."""

    bundles: tuple[BundleInput, ...]
    libraries: tuple[tuple[str, Asset], ...]
    site_assets: tuple[tuple[str, Asset], ...]
    errors: tuple[str, ...]


def _note(path: Path, now: int) -> None:
    """Inside ``stamps.recording()``: record the ``stamps.folder_stamp`` of the folder ``path`` (None
    when it is missing), so a recorded expansion is known current without globbing again: adding,
    removing or renaming a file changes its folder's stamp. A folder changed within
    ``stamps.RACY_NS`` is recorded as never current (a second change in the same clock tick would
    not move its mtime)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        stamps.saw("folder", path, None)
        return
    stamps.saw("folder", path, "racy" if now - max(st.st_mtime_ns, st.st_ctime_ns) < stamps.RACY_NS
               else stamps.folder_stamp(st))


class _Walk:
    """The files one glob matches under ``folder``, the way node-glob 7 (which the npm tool Bosco used)
    walks folders: braces are expanded first, then each ``/``-separated part is matched against the
    entries of the folders reached so far (``wcmatch.fnmatch``: a name starting with ``.`` only by a
    part starting with ``.``). ``**`` matches zero or more folders, none starting with ``.``; it goes
    down through real folders only and may end at a symbolic link to a folder, whose entries the
    next part then matches (node-glob 7's ``_processGlobStar``: it stops at a link it reached by
    ``**``, the behaviour of Bash 4.3). So ``js/**/*.js`` matches ``js/link/a.js`` but not
    ``js/link/sub/b.js``, a trailing ``**`` lists no file inside a linked folder, and no link loop
    is followed more than once per ``**``. Other parts follow links like any path does.
    Inside ``stamps.recording()`` every folder listed (and the folder of a literal last part,
    and a literal folder that is missing) is recorded (``_note``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.found: dict[str, None] = {}  # in the order found (a dict: each once)
        self.recording, self.now = stamps.recording_active(), time.time_ns()
        self.listed: dict[str, list[os.DirEntry[str]]] = {}
        self.matchers: dict[str, fnmatch.WcMatcher] = {}

    def __call__(self, pattern: str) -> list[str]:
        """The paths (relative to the folder, ``/``-separated) ``pattern`` matches; files only."""
        patterns = bracex.expand(pattern, keep_escapes=True, limit=MAX_GLOB_PATTERNS) if "{" in pattern else [pattern]
        for expanded in patterns:
            if expanded.endswith("/"):
                continue  # folders only: no file matches
            parts = [part for part in expanded.split("/") if part]
            if parts:
                self._walk(str(self.folder), "", parts, 0)
        return list(self.found)

    def _entries(self, path: str) -> list[os.DirEntry[str]]:
        if path not in self.listed:
            if self.recording:
                _note(Path(path), self.now)
            try:
                with os.scandir(path) as entries:
                    self.listed[path] = list(entries)
            except OSError:
                self.listed[path] = []
        return self.listed[path]

    def _walk(self, path: str, rel: str, parts: list[str], i: int) -> None:
        part, last = parts[i], i == len(parts) - 1
        if not fnmatch.is_magic(part):
            child = os.path.join(path, part)
            if last:
                if self.recording:
                    _note(Path(path), self.now)
                if os.path.lexists(child) and not os.path.isdir(child):
                    self.found[rel + part] = None
            elif os.path.isdir(child):
                self._walk(child, f"{rel}{part}/", parts, i + 1)
            elif self.recording:
                _note(Path(child), self.now)  # missing: its creation is noticed
            return
        entries = self._entries(path)
        if part == "**":
            if not last:
                self._walk(path, rel, parts, i + 1)  # no folder
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if not entry.is_dir():
                    if last:
                        self.found[rel + entry.name] = None
                elif not entry.is_symlink():
                    self._walk(entry.path, f"{rel}{entry.name}/", parts, i)  # one folder more
                elif not last:
                    self._walk(entry.path, f"{rel}{entry.name}/", parts, i + 1)  # ends at the link
            return
        matcher = self.matchers.get(part) or self.matchers.setdefault(part, fnmatch.compile(part))
        for entry in entries:
            if matcher.match(entry.name):
                if last:
                    if not entry.is_dir():
                        self.found[rel + entry.name] = None
                elif entry.is_dir():
                    self._walk(entry.path, f"{rel}{entry.name}/", parts, i + 1)


class _Resolved:
    """``(folder / rel).resolve()`` for the matches of one glob under ``folder``: the folder is
    resolved once and each match's own folders and name are only checked for symbolic links
    (remembered per folder), so a match without links costs one ``lstat``, not one per component
    of its absolute path."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.real = folder, folder.resolve()
        self.links: dict[str, bool] = {"": False}

    def _link(self, rel: str) -> bool:
        """True when ``folder/rel`` or one of its folders below ``folder`` is a symbolic link."""
        if rel not in self.links:
            self.links[rel] = os.path.islink(self.folder / rel) or self._link(posixpath.dirname(rel))
        return self.links[rel]

    def __call__(self, rel: str) -> Path:
        rel = rel.replace("\\", "/")
        if os.path.islink(self.folder / rel) or self._link(posixpath.dirname(rel)):
            return (self.folder / rel).resolve()
        return self.real / rel


def expand(repo: Path, base: str, pattern: str) -> tuple[list[tuple[Path, str]], str | None]:
    """Expand one glob relative to ``repo/base``.

    Returns ``([(absolute path, path relative to base)], error)``: files only, dotfiles excluded,
    ``**`` recursive, braces allowed, sorted by the relative POSIX path in node-glob 7's order
    (``glob_order``, the same on every machine). The error is set when the pattern matches nothing,
    is absolute, climbs with ``..``, or a match resolves outside the repo (symlink escape) or is not
    a regular file (a FIFO, socket, device or broken symlink: never opened). Matching follows
    node-glob 7 (``_Walk``: ``**`` may end at a symbolic link to a folder). Inside
    ``stamps.recording()`` the folders it lists are recorded.
    """
    if pattern.startswith("/") or posixpath.isabs(pattern) or ".." in pattern.split("/"):
        return [], f"{pattern}: must be relative to basePath and stay inside the repository"
    folder = repo / base if base else repo
    walk = _Walk(folder)
    if not folder.is_dir():
        if walk.recording:
            _note(folder, walk.now)
        return [], f"{pattern}: basePath folder {folder} does not exist"
    repo_real = repo.resolve()
    matches = sorted(walk(pattern), key=glob_order)
    result = []
    resolved = _Resolved(folder)
    for rel in matches:
        path = folder / rel
        real = resolved(rel)
        if real != repo_real and repo_real not in real.parents:
            return [], f"{rel}: resolves outside the repository ({real})"
        reason = problem(path)
        if reason:  # only regular files are assets: a FIFO or device is never opened
            return [], f"{rel}: {reason}, not a regular file; only regular files are assets"
        result.append((path, rel.replace("\\", "/")))
    if not result:
        if (folder / pattern).is_dir():
            return [], f"{pattern}: is a folder under {folder}; list its files (e.g. {pattern.rstrip('/')}/**/*)"
        return [], f"{pattern}: no file matches under {folder}"
    return result, None


def _repo_rel(base: str, rel: str) -> str:
    return f"{base}/{rel}" if base else rel


def collect(repo: Path, manifest: Manifest, bundle_tag: str | None = None) -> Collected:
    """Expand every glob of ``manifest``. ``bundle_tag`` limits bundles to that tag (libraries and site
    assets are always collected). A file matched twice in one bundle keeps its first position."""
    order: list[tuple[str, str]] = []
    assets: dict[tuple[str, str], dict[str, Asset]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    for section in manifest.sections:
        for spec in section.bundles:
            if bundle_tag is not None and spec.tag != bundle_tag:
                continue
            ident = (spec.type, spec.tag)
            if ident not in assets:
                order.append(ident)
                assets[ident], errors[ident] = {}, []
            for pattern in spec.globs:
                found, error = expand(repo, section.base_path, pattern)
                if error:
                    errors[ident].append(error)
                for path, rel in found:
                    repo_rel = _repo_rel(section.base_path, rel)
                    is_map = spec.type in ("js", "css") and rel.endswith(section.source_map_extension)
                    assets[ident].setdefault(
                        repo_rel,
                        Asset(path, rel, repo_rel, spec.type, spec.tag, section.already_minified, is_map),
                    )
    bundles = tuple(
        BundleInput(t, g, tuple(assets[(t, g)].values()), tuple(errors[(t, g)])) for t, g in order
    )
    shared_errors: list[str] = []

    def shared(specs, prefix: str, kind: str) -> tuple[tuple[str, Asset], ...]:
        out: dict[str, tuple[str, Asset]] = {}
        for spec in specs:
            found, error = expand(repo, spec.base_path, spec.glob)
            if error:
                shared_errors.append(f"{kind}: {error}")
            for path, rel in found:
                key = f"{prefix}/{rel}"
                out.setdefault(key, (key, Asset(path, rel, _repo_rel(spec.base_path, rel), kind, kind)))
        return tuple(out.values())

    libraries = shared(manifest.libraries, "vendor/library", "library")
    site = shared(manifest.site_assets, "asset", "site")
    return Collected(bundles, libraries, site, tuple(shared_errors))


def missing_assets(repo: Path, manifest: Manifest) -> list[str]:
    """The glob errors of ``manifest`` (empty when every declared asset exists)."""
    collected = collect(repo, manifest)
    return [e for b in collected.bundles for e in b.errors] + list(collected.errors)
