"""Workspace root discovery, service discovery and ``-r/-t/-s`` filtering."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from bosco.config import Config
from bosco.errors import BoscoError, ConfigError, ManifestError
from bosco.manifest import MANIFEST_NAME, Manifest, load_manifest


@dataclass(frozen=True)
class Service:
    """One repo with a manifest. ``manifest`` is None when it failed to load; ``error`` says why."""

    name: str
    path: Path
    manifest: Manifest | None
    error: str | None = None

    @property
    def service_tags(self) -> tuple[str, ...]:
        """The manifest's ``tags`` (what ``-t`` matches; not the bundle tags under ``assets``)."""
        return self.manifest.service_tags if self.manifest else ()


def find_root(cwd: Path, explicit: Path | None = None) -> Path:
    """The workspace root: ``explicit`` (``--workspace``) when given, else the nearest ancestor of
    ``cwd`` (itself included) holding a ``.bosco/`` folder, else ``cwd``.

    Raises ``ConfigError`` when ``explicit`` is not a directory.
    """
    if explicit is not None:
        if not explicit.is_dir():
            raise ConfigError(f"{explicit}: workspace folder does not exist", "pass an existing --workspace")
        return explicit.resolve()
    cwd = cwd.resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".bosco").is_dir():
            return folder
    return cwd


def load_service(repo: Path) -> Service:
    """Load the service in ``repo``; a broken manifest gives a Service with ``error`` set."""
    try:
        manifest = load_manifest(repo / MANIFEST_NAME)
    except ManifestError as exc:
        return Service(repo.name, repo, None, str(exc))
    return Service(manifest.name or repo.name, repo, manifest)


def discover_services(root: Path, config: Config) -> tuple[list[Service], list[str]]:
    """All services of the workspace, in order, and warnings.

    Services are the immediate subfolders of ``root`` holding a ``bosco-service.json`` (sorted by
    folder name), or exactly the config's ``repos`` list in its order when that is set (a listed repo
    without a manifest, and a folder listed again, are warnings). Services that share a name become
    one Service with an error naming their folders (none of them is built; the others are).
    """
    warnings: list[str] = []
    repos = config.repos
    if repos is not None:
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise ConfigError(f"{root / '.bosco' / 'bosco.json'}: repos must be a list of folder names")
        folders: list[Path] = []
        resolved: set[Path] = set()  # of ``folders``: each resolved once (a listed name is one lookup)
        for name in repos:
            if (real := (root / name).resolve()) in resolved:
                warnings.append(f"{root / '.bosco' / 'bosco.json'}: repos lists the folder {name} more than once; "
                                "it is one service (remove the repeated entry)")
            elif os.path.lexists(root / name / MANIFEST_NAME):
                folders.append(root / name)
                resolved.add(real)
            else:
                warnings.append(f"repo {name} (from repos) has no {root / name / MANIFEST_NAME}; skipped")
    else:
        # lexists: a manifest that is a broken symlink or a FIFO is a service with an error, not no service
        folders = sorted(p for p in root.iterdir()
                         if not p.name.startswith(".") and p.is_dir() and os.path.lexists(p / MANIFEST_NAME))
    named: dict[str, list[Service]] = {}
    for service in map(load_service, folders):
        named.setdefault(service.name, []).append(service)
    services = []
    for name, group in named.items():
        if len(group) > 1:
            folders_text = ", ".join(s.path.name for s in group[:-1]) + f" and {group[-1].path.name}"
            group = [Service(name, group[0].path, None,
                             f"{len(group)} services are named {name!r} (folders {folders_text}), so none of them "
                             f"is built; give each a different service.name in its {MANIFEST_NAME}")]
        services += group
    return services, warnings


def compile_regex(pattern: str, option: str, hint: str | None = None) -> re.Pattern[str]:
    """``pattern`` compiled (Python ``re`` syntax, searched anywhere in a name). Raises ``BoscoError``
    ``"<option> '<pattern>' is not a valid regular expression: <why>"`` with ``hint``."""
    problem = regex_problem(pattern)
    if problem:
        raise BoscoError(f"{option} {problem}", hint)
    return re.compile(pattern)


def regex_problem(pattern: str) -> str | None:
    """``"'<pattern>' is not a valid regular expression: <why>"``, or None when it compiles."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"{pattern!r} is not a valid regular expression: {exc}"
    return None


def filter_services(
    services: list[Service],
    repo: str | None = None,
    service_tag: str | None = None,
    current: Path | None = None,
) -> list[Service]:
    """Keep services whose name matches regex ``repo`` (``-r``, searched anywhere in the name), whose
    manifest ``tags`` include ``service_tag`` (``-t``), and, when ``current`` is given (``-s``), only the service
    whose folder contains that path. Raises ``BoscoError`` for an invalid regex or when ``-s`` is used
    outside any service.
    """
    result = services
    if repo:
        pattern = compile_regex(repo, "-r")
        result = [s for s in result if pattern.search(s.name)]
    if service_tag:
        result = [s for s in result if service_tag in s.service_tags]
    if current is not None:
        current = current.resolve()
        result = [s for s in result if current == s.path.resolve() or s.path.resolve() in current.parents]
        if not result:
            raise BoscoError(f"{current} is not inside any service of the workspace", "run -s inside a service")
    return result
