"""What changes between two releases of the same services (``bosco diff`` and ``s3push``'s summary).

Both sides are release indexes (``<service>/<build>/release.json``, see the README "Publishing to
S3" and "Provenance"), or the same shape made from a local build (``local_index``). Objects are
compared by their path below ``<service>/<build>/`` (or their full key for libraries and site
assets) and SHA-256; fragments and source maps are left out, since they name the build.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bosco.assetset import Output
from bosco.gitinfo import RepoInfo, commits_between
from bosco.publish.release_index import ServiceState
from bosco.publish.target import Target
from bosco.sizes import ENCODINGS, stored_sizes

BUILD_PREFIXED = ("bundle", "file")
COMPARED = ("bundle", "file", "library", "site")


def local_index(service: str, label: str, outputs: Iterable[Output], record: Mapping[str, Any],
                sizes: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """A release-index-shaped record of ``service``'s ``outputs`` (``build`` = ``label``), with the
    provenance ``record`` (``git``, ``sources``) and the gzip/brotli ``sizes`` of its bundles."""
    objects = []
    for output in outputs:
        if output.service != service or output.kind not in COMPARED:
            continue
        measured = sizes.get(output.key, {})
        objects.append({"key": output.key, "kind": output.kind, "sha256": output.sha256, "size": len(output.data),
                        "stored": [{"encoding": e, "size": measured[e]} for e in ("gzip", "br") if e in measured]})
    return {"service": service, "build": label, **record, "objects": objects}


def local_indexes(services: Iterable[str], outputs: Iterable[Output], records: Mapping[str, Mapping[str, Any]],
                  sizes: Mapping[str, Mapping[str, int]], label: str) -> dict[str, dict[str, Any]]:
    """``local_index`` of each of ``services`` (in order) from the published ``outputs``."""
    outputs = list(outputs)
    return {name: local_index(name, label, outputs, records.get(name, {}), sizes) for name in services}


def current_release(state: ServiceState) -> dict[str, Any] | None:
    """The release index ``releases.json`` marks current, from what a push plan read
    (``release_index.read_service_state``); without a usable ``releases.json``, the latest release."""
    current = (state.releases or {}).get("current")
    if state.current is not None and current == (state.current or {}).get("build"):
        return state.current
    return state.previous


def read_release(target: Target, service: str, build: str | None) -> dict[str, Any] | None:
    """``service``'s release index of ``build`` at ``target`` (None: the build ``releases.json`` marks
    current), or None when there is none (or it is not a JSON object)."""
    if build is None:
        releases = _json(target.read(f"{service}/releases.json"))
        build = releases.get("current") if releases else None
        if not isinstance(build, str):
            return None
    return _json(target.read(f"{service}/{build}/release.json"))


def _json(data: bytes | None) -> dict[str, Any] | None:
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _path(entry: dict[str, Any]) -> str:
    key = str(entry.get("key", ""))
    return key.split("/", 2)[2] if entry.get("kind") in BUILD_PREFIXED and key.count("/") >= 2 else key


def _objects(index: dict[str, Any] | None, kinds: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    entries = (index or {}).get("objects", [])
    return {_path(e): e for e in entries if isinstance(e, dict) and e.get("kind") in kinds}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any], same: Any) -> dict[str, list[str]]:
    return {"added": sorted(after.keys() - before.keys()), "removed": sorted(before.keys() - after.keys()),
            "changed": sorted(k for k in before.keys() & after.keys() if not same(before[k], after[k]))}


def _bundle_rows(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    old, new = _objects(before, ("bundle",)), _objects(after, ("bundle",))
    rows = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if a and b and a.get("sha256") == b.get("sha256"):
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        sa, sb = stored_sizes(a or {}), stored_sizes(b or {})
        row: dict[str, Any] = {"bundle": path, "status": status}
        for enc in ENCODINGS:
            x = sa[enc] if a else 0
            y = sb[enc] if b else 0
            row[enc] = {"before": x, "after": y, "delta": y - x if x is not None and y is not None else None}
        rows.append(row)
    return rows


def _git(before: dict[str, Any] | None, after: dict[str, Any] | None, repo: RepoInfo | None) -> dict[str, Any]:
    old = ((before or {}).get("git") or {}).get("commit")
    new = ((after or {}).get("git") or {}).get("commit")
    result: dict[str, Any] = {"from": old, "to": new, "range": None, "commits": None}
    if old and new and old != new:
        result["range"] = f"{old[:7]}..{new[:7]}"
        result["commits"] = commits_between(repo, old, new) if repo else None
    return result


def diff_service(service: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                 repo: RepoInfo | None = None) -> dict[str, Any]:
    """The difference of one service between two release indexes (None: no release on that side).

    ``status`` is ``added``, ``removed``, ``changed`` or ``unchanged`` (same bytes, whatever the
    commits); ``bundles`` lists added/removed/changed bundles with ``raw``/``gzip``/``br``
    ``{"before", "after", "delta"}`` bytes (None where a side did not store that encoding);
    ``files`` the other published files, ``sources`` the source files (None when a side has no
    ``sources`` record, e.g. a release made before provenance was recorded), each as
    ``{"added", "removed", "changed"}`` path lists; ``git`` the commits and, when ``repo`` (the local
    repository) has both, the commit subjects between them."""
    bundles = _bundle_rows(before, after)
    files = _changes(_objects(before, COMPARED[1:]), _objects(after, COMPARED[1:]),
                     lambda a, b: a.get("sha256") == b.get("sha256"))
    sources = None
    if isinstance((before or {}).get("sources"), dict) and isinstance((after or {}).get("sources"), dict):
        sources = _changes(before["sources"], after["sources"], lambda a, b: a.get("sha256") == b.get("sha256"))
    changed = bundles or any(files.values()) or (sources and any(sources.values()))
    status = "added" if before is None else "removed" if after is None else "changed" if changed else "unchanged"
    return {"service": service, "status": status,
            "from": (before or {}).get("build"), "to": (after or {}).get("build"),
            "bundles": bundles, "files": files, "sources": sources, "git": _git(before, after, repo)}


def diff_releases(before: Mapping[str, dict[str, Any] | None], after: Mapping[str, dict[str, Any] | None],
                  repos: Mapping[str, RepoInfo | None], from_label: str, to_label: str) -> dict[str, Any]:
    """``{"from", "to", "services": [diff_service(...) per service of after, in its order]}``."""
    services = [diff_service(name, before.get(name), after.get(name), repos.get(name)) for name in after]
    return {"from": from_label, "to": to_label, "services": services}


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _delta(value: int | None) -> str:
    return "" if value is None else f" ({value:+,})"


def describe(diff: dict[str, Any]) -> list[str]:
    """The diff as text lines: one line per unchanged service, else a header, one line per bundle
    (raw/gzip/br before -> after (delta)), file and source changes, commit subjects."""
    lines = [f"diff {diff['from']} -> {diff['to']}"]
    for s in diff["services"]:
        sides = f"{s['from'] or 'none'} -> {s['to'] or 'none'}"
        git = f", git {s['git']['range']}" if s["git"]["range"] else ""
        if s["status"] == "unchanged":
            lines.append(f"{s['service']}: unchanged ({sides}{git})")
            continue
        lines.append(f"{s['service']}: {s['status']} ({sides}{git})")
        marks = {"added": "+", "removed": "-", "changed": "~"}
        for b in s["bundles"]:
            sizes = "  ".join(f"{e} {_num(b[e]['before'])} -> {_num(b[e]['after'])}{_delta(b[e]['delta'])}"
                              for e in ENCODINGS)
            lines.append(f"  {marks[b['status']]} {b['bundle']}  {sizes}")
        for what, changes in (("files", s["files"]), ("sources", s["sources"])):
            if changes and any(changes.values()):
                parts = [f"{marks[k]}{p}" for k in ("added", "removed", "changed") for p in changes[k]]
                shown = ", ".join(parts[:8]) + (f" and {len(parts) - 8} more" if len(parts) > 8 else "")
                lines.append(f"  {what}: {shown}")
        for c in s["git"]["commits"] or []:
            lines.append(f"  {c['commit'][:7]} {c['subject']}")
    return lines
