"""The local-directory target of ``bosco build --out DIR``: one file per asset key."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

from bosco.assetset import AssetSet
from bosco.errors import PublishError


def key_path(root: Path, key: str) -> Path:
    """The file for ``key`` under ``root``. Raises ``PublishError`` for a key that would leave it."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise PublishError(f"asset key {key!r} is not a safe relative path")
    return root.joinpath(*parts)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_directory(asset_set: AssetSet, out: Path) -> list[str]:
    """Write every output of ``asset_set`` to ``out/<key>`` and return the keys in written order.

    Files not in the set are left alone. Raises ``PublishError`` when ``out`` cannot be written."""
    written = []
    try:
        for key, output in asset_set.outputs.items():
            write_file(key_path(out, key), output.data)
            written.append(key)
    except OSError as exc:
        raise PublishError(f"{out}: cannot write ({exc.strerror})", "check the --out folder") from exc
    return written
