"""CSS that survives bundling: ``url()`` rebasing, one ``@charset``, ``@import`` handling.

A CSS bundle is served from ``<service>/<build>/css/<tag>.css``, not from where each source file
would have been served (``<service>/<build>/<path relative to basePath>``), so relative ``url()``
references are rewritten in key space to reach the same file from the bundle (in the original
Bosco, fonts broke after bundling). ``data:``, ``http(s):``, protocol-relative, root-relative and
fragment-only URLs are left alone. ``@charset`` is kept once, first; ``@import`` of an external (or
root-relative) URL is hoisted to the top in order (a warning when rules of the bundle came before
it: they now precede the imported sheet in the cascade); ``@import`` of a local file is inlined once,
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
from bosco.errors import InputFileError
from bosco.files import inside, problem, read_text

_CHARSET = re.compile(r'@charset\s+["\'][^"\']*["\']\s*;', re.I)
# One pass finds @import statements, url()s and image-set()s outside comments and strings. Every
# alternative starts with one of the characters of the leading class (the only case-insensitive
# ones, ``i``/``u``, are listed with every character they match under IGNORECASE), so the regex
# engine jumps between those characters instead of trying each alternative at every position
# (4-10x faster on library style sheets); the lookbehinds then tell the alternatives apart.
_SCAN = re.compile(
    r"""[@uUiI\u0130\u0131/"'-](?:"""
    r"""(?<=@)(?P<import>(?i:import)\s+(?:(?i:url)\(\s*(?:"(?P<i1>[^"]*)"|'(?P<i2>[^']*)'|(?P<i3>[^\s"')]*))\s*\)"""
    r"""|"(?P<i4>[^"]*)"|'(?P<i5>[^']*)')(?P<cond>[^;{}]*);)"""
    r"""|(?<![\w-][uU])(?<=[uU])(?P<url>(?i:rl)\(\s*(?:"(?P<u1>[^"]*)"|'(?P<u2>[^']*)'|(?P<u3>[^\s"')]*))\s*\))"""
    r"""|(?<![\w-][iI\u0130\u0131-])(?P<iset>(?<=[iI\u0130\u0131])(?i:mage-set)\(|(?<=-)(?i:webkit-image-set)\()"""
    r"""|(?P<skip>(?<=/)\*.*?(?:\*/|\Z)|(?<=")(?:[^"\\\n]|\\.)*"?|(?<=')(?:[^'\\\n]|\\.)*'?))""",
    re.S,
)
# Inside image-set(): its strings are URLs (CSS Images 4 §2.2); parentheses nest.
_ISET_TOKENS = re.compile(r"""/\*.*?(?:\*/|\Z)|"(?P<s1>(?:[^"\\\n]|\\.)*)"?|'(?P<s2>(?:[^'\\\n]|\\.)*)'?|(?P<open>\()"""
                          r"""|(?P<close>\))""", re.S)
# What may precede an @import in a style sheet (CSS Cascade 5 §2): @charset, @layer statements,
# other @imports, whitespace and comments. An @import anywhere else is ignored by browsers.
_PRELUDE = re.compile(r"""(?:\s|/\*.*?\*/|@charset\s[^;{}]*;|@layer\s[^;{}]*;)*""", re.I | re.S)
_LAYER = re.compile(r"\s*layer(?:\(\s*([^()]*?)\s*\)|(?=[\s]|\Z))", re.I)
_SUPPORTS = re.compile(r"\s*supports\(", re.I)
_LAYER_STATEMENT = re.compile(r"/\*.*?\*/|(@layer\s[^;{}]*;)", re.I | re.S)
_IMPORT_HEAD = re.compile(r"""@import\s+(?:url\(\s*(?:"[^"]*"|'[^']*'|[^\s"')]*)\s*\)|"[^"]*"|'[^']*')""", re.I)
_IMPORT = re.compile(r"@import", re.I)
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|/|#)", re.I)


def import_blocks(condition: str) -> list[str] | None:
    """The block rules an ``@import``'s ``condition`` (what follows its URL: ``layer``/``layer(name)``,
    ``supports(...)``, a media query list; CSS Cascade 5 §2) puts its rules in, outermost first:
    ``["@layer name", "@supports (x)", "@media print"]``. None when bosco cannot read it."""
    blocks, rest = [], condition
    layer = _LAYER.match(rest)
    if layer:
        blocks.append(f"@layer {layer.group(1)}" if layer.group(1) else "@layer")
        rest = rest[layer.end():]
    supports = _SUPPORTS.match(rest)
    if supports:
        depth, end = 1, supports.end()
        while depth and end < len(rest):
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            end += 1
        if depth:
            return None
        inner = rest[supports.end():end - 1].strip()
        if not re.match(r"(?:\(|not\s|selector\(|font-tech\(|font-format\()", inner, re.I):
            inner = f"({inner})"  # a bare declaration
        blocks.append(f"@supports {inner}")
        rest = rest[end:]
    if rest.strip():
        blocks.append(f"@media {rest.strip()}")
    return blocks


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
    """The ``@import`` statements and URLs of ``text`` outside comments and strings, in order, as
    ``(kind, start, end, url, url start, url end)``: kind ``import`` (start/end of the statement),
    or ``url`` for a ``url()`` and for each string of an ``image-set()``/``-webkit-image-set()``
    (start/end of the URL). Cached by content (``bosco.cache``): the regex pass costs more than
    everything else a warm build does."""
    name = cache.key("css-scan-2", text)
    found = cache.load(name)
    if found is None:
        found = []
        for match in _SCAN.finditer(text):
            kind = match.lastgroup
            if kind == "skip":
                continue
            if kind == "iset":
                found += _image_set_urls(text, match.end())
                continue
            group = next(g for g in (("i1", "i2", "i3", "i4", "i5") if kind == "import" else ("u1", "u2", "u3"))
                         if match.group(g) is not None)
            found.append((kind, *match.span(), match.group(group), *match.span(group)))
        found = tuple(sorted(found, key=lambda item: item[1]))
        cache.store(name, found)
    return found


def _image_set_urls(text: str, pos: int) -> list[tuple[str, int, int, str, int, int]]:
    """The strings at the top level of the ``image-set(`` arguments starting at ``pos``."""
    found, depth = [], 1
    for match in _ISET_TOKENS.finditer(text, pos):
        if match.group("open"):
            depth += 1
        elif match.group("close"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and (match.group("s1") is not None or match.group("s2") is not None):
            group = "s1" if match.group("s1") is not None else "s2"
            found.append(("url", *match.span(group), match.group(group), *match.span(group)))
    return found


def import_targets(path: Path, text: str, repo: Path) -> list[tuple[str, Path]]:
    """``(url path, resolved file)`` of each local ``@import`` of ``text`` (the style sheet at
    ``path``), in order, whose target resolves inside ``repo`` (after symbolic links), whether it
    exists or not (``bosco cdn -w`` watches a target that is still to be created)."""
    if not _IMPORT.search(text):  # most style sheets import nothing: skip the full scan
        return []
    repo = repo.resolve()
    found = []
    for kind, _, _, url, _, _ in scan(text):
        if kind == "import" and url and not _ABSOLUTE.match(url):
            url_path = re.split(r"[?#]", url, maxsplit=1)[0]
            try:
                found.append((url_path, inside(repo, path.parent / url_path, url)))
            except InputFileError:
                continue
    return found


def local_imports(path: Path, text: str, repo: Path) -> list[tuple[str, Path]]:
    """``(url path, resolved file)`` of each local ``@import`` of ``text`` (the style sheet at
    ``path``), in order: only existing files inside ``repo`` (after symbolic links), the ones a
    bundle inlines."""
    return [(url_path, target) for url_path, target in import_targets(path, text, repo) if problem(target) is None]


class _Preparer:
    def __init__(self, service: str, repo: Path, bundle_key: str, known_keys: frozenset[str]) -> None:
        self.service, self.repo, self.bundle_key, self.known = service, repo.resolve(), bundle_key, known_keys
        self.result = CssBundleText([], [], [], [])
        self.seen: set[tuple[Path, tuple[str, ...]]] = set()
        self.charset: str | None = None
        self.outer: list[str] = []  # the conditions of the @imports being inlined, outermost first
        # @layer statements before an inlined @import: they also go before its rules (layer order)
        self.layers = ""

    def _import(self, statement: str, url: str, condition: str, path: Path, where: str, file_key: str,
                blocks: tuple[str, ...]) -> None:
        own = import_blocks(condition)
        if _ABSOLUTE.match(url):
            earlier = next((part.name.split("/", 1)[1] for part in self.result.parts
                            if not _PRELUDE.fullmatch(part.text)), None)
            if earlier is not None:  # the head goes first: the imported sheet now precedes those rules
                self.result.warnings.append(
                    f"{where}: @import {url!r} goes to the top of the bundle, above the rules of {earlier} that "
                    f"came before it, so those rules now win where they conflict (import it from the page, "
                    f"before the bundle, to keep the order)")
            if not blocks:
                self.result.head.append(statement)
            elif own == [] and len(self.outer) == 1:
                # the only conditions are those of the @import that inlined this file
                self.result.head.append(f"{statement[:-1].rstrip()} {self.outer[0]};")
            else:
                self.result.errors.append(f"{where}: @import {url!r} sits in a file imported with conditions "
                                          f"that cannot be combined with its own; import it from the page instead")
            return
        if own is None:
            self.result.errors.append(f"{where}: @import {url!r}: cannot read its condition {condition.strip()!r}")
            return
        what = f"{where}: @import {url!r}"
        try:
            target = inside(self.repo, path.parent / url.split("?")[0], what)
            imported = target.relative_to(self.repo).as_posix()
            imported_text = read_text(target, f"{what} -> {imported}")
        except InputFileError as exc:
            self.result.errors.append(str(exc))
            return
        if condition.strip():
            self.outer.append(condition.strip())
        self.add(target, imported_text, f"{self.service}/{imported}",
                 posixpath.normpath(posixpath.join(posixpath.dirname(file_key), url.split("?")[0])),
                 blocks + tuple(own))
        if condition.strip():
            self.outer.pop()

    def add(self, path: Path, text: str, name: str, file_key: str, blocks: tuple[str, ...] = ()) -> None:
        real = path.resolve()
        if (real, blocks) in self.seen:
            return
        self.seen.add((real, blocks))
        shown = name.split("/", 1)[1]
        replacements: list[tuple[int, int, str]] = []  # statements that moved keep only their line breaks
        if blocks:  # an @import with conditions: its rules go inside the matching block rules
            replacements.append((0, 0, "".join(block + "{" for block in blocks)))
        charset = _CHARSET.match(text)
        if charset:
            self.charset = self.charset or charset.group()
            replacements.append((*charset.span(), ""))
        prelude_end = charset.end() if charset else 0
        missing: set[str] = set()
        for kind, start, end, value, value_start, value_end in scan(text):
            if kind == "import":
                statement = text[start:end]
                line = text.count("\n", 0, start) + 1
                if prelude_end < 0 or not _PRELUDE.fullmatch(text, prelude_end, start):
                    prelude_end = -1
                    self.result.warnings.append(
                        f"{shown}:{line}: @import {value!r} follows a rule or sits in a block, so browsers ignore "
                        f"it; bosco leaves it ignored (move it to the top of the file to use it)")
                    continue
                self.layers += "".join(m.group(1) for m in _LAYER_STATEMENT.finditer(text, prelude_end, start)
                                       if m.group(1))
                prelude_end = end
                replacements.append((start, end, "\n" * text.count("\n", start, end)))
                condition = statement[_IMPORT_HEAD.match(statement).end():-1]  # type: ignore[union-attr]
                self._import(statement, value, condition, path, f"{shown}:{line}", file_key, blocks)
                continue
            rebased = rebase(value, file_key, self.bundle_key)
            if rebased is None:
                continue
            new_url, target_key = rebased
            if target_key not in self.known and target_key not in missing:  # once per file and target
                missing.add(target_key)
                self.result.warnings.append(f"{shown}: url({value}) points at {target_key}, which is not in the "
                                            f"asset set")
            if new_url != value:  # the same URL from the bundle's folder: nothing to rewrite (maps stay exact)
                replacements.append((value_start, value_end, new_url))
        if blocks:
            end = len(text.rstrip())
            replacements.append((end, end, "}" * len(blocks)))
        if self.layers:
            replacements.insert(0, (0, 0, self.layers))
            self.layers = ""
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
