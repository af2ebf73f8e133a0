"""Planning a push: which objects a release stores (keys, encodings, headers) and, against what the
target already holds, what to do with each (layout: docs/layout.md).

Incremental: an object whose SHA-256 (of the uncompressed bytes) is already stored under the same
key is skipped; one whose bytes were stored by the service's previous release is copied inside the
target; everything else is uploaded (compressed through the ``CompressionCache``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bosco.assetset import AssetSet, Output, content_type, segment_problem
from bosco.config import AwsSection
from bosco.errors import PublishError
from bosco.publish import DEFAULT_BUILD, DEFAULT_CONCURRENCY
from bosco.publish.compress import Encoding, encodings_for
from bosco.publish.release_index import ServiceState, read_service_state, stored_entries
from bosco.publish.report import ACTIONS
from bosco.publish.target import Headers, StoredObject, Target, request_pool

# Kinds whose keys carry the build segment (<service>/<build>/...), docs/layout.md.
BUILD_KINDS = frozenset({"file", "bundle", "map", "fragment"})
# Publish order: a stage starts when every object of the previous one is stored.
STAGES = {"file": 0, "bundle": 0, "library": 0, "site": 0, "map": 1, "fragment": 2, "page": 2}
INDEX_STAGE = 3


@dataclass(frozen=True)
class PublishOptions:
    """How to publish. ``maxage`` (seconds) is the immutable ``Cache-Control`` max-age of keys with a
    build segment; ``short_cache_control`` is used for keys that change in place (no build segment,
    release indexes, and every key of the reused build ``default``); ``concurrency`` is the number
    of objects in flight; ``bundle_tag`` (a BUNDLE push) publishes only the services that have a
    bundle with that tag and keeps the entries of this build's existing release index that the
    push does not replace; ``base_url`` prefixes the links of the regenerated ``index.html``
    (``<aws.cdn>/<env>``, else ``/<env>``; ``""`` for root-relative ``/<key>``); ``force`` allows
    replacing objects of a build other than ``default`` that are already stored with other bytes."""

    environment: str
    build: str = DEFAULT_BUILD
    maxage: int = AwsSection.maxage
    short_cache_control: str = AwsSection.shortcache
    concurrency: int = DEFAULT_CONCURRENCY
    bundle_tag: str | None = None
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


def decide(items: list[Item], target: Target, states: dict[str, ServiceState], build: str,
           pool: ThreadPoolExecutor, listings: dict[str, dict[str, int]] | None = None) -> list[Step]:
    """Decide upload / copy / skip for ``items`` (reading the target only).

    What is stored under a key is known from listing the ``<service>/<build>/`` folders (those in
    ``listings``, prefix -> ``Target.list`` result, are not listed again; release indexes are
    looked up there when their folder is in it) plus the SHA-256 recorded in the build's release
    index, else (and always for a target with ``cheap_head``) from the object's own metadata (HEAD).
    A copy source is any object of the service's previous release holding the same bytes in the
    same encoding."""
    known = listings or {}
    folders = {f"{i.service}/{build}/" for i in items if i.service}
    to_list = sorted({f"{i.service}/{build}/" for i in items if i.kind in BUILD_KINDS and i.service} - set(known))
    covered = (folders & set(known)) | set(to_list)  # folders whose every key is in ``listed``
    listed: dict[str, int] = {}
    for found in [*(known[p] for p in folders & set(known)), *pool.map(target.list, to_list)]:
        listed.update(found)
    indexed = {s["key"]: o.get("sha256") for st in states.values() for o, s in stored_entries(st.current)}
    previous = {(o.get("sha256"), s.get("encoding", "")): (s["key"], s.get("size"))
                for st in states.values() for o, s in stored_entries(st.previous)}

    def lookup(item: Item) -> StoredObject | None:
        folder = f"{item.service}/{build}/"
        if item.service and item.key.startswith(folder) and folder in covered:
            if item.key not in listed:
                return None
            if item.key in indexed and not target.cheap_head:
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


def built_outputs(asset_set: AssetSet) -> list[Output]:
    """The outputs of ``asset_set`` but its own index page (``pipeline.INDEX_KEY``, rendered when it
    is read: a release regenerates ``index.html`` from the release indexes instead)."""
    from bosco.pipeline import INDEX_KEY

    return [asset_set.outputs[key] for key in asset_set.outputs if key != INDEX_KEY]


def released_outputs(asset_set: AssetSet, options: PublishOptions) -> list[Output]:
    """The outputs a push publishes: with ``options.bundle_tag``, only those of services that have a
    bundle with that tag (their libraries and site assets must not drag the others into a release),
    never ``index.html`` (it is regenerated from the release indexes, ``write_index_page``). Raises
    ``PublishError`` when no service has a bundle with that tag (a typo would otherwise publish
    empty releases)."""
    outputs = [o for o in built_outputs(asset_set) if o.kind != "page"]
    if options.bundle_tag is None:
        return outputs
    having = {s.name for s in asset_set.services if any(b.tag == options.bundle_tag for b in s.bundles)}
    if not having:
        raise PublishError(f"no selected service has a bundle tagged {options.bundle_tag!r}; nothing published",
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
        # one listing of the services' folders: a service without one has nothing to read (a first
        # push to an empty target reads nothing else)
        present = set(target.folders("")) if names else set()
        states = {s.name: s for s in pool.map(lambda n: read_service_state(target, n, options.build) if n in present
                                              else ServiceState(n, None, None, None), names)}
        steps = decide(items, target, states, options.build, pool,
                       {f"{n}/{options.build}/": {} for n in names if n not in present})
    check_immutable(steps, options)
    return ReleasePlan(options, target.description, asset_set, tuple(steps), states, provenance or {})
