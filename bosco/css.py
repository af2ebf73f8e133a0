"""CSS that survives bundling (issue 5): ``url()`` rebasing, one ``@charset``, ``@import`` handling.

A CSS bundle is served from ``<service>/<build>/css/<tag>.css``, not from where each source file
would have been served (``<service>/<build>/<path relative to basePath>``), so relative ``url()``
references are rewritten in key space to reach the same file from the bundle (Bosco issue #182:
fonts broke after bundling). ``data:``, ``http(s):``, protocol-relative, root-relative and
fragment-only URLs are left alone. ``@charset`` is kept once, first; ``@import`` of an external (or
root-relative) URL is hoisted to the top in order; ``@import`` of a local file is inlined once,
before the file that imports it (an ``@import`` may only precede all rules, so that is where its rules applied).
Statements that move leave only their line breaks behind, so the lines of the rest stay put (and
``edits`` record every change, so minified maps still point at the file on disk).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from bosco import cache

_CHARSET = re.compile(r'@charset\s+["\'][^"\']*["\']\s*;', re.I)
# One pass finds @import statements and url()s outside comments and strings.
_SCAN = re.compile(
    r"""(?P<import>@import\s+(?:url\(\s*(?:"(?P<i1>[^"]*)"|'(?P<i2>[^']*)'|(?P<i3>[^\s"')]*))\s*\)"""
    r"""|"(?P<i4>[^"]*)"|'(?P<i5>[^']*)')[^;{}]*;)"""
    r"""|(?P<url>(?<![\w-])url\(\s*(?:"(?P<u1>[^"]*)"|'(?P<u2>[^']*)'|(?P<u3>[^\s"')]*))\s*\))"""
    r"""|(?P<skip>/\*.*?(?:\*/|\Z)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)""",
    re.I | re.S,
)
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|/|#)", re.I)


@dataclass(frozen=True)
class CssPart:
    """One CSS text of a bundle: ``name`` (``<service>/<repo path>``), the ``original`` file text
    and ``text``, the same with moved statements removed (their line breaks kept) and URLs rebased;
    ``edits`` are the ``(start, end, replacement length)`` of each change in ``original`` (code points)."""

    name: str
    original: str
    text: str
    edits: tuple[tuple[int, int, int], ...]


@dataclass
class CssBundleText:
    """What ``prepare`` found: ``head`` statements for the top of the bundle (``@charset`` then the
    hoisted ``@import``s), the ``parts`` in bundle order, and readable ``warnings``/``errors``."""

    head: list[str]
    parts: list[CssPart]
    warnings: list[str]
    errors: list[str]


def rebase(url: str, file_key: str, bundle_key: str) -> tuple[str, str] | None:
    """``(new url, target key)`` for a relative ``url`` written in the file served at ``file_key``
    so that it resolves from ``bundle_key``; None for URLs left alone (absolute, data:, #...)."""
    if not url or _ABSOLUTE.match(url):
        return None
    path, suffix = re.match(r"([^?#]*)(.*)", url, re.S).groups()  # type: ignore[union-attr]
    target = posixpath.normpath(posixpath.join(posixpath.dirname(file_key), path))
    return posixpath.relpath(target, posixpath.dirname(bundle_key)) + suffix, target


def scan(text: str) -> tuple[tuple[str, int, int, str, int, int], ...]:
    """The ``@import`` statements and ``url()``s of ``text`` outside comments and strings, as
    ``(kind, start, end, url, url start, url end)`` with kind ``import`` or ``url``. Cached by
    content (``bosco.cache``): the regex pass costs more than everything else a warm build does."""
    name = cache.key("css-scan-1", text)
    found = cache.load(name)
    if found is None:
        found = []
        for match in _SCAN.finditer(text):
            kind = match.lastgroup
            if kind == "skip":
                continue
            group = next(g for g in (("i1", "i2", "i3", "i4", "i5") if kind == "import" else ("u1", "u2", "u3"))
                         if match.group(g) is not None)
            found.append((kind, *match.span(), match.group(group), *match.span(group)))
        found = tuple(found)
        cache.store(name, found)
    return found


class _Preparer:
    def __init__(self, service: str, repo: Path, bundle_key: str, known_keys: frozenset[str]) -> None:
        self.service, self.repo, self.bundle_key, self.known = service, repo.resolve(), bundle_key, known_keys
        self.result = CssBundleText([], [], [], [])
        self.seen: set[Path] = set()
        self.charset: str | None = None

    def _import(self, statement: str, url: str, path: Path, shown: str, file_key: str) -> None:
        if _ABSOLUTE.match(url):
            self.result.head.append(statement)
            return
        target = (path.parent / url.split("?")[0]).resolve()
        if not target.is_file() or self.repo not in target.parents:
            self.result.errors.append(f"{shown}: @import {url!r} does not resolve to a file in the repository "
                                      f"({target})")
            return
        imported = target.relative_to(self.repo).as_posix()
        try:
            imported_text = target.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.result.errors.append(f"{shown}: @import {url!r}: cannot read {imported} ({exc})")
            return
        self.add(target, imported_text, f"{self.service}/{imported}",
                 posixpath.normpath(posixpath.join(posixpath.dirname(file_key), url.split("?")[0])))

    def add(self, path: Path, text: str, name: str, file_key: str) -> None:
        real = path.resolve()
        if real in self.seen:
            return
        self.seen.add(real)
        shown = name.split("/", 1)[1]
        replacements: list[tuple[int, int, str]] = []  # statements that moved keep only their line breaks
        charset = _CHARSET.match(text)
        if charset:
            self.charset = self.charset or charset.group()
            replacements.append((*charset.span(), ""))
        for kind, start, end, value, value_start, value_end in scan(text):
            if kind == "import":
                replacements.append((start, end, "\n" * text.count("\n", start, end)))
                self._import(text[start:end], value, path, shown, file_key)
                continue
            rebased = rebase(value, file_key, self.bundle_key)
            if rebased is None:
                continue
            new_url, target_key = rebased
            if target_key not in self.known:
                self.result.warnings.append(f"{shown}: url({value}) points at {target_key}, which is not in the "
                                            f"asset set")
            replacements.append((value_start, value_end, new_url))
        out, last = [], 0
        for start, end, replacement in replacements:
            out += [text[last:start], replacement]
            last = end
        out.append(text[last:])
        edits = tuple((start, end, len(replacement)) for start, end, replacement in replacements)
        self.result.parts.append(CssPart(name, text, "".join(out), edits))


def prepare(service: str, repo: Path, bundle_key: str, known_keys: frozenset[str],
            files: list[tuple[Path, str, str, str]]) -> CssBundleText:
    """Prepare the CSS ``files`` (``(path, text, source name, key it would be served at)``, in
    bundle order) of the bundle served at ``bundle_key``. ``known_keys`` are the asset set's keys
    a ``url()`` may reach; a rebased URL to any other key is a warning naming both files, a local
    ``@import`` that does not resolve is an error naming both."""
    preparer = _Preparer(service, repo, bundle_key, known_keys)
    for path, text, name, file_key in files:
        preparer.add(path, text, name, file_key)
    if preparer.charset:
        preparer.result.head.insert(0, preparer.charset)
    return preparer.result
