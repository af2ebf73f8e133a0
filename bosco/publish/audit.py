"""``bosco verify``: re-read a published release and compare it with its release index.

For every object of every selected ``<service>/<build>/release.json``, each stored form (gzip at
the key, brotli at ``<key>.br``, raw bytes otherwise) must exist, decode to the recorded SHA-256,
and carry the recorded ``Content-Type``, its ``Content-Encoding`` and the ``Cache-Control`` the
publish rules give it (``plan.cache_control``). With a CDN URL, every object is also fetched
over HTTP as a browser would (``Accept-Encoding: br``, then ``gzip``), decoded by the
``Content-Encoding`` the CDN answers with (RFC 9110 §8.4) and compared the same way.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bosco.errors import PublishError
from bosco.fragments import url_for
from bosco.publish.compress import BROTLI, GZIP, IDENTITY, decode
from bosco.publish.plan import PublishOptions, cache_control
from bosco.publish.release_index import published_services, read_release_index
from bosco.publish.target import Target

ENCODINGS = {e.name: e for e in (IDENTITY, GZIP, BROTLI)}
HTTP_TIMEOUT = 30  # seconds per CDN request
# (key, what a client fetches) -> (body, headers) or None when missing; headers use HTTP names.
Fetch = Callable[[str], tuple[bytes, dict[str, str]] | None]


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify``: ``releases`` the ``service/build`` names checked, ``checked`` the
    number of stored objects (and CDN responses) compared, ``differences`` one readable line each."""

    environment: str
    releases: tuple[str, ...]
    checked: int
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        """What ``bosco verify --json`` prints."""
        return {"ok": self.ok, "environment": self.environment, "releases": list(self.releases),
                "checked": self.checked, "differences": list(self.differences)}


def _compare(where: str, found: tuple[bytes, dict[str, str]] | None, encoding: str, entry: dict[str, Any],
             expected_cache: str | None) -> list[str]:
    """Differences between one fetched object (or CDN response) and its release-index ``entry``."""
    if found is None:
        return [f"{where}: missing"]
    body, headers = found
    problems = []
    if headers.get("content-encoding", "") != encoding:
        problems.append(f"{where}: Content-Encoding is {headers.get('content-encoding', '') or 'none'!r}, "
                        f"expected {encoding or 'none'!r}")
    data = decode(body, ENCODINGS.get(headers.get("content-encoding", ""), IDENTITY))
    if data is None:
        problems.append(f"{where}: body is not valid {headers.get('content-encoding')}")
    elif hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        problems.append(f"{where}: decodes to SHA-256 {hashlib.sha256(data).hexdigest()}, release.json records "
                        f"{entry.get('sha256')}")
    if headers.get("content-type") != entry.get("contentType"):
        problems.append(f"{where}: Content-Type is {headers.get('content-type')!r}, release.json records "
                        f"{entry.get('contentType')!r}")
    if expected_cache is not None and headers.get("cache-control") != expected_cache:
        problems.append(f"{where}: Cache-Control is {headers.get('cache-control')!r}, expected {expected_cache!r}")
    return problems


def http_fetch(url: str, accept_encoding: str) -> tuple[bytes, dict[str, str]] | None:
    """GET ``url`` with ``Accept-Encoding``; the body as sent (still encoded) and lower-cased headers,
    None on 404/403. Raises ``PublishError`` when the server cannot be reached or answers an error."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": accept_encoding})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 (http(s) only)
            return response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        if exc.code in (403, 404):
            return None
        raise PublishError(f"{url}: HTTP {exc.code} {exc.reason}", "check aws.cdn") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PublishError(f"{url}: cannot fetch ({getattr(exc, 'reason', exc)})", "check aws.cdn") from exc


def verify(target: Target, fetch: Fetch, options: PublishOptions, build: str | None = None,
           cdn_base: str | None = None, concurrency: int = 8) -> VerifyReport:
    """Verify the releases of ``target``: ``build`` of every service that has it, else every
    service's current release (``releases.json``). ``fetch(key)`` reads one stored object with its
    headers (``S3Target.fetch``); ``options`` gives the environment and the Cache-Control rules
    (``aws.maxage``, ``aws.shortcache``); ``cdn_base`` (``<aws.cdn>/<env>``) adds the HTTP check.
    Raises ``PublishError`` when there is no such release."""
    with ThreadPoolExecutor(concurrency) as pool:
        if build is None:
            indexes = published_services(target, pool)
        else:
            names = sorted(target.folders(""))
            indexes = [i for i in pool.map(lambda n: read_release_index(target, n, build), names) if i]
        if not indexes:
            what = f"no release of build {build}" if build else "no current release"
            raise PublishError(f"{what} found in {target.description}",
                               "check -e and -b; releases are <env>/<service>/<build>/release.json")
        checks: list[Callable[[], list[str]]] = []
        for index in indexes:
            expected = cache_control_for(options, str(index.get("build")))
            for entry in index.get("objects", []):
                if not isinstance(entry, dict):
                    continue
                cache = expected(str(entry.get("kind")))
                for stored in entry.get("stored", []):
                    checks.append(_stored_check(fetch, stored, entry, cache))
                if cdn_base:
                    for accept in ("br", "gzip"):
                        checks.append(_cdn_check(url_for(cdn_base, entry["key"]), accept, entry))
        results = list(pool.map(lambda check: check(), checks))
    differences = tuple(d for found in results for d in found)
    names = tuple(f"{i.get('service')}/{i.get('build')}" for i in indexes)
    return VerifyReport(options.environment, names, len(checks), differences)


def cache_control_for(options: PublishOptions, build: str) -> Callable[[str], str]:
    """The Cache-Control an object of a kind gets in ``build`` (``plan.cache_control``)."""
    at_build = PublishOptions(options.environment, build, options.maxage, options.short_cache_control)
    return lambda kind: cache_control(kind, at_build)


def _stored_check(fetch: Fetch, stored: dict[str, Any], entry: dict[str, Any], cache: str) -> Callable[[], list[str]]:
    def check() -> list[str]:
        found = fetch(stored["key"])
        problems = _compare(stored["key"], found, stored.get("encoding", ""), entry, cache)
        if found is not None and isinstance(stored.get("size"), int) and len(found[0]) != stored["size"]:
            problems.append(f"{stored['key']}: {len(found[0])} bytes stored, release.json records {stored['size']}")
        return problems
    return check


def _cdn_check(url: str, accept: str, entry: dict[str, Any]) -> Callable[[], list[str]]:
    def check() -> list[str]:
        found = http_fetch(url, accept)
        encoding = found[1].get("content-encoding", "") if found else ""
        return _compare(f"{url} (Accept-Encoding: {accept})", found, encoding, entry, None)
    return check
