"""Release bookkeeping on a target (layout: docs/layout.md): the release index
``<service>/<build>/release.json`` (every object of one release with its SHA-256, stored forms and
SRI) and ``<service>/releases.json`` (the service's releases and which one is current).

A release index is written only after every object of its service is stored, so its presence means
the release is complete; ``releases.json`` is changed with conditional writes so concurrent pushes
never drop each other's entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bosco import __version__
from bosco.assetset import Output, content_type, is_segment
from bosco.errors import PublishError
from bosco.publish.report import Result
from bosco.publish.target import Headers, Target

if TYPE_CHECKING:
    from bosco.publish.plan import PublishOptions, ReleasePlan

RELEASE_INDEX = "release.json"
RELEASES = "releases.json"
RELEASES_ATTEMPTS = 5  # conditional writes of releases.json lost to other pushes before giving up


@dataclass(frozen=True)
class ServiceState:
    """What the target holds for one service before the push: ``current`` is this build's existing
    release index, ``previous`` the index of the service's most recent other release, ``releases``
    the parsed ``releases.json`` (each None when absent)."""

    name: str
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    releases: dict[str, Any] | None


def read_json(target: Target, key: str) -> dict[str, Any] | None:
    """The JSON object stored at ``key`` (``parse_json``), None when absent or not an object."""
    return parse_json(target.read(key))


def parse_json(data: bytes | None) -> dict[str, Any] | None:
    """``data`` parsed as a JSON object; None when absent, malformed or not an object (a broken
    bookkeeping file counts as missing and is rewritten)."""
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def release_key(service: str, build: str) -> str:
    """The key of a release index: ``<service>/<build>/release.json``."""
    return f"{service}/{build}/{RELEASE_INDEX}"


def _previous_build(target: Target, service: str, releases: dict[str, Any] | None, build: str) -> str | None:
    """The service's most recent release other than ``build``: ``releases.json``'s current one, else
    (no usable releases.json) the build folder whose release index was written last (the higher
    build name on a tie)."""
    if releases is not None:
        current = releases.get("current")
        if isinstance(current, str) and current != build:
            return current
        builds = [e.get("build") for e in releases.get("releases", []) if isinstance(e, dict)]
        others = [b for b in builds if isinstance(b, str) and b != build]
        return others[-1] if others else None
    found = [target.head(release_key(service, b)) for b in target.folders(f"{service}/") if b != build]
    latest = max((o for o in found if o is not None), key=lambda o: (o.modified, _natural(o.key.split("/")[1])),
                 default=None)
    return latest.key.split("/")[1] if latest else None


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing digit runs as numbers (build ``9`` before ``10``): breaks ties between
    release indexes written in the same second (S3 times have one-second precision)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def read_service_state(target: Target, service: str, build: str) -> ServiceState:
    """Read what ``target`` holds for ``service``: this build's release index, the previous release's
    index and ``releases.json``."""
    releases = read_json(target, f"{service}/{RELEASES}")
    previous_build = _previous_build(target, service, releases, build)
    previous = read_json(target, release_key(service, previous_build)) if previous_build else None
    return ServiceState(service, read_json(target, release_key(service, build)), previous, releases)


def stored_entries(index: dict[str, Any] | None) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """``(object, stored form)`` pairs of a parsed release index (entries of another shape skipped)."""
    if not index:
        return
    for obj in index.get("objects", []):
        if isinstance(obj, dict):
            for stored in obj.get("stored", []):
                if isinstance(stored, dict):
                    yield obj, stored


def read_release_index(target: Target, service: str, build: str) -> dict[str, Any] | None:
    """The parsed ``<service>/<build>/release.json``, or None when there is none (or it names
    another service)."""
    index = read_json(target, release_key(service, build))
    return index if index and index.get("service") == service else None


def _current_index(target: Target, name: str) -> dict[str, Any] | None:
    """The release index ``releases.json`` of folder ``name`` marks as current, or None."""
    releases = read_json(target, f"{name}/{RELEASES}")
    current = releases.get("current") if releases else None
    if not isinstance(current, str) or not is_segment(current):
        return None
    return read_release_index(target, name, current)


def published_services(target: Target, pool: ThreadPoolExecutor) -> list[dict[str, Any]]:
    """The current release index of every service of the target (a top-level folder whose
    ``releases.json`` names a current release with an index), sorted by service name."""
    names = sorted(n for n in target.folders("") if is_segment(n))
    return [index for index in pool.map(lambda n: _current_index(target, n), names) if index]


def _index_time(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_indexes(plan: ReleasePlan, results: list[Result], now: datetime) -> dict[str, dict[str, Any]]:
    """The release index of every service of ``plan`` (``release_index``), from the ``results`` of
    its content objects."""
    from bosco.publish.plan import built_outputs  # plan imports this module

    stored: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        stored.setdefault(r.asset_key, []).append({"key": r.key, "encoding": r.encoding, "size": r.size})
    outputs: dict[str | None, list[Output]] = {}
    for output in built_outputs(plan.asset_set):
        outputs.setdefault(output.service, []).append(output)
    return {n: release_index(n, plan, stored, outputs.get(n, []), now) for n in plan.services}


def release_index(service: str, plan: ReleasePlan, stored: dict[str, list[dict[str, Any]]], outputs: list[Output],
                  now: datetime) -> dict[str, Any]:
    """The release index of ``service`` (whose ``outputs`` are given; ``stored``: asset key -> its
    stored objects): bosco version, environment, build, time (UTC) and, per asset key, its kind,
    SHA-256, size, content type, stored objects (key, encoding, size) and, for bundles, the SRI
    ``sha384-…`` value. ``time`` keeps the existing index's value when nothing else changed, so an
    unchanged release re-publishes byte-identical indexes."""
    objects = []
    for output in outputs:
        entry: dict[str, Any] = {"key": output.key, "kind": output.kind, "sha256": output.sha256,
                                 "size": len(output.data), "contentType": content_type(output.key),
                                 "stored": sorted(stored.get(output.key, []), key=lambda s: s["key"])}
        if output.kind == "bundle":
            entry["sri"] = output.sri
            if plan.provenance:
                entry["sources"] = list(output.sources)
        objects.append(entry)
    current = plan.services[service].current
    if plan.options.bundle_tag is not None and current:
        mine = {o["key"] for o in objects}
        objects = [o for o in current.get("objects", []) if o.get("key") not in mine] + objects
        objects.sort(key=lambda o: o.get("key", ""))
    bundles = _bundle_records(plan, service, current)
    extra = plan.provenance.get(service, {})
    time = _index_time(now)
    if (current and current.get("objects") == objects and current.get("bundles") == bundles
            and isinstance(current.get("time"), str) and all(current.get(k) == v for k, v in extra.items())):
        time = current["time"]
    return {"bosco": __version__, "service": service, "environment": plan.options.environment,
            "build": plan.options.build, "time": time, **extra, "objects": objects, "bundles": bundles}


def _bundle_records(plan: ReleasePlan, service: str, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``bundles`` of a release index (what the index page shows of the release): per bundle its
    ``type``, ``tag``, bundle ``key`` (None for files published one by one), ``fragment`` key,
    single-file ``files`` and ``sources`` (``<service>/<repo path>``), in manifest order. A BUNDLE
    push keeps the other bundles of this build's existing index."""
    build = next((s for s in plan.asset_set.services if s.name == service), None)
    records = [{"type": b.type, "tag": b.tag, "key": b.key, "fragment": b.fragment, "files": list(b.files),
                "sources": list(b.sources)} for b in (build.bundles if build else ())]
    if plan.options.bundle_tag is not None and current:
        mine = {(r["type"], r["tag"]) for r in records}
        kept = [r for r in current.get("bundles", [])
                if isinstance(r, dict) and (r.get("type"), r.get("tag")) not in mine]
        records = kept + records
    return records


def without_build(releases: dict[str, Any], build: str) -> dict[str, Any] | None:
    """``releases`` (a parsed ``releases.json``) without ``build``: when it was current, the newest
    remaining release becomes current. None when no release remains."""
    entries = [e for e in releases.get("releases", []) if isinstance(e, dict) and e.get("build") != build]
    if not entries:
        return None
    current = releases.get("current")
    return {**releases, "releases": entries, "current": entries[-1].get("build") if current == build else current}


def update_releases(target: Target, service: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                    short_cache_control: str, absent: bool = False) -> tuple[bytes | None, bool]:
    """Read ``<service>/releases.json``, apply ``change`` (parsed record or None -> new record, None
    to delete the file) and write the result only if nobody changed the file since it was read
    (``Target.put_if``: S3 conditional writes); when another push did, read and apply again, so
    concurrent pushes never drop each other's entries. ``absent``: the caller found no usable file
    a moment ago, so the first attempt does not read it and writes only if there is still none.
    Returns the stored bytes (None when there is no file) and whether they changed. Raises
    ``PublishError`` after ``RELEASES_ATTEMPTS`` lost races. Deleting the file (the last release
    deleted) is not conditional."""
    key = f"{service}/{RELEASES}"
    for attempt in range(RELEASES_ATTEMPTS):
        found = None if absent and attempt == 0 else target.read_versioned(key)
        record = change(parse_json(found[0] if found else None))
        if record is None:
            if found:
                target.delete([key])
            return None, found is not None
        output = json_output(key, record, "index", service)
        if found and found[0] == output.data:
            return output.data, False
        headers = Headers(content_type(key), short_cache_control, "", output.sha256)
        if target.put_if(key, output.data, headers, found[1] if found else None):
            return output.data, True
    raise PublishError(f"{target.description}{key} was changed by another writer {RELEASES_ATTEMPTS} times while "
                       "this push updated it", "another push to this environment is running; run this one again "
                       "when it has finished")


def with_release(releases: dict[str, Any] | None, service: str, options: PublishOptions,
                 index: dict[str, Any]) -> dict[str, Any]:
    """``releases`` (a parsed ``releases.json``, None when absent) with this build appended (replacing
    an older entry of the same build) and marked ``current``."""
    build = options.build
    entries = [e for e in (releases or {}).get("releases", []) if isinstance(e, dict) and e.get("build") != build]
    entries.append({"build": build, "time": index["time"], "index": release_key(service, build)})
    return {"service": service, "environment": options.environment, "current": build, "releases": entries}


def drop(build: str) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    """An ``update_releases`` change removing ``build`` (``without_build``)."""
    return lambda releases: without_build(releases, build) if releases is not None else None


def json_output(key: str, value: dict[str, Any], kind: str, service: str) -> Output:
    """``value`` as a JSON ``Output`` (2-space indent, trailing newline, UTF-8)."""
    return Output(key, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), kind, service)
