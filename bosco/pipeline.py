"""The build stages wired together: service -> collected assets -> bundles -> fragments -> AssetSet.

Every function here takes plain data and returns frozen data, so tests call it without the CLI and
``bosco cdn -w`` can rebuild one service and swap it in.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bosco import cache, duplicates, stamps
from bosco.assets import BundleInput, Collected, collect, foreign_source, missing_assets
from bosco.assetset import AssetSet, BundleReport, Output, ServiceResult
from bosco.commands import DEFAULT_TIMEOUT_MS, run_build_command
from bosco.config import CssSection, MinifySection
from bosco.css import local_imports
from bosco.duplicates import Duplicate
from bosco.errors import BoscoError, InputFileError
from bosco.files import decode, problem, read_bytes
from bosco.fragments import PageService, RemotePage, render_fragment, render_index, url_for
from bosco.gitinfo import RepoInfo, repo_info
from bosco.jsonfile import load_json
from bosco.workspace import Service

INDEX_KEY = "index.html"


@dataclass(frozen=True)
class BuildOptions:
    """How to build an asset set.

    ``build`` is the release segment of keys (``local`` in cdn); ``minify`` minifies JS/CSS;
    ``bundle`` serves JS/CSS as one file per bundle (else each source file at its own key, and
    fragments list them); ``base_url`` prefixes fragment URLs (``""`` = root-relative ``/<key>``);
    ``bundle_tag`` limits bundles to one tag (under ``assets.<type>``); ``rebuild`` forces
    ``build.command``; ``sri`` adds integrity attributes to fragments; ``livereload`` is the URL of
    the live-reload script that fragments load (``bosco cdn -w --livereload``, watched services
    only), None for none; ``refuse_foreign`` makes a Sass/Less/TypeScript/... source listed as
    CSS/JS an error (``s3push``), else a warning; ``legal_comments`` is ``minify.legalcomments``
    (``inline``, ``eof``, ``linked``, ``none``); ``build_timeout_ms`` is how long a
    ``build.command`` may run when its manifest sets no ``build.timeout`` (the ``build.timeout``
    configuration key). ``quick`` is the first pass of ``bosco cdn`` (served at once, completed
    right after: ``ServiceResult.complete``): no syntax checks of single files, and bundles take
    verified results and exact maps only from the cache (``bundle.build_bundle``);
    ``concatenations`` False leaves out the concatenated bundles that unminified builds serve next
    to the single files (the quick pass of the first build).
    """

    build: str = "local"
    minify: bool = False
    bundle: bool = False
    base_url: str = ""
    bundle_tag: str | None = None
    css_minifier: str = CssSection.minifier
    rebuild: bool = False
    sri: bool = False
    title: str = "bosco"
    repos_link: bool = False
    quick: bool = False
    concatenations: bool = True
    livereload: str | None = None
    refuse_foreign: bool = False
    legal_comments: str = MinifySection.legalcomments
    build_timeout_ms: int = DEFAULT_TIMEOUT_MS


def _description(repo: Path) -> tuple[str | None, list[str]]:
    """The ``description`` of ``repo/package.json`` (None when absent) and a warning when the file
    exists but cannot be used (not a regular file, not UTF-8, invalid or too deeply nested JSON)."""
    path = repo / "package.json"
    if problem(path) == "does not exist":
        return None, []
    try:
        data = load_json(path, InputFileError, "")
    except InputFileError as exc:
        return None, [f"package.json: {str(exc).removeprefix(f'{path}: ')}; its description is not shown"]
    value = data.get("description") if isinstance(data, dict) else None
    return (value if isinstance(value, str) else None), []


def _fragment(service: str, options: BuildOptions, b: BundleInput, outputs: list[Output]) -> Output:
    key = f"{service}/{options.build}/html/{b.tag}.{b.type}.html"
    tags = [(url_for(options.base_url, o.key), o.sri if options.sri else None) for o in outputs]
    html = render_fragment(b.type, tags, options.livereload, service)
    return Output(key, html.encode("utf-8"), "fragment", service)


def _single(service: str, build: str, asset, kind: str = "file", key: str | None = None) -> Output:
    """The output of one file served as it is; ``InputFileError`` when it is not a readable regular file."""
    key = key or f"{service}/{build}/{asset.rel}"
    return Output(key, read_bytes(asset.path, asset.repo_rel), kind, service, (f"{service}/{asset.repo_rel}",))


def _syntax_errors(type_: str, repo_rel: str, data: bytes) -> list[str]:
    """The syntax error of one JS/CSS file served as it is (cached by content, see ``bosco.verify``)."""
    from bosco.verify import minify_verified  # numpy and tree-sitter load only when a file is checked

    try:
        text = decode(data, repo_rel)
    except InputFileError as exc:
        return [str(exc)]
    problem = minify_verified(type_, text, minify=False).problem
    return [problem.describe(repo_rel)] if problem else []


def _imported(service: Service, build: str, importer: Output, path: Path,
              seen: set[str]) -> tuple[list[Output], list[str]]:
    """The files the local ``@import``s of the style sheet ``importer`` (read from ``path``) pull in,
    and theirs, each at the key a browser resolves its URL to from ``importer.key`` (unminified
    ``cdn`` serves style sheets as they are, so the browser fetches them), unless ``seen`` (keys
    already served, updated). An import whose URL leaves ``<service>/<build>/`` is a warning."""
    try:
        text = importer.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], []  # the syntax check reports it
    outputs: list[Output] = []
    problems: list[str] = []
    for url, target in local_imports(path, text, service.path):
        key = posixpath.normpath(posixpath.join(posixpath.dirname(importer.key), url))
        repo_rel = target.relative_to(service.path.resolve()).as_posix()
        if not key.startswith(f"{service.name}/{build}/"):
            problems.append(f"{importer.sources[0].split('/', 1)[1]}: @import {url!r} reaches outside the "
                            f"service's keys, so only bundles (cdn minify, build, s3push) include {repo_rel}")
            continue
        if key in seen:
            continue
        seen.add(key)
        try:
            data = read_bytes(target, repo_rel)
        except InputFileError as exc:
            problems.append(str(exc))
            continue
        out = Output(key, data, "file", service.name, (f"{service.name}/{repo_rel}",))
        outputs.append(out)
        more, more_problems = _imported(service, build, out, target, seen)
        outputs += more
        problems += more_problems
    return outputs, problems


BUNDLE_ENTRY = "bundle 2"  # layout of a cached bundle result


def _known_keys(service: Service, build: str, collected: Collected) -> frozenset[str]:
    """The keys a CSS ``url()`` of this service may reach: its single files, libraries and site assets."""
    return frozenset(
        [f"{service.name}/{build}/{a.rel}" for b in collected.bundles if b.type not in ("js", "css")
         for a in b.assets] + [key for key, _ in collected.libraries + collected.site_assets])


def bundle_cache_key(service: Service, options: BuildOptions, b: BundleInput, known_keys: frozenset[str]) -> str | None:
    """The cache key of one bundle's result: the options that shape it, each asset's names and flags
    and the SHA-256 of its bytes (``stamps.sha256``: by stat while unchanged), and for CSS the keys
    a ``url()`` may reach. None when an input cannot be read (the build reports it)."""
    parts = [BUNDLE_ENTRY, service.name, str(service.path), b.type, b.tag, repr((
        options.minify, options.css_minifier, options.build, options.legal_comments, options.bundle)),
        "\n".join(sorted(known_keys)) if b.type == "css" else ""]
    for a in b.assets:
        digest = stamps.sha256(a.path)
        if digest is None:
            return None
        stamps.saw("read", a.path, digest)  # what a result cached under this key was built from
        parts.append(f"{a.rel}\0{a.repo_rel}\0{a.already_minified:d}{a.source_map:d}\0{digest}")
    return cache.key(*parts)


def cached_bundle(key: str | None, parts: bool = True) -> SimpleNamespace | None:
    """The fields of the ``bundle.Bundle`` stored under ``key`` (kept as plain values, so reading
    them loads neither numpy nor tree-sitter) when every file its build read, checked or resolved
    beyond its listed inputs (a CSS ``@import``, a map and its sources, a file that did not exist)
    is as it was (``stamps.unchanged``), else None. Without ``parts`` its code and map are None
    (not read: ``cache.load``), to learn whether it is cached."""
    entry = cache.load(key, parts) if key else None
    if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], dict)
            and isinstance(entry[1], dict)):
        return None
    if not stamps.unchanged(entry[1]):
        return None
    stamps.include(entry[1])  # a run recording what it depends on depends on these files too
    return SimpleNamespace(**entry[0])


def _bundle(service: Service, options: BuildOptions, b: BundleInput,
            known_keys: frozenset[str]) -> tuple[list[Output], list[str], list[str], list[str], bool]:
    """The outputs of the JS or CSS bundle ``b`` (``<service>/<build>/<type>/<tag>.<type>``, its map
    and legal text; none when it cannot be built), its ``(errors, warnings, details)`` and whether
    it is ``Bundle.pending``: minified with ``options.minify``, else concatenated (its inputs
    syntax-checked only when ``options.bundle``: unminified ``cdn`` checks each file it serves).
    A complete result is cached whole (``bundle_cache_key``, ``cached_bundle``): it is built again
    only when its inputs, options or the files its build read change."""
    key = f"{service.name}/{options.build}/{b.type}/{b.tag}.{b.type}"
    cache_key = bundle_cache_key(service, options, b, known_keys)
    result = cached_bundle(cache_key)
    built = None
    if result is None:
        from bosco.bundle import build_bundle  # numpy and tree-sitter load only for bundles

        try:
            with stamps.recording() as record:
                result = build_bundle(service.name, service.path, b.type, b.tag, b.assets, options.minify,
                                      options.css_minifier, options.build, known_keys, options.legal_comments,
                                      check=options.bundle, quick=options.quick)
        except BoscoError as exc:
            return [], [str(exc)], [], [], False
        built = record
    sources = tuple(f"{service.name}/{a.repo_rel}" for a in b.code)
    outputs = [Output(key, result.code, "bundle", service.name, sources),
               Output(key + ".map", result.source_map, "map", service.name, sources)]
    if built is not None and cache_key and not result.pending:  # code and map by the digests publishing uses
        cache.store(cache_key, (dict(vars(result)), built), [(o.data, o.sha256) for o in outputs])
    if result.legal:
        outputs.append(Output(key + ".LEGAL.txt", result.legal.encode(), "file", service.name, sources))
    return outputs, list(result.errors), list(result.warnings), list(result.details), result.pending


@dataclass(frozen=True)
class Prepared:
    """What building a service does before it reads its assets (``prepare``): the ``description``
    of its ``package.json``, the ``warnings`` of its manifest and that file, and its
    ``build.command``: why it failed (``errors``) or a ``details`` line when it was not needed."""

    description: str | None = None
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


def prepare(service: Service, options: BuildOptions) -> Prepared:
    """Run the service's ``build.command`` when its assets are missing (or with ``options.rebuild``)
    and read its ``package.json``. Never raises for bad input (``Prepared.errors``)."""
    description, warnings = _description(service.path)
    manifest = service.manifest
    if manifest is None:
        return Prepared(description, tuple(warnings))
    errors, details = [], []
    if manifest.build and manifest.build.command:
        if options.rebuild or missing_assets(service.path, manifest):
            try:
                run_build_command(service.path, manifest.build, options.build_timeout_ms)
            except BoscoError as exc:
                errors.append(str(exc))
        else:
            details.append("build.command not run: every declared asset exists (--rebuild runs it)")
    return Prepared(description, tuple(manifest.warnings) + tuple(warnings), tuple(errors), tuple(details))


def build_service(service: Service, options: BuildOptions, with_git: bool = True,
                  prepared: Prepared | None = None, collected: Collected | None = None) -> ServiceResult:
    """Build one service's outputs. Never raises for bad input: a broken manifest, failed build
    command, missing file or bundle failure becomes an error line on the returned ServiceResult.
    ``with_git`` reads the git facts of the folder (``gitinfo.repo_info``, after build.command ran).
    ``prepared`` is what ``prepare`` did for an earlier pass over the same service (its build
    command is not run again), else ``prepare`` runs first. ``collected`` is the service's glob
    expansion when already made (used for a service without ``build.command``)."""
    prepared = prepared or prepare(service, options)
    description = prepared.description
    if service.manifest is None:
        return ServiceResult(service.name, str(service.path), (), errors=(service.error or "",),
                            warnings=prepared.warnings, description=description,
                            git=repo_info(service.path) if with_git else None)
    manifest = service.manifest
    errors = list(prepared.errors)
    warnings = list(prepared.warnings)
    details = list(prepared.details)
    complete = True
    if collected is None or (manifest.build and manifest.build.command):
        collected = collect(service.path, manifest, options.bundle_tag)
    if errors:  # missing outputs of a failed build.command are consequences, not separate errors
        collected = replace(collected, bundles=tuple(replace(b, errors=()) for b in collected.bundles), errors=())
    known_keys = _known_keys(service, options.build, collected)
    outputs: list[Output] = []
    reports: list[BundleReport] = []
    imported_keys = {f"{service.name}/{options.build}/{a.rel}" for b in collected.bundles for a in b.assets}
    for b in collected.bundles:
        bundle_errors = list(b.errors)
        bundle_warnings: list[str] = []
        bundle_details: list[str] = []
        bundle_key = None
        files: list[Output] = []
        code_type = b.type in ("js", "css")
        for asset in b.code if code_type else ():
            foreign = foreign_source(asset)
            if foreign:
                (bundle_errors if options.refuse_foreign else bundle_warnings).append(foreign)
        concatenated: list[Output] = []
        if code_type and b.code and (options.bundle or options.concatenations):
            # served file by file (unminified cdn), the concatenation is served too, for pages
            # that load the bundle keys; its problems are warnings there (each file is checked)
            concatenated, problems, more_warnings, more_details, pending = _bundle(service, options, b, known_keys)
            complete = complete and not pending
            (bundle_errors if options.bundle else bundle_warnings).extend(problems)
            bundle_warnings += more_warnings
            bundle_details += more_details
            if options.bundle and concatenated:
                bundle_key = concatenated[0].key
                files.append(concatenated[0])
        if not (code_type and options.bundle):
            for asset in b.assets:
                try:
                    out = _single(service.name, options.build, asset)
                except InputFileError as exc:
                    bundle_errors.append(str(exc))
                    continue
                outputs.append(out)
                if not asset.source_map:
                    files.append(out)
                    if code_type and not options.quick:
                        bundle_errors += _syntax_errors(asset.type, asset.repo_rel, out.data)
                    complete = complete and not (code_type and options.quick)
                    if b.type == "css":
                        imported, problems = _imported(service, options.build, out, asset.path, imported_keys)
                        outputs += imported
                        bundle_warnings += problems
            taken = [o.key for o in concatenated if o.key in imported_keys]
            if taken:  # a file of the service is served at that key (``js/app.js`` of the tag ``app``)
                bundle_details.append(f"the concatenation is not served: {taken[0]} is the key of a file")
                concatenated = []
        outputs += concatenated
        bundle_warnings = [w for w in bundle_warnings if w not in bundle_errors]
        fragment_key = None
        if code_type:
            fragment = _fragment(service.name, options, b, files)
            fragment_key = fragment.key
            outputs.append(fragment)
        reports.append(BundleReport(
            b.type, b.tag, bundle_key, tuple(o.key for o in files if o.key != bundle_key), fragment_key,
            tuple(bundle_errors), tuple(f"{service.name}/{a.repo_rel}" for a in b.code), tuple(bundle_warnings),
            tuple(bundle_details),
        ))
    for kind, shared in (("library", collected.libraries), ("site", collected.site_assets)):
        for key, asset in shared:
            try:
                outputs.append(_single(service.name, options.build, asset, kind, key))
            except InputFileError as exc:
                errors.append(f"{kind}: {exc}")
    errors += collected.errors
    complete = complete and (options.bundle or options.concatenations)
    return ServiceResult(service.name, str(service.path), tuple(outputs), tuple(reports), tuple(errors),
                        tuple(warnings), description, repo_info(service.path) if with_git else None, tuple(details),
                        complete)


def index_output(services: Sequence[ServiceResult], options: BuildOptions, warnings: Sequence[str],
                 duplicates: Sequence[Duplicate] = (), sizes: Mapping[str, Mapping[str, Any]] | None = None,
                 remote: RemotePage | None = None) -> Output:
    """The ``index.html`` page of an asset set (``sizes`` and ``remote``: see ``fragments.render_index``)."""
    html = render_index([PageService.of(s) for s in services], options.base_url, warnings, options.title,
                        options.repos_link, duplicates, sizes, remote)
    return Output(INDEX_KEY, html.encode("utf-8"), "page")


class _Outputs(Mapping[str, Output]):
    """The outputs of an asset set, its index page rendered on first use and kept (``bosco cdn -w``
    swaps in a new set on every save; the page is rendered only when someone asks for it)."""

    def __init__(self, outputs: Mapping[str, Output], index: Callable[[], Output]) -> None:
        self._outputs, self._render = outputs, index
        self._index: Output | None = None
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> Output:
        if key != INDEX_KEY:
            return self._outputs[key]
        with self._lock:
            if self._index is None:
                self._index = self._render()
            return self._index

    def __contains__(self, key: object) -> bool:
        return key == INDEX_KEY or key in self._outputs

    def __iter__(self) -> Iterator[str]:
        yield from self._outputs
        yield INDEX_KEY

    def __len__(self) -> int:
        return len(self._outputs) + 1


def assemble(services: Sequence[ServiceResult], options: BuildOptions,
             warnings: Sequence[str] = (), sizes: Mapping[str, Mapping[str, Any]] | None = None,
             remote: RemotePage | None = None,
             places_of: Callable[[ServiceResult], list[duplicates.Found]] = duplicates.places) -> AssetSet:
    """Combine service builds and their index page into one AssetSet (``sizes``: the bundle sizes
    and budgets it shows; ``remote``: the published releases ``bosco cdn --remote`` serves beside
    them; see ``fragments.render_index``); the page is rendered when it is first read.
    ``places_of``: see ``duplicates.find``."""
    combined = AssetSet.assemble(tuple(services))
    all_warnings = tuple(warnings) + combined.warnings
    found = tuple(duplicates.find(services, places_of))
    outputs = _Outputs(combined.outputs,
                       lambda: index_output(services, options, all_warnings, found, sizes, remote))
    return AssetSet(outputs, combined.services,
                    all_warnings + tuple(f"duplicate: {d.describe()}" for d in found), found)


def _prewarm(options: BuildOptions) -> Any:
    """The ``verify.Prewarm`` of a minified build, made at its first bundle not cached whole. With
    more than one CPU the worker processes' server (``workers.start_server``) starts first, so it
    imports the verify modules (numpy, tree-sitter) while this process imports and reads the same:
    the first worker starts that much sooner (a build that then needs no pool pays one idle server)."""
    cpus = os.cpu_count() or 1
    if cpus > 1:
        from bosco.workers import start_server

        start_server()
    from bosco.verify import Prewarm  # numpy and tree-sitter

    return Prewarm(cpus, options.legal_comments == "inline")


def build_in_order(jobs: Sequence[tuple[Service, BuildOptions, Prepared | None]],
                   collected: Sequence[Collected | None] | None = None) -> Iterator[ServiceResult]:
    """``build_service(service, options, with_git=False, prepared=prepared)`` of each job, yielded
    in order (``collected``: each service's glob expansion when already made, used for a service
    without ``build.command``). A job without ``prepared`` is prepared first (``prepare``: its
    ``build.command`` runs before its files are read).

    Minified builds first hand every distinct JS and CSS input of the bundles not cached whole to
    worker processes on all CPUs (``verify.Prewarm``), then build the services in order, each as
    soon as its own inputs are verified and minified, while the workers go on with the next
    services' files. Each input is read and scanned once (``bundle.minify_inputs`` keeps it)."""
    ahead = None
    waits: list[list[str]] = []
    found_all: list[Collected | None] = []
    ready: list[Prepared] = []
    for n, (service, options, prepared) in enumerate(jobs):
        ready.append(prepared or prepare(service, options))
        manifest = service.manifest
        found = None if manifest is None else collected[n] if collected is not None and not (
            manifest.build and manifest.build.command) else collect(service.path, manifest, options.bundle_tag)
        found_all.append(found)
        names: list[str] = []
        if found is not None and options.minify and options.bundle:
            known_keys = _known_keys(service, options.build, found)
            for b in found.bundles:
                if b.type in ("js", "css") and b.code and not cached_bundle(
                        bundle_cache_key(service, options, b, known_keys), parts=False):
                    if ahead is None:
                        ahead = _prewarm(options)
                    from bosco.bundle import minify_inputs

                    names += ahead.add(b.type, minify_inputs(service.name, service.path, b.type, b.tag, b.assets,
                                                             options.build, options.css_minifier, known_keys,
                                                             keep=True))
        waits.append(names)
    with ahead or nullcontext():
        for (service, options, _), prepared, found, names in zip(jobs, ready, found_all, waits, strict=True):
            if ahead is not None:
                ahead.wait(names)
            yield build_service(service, options, with_git=False, prepared=prepared, collected=found)


def build_asset_set(
    services: Sequence[Service],
    options: BuildOptions,
    warnings: Sequence[str] = (),
    progress: Callable[[Service], None] | None = None,
    git: Mapping[Path, RepoInfo | None] | None = None,
    each: Callable[[ServiceResult], ServiceResult] | None = None,
) -> AssetSet:
    """Build every service in order (``progress`` is called after each; ``build_in_order``) and
    assemble the set. ``git``: service folder -> git facts already read (``gitinfo.repo_info``, by
    a caller that runs no ``build.command``); the others are read after their service is built.
    Each service's globs are expanded once. ``each`` is given each built service as soon as it is
    built and returns what the set holds of it (``publish.local.Staging.stage``: its bundles and
    maps written ahead, no longer held in memory)."""
    collected: list[Collected | None] = [
        collect(s.path, s.manifest, options.bundle_tag) if s.manifest is not None else None for s in services]
    builds = []
    known = git or {}
    with ThreadPoolExecutor(4) as pool:  # git status of a built service runs while the next one builds
        for service, build in zip(services, build_in_order([(s, options, None) for s in services], collected),
                                  strict=True):
            reading = None if service.path in known else pool.submit(repo_info, service.path)
            builds.append((each(build) if each else build, service.path, reading))
            if progress:
                progress(service)
    return assemble([replace(b, git=reading.result() if reading else known[path]) for b, path, reading in builds],
                    options, warnings)
