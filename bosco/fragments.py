"""Fragment and page rendering with the Jinja2 templates in ``templates/`` (package ``bosco.templates``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bosco import __version__
from bosco.assetset import BundleReport, ServiceResult
from bosco.redact import public_paths

SHARED_KINDS = ("library", "site")  # output kinds of libraries and site assets (keys without a service)


@cache
def _env() -> Any:
    """The Jinja2 environment of bosco's templates, made on first use (Jinja2 loads only when a page
    or fragment is rendered); compiled templates are kept in bosco's cache folder (none with
    ``BOSCO_CACHE=0``), so a later process does not compile them again; one that cannot be read
    back is compiled again."""
    from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape

    from bosco.cache import cache_dir

    class Bytecode(FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # noqa: BLE001 - Jinja2 reads the checksum with pickle.load unguarded: an entry
                bucket.reset()  # cut short (a crash before the file system wrote it all) is compiled again

        def dump_bytecode(self, bucket: Any) -> None:
            with suppress(OSError):  # a cache folder removed meanwhile only costs compiling again
                super().dump_bytecode(bucket)

    folder = cache_dir()
    bytecode = None
    if folder is not None:
        with suppress(OSError):
            (folder / "templates").mkdir(parents=True, exist_ok=True)
            bytecode = Bytecode(str(folder / "templates"))
    return Environment(
        loader=FileSystemLoader(str(resources.files("bosco.templates"))),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=bytecode,
    )


def url_for(base_url: str, key: str) -> str:
    """URL of an asset key: ``<base_url>/<key>``; an empty ``base_url`` gives root-relative ``/<key>``.

    The key is percent-encoded per segment (RFC 3986; ``/`` kept), so names with spaces, ``#``, ``?``,
    ``%`` or non-ASCII characters reach the same key on the server."""
    return f"{base_url.rstrip('/')}/{quote(key, safe='/')}"


def render_fragment(type_: str, tags: Sequence[tuple[str, str | None]], livereload: str | None = None,
                    service: str = "") -> str:
    """The HTML fragment of one bundle: one ``<script>`` (``js``) or ``<link>`` (``css``) line per
    ``(url, integrity)`` pair, in order; ``integrity`` adds ``integrity``/``crossorigin`` attributes.
    ``livereload`` (a script URL) appends ``<script src=... data-bosco-service="<service>">``."""
    return _env().get_template(f"fragment.{type_}.html").render(tags=tags, livereload=livereload, service=service)


@dataclass(frozen=True)
class PageService:
    """What the index page shows of one service: ``bundles`` (their keys, fragments, files and
    sources), ``shared`` the keys of its libraries and site assets, ``errors``/``warnings`` lines,
    ``git`` the recorded git facts (``gitinfo.RepoInfo.to_json`` shape, None when not a git
    repository), ``path`` its folder (``""`` for a published release: no folder to hide) and
    ``release`` a line saying which published release is shown (``""`` for a workspace service);
    ``concatenations`` maps ``"TYPE/TAG"`` to the key of the bundle's concatenation when unminified
    ``bosco cdn`` serves one beside its files (docs/layout.md)."""

    name: str
    bundles: tuple[BundleReport, ...] = ()
    shared: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    git: Mapping[str, Any] | None = None
    path: str = ""
    release: str = ""
    concatenations: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def of(build: ServiceResult) -> PageService:
        """The page entry of a service built from the workspace."""
        served = {o.key for o in build.outputs if o.kind == "bundle"}
        concatenations = {f"{b.type}/{b.tag}": key for b in build.bundles if not b.key
                          for key in served if key.split("/")[0::2] == [build.name, b.type]
                          and key.rsplit("/", 1)[1] == f"{b.tag}.{b.type}"}
        return PageService(build.name, build.bundles,
                           tuple(o.key for o in build.outputs if o.kind in SHARED_KINDS), build.errors,
                           build.warnings, build.git.to_json() if build.git else None, build.path,
                           concatenations=concatenations)

    @staticmethod
    def of_release(index: Mapping[str, Any], release: str = "") -> PageService:
        """The page entry of a published release, from its release index (docs/layout.md): its
        bundles, libraries and site assets and recorded git facts."""
        return PageService(
            str(index.get("service")),
            tuple(BundleReport(b.get("type", ""), b.get("tag", ""), b.get("key"), tuple(b.get("files", [])),
                               b.get("fragment"), sources=tuple(b.get("sources", [])))
                  for b in index.get("bundles", []) if isinstance(b, dict)),
            tuple(o["key"] for o in index.get("objects", []) if isinstance(o, dict) and o.get("kind") in SHARED_KINDS),
            git=index["git"] if isinstance(index.get("git"), dict) else None, release=release,
        )


@dataclass(frozen=True)
class RemotePage:
    """What the ``bosco cdn --remote`` index page shows of the published releases it serves: their
    ``services`` (``PageService.of_release``), the stored ``sizes`` of their bundles (service ->
    ``"TYPE/TAG"`` -> ``budgets.BundleSizes``), one ``status`` line (where they come from, or that
    the upstream is offline) and whether it is ``offline`` (the line is shown as a warning)."""

    services: tuple[PageService, ...]
    sizes: Mapping[str, Mapping[str, Any]]
    status: str
    offline: bool = False


def render_index(services: Sequence[PageService], base_url: str, warnings: Sequence[str], title: str,
                 repos_link: bool = False, duplicates: Sequence[Any] = (),
                 sizes: Mapping[str, Mapping[str, Any]] | None = None, remote: RemotePage | None = None) -> str:
    """The index page: every service (with its git facts), bundle and asset with links; errors in
    red; a section listing ``duplicates`` (``duplicates.Duplicate``) with the bytes to save.
    ``sizes`` (``bosco cdn``) maps a service name to ``"TYPE/TAG"`` -> ``budgets.BundleSizes``:
    each bundle shows its raw / gzip / br bytes and its budget violations in red, or "sizes
    pending" while its service is missing; None shows no sizes (``build --out``, ``s3push``). Paths
    in errors and warnings are shown repo-relative (``redact.public_paths``): the page is served to
    any origin and published, so it never shows where the workspace lives. ``remote`` adds the
    published releases ``bosco cdn --remote`` serves after the workspace's services, with its
    status line."""
    roots = sorted({str(Path(s.path).parent) for s in services if s.path})
    if remote is not None:
        services = [*services, *remote.services]
        sizes = {**(sizes or {}), **remote.sizes}
    return _env().get_template("index.html").render(
        services=services, base=base_url, remote=remote, warnings=[public_paths(w, None, roots) for w in warnings],
        title=title, url=url_for, version=__version__, repos_link=repos_link, duplicates=duplicates, sizes=sizes,
        public=lambda text, service: public_paths(text, service.path or None, roots),
    )


def render_repos(services: Sequence[ServiceResult], base_url: str) -> str:
    """The ``/repos`` page: services with their ``package.json`` description and their folder
    relative to the workspace (``redact.public_paths``)."""
    roots = sorted({str(Path(s.path).parent) for s in services})
    return _env().get_template("repos.html").render(services=services, base=base_url, version=__version__,
                                                  repos_link=True, folder=lambda s: public_paths(s.path, None, roots))
