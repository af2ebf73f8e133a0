"""Reading JSON files with errors that name the file, line and column."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from json.decoder import scanstring
from pathlib import Path
from typing import Any

from bosco.errors import BoscoError, InputFileError
from bosco.files import read_text

MAX_DEPTH = 64  # nesting levels of arrays/objects; manifests, configs and package.json need a handful


def depth(value: Any) -> int:
    """How deeply ``value`` (parsed JSON) nests arrays and objects (0 for a scalar); iterative."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(text: str, shown: str, error: type[BoscoError], hint: str | None = None,
               max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text`` (the content of the file shown as ``shown``).

    Raises ``error`` with ``"<shown>:<line>:<col>: invalid JSON: <reason>"`` for invalid JSON (see
    ``explain``), or ``"<shown>: <reason>"`` when an object repeats a key
    (JSON parsers silently keep the last one; we refuse to guess) or arrays/objects nest deeper
    than ``max_depth`` levels (RFC 8259 §9 lets a parser limit nesting).
    """
    too_deep = error(f"{shown}: JSON nested deeper than {max_depth} levels", hint)
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{shown}:{explain(exc)}", hint) from exc
    except _DuplicateKey as exc:
        where = next((f":{position(text, pos)}" for pos in _repeated_keys(text)), "")
        raise error(f"{shown}{where}: key {json.dumps(exc.args[0])} appears twice in one object; only one can "
                    "count", hint) from exc
    except RecursionError:
        raise too_deep from None
    if depth(value) > max_depth:
        raise too_deep
    return value


def load_json(path: Path, error: type[BoscoError], hint: str) -> Any:
    """Parse the JSON file at ``path`` (``parse_json``). Raises ``error`` naming the file when it is
    not a regular file (a FIFO is never opened), cannot be read, is not UTF-8 or not valid JSON."""
    return load_json_text(path, error, hint)[0]


def load_json_text(path: Path, error: type[BoscoError], hint: str) -> tuple[Any, str]:
    """``load_json`` that also returns the file's text (to place later errors with ``locate``)."""
    try:
        text = read_text(path)
    except InputFileError as exc:
        raise error(str(exc), hint) from exc
    return parse_json(text, str(path), error, hint), text


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def position(text: str, pos: int) -> str:
    """``line:column`` of index ``pos`` of ``text``, both 1-based as editors count them."""
    return f"{text.count(chr(10), 0, pos) + 1}:{pos - text.rfind(chr(10), 0, pos)}"


def explain(exc: json.JSONDecodeError) -> str:
    """``"<line>:<col>: invalid JSON: <reason>"`` for a JSON syntax error, in plain words and at the
    place to fix (RFC 8259 grammar): a trailing comma is named at the comma, a missing ``,`` or
    ``:`` right after the value or key it should follow, a comment, a single-quoted string, a
    bare word or the end of the file as what they are. Other errors keep Python's wording."""
    text, pos, msg = exc.doc, exc.pos, exc.msg
    before = len(text[:pos].rstrip())  # just after the last token before the error
    last = text[before - 1] if before else ""
    here = text[pos] if pos < len(text) else ""
    if not text.strip():
        pos, reason = 0, "the file is empty"
    elif text.startswith(("//", "/*"), pos):
        reason = "comments are not allowed in JSON"
    elif msg.startswith("Unterminated string"):
        reason = 'a string is not closed (its closing " is missing)'
    elif msg.startswith("Invalid control character"):
        reason = r"a line break, tab or other control character inside a string (write it as \n or \t)"
    elif msg.startswith("Extra data"):
        reason = "text after the end of the JSON value (one value per file; a bracket closed too early?)"
    elif not here:
        reason = "the file ends too early (a value or a closing bracket is missing)"
    elif last == "," and here in "}]":
        pos, reason = before - 1, f"trailing comma before '{here}' (JSON allows none)"
    elif msg == "Expecting ',' delimiter":
        pos, reason = before, "missing ',' after this value"
    elif msg == "Expecting ':' delimiter":
        pos, reason = before, "missing ':' after this key"
    elif here == "'":
        reason = "strings and keys need double quotes, not single quotes"
    elif msg.startswith("Expecting property name"):
        reason = "expected a key in double quotes"
    elif here.isalpha() or here == "_":
        word = text[pos:].split(None, 1)[0].rstrip(",:]}")[:20]
        reason = f"{word} is not a JSON value (strings need double quotes; the words are true, false and null)"
    else:
        reason = msg[0].lower() + msg[1:]
    return f"{position(text, pos)}: invalid JSON: {reason}"


Key = tuple[str | int, ...]
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON whitespace (RFC 8259 section 2)
_SCALAR = json.JSONDecoder()


def members(text: str) -> Iterator[tuple[Key, int]]:
    """Every object member and array item of the valid JSON document ``text``, in document order:
    ``(key, pos)`` where ``key`` is the path from the root (object keys as ``str``, array indexes as
    ``int``) and ``pos`` the index in ``text`` where the member's key (or the item) starts.

    For error messages only (a pure-Python walk); ``text`` must already have parsed."""
    stack: list[tuple[Key, int]] = []  # containers being walked: (path, -1 for an object or next index)
    pos, path = _SPACE.match(text).end(), ()
    while True:  # pos: where the value at ``path`` starts
        ended = True
        if text[pos] in "{[":
            stack.append((path, -1 if text[pos] == "{" else 0))
            pos = _SPACE.match(text, pos + 1).end()
            ended = text[pos] in "}]"  # an empty container ends here; else its first member starts here
            if ended:
                stack.pop()
        else:
            pos = _SCALAR.raw_decode(text, pos)[1] - 1  # the scalar's last character
        while ended:  # after a value: "," starts the next member, a bracket closes the container
            if not stack:
                return
            pos = _SPACE.match(text, pos + 1).end()
            if text[pos] == ",":
                pos, ended = _SPACE.match(text, pos + 1).end(), False
            else:
                stack.pop()
        parent, index = stack[-1]
        if index < 0:  # an object member: "key" : value
            key, after = scanstring(text, pos + 1)
            path = (*parent, key)
            yield path, pos
            pos = _SPACE.match(text, _SPACE.match(text, after).end() + 1).end()
        else:
            stack[-1] = (parent, index + 1)
            path = (*parent, index)
            yield path, pos


def _repeated_keys(text: str) -> Iterator[int]:
    """Where a key repeats in its object in ``text`` (valid JSON): the position of each repetition."""
    seen: set[Key] = set()
    for key, pos in members(text):
        if key in seen:
            yield pos
        seen.add(key)


def dotted(key: Key) -> str:
    """``key`` as messages show it: object keys joined by ``.``, array indexes as ``[i]``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in key).lstrip(".")


def locate(text: str, where: str) -> str | None:
    """``line:column`` where the member shown as ``where`` (see ``dotted``) starts in ``text``, the
    valid JSON document it came from; None when no member is shown that way."""
    return next((position(text, pos) for key, pos in members(text) if dotted(key) == where), None)


def json_type(value: Any) -> str:
    """How JSON names the type of ``value``: ``a string``, ``a number``, ``true or false``, ``a list``..."""
    if isinstance(value, bool):
        return "true or false"
    kinds = ((str, "a string"), ((int, float), "a number"), (list, "a list"), (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")
