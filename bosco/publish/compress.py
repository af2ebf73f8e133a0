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
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
from zlib_ng import gzip_ng

from bosco.assetset import type_info
from bosco.cache import cache_dir, read_sealed, remote, seal
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
            self._stopped = self._stopped or abort
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
        ``SHARED_MINIMUM`` bytes; a body that does not decode to bytes with that SHA-256 is
        ignored), else encoded and stored in both. A local entry that is damaged (empty, cut short,
        changed: its seal does not match) is encoded again, with a note at -v; a cache that cannot
        be read or written is ignored (the body is still returned)."""
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
        if path is not None:
            try:
                body = read_sealed(path)
            except OSError:  # not cached (or unreadable)
                pass
            else:
                if body is not None:
                    return body
                from bosco import ui

                ui.detail(f"{path}: damaged compressed body of {key} in the cache folder; encoding it again")
        shared = remote() if len(data) >= SHARED_MINIMUM else None
        kind = f"{encoding.name}{self._level(encoding, key, len(data))}"
        body = shared.get(kind, sha256) if shared is not None else None
        if body is not None and (decoded := decode(body, encoding)) is not None and (
                hashlib.sha256(decoded).hexdigest() == sha256):
            return self._keep(path, body)
        body = self._encode(data, encoding, key)
        if shared is not None:
            shared.put(kind, sha256, body)
        return self._keep(path, body)

    @staticmethod
    def _keep(path: Path | None, body: bytes) -> bytes:
        if path is not None:
            with contextlib.suppress(OSError):
                write_file(path, seal(body))
        return body
