"""The ``bosco`` command line: parse options, call the library, print with rich (reference: docs/commands.md).

Results go to stdout, progress and logs to stderr. Exit codes: 0 success, 1 failure, 2 usage.
Shared options are accepted before and after the command name (``bosco -e tes cdn`` and
``bosco cdn -e tes``); the value given after the command wins.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bosco import __version__, stopping, ui
from bosco.assetset import AssetSet, segment_problem, use_types
from bosco.cache import configure as configure_cache
from bosco.config import Config, load_config
from bosco.errors import BoscoError, PublishError
from bosco.pipeline import BuildOptions, build_asset_set
from bosco.publish.compress import CompressionCache, default_cache_dir
from bosco.publish.delete import delete_releases, plan_delete, refuse_current
from bosco.publish.execute import dry_run_report, execute
from bosco.publish.local import DirectoryTarget, check_out_dir
from bosco.publish.plan import (
    DEFAULT_BUILD,
    DEFAULT_CONCURRENCY,
    PublishOptions,
    ReleasePlan,
    plan_release,
    released_outputs,
)
from bosco.publish.report import PublishReport, Result
from bosco.publish.target import Target
from bosco.redact import redact
from bosco.ui import err, out
from bosco.workspace import Service, compile_regex, discover_services, filter_services, find_root

if TYPE_CHECKING:
    from bosco.watch import Rebuild



@dataclass
class Context:
    """Shared option values, merged from before and after the command name."""

    values: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None or value == () else value


def _segment(value: str | None, option: str) -> str | None:
    """Click callback: ``value`` must be usable as one asset-key segment (usage error, exit 2)."""
    problem = None if value is None else segment_problem(value)
    if problem:
        raise click.BadParameter(problem, param_hint=option)
    return value


def _regex(value: str | None, option: str) -> str | None:
    """Click callback: ``value`` must compile as a regular expression (usage error, exit 2)."""
    if value is not None:
        try:
            compile_regex(value, "")
        except BoscoError as exc:
            raise click.BadParameter(str(exc).lstrip(), param_hint=option) from exc
    return value


def _release(value: str) -> str:
    """Click callback: ``SERVICE/BUILD`` or ``BUILD``, each part one key segment (usage error, exit 2)."""
    for part in value.split("/", 1) if value.count("/") == 1 else [value]:
        _segment(part, "SERVICE/BUILD | BUILD")
    return value


SHARED_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--workspace", "-W", type=click.Path(file_okay=False, path_type=Path),
                 help="Workspace folder (default: nearest ancestor with .bosco/, else the current folder)."),
    click.option("--environment", "-e", callback=lambda c, p, v: _segment(v, "--environment"),
                 help="Environment: first segment of published keys and "
                 "selector of .bosco/<env>.json (default: local)."),
    click.option("--repo", "-r", callback=lambda c, p, v: _regex(v, "--repo"),
                 help="Only services whose name matches this regular expression."),
    click.option("--tag", "-t", help="Only services whose manifest tags include this tag."),
    click.option("--service", "-s", "service", is_flag=True, default=None,
                 help="Only the service the current folder is in."),
    click.option("--verbose", "-v", is_flag=True, default=None,
                 help="Also show build output and details that need no action."),
    click.option("--quiet", "-q", is_flag=True, default=None, help="Show only errors (and results on stdout)."),
    click.option("--traceback", is_flag=True, default=None, help="Show the Python traceback of an error."),
]
SHARED_NAMES = ("workspace", "environment", "repo", "tag", "service", "verbose", "quiet", "traceback")


def configure_ui(state: Context) -> None:
    """Apply -q, -v and --traceback (given before or after the command name) to ``bosco.ui``."""
    ui.configure(quiet=bool(state.get("quiet")), verbose=bool(state.get("verbose")),
                 traceback=bool(state.get("traceback")))


def shared_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options to a command; their values are merged into the ``Context``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(Context)
        assert ctx is not None
        for name in SHARED_NAMES:
            value = kwargs.pop(name, None)
            if value is not None:
                ctx.values[name] = value
        configure_ui(ctx)
        return func(*args, **kwargs)

    for option in reversed(SHARED_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


class BoscoGroup(click.Group):
    """Turns BoscoError into one red line, a hint and exit code 1 (the traceback only with
    --traceback), with secrets masked (``redact.redact``), and Ctrl-C/SIGTERM into ``interrupted``
    and exit code 130 after stopping every child process."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` with each summary whole (click cuts them to fit one line)."""
        rows = [(name, command.get_short_help_str(limit=1_000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BoscoError as exc:
            if ui.mode.traceback:
                ui.traceback_text(traceback.format_exc())
            ui.error(str(exc), exc.hint)
            ctx.exit(1)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bosco.stopping): no traceback, nothing left running
            stopping.stop_children()
            err.print("[yellow]interrupted[/]")
            ctx.exit(stopping.INTERRUPTED)


@click.group(cls=BoscoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bosco")
@click.pass_context
def cli(ctx: click.Context, **kwargs: Any) -> None:
    """bosco: serve (cdn) and publish (build, s3push, s3delete) the static assets of a multi-repo workspace."""
    ctx.obj = Context({k: v for k, v in kwargs.items() if v is not None})
    configure_ui(ctx.obj)


for _option in SHARED_OPTIONS:
    cli.params.append(_option(lambda: None).__click_params__[0])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Setup:
    """What every command needs: the root, the resolved config and the selected services."""

    root: Path
    environment: str
    config: Config
    services: list[Service]
    warnings: list[str]


def setup(overrides: dict[str, Any] | None = None, need_services: bool = True, strict: bool = False) -> Setup:
    """Resolve root, config and the filtered services from the shared options; print the
    configuration's warnings (unknown keys, an environment without its file) on stderr.

    ``strict`` makes an unknown configuration key an error. With ``need_services``, raises
    ``BoscoError`` when the workspace has no service or the filters leave none (a command with
    nothing to do is a mistake, not a success)."""
    ctx = click.get_current_context().find_object(Context)
    assert ctx is not None
    root = find_root(Path.cwd(), ctx.get("workspace"))
    environment = ctx.get("environment", "local")
    config = load_config(root, environment, overrides, strict=strict)
    use_types(config.get("types") or {})
    for warning in config.warnings:
        ui.warning(warning)
    configure_cache(config.get("cache.remote"), config, config.get("cache.maxsize"))
    services, warnings = discover_services(root, config)
    if not services and need_services:
        if (root / "bosco-service.json").is_file():  # inside a service of a workspace without .bosco/
            raise BoscoError(f"no service found in workspace {root}: it is a service, and services are the "
                             f"subfolders of the workspace",
                             f"run bosco in {root.parent}, pass -W {root.parent}, or create {root.parent / '.bosco'}/ "
                             f"so that bosco finds the workspace from any folder inside it")
        raise BoscoError(f"no service found in workspace {root}",
                         "run bosco in a workspace whose subfolders hold bosco-service.json files, or pass -W DIR")
    services = filter_services(services, ctx.get("repo"), ctx.get("tag"),
                               Path.cwd() if ctx.get("service") else None)
    if not services and need_services:
        chosen = " ".join(f"{flag} {ctx.get(name)}" for flag, name in (("-r", "repo"), ("-t", "tag"))
                          if ctx.get(name))
        raise BoscoError(f"no service matches {chosen}",
                         "check -r/-t/-s: names and tags come from each bosco-service.json")
    return Setup(root, environment, config, services, warnings)


def css_minifier(config: Config) -> str:
    """The configured CSS minifier (``load_config`` already validated it); warns about csscompressor."""
    name = config.get("css.minifier", "rcssmin")
    if name == "csscompressor":
        ui.warning("css.minifier csscompressor 0.9.5 is known to corrupt modern CSS "
                   "(clamp()/min()/max() arithmetic, @supports not (, @container name (, whitespace in quoted "
                   "data-URI SVGs, .a :first-child inside @media, --x: 0px used in calc()); its output is not "
                   "verified; rcssmin is the default")
    return name


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """A transient rich progress bar on stderr (``label``, a bar, done/total, a description, elapsed
    time); yields ``advance(description)``. Shown only on a terminal: elsewhere (CI logs, pipes) it
    would leave an empty line and nothing else."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("", total=total)
        yield lambda description: progress.update(task, advance=1, description=description)


def build_with_progress(state: Setup, build: Callable[[Callable[[Service], None]], AssetSet]) -> AssetSet:
    """Run ``build(progress)`` showing a progress bar (``progress`` is called after each service)."""
    with progress_bar("building", len(state.services)) as advance:
        return build(lambda s: advance(s.name))


def print_problems(asset_set: AssetSet) -> None:
    """Details (``-v``), warnings and errors of an asset set on stderr, one line each, naming the
    service. Details need no action: a minifier fault bosco repaired, a build command not run."""
    for detail in (f"{s.name}: {d}" for s in asset_set.services for d in s.all_details):
        ui.detail(detail)
    for warning in list(asset_set.warnings) + [f"{s.name}: {w}" for s in asset_set.services for w in s.all_warnings]:
        ui.warning(warning)
    for error in asset_set.errors:
        ui.error(error)


def watched_services(services: list[Service], pattern: str | None, cwd: Path) -> list[Service]:
    """The services ``bosco cdn`` watches: those whose name matches regex ``pattern`` (``-w``), else
    the service whose folder holds ``cwd`` (none outside every service). Raises ``BoscoError`` for
    an invalid regex or one that matches no service."""
    if pattern is None:
        cwd = cwd.resolve()
        return [s for s in services if cwd == s.path.resolve() or s.path.resolve() in cwd.parents]
    regex = compile_regex(pattern, "-w", 'use e.g. -w "app-home|app-checkout"')
    matched = [s for s in services if regex.search(s.name)]
    if not matched:
        raise BoscoError(f"-w {pattern!r} matches none of the {len(services)} services",
                         f"service names: {', '.join(s.name for s in services) or '(none)'}")
    return matched


def print_rebuild(rebuild: Rebuild) -> None:
    """One terminal line per rebuild: service, what changed, time taken."""
    if not rebuild.ok:
        err.print(f"[red]{escape(rebuild.service)}: rebuild failed[/] in {rebuild.ms:.0f} ms; still serving the "
                  f"last good build: {escape(rebuild.errors[0])}", highlight=False)
        return
    keys = rebuild.changed + tuple(f"-{k}" for k in rebuild.removed)
    what = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "") if keys else "no change"
    cause = ", ".join(rebuild.reasons[:2]) + (" …" if len(rebuild.reasons) > 2 else "")
    if rebuild.recovered:
        err.print(f"[green]{escape(rebuild.service)}: recovered[/] in {rebuild.ms:.0f} ms ({escape(cause)}): "
                  f"{escape(what)}", highlight=False)
        return
    err.print(f"[green]{escape(rebuild.service)}[/]: {escape(what)} ({escape(cause)}) in {rebuild.ms:.0f} ms",
              highlight=False)


def print_problem(service: str, message: str) -> None:
    err.print(f"[yellow]{escape(service + ': ' if service else '')}{escape(message)}[/]", highlight=False)


def print_output(service: str, line: str) -> None:
    """A watch build's output line (its colours kept) prefixed with the service name."""
    err.print(Text.assemble((f"{service} | ", "dim"), Text.from_ansi(line)), highlight=False)


@cli.command(short_help="Serve every service's assets on a local pseudo-CDN (watch, live reload).")
@click.argument("mode", required=False, type=click.Choice(["minify"]))
@click.option("--minify", "minify_flag", is_flag=True, help="The same as MODE minify.")
@click.option("--host", help="Interface to listen on (default: cdn.host, 127.0.0.1).")
@click.option("--port", "-p", type=click.IntRange(0, 65535), help="Port (default: cdn.port, 7334).")
@click.option("--rebuild", is_flag=True, help="Run every build.command even when its assets exist.")
@click.option("--watch", "-w", "watch", metavar="REGEX", callback=lambda c, p, v: _regex(v, "--watch"),
              help="Watch the services whose name matches REGEX and rebuild them on change (default: the "
              "service the current folder is in).")
@click.option("--livereload", is_flag=True,
              help="Make the fragments of watched services reload the page (or swap CSS) after a rebuild.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per event on stdout (one per line).")
@click.option("--remote", metavar="ENV", help="Also serve ENV's current published release of every service not "
              "served from the workspace, fetched from aws.cdn (else the bucket) and cached on disk.")
@shared_options
def cdn(mode: str | None, minify_flag: bool, host: str | None, port: int | None, rebuild: bool, watch: str | None,
        livereload: bool, as_json: bool, remote: str | None) -> None:
    """Serve every service's assets from one local pseudo-CDN (build `local`).

    With MODE `minify` (or --minify), JS and CSS are served as minified bundles with source maps; otherwise each
    source file is served at its own key and the fragments list them one by one. With -w, watched
    services are rebuilt as their files change. With --json, stdout gets one JSON object per line
    for each event: listening, serving, watching, rebuild, problem, stopped.
    """
    from bosco import budgets
    from bosco.server import AssetHolder, CdnServer
    from bosco.watch import WatchSession

    overrides: dict[str, Any] = {"cdn": {}}
    if host:
        overrides["cdn"]["host"] = host
    if port is not None:
        overrides["cdn"]["port"] = port
    state = setup(overrides, need_services=remote is None)
    watched = watched_services(state.services, watch, Path.cwd())
    if livereload and not watched:
        ui.warning("--livereload does nothing without watched services (-w REGEX)")
    minify = mode == "minify" or minify_flag
    minifier = css_minifier(state.config)
    holder = AssetHolder()
    server = CdnServer(holder, state.config.get("cdn.host", "127.0.0.1"), int(state.config.get("cdn.port", 7334)))
    base_url = (state.config.get("cdn.url") or f"http://localhost:{server.port}").rstrip("/")
    holder.base_url = base_url
    if remote:
        from bosco.release_proxy import for_cdn

        holder.remote = for_cdn(state.root, remote, [s.name for s in state.services], base_url)
        err.print(escape(holder.remote.status_line()), highlight=False)
    options = BuildOptions(build="local", minify=minify, bundle=minify, base_url=base_url, css_minifier=minifier,
                           rebuild=rebuild, title=f"bosco cdn: {state.root.name}", repos_link=True,
                           legal_comments=state.config.get("minify.legalcomments", "inline"),
                           build_timeout_ms=state.config.get("build.timeout"))
    emit = json_events(as_json)

    def on_rebuild(rebuild: Rebuild) -> None:
        print_rebuild(rebuild)
        emit("rebuild", service=rebuild.service, ok=rebuild.ok, changed=list(rebuild.changed),
             removed=list(rebuild.removed), reasons=list(rebuild.reasons), errors=list(rebuild.errors),
             ms=round(rebuild.ms, 1), recovered=rebuild.recovered)

    def on_problem(service: str, message: str) -> None:
        print_problem(service, message)
        emit("problem", service=service or None, message=message)

    cache = compression_cache(state.config)
    rules, _ = budgets.rules_for(state.config.get("budgets"),
                                 lambda key: state.config.origin(f"budgets.{key}" if key else "budgets"),
                                 [(s.name, s.path) for s in state.services])
    session = WatchSession(
        state.services, [s.path for s in watched], options, holder, state.warnings, livereload=livereload,
        on_rebuild=on_rebuild, on_problem=on_problem,
        on_output=print_output if ui.mode.verbose else None,
        measure=lambda build: budgets.measure_service(build, rules, cache),
        remote=holder.remote.page if holder.remote else None,
    )
    if holder.remote:  # online <-> offline: one terminal line, and the index page says it
        holder.remote.on_change = lambda: (session.refresh_page(), err.print(escape(holder.remote.status_line())))

    def build() -> None:
        # an error the build itself does not turn into an error entry (the process out of file
        # descriptors, say) is one line and the server keeps answering with what it has
        try:
            build_and_announce()
        except Exception as exc:  # noqa: BLE001 - a background thread: report, never die with a traceback
            if ui.mode.traceback:
                ui.traceback_text(traceback.format_exc())
            ui.error(f"building the workspace failed: {exc}",
                     "the server keeps answering with what was built; fix the cause and restart bosco cdn")
            emit("problem", service=None, message=f"building the workspace failed: {exc}")

    def build_and_announce() -> None:
        # watching starts before any file is read; unminified: serve after a quick pass, then
        # syntax-check every file and serve that (seconds on a cold cache for megabytes of JS);
        # minified bundles are verified in their only pass
        asset_set = build_with_progress(state, functools.partial(session.serve, quick=not minify))
        print_problems(asset_set)
        count = sum(1 for o in asset_set.outputs.values() if o.kind != "page")
        err.print(f"[green]serving[/] {ui.plural(len(state.services), 'service')}, {ui.plural(count, 'asset')} "
                  f"({'minified bundles' if minify else 'source files'})")
        emit("serving", url=f"{base_url}/", services=[s.name for s in state.services], assets=count, minified=minify,
             warnings=[redact(w) for w in [*asset_set.warnings, *(f"{s.name}: {w}" for s in asset_set.services
                                                                   for w in s.all_warnings)]],
             errors=[redact(e) for e in asset_set.errors])
        if watched:
            err.print(f"[green]watching[/] {', '.join(s.name for s in watched)}"
                      + (" (live reload on)" if livereload else ""))
            emit("watching", services=[s.name for s in watched], livereload=livereload)
        if not as_json:
            out.print(f"{base_url}/")
        session.measure_sizes()  # after the first answers: the index page says "sizes pending" until then

    def ready() -> None:
        threading.Thread(target=build, daemon=True).start()

    err.print(f"listening on http://{server.host}:{server.port}/ (Ctrl-C to stop)")
    emit("listening", url=f"http://{server.host}:{server.port}/")
    try:
        server.run(on_ready=ready)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C/SIGTERM after a clean shutdown: stopping is success
        err.print("stopped")
    finally:
        session.stop()
        cache.close()
        stopping.stop_children()  # the first build may still be running its build commands
        emit("stopped")


def json_events(enabled: bool) -> Callable[..., None]:
    """``emit(event, **fields)``: with ``enabled`` (``--json``), one JSON object per line on stdout,
    ``{"event": event, **fields}``, flushed at once (a reader follows the stream); else nothing.
    Safe from several threads."""
    lock = threading.Lock()

    def emit(event: str, **fields: Any) -> None:
        if enabled:
            with lock:
                click.echo(json.dumps({"event": event, **fields}))
                sys.stdout.flush()

    return emit


def published_base(state: Setup, fallback_base: str) -> str:
    """URL prefix of published links (fragments, ``index.html``): ``<aws.cdn>/<env>``, else ``fallback_base``."""
    cdn_url = state.config.get("aws.cdn")
    return f"{cdn_url.rstrip('/')}/{state.environment}" if cdn_url else fallback_base.rstrip("/")


def publish_build_options(state: Setup, build: str, tag: str | None, minify: bool,
                          fallback_base: str) -> BuildOptions:
    """Build options of a published asset set (``build --out`` and ``s3push`` alike, so both publish
    the same bytes): fragments link <aws.cdn>/<env>/<key>, else ``fallback_base``. Every
    ``build.command`` runs (a publish builds from source: output left by an earlier run must not be
    published when the command now fails)."""
    return BuildOptions(build=build, minify=minify, bundle=True, base_url=published_base(state, fallback_base), tag=tag,
                        css_minifier=css_minifier(state.config), rebuild=True,
                        sri=bool(state.config.get("fragments.sri", True)), title=f"bosco {state.environment}/{build}",
                        legal_comments=state.config.get("minify.legalcomments", "inline"),
                        build_timeout_ms=state.config.get("build.timeout"))


def build_published(state: Setup, options: BuildOptions) -> AssetSet:
    """Build the selected services' asset set with ``options``, showing progress; a key that cannot
    be published (too long a name or S3 key, ``AssetSet.with_key_problems``) is an error of its service."""
    asset_set = build_with_progress(state, lambda progress: build_asset_set(state.services, options, state.warnings,
                                                                            progress))
    return asset_set.with_key_problems(state.environment)


def publish_options(state: Setup, build: str, concurrency: int, bundle: str | None, force: bool,
                    fallback_base: str) -> PublishOptions:
    """Publish options from the configuration (``aws.maxage``, ``aws.shortcache``; ``index.html``
    links under ``published_base``)."""
    return PublishOptions(state.environment, build, state.config.get("aws.maxage"),
                          str(state.config.get("aws.shortcache")), concurrency, bundle,
                          published_base(state, fallback_base), force)


def compression_cache(config: Config) -> CompressionCache:
    """The compression cache (``compressed`` in the local cache folder) with the configured brotli
    qualities, encoding large bodies in one process per CPU."""
    return CompressionCache(default_cache_dir(), config.get("brotli.quality"), config.get("brotli.mapquality"),
                            os.cpu_count() or 1)


def print_retry(message: str) -> None:
    """A retried S3 request, one yellow line on stderr (botocore retries; bosco only reports)."""
    err.print(f"[yellow]retry:[/] {escape(redact(message))}", highlight=False)


@contextmanager
def json_failure(as_json: bool, problems: list[str]) -> Iterator[None]:
    """With ``--json``, a failure also prints ``{"ok": false, "errors": [...], "hint": ...}`` on stdout
    (``problems`` found so far, then the error itself) before the usual red line and exit 1."""
    try:
        yield
    except BoscoError as exc:
        if as_json:
            errors = [redact(e) for e in [*problems, str(exc)]]
            click.echo(json.dumps({"ok": False, "errors": errors, "hint": exc.hint and redact(exc.hint)}, indent=2))
        raise


def require_problem_free(printed: list[str], problems: list[str], where: str,
                         hint: str = "fix the problems above and run again") -> None:
    """Print ``problems`` (``printed`` ones were shown already) and raise one PublishError counting
    both when there is any: nothing may be published."""
    for problem in problems:
        ui.error(problem)
    if printed or problems:
        raise PublishError(f"{ui.plural(len(printed) + len(problems), 'error')}; nothing published to {where}", hint)


def environment_hint(state: Setup) -> str:
    """Which environment a command used and how to pick another (a missing bucket is most often a
    missing or mistyped -e): names the environments that have a ``.bosco/<env>.json``."""
    ctx = click.get_current_context().find_object(Context)
    chosen = ctx is not None and ctx.get("environment") is not None
    env = state.environment
    folder = state.root / ".bosco"
    known = sorted(p.stem for p in folder.glob("*.json") if p.stem != "bosco") if folder.is_dir() else []
    used = f"-e {env}" if chosen else f"{env} (the default: no -e given)"
    return (f"the environment is {used}; pick one with -e ENV"
            + (f" (environments with a file in {folder}: {', '.join(known)})" if known else "")
            + f", or set aws.bucket in {folder / (env + '.json')} or BOSCO_AWS_BUCKET")


def require_interactive(no_prompt: bool) -> None:
    """A confirmation needs a terminal: without -n, a non-interactive stdin is an error, not a hang."""
    if not no_prompt and not sys.stdin.isatty():
        raise BoscoError("stdin is not a terminal, so the confirmation cannot be asked",
                         "pass -n to run without confirmation")


def confirm(question: str) -> None:
    """Ask ``question`` on stderr (default no); a declined confirmation exits 1."""
    if not click.confirm(question, default=False, err=True, show_default=False, prompt_suffix=" "):
        err.print("[yellow]cancelled[/]: nothing changed")
        click.get_current_context().exit(1)


def run_with_progress(plan: ReleasePlan, target: Target, cache: CompressionCache) -> PublishReport:
    """Execute ``plan`` with a progress bar (objects and bytes sent) on stderr."""
    sent = 0
    with progress_bar("publishing", len(plan.steps) + 2 * len(plan.services)) as advance:

        def done(result: Result) -> None:
            nonlocal sent
            sent += result.sent
            advance(f"{sent / 1e6:.2f} MB sent")

        return execute(plan, target, cache, done)


def collect_provenance(asset_set: AssetSet, publish: PublishOptions, strict: bool) -> tuple[dict[str, Any], list[str]]:
    """The provenance of every service ``publish`` releases (README "Provenance"): one line per
    service on stderr (branch, commit, origin), one warning naming the services that are not in a
    git repository, and the published files with uncommitted changes: returned as problems when
    ``strict`` (s3push without --allow-dirty), else printed as warnings. Returns (service -> release
    index keys, problems)."""
    from bosco import provenance

    outputs = released_outputs(asset_set, publish)
    names = {o.service for o in outputs if o.service}
    found = provenance.collect([s for s in asset_set.services if s.name in names], outputs)
    for name, p in found.items():
        if p.git:
            err.print(f"{escape(name)}: git {escape(p.git.describe())}", highlight=False)
    missing = provenance.not_git(found)
    if missing:
        ui.warning(f"not in a git repository, recorded without provenance (\"git\": null): {', '.join(missing)}")
    dirty = provenance.uncommitted_problems(found)
    if strict:
        return {n: p.record() for n, p in found.items()}, [f"{d} (commit them, or pass --allow-dirty)" for d in dirty]
    for line in dirty:
        ui.warning(line)
    return {n: p.record() for n, p in found.items()}, []


def _size(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def print_report(report: PublishReport, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The bundle table and the totals line on stdout (or the report as JSON with ``as_json``, plus
    the ``extra`` keys)."""
    if as_json:
        click.echo(json.dumps({**report.to_json(), **(extra or {})}, indent=2))
        return
    table = Table("bundle", "raw", "gzip", "br", "action", box=box.SIMPLE, title_justify="left",
                  title=escape(f"{report.target} build {report.build}") + (" (dry run)" if report.dry_run else ""))
    for row in report.bundles():
        table.add_row(escape(row["key"]), _size(row["raw"]), _size(row["gzip"]), _size(row["br"]),
                      ("would " if report.dry_run else "") + row["action"])
    out.print(table)
    t = report.totals()
    verb = "would be " if report.dry_run else ""
    estimate = (f" (uncompressed size of {t['estimated_objects']} objects whose compressed size is not cached: "
                "an upper bound)" if t.get("estimated_objects") else "")
    out.print(f"{t['objects']} objects: {t['upload']} {verb}uploaded, {t['copy']} {verb}copied, {t['skip']} "
              f"{verb}skipped; {t['raw_bytes']:,} bytes raw, {t['sent_bytes']:,} bytes {verb}sent{estimate}",
              markup=False)


@cli.command("build", short_help="Write the asset set s3push would publish into a folder (--out DIR).")
@click.argument("bundle", required=False)
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the asset set to (one file per asset key).")
@click.option("--build", "-b", "build_name", default=DEFAULT_BUILD, show_default=True,
              callback=lambda c, p, v: _segment(v, "--build"),
              help="Build (release) identifier inside each service's keys.")
@click.option("--no-minify", is_flag=True, help="Concatenate JS/CSS bundles without minifying.")
@click.option("--base-url", help="URL prefix for fragment links when aws.cdn is not configured "
              "(default: root-relative /<key>).")
@click.option("--force", is_flag=True, help="Replace files of an already written build (not `default`).")
@click.option("--ignore-budgets", is_flag=True, help="Write bundles over their size budgets (listed as warnings).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@shared_options
def build_command(bundle: str | None, out_dir: Path, build_name: str, no_minify: bool, base_url: str | None,
                  force: bool, ignore_budgets: bool, as_json: bool) -> None:
    """Write the asset set that s3push would publish into a folder, through the same release code.

    BUNDLE limits bundles to one tag. Every build.command runs first. Fragment URLs use
    <aws.cdn>/<env>/<key> when aws.cdn is set, else --base-url, else /<key>. Files are stored
    uncompressed; unchanged files are not rewritten; each service's release index
    <service>/<build>/release.json is written last. Exits 1 (writing nothing) when any service has
    an error.
    """
    problems: list[str] = []
    with json_failure(as_json, problems):
        _build_to(bundle, out_dir, build_name, no_minify, base_url, force, ignore_budgets, as_json, problems)


def _build_to(bundle: str | None, out_dir: Path, build_name: str, no_minify: bool, base_url: str | None,
              force: bool, ignore_budgets: bool, as_json: bool, problems: list[str]) -> None:
    state = setup()
    check_out_dir(out_dir, state.root)
    publish = publish_options(state, build_name, DEFAULT_CONCURRENCY, bundle, force, base_url or "")
    options = publish_build_options(state, build_name, bundle, not no_minify, base_url or "")
    asset_set = build_published(state, options)
    print_problems(asset_set)
    problems += asset_set.errors
    if asset_set.errors:
        raise BoscoError(f"{ui.plural(len(asset_set.errors), 'error')}; nothing written to {out_dir}",
                         "fix the errors above and run again")
    records, _ = collect_provenance(asset_set, publish, strict=False)
    target = DirectoryTarget(out_dir)
    plan = plan_release(asset_set, target, publish, records)
    if has_budgets(state):
        from bosco.diff import current_release

        previous = {n: current_release(st) for n, st in plan.services.items()}
        over, _ = check_budgets(state, asset_set, bundle_sizes(asset_set, publish, state.config), previous,
                                build_name, ignore_budgets)
        require_problem_free([], over, str(out_dir))
    try:
        totals = execute(plan, target, CompressionCache(None)).totals()
    except BoscoError:
        target.discard_created()
        raise
    written = totals["upload"] + totals["copy"]
    if as_json:
        warnings = list(asset_set.warnings) + [f"{s.name}: {w}" for s in asset_set.services for w in s.all_warnings]
        click.echo(json.dumps({"ok": True, "out": str(out_dir), "environment": state.environment, "build": build_name,
                               "services": [s.name for s in asset_set.services], "written": written,
                               "unchanged": totals["skip"], "bytes": totals["sent_bytes"],
                               "warnings": [redact(w) for w in warnings]}, indent=2))
    err.print(f"[green]wrote[/] {written} files ({totals['sent_bytes']:,} bytes), {totals['skip']} unchanged, "
              f"for {ui.plural(len(state.services), 'service')} to {escape(str(out_dir))}")


@cli.command("s3push", short_help="Build the minified asset set and publish it to S3 under <env>/.")
@click.argument("bundle", required=False)
@click.option("--build", "-b", "build_name", default=DEFAULT_BUILD, show_default=True,
              callback=lambda c, p, v: _segment(v, "--build"),
              help="Build (release) identifier inside each service's keys.")
@click.option("--no-prompt", "-n", is_flag=True, help="Publish without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded, copied or skipped; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=DEFAULT_CONCURRENCY,
              help=f"Objects uploaded at the same time, 1 to 256 (default: 8 per CPU, at most 32: "
              f"{DEFAULT_CONCURRENCY} here).")
@click.option("--force", is_flag=True, help="Replace objects of an already published build (immutable unless "
              "the build is `default`).")
@click.option("--allow-dirty", is_flag=True, help="Publish files with uncommitted changes (their release records the "
              "dirty tree).")
@click.option("--ignore-budgets", is_flag=True, help="Publish bundles over their size budgets (listed as warnings).")
@click.option("--verify", "verify_after", is_flag=True, help="Re-read the published release afterwards, as `bosco "
              "verify -b BUILD` does (exit 1 listing every difference).")
@shared_options
def s3push(bundle: str | None, build_name: str, no_prompt: bool, dry_run: bool, as_json: bool, concurrency: int,
           force: bool, allow_dirty: bool, ignore_budgets: bool, verify_after: bool) -> None:
    """Run every build.command, build the asset set (minified) and publish it to aws.bucket under <env>/.

    BUNDLE limits the push to one tag (services without it are left alone). Nothing is uploaded
    when any service has a problem, or when objects of an already published build would change
    (unless --force).
    Compressible types are stored gzip-encoded at their key and brotli-encoded at <key>.br; objects
    already stored with the same SHA-256 are skipped, those of the previous release copied.
    """
    problems: list[str] = []
    with json_failure(as_json, problems):
        require_interactive(no_prompt or dry_run)
        state = setup()
        env = state.environment
        publish = publish_options(state, build_name, concurrency, bundle, force, f"/{env}")
        cache = compression_cache(state.config)
        if not state.config.get("aws.cdn"):
            ui.detail(f"aws.cdn is not set; fragments link root-relative /{env}/<key>")
        options = replace(publish_build_options(state, build_name, bundle, True, f"/{env}"), refuse_foreign=True)
        asset_set = build_published(state, options)
        print_problems(asset_set)
        from bosco.diff import current_release, diff_releases
        from bosco.publish.s3 import config_problems, s3_target  # boto3 costs 0.2 s of start-up: only here

        bucket = state.config.get("aws.bucket")
        config = config_problems(state.config, env)
        records, dirty = collect_provenance(asset_set, publish, strict=not allow_dirty) if not asset_set.errors \
            else ({}, [])
        problems += asset_set.errors + config + dirty
        require_problem_free(asset_set.errors, config + dirty,
                             f"s3://{bucket}/{env}/" if bucket else f"environment {env}",
                             environment_hint(state) if config else "fix the problems above and run again")
        target = s3_target(state.config, env, concurrency, print_retry)
        plan = plan_release(asset_set, target, publish, records)
        bundles = sum(1 for s in plan.steps if s.item.kind == "bundle" and s.item.key == s.item.asset_key)
        counts = plan.counts()
        released = {s.item.asset_key: len(s.item.data) for s in plan.steps}
        err.print(f"{ui.plural(len(plan.services), 'service')}, {ui.plural(bundles, 'bundle')}, "
                  f"{ui.plural(len(released), 'file')}, "
                  f"{sum(released.values()):,} bytes -> {target.description} "
                  f"({counts['upload']} objects to upload, {counts['copy']} to copy, {counts['skip']} unchanged; "
                  f"then {2 * len(plan.services)} release index files and index.html)", markup=False)
        sizes = bundle_sizes(asset_set, publish, state.config)
        after = local_diff_side(asset_set, publish, records, sizes, build_name)
        before = {n: current_release(st) for n, st in plan.services.items()}
        diff = diff_releases(before, after, {s.name: s.git for s in asset_set.services}, "current", build_name)
        print_diff(diff, err)
        over, violations = check_budgets(state, asset_set, sizes, before, build_name, ignore_budgets)
        problems += over
        require_problem_free([], over, target.description)
        extra = {"git": {n: r["git"] for n, r in records.items()}, "diff": diff, "budgets": violations,
                 "duplicates": [d.to_json() for d in asset_set.duplicates]}
        if dry_run:
            print_report(dry_run_report(plan, cache), as_json, extra)
            return
        if not no_prompt:
            confirm(f"Are you sure you want to publish build {build_name} in {env} (y/N)?")
        with cache:
            report = run_with_progress(plan, target, cache)
        checked = run_verify(state, target, publish, build_name) if verify_after else None
        if checked is not None:
            extra["verify"] = checked.to_json()
        print_report(report, as_json, extra)
        if checked is not None:
            require_verified(checked, as_json=False)


def run_verify(state: Setup, target: Any, publish: PublishOptions, build: str | None) -> Any:
    """``publish.audit.verify`` of ``build`` (None: the current releases) on ``target``, through
    ``aws.cdn`` too when it is set; a progress line on stderr."""
    from bosco.publish.audit import verify

    cdn = state.config.get("aws.cdn")
    err.print(f"verifying {'build ' + build if build else 'the current releases'} in {target.description}"
              + (f" and through {cdn}" if cdn else ""), markup=False)
    return verify(target, target.fetch, publish, build, published_base(state, "") if cdn else None,
                  publish.concurrency)


def require_verified(report: Any, as_json: bool) -> None:
    """Print ``report`` (``audit.VerifyReport``; as JSON with ``as_json``) and raise ``PublishError``
    (exit 1) listing the number of differences when there is any."""
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    for line in report.differences:
        err.print(f"[red]difference:[/] {escape(redact(line))}", highlight=False)
    if not report.ok:
        count = ui.plural(len(report.differences), "difference")
        raise PublishError(f"{count} between {', '.join(report.releases)} and their release indexes",
                           "publish the build again (--force replaces changed objects)")
    checked, releases = ui.plural(report.checked, "object"), ui.plural(len(report.releases), "release")
    err.print(f"[green]verified[/] {checked} of {releases}: {escape(', '.join(report.releases))}", highlight=False)


@cli.command("verify", short_help="Re-read a published release and compare it with its release index.")
@click.option("--build", "-b", "build_name", callback=lambda c, p, v: _segment(v, "--build"),
              help="Build to verify in every service that has it (default: each service's current release).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=DEFAULT_CONCURRENCY,
              help="Objects read at the same time.")
@shared_options
def verify_command(build_name: str | None, as_json: bool, concurrency: int) -> None:
    """Check that every object of a published release exists, decodes (gzip at the key, brotli at
    <key>.br) to the SHA-256 its release.json records, and has its content type and cache control;
    also through aws.cdn over HTTP when it is set. Exits 1 listing every difference."""
    from bosco.publish.s3 import s3_target  # boto3 costs 0.2 s of start-up: only here

    with json_failure(as_json, []):
        state = setup(need_services=False)
        target = s3_target(state.config, state.environment, concurrency, print_retry)
        publish = publish_options(state, build_name or DEFAULT_BUILD, concurrency, None, False,
                                  f"/{state.environment}")
        report = run_verify(state, target, publish, build_name)
    require_verified(report, as_json)


def bundle_sizes(asset_set: AssetSet, publish: PublishOptions, config: Config) -> dict[str, dict[str, int]]:
    """Raw/gzip/brotli bytes of every bundle ``publish`` releases, compressed through the compression
    cache (a later push reuses the bodies)."""
    from bosco.sizes import compressed_sizes

    with compression_cache(config) as cache:
        return compressed_sizes([o for o in released_outputs(asset_set, publish) if o.kind == "bundle"], cache)


def local_diff_side(asset_set: AssetSet, publish: PublishOptions, records: dict[str, Any],
                    sizes: dict[str, dict[str, int]], label: str) -> dict[str, Any]:
    """The services ``publish`` releases, as release indexes of the local build (``label``)."""
    from bosco.diff import local_indexes

    outputs = released_outputs(asset_set, publish)
    names = [s.name for s in asset_set.services if s.name in {o.service for o in outputs}]
    return local_indexes(names, outputs, records, sizes, label)


def check_budgets(state: Setup, asset_set: AssetSet, sizes: dict[str, dict[str, int]],
                  previous: dict[str, Any], build: str, ignore: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The size budgets (README "Size budgets") of the measured bundles: returns (problems, the
    violations as JSON). Violations are problems unless ``ignore`` (--ignore-budgets): then
    warnings. Invalid manifest budgets are always problems."""
    from bosco import budgets

    rules, problems = budgets.rules_for(state.config.get("budgets"),
                                        lambda key: state.config.origin(f"budgets.{key}" if key else "budgets"),
                                        [(s.name, Path(s.path)) for s in asset_set.services])
    violations = budgets.evaluate(asset_set, rules, sizes, previous, build)
    lines = [f"over budget: {v.describe()}" for v in violations]
    if ignore:
        for line in lines:
            ui.warning(f"{line} (--ignore-budgets)")
        lines = []
    return problems + [f"{line} (--ignore-budgets publishes anyway)" for line in lines], \
        [v.to_json() for v in violations]


def has_budgets(state: Setup) -> bool:
    """True when the configuration or a selected manifest has a ``budgets`` key (sizes are needed)."""
    from bosco.jsonfile import load_json

    def declares(service: Service) -> bool:
        try:
            return "budgets" in load_json(service.path / "bosco-service.json", BoscoError, "")
        except (BoscoError, TypeError):
            return False

    return state.config.get("budgets") is not None or any(declares(s) for s in state.services)


def print_diff(diff: dict[str, Any], console: Console) -> None:
    """``bosco.diff.describe`` lines: changed services in bold, additions green, removals red."""
    from bosco.diff import describe

    for line in describe(diff):
        style = "bold" if not line.startswith(" ") else "green" if line.startswith("  +") else \
            "red" if line.startswith("  -") else None
        console.print(Text(line, style=style or ""), highlight=False)


@cli.command("diff", short_help="Show what changed between two releases (sizes, files, sources, commits).")
@click.option("--from", "from_build", metavar="BUILD|local", callback=lambda c, p, v: _segment(v, "--from"),
              help="Release to compare from (default: each service's current release in releases.json).")
@click.option("--to", "to_build", metavar="BUILD|local", default="local", show_default=True,
              callback=lambda c, p, v: _segment(v, "--to"),
              help="Release to compare to; `local` builds the workspace as s3push would.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as one JSON object on stdout.")
@shared_options
def diff_command(from_build: str | None, to_build: str, as_json: bool) -> None:
    """Show what changed between two releases of the selected services: bundles added, removed or
    changed with raw/gzip/brotli bytes before and after, files and source files, and the git
    commits between them. Unchanged services take one line."""
    if from_build == to_build:
        raise click.BadParameter("--from and --to name the same release", param_hint="--to")
    with json_failure(as_json, []):
        _diff(from_build, to_build, as_json)


def _diff(from_build: str | None, to_build: str, as_json: bool) -> None:
    from bosco.diff import diff_releases, read_release
    from bosco.provenance import collect
    from bosco.publish.s3 import s3_target  # boto3 costs 0.2 s of start-up: only here

    state = setup()
    env = state.environment
    target = s3_target(state.config, env, DEFAULT_CONCURRENCY, print_retry)
    repos: dict[str, Any] = {}
    local: dict[str, Any] = {}
    if "local" in (from_build, to_build):
        publish = publish_options(state, DEFAULT_BUILD, DEFAULT_CONCURRENCY, None, False, f"/{env}")
        asset_set = build_published(state, publish_build_options(state, DEFAULT_BUILD, None, True, f"/{env}"))
        print_problems(asset_set)
        if asset_set.errors:
            raise BoscoError(f"{ui.plural(len(asset_set.errors), 'error')} in the local build; nothing to compare",
                             "fix the errors above and run again")
        found = collect(asset_set.services, released_outputs(asset_set, publish))
        records = {n: p.record() for n, p in found.items()}
        repos = {s.name: s.git for s in asset_set.services}
        local = local_diff_side(asset_set, publish, records, bundle_sizes(asset_set, publish, state.config), "local")
    names = [s.name for s in state.services]
    if not repos:  # two published releases: the local repositories still name the commits between them
        from bosco.gitinfo import repo_info

        repos = {s.name: repo_info(s.path) for s in state.services}

    def side(build: str | None) -> dict[str, Any]:
        return local if build == "local" else {n: read_release(target, n, build) for n in names}

    diff = diff_releases(side(from_build), side(to_build), repos, from_build or "current", to_build)
    if as_json:
        click.echo(json.dumps({"ok": True, **diff}, indent=2))
    else:
        print_diff(diff, out)


@cli.command("s3delete", short_help="Delete exactly the objects of one published release.")
@click.argument("release", metavar="SERVICE/BUILD | BUILD", callback=lambda c, p, v: _release(v))
@click.option("--no-prompt", "-n", is_flag=True, help="Delete without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="List the objects that would be deleted; change nothing.")
@click.option("--force", is_flag=True, help="Also delete the release that releases.json marks as current.")
@click.option("--json", "as_json", is_flag=True, help="Print the deleted keys as JSON on stdout.")
@shared_options
def s3delete(release: str, no_prompt: bool, dry_run: bool, force: bool, as_json: bool) -> None:
    """Delete exactly the objects of one release: <env>/<service>/<build>/ (a build of every
    selected service when only BUILD is given)."""
    with json_failure(as_json, []):
        _s3delete(release, no_prompt, dry_run, force, as_json)


def _s3delete(release: str, no_prompt: bool, dry_run: bool, force: bool, as_json: bool) -> None:
    require_interactive(no_prompt or dry_run)
    service, _, build = release.rpartition("/")
    state = setup(need_services=not service)  # SERVICE/BUILD needs no workspace: the service may be gone
    names = [service] if service else [s.name for s in state.services]
    from bosco.publish.s3 import config_problems, s3_target  # boto3 costs 0.2 s of start-up: only here

    missing = config_problems(state.config, state.environment)
    if missing:
        raise PublishError(missing[0], environment_hint(state))
    target = s3_target(state.config, state.environment, DEFAULT_CONCURRENCY, print_retry)
    plans = [p for p in (plan_delete(target, n, build) for n in names) if p.keys]
    if not plans:
        raise PublishError(f"no objects found for {release} in {target.description}",
                           "check the build name and -e; keys are <env>/<service>/<build>/")
    refuse_current(plans, force)  # before asking
    total = sum(len(p.keys) for p in plans)
    err.print(f"{total} objects in {ui.plural(len(plans), 'release')} of {target.description}: "
              + ", ".join(f"{p.service}/{p.build} ({len(p.keys)})" for p in plans), markup=False)
    deleted: list[str] = []
    if not dry_run:
        if not no_prompt:
            confirm(f"Are you sure you want to delete {total} objects of {release} in {state.environment} (y/N)?")
        options = publish_options(state, build, DEFAULT_CONCURRENCY, None, force, f"/{state.environment}")
        with compression_cache(state.config) as cache:
            deleted = delete_releases(target, plans, options, cache, force)
    keys = deleted if not dry_run else [k for p in plans for k in p.keys]
    if as_json:
        click.echo(json.dumps({"ok": True, "target": target.description, "dry_run": dry_run, "deleted": keys},
                              indent=2))
    else:
        for key in keys:
            out.print(key, markup=False, highlight=False)
    err.print(f"[green]{'would delete' if dry_run else 'deleted'}[/] {len(keys)} objects")


@cli.group("cache", short_help="Show or trim the local and shared caches.")
def cache_group() -> None:
    """Show or trim bosco's caches: the local folder and the shared store (cache.remote)."""


def _cache_rows(title: str, rows: list[Any]) -> Table:
    table = Table(title=title, box=box.SIMPLE)
    for column in ("folder", "entries", "MB", ""):
        table.add_column(column, justify="left" if column in ("folder", "") else "right")
    for row in rows:
        table.add_row(row.name, str(row.entries), f"{row.bytes / 1e6:.1f}", "current" if row.current else "old")
    return table


def _remote_cache(state: Setup) -> Any:
    from bosco.cache import remote

    store = remote()
    if store is None:
        raise BoscoError("cache.remote is not set, so there is no shared cache",
                         'set e.g. "cache": {"remote": "s3://my-bucket/bosco-cache"} in .bosco/bosco.json')
    return store


@cache_group.command("stats")
@click.option("--remote", "use_remote", is_flag=True, help="Also list the shared cache (cache.remote).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@shared_options
def cache_stats(use_remote: bool, as_json: bool) -> None:
    """Entries and size of each cache folder (one per bosco code version)."""
    from bosco.cache import cache_root, local_stats

    state = setup(need_services=False)
    local = local_stats()
    shared = _call_remote(lambda: _remote_cache(state).stats()) if use_remote else None
    if as_json:
        click.echo(json.dumps({"local": {"folder": str(cache_root()), "folders": [vars(r) for r in local]},
                               **({"remote": {"url": _remote_cache(state).url, "folders": [vars(r) for r in shared]}}
                                  if shared is not None else {})}, indent=2))
        return
    out.print(_cache_rows(f"local cache {cache_root()} (cache.maxsize {state.config.get('cache.maxsize')} MB)",
                          local))
    if shared is not None:
        out.print(_cache_rows(f"shared cache {_remote_cache(state).url}", shared))


def _call_remote(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except BoscoError:
        raise
    except Exception as exc:  # botocore's errors: one line naming the store
        raise PublishError(f"cannot read the shared cache: {redact(str(exc))}",
                           "check cache.remote, aws.endpoint and the AWS credentials") from exc


@cache_group.command("prune")
@click.option("--remote", "use_remote", is_flag=True, help="Also delete the shared cache's entries of other "
              "bosco versions.")
@shared_options
def cache_prune(use_remote: bool) -> None:
    """Delete the entries of other bosco code versions and trim the local folder to cache.maxsize MB."""
    from bosco.cache import prune_local

    state = setup(need_services=False)
    freed = prune_local(int(state.config.get("cache.maxsize")))
    err.print(f"[green]local:[/] deleted {freed / 1e6:.1f} MB")
    if use_remote:
        store = _remote_cache(state)
        freed = _call_remote(store.prune)
        err.print(f"[green]shared:[/] deleted {freed / 1e6:.1f} MB of {escape(store.url)}")


@cli.command("config", short_help="Print the resolved configuration (secrets masked) and its files.")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved configuration as JSON.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on configuration keys bosco does not read.")
@shared_options
def config_command(as_json: bool, strict: bool) -> None:
    """Print the resolved configuration (secrets masked) and the files it came from.

    One ``key = value  # origin`` line per value: the file, BOSCO_* variable or option that set it,
    or ``default``."""
    state = setup(need_services=False, strict=strict)
    values = state.config.masked()
    if as_json:
        out.print_json(json.dumps(values))
        return
    err.print(f"workspace: {state.root}   environment: {state.environment}")
    for source in state.config.sources:
        err.print(f"  read {source}")
    for dotted, value in _flatten(values):
        out.print(f"{dotted} = {json.dumps(value)}  # {_origin(state.config, dotted)}", markup=False)


def _origin(config: Config, dotted: str) -> str:
    """The file, variable or option that set ``dotted`` (a list entry: the list's), else ``default``."""
    key = dotted.split("[", 1)[0]  # a list is set as a whole: its entries come from where the list does
    return config.origins.get(dotted) or config.origins.get(key) or "default"


def _flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` rows: objects open into ``a.b``, lists holding objects or lists into
    ``a[0].b``; other lists and scalars are one row."""
    if isinstance(node, dict) and node:
        return [item for k, v in node.items() for item in _flatten(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        return [item for i, v in enumerate(node) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, node)]


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of bosco-service.json (for editors)."""
    from bosco import docs

    click.echo(docs.schema(), nl=False)


@cli.command("docs")
@click.argument("topic", required=False)
def docs_command(topic: str | None) -> None:
    """Print a page of bosco's reference (manifest, configuration, ...)."""
    from bosco import docs

    if topic is None:
        for name, summary in docs.TOPICS.items():
            out.print(f"{name:<14} {summary}", markup=False)
        return
    try:
        click.echo(docs.page(topic), nl=False)
    except KeyError:
        raise click.BadParameter(f"{topic!r} is not a page; pages: {', '.join(docs.TOPICS)}",
                                 param_hint="TOPIC") from None


def main() -> None:
    """Console-script entry point: SIGTERM stops a command as Ctrl-C does; once a command was
    stopped, the process ends without waiting for threads blocked in a system call."""
    stopping.handle_signals()
    try:
        cli(prog_name="bosco")
    except SystemExit as exc:
        if stopping.stopping():
            stopping.exit_after_stop(exc.code if isinstance(exc.code, int) else 1)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
