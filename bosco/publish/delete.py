"""Deleting releases (``s3delete``) so that nothing published ever names a missing object
(layout: docs/layout.md)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bosco.errors import PublishError
from bosco.publish.compress import CompressionCache
from bosco.publish.index_page import write_index_page
from bosco.publish.plan import PublishOptions, check_name
from bosco.publish.release_index import RELEASES, drop, read_json, release_key, update_releases
from bosco.publish.target import Target


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
    releases = read_json(target, f"{service}/{RELEASES}")
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
            update_releases(target, plan.service, drop(plan.build), options.short_cache_control)
    with ThreadPoolExecutor(options.concurrency) as pool:
        write_index_page(target, options, cache, pool)
    deleted: list[str] = []
    for plan in plans:
        index = release_key(plan.service, plan.build)
        target.delete([k for k in plan.keys if k == index])
        target.delete([k for k in plan.keys if k != index])
        deleted += plan.keys
    return deleted
