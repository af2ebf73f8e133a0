"""Compressed variants of published objects (gzip at the key, brotli at ``<key>.br``), cached by content hash.

Which keys are compressed is decided by bosco's own type table (``assetset.type_info``), never by
comparing MIME strings. Both encoders are deterministic (gzip with ``mtime=0``), so the same bytes
always give the same compressed body, and a body computed once can be reused from the cache on
every later push: brotli at quality 10 and 11 (under 2 MB/s of minified JS per core) is the
slowest step of a publish. So the level follows what a body is and how large it is: source maps
(large, fetched only by developer tools) get gzip level 6 and brotli quality 5; other bodies gzip
level 9 and brotli quality 11, or 9 above ``LARGE_OBJECT`` bytes (about 8x faster than 10 for
about 5% more bytes: quality 10 and 11 are brotli's slow optimal-parsing mode). Bodies are
computed once per content hash, encoding and level, however many keys hold them (services that
ship the same bundle). Gzip bodies come from zlib-ng (``zlib_ng.gzip_ng``, RFC 1952 like zlib's,
about 1.7x faster at the same levels and no larger); they are decoded with the standard library.

With a shared cache (``cache.remote``), each body of at least ``SHARED_MINIMUM`` bytes is stored
there on its own, and the bodies a push uploads for one service also together, as one ``pack``
(``CompressionCache.packs``): a second runner publishing the same release fetches one object per
service instead of one per body.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import threading
import zlib
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
from zlib_ng import gzip_ng

from bosco.assetset import type_info
from bosco.cache import cache_dir, envelope, open_envelope, read_sealed, remote, seal
from bosco.cache import key as cache_key
from bosco.config import BrotliSection
from bosco.publish.local import write_file


@dataclass(frozen=True)
class Encoding:
    """One stored form of an asset: ``name`` is the ``Content-Encoding`` value (``""`` for the raw
    bytes) and ``suffix`` is appended to the key of the object holding it."""

    name: str
    suffix: str


IDENTITY = Encoding("", "")
GZIP = Encoding("gzip", "")
BROTLI = Encoding("br", ".br")
GZIP_LEVEL = 9
MAP_GZIP_LEVEL = 6  # source maps: about 4.5x faster than level 9 for about 3% more bytes
# brotli.quality: what browsers download, smallest bodies, compressed once per content hash;
# brotli.mapquality: source maps are large and only fetched by developer tools.
BROTLI_QUALITY = BrotliSection.quality
MAP_BROTLI_QUALITY = BrotliSection.mapquality
LARGE_OBJECT = 64 * 1024  # bytes; larger bodies get at most LARGE_BROTLI_QUALITY
LARGE_BROTLI_QUALITY = 9
POOL_THRESHOLD = 64 * 1024  # bytes; smaller bodies are encoded in the calling thread
PREPARE_THREADS = 16  # prepared bodies looked up at once in the local folder and the shared cache
# bytes; smaller bodies (fragments, small files) are not kept in the shared cache: encoding one costs
# less than a round trip to the store, and a push has hundreds of them
SHARED_MINIMUM = 4096
PACK = "pack"  # shared-cache kind of the bodies of one group (a service) of a push, in one object


def _is_map(key: str) -> bool:
    return key.lower().endswith(".map")


def level(encoding: Encoding, key: str, size: int, quality: int = BROTLI_QUALITY,
          map_quality: int = MAP_BROTLI_QUALITY) -> int:
    """The gzip level or brotli quality of a ``size``-byte body of asset ``key``: gzip 9, or 6 for a
    source map; brotli ``quality`` (at most ``LARGE_BROTLI_QUALITY`` above ``LARGE_OBJECT`` bytes),
    or ``map_quality`` for a source map; 0 for ``IDENTITY``."""
    if encoding == GZIP:
        return MAP_GZIP_LEVEL if _is_map(key) else GZIP_LEVEL
    if encoding == BROTLI:
        if _is_map(key):
            return map_quality
        return min(quality, LARGE_BROTLI_QUALITY) if size > LARGE_OBJECT else quality
    return 0


def encodings_for(key: str, compress: bool = True) -> tuple[Encoding, ...]:
    """The stored forms of asset ``key``: gzip at the key plus brotli at ``<key>.br`` for types that
    bosco's table marks compressible, else the raw bytes only (also when ``compress`` is False)."""
    if compress and type_info(key)[2]:
        return (GZIP, BROTLI)
    return (IDENTITY,)


def encode(data: bytes, encoding: Encoding, text: bool = True, quality: int | None = None) -> bytes:
    """``data`` in ``encoding``: gzip (zlib-ng) at level ``quality`` (default 9) with a zero mtime,
    brotli at ``quality`` (0–11, default 11; text mode when ``text``), or unchanged for ``IDENTITY``."""
    if encoding == GZIP:
        return gzip_ng.compress(data, GZIP_LEVEL if quality is None else quality, mtime=0)
    if encoding == BROTLI:
        return brotli.compress(data, mode=brotli.MODE_TEXT if text else brotli.MODE_GENERIC,
                               quality=BROTLI_QUALITY if quality is None else quality)
    return data


def default_cache_dir(env: dict[str, str] | None = None) -> Path | None:
    """``compressed`` in this code version's local cache folder (``bosco.cache.cache_dir``):
    ``$XDG_CACHE_HOME/bosco/<version>/compressed``, else ``~/.cache/bosco/<version>/compressed``;
    None (compressed bodies kept in memory only) when ``BOSCO_CACHE=0``."""
    folder = cache_dir(env)
    return folder / "compressed" if folder else None


def pack(bodies: dict[str, bytes]) -> bytes:
    """``bodies`` (label -> compressed body) as one payload: the 4-byte big-endian length of a JSON
    header ``[[label, size], ...]``, the header, then the bodies in that order (``unpack``)."""
    header = json.dumps([[label, len(body)] for label, body in bodies.items()]).encode()
    return len(header).to_bytes(4, "big") + header + b"".join(bodies.values())


def unpack(payload: bytes) -> dict[str, bytes] | None:
    """The bodies of a ``pack`` payload, label -> body; None when it is not one (sizes that do not
    add up to its length, a malformed header)."""
    size = int.from_bytes(payload[:4], "big")
    try:
        header = json.loads(payload[4:4 + size])
        entries = [(str(label), int(length)) for label, length in header]
    except (ValueError, TypeError):
        return None
    view, start, bodies = memoryview(payload), 4 + size, {}
    for label, length in entries:
        if length < 0 or label in bodies:
            return None
        bodies[label] = bytes(view[start:start + length])
        start += length
    return bodies if start == len(payload) else None


class _Pack:
    """One group's pack: its shared-cache name, the labels of its bodies, the future of its fetch
    from the shared cache (label -> body, or None when absent or rejected) and, when it was not
    there, the bodies got so far (it is stored once all are; None once stored)."""

    def __init__(self, name: str, labels: frozenset[str], fetched: Future[dict[str, bytes] | None]) -> None:
        self.name = name
        self.labels = labels
        self.fetched = fetched
        self.got: dict[str, bytes] | None = {}


def decode(body: bytes, encoding: Encoding) -> bytes | None:
    """The bytes ``body`` encodes in ``encoding``; None when it is not valid gzip or brotli."""
    try:
        if encoding == GZIP:
            return gzip.decompress(body)
        if encoding == BROTLI:
            return brotli.decompress(body)
    except (OSError, EOFError, ValueError, brotli.error):
        return None
    return body


def decode_own(body: bytes, encoding: Encoding) -> bytes | None:
    """The bytes ``body`` encodes when it has the form ``encode`` gives it, else None: for gzip one
    member whose header (RFC 1952, 2.3) has no flags (no name, comment or extra field), a zero mtime
    and OS 255, with nothing after it, so a shared body that decodes right but carries other bytes
    is never published; brotli bodies as ``decode``."""
    if encoding != GZIP:
        return decode(body, encoding)
    if body[:2] != b"\x1f\x8b" or body[3:8] != bytes(5) or body[9:10] != b"\xff":
        return None
    decoder = zlib.decompressobj(31)
    try:
        data = decoder.decompress(body)
    except zlib.error:
        return None
    return data if decoder.eof and not decoder.unused_data else None


class CompressionCache:
    """Compressed bodies stored as ``<folder>/<sha256[:2]>/<sha256>.<encoding><level>``, each sealed
    with a digest of its bytes (``bosco.cache.seal``: a damaged entry is encoded again); ``folder=None``
    disables caching. ``brotli_quality`` applies to every compressible type but source maps, which
    use ``map_quality`` (``level``). With ``workers`` > 1, bodies of at least 64 KiB are encoded in
    a pool of that many processes (``bosco.workers``; brotli holds the GIL), and ``prepare`` keeps
    every worker busy with the bodies a push will need; call ``close()`` (or use ``with``) to stop
    it. Safe to use from many threads: a body is computed once per content hash, encoding and level
    (threads asking for it meanwhile, for any key, wait for that computation), and entries are
    written atomically."""

    def __init__(self, folder: Path | None, brotli_quality: int = BROTLI_QUALITY,
                 map_quality: int = MAP_BROTLI_QUALITY, workers: int = 0) -> None:
        self.folder = folder
        self.brotli_quality = brotli_quality
        self.map_quality = map_quality
        self.workers = workers
        self._pool: Any = None  # a ``workers.WorkerPool`` once a large body is encoded
        self._stopped = False  # close(abort=True): the command is stopping, no large body is encoded any more
        if workers > 1:  # from the calling (main) thread; the pool itself starts on the first large body
            from bosco import workers  # multiprocessing loads only for a pool

            workers.start_server()
        self._lock = threading.Lock()
        # prepared bodies: name -> [future, number of ``body`` calls still expected to take it]
        self._ahead: dict[tuple[str, str, int], list[Any]] = {}
        self._running: dict[tuple[str, str, int], Future[bytes]] = {}  # bodies being computed by ``body``
        self._threads: ThreadPoolExecutor | None = None
        self._packs: dict[str, _Pack] = {}  # pack name -> pack (``packs``)
        self._packed: dict[str, list[_Pack]] = {}  # body label -> the packs holding it
        self._pack_threads: ThreadPoolExecutor | None = None  # fetch packs: never wait for anything

    @staticmethod
    def _label(name: tuple[str, str, int]) -> str:
        """A body's name as text: ``<sha256>.<encoding><level>``, its file name in the cache folder."""
        return f"{name[0]}.{name[1]}{name[2]}"

    def packs(self, groups: Iterable[Iterable[tuple[bytes, str, Encoding, str]]]) -> None:
        """Start fetching from the shared cache, one object per group, the ``(data, sha256, encoding,
        key)`` bodies of at least ``SHARED_MINIMUM`` bytes that ``body`` will be asked for (a push
        groups the bodies it uploads by service). A pack is named by the hash of its bodies' names,
        so it holds exactly them; it is a self-checking entry (``bosco.cache.envelope``: a corrupt
        or foreign one is ignored, and its bodies are looked for one by one). A group whose pack is
        missing is stored as one once ``body`` got all its bodies (from anywhere: the local folder,
        single shared entries, encoding). Groups of fewer than two such bodies and groups already
        known are left alone; without a shared cache this does nothing."""
        shared = remote()
        if shared is None:
            return
        with self._lock:
            if self._pack_threads is None:
                self._pack_threads = ThreadPoolExecutor(PREPARE_THREADS, "bosco-packs")
            for group in groups:
                labels = frozenset(self._label(self._name(sha, enc, key, len(data))) for data, sha, enc, key in group
                                   if enc != IDENTITY and len(data) >= SHARED_MINIMUM)
                name = cache_key(PACK, *sorted(labels))
                if len(labels) < 2 or name in self._packs:
                    continue
                fetched = self._pack_threads.submit(self._fetch_pack, name, labels)
                found = self._packs[name] = _Pack(name, labels, fetched)
                for label in labels:
                    self._packed.setdefault(label, []).append(found)

    @staticmethod
    def _fetch_pack(name: str, labels: frozenset[str]) -> dict[str, bytes] | None:
        shared = remote()
        data = shared.get(PACK, name) if shared is not None else None
        payload = open_envelope(name, data) if data is not None else None
        bodies = unpack(payload) if payload is not None else None
        return bodies if bodies is not None and bodies.keys() == labels else None

    def _from_pack(self, label: str) -> bytes | None:
        """The body ``label`` from a fetched pack holding it (waiting for the fetch), or None."""
        for found in self._packed.get(label, ()):
            try:
                bodies = found.fetched.result()
            except Exception:  # noqa: BLE001 - cancelled by close(): the body is got another way
                continue
            if bodies is not None:
                return bodies[label]
        return None

    def _got(self, label: str, body: bytes) -> None:
        """Record ``body`` for the packs holding it that were not in the shared cache; store each
        pack that is now complete."""
        for found in self._packed.get(label, ()):
            try:
                missing = found.fetched.result() is None
            except Exception:  # noqa: BLE001 - cancelled by close(): the push is stopping
                continue
            with self._lock:
                if not missing or found.got is None:
                    continue
                found.got[label] = body
                if found.got.keys() != found.labels:
                    continue
                bodies, found.got = found.got, None
            shared = remote()
            if shared is not None:
                shared.put(PACK, found.name, envelope(found.name, pack(dict(sorted(bodies.items())))))

    def _name(self, sha256: str, encoding: Encoding, key: str, size: int) -> tuple[str, str, int]:
        """What identifies a body: every key holding the same bytes gets the same body at one level."""
        return sha256, encoding.name, self._level(encoding, key, size)

    def prepare(self, bodies: Iterable[tuple[bytes, str, Encoding, str]]) -> None:
        """Start getting the ``(data, sha256, encoding, key)`` bodies that ``body`` will be asked for
        (``workers`` > 1 only): ``PREPARE_THREADS`` at a time look in the local folder and the
        shared cache (a second runner fetches them all), and those found in neither are encoded by
        the worker processes in order, so every CPU stays busy: largest first within one call, the
        bodies of an earlier call before those of a later one (a push prepares its stages in publish
        order, so the first uploads need not wait for the last stage's bodies). Each distinct body is
        computed once; ``body`` then waits for the one it needs."""
        if self.workers < 2:
            return
        todo: dict[tuple[str, str, int], list[Any]] = {}
        for data, sha, enc, key in bodies:
            if enc != IDENTITY and len(data) >= POOL_THRESHOLD:
                todo.setdefault(self._name(sha, enc, key, len(data)), [(data, sha, enc, key), 0])[1] += 1
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max(self.workers, PREPARE_THREADS))
            for name, (args, count) in sorted(todo.items(), key=lambda i: -len(i[1][0][0])):
                if name in self._ahead:
                    self._ahead[name][1] += count
                elif name not in self._running:  # else being computed: ``body`` waits for that
                    self._ahead[name] = [self._threads.submit(self._body, *args), count]

    def __enter__(self) -> CompressionCache:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """Stop the worker processes, if any were started. With ``abort`` (leaving ``with`` by an
        exception, Ctrl-C and SIGTERM included) they are terminated at once: a brotli body being
        encoded can take many seconds, and a stopped command must not wait for it (README, "Build
        commands, Ctrl-C and SIGTERM"); the callers waiting for those bodies get ``BrokenProcessPool``,
        later callers of a large body ``CancelledError``."""
        with self._lock:
            threads, self._threads = self._threads, None
            pack_threads, self._pack_threads = self._pack_threads, None
            self._stopped = self._stopped or abort
        if pack_threads is not None:
            pack_threads.shutdown(wait=not abort, cancel_futures=True)
        if threads is not None:  # prepared bodies first: they encode in the pool
            threads.shutdown(wait=not abort, cancel_futures=True)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            if abort:
                pool.terminate()
            else:
                pool.shutdown(cancel_futures=True)

    def _level(self, encoding: Encoding, key: str, size: int) -> int:
        return level(encoding, key, size, self.brotli_quality, self.map_quality)

    def _path(self, sha256: str, encoding: Encoding, key: str, size: int) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / sha256[:2] / f"{sha256}.{encoding.name}{self._level(encoding, key, size)}"

    def size(self, sha256: str, encoding: Encoding, key: str, raw_size: int) -> int | None:
        """Size in bytes of the cached body of asset ``key`` (``raw_size`` bytes uncompressed), or
        None when it is not cached (or damaged: it will be encoded again)."""
        path = self._path(sha256, encoding, key, raw_size)
        try:
            body = read_sealed(path) if path is not None else None
        except OSError:
            return None
        return len(body) if body is not None else None

    def _encode(self, data: bytes, encoding: Encoding, key: str) -> bytes:
        args = (data, encoding, type_info(key)[1], self._level(encoding, key, len(data)))
        if self.workers < 2 or len(data) < POOL_THRESHOLD:
            return encode(*args)
        with self._lock:
            if self._stopped:
                raise CancelledError("stopping: large bodies are no longer encoded")
            if self._pool is None:
                from bosco import workers

                self._pool = workers.process_pool(self.workers)
            pool = self._pool
        return pool.submit(encode, *args).result()

    def body(self, data: bytes, sha256: str, encoding: Encoding, key: str) -> bytes:
        """``data`` (whose hex SHA-256 is ``sha256``) of asset ``key`` in ``encoding``, from the cache
        folder when present, else from the shared cache (``cache.remote``, for ``data`` of at least
        ``SHARED_MINIMUM`` bytes: from a pack ``packs`` fetched, else its own entry; a single body
        that does not decode to bytes with that SHA-256 is ignored), else encoded and stored in both.
        A local entry that is damaged (empty, cut short, changed: its seal does not match) is
        encoded again, with a note at -v; a cache that cannot be read or written is ignored (the
        body is still returned)."""
        if encoding == IDENTITY:
            return data
        name = self._name(sha256, encoding, key, len(data))
        with self._lock:
            ahead = self._ahead.get(name)
            if ahead is not None:
                ahead[1] -= 1
                if ahead[1] <= 0:
                    del self._ahead[name]
            running = self._running.get(name)
            mine = ahead is None and running is None
            if mine:
                running = self._running[name] = Future()
        if ahead is not None:  # prepared: wait for it
            return ahead[0].result()
        assert running is not None
        if not mine:  # another thread is computing the same body
            return running.result()
        try:
            body = self._body(data, sha256, encoding, key)
        except BaseException as exc:
            running.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._running[name]
        running.set_result(body)
        return body

    def _body(self, data: bytes, sha256: str, encoding: Encoding, key: str) -> bytes:
        path = self._path(sha256, encoding, key, len(data))
        label = self._label(self._name(sha256, encoding, key, len(data)))
        body = self._cached(path, key)
        if body is None:
            body = self._from_pack(label)
            body = self._keep(path, body if body is not None else self._shared_or_encoded(data, sha256, encoding, key))
        self._got(label, body)  # for the other packs holding it
        return body

    @staticmethod
    def _cached(path: Path | None, key: str) -> bytes | None:
        """The body in the cache folder at ``path``, or None (absent, unreadable or damaged)."""
        if path is None:
            return None
        try:
            body = read_sealed(path)
        except OSError:  # not cached (or unreadable)
            return None
        if body is None:
            from bosco import ui

            ui.detail(f"{path}: damaged compressed body of {key} in the cache folder; encoding it again")
        return body

    def _shared_or_encoded(self, data: bytes, sha256: str, encoding: Encoding, key: str) -> bytes:
        """The body from its own shared entry (when it is in bosco's own form and decodes to bytes
        with ``sha256``: ``decode_own``), else encoded here and stored there."""
        shared = remote() if len(data) >= SHARED_MINIMUM else None
        kind = f"{encoding.name}{self._level(encoding, key, len(data))}"
        body = shared.get(kind, sha256) if shared is not None else None
        if body is not None and (decoded := decode_own(body, encoding)) is not None and (
                hashlib.sha256(decoded).hexdigest() == sha256):
            return body
        body = self._encode(data, encoding, key)
        if shared is not None:
            shared.put(kind, sha256, body)
        return body

    @staticmethod
    def _keep(path: Path | None, body: bytes) -> bytes:
        if path is not None:
            with contextlib.suppress(OSError):
                write_file(path, seal(body))
        return body
