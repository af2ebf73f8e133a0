"""Unknown keys and the known key they probably mean ("did you mean"), with ``difflib``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75  # SequenceMatcher ratio: catches one or two edits (prot/port, librarys/libraries, basepath)


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The entry of ``known`` closest to ``word`` (case-insensitive, ``difflib`` ratio of at least
    ``CUTOFF``), or None when nothing is close. ``word`` itself being known gives None."""
    by_lower = {k.lower(): k for k in known}
    if word in by_lower.values():
        return None
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=CUTOFF)
    return by_lower[found[0]] if found else None


def misspelt(keys: Iterable[str], known: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, meant)`` for every key of ``keys`` that is not in ``known`` but close to an entry of it,
    in ``keys`` order. Keys close to nothing are left out: they may belong to another tool."""
    known = list(known)
    pairs = ((key, close_match(key, known)) for key in keys if key not in known)
    return [(key, meant) for key, meant in pairs if meant is not None]
