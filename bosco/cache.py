"""Caches of results keyed by content hash: memory, a local folder, and an optional shared S3 store.

Parsing, verifying and mapping a file costs far more than minifying it, and brotli at quality 11
costs more than both, so results are kept by the hash of their inputs: an unchanged file is never
parsed or compressed again, across runs, across services that ship the same library and (with
``cache.remote``) across machines.

- **Local**: ``$XDG_CACHE_HOME/bosco/<FORMAT>-<code version>/`` (else ``~/.cache/bosco/...``), one
  folder per bosco code version, so an upgrade starts a new folder and ``bosco cache prune`` drops
  the old ones. Entries are pickles written atomically by this process into the user's own folder,
  each behind a digest of its bytes (``seal``): an entry that is damaged (cut short by a crash,
  flipped bytes) or cannot be read back is a miss, computed again; the folder is trimmed to
  ``cache.maxsize`` MB, least recently used first, when a command stored something.
  ``BOSCO_CACHE=0`` turns the disk cache off.
- **Shared** (``cache.remote = "s3://bucket/prefix"``, same credentials and ``aws.endpoint`` as
  ``s3push``): verified minify results and compressed bodies under
  ``<prefix>/<FORMAT>-<code version>/<kind>/<name>``. Reads come before computing, writes happen in
  the background after (waited for at exit); both are best effort, never failing a command. Entries
  are self-checking (``envelope``): one whose hash does not match its content and key (corrupt, or
  copied from another key) is ignored. Shared entries are JSON or compressed bytes, never pickles.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import pickle
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bosco.config import CacheSection, Config
from bosco.files import write_atomic
from bosco.userdirs import cache_enabled, xdg_home

FORMAT = "v4"  # layout and serialization of cache entries (v3: local entries are sealed; v4: with known parts)
MAGIC = b"bosco-cache-entry 1\n"
MEMORY_ENTRIES = 4096
_memory: dict[str, Any] = {}
_stored = False  # this process wrote to the local folder: trim it at exit
_remote: RemoteCache | None = None
_maxsize = CacheSection.maxsize


MEMO_ENTRIES = 8  # signatures ``code_version`` remembers (python -m bosco, the bosco script, a test runner, ...)


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 hex of bosco's own source files and the versions of the libraries whose output is
    cached (rjsmin, rcssmin, brotli, zlib-ng, tree-sitter-javascript): any change gives new cache keys.

    Remembered in ``<cache root>/code-version.json`` under the stat stamps of those source files and
    of the folders of ``sys.path`` (installing or removing a package changes its folder; the current
    folder, which ``python -m`` puts first, is not one: its files change all the time), so a command
    does not read every source file and query package metadata on each start. The last
    ``MEMO_ENTRIES`` signatures are kept: ``python -m bosco`` and the ``bosco`` script have
    different ``sys.path`` lists, and each hits."""
    package = Path(__file__).resolve().parent
    sources = sorted(package.rglob("*.py"))
    here = os.getcwd()
    signature = hashlib.sha256(repr(([(p.relative_to(package).as_posix(), _stamp(p)) for p in sources],
                                     [(entry, _stamp(Path(entry))) for entry in sys.path
                                      if os.path.isabs(entry) and entry != here])).encode()).hexdigest()
    memo = cache_root() / "code-version.json" if cache_enabled() else None
    try:
        found = json.loads(memo.read_bytes()) if memo else None
        entries = [(str(s), str(v)) for s, v in found["entries"]][:MEMO_ENTRIES]
    except (OSError, ValueError, TypeError, KeyError):
        entries = []
    for known, version in entries:
        if known == signature:
            return version
    version = _code_version(package, sources)
    if memo is not None:
        entries = [(signature, version), *entries][:MEMO_ENTRIES]
        with suppress(OSError):
            write_atomic(memo, json.dumps({"entries": entries}).encode())
    return version


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


CACHED_LIBRARIES = ("rjsmin", "rcssmin", "brotli", "zlib-ng", "tree-sitter", "tree-sitter-javascript")


def _code_version(package: Path, sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for name, version in installed_versions(CACHED_LIBRARIES).items():
        digest.update(f"{name}={version or '?'}\0".encode())
    return digest.hexdigest()


def installed_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Each distribution name -> its installed version (None when not installed), the first found
    along ``sys.path`` as ``importlib.metadata.version`` finds it. Read from the names of the
    ``<name>-<version>.dist-info`` folders (the binary distribution format, packaging.python.org/
    specifications/binary-distribution-format/): one folder listing per ``sys.path`` entry instead
    of importing ``importlib.metadata`` and parsing each METADATA file (~20 ms of every start with
    an empty cache). A name first met in another form (an ``.egg-info`` folder, a folder name
    that does not parse, a zip archive on ``sys.path``) or not at all is asked of ``importlib.metadata``."""
    def key(name: str) -> str:  # PEP 503 normalization, as importlib.metadata matches folder names
        return "_".join(name.replace("-", " ").replace(".", " ").replace("_", " ").split()).lower()

    wanted = {key(n): n for n in names}
    found: dict[str, str] = {}  # "": ask importlib.metadata
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            if os.path.exists(entry):  # a zip archive: every name not found before it is asked
                break
            continue
        for folder in listing:
            stem, dot, suffix = folder.rpartition(".")
            name, _, version = stem.partition("-")
            n = wanted.get(key(name)) if dot and suffix.lower() in ("dist-info", "egg-info") else None
            if n and n not in found:
                found[n] = version if suffix == "dist-info" and version and "-" not in version else ""
        if len(found) == len(names):
            break
    versions: dict[str, str | None] = {n: found.get(n) or None for n in names}
    if not all(versions.values()):
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as metadata_version

        for n in names:
            if versions[n] is None:
                with suppress(PackageNotFoundError):
                    versions[n] = metadata_version(n)
    return versions


def folder_name() -> str:
    """The name of this code version's cache folder, locally and in the shared store."""
    return f"{FORMAT}-{code_version()[:16]}"


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/bosco``, else ``~/.cache/bosco`` (``userdirs.xdg_home``)."""
    return xdg_home("XDG_CACHE_HOME", env) / "bosco"


def cache_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """This code version's local cache folder; None when ``BOSCO_CACHE=0`` (``userdirs.cache_enabled``)."""
    return cache_root(env) / folder_name() if cache_enabled(env) else None


LARGE = 64 * 1024  # characters: parts this long are hashed once per process (``_digests``)
_digests: dict[str, bytes] = {}


def _digest(part: str) -> bytes:
    """SHA-256 of a large ``part``, remembered: a build keys the same file text several times (its
    minify result, CSS scan, map comments), and a dict lookup of a str reuses its cached hash."""
    found = _digests.get(part)
    if found is None:
        found = hashlib.sha256(part.encode("utf-8", "surrogatepass")).digest()
        if len(_digests) >= MEMORY_ENTRIES:
            _digests.pop(next(iter(_digests)))
        _digests[part] = found
    return found


def key(*parts: str) -> str:
    """SHA-256 hex of the ``parts`` (each tagged and length-prefixed, so no two part lists collide;
    a part of ``LARGE`` characters or more enters as its own SHA-256)."""
    digest = hashlib.sha256()
    for part in parts:
        if len(part) >= LARGE:
            digest.update(b"H" + _digest(part))
        else:
            data = part.encode("utf-8", "surrogatepass")
            digest.update(b"S" + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _path(name: str) -> Path | None:
    folder = cache_dir()
    return folder / name[:2] / name if folder else None


SEAL_SIZE = 16  # bytes of SHA-256 digest in front of a sealed local entry


def seal(payload: bytes) -> bytes:
    """``payload`` with the first ``SEAL_SIZE`` bytes of its SHA-256 digest (FIPS 180-4) in front: how
    every local entry is written, so that one damaged on disk is detected by ``read_sealed`` (checking
    costs about 1 ms of CPU per MB: SHA-256 runs at about 1.1 GB/s here)."""
    return hashlib.sha256(payload).digest()[:SEAL_SIZE] + payload


def read_sealed(path: Path) -> bytes | None:
    """The payload of the ``seal``-ed file at ``path`` (read without copying it again); None when it
    is damaged (empty, cut short or changed). Raises ``OSError`` when it cannot be read (e.g. it does not exist)."""
    with open(path, "rb") as handle:
        digest, payload = handle.read(SEAL_SIZE), handle.read()
    return payload if hashlib.sha256(payload).digest()[:SEAL_SIZE] == digest else None


HEADER = 8  # bytes of the sealed part's length, after the seal (little-endian)


class _Pickler(pickle.Pickler):
    """Pickles a value, leaving out the ``bytes`` objects of ``parts`` (``id`` -> persistent id)."""

    def __init__(self, file: io.BytesIO, parts: dict[int, tuple[int, int, str]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.parts = parts

    def persistent_id(self, obj: Any) -> tuple[int, int, str] | None:
        return self.parts.get(id(obj)) if type(obj) is bytes else None


def _entry(value: Any, known: Sequence[tuple[bytes, str]]) -> list[bytes]:
    """The chunks of a local entry: ``seal`` of (the length of the pickled ``value``, then that
    pickle), then each ``known`` part as it is. The pickle refers to a part by its offset after the
    sealed chunk, its length and its SHA-256 hex, so the part is checked when read (``_read_entry``)
    but neither copied nor hashed again when written."""
    parts: dict[int, tuple[int, int, str]] = {}
    chunks: list[bytes] = []
    offset = 0
    for data, digest in known:
        if id(data) not in parts:
            parts[id(data)] = (offset, len(data), digest)
            chunks.append(data)
            offset += len(data)
    buffer = io.BytesIO()
    _Pickler(buffer, parts).dump(value)
    header = buffer.getvalue()
    return [seal(len(header).to_bytes(HEADER, "little") + header), *chunks]


def _read_entry(path: Path, read_parts: bool = True) -> tuple[Any | None, bool]:
    """The value of the local entry at ``path`` (``_entry``), None when it is damaged (its seal or
    the digest of one of its parts does not match, or it is cut short) or cannot be loaded by this
    code, and whether it had known parts (without ``read_parts`` each is None, neither read nor
    checked). Raises ``OSError`` when it cannot be read (e.g. it does not exist)."""
    with open(path, "rb") as handle:
        digest, size = handle.read(SEAL_SIZE), handle.read(HEADER)
        length = int.from_bytes(size, "little")
        if len(size) != HEADER or length > os.fstat(handle.fileno()).st_size:
            return None, False
        header = handle.read(length)
        if hashlib.sha256(size + header).digest()[:SEAL_SIZE] != digest:
            return None, False
        start = handle.tell()
        parts = []

        def part(pid: Any) -> bytes | None:
            parts.append(pid)
            if not read_parts:
                return None
            offset, length, sha256 = pid
            handle.seek(start + offset)
            data = handle.read(length)
            if len(data) != length or hashlib.sha256(data).hexdigest() != sha256:
                raise ValueError("damaged part")
            return data

        unpickler = pickle.Unpickler(io.BytesIO(header))
        unpickler.persistent_load = part  # type: ignore[method-assign]
        try:
            return unpickler.load(), bool(parts)
        except Exception:  # noqa: BLE001 - a sealed entry this code cannot load is a miss, like a damaged one
            return None, False


def load(name: str, parts: bool = True) -> Any | None:
    """The value stored under ``name`` (memory first, then the local folder), or None when absent,
    damaged (``_read_entry``) or not loadable by this code. Without ``parts``, the known parts of a
    value read from the folder (``store``) are None, neither read nor checked: enough to look at
    the small rest."""
    if name in _memory:
        return _memory[name]
    path = _path(name)
    if path is None:
        return None
    try:
        value, known = _read_entry(path, parts)
    except OSError:
        return None
    if not known:  # as ``store``: known parts are read from the folder again
        _remember(name, value)
    return value


def _remember(name: str, value: Any) -> None:
    if len(_memory) >= MEMORY_ENTRIES:
        _memory.pop(next(iter(_memory)))
    _memory[name] = value


def store(name: str, value: Any, known: Sequence[tuple[bytes, str]] = ()) -> None:
    """Keep ``value`` under ``name`` in memory and, when possible, in the local folder (errors are
    ignored: the cache only saves time). ``known``: large ``bytes`` objects inside ``value`` with
    the SHA-256 hex of each, which the caller has computed anyway: they are written beside the
    sealed rest and checked by that digest when read, instead of being sealed (hashed) again; such
    a value is kept in memory only when there is no local folder."""
    global _stored
    path = _path(name)
    if path is None or not known:  # the folder gives known parts back (checked) for ~1 ms per MB:
        _remember(name, value)     # a build does not hold every bundle it stored in memory
    if path is None:
        return
    try:
        write_atomic(path, _entry(value, known))
        _stored = True
    except OSError:
        return


# ---- shared entries -------------------------------------------------------------------------

def envelope(name: str, payload: bytes) -> bytes:
    """A self-checking shared entry: ``MAGIC``, the SHA-256 hex of ``name`` and ``payload``, a
    newline, then ``payload``."""
    return MAGIC + hashlib.sha256(name.encode() + b"\n" + payload).hexdigest().encode() + b"\n" + payload


def open_envelope(name: str, data: bytes) -> bytes | None:
    """The payload of an ``envelope`` stored for ``name``; None when it is corrupt or was made for
    another name."""
    head = len(MAGIC) + 65
    if not data.startswith(MAGIC) or len(data) < head or data[head - 1:head] != b"\n":
        return None
    payload = data[head:]
    if hashlib.sha256(name.encode() + b"\n" + payload).hexdigest().encode() != data[len(MAGIC):head - 1]:
        return None
    return payload


def shared(kind: str, name: str, decode: Callable[[bytes], Any | None]) -> Any | None:
    """The value of ``kind``/``name`` from memory, the local folder or the shared store (decoded
    with ``decode``, which returns None for a payload it rejects), or None. A shared hit is also
    kept locally."""
    value = load(name)
    if value is not None or _remote is None:
        return value
    data = _remote.get(kind, name)
    payload = open_envelope(name, data) if data is not None else None
    value = decode(payload) if payload is not None else None
    if value is not None:
        store(name, value)
    return value


def store_shared(kind: str, name: str, value: Any, encode: Callable[[Any], bytes]) -> None:
    """``store`` plus, with a shared store configured, an upload of ``encode(value)`` in the background."""
    store(name, value)
    if _remote is not None:
        _remote.put(kind, name, envelope(name, encode(value)))


def fetch_shared(kind: str, names: list[str], decode: Callable[[bytes], Any | None]) -> None:
    """Load ``names`` missing locally from the shared store concurrently (into the local cache)."""
    if _remote is None:
        return
    missing = [n for n in names if load(n) is None]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: shared(kind, n, decode), missing))


def remote() -> RemoteCache | None:
    """The configured shared store, if any."""
    return _remote


def configure(config: Config) -> None:
    """Use the shared store at ``cache.remote`` (``s3://bucket/prefix``, reached with the ``aws``
    settings of ``config``) or none, and cap the local folder at ``cache.maxsize`` MB. Pending
    uploads are waited for and the local folder trimmed when the process exits."""
    global _remote, _maxsize
    _maxsize = config.cache.maxsize
    if _remote is not None:
        _remote.flush()
    _remote = RemoteCache(config.cache.remote, config) if config.cache.remote else None


def _at_exit() -> None:
    if _remote is not None:
        _remote.flush()
    if _stored:
        trim(_maxsize)


atexit.register(_at_exit)


# ---- sizes, trimming and pruning ----------------------------------------------------------

@dataclass(frozen=True)
class FolderStats:
    """One cache folder: ``name``, ``entries`` and ``bytes``; ``current`` when it belongs to this
    code version."""

    name: str
    entries: int
    bytes: int
    current: bool


def _files(folder: Path) -> list[os.DirEntry[str]]:
    found: list[os.DirEntry[str]] = []
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        found.append(entry)
        except OSError:
            continue
    return found


def local_stats() -> list[FolderStats]:
    """Every folder of the local cache root (this version's and older ones), by name."""
    root = cache_root()
    if not root.is_dir():
        return []
    stats = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = _files(folder)
        stats.append(FolderStats(folder.name, len(files), sum(f.stat().st_size for f in files),
                                 folder.name == folder_name()))
    return stats


def trim(maxsize_mb: int) -> int:
    """Delete the least recently used entries of this version's local folder until it holds at most
    ``maxsize_mb`` MB; returns the bytes deleted."""
    folder = cache_dir()
    if folder is None or not folder.is_dir():
        return 0
    files = [(f.stat().st_atime, f.stat().st_size, f.path) for f in _files(folder)]
    total, limit, freed = sum(f[1] for f in files), maxsize_mb * 1024 * 1024, 0
    for _, size, path in sorted(files):
        if total <= limit:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size
        freed += size
    return freed


def prune_local(maxsize_mb: int) -> int:
    """Delete the local folders of other code versions (and the pre-versioned layout), then trim this
    version's folder to ``maxsize_mb`` MB; returns the bytes deleted."""
    import shutil

    freed = 0
    root = cache_root()
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir() and folder.name != folder_name():
                freed += sum(f.stat().st_size for f in _files(folder))
                shutil.rmtree(folder, ignore_errors=True)
    return freed + trim(maxsize_mb)


class RemoteCache:
    """The shared store at ``s3://bucket/prefix``: entry ``kind``/``name`` is the object
    ``<prefix>/<folder_name()>/<kind>/<name[:2]>/<name>``. ``get`` returns None on any error;
    ``put`` uploads in background threads, ignoring errors (``failures`` counts them), and
    ``flush`` waits for the uploads. After an error other than a missing entry (no network, no
    permission) the store is ``broken`` and no longer used by this process. Raises ``BoscoError`` for a URL that is not ``s3://bucket[/prefix]``."""

    def __init__(self, url: str, config: Config) -> None:
        from bosco.errors import BoscoError

        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise BoscoError(f"cache.remote {url!r} is not an s3://bucket/prefix URL",
                             'set e.g. "cache": {"remote": "s3://my-bucket/bosco-cache"} in .bosco/bosco.json')
        self.bucket, _, prefix = url[5:].partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url
        from bosco.publish.s3 import s3_client  # boto3 loads only when a shared cache is configured

        self.client = s3_client(config, 16)
        self._pool = ThreadPoolExecutor(8)
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self.failures = 0
        self.hits = self.misses = self.sent = 0
        self.broken = False

    def object_key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{folder_name()}/{kind}/{name[:2]}/{name}"

    def get(self, kind: str, name: str) -> bytes | None:
        if self.broken:
            return None
        try:
            data = self.client.get_object(Bucket=self.bucket, Key=self.object_key(kind, name))["Body"].read()
        except Exception as exc:  # a miss, no permission, no network: the cache only saves time
            self.misses += 1
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")  # a timeout has None
            if code not in ("NoSuchKey", "404", "NotFound"):
                self._give_up(exc)  # unreachable or forbidden: stop asking for the rest of the command
            return None
        self.hits += 1
        return data

    def _put(self, key: str, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            self.sent += len(data)
        except Exception as exc:
            self.failures += 1
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        """Stop using the store for the rest of the command, said once with ``-v`` (the build goes
        on: the shared cache only saves time)."""
        with self._lock:
            if self.broken:
                return
            self.broken = True
        from bosco import ui

        ui.detail(f"shared cache {self.url}: {type(exc).__name__}: {exc}; going on without it")

    def put(self, kind: str, name: str, data: bytes) -> None:
        if self.broken:
            return
        with self._lock:
            self._pending.append(self._pool.submit(self._put, self.object_key(kind, name), data))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _objects(self) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        return [o for page in pages for o in page.get("Contents", [])]

    def stats(self) -> list[FolderStats]:
        """Entries and bytes per code-version folder under the prefix. Raises the client's error."""
        folders: dict[str, list[int]] = {}
        for obj in self._objects():
            name = obj["Key"][len(self.prefix):].split("/", 1)[0]
            folders.setdefault(name, [0, 0])
            folders[name][0] += 1
            folders[name][1] += obj["Size"]
        return [FolderStats(n, c, b, n == folder_name()) for n, (c, b) in sorted(folders.items())]

    def prune(self) -> int:
        """Delete the entries of other code versions under the prefix; returns the bytes deleted."""
        old = [o for o in self._objects() if not o["Key"][len(self.prefix):].startswith(folder_name() + "/")]
        for start in range(0, len(old), 1000):
            batch = old[start:start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": o["Key"]} for o in batch]})
        return sum(o["Size"] for o in old)
