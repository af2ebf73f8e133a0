"""Carrying out a ``ReleasePlan`` against a target, in order (layout: docs/layout.md).

Order: single files, bundles, libraries and site assets; then source maps; then fragments; then
one release index ``<service>/<build>/release.json`` per service, once one listing per prefix has
confirmed that every object it names is stored; then the service's ``<service>/releases.json``
(which release is current); then ``index.html``, regenerated from the current release of every
service of the environment. Before a push changes any object of a build that already has an index,
that index is deleted first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from bosco.errors import PublishError
from bosco.publish.compress import IDENTITY, CompressionCache, Encoding
from bosco.publish.index_page import INDEX_PAGE, write_index_page
from bosco.publish.plan import BUILD_KINDS, INDEX_STAGE, ReleasePlan, Step, decide, items_for
from bosco.publish.release_index import (
    RELEASE_INDEX,
    RELEASES,
    drop,
    json_output,
    release_indexes,
    release_key,
    stored_entries,
    update_releases,
    with_release,
)
from bosco.publish.report import PublishReport, Result
from bosco.publish.target import SourceMissing, Target, request_pool

SHARED_FOLDERS = frozenset({"asset", "vendor"})  # top-level folders of library and site asset keys


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
            update_releases(target, name, drop(options.build), options.short_cache_control)
    stale = [release_key(n, options.build) for n in changed if plan.services[n].current]
    if stale:
        target.delete(stale)
    share_bodies(plan, cache)
    stages = sorted({s.item.stage for s in plan.steps})
    for stage in stages:  # every CPU compressing from the start, the bodies of the first stage first
        cache.prepare((s.item.data, s.item.sha256, s.item.encoding, s.item.asset_key) for s in plan.steps
                      if s.action == "upload" and s.item.stage == stage)
    with request_pool(options.concurrency) as pool:
        for stage in stages:
            _run([s for s in plan.steps if s.item.stage == stage], target, cache, pool, results, progress)
        now = datetime.now(timezone.utc)
        indexes = release_indexes(plan, results, now)
        listings = check_stored(target, indexes.values(), pool)
        outputs = [json_output(release_key(n, options.build), i, "index", n) for n, i in indexes.items()]
        items = [i for o in outputs for i in items_for(o, options, False, INDEX_STAGE)]
        _run(decide(items, target, plan.services, options.build, pool, listings), target, cache, pool, results,
             progress)

        def record(name: str) -> Result:
            data, changed = update_releases(target, name, lambda old: with_release(old, name, options, indexes[name]),
                                            options.short_cache_control, plan.services[name].releases is None)
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


def share_bodies(plan: ReleasePlan, cache: CompressionCache) -> None:
    """Start fetching the compressed bodies ``plan`` uploads from the shared cache, one pack per
    service (``CompressionCache.packs``; libraries and site assets together); call it as soon as
    the plan is known, so the fetches overlap what comes before the uploads. ``execute`` calls it
    too (a second call does nothing)."""
    groups: dict[str | None, list[tuple[bytes, str, Encoding, str]]] = {}
    for step in plan.steps:
        if step.action == "upload":
            item = step.item
            groups.setdefault(item.service, []).append((item.data, item.sha256, item.encoding, item.asset_key))
    cache.packs(groups.values())


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


def _listing_prefix(key: str) -> str:
    """The folder listed to confirm ``key``: ``<service>/<build>/`` for keys with a build segment,
    else the first folder (``asset/``, ``vendor/``); ``""`` for a key at the top."""
    parts = key.split("/")
    if len(parts) > 2 and parts[0] not in SHARED_FOLDERS:
        return f"{parts[0]}/{parts[1]}/"
    return f"{parts[0]}/" if len(parts) > 1 else ""


def check_stored(target: Target, indexes: Iterable[dict[str, Any]],
                 pool: ThreadPoolExecutor) -> dict[str, dict[str, int]]:
    """Confirm that every object the release ``indexes`` name is stored, with one listing per
    folder (``<service>/<build>/``, ``asset/``, ``vendor/``), before any index is written: an
    object deleted meanwhile (``s3delete --force`` of this build, a lifecycle rule) would otherwise
    give a release index naming missing objects. Returns the listings (prefix -> ``Target.list``
    result). Raises ``PublishError`` naming the missing keys."""
    wanted = {stored["key"] for index in indexes for _, stored in stored_entries(index)}
    prefixes = sorted({_listing_prefix(k) for k in wanted})
    listings = dict(zip(prefixes, pool.map(target.list, prefixes), strict=True))
    found: set[str] = {key for listed in listings.values() for key in listed}
    missing = sorted(wanted - found)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise PublishError(f"{len(missing)} object(s) of this push vanished from {target.description} before its "
                           f"release index was written ({', '.join(missing[:3])}{more}); no release index written",
                           "another command deleted them (s3delete?); run the same push again to store them")
    return listings


def dry_run_report(plan: ReleasePlan, cache: CompressionCache) -> PublishReport:
    """What ``execute`` would do with the content objects, without touching the target: stored sizes
    come from the target's listing, the previous release index or the compression cache (else None,
    and an upload of unknown compressed size counts its uncompressed size as sent: an upper bound)."""
    results = []
    for step in plan.steps:
        item = step.item
        size = step.size if step.size is not None else (
            len(item.data) if item.encoding == IDENTITY else cache.size(item.sha256, item.encoding, item.asset_key,
                                                                         len(item.data)))
        sent = (len(item.data) if size is None else size) if step.action == "upload" else 0
        results.append(Result(item.key, item.asset_key, item.kind, item.service, item.encoding.name, step.action,
                              len(item.data), size, sent))
    return PublishReport(plan.options.environment, plan.options.build, plan.target, tuple(results), dry_run=True)
