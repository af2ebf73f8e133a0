"""The asset set: asset key -> ``Output`` (bytes, content type, sources, sha256); keys
as in docs/layout.md.

Content types come from bosco's own table (``bosco.media_types``, generated from mime-db by
``tools/media_types.py``) and the ``types`` configuration, never from the host's ``mimetypes``
database (which differs between machines and Python versions: ``.js`` is ``text/javascript``
only from Python 3.12), so the same workspace gives the same headers everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

from bosco.gitinfo import RepoInfo
from bosco.media_types import MEDIA_TYPES

# Media types that are text although not text/* (JSON, XML and JavaScript, RFC 6839 suffixes).
TEXTUAL = re.compile(r"^text/|[+/](json|xml)$|^application/(javascript|ecmascript)$")
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")  # RFC 6838 §4.2
DEFAULT_TYPE = ("application/octet-stream", False, False)


_SEGMENT = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f]+$")
MAX_NAME_BYTES = 255  # a file or folder name (ext4, APFS, NTFS): every segment of a key written by build --out
MAX_KEY_BYTES = 1024  # an S3 object key, UTF-8
# The longest suffix bosco adds to a tag in one name: "<tag>.css.LEGAL.txt" stored as "<...>.br".
MAX_SEGMENT_BYTES = MAX_NAME_BYTES - len(".css.LEGAL.txt.br")


SEGMENT_RULE = f"non-empty, at most {MAX_SEGMENT_BYTES} bytes, no '/', '\\' or control characters, not '.' or '..'"


def is_segment(value: object) -> bool:
    """True when ``value`` can be one segment of an asset key (service name, build, environment,
    tag): a non-empty string without ``/``, ``\\`` or control characters, and not ``.`` or ``..``."""
    return isinstance(value, str) and bool(_SEGMENT.match(value)) and _size(value) <= MAX_SEGMENT_BYTES


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _short(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else text[:keep] + "..."


def key_problems(keys: Iterable[str], environment: str) -> list[str]:
    """Why some of ``keys`` cannot be published under ``environment``: a name (segment) longer than
    ``MAX_NAME_BYTES`` or an S3 key ``<environment>/<key>.br`` (the brotli copy is the longest)
    longer than ``MAX_KEY_BYTES``, UTF-8 bytes. One line per offending key, the key shortened."""
    problems = []
    for key in keys:
        stored = f"{environment}/{key}.br"
        name = next((n for n in stored.split("/") if _size(n) > MAX_NAME_BYTES), None)
        if name is not None:
            problems.append(f"asset key {_short(key)}: the name {_short(name, 30)} is {_size(name):,} bytes "
                            f"(at most {MAX_NAME_BYTES} per file or folder name, with .br)")
        elif _size(stored) > MAX_KEY_BYTES:
            problems.append(f"asset key {_short(key)}: the S3 key {_short(stored)} is {_size(stored):,} bytes with "
                            f"its .br copy (at most {MAX_KEY_BYTES:,})")
    return problems


def segment_problem(value: object, what: str = "") -> str | None:
    """None when ``value`` is one key segment (``is_segment``), else the one message every caller
    shows: ``'<what> "<value>" cannot be a key segment (<SEGMENT_RULE>)'`` (the value as JSON)."""
    if is_segment(value):
        return None
    shown = json.dumps(_short(value) if isinstance(value, str) else value)
    return f"{what + ' ' if what else ''}{shown} cannot be a key segment ({SEGMENT_RULE})"


_configured: dict[str, tuple[str, bool, bool]] = {}  # the ``types`` configuration, see ``use_types``


def describe_type(media_type: str) -> tuple[str, bool, bool]:
    """``(media_type, is text, compressible)``: as bosco's table has it when it lists the type, else
    text (and compressible) for text/*, JSON, XML and JavaScript types."""
    known = next((entry for entry in MEDIA_TYPES.values() if entry[0] == media_type), None)
    if known is not None:
        return known
    text = bool(TEXTUAL.search(media_type))
    return media_type, text, text


def parse_types(types: object) -> dict[str, tuple[str, bool, bool]]:
    """The entries ``use_types`` adds for ``types`` (``{".ext": "type/subtype"}``). Raises
    ``ValueError`` naming a bad extension or media type (RFC 6838 names)."""
    if not isinstance(types, Mapping):
        raise ValueError('must be an object like {".wasm": "application/wasm"}')
    entries = {}
    for ext, media_type in types.items():
        if not (isinstance(ext, str) and re.fullmatch(r"\.[^./\\\s]+", ext)):
            raise ValueError(f"{ext!r} is not a file extension such as \".wasm\"")
        if not (isinstance(media_type, str) and MEDIA_TYPE.match(media_type.lower())):
            raise ValueError(f"{ext}: {media_type!r} is not a media type such as \"application/wasm\"")
        entries[ext.lower()] = describe_type(media_type.lower())
    return entries


def use_types(types: Mapping[str, str]) -> None:
    """Serve and publish files with the extensions of ``types`` (``{".ext": "type/subtype"}``, the
    ``types`` configuration) as those media types from now on, on top of bosco's table; replaces
    the mapping of an earlier call. Raises ``ValueError`` as ``parse_types``."""
    entries = parse_types(types)
    _configured.clear()
    _configured.update(entries)


def sri(data: bytes) -> str:
    """Subresource-integrity value ``sha384-<base64>`` of ``data`` (W3C Subresource Integrity)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def type_info(key: str) -> tuple[str, bool, bool]:
    """``(content type, is text, compressible)`` of an asset key, by its extension (case-insensitive):
    the ``types`` configuration (``use_types``), else bosco's table generated from mime-db
    (``bosco.media_types``), else ``application/octet-stream``."""
    ext = posixpath.splitext(key)[1].lower()
    return _configured.get(ext) or MEDIA_TYPES.get(ext, DEFAULT_TYPE)


def content_type(key: str) -> str:
    """The ``Content-Type`` header value for ``key``; text types carry ``; charset=utf-8``."""
    mime, text, _ = type_info(key)
    return f"{mime}; charset=utf-8" if text else mime


@dataclass(frozen=True)
class Output:
    """One entry of the asset set. ``kind`` is one of ``file``, ``bundle``, ``map``, ``fragment``,
    ``page``, ``library``, ``site``; ``sources`` are the ``<service>/<repo path>`` inputs."""

    key: str
    data: bytes
    kind: str
    service: str | None = None
    sources: tuple[str, ...] = ()

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of ``data`` (the uncompressed bytes)."""
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def sri(self) -> str:
        """The subresource-integrity value of ``data`` (``sri``): fragments and release indexes share it."""
        return sri(self.data)

    @property
    def content_type(self) -> str:
        return content_type(self.key)

    def standing_in(self, data: Any) -> Output:
        """This output with ``data`` replaced by a stand-in for the same bytes that does not hold them
        (``publish.local.Staged``: ``len()`` works, the bytes are read back only on request); its
        ``sha256`` and, for a bundle, ``sri`` are worked out first and carried over."""
        digests = {"sha256": self.sha256, **({"sri": self.sri} if self.kind == "bundle" else {})}
        new = replace(self, data=data)
        new.__dict__.update(digests)  # the values of the cached properties (functools.cached_property)
        return new


@dataclass(frozen=True)
class BundleReport:
    """What one (type, tag) of a service produced, for the index page and summaries.

    ``key`` is the bundle key (None when files are served one by one), ``files`` the single-file keys,
    ``fragment`` the fragment key (js/css only), ``errors`` the readable problems of this bundle,
    ``sources`` the ``<service>/<repo path>`` of its code files, ``warnings`` readable lines that do
    not fail a publish (a minifier fault worked around, a CSS ``url()`` to a missing file), ``details``
    lines that need no action (shown with ``-v``)."""

    type: str
    tag: str
    key: str | None
    files: tuple[str, ...]
    fragment: str | None
    errors: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceResult:
    """Everything one service contributed to an asset set. ``errors`` are service-level problems
    (broken manifest, failed build command); bundle problems are in ``bundles[i].errors``; ``git``
    the git facts of the service folder (None when it is not in a git repository); ``details`` lines
    that need no action (a build command not run because its output exists), shown with ``-v``;
    ``complete`` False for the quick first pass of ``bosco cdn`` (``BuildOptions.quick``), whose
    syntax checks, verified minification or exact maps are still to come."""

    name: str
    path: str
    outputs: tuple[Output, ...]
    bundles: tuple[BundleReport, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    description: str | None = None
    git: RepoInfo | None = None
    details: tuple[str, ...] = ()
    complete: bool = True

    @property
    def all_errors(self) -> tuple[str, ...]:
        return self.errors + tuple(f"{b.type}/{b.tag}: {e}" for b in self.bundles for e in b.errors)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """Manifest warnings, then every bundle warning as ``<type>/<tag>: <warning>``."""
        return self.warnings + tuple(f"{b.type}/{b.tag}: {w}" for b in self.bundles for w in b.warnings)

    @property
    def all_details(self) -> tuple[str, ...]:
        """Lines that need no action (``-v``): the service's, then each bundle's as ``<type>/<tag>: ...``."""
        return self.details + tuple(f"{b.type}/{b.tag}: {d}" for b in self.bundles for d in b.details)


@dataclass(frozen=True)
class AssetSet:
    """The immutable result of one build of the workspace: ``outputs`` maps asset key -> Output.

    Built by ``pipeline.build_asset_set``; ``services`` keeps the per-service reports in workspace
    order; ``warnings`` are workspace-level lines (e.g. two services writing the same library key);
    ``duplicates`` the ``duplicates.Duplicate`` findings among the published source files.
    """

    outputs: Mapping[str, Output]
    services: tuple[ServiceResult, ...]
    warnings: tuple[str, ...] = field(default=())
    duplicates: tuple[Any, ...] = field(default=())

    def with_key_problems(self, environment: str) -> AssetSet:
        """This set with the ``key_problems`` of each service's keys under ``environment`` added to
        that service's errors (checked before publishing, so nothing is written when a key cannot be)."""
        services = []
        for build in self.services:
            problems = key_problems((o.key for o in build.outputs), environment)
            services.append(replace(build, errors=build.errors + tuple(problems)) if problems else build)
        return replace(self, services=tuple(services))

    def get(self, key: str) -> Output | None:
        return self.outputs.get(key)

    @property
    def errors(self) -> list[str]:
        """Every error of every service as ``"<service>: <error>"`` lines."""
        return [f"{s.name}: {e}" for s in self.services for e in s.all_errors]

    @staticmethod
    def assemble(services: tuple[ServiceResult, ...]) -> AssetSet:
        """Combine service builds (first writer of a key wins; a later different one is a warning)."""
        outputs: dict[str, Output] = {}
        warnings = []
        for output in (o for s in services for o in s.outputs):
            existing = outputs.get(output.key)
            if existing is None:
                outputs[output.key] = output
            elif existing.data != output.data:
                warnings.append(
                    f"{output.key}: written by {existing.service} and {output.service} with different "
                    f"content; serving {existing.service}'s"
                )
        return AssetSet(MappingProxyType(outputs), services, tuple(warnings))
