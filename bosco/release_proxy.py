"""Published releases served beside local services (``bosco cdn --remote ENV``): a caching proxy
of an environment's current releases.

The environment's services and their current releases are read from its bucket
(``<env>/<service>/releases.json`` -> ``<env>/<service>/<build>/release.json``, docs/layout.md),
at start and again, in the background, on a request ``RELEASES_MAX_AGE`` seconds after the last
reading.
Every object those release indexes list is then served at its asset key by this proxy, which
fetches it from ``aws.cdn`` over HTTP (``<aws.cdn>/<env>/<key>``), else from the bucket through
boto3, and keeps a copy on disk (the ``remote`` folder of bosco's local cache).

- **Status codes pass through**: an upstream 403, 404 or 5xx is answered with the same status,
  never stored and never turned into a 200.
- **Revalidation** (RFC 9111): a copy is fresh for the ``max-age`` of the ``Cache-Control`` it
  was stored with (a year for a build's immutable keys, ``aws.shortcache`` for keys that change in
  place); a stale copy is revalidated with ``If-None-Match: <its ETag>``, and a 304 keeps it.
- **Encodings**: objects are stored gzip-encoded at their key and brotli-encoded at ``<key>.br``
  (types bosco compresses) or as they are. A client gets the stored form its ``Accept-Encoding``
  takes (``br`` first, then ``gzip``) with that ``Content-Encoding``; a client that takes neither
  (no ``Accept-Encoding`` counts as identity only) gets the decoded bytes.
- **Fragments** are rewritten so that their ``src``/``href`` URLs point at this server; they are
  served at their published key and at ``<service>/local/html/<tag>.<type>.html``, where a page
  composer configured for ``bosco cdn`` asks for them.
- **Offline**: when the upstream cannot be reached (connection refused, DNS failure, timeout),
  stored copies are served whatever their age, the release list comes from the copy stored when it
  was last read, and ``status_line`` says so; the upstream is tried again after ``OFFLINE_RETRY``
  seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bosco.budgets import BundleSizes
from bosco.cache import key as cache_key
from bosco.config import Config
from bosco.errors import BoscoError, PublishError
from bosco.files import write_atomic
from bosco.fragments import PageService, RemotePage, url_for
from bosco.publish.compress import BROTLI, GZIP, IDENTITY, decode
from bosco.redact import redact
from bosco.sizes import stored_sizes
from bosco.ui import plural

ENCODINGS = {e.name: e for e in (IDENTITY, GZIP, BROTLI)}
PREFERENCE = ("br", "gzip", "")  # the stored form a client gets when it takes several
MEMORY_BYTES = 64 * 1024 * 1024  # copies also kept in memory, most recently used first
OFFLINE_RETRY = 5.0  # seconds without contacting an unreachable upstream (stored copies are served meanwhile)
RELEASES_MAX_AGE = 60.0  # seconds before the release list is read again (the default aws.shortcache max-age)
LOCAL_BUILD = "local"  # the build segment of bosco cdn's keys: fragments are also served under it
RELEASES_FILE = "releases.json"  # the stored copy of the release list, in the cache folder
HEADERS = ("content-type", "content-encoding", "cache-control", "etag")
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.I)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\b", re.I)
_URL_ATTRIBUTE = re.compile(r'\b(src|href)="([^"]*)"')


class Unreachable(Exception):
    """The upstream ``where`` (a description such as ``s3://bucket/tes/``) cannot be reached:
    connection refused, name not resolved, timeout. The message says why."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"cannot reach {where}: {why}")
        self.where = where


@dataclass(frozen=True)
class Fetched:
    """One upstream answer: ``status`` (200, 304, or the error passed through), the ``body`` as
    sent (still content-encoded) and ``headers`` (``HEADERS``, lower-case names, ``""`` when absent)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class Origin(Protocol):
    """Where published objects are read from; keys are object keys below ``<env>/``."""

    #: human-readable location, e.g. ``https://d1234.cloudfront.net/tes/`` or ``s3://bucket/tes/``
    description: str

    def get(self, key: str, encoding: str, etag: str | None) -> Fetched:
        """GET the object at ``key`` (stored in ``encoding``: ``gzip``, ``br`` or ``""``), conditional
        on ``etag`` when given. Raises ``Unreachable``."""


class CdnOrigin:
    """Objects read over HTTP from ``<cdn>/<environment>/<key>`` (``aws.cdn``) with httpx, asking for
    each stored form's own encoding, so a CDN that picks ``<key>`` or ``<key>.br`` by
    ``Accept-Encoding`` answers with the object asked for. Timeouts in seconds."""

    def __init__(self, cdn: str, environment: str, connect_timeout: float, read_timeout: float) -> None:
        self.base = f"{cdn.rstrip('/')}/{environment}"
        self.description = f"{self.base}/"
        self.client = httpx.Client(timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
                                   follow_redirects=True, headers={"User-Agent": "bosco-cdn"})

    def get(self, key: str, encoding: str, etag: str | None) -> Fetched:
        headers = {"Accept-Encoding": encoding or "identity", **({"If-None-Match": etag} if etag else {})}
        try:
            with self.client.stream("GET", url_for(self.base, key), headers=headers) as response:
                body = b"".join(response.iter_raw())  # as sent: the stored encoding, never decoded by httpx
        except httpx.TransportError as exc:
            raise Unreachable(self.description, str(exc) or type(exc).__name__) from exc
        return Fetched(response.status_code, body, {h: response.headers.get(h, "") for h in HEADERS})


class S3Origin:
    """Objects read from the bucket with boto3 (``GetObject``, ``IfNoneMatch``) when no ``aws.cdn`` is set."""

    def __init__(self, client: Any, bucket: str, environment: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, f"{environment}/"
        self.description = f"s3://{bucket}/{self.prefix}"

    def get(self, key: str, encoding: str, etag: str | None) -> Fetched:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key,
                                              **({"IfNoneMatch": etag} if etag else {}))
            body = response["Body"].read()
        except ClientError as exc:
            return Fetched(int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 502))
        except (BotoConnectionError, HTTPClientError) as exc:
            raise Unreachable(self.description, str(exc)) from exc
        names = {"content-type": "ContentType", "content-encoding": "ContentEncoding",
                 "cache-control": "CacheControl", "etag": "ETag"}
        return Fetched(200, body, {h: str(response.get(name) or "") for h, name in names.items()})


def unreachable_cause(exc: PublishError) -> bool:
    """True when ``exc`` (an S3 target's error) was caused by a connection failure or timeout."""
    return isinstance(exc.__cause__, (BotoConnectionError, HTTPClientError))


def max_age(cache_control: str) -> int:
    """Seconds a response with ``cache_control`` stays fresh (RFC 9111 §4.2.1): ``s-maxage`` or
    ``max-age``; 0 with ``no-cache``/``no-store`` or without either."""
    if _NO_CACHE.search(cache_control):
        return 0
    found = _MAX_AGE.search(cache_control)
    return int(found.group(1)) if found else 0


def accepted(header: str | None) -> set[str]:
    """The content codings an ``Accept-Encoding`` header takes (RFC 9110 §12.5.3), ``""`` standing
    for identity: those listed with a q-value above 0 (``*`` meaning ``br`` and ``gzip``), and
    identity unless refused (``identity;q=0``, or ``*;q=0`` without identity). No header: identity only."""
    if header is None:
        return {""}
    taken: set[str] = set()
    refused: set[str] = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = re.search(r"q\s*=\s*([0-9.]+)", params)
        try:
            weight = float(q.group(1)) if q else 1.0
        except ValueError:
            weight = 1.0
        names = {"br", "gzip"} if name == "*" else {"" if name == "identity" else name}
        (taken if weight > 0 else refused).update(names)
        if name == "*" and weight == 0 and "identity" not in header.lower():
            refused.add("")
    taken -= refused
    if "" not in refused:
        taken.add("")
    return taken


@dataclass(frozen=True)
class Copy:
    """A stored upstream answer (status 200): the ``body`` as sent, its ``headers`` (``HEADERS``)
    and ``checked``, when the upstream last sent or confirmed it (seconds since the epoch)."""

    body: bytes
    headers: Mapping[str, str]
    checked: float

    def fresh(self, now: float) -> bool:
        return now - self.checked < max_age(self.headers.get("cache-control", ""))


class CopyStore:
    """Stored copies by object key, in ``folder`` (one ``.body`` and one ``.json`` file per key,
    written atomically; a body whose SHA-256 does not match its record is a miss) and, for the
    ``MEMORY_BYTES`` most recently used, in memory; only in memory when ``folder`` is None
    (``BOSCO_CACHE=0``). Safe from several threads."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: OrderedDict[str, Copy] = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()
        self._documents: dict[str, Any] = {}

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.folder is not None
        name = cache_key(key)
        return self.folder / name[:2] / f"{name}.body", self.folder / name[:2] / f"{name}.json"

    def _remember(self, key: str, copy: Copy) -> None:
        with self._lock:
            old = self._memory.pop(key, None)
            self._memory_bytes += len(copy.body) - (len(old.body) if old else 0)
            self._memory[key] = copy
            while self.folder is not None and self._memory_bytes > MEMORY_BYTES and len(self._memory) > 1:
                self._memory_bytes -= len(self._memory.popitem(last=False)[1].body)

    def get(self, key: str) -> Copy | None:
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                return found
        if self.folder is None:
            return None
        body_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_bytes())
            body = body_path.read_bytes()
            if meta.get("key") != key or hashlib.sha256(body).hexdigest() != meta.get("sha256"):
                return None
            copy = Copy(body, {h: str(meta["headers"].get(h, "")) for h in HEADERS}, float(meta["checked"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self._remember(key, copy)
        return copy

    def put(self, key: str, copy: Copy, body_changed: bool = True) -> None:
        """Store ``copy`` (on disk best effort: a full disk only costs the copy); ``body_changed``
        False rewrites the record only (after a 304)."""
        self._remember(key, copy)
        if self.folder is None:
            return
        body_path, meta_path = self._paths(key)
        meta = {"key": key, "sha256": hashlib.sha256(copy.body).hexdigest(), "headers": dict(copy.headers),
                "checked": copy.checked}
        with contextlib.suppress(OSError):
            if body_changed:
                write_atomic(body_path, copy.body)
            write_atomic(meta_path, json.dumps(meta).encode())

    def read_json(self, name: str) -> Any | None:
        """A JSON document stored with ``write_json`` (None when absent or unreadable)."""
        if self.folder is None:
            return self._documents.get(name)
        try:
            return json.loads((self.folder / name).read_bytes())
        except (OSError, ValueError):
            return None

    def write_json(self, name: str, value: Any) -> None:
        if self.folder is None:
            self._documents[name] = value
            return
        with contextlib.suppress(OSError):  # best effort, as for copies
            write_atomic(self.folder / name, json.dumps(value).encode())


@dataclass(frozen=True)
class Answer:
    """What the server sends for one request: ``status``, ``body`` and ``content_type``; for a
    representation (200) its strong ``etag`` and ``headers`` to add (``Content-Encoding``,
    ``Vary``), which the server answers conditional and range requests from; for an upstream
    error passed through, ``etag`` None."""

    status: int
    body: bytes
    content_type: str
    etag: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, text: str) -> Answer:
    return Answer(status, redact(text + "\n").encode(), "text/plain; charset=utf-8")


@dataclass(frozen=True)
class Route:
    """One servable key: the release-index object ``entry`` of ``service`` (its ``stored`` forms)."""

    service: str
    entry: Mapping[str, Any]

    def forms(self) -> list[tuple[str, str]]:
        """``(object key, encoding)`` of each stored form, in ``PREFERENCE`` order."""
        forms = [(str(s.get("key")), str(s.get("encoding") or "")) for s in self.entry.get("stored", [])
                 if isinstance(s, dict) and isinstance(s.get("key"), str)]
        return sorted(forms, key=lambda f: PREFERENCE.index(f[1]) if f[1] in PREFERENCE else len(PREFERENCE))


def rewrite_fragment(text: str, environment: str, keys: Container[str], base_url: str) -> str:
    """``text`` (a published fragment) with every ``src``/``href`` URL whose path holds
    ``/<environment>/<key>`` for one of ``keys`` replaced by ``<base_url>/<key>`` (``url_for``);
    other URLs are left as they are. Published fragments link ``<aws.cdn>/<env>/<key>`` or
    ``/<env>/<key>`` (docs/layout.md)."""
    marker = f"/{environment}/"

    def local(match: re.Match[str]) -> str:
        path = urlsplit(html.unescape(match.group(2))).path
        start = path.find(marker)
        while start >= 0:
            key = unquote(path[start + len(marker):])
            if key in keys:
                return f'{match.group(1)}="{html.escape(url_for(base_url, key))}"'
            start = path.find(marker, start + 1)
        return match.group(0)

    return _URL_ATTRIBUTE.sub(local, text)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class RemoteReleases:
    """The current releases of ``environment`` served through this proxy.

    ``list_releases()`` returns the current release index of every service of the environment
    (``publish.release_index.published_services`` on the bucket) and raises ``Unreachable`` when the
    bucket cannot be reached; ``origin`` serves the objects; ``store`` keeps the copies (and the
    release list, for offline starts); ``local`` are the names of the services served from the
    workspace (never served from here); ``base_url`` is where this server is reached (fragments
    and index page links); ``on_change()`` is called when the online/offline status changes (the
    index page shows it). ``clock`` gives seconds since the epoch."""

    def __init__(self, environment: str, list_releases: Callable[[], list[dict[str, Any]]], listing: str,
                 origin: Origin, store: CopyStore, local: Iterable[str], base_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.environment, self.list_releases, self.listing = environment, list_releases, listing
        self.origin, self.store, self.local, self.base_url = origin, store, frozenset(local), base_url
        self.clock = clock
        self.on_change: Callable[[], None] | None = None
        self.indexes: list[dict[str, Any]] = []  # the release indexes served (local services left out)
        self._read: list[dict[str, Any]] = []  # the release list as read
        self.routes: dict[str, Route] = {}
        self.read_at = 0.0  # when the release list was read from the bucket
        self.releases_max_age = RELEASES_MAX_AGE
        self._listed_at = 0.0  # when the bucket was last asked for the release list
        self._refreshing = False
        self.offline: str | None = None  # the upstream that could not be reached, None while it answers
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    # the release list -------------------------------------------------------------------------

    def load(self) -> RemoteReleases:
        """Read the release list (else, when the bucket cannot be reached, its stored copy) and
        build the routes. Raises ``BoscoError`` when there is no release to serve, naming what to
        configure or publish."""
        try:
            indexes = self.list_releases()
        except Unreachable as exc:
            stored = self.store.read_json(RELEASES_FILE)
            if not isinstance(stored, dict) or not isinstance(stored.get("indexes"), list):
                raise BoscoError(f"--remote {self.environment}: {exc}; no copy of its releases is stored yet",
                                 "connect to the network once to read the releases, or check aws.endpoint and "
                                 "aws.region") from exc
            indexes, self.read_at = stored["indexes"], float(stored.get("read_at", 0))
            self._went_offline(exc.where)
        else:
            self._keep(indexes)
        self._listed_at = self.clock()
        if not indexes:
            raise BoscoError(f"--remote {self.environment}: no service of {self.listing} has a releases.json naming "
                             "a current release",
                             f"publish one with bosco s3push -e {self.environment}, or check aws.bucket in "
                             f".bosco/{self.environment}.json")
        self._use(indexes)
        return self

    def _keep(self, indexes: list[dict[str, Any]]) -> None:
        """Remember ``indexes`` as read now, on disk too (for an offline start)."""
        self.read_at = self.clock()
        self.store.write_json(RELEASES_FILE, {"read_at": self.read_at, "indexes": indexes})

    def _use(self, indexes: list[dict[str, Any]]) -> None:
        """Serve the releases of ``indexes`` (those of local services left out)."""
        self._read = indexes
        self.indexes = [i for i in indexes if isinstance(i, dict) and i.get("service") not in self.local]
        self.routes = routes_of(self.indexes)

    def refresh_if_stale(self) -> None:
        """Read the release list again, in the background, when it is older than
        ``releases_max_age`` seconds (``releases.json`` changes in place when someone publishes):
        new current releases are served from then on and the index page shows them (``on_change``).
        An unreachable bucket marks the upstream offline; any other failure keeps the list as it is
        until the next try."""
        with self._lock:
            if self._refreshing or self.clock() - self._listed_at < self.releases_max_age:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, name="bosco-remote-releases", daemon=True).start()

    def _refresh(self) -> None:
        try:
            indexes = self.list_releases()
        except Unreachable as exc:
            self._went_offline(exc.where)
            return
        except BoscoError:
            return
        finally:
            with self._lock:
                self._refreshing, self._listed_at = False, self.clock()
        changed = indexes != self._read
        self._keep(indexes)
        if changed and indexes:
            self._use(indexes)
            if self.on_change:
                self.on_change()

    def page(self) -> RemotePage:
        """The index page's view of the served releases (see ``RemotePage``)."""
        services = tuple(PageService.of_release(
            i, release=f"published release {self.environment}/{i.get('build')} of {i.get('time')}, "
                       f"from {self.origin.description}") for i in self.indexes)
        sizes: dict[str, dict[str, BundleSizes]] = {}
        for index in self.indexes:
            objects = {o.get("key"): o for o in index.get("objects", []) if isinstance(o, dict)}
            measured = sizes.setdefault(str(index.get("service")), {})
            for bundle in index.get("bundles", []):
                found = stored_sizes(objects.get(bundle.get("key"), {})) if isinstance(bundle, dict) else {}
                if found and all(isinstance(v, int) for v in found.values()):
                    measured[f"{bundle.get('type')}/{bundle.get('tag')}"] = BundleSizes(found, ())
        return RemotePage(services, sizes, self.status_line(), self.offline is not None)

    def status_line(self) -> str:
        """One line for the index page: where the releases come from, or that the upstream is
        offline and since when the served copies date."""
        if self.offline is not None:
            return f"remote: offline, serving cached copies from {_when(self.read_at)} (cannot reach {self.offline})"
        return (f"remote: {plural(len(self.indexes), 'published release')} of {self.environment} read from "
                f"{self.listing} at {_when(self.read_at)}, objects from {redact(self.origin.description)}")

    # status -----------------------------------------------------------------------------------

    def _went_offline(self, where: str) -> None:
        with self._lock:
            changed = self.offline is None
            self.offline, self._retry_at = redact(where), self.clock() + OFFLINE_RETRY
        if changed and self.on_change:
            self.on_change()

    def _answered(self) -> None:
        with self._lock:
            changed = self.offline is not None
            self.offline = None
        if changed and self.on_change:
            self.on_change()

    # serving ----------------------------------------------------------------------------------

    def respond(self, key: str, accept_encoding: str | None) -> Answer | None:
        """The answer for asset ``key`` to a client sending ``accept_encoding``, or None when no
        served release has it (the server answers its 404 page). Called from worker threads;
        fetches of one object are serialised."""
        self.refresh_if_stale()
        route = self.routes.get(key)
        if route is None:
            return None
        forms = route.forms()
        if not forms:
            return None
        takes = accepted(accept_encoding)
        chosen = next((f for f in forms if f[1] in takes), None)
        fetched_form = chosen or next((f for f in forms if self.store.get(f[0]) is not None), forms[-1])
        found = self._copy(*fetched_form)
        if isinstance(found, Answer):
            return found
        body, encoding = found.body, found.headers.get("content-encoding", "")
        if encoding and encoding not in takes:  # the client takes none of the stored encodings
            decoded = decode(body, ENCODINGS.get(encoding, IDENTITY))
            if decoded is None:
                return _error(502, f"{self.origin.description}{fetched_form[0]}: not valid {encoding}")
            body, encoding = decoded, ""
        content_type = found.headers.get("content-type") or str(route.entry.get("contentType", ""))
        # the representation's identity: the upstream's ETag and the coding served (no hashing of the
        # body per request); a rewritten fragment, or an object sent without an ETag, by its bytes
        identity = f"{found.headers.get('etag')}\0{encoding}".encode() if found.headers.get("etag") else body
        if route.entry.get("kind") == "fragment":
            plain = decode(body, ENCODINGS.get(encoding, IDENTITY)) or b""
            text = rewrite_fragment(plain.decode("utf-8", "replace"), self.environment, self.routes, self.base_url)
            body, encoding = text.encode("utf-8"), ""
            identity = body
        return Answer(200, body, content_type, f'"{hashlib.sha256(identity).hexdigest()[:32]}"',
                      {"Vary": "Accept-Encoding", **({"Content-Encoding": encoding} if encoding else {})})

    def _copy(self, key: str, encoding: str) -> Copy | Answer:
        """The stored copy of object ``key``: fresh, revalidated or fetched; while the upstream is
        unreachable, any stored copy. An upstream error is an ``Answer`` with its status."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            copy, now = self.store.get(key), self.clock()
            if copy is not None and (copy.fresh(now) or (self.offline is not None and now < self._retry_at)):
                return copy
            if copy is None and self.offline is not None and now < self._retry_at:
                return self._unreachable(key, f"cannot reach {self.offline}")
            etag = copy.headers.get("etag") if copy is not None else None
            try:
                fetched = self.origin.get(key, encoding, etag or None)
            except Unreachable as exc:
                self._went_offline(exc.where)
                return copy if copy is not None else self._unreachable(key, str(exc))
            self._answered()
            if fetched.status == 304 and copy is not None:
                copy = replace(copy, checked=self.clock())
                self.store.put(key, copy, body_changed=False)
                return copy
            if fetched.status == 200:
                copy = Copy(fetched.body, fetched.headers, self.clock())
                self.store.put(key, copy)
                return copy
            return _error(fetched.status if fetched.status >= 400 else 502,
                          f"{self.origin.description}{key}: upstream answered {fetched.status}")

    def _unreachable(self, key: str, why: str) -> Answer:
        return _error(502, f"{self.origin.description}{key}: upstream unreachable and no copy stored ({why})")


def routes_of(indexes: Iterable[Mapping[str, Any]]) -> dict[str, Route]:
    """Asset key -> ``Route`` for every object of the release ``indexes``, plus each fragment at
    ``<service>/local/html/...`` (the first service to list a shared key wins)."""
    routes: dict[str, Route] = {}
    for index in indexes:
        service, build = str(index.get("service")), str(index.get("build"))
        for entry in index.get("objects", []):
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                continue
            routes.setdefault(entry["key"], Route(service, entry))
            prefix = f"{service}/{build}/"
            if entry.get("kind") == "fragment" and entry["key"].startswith(prefix):
                routes.setdefault(f"{service}/{LOCAL_BUILD}/{entry['key'][len(prefix):]}", Route(service, entry))
    return routes


def bucket_lister(config: Config, environment: str, concurrency: int = 8) -> tuple[Callable[[], list[dict[str, Any]]],
                                                                               str, Any]:
    """``(list_releases, description, client)`` for the bucket of ``environment`` (``aws.bucket``,
    ``aws.region``, ``aws.endpoint``; one attempt per request, as a browser retries itself).
    Raises ``BoscoError`` naming the setting when ``aws.bucket`` is not set."""
    from bosco.publish.release_index import published_services
    from bosco.publish.s3 import S3Target, s3_client

    bucket = config.aws.bucket
    if not bucket:
        raise BoscoError(f"--remote {environment}: aws.bucket is not set, so there are no published releases to "
                         "read", f'set "aws": {{"bucket": "..."}} in .bosco/{environment}.json (or BOSCO_AWS_BUCKET)')
    client = s3_client(replace(config, values={**config.values, "aws": {**config.values["aws"], "attempts": 1}}),
                       concurrency)
    target = S3Target(client, bucket, f"{environment}/")

    def list_releases() -> list[dict[str, Any]]:
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                return published_services(target, pool)
        except PublishError as exc:
            if unreachable_cause(exc):
                raise Unreachable(target.description, str(exc.__cause__)) from exc
            raise

    return list_releases, target.description, client


def remote_releases(config: Config, environment: str, store_root: Path | None, local: Iterable[str],
                    base_url: str) -> RemoteReleases:
    """The ``RemoteReleases`` of ``environment`` from its configuration (``aws.bucket`` lists the
    releases; objects come from ``aws.cdn`` when set, else from the bucket), their copies stored
    under ``store_root/remote/<upstream>`` (one folder per bucket, store endpoint and object origin;
    in memory when ``store_root`` is None), loaded.
    Raises ``BoscoError`` (see ``RemoteReleases.load``)."""
    list_releases, listing, client = bucket_lister(config, environment)
    aws = config.aws
    origin: Origin = (CdnOrigin(aws.cdn, environment, float(aws.connecttimeout), float(aws.readtimeout)) if aws.cdn
                      else S3Origin(client, aws.bucket, environment))
    # the store too: a bucket of the same name on another aws.endpoint holds other objects
    upstream = cache_key(listing, origin.description, client.meta.endpoint_url)
    folder = store_root / "remote" / upstream[:16] if store_root else None
    return RemoteReleases(environment, list_releases, listing, origin, CopyStore(folder), local, base_url).load()


def for_cdn(root: Path, environment: str, local: Iterable[str], base_url: str) -> RemoteReleases:
    """The ``RemoteReleases`` ``bosco cdn --remote ENV`` serves: ``environment``'s configuration
    (``.bosco/<ENV>.json`` and the other layers), copies in this version's local cache folder
    (``cache.cache_dir``; in memory with ``BOSCO_CACHE=0``), the workspace services ``local`` left
    out. Raises ``BoscoError`` (see ``RemoteReleases.load``)."""
    from bosco.cache import cache_dir
    from bosco.config import load_config

    return remote_releases(load_config(root, environment), environment, cache_dir(), local, base_url)
