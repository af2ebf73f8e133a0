"""On-disk cache of per-file results keyed by content hash (``$XDG_CACHE_HOME/bosco``).

Parsing, verifying and mapping a file costs far more than minifying it, so results are kept per
file content: an unchanged file is never parsed again, across runs and across services that ship
the same library. Entries are pickles written atomically by this process into the user's own cache
folder; an unreadable entry is a miss. ``BOSCO_CACHE=0`` turns the disk cache off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

_memory: dict[str, Any] = {}
MEMORY_ENTRIES = 4096


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/bosco`` (else ``~/.cache/bosco``); None when ``BOSCO_CACHE=0``."""
    if os.environ.get("BOSCO_CACHE") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bosco"


def key(*parts: str) -> str:
    """SHA-256 hex of the ``parts`` (each length-prefixed, so no two part lists collide)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _path(name: str) -> Path | None:
    folder = cache_dir()
    return folder / name[:2] / name if folder else None


def load(name: str) -> Any | None:
    """The value stored under ``name`` (memory first, then disk), or None."""
    if name in _memory:
        return _memory[name]
    path = _path(name)
    if path is None:
        return None
    try:
        value = pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    _remember(name, value)
    return value


def _remember(name: str, value: Any) -> None:
    if len(_memory) >= MEMORY_ENTRIES:
        _memory.pop(next(iter(_memory)))
    _memory[name] = value


def store(name: str, value: Any) -> None:
    """Keep ``value`` under ``name`` in memory and, when possible, on disk (errors are ignored:
    the cache only saves time)."""
    _remember(name, value)
    path = _path(name)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:
        return
