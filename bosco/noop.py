"""Skipping a ``bosco build --out`` that would change nothing.

After a successful run, the output folder's state (``publish.local``) also keeps a record of the
run: a fingerprint of everything resolved before building (bosco's code, configuration, manifests,
options, git facts), every file the build checked, read or resolved and every folder its globs
listed (``stamps.recording``), the keys it stored, and what it reported. A later run with the same
fingerprint whose recorded files, folders and stored files all have their recorded stat (or
content) writes nothing and prints the same result, without building: a build from these inputs
gives the same bytes, which are already there.

It never applies when a selected service has a ``build.command`` (a publish always runs it, and
what it does is not known) or declares size budgets.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bosco import stamps
from bosco.publish.local import load_state, stat_stamp
from bosco.workspace import Service

RUN_FORMAT = 1
REPORTED = ("detail", "warning", "error", "status")  # the kinds of lines a run's reporter said that are kept


@dataclass(frozen=True)
class LastRun:
    """The last run into a folder: ``reported`` (what it reported while building, in order:
    ``(kind, text)`` pairs such as ``("warning", "...")``) and ``summary`` (``unchanged``: the
    number of files it stored or found stored, ``warnings``: its result's warnings)."""

    reported: list[tuple[str, str]]
    summary: dict[str, Any]


def applies(services: list[Service]) -> bool:
    """False when a selected service has a ``build.command`` (it runs on every publish)."""
    return not any(s.manifest is not None and s.manifest.build is not None and s.manifest.build.command
                   for s in services)


def _in_git(folder: Path) -> bool:
    return any((p / ".git").exists() for p in (folder, *folder.parents))


def git_infos(services: list[Service]) -> dict[Path, Any]:
    """Service folder -> its git facts (``gitinfo.repo_info``: commit, branch, origin, changed files;
    None outside git) of every service (one ``git status`` each, eight at a time, for those in a git
    repository); GitPython loads only when there is one. A build that follows reuses them
    (``pipeline.build_asset_set``'s ``git``) instead of running ``git status`` again."""
    in_git = [s for s in services if _in_git(s.path)]
    infos: dict[Path, Any] = {s.path: None for s in services}
    if not in_git:
        return infos
    from concurrent.futures import ThreadPoolExecutor

    from bosco.gitinfo import repo_info

    with ThreadPoolExecutor(8) as pool:
        infos.update(zip((s.path for s in in_git), pool.map(lambda s: repo_info(s.path), in_git), strict=True))
    return infos


def git_facts(services: list[Service], infos: dict[Path, Any]) -> list[Any]:
    """The git facts a release records of every service of ``services`` in a git repository, from
    ``infos`` (``git_infos``), for ``fingerprint``; with a shallow clone's boundary, which decides
    the last commits of files."""
    return [(s.name, info and (info.to_json(), sorted(info.changes.items()), info.shallow))
            for s in services if _in_git(s.path) for info in (infos[s.path],)]


def _templates() -> str:
    digest = hashlib.sha256()
    for path in sorted(resources.files("bosco.templates").iterdir(), key=lambda p: p.name):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(*parts: Any) -> str:
    """SHA-256 hex of ``parts`` (their ``repr``), bosco's code version, its templates and Python's version."""
    from bosco.cache import code_version

    text = repr((RUN_FORMAT, code_version(), _templates(), sys.version, parts))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _stamp_of(path: Path) -> list[int] | None:
    try:
        return stat_stamp(os.stat(path))
    except OSError:
        return None


def last_run(out: Path, print_: str) -> LastRun | None:
    """The last run into ``out`` when it had fingerprint ``print_`` and nothing it depended on
    changed since: its recorded files and folders (``stamps.unchanged``), the files it stored (by
    stat) and the folder's own listing. Else None (build as usual)."""
    state = load_state(out)
    run = state.get("run")
    if not isinstance(run, dict) or run.get("fingerprint") != print_:
        return None
    try:
        files = state["files"]
        if _stamp_of(out) != run["folder"]:
            return None
        for key in run["keys"]:
            known = files.get(key)
            if known is None or _stamp_of(out.joinpath(*key.split("/"))) != known[:5]:
                return None
        record = {(what, path): seen for what, path, seen in run["record"]}
        if not stamps.unchanged(record):
            return None
        reported = [(str(kind), str(text)) for kind, text in run["reported"]]
        if any(kind not in REPORTED for kind, _ in reported):
            return None
        return LastRun(reported, run["summary"])
    except (KeyError, TypeError, ValueError):
        return None


def run_record(out: Path, print_: str, record: stamps.Record, keys: list[str], reported: list[tuple[str, str]],
               summary: dict[str, Any]) -> dict[str, Any]:
    """The record of a successful run for ``DirectoryTarget.save_state`` (taken after it wrote every file)."""
    return {"fingerprint": print_, "folder": _stamp_of(out), "keys": sorted(set(keys)),
            "record": [[what, path, seen] for (what, path), seen in record.items()],
            "reported": [list(pair) for pair in reported], "summary": json.loads(json.dumps(summary))}
