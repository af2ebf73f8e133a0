"""The published ``index.html`` of an environment (layout: docs/layout.md), regenerated from the
current release of every service after every push and delete, so it links nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bosco.assetset import Output
from bosco.errors import PublishError
from bosco.fragments import PageService, render_index
from bosco.publish.compress import CompressionCache
from bosco.publish.plan import INDEX_STAGE, PublishOptions, items_for
from bosco.publish.release_index import RELEASES_ATTEMPTS, published_services
from bosco.publish.report import Result
from bosco.publish.target import Target

INDEX_PAGE = "index.html"


def index_page(indexes: list[dict[str, Any]], options: PublishOptions, duplicates: Sequence[Any] = ()) -> Output:
    """The ``index.html`` of an environment: every service of ``indexes`` (current release indexes)
    with its bundles, fragments, files, libraries and site assets linked under ``options.base_url``,
    and the ``duplicates`` section (text only). Titled ``bosco <env>/<build>`` when every service is
    at the same build, else ``bosco <env>``."""
    builds = {i.get("build") for i in indexes}
    title = f"bosco {options.environment}" + (f"/{builds.pop()}" if len(builds) == 1 else "")
    services = [PageService.of_release(i) for i in indexes]
    html = render_index(services, options.base_url, (), title, duplicates=duplicates)
    return Output(INDEX_PAGE, html.encode("utf-8"), "page")


def write_index_page(target: Target, options: PublishOptions, cache: CompressionCache,
                     pool: ThreadPoolExecutor, duplicates: Sequence[Any] = ()) -> list[Result]:
    """Regenerate ``index.html`` from the current release of every service (``index_page``), so it
    links exactly those releases: after every push, filtered or not, and every delete. The page's
    version is read before the releases and the page is written with ``Target.put_if``, so of
    two concurrent writers the last one has seen the other's releases. ``duplicates`` (the pushing
    workspace's ``duplicates.Duplicate`` findings) fill its duplicates section. With no release left,
    the page is deleted. Returns one ``Result`` per stored object. Raises ``PublishError`` after
    ``RELEASES_ATTEMPTS`` lost races."""
    for _ in range(RELEASES_ATTEMPTS):
        found = target.read_versioned(INDEX_PAGE)
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
