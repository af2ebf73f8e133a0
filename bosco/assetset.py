"""The asset set: asset key -> ``Output`` (bytes, content type, sources, sha256); keys
as in docs/layout.md.

Content types come from bosco's own table below, never from the host's ``mimetypes`` database
(which differs between machines and Python versions: ``.js`` is ``text/javascript`` only from
Python 3.12), so the same workspace gives the same headers everywhere.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from bosco.gitinfo import RepoInfo

# extension -> (content type, is text, worth compressing). Text types are served with charset=utf-8.
CONTENT_TYPES: dict[str, tuple[str, bool, bool]] = {
    ".js": ("text/javascript", True, True),
    ".mjs": ("text/javascript", True, True),
    ".css": ("text/css", True, True),
    ".map": ("application/json", True, True),
    ".json": ("application/json", True, True),
    ".html": ("text/html", True, True),
    ".htm": ("text/html", True, True),
    ".txt": ("text/plain", True, True),
    ".xml": ("application/xml", True, True),
    ".svg": ("image/svg+xml", True, True),
    ".png": ("image/png", False, False),
    ".jpg": ("image/jpeg", False, False),
    ".jpeg": ("image/jpeg", False, False),
    ".gif": ("image/gif", False, False),
    ".webp": ("image/webp", False, False),
    ".avif": ("image/avif", False, False),
    ".ico": ("image/vnd.microsoft.icon", False, False),
    ".woff": ("font/woff", False, False),
    ".woff2": ("font/woff2", False, False),
    ".ttf": ("font/ttf", False, False),
    ".otf": ("font/otf", False, False),
    ".eot": ("application/vnd.ms-fontobject", False, False),
    ".swf": ("application/x-shockwave-flash", False, False),
    ".pdf": ("application/pdf", False, False),
    ".gz": ("application/gzip", False, False),
    ".br": ("application/octet-stream", False, False),
    ".zip": ("application/zip", False, False),
}
DEFAULT_TYPE = ("application/octet-stream", False, False)


_SEGMENT = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f]+$")


def is_segment(value: object) -> bool:
    """True when ``value`` can be one segment of an asset key (service name, build, environment,
    tag): a non-empty string without ``/``, ``\\`` or control characters, and not ``.`` or ``..``."""
    return isinstance(value, str) and bool(_SEGMENT.match(value))


def type_info(key: str) -> tuple[str, bool, bool]:
    """``(content type, is text, compressible)`` of an asset key, by its extension (case-insensitive)."""
    ext = posixpath.splitext(key)[1].lower()
    return CONTENT_TYPES.get(ext, DEFAULT_TYPE)


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

    @property
    def content_type(self) -> str:
        return content_type(self.key)


@dataclass(frozen=True)
class BundleReport:
    """What one (type, tag) of a service produced, for the index page and summaries.

    ``key`` is the bundle key (None when files are served one by one), ``files`` the single-file keys,
    ``fragment`` the fragment key (js/css only), ``errors`` the readable problems of this bundle,
    ``sources`` the ``<service>/<repo path>`` of its code files, ``warnings`` readable lines that do
    not fail a publish (a minifier fault worked around, a CSS ``url()`` to a missing file)."""

    type: str
    tag: str
    key: str | None
    files: tuple[str, ...]
    fragment: str | None
    errors: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceBuild:
    """Everything one service contributed to an asset set. ``errors`` are service-level problems
    (broken manifest, failed build command); bundle problems are in ``bundles[i].errors``; ``git``
    the git facts of the service folder (None when it is not in a git repository)."""

    name: str
    path: str
    outputs: tuple[Output, ...]
    bundles: tuple[BundleReport, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    description: str | None = None
    git: RepoInfo | None = None

    @property
    def all_errors(self) -> tuple[str, ...]:
        return self.errors + tuple(f"{b.type}/{b.tag}: {e}" for b in self.bundles for e in b.errors)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """Manifest warnings, then every bundle warning as ``<type>/<tag>: <warning>``."""
        return self.warnings + tuple(f"{b.type}/{b.tag}: {w}" for b in self.bundles for w in b.warnings)


@dataclass(frozen=True)
class AssetSet:
    """The immutable result of one build of the workspace: ``outputs`` maps asset key -> Output.

    Built by ``pipeline.build_asset_set``; ``services`` keeps the per-service reports in workspace
    order; ``warnings`` are workspace-level lines (e.g. two services writing the same library key).
    """

    outputs: Mapping[str, Output]
    services: tuple[ServiceBuild, ...]
    warnings: tuple[str, ...] = field(default=())

    def get(self, key: str) -> Output | None:
        return self.outputs.get(key)

    @property
    def errors(self) -> list[str]:
        """Every error of every service as ``"<service>: <error>"`` lines."""
        return [f"{s.name}: {e}" for s in self.services for e in s.all_errors]

    @staticmethod
    def assemble(services: tuple[ServiceBuild, ...]) -> AssetSet:
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
