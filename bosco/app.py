"""bosco's Python API: one function per use case of the command line (reference: docs/api.md).

Open a workspace with ``open_workspace`` (what the shared options ``-W -e -r -t -s`` select), then
call a use case: ``build_to`` (``bosco build --out``), ``push`` (``s3push``), ``delete``
(``s3delete``), ``diff``, ``verify``, ``Cdn``/``serve`` (``bosco cdn``), ``cache_stats`` and
``cache_prune``. Each takes plain values, applies bosco's publishing policy (the asset-set error
gate, the BUNDLE-push index rule, the current-release rule of a delete, budgets, provenance),
reports what happens while it runs through a ``Reporter`` (silent unless one is given) and returns
a result dataclass with a ``to_json()``; none prints. Errors a user can cause raise
``bosco.errors.BoscoError`` subclasses: ``ProblemsError`` (``.problems`` lists every problem; nothing
was published or written), ``Cancelled`` (a confirmation was declined), ``PublishError``,
``ConfigError``. The command line (``bosco.cli``) is these calls plus ``bosco.ui`` rendering.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bosco.assetset import use_types
from bosco.cache import configure as configure_cache
from bosco.config import Config, load_config
from bosco.errors import BoscoError, Cancelled, ProblemsError, PublishError
from bosco.publish import DEFAULT_BUILD, DEFAULT_CONCURRENCY
from bosco.redact import redact
from bosco.workspace import Service, compile_regex, discover_services, filter_services, find_root

# The build and publish modules load in the use cases that need them: ``build --out`` with nothing
# changed (``bosco.noop``) and ``bosco config`` start without them.
if TYPE_CHECKING:
    from bosco.assetset import AssetSet, ServiceResult
    from bosco.publish.audit import VerifyReport
    from bosco.publish.compress import CompressionCache
    from bosco.publish.plan import PublishOptions, ReleasePlan
    from bosco.publish.report import PublishReport, Result
    from bosco.publish.s3 import S3Target
    from bosco.server import CdnServer
    from bosco.watch import Rebuild, ServedAssetSet

__all__ = [
    "DEFAULT_BUILD", "DEFAULT_CONCURRENCY", "BuildResult", "CacheStats", "Cdn", "ConfigReport", "DeleteResult",
    "DiffResult", "PruneResult", "PushResult", "Reporter", "Workspace", "build_to", "cache_prune", "cache_stats",
    "configuration", "delete", "diff", "open_workspace", "plural", "push", "require_verified", "serve", "verify",
    "watched_services",
]


def plural(count: int, word: str) -> str:
    """``"1 error"``, ``"2 errors"``: the one wording for counts."""
    return f"{count} {word}{'' if count == 1 else 's'}"


class Reporter:
    """What a use case tells while it runs. This base says nothing and confirms every question (a
    Python caller that asks for a push wants it); ``bosco.ui.Console`` renders it for the command
    line (human, ``--json``, ``-q``)."""

    def detail(self, text: str) -> None:
        """Information that needs no action (``-v``): a minifier fault bosco repaired, ..."""

    def warning(self, text: str) -> None:
        """A problem that does not stop the use case."""

    def error(self, text: str) -> None:
        """A problem that stops the use case: every one is reported before ``ProblemsError`` is raised."""

    def status(self, text: str) -> None:
        """A line about what is being done (provenance of each service, the summary of a push, ...)."""

    def retry(self, text: str) -> None:
        """A request to the store failed and is retried (botocore retries; bosco only reports)."""

    def changes(self, diff: dict[str, Any]) -> None:
        """What a push is about to change (``bosco.diff.diff_releases``), before it asks to go on."""

    def progress(self, label: str, total: int) -> AbstractContextManager[Callable[[str], None]]:
        """A context giving ``advance(description)``, called ``total`` times."""
        return nullcontext(lambda description: None)

    def confirm(self, question: str) -> bool:
        """Whether to go on (``question`` ends with ``(y/N)?``)."""
        return True

    def event(self, name: str, **fields: Any) -> None:
        """An event of ``bosco cdn``: ``listening`` (url), ``serving`` (url, services, assets, minified,
        warnings, errors), ``watching`` (services, livereload), ``rebuild`` (service, ok, changed,
        removed, reasons, errors, ms, recovered), ``problem`` (service, message; hint when the
        server keeps answering with what was built), ``remote`` (environment, online, status: with
        ``--remote``, at start and when the upstream stops or starts answering) and ``stopped``."""

    def output(self, service: str, line: str) -> None:
        """One output line of a service's watch build command (``bosco cdn -w``)."""


SILENT = Reporter()


@dataclass(frozen=True)
class Workspace:
    """An opened workspace: ``root`` folder, ``environment`` (``-e``; ``environment_given`` False when
    it is the default ``local``), resolved ``config``, ``services`` selected by ``repo``/``service_tag``/
    ``current`` (in workspace order), ``found`` (services discovered before selection) and the
    ``warnings`` of discovery."""

    root: Path
    environment: str
    config: Config
    services: list[Service]
    warnings: list[str]
    found: int
    environment_given: bool = False
    repo: str | None = None
    service_tag: str | None = None

    def selected(self) -> list[Service]:
        """The selected services; raises ``BoscoError`` when the workspace has none or the
        selection leaves none (a command with nothing to do is a mistake, not a success)."""
        if self.services:
            return self.services
        if not self.found:
            parent = self.root.parent
            if (self.root / "bosco-service.json").is_file():  # inside a service of a workspace without .bosco/
                raise BoscoError(f"no service found in workspace {self.root}: it is a service, and services are the "
                                 f"subfolders of the workspace",
                                 f"run bosco in {parent}, pass -W {parent}, or create {parent / '.bosco'}/ "
                                 f"so that bosco finds the workspace from any folder inside it")
            raise BoscoError(f"no service found in workspace {self.root}",
                             "run bosco in a workspace whose subfolders hold bosco-service.json files, or pass -W DIR")
        chosen = " ".join(f"{flag} {value}" for flag, value in (("-r", self.repo), ("-t", self.service_tag)) if value)
        raise BoscoError(f"no service matches {chosen}".rstrip(),
                         "check -r/-t/-s: names and tags come from each bosco-service.json")

    def environment_hint(self) -> str:
        """Which environment is used and how to pick another (a missing bucket is most often a missing
        or mistyped -e): names the environments that have a ``.bosco/<env>.json``."""
        env, folder = self.environment, self.root / ".bosco"
        known = sorted(p.stem for p in folder.glob("*.json") if p.stem != "bosco") if folder.is_dir() else []
        used = f"-e {env}" if self.environment_given else f"{env} (the default: no -e given)"
        return (f"the environment is {used}; pick one with -e ENV"
                + (f" (environments with a file in {folder}: {', '.join(known)})" if known else "")
                + f", or set aws.bucket in {folder / (env + '.json')} or BOSCO_AWS_BUCKET")


def open_workspace(workspace: Path | str | None = None, environment: str | None = None, *, repo: str | None = None,
                   service_tag: str | None = None, current: Path | None = None, cwd: Path | None = None,
                   overrides: dict[str, Any] | None = None, strict: bool = False,
                   reporter: Reporter = SILENT) -> Workspace:
    """Find the workspace root (``workspace``, else the nearest ancestor of ``cwd`` holding ``.bosco/``,
    else ``cwd``; ``cwd`` defaults to the current folder), load its configuration for ``environment``
    (default ``local``) with ``overrides`` (options, highest layer) and select its services: ``repo``
    a regular expression on names (``-r``), ``service_tag`` one of a manifest's ``tags`` (``-t``), ``current`` a folder
    whose service alone is selected (``-s``). Configuration warnings go to ``reporter``; ``strict``
    makes an unknown configuration key a ``ConfigError``. Also applies the configuration's content
    types and shared cache (``types``, ``cache.remote``) to this process."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    root = find_root(cwd, Path(workspace) if workspace is not None else None)
    env = environment or "local"
    config = load_config(root, env, overrides, strict=strict)
    use_types(config.types)
    for warning in config.warnings:
        reporter.warning(warning)
    configure_cache(config)
    services, warnings = discover_services(root, config)
    selected = filter_services(services, repo, service_tag, current) if services else []
    return Workspace(root, env, config, selected, warnings, len(services), environment is not None, repo, service_tag)


# ----------------------------------------------------------------------------------------------- building


def _css_minifier(ws: Workspace, reporter: Reporter) -> str:
    """The configured CSS minifier (``load_config`` validated it); warns about csscompressor."""
    name = ws.config.css.minifier
    if name == "csscompressor":
        reporter.warning("css.minifier csscompressor 0.9.5 is known to corrupt modern CSS "
                         "(clamp()/min()/max() arithmetic, @supports not (, @container name (, whitespace in quoted "
                         "data-URI SVGs, .a :first-child inside @media, --x: 0px used in calc()); its output is not "
                         "verified; rcssmin is the default")
    return name


def _report_problems(asset_set: AssetSet, reporter: Reporter) -> None:
    """Details, warnings and errors of an asset set, one line each naming the service."""
    for detail in (f"{s.name}: {d}" for s in asset_set.services for d in s.all_details):
        reporter.detail(detail)
    for warning in _warnings(asset_set):
        reporter.warning(warning)
    for error in asset_set.errors:
        reporter.error(error)


def _warnings(asset_set: AssetSet) -> list[str]:
    return list(asset_set.warnings) + [f"{s.name}: {w}" for s in asset_set.services for w in s.all_warnings]


def _gate(reported: list[str], more: list[str], consequence: str, reporter: Reporter,
          hint: str = "fix the problems above and run again") -> None:
    """The one error gate of building and publishing: report ``more`` (``reported`` were already) and
    raise ``ProblemsError`` counting both when there is any."""
    for problem in more:
        reporter.error(problem)
    if reported or more:
        raise ProblemsError(f"{plural(len(reported) + len(more), 'error')}; {consequence}", hint,
                            problems=[*reported, *more])


def _published_base(ws: Workspace, fallback: str) -> str:
    """URL prefix of published links (fragments, ``index.html``): ``<aws.cdn>/<env>``, else ``fallback``."""
    cdn_url = ws.config.aws.cdn
    return f"{cdn_url.rstrip('/')}/{ws.environment}" if cdn_url else fallback.rstrip("/")


def _build_published(ws: Workspace, build: str, bundle_tag: str | None, minify: bool, fallback: str, reporter: Reporter,
                     refuse_foreign: bool = False, git: dict[Path, Any] | None = None,
                     each: Callable[[ServiceResult], ServiceResult] | None = None) -> AssetSet:
    """The asset set ``build_to``, ``push`` and ``diff`` publish (the same bytes): fragments link
    ``<aws.cdn>/<env>/<key>``, else ``fallback``; every ``build.command`` runs (a publish builds from
    source); a key that cannot be published is an error of its service. Reports its problems.
    ``git``: the git facts of service folders already read, ``each``: see ``pipeline.build_asset_set``."""
    from bosco.pipeline import BuildOptions, build_asset_set

    options = BuildOptions(build=build, minify=minify, bundle=True, base_url=_published_base(ws, fallback),
                           bundle_tag=bundle_tag,
                           css_minifier=_css_minifier(ws, reporter), rebuild=True,
                           sri=ws.config.fragments.sri, title=f"bosco {ws.environment}/{build}",
                           legal_comments=ws.config.minify.legalcomments,
                           build_timeout_ms=ws.config.build.timeout, refuse_foreign=refuse_foreign)
    services = ws.selected()
    with reporter.progress("building", len(services)) as advance:
        asset_set = build_asset_set(services, options, ws.warnings, lambda s: advance(s.name), git, each)
    asset_set = asset_set.with_key_problems(ws.environment)
    _report_problems(asset_set, reporter)
    return asset_set


def _publish_options(ws: Workspace, build: str, concurrency: int, bundle_tag: str | None, force: bool,
                     fallback: str) -> PublishOptions:
    """Publish options from the configuration (``aws.maxage``, ``aws.shortcache``)."""
    from bosco.publish.plan import PublishOptions

    return PublishOptions(ws.environment, build, ws.config.aws.maxage, ws.config.aws.shortcache,
                          concurrency, bundle_tag, _published_base(ws, fallback), force)


def compression_cache(config: Config) -> CompressionCache:
    """The compression cache (``compressed`` in the local cache folder) with the configured brotli
    qualities, encoding large bodies in one process per CPU."""
    from bosco.publish.compress import CompressionCache, default_cache_dir

    return CompressionCache(default_cache_dir(), config.brotli.quality, config.brotli.mapquality,
                            os.cpu_count() or 1)


def _provenance(asset_set: AssetSet, publish: PublishOptions, strict: bool, reporter: Reporter,
                seen: dict[tuple[str, str], str | None]) -> tuple[dict[str, Any], list[str]]:
    """The provenance of every service ``publish`` releases (README "Provenance"): a status line per
    service (branch, commit, origin), a warning naming the services outside git, and the published
    files with uncommitted changes: problems when ``strict`` (s3push without --allow-dirty), else
    warnings. ``seen`` is the ``stamps.recording()`` of the build (the digests of the bytes it read).
    Returns (service -> release index keys, problems)."""
    from bosco import provenance
    from bosco.publish.plan import released_outputs

    outputs = released_outputs(asset_set, publish)
    names = {o.service for o in outputs if o.service}
    found = provenance.collect([s for s in asset_set.services if s.name in names], outputs, seen)
    for name, p in found.items():
        if p.git:
            reporter.status(f"{name}: git {p.git.describe()}")
    missing = provenance.not_git(found)
    if missing:
        reporter.warning(f"not in a git repository, recorded without provenance (\"git\": null): {', '.join(missing)}")
    dirty = provenance.uncommitted_problems(found)
    records = {n: p.record() for n, p in found.items()}
    if strict:
        return records, [f"{d} (commit them, or pass --allow-dirty)" for d in dirty]
    for line in dirty:
        reporter.warning(line)
    return records, []


def _bundle_sizes(asset_set: AssetSet, publish: PublishOptions, config: Config,
                  cache: CompressionCache | None = None) -> dict[str, dict[str, int]]:
    """Raw/gzip/brotli bytes of every bundle ``publish`` releases, compressed through ``cache`` (else
    a compression cache of its own; a later push reuses the bodies)."""
    from bosco.publish.plan import released_outputs
    from bosco.sizes import compressed_sizes

    bundles = [o for o in released_outputs(asset_set, publish) if o.kind == "bundle"]
    if cache is not None:
        return compressed_sizes(bundles, cache)
    with compression_cache(config) as own:
        return compressed_sizes(bundles, own)


def _local_side(asset_set: AssetSet, publish: PublishOptions, records: dict[str, Any],
                sizes: dict[str, dict[str, int]], label: str) -> dict[str, Any]:
    """The services ``publish`` releases, as release indexes of the local build (``label``)."""
    from bosco.diff import local_indexes
    from bosco.publish.plan import released_outputs

    outputs = released_outputs(asset_set, publish)
    names = [s.name for s in asset_set.services if s.name in {o.service for o in outputs}]
    return local_indexes(names, outputs, records, sizes, label)


def _budgets(ws: Workspace, asset_set: AssetSet, sizes: dict[str, dict[str, int]], previous: dict[str, Any],
             build: str, ignore: bool, reporter: Reporter) -> tuple[list[str], list[dict[str, Any]]]:
    """The size budgets (README "Size budgets") of the measured bundles: (problems, violations as
    JSON). Violations are problems unless ``ignore`` (--ignore-budgets): then warnings. Invalid
    manifest budgets are always problems."""
    from bosco import budgets

    rules, problems = _budget_rules(ws, asset_set.services)
    violations = budgets.evaluate(asset_set, rules, sizes, previous, build)
    lines = [f"over budget: {v.describe()}" for v in violations]
    if ignore:
        for line in lines:
            reporter.warning(f"{line} (--ignore-budgets)")
        lines = []
    return problems + [f"{line} (--ignore-budgets publishes anyway)" for line in lines], \
        [v.to_json() for v in violations]


def _budget_rules(ws: Workspace, services: Iterable[Any]) -> tuple[tuple[Any, ...], list[str]]:
    """``budgets.rules_for`` the configuration and the manifests of ``services`` (those with a
    ``name`` and ``path``): (rules, problems of invalid manifest budgets)."""
    from bosco import budgets

    return budgets.rules_for(ws.config.budgets,
                             lambda key: ws.config.origin(f"budgets.{key}" if key else "budgets"),
                             [(s.name, Path(s.path)) for s in services])


def _has_budgets(ws: Workspace) -> bool:
    """True when the configuration or a selected manifest has a ``budgets`` key (sizes are needed)."""
    from bosco.jsonfile import load_json

    def declares(service: Service) -> bool:
        try:
            return "budgets" in load_json(service.path / "bosco-service.json", BoscoError, "")
        except (BoscoError, TypeError):
            return False

    return ws.config.budgets is not None or any(declares(s) for s in ws.services)


# ----------------------------------------------------------------------------------------------- build --out


@dataclass(frozen=True)
class BuildResult:
    """What ``build_to`` wrote: the ``out`` folder, ``environment``, ``build``, ``services`` (names),
    ``written`` (files written or replaced), ``unchanged`` (files left as they were), ``bytes``
    (written) and the build's ``warnings``."""

    out: Path
    environment: str
    build: str
    services: list[str]
    written: int
    unchanged: int
    bytes: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        """The ``bosco build --json`` object (secrets masked)."""
        return {"ok": True, "out": str(self.out), "environment": self.environment, "build": self.build,
                "services": self.services, "written": self.written, "unchanged": self.unchanged,
                "bytes": self.bytes, "warnings": [redact(w) for w in self.warnings]}


def build_to(ws: Workspace, out: Path, *, build: str = DEFAULT_BUILD, bundle_tag: str | None = None,
             minify: bool = True, base_url: str | None = None, force: bool = False, ignore_budgets: bool = False,
             reporter: Reporter = SILENT) -> BuildResult:
    """Write the asset set ``push`` would publish into folder ``out`` through the same release code
    (one uncompressed file per asset key, release indexes last; docs/layout.md). ``bundle_tag``
    limits it to one bundle tag; fragments link ``<aws.cdn>/<env>/<key>``, else ``base_url``, else
    ``/<key>``. Raises ``BoscoError`` when ``base_url`` is not an ``http(s)://`` URL or a path
    starting with ``/``, ``ProblemsError`` (nothing written) when a service has an error or a bundle is
    over its budget (unless ``ignore_budgets``), ``PublishError`` when ``out`` is unusable or a file
    of an already written build other than ``default`` would change (unless ``force``). When nothing
    the last run into ``out`` depended on changed (``bosco.noop``), nothing is built or written: a
    detail line says so and the last run's lines are reported again."""
    from bosco import noop, stamps
    from bosco.publish.local import DirectoryTarget, Staging, check_out_dir

    if base_url and not base_url.startswith(("http://", "https://", "/")):
        raise BoscoError(f"--base-url {base_url[:80]!r} is not a URL prefix fragments can link",
                         "give an http:// or https:// URL, or a path starting with / (docs/commands.md)")
    out = Path(out)
    check_out_dir(out, ws.root)
    services = ws.selected()
    skip = noop.applies(services) and not _has_budgets(ws)
    git = noop.git_infos(services) if skip else None  # no build.command runs: the build reuses them
    fingerprint = noop.fingerprint(
        ws.root, ws.environment, ws.config.values, ws.warnings, out.resolve(), build, bundle_tag, minify, base_url,
        force, ignore_budgets, [(s.name, str(s.path), repr(s.manifest), s.error) for s in services],
        noop.git_facts(services, git) if git is not None else None)
    last = noop.last_run(out, fingerprint) if skip else None
    if last is not None:
        reporter.detail(f"nothing changed since the last build into {out}: not built again")
        for kind, text in last.reported:
            getattr(reporter, kind)(text)
        return BuildResult(out, ws.environment, build, [s.name for s in services], 0, last.summary["unchanged"], 0,
                           last.summary["warnings"])
    from bosco.publish.compress import CompressionCache
    from bosco.publish.execute import execute
    from bosco.publish.plan import plan_release

    publish = _publish_options(ws, build, DEFAULT_CONCURRENCY, bundle_tag, force, base_url or "")
    recording = _Recording(reporter)
    budgets = _has_budgets(ws)  # they measure the bundles' compressed sizes in memory: nothing staged
    with Staging(out) as staging:
        with stamps.recording() as record:
            asset_set = _build_published(ws, build, bundle_tag, minify, base_url or "", recording, git=git,
                                         each=None if budgets else staging.stage)
            _gate(asset_set.errors, [], f"nothing written to {out}", recording, "fix the errors above and run again")
            records, _ = _provenance(asset_set, publish, False, recording, record)
        target = DirectoryTarget(out)
        plan = plan_release(asset_set, target, publish, records)
        if budgets:
            from bosco.diff import current_release

            previous = {n: current_release(st) for n, st in plan.services.items()}
            over, _ = _budgets(ws, asset_set, _bundle_sizes(asset_set, publish, ws.config), previous, build,
                               ignore_budgets, reporter)
            _gate([], over, f"nothing written to {out}", reporter)
        try:
            staging.wait()
            report = execute(plan, target, CompressionCache(None))
        except BoscoError:
            target.discard_created()
            raise
    totals = report.totals()
    written, warnings = totals["upload"] + totals["copy"], _warnings(asset_set)
    target.save_state(noop.run_record(out, fingerprint, record, [r.key for r in report.results], recording.lines,
                                      {"unchanged": written + totals["skip"], "warnings": warnings}) if skip else None)
    return BuildResult(out, ws.environment, build, [s.name for s in asset_set.services], written, totals["skip"],
                       totals["sent_bytes"], warnings)


class _Recording(Reporter):
    """Passes everything on to ``inner`` and keeps the detail, warning, error and status lines in
    ``lines`` as ``(kind, text)``: what ``build_to`` reports again when nothing changed (``noop``)."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.lines: list[tuple[str, str]] = []

    def _keep(self, kind: str, text: str) -> None:
        self.lines.append((kind, text))
        getattr(self.inner, kind)(text)

    def detail(self, text: str) -> None:
        self._keep("detail", text)

    def warning(self, text: str) -> None:
        self._keep("warning", text)

    def error(self, text: str) -> None:
        self._keep("error", text)

    def status(self, text: str) -> None:
        self._keep("status", text)

    def retry(self, text: str) -> None:
        self.inner.retry(text)

    def progress(self, label: str, total: int) -> AbstractContextManager[Callable[[str], None]]:
        return self.inner.progress(label, total)

    def confirm(self, question: str) -> bool:
        return self.inner.confirm(question)


# ----------------------------------------------------------------------------------------------- S3


def _s3(ws: Workspace, concurrency: int, reporter: Reporter) -> S3Target:
    """The S3 target of the workspace's environment; raises ``PublishError`` naming the environment
    used and how to pick one when ``aws.bucket`` is not set."""
    from bosco.publish.s3 import config_problems, s3_target  # boto3 costs 0.2 s of start-up: only here

    missing = config_problems(ws.config, ws.environment)
    if missing:
        raise PublishError(missing[0], ws.environment_hint())
    return s3_target(ws.config, ws.environment, concurrency, lambda message: reporter.retry(redact(message)))


@dataclass(frozen=True)
class PushResult:
    """What ``push`` did (or, with ``dry_run``, would do): ``report`` (``PublishReport``: every object
    with its action and sizes), ``git`` (service -> provenance record), ``diff`` (against each
    service's current release), ``budgets`` (violations), ``duplicates`` (files published by several
    services) and ``verify`` (the ``VerifyReport`` of the pushed build, when asked for)."""

    report: PublishReport
    git: dict[str, Any]
    diff: dict[str, Any]
    budgets: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    verify: VerifyReport | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``bosco s3push --json`` object."""
        return {**self.report.to_json(), "git": self.git, "diff": self.diff, "budgets": self.budgets,
                "duplicates": self.duplicates, **({"verify": self.verify.to_json()} if self.verify else {})}


def push(ws: Workspace, *, build: str = DEFAULT_BUILD, bundle_tag: str | None = None, dry_run: bool = False,
         concurrency: int = DEFAULT_CONCURRENCY, force: bool = False, allow_dirty: bool = False,
         ignore_budgets: bool = False, verify_after: bool = False, reporter: Reporter = SILENT) -> PushResult:
    """Build the minified asset set of the selected services and publish it to ``aws.bucket`` under
    ``<env>/`` (docs/layout.md). ``bundle_tag`` publishes one bundle tag (only services that have it;
    their release index keeps the entries the push does not replace). Asks ``reporter.confirm``
    after showing the summary and ``reporter.changes`` (not in a ``dry_run``, which changes nothing).

    Raises ``ProblemsError`` (nothing published) listing every problem: a service error, a missing
    ``aws.bucket``, uncommitted published files (unless ``allow_dirty``), a bundle over budget
    (unless ``ignore_budgets``); ``Cancelled`` when the confirmation is declined; ``PublishError``
    when an already published build other than ``default`` would change (unless ``force``) or the
    store fails. ``verify_after`` re-reads the release (``PushResult.verify``; ``require_verified``
    fails on a difference)."""
    from bosco import stamps
    from bosco.diff import current_release, diff_releases
    from bosco.publish.execute import dry_run_report, share_bodies
    from bosco.publish.plan import plan_release
    from bosco.publish.s3 import config_problems

    env = ws.environment
    publish = _publish_options(ws, build, concurrency, bundle_tag, force, f"/{env}")
    if not ws.config.aws.cdn:
        reporter.detail(f"aws.cdn is not set; fragments link root-relative /{env}/<key>")
    with stamps.recording() as record:
        asset_set = _build_published(ws, build, bundle_tag, True, f"/{env}", reporter, refuse_foreign=True)
    bucket = ws.config.aws.bucket
    config = config_problems(ws.config, env)
    records, dirty = (_provenance(asset_set, publish, not allow_dirty, reporter, record) if not asset_set.errors
                      else ({}, []))
    _gate(asset_set.errors, config + dirty, f"nothing published to s3://{bucket}/{env}/" if bucket
          else f"nothing published to environment {env}", reporter,
          ws.environment_hint() if config else "fix the problems above and run again")
    target = _s3(ws, concurrency, reporter)
    plan = plan_release(asset_set, target, publish, records)
    bundles = sum(1 for s in plan.steps if s.item.kind == "bundle" and s.item.key == s.item.asset_key)
    counts = plan.counts()
    released = {s.item.asset_key: len(s.item.data) for s in plan.steps}
    reporter.status(f"{plural(len(plan.services), 'service')}, {plural(bundles, 'bundle')}, "
                    f"{plural(len(released), 'file')}, {sum(released.values()):,} bytes -> {target.description} "
                    f"({counts['upload']} objects to upload, {counts['copy']} to copy, {counts['skip']} unchanged; "
                    f"then {2 * len(plan.services)} release index files and index.html)")
    with compression_cache(ws.config) as cache:  # one for the sizes and the uploads
        if not dry_run:
            share_bodies(plan, cache)  # fetched from the shared cache while the sizes are measured
        sizes = _bundle_sizes(asset_set, publish, ws.config, cache)
        before = {n: current_release(st) for n, st in plan.services.items()}
        changes = diff_releases(before, _local_side(asset_set, publish, records, sizes, build),
                                {s.name: s.git for s in asset_set.services}, "current", build)
        reporter.changes(changes)
        over, violations = _budgets(ws, asset_set, sizes, before, build, ignore_budgets, reporter)
        _gate([], over, f"nothing published to {target.description}", reporter)
        result = PushResult(dry_run_report(plan, cache), {n: r["git"] for n, r in records.items()},
                            changes, violations, [d.to_json() for d in asset_set.duplicates])
        if dry_run:
            return result
        if not reporter.confirm(f"Are you sure you want to publish build {build} in {env} (y/N)?"):
            raise Cancelled("cancelled: nothing changed")
        report = _execute(plan, target, cache, reporter)
    checked = _verify(ws, target, publish, build, reporter) if verify_after else None
    return replace(result, report=report, verify=checked)


def _execute(plan: ReleasePlan, target: S3Target, cache: CompressionCache, reporter: Reporter) -> PublishReport:
    """Execute ``plan``, advancing a progress of objects with the bytes sent so far."""
    from bosco.publish.execute import execute

    sent = 0
    with reporter.progress("publishing", len(plan.steps) + 2 * len(plan.services)) as advance:

        def done(result: Result) -> None:
            nonlocal sent
            sent += result.sent
            advance(f"{sent / 1e6:.2f} MB sent")

        return execute(plan, target, cache, done)


def _verify(ws: Workspace, target: S3Target, publish: PublishOptions, build: str | None,
            reporter: Reporter) -> VerifyReport:
    """``publish.audit.verify`` of ``build`` (None: the current releases), through ``aws.cdn`` too."""
    from bosco.publish.audit import verify as audit

    cdn = ws.config.aws.cdn
    reporter.status(f"verifying {'build ' + build if build else 'the current releases'} in {target.description}"
                    + (f" and through {cdn}" if cdn else ""))
    return audit(target, target.fetch, publish, build, _published_base(ws, "") if cdn else None, publish.concurrency)


def verify(ws: Workspace, *, build: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
           reporter: Reporter = SILENT) -> VerifyReport:
    """Re-read ``build`` of every service that has it (None: each service's current release) and
    compare every object with its release index, in S3 and through ``aws.cdn`` when it is set
    (``bosco.publish.audit.verify``). Returns the report; ``require_verified`` fails on a difference.
    Raises ``PublishError`` when ``aws.bucket`` is not set or there is no such release."""
    target = _s3(ws, concurrency, reporter)
    return _verify(ws, target, _publish_options(ws, build or DEFAULT_BUILD, concurrency, None, False,
                                                 f"/{ws.environment}"), build, reporter)


def require_verified(report: VerifyReport | None) -> None:
    """Raise ``PublishError`` counting the differences of ``report`` when there is any (None: no
    verification was asked for)."""
    if report is not None and not report.ok:
        count = plural(len(report.differences), "difference")
        raise PublishError(f"{count} between {', '.join(report.releases)} and their release indexes",
                           "publish the build again (--force replaces changed objects)")


@dataclass(frozen=True)
class DeleteResult:
    """What ``delete`` deleted (with ``dry_run``: would delete): the ``target`` description, the
    ``releases`` (``service/build``) and the ``deleted`` keys."""

    target: str
    dry_run: bool
    releases: list[str]
    deleted: list[str]

    def to_json(self) -> dict[str, Any]:
        """The ``bosco s3delete --json`` object."""
        return {"ok": True, "target": self.target, "dry_run": self.dry_run, "deleted": self.deleted}


def delete(ws: Workspace, release: str, *, dry_run: bool = False, force: bool = False,
           reporter: Reporter = SILENT) -> DeleteResult:
    """Delete exactly the objects of ``release``: ``SERVICE/BUILD`` (the service need not be in the
    workspace any more), or ``BUILD`` of every selected service. ``releases.json`` and ``index.html``
    are updated first, so nothing published names a deleted object (docs/layout.md). Raises
    ``PublishError`` (nothing deleted) when no object matches or a release is the current one in
    ``releases.json`` (unless ``force``), ``Cancelled`` when ``reporter.confirm`` declines."""
    from bosco.publish.delete import delete_releases, plan_delete, refuse_current

    service, _, build = release.rpartition("/")
    names = [service] if service else [s.name for s in ws.selected()]
    target = _s3(ws, DEFAULT_CONCURRENCY, reporter)
    plans = [p for p in (plan_delete(target, n, build) for n in names) if p.keys]
    if not plans:
        raise PublishError(f"no objects found for {release} in {target.description}",
                           "check the build name and -e; keys are <env>/<service>/<build>/")
    refuse_current(plans, force)  # before asking
    total = sum(len(p.keys) for p in plans)
    reporter.status(f"{total} objects in {plural(len(plans), 'release')} of {target.description}: "
                    + ", ".join(f"{p.service}/{p.build} ({len(p.keys)})" for p in plans))
    releases = [f"{p.service}/{p.build}" for p in plans]
    if dry_run:
        return DeleteResult(target.description, True, releases, [k for p in plans for k in p.keys])
    if not reporter.confirm(f"Are you sure you want to delete {total} objects of {release} in {ws.environment} (y/N)?"):
        raise Cancelled("cancelled: nothing changed")
    options = _publish_options(ws, build, DEFAULT_CONCURRENCY, None, force, f"/{ws.environment}")
    with compression_cache(ws.config) as cache:
        deleted = delete_releases(target, plans, options, cache, force)
    return DeleteResult(target.description, False, releases, deleted)


@dataclass(frozen=True)
class DiffResult:
    """``diff`` of two releases: ``bosco.diff.diff_releases``'s ``services`` (name -> changes) and
    the releases compared (``from``, ``to``)."""

    diff: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``bosco diff --json`` object."""
        return {"ok": True, **self.diff}


def diff(ws: Workspace, *, from_build: str | None = None, to_build: str = "local",
         reporter: Reporter = SILENT) -> DiffResult:
    """What changed between two releases of the selected services: ``from_build`` (None: each
    service's current release) and ``to_build``; ``local`` builds the workspace as ``push`` would.
    Raises ``BoscoError`` when both name the same release, ``ProblemsError`` when the local build
    has errors, ``PublishError`` when ``aws.bucket`` is not set."""
    from bosco.diff import diff_releases, read_release

    if from_build == to_build:
        raise BoscoError("--from and --to name the same release", "compare two different releases")
    services = ws.selected()
    target = _s3(ws, DEFAULT_CONCURRENCY, reporter)
    # the published sides first: a missing bucket or release fails before the local build runs
    sides = {build: {s.name: read_release(target, s.name, build) for s in services}
             for build in (from_build, to_build) if build != "local"}
    repos: dict[str, Any] = {}
    if "local" in (from_build, to_build):
        from bosco.provenance import collect
        from bosco.publish.plan import released_outputs

        publish = _publish_options(ws, DEFAULT_BUILD, DEFAULT_CONCURRENCY, None, False, f"/{ws.environment}")
        asset_set = _build_published(ws, DEFAULT_BUILD, None, True, f"/{ws.environment}", reporter)
        _gate(asset_set.errors, [], "in the local build; nothing to compare", reporter,
              "fix the errors above and run again")
        found = collect(asset_set.services, released_outputs(asset_set, publish))
        repos = {s.name: s.git for s in asset_set.services}
        sides["local"] = _local_side(asset_set, publish, {n: p.record() for n, p in found.items()},
                                     _bundle_sizes(asset_set, publish, ws.config), "local")
    if not repos:  # two published releases: the local repositories still name the commits between them
        from bosco.gitinfo import repo_info

        repos = {s.name: repo_info(s.path) for s in services}
    return DiffResult(diff_releases(sides[from_build], sides[to_build], repos, from_build or "current", to_build))


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ConfigReport:
    """``configuration``: the workspace ``root``, ``environment``, the files read (``sources``), the
    resolved ``values`` with secrets masked, and one ``(dotted key, value, origin)`` row per value
    (``rows``; the origin is the file, ``BOSCO_*`` variable or option that set it, or ``default``)."""

    root: Path
    environment: str
    sources: list[str]
    values: dict[str, Any]
    rows: list[tuple[str, Any, str]]

    def to_json(self) -> dict[str, Any]:
        """The ``bosco config --json`` object: the values."""
        return self.values


def configuration(ws: Workspace) -> ConfigReport:
    """The resolved configuration of ``ws`` (``bosco config``), as ``aws configure list`` shows it."""
    values = ws.config.masked()
    rows = []
    for dotted, value in _flatten(values):
        key = dotted.split("[", 1)[0]  # a list is set as a whole: its entries come from where the list does
        rows.append((dotted, value, ws.config.origins.get(dotted) or ws.config.origins.get(key) or "default"))
    return ConfigReport(ws.root, ws.environment, [str(s) for s in ws.config.sources], values, rows)


def _flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` rows: objects open into ``a.b``, lists holding objects or lists into
    ``a[0].b``; other lists and scalars are one row."""
    if isinstance(node, dict) and node:
        return [item for k, v in node.items() for item in _flatten(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        return [item for i, v in enumerate(node) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, node)]


# ----------------------------------------------------------------------------------------------- caches


@dataclass(frozen=True)
class CacheStats:
    """The cache folders: ``folder`` (local root), ``maxsize`` (MB), ``local`` rows and, when asked
    for, the shared store's ``remote_url`` and ``remote`` rows (``cache.FolderStats``: name,
    entries, bytes, current)."""

    folder: Path
    maxsize: int
    local: list[Any]
    remote_url: str | None = None
    remote: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``bosco cache stats --json`` object."""
        shared = {"remote": {"url": self.remote_url, "folders": [vars(r) for r in self.remote]}} \
            if self.remote is not None else {}
        return {"local": {"folder": str(self.folder), "folders": [vars(r) for r in self.local]}, **shared}


@dataclass(frozen=True)
class PruneResult:
    """Bytes ``cache_prune`` deleted: ``local``, and ``remote`` of the store at ``remote_url``."""

    local: int
    remote_url: str | None = None
    remote: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``bosco cache prune --json`` object."""
        return {"local": self.local, **({"remote": {"url": self.remote_url, "deleted": self.remote}}
                                        if self.remote is not None else {})}


def _shared_cache() -> Any:
    from bosco.cache import remote

    store = remote()
    if store is None:
        raise BoscoError("cache.remote is not set, so there is no shared cache",
                         'set e.g. "cache": {"remote": "s3://my-bucket/bosco-cache"} in .bosco/bosco.json')
    return store


def _call_shared(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except BoscoError:
        raise
    except Exception as exc:  # botocore's errors: one line naming the store
        raise PublishError(f"cannot read the shared cache: {redact(str(exc))}",
                           "check cache.remote, aws.endpoint and the AWS credentials") from exc


def cache_stats(ws: Workspace, *, remote: bool = False) -> CacheStats:
    """Entries and size of each cache folder (one per bosco code version), and of the shared store
    (``cache.remote``) with ``remote``. Raises ``BoscoError`` when ``remote`` and no store is set."""
    from bosco.cache import cache_root, local_stats

    local = local_stats()
    if not remote:
        return CacheStats(cache_root(), ws.config.cache.maxsize, local)
    store = _shared_cache()
    return CacheStats(cache_root(), ws.config.cache.maxsize, local, store.url, _call_shared(store.stats))


def cache_prune(ws: Workspace, *, remote: bool = False) -> PruneResult:
    """Delete the entries of other bosco code versions and trim the local folder to ``cache.maxsize``
    MB; with ``remote``, also the shared store's entries of other versions."""
    from bosco.cache import prune_local

    freed = prune_local(ws.config.cache.maxsize)
    if not remote:
        return PruneResult(freed)
    store = _shared_cache()
    return PruneResult(freed, store.url, _call_shared(store.prune))


# ----------------------------------------------------------------------------------------------- cdn


def watched_services(services: list[Service], pattern: str | None, cwd: Path) -> list[Service]:
    """The services ``bosco cdn`` watches: those whose name matches regex ``pattern`` (``-w``), else
    the service whose folder holds ``cwd`` (none outside every service). Raises ``BoscoError`` for
    an invalid regex or one that matches no service."""
    if pattern is None:
        cwd = cwd.resolve()
        held = {cwd, *cwd.parents}  # the folders holding cwd
        return [s for s in services if s.path.resolve() in held]
    regex = compile_regex(pattern, "-w", 'use e.g. -w "app-home|app-checkout"')
    matched = [s for s in services if regex.search(s.name)]
    if not matched:
        raise BoscoError(f"-w {pattern!r} matches none of the {len(services)} services",
                         f"service names: {', '.join(s.name for s in services) or '(none)'}")
    return matched


def rebuild_fields(rebuild: Rebuild) -> dict[str, Any]:
    """The fields of a ``rebuild`` event (``Reporter.event``)."""
    return {"service": rebuild.service, "ok": rebuild.ok, "changed": list(rebuild.changed),
            "removed": list(rebuild.removed), "reasons": list(rebuild.reasons), "errors": list(rebuild.errors),
            "ms": round(rebuild.ms, 1), "recovered": rebuild.recovered}


@dataclass
class Cdn:
    """``bosco cdn``: the selected services served on a local pseudo-CDN (build ``local``).

    ``minify`` serves minified bundles with source maps (else each source file at its own key);
    ``host``/``port`` default to ``cdn.host``/``cdn.port`` (port 0: any free port); ``rebuild``
    runs every ``build.command``; ``watch`` (a regex; None: the service holding ``cwd``) names the
    services rebuilt on change; ``livereload`` makes their fragments reload the page; ``remote``
    (an environment) also serves its current published release of every service not in the
    workspace, through a caching proxy (``bosco.release_proxy``). Everything
    that happens is a ``reporter.event``. ``run()`` blocks until Ctrl-C/SIGTERM; ``start()`` serves
    from a background thread and ``stop()`` ends it. Raises ``BoscoError`` when ``watch`` matches
    no service or the port cannot be bound."""

    ws: Workspace
    minify: bool = False
    host: str | None = None
    port: int | None = None
    rebuild: bool = False
    watch: str | None = None
    livereload: bool = False
    remote: str | None = None
    cwd: Path | None = None
    reporter: Reporter = SILENT
    server: CdnServer = field(init=False)
    session: ServedAssetSet = field(init=False)
    base_url: str = field(init=False)
    asset_set: AssetSet | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from bosco.pipeline import BuildOptions
        from bosco.server import AssetHolder, CdnServer
        from bosco.watch import ServedAssetSet

        ws, reporter = self.ws, self.reporter
        services = ws.selected() if self.remote is None else ws.services
        self.watched = watched_services(services, self.watch, Path.cwd() if self.cwd is None else self.cwd)
        if self.livereload and not self.watched:
            reporter.warning("--livereload does nothing without watched services (-w REGEX)")
        minifier = _css_minifier(ws, reporter)
        holder = AssetHolder()
        host = self.host or ws.config.cdn.host
        self.server = CdnServer(holder, host, ws.config.cdn.port if self.port is None else self.port)
        self.base_url = holder.base_url = (ws.config.cdn.url or f"http://localhost:{self.server.port}").rstrip("/")
        if self.remote:
            from bosco.release_proxy import for_cdn

            holder.remote = for_cdn(ws.root, self.remote, [s.name for s in services], self.base_url)
            self._remote_event()
        options = BuildOptions(build="local", minify=self.minify, bundle=self.minify, base_url=self.base_url,
                               css_minifier=minifier, rebuild=self.rebuild, title=f"bosco cdn: {ws.root.name}",
                               repos_link=True, legal_comments=ws.config.minify.legalcomments,
                               build_timeout_ms=ws.config.build.timeout)
        self._cache: CompressionCache | None = None  # made when sizes are first measured (after the first answers)
        self._cache_lock = threading.Lock()
        self.session = ServedAssetSet(
            services, [s.path for s in self.watched], options, holder, ws.warnings, livereload=self.livereload,
            on_rebuild=lambda r: reporter.event("rebuild", **rebuild_fields(r)),
            on_problem=lambda service, message: reporter.event("problem", service=service or None, message=message),
            on_output=reporter.output, measure=self._measure,
            remote=holder.remote.page if holder.remote else None)
        if holder.remote:  # online <-> offline: one event, and the index page says it
            holder.remote.on_change = lambda: (self.session.refresh_page(), self._remote_event())
        self.built = threading.Event()

    @cached_property
    def _rules(self) -> tuple[Any, ...]:
        """The size budgets of the served services, read when sizes are first measured (after the
        first answers; ``budgets.rules_for``)."""
        return _budget_rules(self.ws, list(self.session.services.values()))[0]

    def _measure(self, build: ServiceResult) -> Any:
        """``budgets.measure_service`` of one served build (the index page's sizes)."""
        from bosco import budgets

        return budgets.measure_service(build, self._rules, self._compression())

    def _compression(self) -> CompressionCache:
        """The compression cache that measures bundle sizes for the index page, made on first use."""
        with self._cache_lock:
            if self._cache is None:
                self._cache = compression_cache(self.ws.config)
            return self._cache

    def _remote_event(self) -> None:
        remote = self.server.holder.remote
        self.reporter.event("remote", environment=self.remote, online=remote.offline is None,
                            status=remote.status_line())

    def _build(self) -> None:
        # an error the build itself does not turn into an error entry (the process out of file
        # descriptors, say) is one problem event and the server keeps answering with what it has
        try:
            self._build_and_announce()
        except Exception as exc:  # noqa: BLE001 - a background thread: report, never die with a traceback
            self.reporter.event("problem", service=None, message=f"building the workspace failed: {exc}",
                                hint="the server keeps answering with what was built; fix the cause and restart "
                                "bosco cdn", traceback=traceback.format_exc())
        finally:
            self.built.set()

    def _build_and_announce(self) -> None:
        # watching starts before any file is read; serve after a quick pass (each service as soon
        # as it is built), then syntax-check every file, verify and minify the bundles (seconds on
        # a cold cache for megabytes of JS) and serve each service's complete build
        reporter, services = self.reporter, self.session.services
        with reporter.progress("building", len(services)) as advance:
            asset_set = self.session.serve(lambda s: advance(s.name), quick=True)
        self.asset_set = asset_set
        _report_problems(asset_set, reporter)
        reporter.event("serving", url=f"{self.base_url}/", services=[s.name for s in services.values()],
                       assets=len(self.server.holder.asset_keys()), minified=self.minify,
                       warnings=[redact(w) for w in _warnings(asset_set)], errors=[redact(e) for e in asset_set.errors])
        if self.watched:
            reporter.event("watching", services=[s.name for s in self.watched], livereload=self.livereload)
        self.session.measure_sizes()  # after the first answers: the index page says "sizes pending" until then

    def _ready(self) -> None:
        threading.Thread(target=self._build, daemon=True).start()

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM (``stopped`` event), building once listening."""
        try:  # a Ctrl-C as the first build starts (before uvicorn takes the signals) stops it too
            self.reporter.event("listening", url=f"http://{self.server.host}:{self.server.port}/")
            self._ready()  # the first build starts at once, while the server starts listening
            self.server.run()
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C/SIGTERM after a clean shutdown: stopping is success
            pass
        finally:
            from bosco import stopping

            self._close()
            stopping.stop_children()  # the first build may still be running its build commands

    def start(self) -> Cdn:
        """Serve from a background thread; returns once listening (the first build runs meanwhile:
        wait for ``built``)."""
        self.reporter.event("listening", url=f"http://{self.server.host}:{self.server.port}/")
        self.server.start()
        self._ready()
        return self

    def stop(self) -> None:
        """Stop serving and watching (after ``start``)."""
        self.server.stop()
        self._close()

    def _close(self) -> None:
        self.session.stop()
        with self._cache_lock:
            if self._cache is not None:
                self._cache.close()
        self.reporter.event("stopped")


def serve(ws: Workspace, **options: Any) -> None:
    """``Cdn(ws, **options).run()``: serve until Ctrl-C or SIGTERM."""
    Cdn(ws, **options).run()
