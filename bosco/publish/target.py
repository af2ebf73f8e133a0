"""What a publish target (an S3 bucket prefix or a local folder) offers the release code.

Keys given to a target are asset keys plus an encoding suffix (``app-home/55/js/top.js.br``),
relative to the target's root: the S3 target adds ``<environment>/``, the local target joins them
under its folder. Both targets implement the same ``Target`` protocol, so ``bosco build --out``
and ``bosco s3push`` run the same release code.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Headers:
    """The headers stored with one object. ``sha256`` is the hex SHA-256 of the uncompressed bytes
    (``x-amz-meta-sha256`` on S3); ``content_encoding`` is ``""`` for raw bytes."""

    content_type: str
    cache_control: str
    content_encoding: str
    sha256: str


@dataclass(frozen=True)
class StoredObject:
    """An object found at a target: ``size`` in bytes as stored, ``sha256`` as recorded with it
    (None when it carries none), ``modified`` in seconds since the epoch."""

    key: str
    size: int
    sha256: str | None
    modified: float = 0.0


class SourceMissing(Exception):
    """Raised by ``Target.copy`` when the copy source does not exist (any more)."""


class Target(Protocol):
    """A place a release is published to. Every method raises ``PublishError`` on failure, except
    ``copy`` which raises ``SourceMissing`` when the source is gone."""

    #: store compressed variants (gzip at the key, brotli at ``<key>.br``); False stores raw bytes
    compress: bool
    #: ``head`` costs no request and checks the stored bytes (a local folder, where files can be
    #: edited behind bosco's back): the release code asks it instead of trusting a release index
    cheap_head: bool
    #: human-readable location, e.g. ``s3://bucket/tes/`` or a folder path
    description: str

    def list(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix`` (which ends with ``/``, or ``""`` for the whole target) -> stored size
        in bytes."""

    def folders(self, prefix: str) -> list[str]:
        """The names of the immediate sub-folders of ``prefix`` (which ends with ``/``, or ``""`` for the
        top level)."""

    def head(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None when there is none."""

    def read(self, key: str) -> bytes | None:
        """The stored bytes at ``key``, or None when there is none."""

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The stored bytes at ``key`` and their version for ``put_if`` (the ETag on S3, the SHA-256
        in a folder), or None."""

    def put_if(self, key: str, body: bytes, headers: Headers, version: str | None) -> bool:
        """Store ``body`` at ``key`` only if the object there still has ``version`` (None:
        only if there is no object); False when another writer changed it first."""

    def put(self, key: str, body: bytes, headers: Headers) -> None:
        """Store ``body`` at ``key`` with ``headers``."""

    def copy(self, source: str, key: str, headers: Headers) -> None:
        """Copy the object at ``source`` to ``key`` inside the target, replacing its headers."""

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (in batches where the target has a batch limit)."""


@contextmanager
def request_pool(concurrency: int) -> Iterator[ThreadPoolExecutor]:
    """Threads for ``concurrency`` target requests (or compressions) at a time. Leaving by Ctrl-C
    (SIGTERM) cancels the tasks not started and does not wait for those in flight: an object is
    stored whole or not at all, and no release index is written after an interrupted stage."""
    pool = ThreadPoolExecutor(concurrency)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
