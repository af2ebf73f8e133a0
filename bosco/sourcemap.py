"""Source Map v3 (https://sourcemaps.info/spec.html): a streaming writer and a mappings decoder.

No maintained Python package both writes and decodes v3 mappings without pulling in a toolchain,
and the Base64 VLQ code is a few lines, so bosco owns it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_INDEX = {c: i for i, c in enumerate(_B64)}


def vlq(value: int) -> str:
    """Base64 VLQ of one signed integer (the sign in the lowest bit, 5 bits per digit)."""
    n = (-value << 1) | 1 if value < 0 else value << 1
    out = []
    while True:
        digit = n & 31
        n >>= 5
        if n:
            out.append(_B64[digit | 32])
        else:
            out.append(_B64[digit])
            return "".join(out)


def decode_mappings(mappings: str) -> list[list[tuple[int, ...]]]:
    """Decode a ``mappings`` string into lines of absolute segments.

    Each segment is ``(gen_col,)`` or ``(gen_col, source, src_line, src_col[, name])``, all 0-based.
    Raises ``ValueError`` on a character outside Base64.
    """
    lines: list[list[tuple[int, ...]]] = []
    src = src_line = src_col = name = 0
    for line_text in mappings.split(";"):
        gen_col = 0
        segments: list[tuple[int, ...]] = []
        for seg_text in line_text.split(","):
            if not seg_text:
                continue
            values, shift, acc = [], 0, 0
            for ch in seg_text:
                digit = _B64_INDEX[ch]
                acc += (digit & 31) << shift
                if digit & 32:
                    shift += 5
                else:
                    values.append(-(acc >> 1) if acc & 1 else acc >> 1)
                    shift = acc = 0
            gen_col += values[0]
            if len(values) >= 4:
                src += values[1]
                src_line += values[2]
                src_col += values[3]
                if len(values) >= 5:
                    name += values[4]
                    segments.append((gen_col, src, src_line, src_col, name))
                else:
                    segments.append((gen_col, src, src_line, src_col))
            else:
                segments.append((gen_col,))
        lines.append(segments)
    return lines


_ESCAPED: dict[str, bytes] = {}
ESCAPED_BYTES = 32 * 1024 * 1024  # bytes of escaped source text kept between maps
_escaped_size = 0


def _escaped(content: str | None) -> bytes:
    """``json.dumps(content)`` as (ASCII) bytes, memoised for large texts (up to ``ESCAPED_BYTES`` in
    all, the oldest dropped first): the same library sources appear in many bundles and rebuilds."""
    global _escaped_size
    if content is None or len(content) < 4096:
        return json.dumps(content).encode()
    found = _ESCAPED.get(content)
    if found is None:
        found = json.dumps(content).encode()
        while _ESCAPED and _escaped_size + len(found) > ESCAPED_BYTES:
            _escaped_size -= len(_ESCAPED.pop(next(iter(_ESCAPED))))
        _ESCAPED[content] = found
        _escaped_size += len(found)
    return found


# What a ``mappings`` text is made of (Base64 digits and the separators): JSON needs no escapes in it.
MAPPINGS = re.compile(r"[A-Za-z0-9+/,;]*")


_B64_BYTES = np.frombuffer(_B64.encode("ascii"), dtype=np.uint8)


@dataclass(frozen=True)
class FileMap:
    """The mappings of one file placed at generated line 0, column 0, with source index 0.

    ``first`` is the absolute ``(gen_line, gen_col, src_line, src_col)`` of its first segment,
    ``tail`` the ``mappings`` text after that segment (relative to it, as Source Map v3 encodes),
    ``lines`` the generated line count it spans and ``end`` the ``(src_line, src_col)`` of its last
    segment. ``MapWriter.append`` re-encodes only the first segment, so a cached FileMap is reused
    at any place in any bundle.
    """

    first: tuple[int, int, int, int]
    tail: str
    lines: int
    last_col: int
    end: tuple[int, int]


def _vlq_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(zigzag, digits)`` of integer ``values`` (whose doubled magnitude fits their type): the sign
    moved to the lowest bit, as ``vlq`` does, and how many Base64 VLQ digits (5 bits each) each takes."""
    zigzag = np.abs(values) << 1
    zigzag |= values < 0
    digits = 1 + (zigzag >= 32).astype(values.dtype)
    bits = 10
    while True:
        more = zigzag >= (1 << bits)
        if not more.any():
            return zigzag, digits
        digits += more
        bits += 5


def _put_vlq(out: np.ndarray, at: np.ndarray, zigzag: np.ndarray, digits: np.ndarray) -> None:
    """Write the Base64 VLQ digits of each ``zigzag`` value (of ``_vlq_digits``) into ``out`` from
    ``at``: lowest 5 bits first, the continuation bit (32) on every digit but the last."""
    while len(zigzag):
        out[at] = _B64_BYTES[(zigzag & 31) | ((digits > 1) << 5)]
        more = np.flatnonzero(digits > 1)
        zigzag, at, digits = zigzag[more] >> 5, at[more] + 1, digits[more] - 1


def encode_segments(gen_line: np.ndarray, gen_col: np.ndarray, src_line: np.ndarray,
                    src_col: np.ndarray) -> FileMap | None:
    """Encode segments (0-based int arrays of one length, in generated order, source index 0) as a
    ``FileMap``; None when there are none.

    Vectorised with numpy (minified bundles have millions of segments), character for character
    what ``vlq`` gives value by value: each value's digit count is known from its size, so where
    every segment starts in the ``mappings`` text is a cumulative sum. A segment is its separators
    (``,`` on the same generated line, else one ``;`` per line advanced), then its four values.
    """
    n = len(gen_line)
    if n == 0:
        return None
    # in int32 when every value is below 2**30 (any file bosco parses): half the memory traffic of int64
    dtype = np.int32 if max(int(v.max()) for v in (gen_line, gen_col, src_line, src_col)) < 2**30 else np.int64
    gen_line, gen_col, src_line, src_col = (v.astype(dtype) for v in (gen_line, gen_col, src_line, src_col))
    first = (int(gen_line[0]), int(gen_col[0]), int(src_line[0]), int(src_col[0]))
    lines, last_col, end = int(gen_line[-1]) + 1, int(gen_col[-1]), (int(src_line[-1]), int(src_col[-1]))
    if n == 1:
        return FileMap(first, "", lines, last_col, end)
    # The tail: segments 1..n-1, each relative to the one before (its column to the line's start).
    advance = np.diff(gen_line)
    same_line = advance == 0
    (z_col, d_col), (z_line, d_line), (z_src, d_src) = (_vlq_digits(v) for v in (
        gen_col[1:] - np.where(same_line, gen_col[:-1], 0), np.diff(src_line), np.diff(src_col)))
    values = d_col + 1 + d_line + d_src  # the source index delta is always 0: "A"
    at = np.cumsum(np.where(same_line, 1, advance) + values, dtype=np.int64) - values
    out = np.full(int(at[-1] + values[-1]), ord(";"), dtype=np.uint8)
    out[at[same_line] - 1] = ord(",")
    out[at + d_col] = ord("A")
    _put_vlq(out, at, z_col, d_col)
    _put_vlq(out, at + d_col + 1, z_line, d_line)
    _put_vlq(out, at + d_col + 1 + d_line, z_src, d_src)
    return FileMap(first, out.tobytes().decode("ascii"), lines, last_col, end)


class MapWriter:
    """Builds one source map; segments must be added in generated order (line, then column).

    ``add_source`` registers a source name (``<service>/<repo path>``) with its content and returns
    its index; ``segment`` adds one mapping; ``lines`` adds a run of line-to-line mappings cheaply.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.sources: list[str] = []
        self.contents: list[str | None] = []
        self._index: dict[str, int] = {}
        self._parts: list[str] = []
        self._line = 0
        self._col = 0
        self._line_has_segment = False
        self._src = self._src_line = self._src_col = 0

    def add_source(self, name: str, content: str | None) -> int:
        if name not in self._index:
            self._index[name] = len(self.sources)
            self.sources.append(name)
            self.contents.append(content)
        return self._index[name]

    def _goto(self, line: int, col: int) -> None:
        if line < self._line or (line == self._line and self._line_has_segment and col < self._col):
            raise ValueError(f"segment {line}:{col} added after {self._line}:{self._col}")
        if line > self._line:
            self._parts.append(";" * (line - self._line))
            self._line, self._col, self._line_has_segment = line, 0, False
        if self._line_has_segment:
            self._parts.append(",")

    def segment(self, line: int, col: int, src: int, src_line: int, src_col: int) -> None:
        """Map generated ``line:col`` to ``src_line:src_col`` of source ``src`` (all 0-based)."""
        self._goto(line, col)
        self._parts.append(
            vlq(col - self._col) + vlq(src - self._src) + vlq(src_line - self._src_line)
            + vlq(src_col - self._src_col)
        )
        self._col, self._src, self._src_line, self._src_col = col, src, src_line, src_col
        self._line_has_segment = True

    def lines(self, line: int, src: int, count: int, src_line: int = 0) -> None:
        """Map ``count`` generated lines from ``line`` on, column 0, to source lines from ``src_line``."""
        if count <= 0:
            return
        self.segment(line, 0, src, src_line, 0)
        if count > 1:
            self._parts.append(";AACA" * (count - 1))
            self._line += count - 1
            self._src_line += count - 1

    def append(self, line: int, src: int, file_map: FileMap) -> None:
        """Add a ``FileMap`` whose generated line 0 is bundle line ``line`` and whose source is ``src``."""
        gen_line, gen_col, src_line, src_col = file_map.first
        self.segment(line + gen_line, gen_col, src, src_line, src_col)
        self._parts.append(file_map.tail)
        if file_map.lines - 1 > gen_line:
            self._line = line + file_map.lines - 1
        self._col = file_map.last_col
        self._src_line, self._src_col = file_map.end

    def to_json(self) -> bytes:
        """The map as compact JSON (UTF-8), byte for byte ``json.dumps(self.to_dict(), separators=(",", ":"))``,
        joined from pieces: each ``sourcesContent`` entry is escaped once per distinct text and kept
        (``_escaped``), and the ``mappings`` text goes in as it is (``MAPPINGS``: nothing to escape)."""
        head = json.dumps({"version": 3, "file": self.file, "sources": self.sources}, separators=(",", ":"))
        pieces = [head[:-1].encode(), b',"sourcesContent":[']
        for content in self.contents:
            pieces += (_escaped(content), b",")
        if self.contents:
            pieces.pop()
        pieces += (b'],"names":[],"mappings":"', "".join(self._parts).encode("ascii"), b'"}')
        return b"".join(pieces)  # one copy of every piece

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 3,
            "file": self.file,
            "sources": list(self.sources),
            "sourcesContent": list(self.contents),
            "names": [],
            "mappings": "".join(self._parts),
        }
