"""The asset set ``bosco cdn`` serves, and ``bosco cdn -w``: file watching -> incremental rebuild of
one service -> live-reload events.

A ``ServedAssetSet`` builds every service into the served asset set (watching or not) and owns the
per-service results it is assembled from. watchdog observers watch
each watched service's manifest and the folders its globs reach (never ``node_modules`` or
dot-folders such as ``.git`` and build caches, unless a glob names them); events are coalesced per
service over a short quiet period, the service alone is rebuilt (manifest re-read, globs
re-expanded) and the asset set re-assembled and swapped in one step. A failed rebuild
keeps serving the service's last good outputs with the errors on the index page. Services with a
``build.watch.command`` run it (``bosco.commands.WatchCommand``) and rebuild on its ready text instead
of on file events. Each rebuild is published as a ``rebuild`` server-sent event for live reload.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from wcmatch import glob as wcglob

from bosco import stamps
from bosco.assetset import AssetSet, BundleReport, Output, ServiceResult
from bosco.commands import WatchCommand
from bosco.duplicates import Found, places
from bosco.fragments import RemotePage, url_for
from bosco.gitinfo import RepoInfo, repo_info
from bosco.manifest import GLOB_FLAGS, MANIFEST_NAME
from bosco.pipeline import BuildOptions, Prepared, assemble, build_in_order, build_service, prepare
from bosco.redact import public_paths
from bosco.server import LIVERELOAD_PATH, AssetHolder
from bosco.workspace import Service, load_service

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

RECHECK = "newly watched folders"  # the reason of the rebuild that looks again after new folders are watched
SETTLE = 0.003  # seconds from the first event of a burst to its rebuild (the rest of one save arrives)
FIRST_BUILDERS = 4  # services whose build.command may run at once in the first build
VANISH_GRACE = 1.0  # seconds a file or folder that disappeared may take to come back (editors, branch switches)
POLL_INTERVAL = 0.25  # seconds between snapshots of a folder watched by polling
MAX_LINK_DEPTH = 40  # folder levels followed below a root (and through links) at most
EXCLUDED_DIRS = frozenset({"node_modules"})  # and every folder whose name starts with "."
WRITE_WAIT = 0.1  # seconds a file being written in place may take until it is closed
EVENT_TYPES = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
               DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE, errno.ENFILE)
INOTIFY_HINT = ("inotify limit reached; watching by polling instead (slower). Raise it with "
                "`sudo sysctl fs.inotify.max_user_watches=524288` (and fs.inotify.max_user_instances)")
_MATCH_FLAGS = GLOB_FLAGS & ~wcglob.NODIR


Swapped = tuple[ServiceResult | None, ServiceResult, tuple[str, ...]]  # served before, served now, errors


@dataclass(frozen=True)
class _FirstPass:
    """A rebuild whose quick pass is served: what its second pass needs (``ServedAssetSet.rebuild``)."""

    repo: Path
    service: Service
    options: BuildOptions
    prepared: Prepared
    generation: int
    fresh: ServiceResult  # the quick build
    previous: ServiceResult | None  # served before the rebuild
    first: ServiceResult  # served by the quick pass
    errors: tuple[str, ...]  # the quick pass's errors
    start: float
    reasons: tuple[str, ...]
    record: stamps.Record  # what the quick pass read (``stamps.recording()``)


@dataclass(frozen=True)
class WatchRoot:
    """One folder to watch, not its subfolders (each is a root of its own). ``link`` is True when
    ``path`` is reached through a symbolic link inside the repo: the link's target is watched and
    events are reported under ``path``, the name the globs see."""

    path: Path
    link: bool = False


@dataclass(frozen=True)
class Rebuild:
    """The outcome of rebuilding one service.

    ``changed`` are asset keys added or with new bytes, ``removed`` keys no longer served (both
    sorted, compared with what was served before); ``errors`` the new build's problems (empty when
    it succeeded; on failure the last good outputs stay served); ``ms`` the wall time in
    milliseconds; ``reasons`` the repo-relative paths (or ``"watch build ready"``) that caused it;
    ``recovered`` True when it succeeded after a failed build of the service."""

    service: str
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    errors: tuple[str, ...]
    ms: float
    reasons: tuple[str, ...] = ()
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def css_only(self) -> bool:
        """True when every changed or removed key is a stylesheet or its map (swappable in place)."""
        keys = self.changed + self.removed
        return bool(keys) and all(k.endswith((".css", ".css.map")) for k in keys)

    def event(self, repo: Path | None = None) -> dict[str, Any]:
        """The JSON payload of the ``rebuild`` server-sent event (any origin may read it): paths in
        ``errors`` are relative to ``repo`` and its workspace (``redact.public_paths``)."""
        roots = [repo.parent] if repo else []
        return {"service": self.service, "ok": self.ok, "changed": list(self.changed),
                "removed": list(self.removed), "css_only": self.css_only,
                "errors": [public_paths(e, repo, roots) for e in self.errors], "ms": round(self.ms, 1)}


def _static_prefix(pattern: str) -> tuple[str, bool]:
    """``(folder part of pattern without glob magic, whether the rest reaches into subfolders)``."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if wcglob.is_magic(part, flags=GLOB_FLAGS):
            break
        fixed.append(part)
    return "/".join(fixed), len(fixed) < len(parts) - 1


def _globs(service: Service) -> list[tuple[str, str]]:
    """Every ``(basePath, glob)`` of the service's manifest."""
    manifest = service.manifest
    if manifest is None:
        return []
    pairs = [(s.base_path, g) for s in manifest.sections for b in s.bundles for g in b.globs]
    pairs += [(g.base_path, g.glob) for g in manifest.libraries + manifest.site_assets]
    return pairs


def _excluded(folder: Path) -> bool:
    return folder.name in EXCLUDED_DIRS or folder.name.startswith(".")


def _walk(folder: Path, recursive: bool, repo_real: Path, link: bool = False,
          chain: tuple[Path, ...] = ()) -> list[WatchRoot]:
    """``folder`` and, when ``recursive``, every folder below it that is not excluded. A symbolic
    link to a folder inside the repo is followed (its target watched under the link's name) unless
    the target is ``folder`` or one of its ancestors on the way (a loop); links that leave the repo
    are not followed (their files are refused by the glob expansion)."""
    roots = [WatchRoot(folder, link)]
    try:
        real = folder.resolve()
    except OSError:  # a link loop or a folder gone meanwhile
        return roots
    if not recursive or len(chain) >= MAX_LINK_DEPTH:
        return roots
    try:
        children = sorted(c for c in folder.iterdir() if not _excluded(c) and c.is_dir())
    except OSError:
        return roots
    for child in children:
        child_link = child.is_symlink()
        if child_link:
            try:
                target = child.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if (target != repo_real and repo_real not in target.parents) or target in (*chain, real):
                continue
        roots += _walk(child, True, repo_real, link or child_link, (*chain, real))
    return roots


def watch_roots(service: Service) -> tuple[WatchRoot, ...]:
    """The folders to watch for ``service``: the repo itself (for the manifest), every basePath
    folder and the folders below it and, for globs relative to the repo itself, the deepest folder
    without glob magic (and the folders below it when the glob reaches into them). A folder that
    does not exist (yet, or any more: a branch switch, a re-clone) is replaced by its nearest
    existing ancestor, above the repo if need be, so its creation is seen."""
    repo = service.path
    wanted: dict[Path, bool] = {repo: False}
    for base, pattern in _globs(service):
        prefix, recursive = _static_prefix(pattern)
        if base:
            folder, recursive = repo / base, True
        else:
            folder = repo / prefix if prefix else repo
        wanted[folder] = wanted.get(folder, False) or recursive
    existing: dict[Path, bool] = {}
    for folder, recursive in wanted.items():
        while not folder.is_dir() and folder.parent != folder:
            folder, recursive = folder.parent, False
        existing[folder] = existing.get(folder, False) or recursive
    try:
        repo_real = repo.resolve()
    except OSError:
        repo_real = repo
    return tuple(sorted({r for folder, rec in existing.items() for r in _walk(folder, rec, repo_real)},
                        key=lambda r: (str(r.path), r.link)))


def is_relevant(service: Service, path: Path) -> bool:
    """True when a change at ``path`` can change ``service``'s outputs: its manifest, or a file
    matching one of its globs (dotfiles never match, so editors' hidden temp files are ignored)."""
    if path == service.path / MANIFEST_NAME:
        return True
    for base, pattern in _globs(service):
        folder = service.path / base if base else service.path
        try:
            rel = path.relative_to(folder).as_posix()
        except ValueError:
            continue
        if wcglob.globmatch(rel, pattern, flags=_MATCH_FLAGS):
            return True
    return False


def build_inputs(repo: Path, record: stamps.Record) -> frozenset[Path]:
    """Every file a build of the service in ``repo`` read or looked for, from what its
    ``stamps.recording()`` saw (``bosco.files`` reads every file inputs name): each file checked or
    read (a missing one too: an import line is often saved before the file it names), the target
    of each path resolved (a map named by a ``sourceMappingURL`` comment, anywhere in the
    repository) and of each file that is a symbolic link, as ``repo / <repo path>``. Paths outside
    the repository (never read) and the folders globs listed (``watch_roots`` covers them) are left
    out."""
    try:
        real = repo.resolve()
    except OSError:
        real = repo
    found: set[Path] = set()

    def add(name: str) -> None:
        path = Path(os.path.normpath(name))
        for base in (repo, real):
            with contextlib.suppress(ValueError):
                found.add(repo / path.relative_to(base))
                return

    for (what, name), seen in record.items():
        if what == "folder":
            continue
        add(name)
        if what == "resolve" and seen:
            add(seen)
        elif what == "read" and os.path.islink(name):
            add(os.path.realpath(name))
    found.discard(repo)
    return frozenset(found)


def _same_inputs(first: stamps.Record, then: stamps.Record) -> bool:
    """True when every file and path ``first`` (a ``stamps.recording()``) saw was seen the same way
    by ``then``, where both saw it, and still is now (``stamps.unchanged``): the files did not
    change from the first piece of work to the end of the second. Folder listings are left out (one
    changed within ``stamps.RACY_NS`` is recorded as never current; a file added has events of its
    own, and one deleted was checked or read)."""
    files = {found: seen for found, seen in first.items() if found[0] != "folder"}
    return all(then.get(found, seen) == seen for found, seen in files.items()) and stamps.unchanged(files)


def _diff(old: ServiceResult | None, new: ServiceResult) -> tuple[tuple[str, ...], tuple[str, ...]]:
    before = {o.key: o.data for o in old.outputs} if old else {}
    after = {o.key: o.data for o in new.outputs}
    changed = sorted(k for k, data in after.items() if before.get(k) != data)
    removed = sorted(k for k in before if k not in after)
    return tuple(changed), tuple(removed)


def pending_keys(build: ServiceResult, options: BuildOptions) -> frozenset[str]:
    """The keys of the concatenations (and their maps) an unminified ``build`` of a first pass
    leaves out (``BuildOptions.concatenations``) that its complete pass adds: one per JS/CSS bundle
    with files, unless a file of the service is served at that key."""
    if options.bundle or build.complete:
        return frozenset()
    present = {o.key for o in build.outputs}
    keys = set()
    for report in build.bundles:
        if report.type in ("js", "css") and report.sources:
            key = f"{build.name}/{options.build}/{report.type}/{report.tag}.{report.type}"
            keys |= {key, key + ".map"} - present
    return frozenset(keys)


def _with_pending(rebuild: Rebuild, before: ServiceResult | None, after: ServiceResult, build: str,
                  pending: frozenset[str]) -> Rebuild:
    """``rebuild`` (``before`` -> ``after``, a first pass whose ``pending`` concatenations follow)
    with each pending concatenation (and map) reported changed when its bundle gained, lost or
    changed a file (or a style sheet its files import changed), never removed: the keys a page
    loads are those to fetch again, and they answer once built (``AssetHolder.wait_built``)."""
    touched = (set(rebuild.changed) | set(rebuild.removed)) - pending
    listed = {k for b in (before, after) if b for r in b.bundles for k in r.files}
    loose = [k for k in touched if k not in listed]  # style sheets pulled in by a local @import
    old = {(r.type, r.tag): set(r.files) for r in before.bundles} if before else {}
    changed = set(rebuild.changed)
    for report in after.bundles:
        key = f"{after.name}/{build}/{report.type}/{report.tag}.{report.type}"
        files = set(report.files)
        if key in pending and (files != old.get((report.type, report.tag)) or files & touched
                               or any(k.endswith("." + report.type) for k in loose)):
            changed |= {key, key + ".map"} & pending
    removed = tuple(k for k in rebuild.removed if k not in pending)
    return replace(rebuild, changed=tuple(sorted(changed)), removed=removed)


class _Handler(FileSystemEventHandler):
    """Hands every watchdog event to the session (one handler for every watch)."""

    def __init__(self, session: ServedAssetSet) -> None:
        self.session = session

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [Path(str(event.src_path))]
        if event.dest_path:
            paths.append(Path(str(event.dest_path)))
        self.session.dispatch(paths, event.is_directory, event.event_type)


def _quick_served(fresh: ServiceResult, served: ServiceResult | None) -> ServiceResult:
    """The quick pass ``fresh`` as served in place of ``served``: with its git facts and, until its
    complete pass replaces them, the warnings of ``served`` that ``fresh`` cannot see (an unminified
    quick pass has no concatenations, so no ``@import`` of a missing file), so none drops out briefly."""
    if served is None:
        return fresh
    if fresh.complete:
        return replace(fresh, git=served.git)
    seen = set(fresh.all_warnings)
    return replace(fresh, git=served.git,
                   warnings=fresh.warnings + tuple(w for w in served.all_warnings if w not in seen))


class ServedAssetSet:
    """The asset set ``bosco cdn`` serves: builds a workspace's services into ``holder`` and keeps the
    watched ones up to date.

    ``services`` are all served services in order; ``watched`` the folders of those to watch.
    ``livereload`` makes the fragments of watched services load ``/_bosco/livereload.js``.
    Callbacks (called from background threads): ``on_rebuild(Rebuild)`` after each rebuild,
    ``on_problem(service, message)`` for watch-build problems, watching problems and the polling
    fallback (service ``""``), ``on_output(service, line)`` for watch-build output.
    ``measure(build)`` (``budgets.measure_service``), when given, measures the bundles of a served
    build for the index page (``measure_sizes``, in the background after each rebuild).
    ``remote()``, when given, is the view of the published releases ``bosco cdn --remote`` serves
    beside the workspace (``release_proxy.RemoteReleases.page``), shown on the index page.
    ``observer_class`` is watchdog's platform observer unless given; a folder it cannot watch (the
    inotify limits ``ENOSPC``/``EMFILE``, or any other error) is watched by polling instead.

    Rebuilds start at the first event (after ``SETTLE``); events during a rebuild are coalesced
    into one more rebuild right after it. A watched file or folder that disappears holds its
    service's rebuild until it is back or ``VANISH_GRACE`` has passed (editors that rename the
    original away before writing the new file, branch switches), so it never drops out briefly.
    """

    def __init__(
        self,
        services: Sequence[Service],
        watched: Iterable[Path],
        options: BuildOptions,
        holder: AssetHolder,
        warnings: Sequence[str] = (),
        *,
        livereload: bool = False,
        on_rebuild: Callable[[Rebuild], None] | None = None,
        on_problem: Callable[[str, str], None] | None = None,
        on_output: Callable[[str, str], None] | None = None,
        observer_class: Callable[[], BaseObserver] | None = None,
        watch_build_backoff: float = 1.0,
        measure: Callable[[ServiceResult], dict[str, Any]] | None = None,
        remote: Callable[[], RemotePage] | None = None,
    ) -> None:
        self.services = {s.path: s for s in services}
        self.order = [s.path for s in services]
        self.watched = tuple(Path(p) for p in watched)
        self.options, self.holder, self.warnings = options, holder, tuple(warnings)
        self.watched_options = (
            replace(options, livereload=url_for(options.base_url, LIVERELOAD_PATH[1:])) if livereload else options
        )
        self.on_rebuild, self.on_problem, self.on_output = on_rebuild, on_problem, on_output
        self.observer_class, self.watch_build_backoff = observer_class, watch_build_backoff
        self.measure, self.remote = measure, remote
        self._sizes: dict[Path, tuple[int, dict[str, Any]]] = {}  # per service: generation measured, sizes
        self._served: dict[Path, ServiceResult] = {}
        self._inputs: dict[Path, frozenset[Path]] = {}  # per service: the files its served build read
        self._generation: dict[Path, int] = {}  # per service: the generation of the served build's inputs
        self._started: dict[Path, int] = {}  # per service: the generation of the latest build begun
        self._building: dict[Path, frozenset[str]] = {}  # per service: keys its complete pass adds (``pending_keys``)
        self._generations = itertools.count(1)
        self._initial = threading.Event()  # set when build_all has served every service once
        self._last_good: dict[Path, ServiceResult] = {}
        self._prepared: dict[Path, Prepared] = {}  # per service: its build command's outcome in build_all
        # per service folder: the outputs and bundles of a served build and where they publish files
        self._places: dict[str, tuple[tuple[Output, ...], tuple[BundleReport, ...], list[Found]]] = {}
        self._problems: dict[Path, str] = {}
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._pending: dict[Path, tuple[float, set[str]]] = {}  # per service: first event, reasons
        self._vanished: dict[Path, dict[Path, float]] = {}  # per service: paths gone (and when) that may return
        self._writing: dict[Path, dict[Path, float]] = {}  # per service: files written in place, not closed yet
        self._stopped = False
        self._observer: BaseObserver | None = None
        self._poller: BaseObserver | None = None  # for the folders inotify cannot watch
        self._handler = _Handler(self)
        # every watched folder: (observer, watch, services that want it); shared by services
        self._watches: dict[WatchRoot, tuple[BaseObserver, ObservedWatch, set[Path]]] = {}
        self._gone: set[Path] = set()  # folders deleted or moved away since the last sync
        self._hinted = False
        self._watch_commands: list[WatchCommand] = []
        self._worker = threading.Thread(target=self._work, name="bosco-rebuild", daemon=True)
        self._completing: dict[Path, _FirstPass] = {}  # per service: the latest rebuild to complete
        self._unreported: dict[Path, _FirstPass] = {}  # per service: the first rebuild not reported yet
        self._completer = threading.Thread(target=self._complete, name="bosco-complete", daemon=True)

    # building -----------------------------------------------------------------------------

    def _options(self, path: Path) -> BuildOptions:
        return self.watched_options if path in self.watched else self.options

    def _begin(self, path: Path) -> int:
        """A new generation number for a build of ``path`` about to read its inputs: numbers grow
        with time, so a build that read its inputs later has the higher number. It is the service's
        latest started generation from now on (``_superseded``)."""
        with self._cond:
            generation = self._started[path] = next(self._generations)
            return generation

    def _superseded(self, path: Path, generation: int) -> bool:
        """True when the complete pass of the build of ``generation`` must not be served: another
        build of ``path`` is served, or a newer one has begun (its first pass, which serves and
        announces what it read, and then its own complete pass follow). A complete pass reads the
        files again: finished while a newer save's first pass builds, it would serve and announce
        files read in the middle of that save (a file just deleted) for a moment. Caller holds
        ``self._lock``."""
        with self._cond:
            started = self._started.get(path, generation)
        return self._generation.get(path) != generation or started > generation

    def _install(self, path: Path, build: ServiceResult, generation: int, record: stamps.Record | None) -> bool:
        """Serve ``build`` of ``path`` unless a build from newer inputs is already served (caller
        holds ``self._lock``); False when it was dropped. ``record`` is what making it read
        (``stamps.recording()``; None: the served build's files): those files rebuild the service
        when saved (``build_inputs``; a quick first pass reads less than its complete pass: what the
        last one read stays)."""
        if generation < self._generation.get(path, 0):
            return False
        self._generation[path] = generation
        self._served[path] = build
        self._building[path] = pending_keys(build, self._options(path))
        if path in self.watched and record is not None:
            inputs = build_inputs(path, record)
            self._inputs[path] = inputs if build.complete else inputs | self._inputs.get(path, frozenset())
        if not build.all_errors:
            self._last_good[path] = build
        return True

    def build_all(self, progress: Callable[[Service], None] | None = None, quick: bool = False) -> AssetSet:
        """Build every service (``progress`` after each), serve the result and return it. ``quick``
        serves a first pass without syntax checks of single files, unverified minification or the
        concatenations of unminified bundles (``BuildOptions.quick``; ``check_all`` completes it).
        After ``start`` the manifests of watched services are re-read first (the observers already
        see every later change).

        Build commands run up to ``FIRST_BUILDERS`` at a time; the builds themselves run one at a
        time, in order, except that a service a request waits for (``AssetHolder.wanted``) goes
        first. Each service is served to the requests for its keys as soon as it is built
        (``AssetHolder.offer``): its first answer waits neither for the services after it nor for
        another service's ``build.command``; the git facts (``gitinfo.repo_info``) are read beside
        the builds and served with the whole set."""
        queue = list(self.order)
        turn = threading.Condition()
        waiting: list[Path] = []  # prepared, waiting for their turn to build
        building: list[Path] = []

        def first(paths: list[Path]) -> Path | None:
            names = {self.services[p].name: p for p in paths}
            wanted = next((names[n] for n in list(self.holder.wanted) if n in names), None)
            return wanted or min(paths, key=self.order.index, default=None)

        def builder() -> None:
            while True:
                with turn:
                    path = first(queue)
                    if path is None:
                        return
                    queue.remove(path)
                generation = self._begin(path)
                if self._observer is not None and path in self.watched:
                    self.services[path] = load_service(path)
                options = self._options(path)
                self._prepared[path] = prepare(self.services[path], options)
                with turn:
                    waiting.append(path)
                    turn.wait_for(lambda path=path: not building and first(waiting) == path)
                    waiting.remove(path)
                    building.append(path)
                try:
                    with stamps.recording() as record:
                        build = build_service(self.services[path],
                                              replace(options, quick=quick, concatenations=not quick),
                                              with_git=False, prepared=self._prepared[path])
                    with self._lock:
                        self._install(path, build, generation, record)
                        self._publish(partial=True)
                    git[path] = reading.submit(repo_info, path)  # once served: GitPython's import is no answer's
                finally:
                    with turn:
                        building.remove(path)
                        turn.notify_all()
                if progress:
                    progress(self.services[path])

        count = max(1, min(FIRST_BUILDERS, len(self.order)))
        git: dict[Path, Future[RepoInfo | None]] = {}  # git status runs beside the builds, off their way
        with ThreadPoolExecutor(count, "bosco-first-build") as pool, ThreadPoolExecutor(2, "bosco-git") as reading:
            for builder_done in [pool.submit(builder) for _ in range(count)]:
                builder_done.result()
            facts = {path: future.result() for path, future in git.items()}
        with self._lock:
            for path, info in facts.items():
                self._served[path] = replace(self._served[path], git=info)
            asset_set = self._publish()
            for path in self.watched:  # the folders of files no glob names are known now
                self._sync(path)
        self._initial.set()
        return asset_set

    def check_all(self) -> AssetSet:
        """Complete every served build of a quick first pass (``build_all(quick=True)``: syntax
        errors, verified minification, exact maps, the concatenations of unminified bundles; build
        commands are not run again) and serve each as it is completed (``pipeline.build_in_order``:
        minified bundles are verified on all CPUs), then return the served set. Rebuilds may run
        meanwhile: a service rebuilt since is left as its rebuild made it."""
        with self._lock:
            todo = [(path, self._served[path], self._generation[path], self.services[path]) for path in self.order
                    if not self._served[path].complete]
        jobs = [(service, self._options(path), self._prepared.get(path)) for path, _, _, service in todo]
        completing = build_in_order(jobs)
        for path, build, generation, _ in todo:
            with stamps.recording() as record:
                complete = next(completing)
            with self._lock:
                if not self._superseded(path, generation):
                    self._install(path, replace(complete, git=build.git), generation, record)
                    self._publish()
                    self._watch_inputs(path)
        next(completing, None)  # the workers stop
        with self._lock:
            return self._publish()

    def serve(self, progress: Callable[[Service], None] | None = None, quick: bool = False) -> AssetSet:
        """Start watching (``start``), then build every service and serve it: the order that makes
        every edit saved after the first served answer rebuild. ``quick`` serves a first pass
        (``build_all(quick=True)``), then the complete set (``check_all``)."""
        self.start()
        asset_set = self.build_all(progress, quick=quick)
        return self.check_all() if quick else asset_set

    def measure_sizes(self) -> None:
        """Measure the bundles of every served build not measured yet (``measure``) and serve the
        index page with their sizes. Sizes belong to the generation of the build they measured:
        a service rebuilt meanwhile shows "sizes pending" until its rebuild is measured, and an
        older measurement never replaces a newer one."""
        if self.measure is None:
            return
        with self._lock:
            served = [(p, self._served[p], self._generation[p]) for p in self.order if p in self._served]
        try:
            for path, build, generation in served:
                with self._lock:
                    if self._sizes.get(path, (0, {}))[0] >= generation:
                        continue
                measured = self.measure(build)
                with self._lock:
                    if generation > self._sizes.get(path, (0, {}))[0]:
                        self._sizes[path] = (generation, measured)
        except Exception as exc:  # noqa: BLE001 - shown on the console, never kills the server
            if not self._stopped and self.on_problem:
                self.on_problem("", f"measuring bundle sizes failed: {exc}")
            return
        with self._lock:
            self._publish()

    def _publish(self, partial: bool = False) -> AssetSet:
        """Serve the served builds (``partial``: those of the first build so far, ``AssetHolder.offer``)."""
        builds = []
        for path in self.order:
            build = self._served.get(path)
            if build is None:
                continue
            problem = self._problems.get(path)
            builds.append(replace(build, errors=build.errors + (problem,)) if problem else build)
        sizes = None if self.measure is None else {
            self._served[p].name: measured for p, (generation, measured) in self._sizes.items()
            if generation == self._generation.get(p)}
        asset_set = assemble(builds, self.options, self.warnings, sizes, self.remote() if self.remote else None,
                             self._places_of)
        pending = frozenset().union(*self._building.values())
        if partial:
            self.holder.offer(asset_set, [b.name for b in builds], pending)
        else:
            self.holder.swap(asset_set, pending)
        return asset_set

    def _places_of(self, build: ServiceResult) -> list[Found]:
        """``duplicates.places`` of ``build``, remembered while its service is not rebuilt (caller
        holds ``self._lock``): a rebuild looks only at the files of the service it rebuilt."""
        cached = self._places.get(build.path)
        if cached is not None and cached[0] is build.outputs and cached[1] is build.bundles:
            return cached[2]
        found = places(build)
        self._places[build.path] = (build.outputs, build.bundles, found)
        return found

    def refresh_page(self) -> None:
        """Render the index page again (``remote``'s status changed); nothing before the first build."""
        with self._lock:
            if self._initial.is_set():
                self._publish()

    def rebuild(self, repo: Path, reasons: Iterable[str] = ()) -> Rebuild | None:
        """Re-read the manifest of the service in ``repo``, rebuild it, swap it into the served set
        and publish ``rebuild`` events. A build with errors keeps the last good outputs served.
        None when the build is dropped: a newer one is served, a watched file is briefly gone, or a
        file changed between the passes (the rebuild is requested again).

        Two passes: a quick one (``BuildOptions.quick``: nothing that is not cached is checked,
        verified or mapped token by token; unminified, no concatenations: ``pending_keys``, whose
        requests wait for them) is served at once and announced to live reload; the
        complete build of the same inputs (build command not run again) replaces it right after,
        announced again only when its errors differ (it serves the same code: minified, mapped
        token by token, checked). The served bytes never get older than the save; the result is
        the complete build's. (The watching worker runs the second pass on a thread of its own,
        so the next save's first pass never waits for it.)"""
        first = self._first_pass(repo, reasons)
        return None if first is None else self._second_pass(first)

    def _first_pass(self, repo: Path, reasons: Iterable[str]) -> _FirstPass | None:
        """Serve and announce the quick pass of a rebuild of ``repo`` (None: dropped)."""
        start = time.perf_counter()
        generation = self._begin(repo)
        service = load_service(repo)
        options = self._options(repo)
        prepared = prepare(service, options)
        with self._lock:
            served = self._served.get(repo)
        with stamps.recording() as record:
            fresh = build_service(service, replace(options, quick=True, concatenations=False), with_git=False,
                                  prepared=prepared)
        quick = self._swap(repo, service, _quick_served(fresh, served), generation, record)
        if quick is None:
            return None
        previous, first, errors = quick
        reasons = tuple(reasons)
        with self._lock:
            pending = self._building.get(repo, frozenset())
        outcome = self._outcome(previous, first, errors, start, reasons)
        self._announce(repo, _with_pending(outcome, previous, first, options.build, pending) if pending else outcome)
        done = _FirstPass(repo, service, options, prepared, generation, fresh, previous, first, errors, start, reasons,
                          record)
        with self._cond:  # the report covers every rebuild since the last one reported
            earlier = self._unreported.get(repo)
            self._unreported[repo] = done if earlier is None else replace(earlier, reasons=earlier.reasons + reasons)
        return done

    def _second_pass(self, done: _FirstPass) -> Rebuild | None:
        """Serve the complete build after ``done``, announce new errors and report the rebuild
        (``on_rebuild``); None when it is dropped: a newer build is served or has begun, or a file
        the quick pass read changed meanwhile (the rebuild is requested again, ``request``)."""
        with self._lock:
            if self._superseded(done.repo, done.generation):
                return None  # a newer save's first pass is served or building: its own second pass follows
        fresh, service = done.fresh, done.service
        record = None  # a complete quick pass is served as it is: it read what it read
        if fresh.complete:
            complete = replace(fresh, git=repo_info(service.path))
        else:
            with stamps.recording() as record:
                complete = build_service(service, done.options, prepared=done.prepared)
            if not _same_inputs(done.record, record):
                # a file changed since the quick pass read it: this is no complete build of what it
                # served (a file deleted meanwhile reads as missing) and the change's own event may
                # not have come yet; the rebuild is made again from the files as they are now
                with self._lock:
                    if not self._superseded(done.repo, done.generation):
                        for reason in done.reasons:
                            self.request(done.repo, reason)
                return None
        swapped = self._swap(done.repo, service, complete, done.generation, record, following=fresh)
        if swapped is None:
            return None
        with self._lock:
            self._watch_inputs(done.repo)
        _, build, errors = swapped
        with self._cond:
            since = self._unreported.pop(done.repo, done)
        result = self._outcome(since.previous, build, errors, since.start, set(since.reasons))
        if errors != done.errors:  # the bytes served are the same code: only new errors need telling
            self._announce(done.repo, self._outcome(done.first, build, errors, done.start, done.reasons))
        # a look once more that found nothing new is no news (a deleted service's failure is told once)
        unchanged = (not result.changed and not result.removed and since.previous is not None
                     and errors == since.previous.all_errors)
        if self.on_rebuild and not (set(since.reasons) == {RECHECK} and unchanged):
            self.on_rebuild(result)
        if self.measure is not None:
            threading.Thread(target=self.measure_sizes, name="bosco-sizes", daemon=True).start()
        return result

    @staticmethod
    def _outcome(before: ServiceResult | None, after: ServiceResult, errors: tuple[str, ...], start: float,
                 reasons: Iterable[str]) -> Rebuild:
        """The ``Rebuild`` that replaced ``before`` by ``after`` (serving ``errors``), started at ``start``."""
        changed, removed = _diff(before, after)
        recovered = not errors and before is not None and bool(before.all_errors)
        return Rebuild(after.name, changed, removed, errors, (time.perf_counter() - start) * 1000,
                       tuple(sorted(reasons)), recovered)

    def _announce(self, repo: Path, rebuild: Rebuild) -> None:
        """Publish ``rebuild`` to live reload (kept for late clients while it failed)."""
        self.holder.events.publish("rebuild", rebuild.event(repo), key=rebuild.service, retain=not rebuild.ok)

    def _swap(self, repo: Path, service: Service, build: ServiceResult, generation: int,
              record: stamps.Record | None, following: ServiceResult | None = None) -> Swapped | None:
        """Serve ``build`` (made from the inputs of ``generation``, which read ``record``), or the last
        good outputs with its errors; ``(build served before, build served now, errors)``, None when
        it is dropped.
        ``following`` is the quick build of the same inputs that was served before: when it was
        served as it was (no errors), ``build`` is served as it is too, errors and all (what it
        finds, a syntax error, is about the bytes already served)."""
        with self._lock:
            if self._held(repo, time.monotonic()) is not None:
                return None  # read while a file was briefly gone: its pending rebuild follows
            if following is not None and self._superseded(repo, generation):
                return None  # a newer build began while this complete pass read the files
            self.services[repo] = service
            previous = self._served.get(repo)
            errors = build.all_errors
            as_is = following is not None and not following.all_errors
            if errors and repo in self._last_good and not as_is:
                good = self._last_good[repo]
                build = replace(good, errors=errors, warnings=build.warnings, description=build.description)
            if not self._install(repo, build, generation, record):
                return None
            self._publish()
        return previous, build, errors

    def report(self, repo: Path, message: str | None) -> None:
        """Show (or with None clear) a watch-build problem on the service's index entry."""
        with self._lock:
            if message is None and self._problems.pop(repo, None) is None:
                return
            if message is not None:
                self._problems[repo] = message
            self._publish()
        if message is not None and self.on_problem:
            self.on_problem(self.services[repo].name, message)

    # events -------------------------------------------------------------------------------

    def request(self, repo: Path, reason: str) -> None:
        """Ask for a rebuild of the service in ``repo`` (starts at once when it is idle)."""
        with self._cond:
            first, reasons = self._pending.get(repo, (time.monotonic(), set()))
            reasons.add(reason)
            self._pending[repo] = (first, reasons)
            self._cond.notify_all()

    def dispatch(self, paths: list[Path], is_directory: bool, event_type: str) -> None:
        """Handle one watchdog event (called from an observer thread): every watched service whose
        repo holds one of ``paths`` is told."""
        for repo in self.watched:
            inside = [p for p in paths if p == repo or repo in p.parents]
            if inside:
                self.notify(repo, paths, is_directory, event_type)

    def notify(self, repo: Path, paths: list[Path], is_directory: bool, event_type: str) -> None:
        """Handle one watchdog event for the service in ``repo``: ``paths`` are the event's source
        (and destination of a move)."""
        service = self.services[repo]
        watch_build = self._has_watch_build(service)
        inside = [p for p in paths if p == repo or repo in p.parents]
        # a symbolic link to a folder (made, removed or renamed over: ``ln -sfn``) is a folder event:
        # the folders to watch and the globs' files change with it
        is_directory = is_directory or any(WatchRoot(p, True) in self._watches or (p.is_symlink() and p.is_dir())
                                           for p in inside)
        now = time.monotonic()
        with self._cond:  # never self._lock: watchdog calls us holding its lock (deadlock)
            vanished = self._vanished.setdefault(repo, {})
            inputs = self._inputs.get(repo, frozenset())
            gone = event_type in ("deleted", "moved") and paths[0] in inside and not paths[0].exists()
            if gone and (is_directory or is_relevant(service, paths[0]) or paths[0] in inputs):
                vanished[paths[0]] = now
            for path in inside:
                if path.exists():  # back (or new): nothing below it is gone any more
                    for gone in [g for g in vanished if g == path or path in g.parents]:
                        del vanished[gone]
            if is_directory and event_type != "created":
                self._gone.add(paths[0])
                # a link renamed over a linked folder (``ln -sfn``) replaces the folder watched there
                self._gone.update(p for p in paths[1:] if p.is_symlink())
            writing = self._writing.setdefault(repo, {})
            if event_type in ("created", "modified") and not is_directory:
                writing[paths[0]] = now  # written in place: read it once it is closed
            elif event_type in ("closed", "deleted", "moved"):
                writing.pop(paths[0], None)
        if is_directory:  # folders appear or go: watch the new set of folders, re-expand the globs
            if not watch_build:
                self.request(repo, inside[-1].relative_to(repo).as_posix() + "/")
            return
        for path in inside:
            if (is_relevant(service, path) or path in inputs) and (path.name == MANIFEST_NAME or not watch_build):
                self.request(repo, path.relative_to(repo).as_posix())

    @staticmethod
    def _has_watch_build(service: Service) -> bool:
        return bool(service.manifest and service.manifest.build and service.manifest.build.watch_command)

    def _held(self, repo: Path, now: float) -> float | None:
        """When the rebuild of ``repo`` may start, if a vanished path or a file still being written
        holds it (else None); paths back on disk or gone for longer than ``VANISH_GRACE`` and writes
        not closed within ``WRITE_WAIT`` are forgotten."""
        with self._cond:
            vanished = self._vanished.get(repo, {})
            until = None
            for path, at in list(vanished.items()):
                if at + VANISH_GRACE <= now or os.path.lexists(path):
                    del vanished[path]
                else:
                    until = max(until or 0.0, at + VANISH_GRACE)
            writing = self._writing.get(repo, {})
            for path, at in list(writing.items()):
                if at + WRITE_WAIT <= now:
                    del writing[path]
                else:
                    until = max(until or 0.0, at + WRITE_WAIT)
            return until

    def _next_due(self) -> tuple[Path, set[str]] | None:
        """Wait for the next service whose rebuild is due and take it off the queue (None: stopped)."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                wait = None
                for repo, (first, reasons) in list(self._pending.items()):
                    at = max(first + SETTLE, self._held(repo, now) or 0.0)
                    if at <= now:
                        del self._pending[repo]
                        return repo, reasons
                    wait = at - now if wait is None else min(wait, at - now)
                self._cond.wait(wait)
            return None

    def _work(self) -> None:
        # events seen while the first build runs wait for it (it may not have served every service yet)
        while not self._initial.wait(0.1):
            if self._stopped:
                return
        for repo in self.watched:
            service = self.services[repo]
            if self._has_watch_build(service):
                self._start_watch_build(repo, service)
        while (due := self._next_due()) is not None:
            repo, reasons = due
            passed = False
            try:
                done = self._first_pass(repo, reasons)
                passed = True
                if done is not None:
                    with self._cond:
                        self._completing[repo] = done
                        self._cond.notify_all()
                if self._sync_watches(repo) and not self._has_watch_build(self.services[repo]):
                    # files created in a new folder before its watch existed: look once more
                    self.request(repo, RECHECK)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one rebuild
                if not passed:  # it began: the complete pass of the build served before is skipped
                    self._abandon(repo)
                if self.on_problem:
                    self.on_problem(self.services[repo].name, f"rebuild failed unexpectedly: {exc!r}")

    def _complete(self) -> None:
        """The second passes of the worker's rebuilds, the latest of each service (an older one
        whose service was saved again meanwhile is skipped)."""
        while True:
            with self._cond:
                while not self._completing and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                repo = next(iter(self._completing))
                done = self._completing.pop(repo)
            try:
                self._second_pass(done)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one rebuild
                self._abandon(done.repo)
                if self.on_problem:
                    self.on_problem(done.service.name, f"rebuild failed unexpectedly: {exc!r}")

    def _abandon(self, repo: Path) -> None:
        """No complete pass follows the build of ``repo`` served (a rebuild failed unexpectedly):
        requests waiting for its concatenations (``pending_keys``) get the 404 page."""
        with self._lock:
            if self._building.pop(repo, None):
                self._publish()

    # observers ----------------------------------------------------------------------------

    def _sync_watches(self, repo: Path) -> bool:
        """Watch exactly ``watch_roots`` of the service now (globs and folders may have changed);
        True when a folder was newly watched."""
        with self._lock:
            return self._sync(repo)

    def _watch_inputs(self, repo: Path) -> None:
        """Watch the folders of the files the served build of ``repo`` read that no watch covers
        yet (a complete pass reads more than the quick pass the worker synced after; caller holds
        ``self._lock``); a folder newly watched is looked at once more (``RECHECK``)."""
        if not self._initial.is_set():
            return  # ``build_all`` watches them once every service is served
        watched = {r.path for r in self._watches}
        if any(p.parent not in watched and p.parent.is_dir() for p in self._inputs.get(repo, ())) \
                and self._sync(repo) and not self._has_watch_build(self.services[repo]):
            self.request(repo, RECHECK)

    def _sync(self, repo: Path) -> bool:
        if self._observer is None or self._stopped:
            return False
        with self._cond:
            gone, self._gone = self._gone, set()
        wanted = set(watch_roots(self.services[repo]))
        # the folders of files read although no glob names them (local @imports)
        folders = {r.path for r in wanted}
        wanted |= {WatchRoot(f) for f in {p.parent for p in self._inputs.get(repo, ())} - folders if f.is_dir()}
        # the folder holding the repo: inotify tells no one that a watched folder itself was moved
        # (``mv`` of the service out of the workspace), only the folder it left sees it go
        wanted.add(WatchRoot(repo.parent))
        # a watch on a folder that was deleted or moved away is dead, even if the folder is back
        for root in [r for r in self._watches if any(g == r.path or g in r.path.parents for g in gone)]:
            self._unwatch(root, None)
        for root in [r for r, (_, _, repos) in self._watches.items() if repo in repos and r not in wanted]:
            self._unwatch(root, repo)
        added = False
        for root in sorted(wanted, key=lambda r: str(r.path)):
            if root in self._watches:
                self._watches[root][2].add(repo)
            elif self._watch(root, repo):
                added = True
        return added

    def _watch(self, root: WatchRoot, repo: Path) -> bool:
        """Watch ``root`` with inotify, else by polling (with the one-line hint); False when the
        folder is gone (its parent's watch sees it come back)."""
        assert self._observer is not None
        try:
            watch = self._observer.schedule(self._handler, str(root.path), event_filter=EVENT_TYPES,
                                            follow_symlink=root.link)
            self._watches[root] = (self._observer, watch, {repo})
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            problem = INOTIFY_HINT if exc.errno in INOTIFY_LIMIT_ERRNOS else \
                f"cannot watch {root.path} ({exc.strerror or exc}); watching it by polling instead"
        if self._poller is None:
            from watchdog.observers.polling import PollingObserver

            self._poller = PollingObserver(timeout=POLL_INTERVAL)
            self._poller.start()
        try:
            watch = self._poller.schedule(self._handler, str(root.path), event_filter=EVENT_TYPES,
                                          follow_symlink=root.link)
        except OSError:
            return False
        self._watches[root] = (self._poller, watch, {repo})
        if self.on_problem and (problem != INOTIFY_HINT or not self._hinted):
            self._hinted = self._hinted or problem == INOTIFY_HINT
            self.on_problem("", problem)
        return True

    def _unwatch(self, root: WatchRoot, repo: Path | None) -> None:
        """Stop watching ``root`` for ``repo`` (None: for every service)."""
        observer, watch, repos = self._watches[root]
        repos.discard(repo) if repo is not None else repos.clear()
        if not repos:
            del self._watches[root]
            with contextlib.suppress(KeyError, OSError):
                observer.unschedule(watch)

    @property
    def polling(self) -> tuple[Path, ...]:
        """The folders watched by polling (inotify could not watch them), sorted."""
        with self._lock:
            return tuple(sorted(r.path for r, (o, _, _) in self._watches.items() if o is self._poller))

    def start(self) -> ServedAssetSet:
        """Start the observers and the rebuild worker; the worker starts the watch builds and
        rebuilds once ``build_all`` has served every service (call ``start`` first: ``serve``)."""
        with self._lock:
            if self._stopped or not self.watched:
                return self
            if self.observer_class is None:  # imported here: its inotify bindings load only to watch
                from watchdog.observers import Observer

                self.observer_class = Observer
            self._observer = self.observer_class()
            self._observer.start()
            self._worker.start()
            self._completer.start()
            for repo in self.watched:
                self._sync(repo)
        return self

    def _start_watch_build(self, repo: Path, service: Service) -> None:
        assert service.manifest and service.manifest.build

        def ready() -> None:
            self.report(repo, None)
            self.request(repo, "watch build ready")

        output = (lambda line: self.on_output(service.name, line)) if self.on_output else None
        with self._cond:  # never started after stop() collected the watch builds to stop
            if not self._stopped:
                self._watch_commands.append(WatchCommand(
                    service.name, repo, service.manifest.build, ready, lambda message: self.report(repo, message),
                    output, backoff=self.watch_build_backoff,
                ).start())

    def stop(self) -> None:
        """Stop watch builds (their whole process groups), observers and the worker."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            watch_commands = list(self._watch_commands)
        for command in watch_commands:
            command.stop()
        for observer in (self._observer, self._poller):
            if observer is not None:
                observer.stop()
                observer.join(5)
        for thread in (self._worker, self._completer):
            if thread.is_alive():
                thread.join(30)

    def __enter__(self) -> ServedAssetSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
