"""The local-directory target of ``bosco build --out DIR``: one file per key, raw bytes, no headers.

It implements ``publish.target.Target``, so ``bosco build --out`` runs the same release code as
``bosco s3push`` (order, incremental skip, release index written last); files not in the release
are left alone.

The folder's state (per key the size, mtime, ctime, inode and SHA-256 of the file bosco wrote or
hashed, kept in bosco's cache folder under ``out/``, never in the folder itself) lets a later run
trust a file whose ``os.stat`` is unchanged instead of reading and hashing it again; a file changed,
replaced or deleted since has another stat (writing a file always moves its ctime) and is read,
hashed and rewritten as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from bosco.errors import PublishError
from bosco.files import write_atomic
from bosco.publish.target import Headers, SourceMissing, StoredObject

if TYPE_CHECKING:
    from bosco.assetset import ServiceResult


def key_path(root: Path, key: str) -> Path:
    """The file for ``key`` under ``root``. Raises ``PublishError`` for a key that would leave it."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise PublishError(f"asset key {key!r} is not a safe relative path")
    return root.joinpath(*parts)


def check_out_dir(out: Path, root: Path) -> None:
    """Refuse an output folder that would overwrite sources: the workspace root itself, a folder
    holding the workspace, or any folder inside a service repo (a subfolder of ``root`` with a
    ``bosco-service.json``). Raises ``PublishError`` naming both folders."""
    out, root = out.resolve(), root.resolve()
    if out == root or out in root.parents:
        raise PublishError(f"--out {out} contains the workspace {root}; writing there would mix "
                           "published files with sources", "pass a folder outside the service repos, e.g. ./out")
    if root in out.parents:
        repo = root / out.relative_to(root).parts[0]
        if (repo / "bosco-service.json").is_file():
            raise PublishError(f"--out {out} is inside the service repo {repo}; it could overwrite its sources "
                               "and be picked up by its globs", "pass a folder outside the service repos, e.g. ./out")


STATE_FORMAT = 1


def state_path(root: Path) -> Path | None:
    """Where the state of the output folder ``root`` is kept: ``<cache folder>/out/<SHA-256 of its
    absolute path>.json`` (None when the disk cache is off, ``BOSCO_CACHE=0``)."""
    from bosco.cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder / "out" / (hashlib.sha256(os.fsencode(root.resolve())).hexdigest() + ".json")


def stat_stamp(st: os.stat_result) -> list[int]:
    """What identifies one version of a file without reading it: size, mtime and ctime in
    nanoseconds, inode and device. Rewriting a file changes its ctime, which ``touch`` cannot set back."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by everyone (``files.write_atomic``, 0644)."""
    write_atomic(path, data, 0o644)


@contextmanager
def write_errors(root: Path) -> Iterator[None]:
    """Turn an ``OSError`` inside into a ``PublishError`` naming the output folder ``root``."""
    try:
        yield
    except OSError as exc:
        raise PublishError(f"{root}: cannot write ({exc.strerror}: {exc.filename})", "check the --out folder") from exc


STAGING_PREFIX = ".bosco-staging-"


class Staged:
    """The bytes of one output that ``Staging`` wrote into its folder and no longer holds in memory:
    ``len()`` is their length, ``sha256`` their SHA-256 hex, ``bytes()`` reads them back;
    ``DirectoryTarget.put`` moves the file into place instead of writing the bytes."""

    __slots__ = ("path", "size", "sha256")

    def __init__(self, path: Path, size: int, sha256: str) -> None:
        self.path, self.size, self.sha256 = path, size, sha256

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return self.path.read_bytes()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Staged):
            return other.sha256 == self.sha256
        return isinstance(other, bytes) and len(other) == self.size and hashlib.sha256(other).hexdigest() == self.sha256

    __hash__ = None  # type: ignore[assignment]  # like bytes compared by value, but mutable on disk


class Staging:
    """Where ``build --out`` puts each service's bundles and source maps as soon as that service is
    built, so the asset set is never held in memory whole: a hidden folder ``.bosco-staging-*``
    made inside the output folder at the first ``stage`` (same file system: ``DirectoryTarget.put``
    moves a staged file into place with one rename, in publish order). One background thread writes
    the files while the build goes on. ``close`` removes the folder with whatever was not moved
    (a build that failed, a file already in place), and the output folder itself when this run made
    it and left it empty, so a failed build leaves the folder as it was. Raises ``PublishError``
    naming the folder when it cannot be written."""

    KINDS = frozenset({"bundle", "map"})
    IN_FLIGHT = 32 * 1024 * 1024  # bytes handed to the writer and not written yet, at most (a slow disk)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder: Path | None = None
        self._made_root = False
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._in_flight: list[tuple[Future[None], int]] = []
        self._failed = False

    def stage(self, result: ServiceResult) -> ServiceResult:
        """``result`` with its bundles and maps written to the staging folder (in the background) and
        replaced by ``Staged`` stand-ins (``Output.standing_in``). A service with errors, and every
        service after one, is left as it is: nothing of that build will be written."""
        self._failed = self._failed or bool(result.all_errors)
        if self._failed or not any(o.kind in self.KINDS for o in result.outputs):
            return result
        if self.folder is None:
            with self._errors():
                self._made_root = not self.root.exists()
                self.root.mkdir(parents=True, exist_ok=True)
                self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))
            self._writer = ThreadPoolExecutor(1, "bosco-staging")
        assert self._writer is not None
        outputs = []
        for output in result.outputs:
            if output.kind in self.KINDS and isinstance(output.data, bytes):
                path = self.folder / f".{len(self._pending)}"
                self._pending.append(self._writer.submit(_write_new, path, output.data))
                self._in_flight.append((self._pending[-1], len(output.data)))
                output = output.standing_in(Staged(path, len(output.data), output.sha256))
            outputs.append(output)
        with self._errors():  # the bytes waiting for the writer count too: past IN_FLIGHT, wait for it
            while sum(size for _, size in self._in_flight) > self.IN_FLIGHT:
                self._in_flight.pop(0)[0].result()
            self._in_flight = [(future, size) for future, size in self._in_flight if not future.done()]
        return replace(result, outputs=tuple(outputs))

    def wait(self) -> None:
        """Block until every staged file is written; raises ``PublishError`` when one could not be."""
        with self._errors():
            for future in self._pending:
                future.result()

    def close(self) -> None:
        """Remove the staging folder (files not moved into place go with it) and, when this run made
        the output folder and left it empty, that folder too."""
        if self._writer is not None:
            self._writer.shutdown(cancel_futures=True)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            if self._made_root:
                with suppress(OSError):
                    self.root.rmdir()  # only when empty

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _errors(self) -> AbstractContextManager[None]:
        return write_errors(self.root)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path``, readable by everyone (0644, as ``write_file``)."""
    with open(path, "xb") as handle:
        handle.write(data)
    os.chmod(path, 0o644)


def load_state(root: Path) -> dict[str, Any]:
    """The saved state of the output folder ``root``: ``files`` (key -> ``[*stat_stamp, sha256 hex]``
    of the files bosco wrote or hashed there) and ``run`` (``noop.run_record`` of the last run, or
    None); empty when there is none."""
    path = state_path(root)
    try:
        data = json.loads(path.read_bytes()) if path else None
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT or not isinstance(data.get("files"), dict):
        return {}
    return {"files": {k: v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 6},
            "run": data.get("run")}


class DirectoryTarget:
    """A folder as a publish target: key ``a/b.js`` is the file ``<root>/a/b.js``. Stores raw bytes
    (``compress`` is False) and no headers. Raises ``PublishError`` naming the folder when a file
    cannot be read or written."""

    compress = False
    cheap_head = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        self.created: list[Path] = []  # files this target created, for ``discard_created``
        self.known = self._load_state()  # key -> [*stat_stamp, sha256 hex] of files bosco wrote or hashed

    def _load_state(self) -> dict[str, list]:
        return load_state(self.root).get("files", {})

    def save_state(self, run: dict[str, Any] | None = None) -> None:
        """Write the folder's state (after a run; errors are ignored: it only saves time), with
        ``run``, the record of this run (``noop.run_record``), when given."""
        path = state_path(self.root)
        if path is None:
            return
        with suppress(OSError):
            state = {"format": STATE_FORMAT, "files": self.known, "run": run}
            write_atomic(path, json.dumps(state, separators=(",", ":")).encode())

    def _remember(self, key: str, path: Path, data: bytes | Staged, digest: str | None = None) -> str:
        """Record the stat of ``path`` and the SHA-256 of ``data`` it holds (``digest`` when the caller knows it)."""
        digest = digest or hashlib.sha256(data).hexdigest()
        try:
            self.known[key] = [*stat_stamp(os.stat(path)), digest]
        except OSError:
            self.known.pop(key, None)
        return digest

    def _sha256(self, key: str, path: Path) -> tuple[str, os.stat_result]:
        """The SHA-256 of the file of ``key``: the recorded one while its stat is unchanged, else read and hashed."""
        st = os.stat(path)
        known = self.known.get(key)
        if known is not None and known[:5] == stat_stamp(st):
            return known[5], st
        return self._remember(key, path, path.read_bytes()), st

    def _errors(self) -> AbstractContextManager[None]:
        return write_errors(self.root)

    def list(self, prefix: str) -> dict[str, int]:
        folder = key_path(self.root, prefix.rstrip("/")) if prefix else self.root
        with self._errors():
            return {p.relative_to(self.root).as_posix(): p.stat().st_size
                    for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}

    def folders(self, prefix: str) -> list[str]:
        folder = key_path(self.root, prefix.rstrip("/")) if prefix else self.root
        with self._errors():
            return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def head(self, key: str) -> StoredObject | None:
        path = key_path(self.root, key)
        if not path.is_file():
            return None
        with self._errors():
            digest, st = self._sha256(key, path)
            return StoredObject(key, st.st_size, digest, st.st_mtime)

    def read(self, key: str) -> bytes | None:
        found = self.read_versioned(key)
        return found[0] if found else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The file's bytes and their SHA-256 as the version."""
        path = key_path(self.root, key)
        with self._errors():
            data = path.read_bytes() if path.is_file() else None
            return (data, self._remember(key, path, data)) if data is not None else None

    def put_if(self, key: str, body: bytes, headers: Headers, version: str | None) -> bool:
        """Compare, then replace atomically; two processes writing the same folder at the same
        instant can still race (a folder has no conditional write)."""
        found = self.read_versioned(key)
        if (found[1] if found else None) != version:
            return False
        self.put(key, body, headers)
        return True

    def _write(self, key: str, body: bytes | Staged, digest: str | None = None) -> None:
        path = key_path(self.root, key)
        new = not path.exists()
        self.known.pop(key, None)
        try:
            if isinstance(body, Staged):  # written ahead by ``Staging``: moved into place
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(body.path, path)
                digest = body.sha256
            else:
                write_file(path, body)
        except OSError as exc:  # ENOSPC/EFBIG on write carry no file name: name it here
            if new:  # the folders made for it go with the run's other files (discard_created)
                self.created.append(path)
            raise PublishError(f"{path}: cannot write ({exc.strerror})",
                               "check the --out folder (free space, permissions, name length)") from exc
        self._remember(key, path, body, digest)
        if new:
            self.created.append(path)

    def put(self, key: str, body: bytes | Staged, headers: Headers) -> None:
        # raw bytes (this target never compresses): ``headers.sha256``, the digest of the
        # uncompressed bytes, is the body's own, so the body is not hashed again
        self._write(key, body, None if headers.content_encoding else headers.sha256)

    def copy(self, source: str, key: str, headers: Headers) -> None:
        source_path = key_path(self.root, source)
        if not source_path.is_file():
            raise SourceMissing(source)
        with self._errors():
            body = source_path.read_bytes()
        self._write(key, body)

    def discard_created(self) -> None:
        """Remove the files this target created, then the folders under ``root`` left empty: after a
        failed run, so it leaves no half result (files it replaced stay replaced)."""
        for path in reversed(self.created):
            path.unlink(missing_ok=True)
            for folder in path.parents:
                if folder == self.root or self.root not in folder.parents:
                    break
                try:
                    folder.rmdir()
                except OSError:  # not empty
                    break
        self.created.clear()

    def delete(self, keys: list[str]) -> None:
        with self._errors():
            for key in keys:
                self.known.pop(key, None)
                key_path(self.root, key).unlink(missing_ok=True)
