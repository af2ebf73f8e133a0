"""Reading JSON files with errors that name the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bosco.errors import BoscoError


def read_text(path: Path) -> str:
    """Read ``path`` as UTF-8, removing a leading byte order mark (RFC 8259 §8.1 lets parsers ignore it)."""
    text = path.read_bytes().decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def load_json(path: Path, error: type[BoscoError], hint: str) -> Any:
    """Parse the JSON file at ``path``.

    Raises ``error`` with ``"<path>:<line>:<col>: <reason>"`` for invalid JSON (lines and columns
    are 1-based, as editors count them), or ``"<path>: <reason>"`` when it cannot be read or decoded
    or an object repeats a key (JSON parsers silently keep the last one; we refuse to guess).
    """
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})", hint) from exc
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})", hint) from exc
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}", hint) from exc
    except _DuplicateKey as exc:
        raise error(f"{path}: key {json.dumps(exc.args[0])} appears twice in one object; only one can count",
                    hint) from exc


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result
