"""File identities without reading: stat stamps, content hashes remembered by stamp, and the record
of which files a result was made from.

A file whose ``os.stat`` stamp (size, mtime and ctime in nanoseconds, inode, device) is unchanged
has unchanged bytes: writing a file moves its ctime, which no tool can set back. So the SHA-256 of
an input is computed once and then known from one ``stat`` call, in this process and the next (the
remembered hashes live in bosco's cache folder, ``stamps.pickle``; none with ``BOSCO_CACHE=0``).

``recording()`` lists every file a piece of work checked, read or resolved through ``bosco.files``
(the one place bosco reads the files inputs name), so a result cached by the hashes of its listed
inputs can also be checked against the files it found on its own (a CSS ``@import``, a map
named by a ``sourceMappingURL`` comment, the sources of a composed map, a file that did not exist):
``unchanged(record)`` is True only when every one of them is as it was.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

Stamp = tuple[int, int, int, int, int]
Record = dict[tuple[str, str], "str | None"]  # (what, path) -> what was seen

RACY_NS = 2_000_000_000  # the coarsest file time resolution in use (FAT: 2 s)
MAX_REMEMBERED = 100_000  # hashes kept across runs (the oldest go first)
_known: dict[str, tuple[Stamp, str]] | None = None  # path -> (stamp, sha256 hex)
_changed = False
_lock = threading.Lock()
_local = threading.local()


def stamp(st: os.stat_result) -> Stamp:
    """The identity of one version of a file: size, mtime, ctime, inode, device."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _store_path() -> Path | None:
    from bosco.cache import cache_dir  # the cache imports bosco.files, which imports this module

    folder = cache_dir()
    return folder / "stamps.pickle" if folder else None


def _table() -> dict[str, tuple[Stamp, str]]:
    global _known
    if _known is None:
        from bosco.cache import read_sealed  # the cache imports bosco.files, which imports this module

        path = _store_path()
        try:  # damaged (cut short, flipped bytes) or not loadable by this code: forgotten
            payload = read_sealed(path) if path else None
            loaded = pickle.loads(payload) if payload is not None else {}
        except Exception:  # noqa: BLE001 - a table this code cannot load is forgotten, like a damaged one
            loaded = {}
        _known = loaded if isinstance(loaded, dict) else {}
    return _known


def folder_stamp(st: os.stat_result) -> str:
    """What a folder's listing is known by: its mtime, ctime and inode. Adding, removing or renaming
    an entry moves the mtime and the ctime; ``tar x``, ``rsync -t`` or ``cp -p`` set the mtime of a
    folder they filled back, but no tool can set its ctime back."""
    return f"{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def remember(path: Path | str, st: os.stat_result, digest: str) -> None:
    """Note that the file ``path`` with stat ``st`` holds bytes whose SHA-256 hex is ``digest``;
    not when it changed less than ``RACY_NS`` ago (a file system may give a second write in the same
    clock tick the same times: such a file is hashed again until it is older)."""
    global _changed
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return
    with _lock:
        table = _table()
        entry = (stamp(st), digest)
        key = os.fspath(path)
        if table.get(key) != entry:
            table[key] = entry
            _changed = True


def known_sha256(path: Path | str, st: os.stat_result) -> str | None:
    """The remembered SHA-256 of ``path`` when its stat is still ``st``, else None."""
    with _lock:
        found = _table().get(os.fspath(path))
    return found[1] if found is not None and found[0] == stamp(st) else None


def sha256(path: Path | str) -> str | None:
    """The SHA-256 hex of the file at ``path`` (symlinks followed): remembered while its stat stamp
    is unchanged, else read and hashed (the bytes are kept for the read that follows: ``take_read``).
    None when it cannot be read."""
    try:
        st = os.stat(path)
        found = known_sha256(path, st)
        if found is not None:
            return found
        with open(path, "rb") as handle:
            data = handle.read()
            after = os.fstat(handle.fileno())
    except (OSError, ValueError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    remember(path, after, digest)
    if stamp(after) == stamp(st):  # not rewritten while it was read
        _keep_read(os.fspath(path), stamp(st), data)
    return digest


JUST_READ = 8  # files whose bytes ``sha256`` keeps for ``take_read``, the most recent ones
_just_read: dict[str, tuple[Stamp, bytes]] = {}


def _keep_read(path: str, found: Stamp, data: bytes) -> None:
    with _lock:
        _just_read.pop(path, None)
        _just_read[path] = (found, data)
        while len(_just_read) > JUST_READ:
            _just_read.pop(next(iter(_just_read)))


def take_read(path: Path | str, st: os.stat_result) -> bytes | None:
    """The bytes ``sha256`` just read from ``path`` when its stat is still ``st``, handed out once:
    a build hashes an input (a cache key) right before it reads it (a miss), and a file is read
    from the disk once. None when there are none (or the file changed since)."""
    with _lock:
        found = _just_read.pop(os.fspath(path), None)
    return found[1] if found is not None and found[0] == stamp(st) else None


def save() -> None:
    """Write the remembered hashes to the cache folder when they changed (at exit; errors ignored)."""
    global _changed
    if not _changed or _known is None:
        return
    path = _store_path()
    if path is None:
        return
    from bosco.cache import seal
    from bosco.files import write_atomic

    with _lock:
        items = list(_known.items())[-MAX_REMEMBERED:]
        _changed = False
    with suppress(OSError):
        write_atomic(path, seal(pickle.dumps(dict(items), protocol=pickle.HIGHEST_PROTOCOL)))


atexit.register(save)


# ---- what a piece of work was made from ----------------------------------------------------

@contextmanager
def recording() -> Iterator[Record]:
    """Record what this thread's reads through ``bosco.files`` saw while inside: yields the record
    (``(what, path) -> seen``: ``read`` -> SHA-256, ``check`` -> ``files.problem``'s answer,
    ``resolve`` -> the resolved path, ``folder`` -> the ``folder_stamp`` of a folder a glob listed). A
    recording inside another one adds to both."""
    outer: Record | None = getattr(_local, "record", None)
    record: Record = {}
    _local.record = record
    try:
        yield record
    finally:
        _local.record = outer
        if outer is not None:
            outer.update(record)


def recording_active() -> bool:
    """True inside ``recording()`` (readers then report what they saw with ``saw``)."""
    return getattr(_local, "record", None) is not None


def saw(what: str, path: Path | str, seen: str | None) -> None:
    """Add one observation to the current recording (none: nothing happens)."""
    record = getattr(_local, "record", None)
    if record is not None:
        record.setdefault((what, os.fspath(path)), seen)


def include(record: Record) -> None:
    """Add what an earlier recording saw to the current one (none: nothing happens): a result
    taken from a cache still depends on the files its computation read."""
    current = getattr(_local, "record", None)
    if current is not None:
        for found, seen in record.items():
            current.setdefault(found, seen)


def unchanged(record: Record) -> bool:
    """True when every file of ``record`` would be seen the same way now: same content (by stat
    stamp, else hashed again), same ``files.problem`` answer, same resolved path, same
    ``folder_stamp`` (a file added, removed or renamed in a folder changes it)."""
    from bosco.files import problem

    for (what, path), seen in record.items():
        if what == "read":
            now = sha256(path)
        elif what == "check":
            now = problem(Path(path))
        elif what == "folder":
            try:
                now = folder_stamp(os.stat(path))
            except OSError:
                now = None
        else:
            try:
                now = str(Path(path).resolve())
            except (OSError, ValueError, RuntimeError):
                now = None
        if now != seen:
            return False
    return True
