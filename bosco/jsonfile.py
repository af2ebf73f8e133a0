"""Reading JSON files with errors that name the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bosco.errors import BoscoError


def read_text(path: Path) -> str:
    """Read ``path`` as UTF-8, removing a leading BOM (DESIGN §7)."""
    text = path.read_bytes().decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def load_json(path: Path, error: type[BoscoError], hint: str) -> Any:
    """Parse the JSON file at ``path``.

    Raises ``error`` with ``"<path>:<line>:<col>: <reason>"`` for invalid JSON (lines and columns
    are 1-based, as editors count them), or ``"<path>: <reason>"`` when it cannot be read or decoded.
    """
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})", hint) from exc
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})", hint) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}", hint) from exc
