"""Reading the files that inputs name, safely (README "Files bosco reads"), and writing files atomically.

Every file bosco reads because a manifest, map, stylesheet or config names it goes through here:
only regular files are read (a FIFO, socket or device is never opened, so a build can never block on
one), a path named inside a service must resolve inside that service's repository after symlinks,
and text is UTF-8 with a leading BOM removed. Problems are ``InputFileError``s whose
message names the file as the caller shows it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bosco import stamps
from bosco.errors import InputFileError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _mode_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file (symlinks followed), or None when it is one:
    ``"is a FIFO (named pipe)"``, ``"is a socket"``, ``"is a character device"``, ``"is a folder"``,
    ``"is a broken symlink"``, ``"is a symlink loop"``, ``"does not exist"``... Never opens the file.
    Inside ``stamps.recording()`` the answer is recorded."""
    found = _problem(path)
    stamps.saw("check", path, found)
    return found


def _problem(path: Path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            link = False
        if not link:
            return "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc.strerror})"
        return "is a symlink loop" if exc.errno == errno.ELOOP else "is a broken symlink"
    except ValueError:  # an embedded NUL byte
        return "is not a valid path"
    return None if stat.S_ISREG(mode) else f"is {_mode_kind(mode)}"


def read_bytes(path: Path, shown: str | None = None) -> bytes:
    """The bytes of the regular file ``path``. Raises ``InputFileError`` naming ``shown`` (default:
    ``path``) when it is anything else or cannot be read; other kinds of file are never opened
    (checked before opening, and again on the open descriptor). Inside ``stamps.recording()`` the
    SHA-256 of the bytes read is recorded."""
    shown = shown or str(path)
    reason = problem(path)
    if reason:
        kind = reason.startswith("is ")
        raise InputFileError(f"{shown}: {reason}" + (", not a regular file; not read" if kind else ""))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputFileError(f"{shown}: cannot read ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the check and the open
            raise InputFileError(f"{shown}: is {_mode_kind(st.st_mode)}, not a regular file; not read")
        data = stamps.take_read(path, st)  # hashed just now for a cache key: not read again
        if data is None:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read()
        if stamps.recording_active():
            # a file rewritten in place while it was read has other bytes than the stat before
            # the read tells: only a stat unchanged across the read may name them
            unchanged = stamps.stamp(os.fstat(fd)) == stamps.stamp(st)
            digest = stamps.known_sha256(path, st) if unchanged else None
            if digest is None:
                digest = hashlib.sha256(data).hexdigest()
                if unchanged:
                    stamps.remember(path, st, digest)
            stamps.saw("read", path, digest)
        return data
    except OSError as exc:
        raise InputFileError(f"{shown}: cannot read ({exc.strerror})") from exc
    finally:
        os.close(fd)


def decode(data: bytes, shown: str) -> str:
    """``data`` decoded as UTF-8 without a leading BOM; ``InputFileError`` naming ``shown`` otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{shown}: cannot read as UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: Path, shown: str | None = None) -> str:
    """``read_bytes`` decoded as UTF-8 with a leading BOM removed."""
    return decode(read_bytes(path, shown), shown or str(path))


def inside(repo: Path, path: Path, shown: str) -> Path:
    """``path`` resolved (symlinks followed); raises ``InputFileError`` naming ``shown`` when it
    lies outside ``repo`` (the file is then never read or even checked for existence). Inside
    ``stamps.recording()`` the resolved path is recorded."""
    repo_real = repo.resolve()
    try:
        real = path.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, an embedded NUL byte
        stamps.saw("resolve", path, None)
        raise InputFileError(f"{shown}: cannot be resolved ({exc}); not read") from exc
    stamps.saw("resolve", path, str(real))
    if real != repo_real and repo_real not in real.parents:
        raise InputFileError(f"{shown}: resolves outside the repository; not read")
    return real


def write_atomic(path: Path, data: bytes | Sequence[bytes], mode: int | None = None) -> None:
    """Write ``data`` (bytes, or chunks written one after the other) to ``path`` through a temporary
    file in the same folder and a rename, so a reader sees the old bytes or the new ones, never part
    of them; ``mode`` sets the permissions (else the temporary file's 0600). Raises ``OSError``;
    the temporary file never stays behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.writelines([data] if isinstance(data, bytes) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
