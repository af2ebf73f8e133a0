"""Releases: publishing an AssetSet to a target safely, in order and incrementally (layout:
docs/layout.md).

Order: single files, bundles, libraries and site assets; then source maps; then fragments; then
one release index ``<service>/<build>/release.json`` per service, once one listing per prefix has
confirmed that every object it names is stored; then the service's ``<service>/releases.json``
(which release is current); then ``index.html``, regenerated from the current release of every
service of the environment, so it links nothing else (also after ``s3delete``). A release index is
written only after every object of its service is stored, so its presence means the release is
complete; before a push changes any object of a build that already has an index, that index is
deleted first.

Incremental: an object whose SHA-256 (of the uncompressed bytes) is already stored under the same
key is skipped; one whose bytes were stored by the service's previous release is copied inside the
target; everything else is uploaded (compressed through the ``CompressionCache``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from bosco import __version__
from bosco.assetset import AssetSet, BundleReport, Output, content_type, is_segment, segment_problem, sri
from bosco.errors import PublishError
from bosco.fragments import PageService, render_index
from bosco.publish.compress import IDENTITY, CompressionCache, Encoding, encodings_for
from bosco.publish.target import Headers, SourceMissing, StoredObject, Target

DEFAULT_BUILD = "default"
RELEASE_INDEX = "release.json"
RELEASES = "releases.json"
INDEX_PAGE = "index.html"
SHARED_FOLDERS = frozenset({"asset", "vendor"})  # top-level folders of library and site asset keys
SHARED_KINDS = ("library", "site")
DEFAULT_MAXAGE = 31536000
SHORT_CACHE_CONTROL = "public, max-age=60, must-revalidate"
DEFAULT_CONCURRENCY = min(32, (os.cpu_count() or 1) * 8)
# Kinds whose keys carry the build segment (<service>/<build>/...), docs/layout.md.
BUILD_KINDS = frozenset({"file", "bundle", "map", "fragment"})
# Publish order: a stage starts when every object of the previous one is stored.
STAGES = {"file": 0, "bundle": 0, "library": 0, "site": 0, "map": 1, "fragment": 2, "page": 2}
INDEX_STAGE = 3
RELEASES_ATTEMPTS = 5  # conditional writes of releases.json lost to other pushes before giving up
ACTIONS = ("upload", "copy", "skip")


@dataclass(frozen=True)
class PublishOptions:
    """How to publish. ``maxage`` (seconds) is the immutable ``Cache-Control`` max-age of keys with a
    build segment; ``short_cache_control`` is used for keys that change in place (no build segment,
    release indexes, and every key of the reused build ``default``); ``concurrency`` is the number
    of objects in flight; ``bundle`` (a BUNDLE push: the tag) publishes only the services that have
    a bundle with that tag and keeps the entries of this build's existing release index that the
    push does not replace; ``base_url`` prefixes the links of the regenerated ``index.html``
    (``<aws.cdn>/<env>``, else ``/<env>``; ``""`` for root-relative ``/<key>``); ``force`` allows
    replacing objects of a build other than ``default`` that are already stored with other bytes."""

    environment: str
    build: str = DEFAULT_BUILD
    maxage: int = DEFAULT_MAXAGE
    short_cache_control: str = SHORT_CACHE_CONTROL
    concurrency: int = DEFAULT_CONCURRENCY
    bundle: str | None = None
    base_url: str = ""
    force: bool = False


@dataclass(frozen=True)
class Item:
    """One object to store: ``key`` is the target key (asset key plus the encoding suffix), ``data``
    the uncompressed bytes, ``stage`` its place in the publish order."""

    key: str
    asset_key: str
    kind: str
    service: str | None
    encoding: Encoding
    data: bytes
    sha256: str
    headers: Headers
    stage: int


@dataclass(frozen=True)
class Step:
    """What to do with one item: ``upload``, ``copy`` (from ``source``) or ``skip``. ``size`` is the
    stored size in bytes when it is known without compressing (skip and copy); ``replaces`` is True
    when an object with other (or unknown) bytes is already stored at the key."""

    item: Item
    action: str
    source: str | None = None
    size: int | None = None
    replaces: bool = False


@dataclass(frozen=True)
class Result:
    """What was done (or, in a dry run, would be done) with one object. ``size`` is the stored size
    in bytes (None when unknown in a dry run), ``sent`` the bytes uploaded."""

    key: str
    asset_key: str
    kind: str
    service: str | None
    encoding: str
    action: str
    raw_size: int
    size: int | None
    sent: int = 0


@dataclass(frozen=True)
class ServiceState:
    """What the target holds for one service before the push: ``current`` is this build's existing
    release index, ``previous`` the index of the service's most recent other release, ``releases``
    the parsed ``releases.json`` (each None when absent)."""

    name: str
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    releases: dict[str, Any] | None


@dataclass(frozen=True)
class ReleasePlan:
    """The decided content steps of a push (stages 0–2, in order) and the per-service state the
    release indexes are built from; ``provenance`` maps a service to the extra keys of its release
    index (``provenance.Provenance.record``: ``git`` and ``sources``)."""

    options: PublishOptions
    target: str
    asset_set: AssetSet
    steps: tuple[Step, ...]
    services: dict[str, ServiceState]
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of objects per action (``upload``, ``copy``, ``skip``)."""
        return {a: sum(1 for s in self.steps if s.action == a) for a in ACTIONS}


@dataclass(frozen=True)
class PublishReport:
    """The outcome of a push, in publish order."""

    environment: str
    build: str
    target: str
    results: tuple[Result, ...]
    dry_run: bool = False

    def totals(self) -> dict[str, int]:
        """``objects``, ``upload``, ``copy``, ``skip`` counts, ``raw_bytes`` (uncompressed bytes of the
        distinct assets, each counted once however many encodings are stored) and ``sent_bytes``
        (bytes uploaded). A dry run adds ``estimated_objects``: uploads whose compressed size is not
        cached, counted in ``sent_bytes`` at their uncompressed size (an upper bound)."""
        totals = {a: sum(1 for r in self.results if r.action == a) for a in ACTIONS}
        totals["objects"] = len(self.results)
        totals["raw_bytes"] = sum({r.asset_key: r.raw_size for r in self.results}.values())
        totals["sent_bytes"] = sum(r.sent for r in self.results)
        if self.dry_run:
            totals["estimated_objects"] = sum(1 for r in self.results if r.action == "upload" and r.size is None)
        return totals

    def bundles(self) -> list[dict[str, Any]]:
        """One row per bundle: ``key``, ``raw`` size and ``gzip``/``br`` stored sizes (None when not
        stored in that form or unknown) and ``action``: ``upload`` if any of its objects was uploaded,
        else ``copy`` if any was copied, else ``skip``."""
        rows: dict[str, dict[str, Any]] = {}
        for r in self.results:
            if r.kind != "bundle":
                continue
            row = rows.setdefault(r.asset_key, {"key": r.asset_key, "raw": r.raw_size, "gzip": None, "br": None,
                                                "actions": set()})
            row[r.encoding or "raw"] = r.size if r.encoding else r.raw_size
            row["actions"].add(r.action)
        for row in rows.values():
            actions = row.pop("actions")
            row["action"] = next(a for a in ACTIONS if a in actions)
        return list(rows.values())

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready object (what ``--json`` prints)."""
        return {
            "ok": True, "environment": self.environment, "build": self.build, "target": self.target,
            "dry_run": self.dry_run, "bundles": self.bundles(), "totals": self.totals(),
            "objects": [{"key": r.key, "action": r.action, "encoding": r.encoding or None, "size": r.size,
                         "sent": r.sent} for r in self.results],
        }


def check_name(value: str, what: str) -> str:
    """Return ``value`` when it is usable as one key segment (``assetset.is_segment``: a service or
    build name), else raise ``PublishError``."""
    problem = segment_problem(value, what)
    if problem:
        raise PublishError(problem, f"use another {what}")
    return value


def cache_control(kind: str, options: PublishOptions) -> str:
    """``Cache-Control`` of an object of ``kind``: ``public, max-age=<maxage>, immutable`` for kinds
    whose keys carry a build segment, unless the build is the reused name ``default``; else the
    configured short, revalidating value (those keys change in place)."""
    if kind in BUILD_KINDS and options.build != DEFAULT_BUILD:
        return f"public, max-age={options.maxage}, immutable"
    return options.short_cache_control


def items_for(output: Output, options: PublishOptions, compress: bool, stage: int | None = None) -> list[Item]:
    """The objects storing ``output``: gzip at its key and brotli at ``<key>.br`` when the target
    compresses and bosco's table marks the type compressible, else the raw bytes at its key."""
    stage = STAGES[output.kind] if stage is None else stage
    return [
        Item(output.key + enc.suffix, output.key, output.kind, output.service, enc, output.data, output.sha256,
             Headers(content_type(output.key), cache_control(output.kind, options), enc.name, output.sha256), stage)
        for enc in encodings_for(output.key, compress)
    ]


def _read_json(target: Target, key: str) -> dict[str, Any] | None:
    return _parse_json(target.read(key))


def _parse_json(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _release_key(service: str, build: str) -> str:
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
    found = [target.head(_release_key(service, b)) for b in target.folders(f"{service}/") if b != build]
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
    releases = _read_json(target, f"{service}/{RELEASES}")
    previous_build = _previous_build(target, service, releases, build)
    previous = _read_json(target, _release_key(service, previous_build)) if previous_build else None
    return ServiceState(service, _read_json(target, _release_key(service, build)), previous, releases)


def _stored_entries(index: dict[str, Any] | None) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    if not index:
        return
    for obj in index.get("objects", []):
        if isinstance(obj, dict):
            for stored in obj.get("stored", []):
                if isinstance(stored, dict):
                    yield obj, stored


def decide(items: list[Item], target: Target, states: dict[str, ServiceState], build: str,
           pool: ThreadPoolExecutor) -> list[Step]:
    """Decide upload / copy / skip for ``items`` (reading the target only).

    What is stored under a key is known from listing the ``<service>/<build>/`` folders plus the
    SHA-256 recorded in the build's release index, else from the object's own metadata (HEAD).
    A copy source is any object of the service's previous release holding the same bytes in the
    same encoding."""
    prefixes = sorted({f"{i.service}/{build}/" for i in items if i.kind in BUILD_KINDS and i.service})
    listed: dict[str, int] = {}
    for found in pool.map(target.list, prefixes):
        listed.update(found)
    indexed = {s["key"]: o.get("sha256") for st in states.values() for o, s in _stored_entries(st.current)}
    previous = {(o.get("sha256"), s.get("encoding", "")): (s["key"], s.get("size"))
                for st in states.values() for o, s in _stored_entries(st.previous)}

    def lookup(item: Item) -> StoredObject | None:
        if item.kind in BUILD_KINDS and item.service:
            if item.key not in listed:
                return None
            if item.key in indexed:
                return StoredObject(item.key, listed[item.key], indexed[item.key])
        return target.head(item.key)

    steps = []
    for item, stored in zip(items, pool.map(lookup, items), strict=True):
        source = previous.get((item.sha256, item.encoding.name))
        if stored is not None and stored.sha256 == item.sha256:
            steps.append(Step(item, "skip", size=stored.size))
        elif source is not None and source[0] != item.key:
            steps.append(Step(item, "copy", source[0], source[1] if isinstance(source[1], int) else None,
                              replaces=stored is not None))
        else:
            steps.append(Step(item, "upload", replaces=stored is not None))
    return steps


def check_immutable(steps: list[Step], options: PublishOptions) -> None:
    """Refuse a push that would replace objects of an already published build (keys with a build
    segment, ``Cache-Control: immutable``: CDNs and browsers keep the old bytes for a year, and SRI
    in new fragments would reject them). The reused build ``default`` changes in place, and
    ``options.force`` allows it. Raises ``PublishError`` naming the first keys."""
    if options.build == DEFAULT_BUILD or options.force:
        return
    replaced = sorted({s.item.asset_key for s in steps if s.replaces and s.item.kind in BUILD_KINDS})
    if replaced:
        more = f" and {len(replaced) - 3} more" if len(replaced) > 3 else ""
        raise PublishError(f"build {options.build} is already published with other bytes at "
                           f"{', '.join(replaced[:3])}{more}; its objects are immutable, nothing published",
                           "publish a new build number (-b), or pass --force to replace them anyway")


@contextmanager
def request_pool(concurrency: int) -> Iterator[ThreadPoolExecutor]:
    """Threads for ``concurrency`` target requests at a time. Leaving by Ctrl-C (SIGTERM) cancels
    the requests not started and does not wait for those in flight: an object is stored whole or
    not at all, and no release index is written after an interrupted stage."""
    pool = ThreadPoolExecutor(concurrency)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=interrupted)


def released_outputs(asset_set: AssetSet, options: PublishOptions) -> list[Output]:
    """The outputs a push publishes: with ``options.bundle``, only those of services that have a
    bundle with that tag (their libraries and site assets must not drag the others into a release),
    never ``index.html`` (it is regenerated from the release indexes, ``write_index_page``). Raises
    ``PublishError`` when no service has a bundle with that tag (a typo would otherwise publish
    empty releases)."""
    outputs = [o for o in asset_set.outputs.values() if o.kind != "page"]
    if options.bundle is None:
        return outputs
    having = {s.name for s in asset_set.services if any(b.tag == options.bundle for b in s.bundles)}
    if not having:
        raise PublishError(f"no selected service has a bundle tagged {options.bundle!r}; nothing published",
                           "BUNDLE is a tag under assets.<type> in a bosco-service.json (e.g. js.top -> top)")
    return [o for o in outputs if o.service is None or o.service in having]


def plan_release(asset_set: AssetSet, target: Target, options: PublishOptions,
                 provenance: dict[str, dict[str, Any]] | None = None) -> ReleasePlan:
    """Decide what a push of ``asset_set`` to ``target`` does, reading the target only.
    ``provenance`` (service -> extra release index keys) is recorded in the release indexes.

    Raises ``PublishError`` listing every problem when the asset set has errors (nothing may be
    published then), when a BUNDLE push names a tag no service has, or when the target cannot be
    read."""
    if asset_set.errors:
        raise PublishError(f"{len(asset_set.errors)} error(s), nothing published: " + "; ".join(asset_set.errors),
                           "fix the errors and run again")
    check_name(options.build, "build")
    outputs = released_outputs(asset_set, options)
    items = [i for o in outputs for i in items_for(o, options, target.compress)]
    items.sort(key=lambda i: i.stage)
    names = sorted({o.service for o in outputs if o.service})
    with request_pool(options.concurrency) as pool:
        states = {s.name: s for s in pool.map(lambda n: read_service_state(target, n, options.build), names)}
        steps = decide(items, target, states, options.build, pool)
    check_immutable(steps, options)
    return ReleasePlan(options, target.description, asset_set, tuple(steps), states, provenance or {})


def _apply(step: Step, target: Target, cache: CompressionCache) -> Result:
    item = step.item
    base = Result(item.key, item.asset_key, item.kind, item.service, item.encoding.name, step.action,
                  len(item.data), step.size)
    if step.action == "skip":
        return base
    if step.action == "copy" and step.source is not None:
        try:
            target.copy(step.source, item.key, item.headers)
            return base
        except SourceMissing:
            pass
    body = cache.body(item.data, item.sha256, item.encoding, item.asset_key)
    target.put(item.key, body, item.headers)
    return replace(base, action="upload", size=len(body), sent=len(body))


def _run(steps: list[Step], target: Target, cache: CompressionCache, pool: ThreadPoolExecutor,
         results: list[Result], progress: Callable[[Result], None] | None) -> None:
    """Apply ``steps`` concurrently; on the first failure cancel what has not started, let running
    ones finish, and raise ``PublishError`` naming the failed key."""
    futures: dict[Future[Result], Step] = {pool.submit(_apply, s, target, cache): s for s in steps}
    pending = set(futures)
    try:
        _collect(futures, pending, results, progress)
    except BaseException:  # a failure or Ctrl-C: objects not started yet are never started
        for future in futures:
            future.cancel()
        raise


def _collect(futures: dict[Future[Result], Step], pending: set[Future[Result]], results: list[Result],
             progress: Callable[[Result], None] | None) -> None:
    while pending:
        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        for future in done:
            if future.exception() is None:
                results.append(future.result())
                if progress:
                    progress(future.result())
        if failed:
            for future in pending:
                future.cancel()
            for future in wait(pending).done:
                if not future.cancelled() and future.exception() is None:
                    results.append(future.result())
            exc = failed[0].exception()
            hint = exc.hint if isinstance(exc, PublishError) else None
            what = str(exc) if isinstance(exc, PublishError) else f"{futures[failed[0]].item.key}: {exc!r}"
            raise PublishError(f"{what}; stopped after storing {len(results)} object(s), "
                               "no release index written for the unfinished services",
                               hint or "run the same push again to complete the release") from exc


def _index_time(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_index(service: str, plan: ReleasePlan, results: list[Result], now: datetime) -> dict[str, Any]:
    """The release index of ``service``: bosco version, environment, build, time (UTC) and, per asset
    key, its kind, SHA-256, size, content type, stored objects (key, encoding, size) and, for
    bundles, the SRI ``sha384-…`` value. ``time`` keeps the existing index's value when nothing else
    changed, so an unchanged release re-publishes byte-identical indexes."""
    stored: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        stored.setdefault(r.asset_key, []).append({"key": r.key, "encoding": r.encoding, "size": r.size})
    objects = []
    for output in plan.asset_set.outputs.values():
        if output.service != service:
            continue
        entry: dict[str, Any] = {"key": output.key, "kind": output.kind, "sha256": output.sha256,
                                 "size": len(output.data), "contentType": content_type(output.key),
                                 "stored": sorted(stored.get(output.key, []), key=lambda s: s["key"])}
        if output.kind == "bundle":
            entry["sri"] = sri(output.data)
            if plan.provenance:
                entry["sources"] = list(output.sources)
        objects.append(entry)
    current = plan.services[service].current
    if plan.options.bundle is not None and current:
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
    if plan.options.bundle is not None and current:
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
                    short_cache_control: str) -> tuple[bytes | None, bool]:
    """Read ``<service>/releases.json``, apply ``change`` (parsed record or None -> new record, None
    to delete the file) and write the result only if nobody changed the file since it was read
    (``Target.put_if``: S3 conditional writes); when another push did, read and apply again, so
    concurrent pushes never drop each other's entries. Returns the stored bytes (None when there is
    no file) and whether they changed. Raises ``PublishError`` after ``RELEASES_ATTEMPTS`` lost races.
    Deleting the file (the last release deleted) is not conditional."""
    key = f"{service}/{RELEASES}"
    for _ in range(RELEASES_ATTEMPTS):
        found = target.read_tagged(key)
        record = change(_parse_json(found[0] if found else None))
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
    entries.append({"build": build, "time": index["time"], "index": _release_key(service, build)})
    return {"service": service, "environment": options.environment, "current": build, "releases": entries}


def _drop(build: str) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    return lambda releases: without_build(releases, build) if releases is not None else None


def json_output(key: str, value: dict[str, Any], kind: str, service: str) -> Output:
    """``value`` as a JSON ``Output`` (2-space indent, trailing newline, UTF-8)."""
    return Output(key, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), kind, service)


def execute(plan: ReleasePlan, target: Target, cache: CompressionCache,
            progress: Callable[[Result], None] | None = None) -> PublishReport:
    """Carry out ``plan`` against ``target``: a changed build is first dropped from its service's
    ``releases.json`` (so it never points at a missing index) and its stale release index deleted,
    stages run in order (objects inside a stage concurrently), then each service's release index
    (once ``check_stored`` confirmed its objects) and ``releases.json`` are written, and
    ``index.html`` is regenerated (``write_index_page``). Raises ``PublishError`` on a permanent
    failure, after cancelling work not yet started and letting running work finish, or when an
    object vanished before its index was written; no index is written then."""
    options = plan.options
    results: list[Result] = []
    changed = sorted({s.item.service for s in plan.steps if s.action != "skip" and s.item.kind in BUILD_KINDS
                      and s.item.service})
    for name in changed:
        releases = plan.services[name].releases
        if releases and options.build in {e.get("build") for e in releases.get("releases", []) if isinstance(e, dict)}:
            update_releases(target, name, _drop(options.build), options.short_cache_control)
    stale = [_release_key(n, options.build) for n in changed if plan.services[n].current]
    if stale:
        target.delete(stale)
    with request_pool(options.concurrency) as pool:
        for stage in sorted({s.item.stage for s in plan.steps}):
            _run([s for s in plan.steps if s.item.stage == stage], target, cache, pool, results, progress)
        now = datetime.now(timezone.utc)
        indexes = {n: release_index(n, plan, results, now) for n in plan.services}
        check_stored(target, indexes.values(), pool)
        outputs = [json_output(_release_key(n, options.build), i, "index", n) for n, i in indexes.items()]
        items = [i for o in outputs for i in items_for(o, options, False, INDEX_STAGE)]
        _run(decide(items, target, plan.services, options.build, pool), target, cache, pool, results, progress)

        def record(name: str) -> Result:
            data, changed = update_releases(target, name, lambda old: with_release(old, name, options, indexes[name]),
                                            options.short_cache_control)
            size = len(data or b"")
            key = f"{name}/{RELEASES}"
            return Result(key, key, "index", name, "", "upload" if changed else "skip", size, size,
                          size if changed else 0)

        for result in [*pool.map(record, indexes), *write_index_page(target, options, cache, pool,
                                                                          plan.asset_set.duplicates)]:
            results.append(result)
            if progress:
                progress(result)
    order = {s.item.key: n for n, s in enumerate(plan.steps)}  # publish order, not completion order
    last = (RELEASE_INDEX, RELEASES, INDEX_PAGE)  # after the content, in the order they are written
    results.sort(key=lambda r: (order.get(r.key, len(order)), next(
        (n for n, name in enumerate(last) if r.key.removesuffix(".br").rsplit("/", 1)[-1] == name), 0), r.key))
    return PublishReport(options.environment, options.build, plan.target, tuple(results))


def _listing_prefix(key: str) -> str:
    """The folder listed to confirm ``key``: ``<service>/<build>/`` for keys with a build segment,
    else the first folder (``asset/``, ``vendor/``); ``""`` for a key at the top."""
    parts = key.split("/")
    if len(parts) > 2 and parts[0] not in SHARED_FOLDERS:
        return f"{parts[0]}/{parts[1]}/"
    return f"{parts[0]}/" if len(parts) > 1 else ""


def check_stored(target: Target, indexes: Iterable[dict[str, Any]], pool: ThreadPoolExecutor) -> None:
    """Confirm that every object the release ``indexes`` name is stored, with one listing per
    folder (``<service>/<build>/``, ``asset/``, ``vendor/``), before any index is written: an
    object deleted meanwhile (``s3delete --force`` of this build, a lifecycle rule) would otherwise
    give a release index naming missing objects. Raises ``PublishError`` naming the missing keys."""
    wanted = {stored["key"] for index in indexes for _, stored in _stored_entries(index)}
    prefixes = sorted({_listing_prefix(k) for k in wanted})
    found: set[str] = set()
    for listed in pool.map(target.list, prefixes):
        found.update(listed)
    missing = sorted(wanted - found)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise PublishError(f"{len(missing)} object(s) of this push vanished from {target.description} before its "
                           f"release index was written ({', '.join(missing[:3])}{more}); no release index written",
                           "another command deleted them (s3delete?); run the same push again to store them")


def read_release_index(target: Target, service: str, build: str) -> dict[str, Any] | None:
    """The parsed ``<service>/<build>/release.json``, or None when there is none (or it names
    another service)."""
    index = _read_json(target, _release_key(service, build))
    return index if index and index.get("service") == service else None


def _current_index(target: Target, name: str) -> dict[str, Any] | None:
    """The release index ``releases.json`` of folder ``name`` marks as current, or None."""
    releases = _read_json(target, f"{name}/{RELEASES}")
    current = releases.get("current") if releases else None
    if not isinstance(current, str) or not is_segment(current):
        return None
    return read_release_index(target, name, current)


def published_services(target: Target, pool: ThreadPoolExecutor) -> list[dict[str, Any]]:
    """The current release index of every service of the target (a top-level folder whose
    ``releases.json`` names a current release with an index), sorted by service name."""
    names = sorted(n for n in target.folders("") if is_segment(n))
    return [index for index in pool.map(lambda n: _current_index(target, n), names) if index]


def index_page(indexes: list[dict[str, Any]], options: PublishOptions, duplicates: Sequence[Any] = ()) -> Output:
    """The ``index.html`` of an environment: every service of ``indexes`` (current release indexes)
    with its bundles, fragments, files, libraries and site assets linked under ``options.base_url``,
    and the ``duplicates`` section (text only). Titled ``bosco <env>/<build>`` when every service is
    at the same build, else ``bosco <env>``."""
    builds = {i.get("build") for i in indexes}
    title = f"bosco {options.environment}" + (f"/{builds.pop()}" if len(builds) == 1 else "")
    services = [PageService(
        i["service"],
        tuple(BundleReport(b.get("type", ""), b.get("tag", ""), b.get("key"), tuple(b.get("files", [])),
                           b.get("fragment"), sources=tuple(b.get("sources", [])))
              for b in i.get("bundles", []) if isinstance(b, dict)),
        tuple(o["key"] for o in i.get("objects", []) if isinstance(o, dict) and o.get("kind") in SHARED_KINDS),
        git=i["git"] if isinstance(i.get("git"), dict) else None,
    ) for i in indexes]
    html = render_index(services, options.base_url, (), title, duplicates=duplicates)
    return Output(INDEX_PAGE, html.encode("utf-8"), "page")


def write_index_page(target: Target, options: PublishOptions, cache: CompressionCache,
                     pool: ThreadPoolExecutor, duplicates: Sequence[Any] = ()) -> list[Result]:
    """Regenerate ``index.html`` from the current release of every service (``index_page``), so it
    links exactly those releases: after every push, filtered or not, and every delete. The page's
    version tag is read before the releases and the page is written with ``Target.put_if``, so of
    two concurrent writers the last one has seen the other's releases. ``duplicates`` (the pushing
    workspace's ``duplicates.Duplicate`` findings) fill its duplicates section. With no release left,
    the page is deleted. Returns one ``Result`` per stored object. Raises ``PublishError`` after
    ``RELEASES_ATTEMPTS`` lost races."""
    for _ in range(RELEASES_ATTEMPTS):
        found = target.read_tagged(INDEX_PAGE)
        indexes = published_services(target, pool)
        items = items_for(index_page(indexes, options, duplicates), options, target.compress, INDEX_STAGE)
        if not indexes:
            target.delete([i.key for i in items])
            return []
        stored = target.head(INDEX_PAGE) if found else None
        raw = len(items[0].data)
        if stored is not None and stored.sha256 == items[0].sha256:
            return [Result(i.key, i.asset_key, i.kind, None, i.encoding.name, "skip", raw, None) for i in items]
        bodies = {i.key: cache.body(i.data, i.sha256, i.encoding, i.asset_key) for i in items}
        for item in items:
            if item.key != INDEX_PAGE:
                target.put(item.key, bodies[item.key], item.headers)
        main = next(i for i in items if i.key == INDEX_PAGE)
        if target.put_if(INDEX_PAGE, bodies[INDEX_PAGE], main.headers, found[1] if found else None):
            return [Result(i.key, i.asset_key, i.kind, None, i.encoding.name, "upload", raw, len(bodies[i.key]),
                           len(bodies[i.key])) for i in items]
    raise PublishError(f"{target.description}{INDEX_PAGE} was changed by another writer {RELEASES_ATTEMPTS} times "
                       "while this command regenerated it", "another push or delete is running; run this one again "
                       "when it has finished")


def dry_run_report(plan: ReleasePlan, cache: CompressionCache) -> PublishReport:
    """What ``execute`` would do with the content objects, without touching the target: stored sizes
    come from the target's listing, the previous release index or the compression cache (else None,
    and an upload of unknown compressed size counts its uncompressed size as sent: an upper bound)."""
    results = []
    for step in plan.steps:
        item = step.item
        size = step.size if step.size is not None else (
            len(item.data) if item.encoding == IDENTITY else cache.size(item.sha256, item.encoding, item.asset_key))
        sent = (len(item.data) if size is None else size) if step.action == "upload" else 0
        results.append(Result(item.key, item.asset_key, item.kind, item.service, item.encoding.name, step.action,
                              len(item.data), size, sent))
    return PublishReport(plan.options.environment, plan.options.build, plan.target, tuple(results), dry_run=True)


@dataclass(frozen=True)
class DeletePlan:
    """The objects of one release (``<service>/<build>/`` and nothing else) and whether
    ``releases.json`` marks it current."""

    service: str
    build: str
    keys: tuple[str, ...]
    current: bool
    releases: dict[str, Any] | None = None


def plan_delete(target: Target, service: str, build: str) -> DeletePlan:
    """List the objects of release ``service``/``build`` (the folder ``<service>/<build>/`` with its
    trailing ``/``, so build ``1`` never matches ``10``). Raises ``PublishError`` for a name that is
    not one key segment."""
    check_name(service, "service")
    check_name(build, "build")
    keys = tuple(sorted(target.list(f"{service}/{build}/")))
    releases = _read_json(target, f"{service}/{RELEASES}")
    return DeletePlan(service, build, keys, bool(releases and releases.get("current") == build), releases)


def refuse_current(plans: list[DeletePlan], force: bool) -> None:
    """Raise ``PublishError`` (nothing deleted) naming the releases of ``plans`` that ``releases.json``
    marks as current, unless ``force``."""
    refused = [p for p in plans if p.current and not force]
    if refused:
        raise PublishError(f"{', '.join(f'{p.service}/{p.build}' for p in refused)} is the current release in "
                           f"{RELEASES}; nothing deleted", "publish another build first, or pass --force to delete "
                           "it anyway")


def delete_releases(target: Target, plans: list[DeletePlan], options: PublishOptions, cache: CompressionCache,
                    force: bool = False) -> list[str]:
    """Delete the releases of ``plans`` so that nothing published ever names a missing object: first
    each build leaves its ``releases.json`` (current becomes the newest remaining release; the file
    is removed when none remains), then ``index.html`` is regenerated from the remaining current
    releases (``write_index_page``, with ``options.base_url`` and ``options.short_cache_control``),
    then each release index and, last, the objects are deleted. Returns the deleted keys. Raises
    ``PublishError`` (nothing deleted) when a release is current and ``force`` is False."""
    refuse_current(plans, force)
    for plan in plans:
        if plan.releases is not None:
            update_releases(target, plan.service, _drop(plan.build), options.short_cache_control)
    with ThreadPoolExecutor(options.concurrency) as pool:
        write_index_page(target, options, cache, pool)
    deleted: list[str] = []
    for plan in plans:
        index = _release_key(plan.service, plan.build)
        target.delete([k for k in plan.keys if k == index])
        target.delete([k for k in plan.keys if k != index])
        deleted += plan.keys
    return deleted
