"""Compressed variants of published objects (gzip at the key, brotli at ``<key>.br``), cached by content hash.

Which keys are compressed is decided by bosco's own type table (``assetset.type_info``), never by
comparing MIME strings. Both encoders are deterministic (gzip with ``mtime=0``), so the same bytes
always give the same compressed body, and a body computed once can be reused from the cache on
every later push: brotli at quality 11 is the slowest step of a publish.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import brotli

from bosco.assetset import type_info
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
BROTLI_QUALITY = 11


def encodings_for(key: str, compress: bool = True) -> tuple[Encoding, ...]:
    """The stored forms of asset ``key``: gzip at the key plus brotli at ``<key>.br`` for types that
    bosco's table marks compressible, else the raw bytes only (also when ``compress`` is False)."""
    if compress and type_info(key)[2]:
        return (GZIP, BROTLI)
    return (IDENTITY,)


def encode(data: bytes, encoding: Encoding, text: bool = True) -> bytes:
    """``data`` in ``encoding``: gzip level 9 with a zero mtime, brotli quality 11 (text mode when
    ``text``), or unchanged for ``IDENTITY``."""
    if encoding == GZIP:
        return gzip.compress(data, GZIP_LEVEL, mtime=0)
    if encoding == BROTLI:
        mode = brotli.MODE_TEXT if text else brotli.MODE_GENERIC
        return brotli.compress(data, mode=mode, quality=BROTLI_QUALITY)
    return data


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/bosco/compressed``, else ``~/.cache/bosco/compressed`` (XDG base directories)."""
    env = dict(os.environ) if env is None else env
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path(env.get("HOME", Path.home())) / ".cache"
    return base / "bosco" / "compressed"


class CompressionCache:
    """Compressed bodies stored as ``<folder>/<sha256[:2]>/<sha256>.<encoding>``; ``folder=None``
    disables caching. Safe to use from many threads: entries are written atomically and a racing
    writer writes the same bytes."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, sha256: str, encoding: Encoding) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / sha256[:2] / f"{sha256}.{encoding.name}"

    def size(self, sha256: str, encoding: Encoding) -> int | None:
        """Size in bytes of the cached body, or None when it is not cached."""
        path = self._path(sha256, encoding)
        try:
            return path.stat().st_size if path else None
        except OSError:
            return None

    def body(self, data: bytes, sha256: str, encoding: Encoding, key: str) -> bytes:
        """``data`` (whose hex SHA-256 is ``sha256``) in ``encoding``, from the cache when present,
        else encoded and stored. ``key`` picks brotli's text mode. A cache folder that cannot be
        written is ignored (the body is still returned)."""
        if encoding == IDENTITY:
            return data
        path = self._path(sha256, encoding)
        if path is not None:
            try:
                return path.read_bytes()
            except OSError:
                pass
        body = encode(data, encoding, type_info(key)[1])
        if path is not None:
            with contextlib.suppress(OSError):
                write_file(path, body)
        return body
