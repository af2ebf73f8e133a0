"""Duplicates across the workspace (README "Duplicates"): report only, nothing is dropped.

Two findings, over every published source file (the files of bundles, single files, libraries and
site assets; empty files ignored):

- the same bytes listed more than once (twice in one bundle, in two bundles or in two services);
- the same library in different versions, recognised from the file name (``jquery-1.11.0-min.js``,
  ``jquery-3.7.1.min.js``, ``lodash@4.17.21.js``), a license banner in the file's first comment
  (``/*! jQuery v3.7.1``; a banner further down belongs to code the file embeds) or the
  ``package.json`` of a vendored folder it lives in (not the service's own ``package.json``).

File hashes are known by stat (``stamps.sha256``) and banners cached by content, so ``bosco cdn``
re-checks only changed files after a rebuild.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bosco import stamps
from bosco.assetset import ServiceResult

_NAME_VERSION = re.compile(
    r"^(?P<name>[A-Za-z][\w.]*?(?:-[A-Za-z][\w]*)*)[-@.]v?(?P<version>\d+\.\d+(?:\.\d+)?(?:-(?:alpha|beta|rc|pre)[\w.]*)?)"
    r"(?:[.-]min|[.-]slim|[.-]bundle)*\.(?:js|mjs|css)$", re.IGNORECASE)
_BANNER = re.compile(
    r"/\*!?\s*(?:\*\s*)?(?:@license\s+)?(?P<name>[A-Za-z][\w.\-]*(?: [A-Z][\w.\-]*)?)\s+(?:-\s+)?"
    r"v(?P<version>\d+\.\d+(?:\.\d+)?(?:-[\w.]+)?)\b")
_FIRST_COMMENT = re.compile(r'^\ufeff?\s*(?:@charset\s+"[^"]*";\s*)?(/\*.*?(?:\*/|$))', re.DOTALL)
BANNER_BYTES = 2048

_files: dict[tuple[str, str], tuple[str, str] | None] = {}  # (path, sha256) -> banner


@dataclass(frozen=True)
class Place:
    """Where a source file is published: ``service``, ``where`` (the bundle or file key) and
    ``path`` (``<service>/<path in the service folder>``), its ``size`` in bytes and, for library
    findings, the ``version`` and what it was read from (``file name``, ``banner``, ``package.json``)."""

    service: str
    where: str
    path: str
    size: int
    version: str = ""
    source: str = ""


@dataclass(frozen=True)
class Duplicate:
    """One finding: ``kind`` ``bytes`` (``name`` = the SHA-256) or ``versions`` (``name`` = the
    library), its places, and ``saved``: the bytes a page loading all of them would not download
    if only one copy (for versions: the largest) were kept."""

    kind: str
    name: str
    places: tuple[Place, ...]
    saved: int

    def describe(self) -> str:
        """One warning line."""
        if self.kind == "bytes":
            where = "; ".join(f"{p.path} in {p.where}" for p in self.places)
            return (f"same {self.places[0].size:,} bytes {len(self.places)} times: {where} "
                    f"({self.saved:,} bytes to save)")
        where = "; ".join(f"{p.version} ({p.source}) {p.path} in {p.where}" for p in self.places)
        versions = {p.version for p in self.places}
        return f"{self.name} in {len(versions)} versions: {where} ({self.saved:,} bytes to save)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "saved": self.saved,
                "places": [{"service": p.service, "where": p.where, "path": p.path, "size": p.size,
                            **({"version": p.version, "from": p.source} if p.version else {})} for p in self.places]}


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing numbers as numbers (``9.0`` before ``10.0``)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p)


def _normal(name: str) -> str:
    name = name.strip().lower().replace(" ", "-")
    return name[:-3] if name.endswith((".js", "-js")) else name


def _package_version(folder: Path, repo: Path) -> tuple[str, str] | None:
    """``(name, version)`` from the nearest ``package.json`` above a file, below the repo folder."""
    while folder != repo and repo in folder.parents:
        candidate = folder / "package.json"
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text("utf-8"))
            except (OSError, ValueError):
                return None
            if isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("version"), str):
                return data["name"], data["version"]
            return None
        folder = folder.parent
    return None


def _facts(path: Path) -> tuple[int, str, tuple[str, str] | None] | None:
    """``(size, sha256, (library, version) from the banner or None)`` of a file: the hash known by
    stat (``stamps.sha256``), the banner read from the first ``BANNER_BYTES`` once per content."""
    sha = stamps.sha256(path)
    if sha is None:
        return None
    try:
        size = path.stat().st_size
        if (str(path), sha) not in _files:
            with open(path, "rb") as handle:
                head = handle.read(BANNER_BYTES)
            first = _FIRST_COMMENT.match(head.decode("utf-8", "replace"))  # a later banner belongs
            found = _BANNER.search(first.group(1)) if first else None  # to something the file embeds
            _files[(str(path), sha)] = (_normal(found.group("name")), found.group("version")) if found else None
    except OSError:
        return None
    return size, sha, _files[(str(path), sha)]


def _library(path: Path, repo: Path, banner: tuple[str, str] | None,
             packages: dict[Path, tuple[str, str] | None]) -> tuple[str, str, str] | None:
    """``(library, version, how it was recognised)`` of one file, or None. ``packages`` remembers
    ``_package_version`` per folder (the files of one folder share it)."""
    named = _NAME_VERSION.match(path.name)
    if named:
        return _normal(named.group("name")), named.group("version"), "file name"
    if banner:
        return banner[0], banner[1], "banner"
    if path.parent not in packages:
        packages[path.parent] = _package_version(path.parent, repo)
    package = packages[path.parent]
    if package:
        return _normal(package[0]), package[1], "package.json"
    return None


Found = tuple[Place, str, tuple[str, str, str] | None]  # a place, the file's sha256, (library, version, how)


def places(service: ServiceResult) -> list[Found]:
    """Where ``service`` publishes each of its source files (for ``find``), with the file's SHA-256
    and the library version it holds, if known."""
    found = []
    repo = Path(service.path).resolve()
    outputs = {o.key: o for o in service.outputs}
    listed: list[tuple[str, str]] = []
    for bundle in service.bundles:
        if bundle.key:
            listed += [(bundle.key, source) for source in bundle.sources]
        listed += [(key, outputs[key].sources[0]) for key in bundle.files
                   if key in outputs and outputs[key].sources]
    listed += [(o.key, o.sources[0]) for o in service.outputs if o.kind in ("library", "site") and o.sources]
    packages: dict[Path, tuple[str, str] | None] = {}
    for where, source in listed:
        path = repo / source.split("/", 1)[1]
        facts = _facts(path)
        if facts is None or facts[0] == 0:
            continue
        size, sha, banner = facts
        found.append((Place(service.name, where, source, size), sha, _library(path, repo, banner, packages)))
    return found


def find(services: Sequence[ServiceResult],
         places_of: Callable[[ServiceResult], list[Found]] = places) -> list[Duplicate]:
    """Every duplicate among the published source files of ``services``: same bytes first (by first
    place), then libraries in several versions (by name). ``places_of`` gives each service's
    ``places`` (``bosco cdn`` remembers those of the services it did not rebuild)."""
    everywhere = [found for service in services for found in places_of(service)]
    by_sha: dict[str, list[Place]] = {}
    for place, sha, _ in everywhere:
        by_sha.setdefault(sha, []).append(place)
    findings = [Duplicate("bytes", sha, tuple(group), group[0].size * (len(group) - 1))
                for sha, group in by_sha.items() if len(group) > 1]
    by_library: dict[str, dict[str, list[Place]]] = {}
    for place, _, library in everywhere:
        if library:
            name, version, how = library
            by_library.setdefault(name, {}).setdefault(version, []).append(
                Place(place.service, place.where, place.path, place.size, version, how))
    for name, versions in sorted(by_library.items()):
        if len(versions) > 1:
            group = [p for version in sorted(versions, key=_version_key) for p in versions[version]]
            keep = max(p.size for p in group)
            findings.append(Duplicate("versions", name, tuple(group), sum(p.size for p in group) - keep))
    return findings

