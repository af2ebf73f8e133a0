"""Provenance of a release: which commit of which repository each published service came from.

For every service of an asset set: the git facts of its folder (``gitinfo.RepoInfo``, None when it
is not a git repository) and, for every source file of its outputs, the SHA-256 of its bytes and
the last commit that touched it. Recorded in each service's ``release.json`` (see the README,
"Provenance") and read back by ``bosco diff``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bosco import stamps
from bosco.assetset import Output, ServiceResult
from bosco.gitinfo import RepoInfo, last_commits


@dataclass(frozen=True)
class Provenance:
    """One service's provenance. ``sources`` maps each published source file, as
    ``<service>/<path in the service folder>`` (the names of ``Output.sources`` and source maps), to
    ``{"sha256": hex of its bytes (None when unreadable), "commit": full SHA or None}``;
    ``uncommitted`` lists the published source files with uncommitted changes as ``path (status)``
    (``git status --porcelain`` codes, e.g. ``public/js/a.js ( M)``)."""

    service: str
    git: RepoInfo | None
    sources: dict[str, dict[str, str | None]]
    uncommitted: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        """What ``release.json`` holds: ``{"git": {...} or null, "sources": {...}}``."""
        return {"git": self.git.to_json() if self.git else None, "sources": self.sources}


def service_provenance(build: ServiceResult, outputs: Iterable[Output],
                       seen: Mapping[tuple[str, str], str | None] | None = None) -> Provenance:
    """The provenance of ``build``'s published ``outputs`` (their ``sources``): the SHA-256 of each
    source file and the repository history read once (``gitinfo.last_commits``, cached per HEAD).
    The SHA-256 is that of the bytes the build read, from ``seen`` (the ``stamps.recording()`` of
    the build: a file saved again while it was built keeps the digest of what was built), else
    the file's as it is now (``stamps.sha256``)."""
    names = sorted({s for o in outputs if o.service == build.name for s in o.sources})
    prefix = f"{build.name}/"
    paths = {name: name[len(prefix):] for name in names if name.startswith(prefix)}
    info = build.git
    commits = last_commits(info, list(paths.values())) if info else {}
    folder = Path(build.path)
    seen = seen or {}
    sources = {name: {"sha256": seen.get(("read", os.fspath(folder / path))) or stamps.sha256(folder / path),
                      "commit": commits.get(path)} for name, path in paths.items()}
    uncommitted = tuple(f"{path} ({info.changes[path]})" for path in paths.values() if info and path in info.changes)
    return Provenance(build.name, info, sources, uncommitted)


def collect(services: Iterable[ServiceResult], outputs: Iterable[Output],
            seen: Mapping[tuple[str, str], str | None] | None = None) -> dict[str, Provenance]:
    """Service name -> ``Provenance`` for ``services`` (one thread per service: git and file reads);
    ``seen`` as ``service_provenance`` takes it."""
    outputs = list(outputs)
    services = list(services)
    with ThreadPoolExecutor(min(8, len(services) or 1)) as pool:
        found = pool.map(lambda s: service_provenance(s, outputs, seen), services)
        return {p.service: p for p in found}


def not_git(provenance: dict[str, Provenance]) -> list[str]:
    """Names of the services whose folder is not in a git repository (recorded as ``"git": null``)."""
    return [name for name, p in provenance.items() if p.git is None]


def uncommitted_problems(provenance: dict[str, Provenance]) -> list[str]:
    """One line per service whose published source files have uncommitted changes, naming them."""
    return [f"{name}: uncommitted changes in files it would publish: {', '.join(p.uncommitted)}"
            for name, p in provenance.items() if p.uncommitted]
