"""The ``bosco`` command line: click declarations, one ``bosco.app`` call per command, its result
rendered by ``bosco.ui`` (reference: docs/commands.md). Exit codes: 0 success, 1 failure, 2 usage.
Shared options work before and after the command name (the value after it wins) where they apply."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bosco import __version__, app, docs, stopping, ui
from bosco.assetset import segment_problem
from bosco.errors import BoscoError
from bosco.workspace import regex_problem

REPORTER = ui.Console()  # never asks: commands that confirm make their own


def _checked(problem: Callable[[str], str | None], option: str, parts: bool = False) -> Callable[..., Any]:
    """A click callback: a value (with ``parts``, each side of one ``/``) for which ``problem`` names a
    problem is a usage error (exit 2), reported before any configuration is read."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        values = [] if value is None else value.split("/", 1) if parts else [value]
        if problems := [p for v in values if (p := problem(v))]:
            raise click.BadParameter(problems[0], param_hint=option)
        return value
    return callback


SHARED = {  # the shared options by group: "where" on every command but schema and docs, "select" where services are
    "where": [click.option("--workspace", "-W", type=click.Path(file_okay=False, path_type=Path),
                           help="Workspace folder (default: nearest ancestor with .bosco/, else the current folder)."),
              click.option("--environment", "-e", callback=_checked(segment_problem, "--environment"),
                           help="Environment: first segment of published keys and selector of .bosco/<env>.json "
                           "(default: local)."),
              click.option("--verbose", "-v", is_flag=True, default=None,
                           help="Also show build output and details that need no action."),
              click.option("--quiet", "-q", is_flag=True, default=None, help="Show only errors (results on stdout)."),
              click.option("--traceback", is_flag=True, default=None, help="Show the Python traceback of an error.")],
    "select": [click.option("--repo", "-r", callback=_checked(regex_problem, "--repo"),
                            help="Only services whose name matches this regular expression."),
               click.option("--tag", "-t", help="Only services whose manifest tags include this tag."),
               click.option("--service", "-s", is_flag=True, default=None, help="Only the service you are in.")],
}
PARAMS = {p.name: (group, p) for group, options in SHARED.items()
          for p in (o(lambda: None).__click_params__[0] for o in options)}  # type: ignore[attr-defined]


def shared(*groups: str, result: str = "Print the result as one JSON object on stdout.") -> Callable[..., Any]:
    """Add ``--json`` (help text ``result``) and the shared options of ``groups`` (``where``: -W -e -v
    -q --traceback; ``select``: -r -t -s) to a command, merged with those given before its name
    (``ctx.obj``); one given before the name that the command does not take is a usage error."""
    names = [name for name, (group, _) in PARAMS.items() if group in groups]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = click.get_current_context().find_root().obj
            values.update({n: v for n in names if (v := kwargs.pop(n, None)) is not None})
            unused = ["/".join(PARAMS[n][1].opts) for n in values if n not in names]
            if unused:
                raise click.UsageError(f"{', '.join(unused)} does not apply to this command")
            ui.configure(quiet=bool(values.get("quiet")), verbose=bool(values.get("verbose")),
                         traceback=bool(values.get("traceback")), as_json=kwargs.pop("as_json"))
            return func(*args, **kwargs)

        for option in reversed([click.option("--json", "as_json", is_flag=True, help=result),
                                *(o for g in groups for o in SHARED[g])]):  # listed in this order by --help
            wrapper = option(wrapper)
        return wrapper

    return decorate


def workspace(**options: Any) -> app.Workspace:
    """``app.open_workspace`` with the shared options given (and ``options``)."""
    get = click.get_current_context().find_root().obj.get
    return app.open_workspace(get("workspace"), get("environment"), repo=get("repo"), service_tag=get("tag"),
                              current=Path.cwd() if get("service") else None, reporter=REPORTER, **options)


class BoscoGroup(click.Group):
    """A BoscoError is one red line and its hint (``ui.failure``), exit 1; Ctrl-C/SIGTERM exit 130."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` with each summary whole (click cuts them to fit one line)."""
        rows = [(name, command.get_short_help_str(limit=1_000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BoscoError as exc:
            ui.failure(exc, traceback.format_exc())
            ctx.exit(1)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bosco.stopping): no traceback, nothing left running
            stopping.stop_children()
            ui.err.print("[yellow]interrupted[/]")
            ctx.exit(stopping.INTERRUPTED)


@click.group(cls=BoscoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bosco")
@click.pass_context
def cli(ctx: click.Context, **kwargs: Any) -> None:
    """bosco: serve (cdn) and publish (build, s3push, s3delete) the static assets of a multi-repo workspace."""
    ctx.obj = {k: v for k, v in kwargs.items() if v is not None}  # the command's own ``shared`` applies them
    ui.configure(quiet=False, verbose=False, traceback=False, as_json=False)


cli.params += [param for _, param in PARAMS.values()]

BUILD = click.option("--build", "-b", "build", default=app.DEFAULT_BUILD, show_default=True,
                     callback=_checked(segment_problem, "--build"),
                     help="Build (release) identifier inside each service's keys.")
CONCURRENCY = click.option("--concurrency", type=click.IntRange(1, 256), default=app.DEFAULT_CONCURRENCY,
                           help=f"Objects sent or read at once, 1 to 256 (default: 8 per CPU, at most 32: "
                           f"{app.DEFAULT_CONCURRENCY} here).")


@cli.command(short_help="Serve every service's assets on a local pseudo-CDN (watch, live reload).")
@click.argument("mode", required=False, type=click.Choice(["minify"]))
@click.option("--minify", "minify_flag", is_flag=True, help="The same as MODE minify.")
@click.option("--host", help="Interface to listen on (default: cdn.host, 127.0.0.1).")
@click.option("--port", "-p", type=click.IntRange(0, 65535), help="Port (default: cdn.port, 7334).")
@click.option("--rebuild", is_flag=True, help="Run every build.command even when its assets exist.")
@click.option("--watch", "-w", "watch", metavar="REGEX", callback=_checked(regex_problem, "--watch"),
              help="Watch the services whose name matches REGEX and rebuild them on change (default: the "
              "service the current folder is in).")
@click.option("--livereload", is_flag=True,
              help="Make the fragments of watched services reload the page (or swap CSS) after a rebuild.")
@click.option("--remote", metavar="ENV", help="Also serve ENV's current published release of every service not "
              "served from the workspace, fetched from aws.cdn (else the bucket) and cached on disk.")
@shared("where", "select", result="Print one JSON object per event on stdout (one per line).")
def cdn(mode: str | None, minify_flag: bool, **options: Any) -> None:
    """Serve every service's assets from one local pseudo-CDN (build `local`).

    With MODE `minify` (or --minify), JS and CSS are served as minified bundles with source maps; otherwise each
    source file is served at its own key and the fragments list them one by one. With -w, watched
    services are rebuilt as their files change. With --json, stdout gets one JSON object per line
    for each event: listening, serving, watching, rebuild, problem, remote, stopped.
    """
    app.serve(workspace(), minify=mode == "minify" or minify_flag, reporter=REPORTER, **options)


@cli.command("build", short_help="Write the asset set s3push would publish into a folder (--out DIR).")
@click.argument("bundle_tag", metavar="[BUNDLE]", required=False)
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the asset set to (one file per asset key).")
@BUILD
@click.option("--no-minify", is_flag=True, help="Concatenate JS/CSS bundles without minifying.")
@click.option("--base-url", help="URL prefix for fragment links when aws.cdn is not configured "
              "(default: root-relative /<key>).")
@click.option("--force", is_flag=True, help="Replace files of an already written build (not `default`).")
@click.option("--ignore-budgets", is_flag=True, help="Write bundles over their size budgets (listed as warnings).")
@shared("where", "select")
def build_command(no_minify: bool, **options: Any) -> None:
    """Write the asset set that s3push would publish into a folder, through the same release code.

    BUNDLE limits bundles to one tag. Every build.command runs first. Fragment URLs use
    <aws.cdn>/<env>/<key> when aws.cdn is set, else --base-url, else /<key>. Files are stored
    uncompressed; unchanged files are not rewritten; each service's release index
    <service>/<build>/release.json is written last. Exits 1 (writing nothing) when any service has
    an error.
    """
    ui.show(app.build_to(workspace(), minify=not no_minify, reporter=REPORTER, **options))


@cli.command("s3push", short_help="Build the minified asset set and publish it to S3 under <env>/.")
@click.argument("bundle_tag", metavar="[BUNDLE]", required=False)
@BUILD
@click.option("--no-prompt", "-n", is_flag=True, help="Publish without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded, copied or skipped; change nothing.")
@CONCURRENCY
@click.option("--force", is_flag=True, help="Replace objects of an already published build (immutable unless "
              "the build is `default`).")
@click.option("--allow-dirty", is_flag=True, help="Publish files with uncommitted changes (their release records the "
              "dirty tree).")
@click.option("--ignore-budgets", is_flag=True, help="Publish bundles over their size budgets (listed as warnings).")
@click.option("--verify", "verify_after", is_flag=True, help="Re-read the published release afterwards, as `bosco "
              "verify -b BUILD` does (exit 1 listing every difference).")
@shared("where", "select")
def s3push(no_prompt: bool, **options: Any) -> None:
    """Run every build.command, build the asset set (minified) and publish it to aws.bucket under <env>/.

    BUNDLE limits the push to one tag (services without it are left alone). Nothing is uploaded
    when any service has a problem, or when objects of an already published build would change
    (unless --force).
    Compressible types are stored gzip-encoded at their key and brotli-encoded at <key>.br; objects
    already stored with the same SHA-256 are skipped, those of the previous release copied.
    """
    asking = ui.Console(ask=not (no_prompt or options["dry_run"]))  # before the configuration is read
    app.require_verified(ui.show(app.push(workspace(), reporter=asking, **options)).verify)


@cli.command("verify", short_help="Re-read a published release and compare it with its release index.")
@click.option("--build", "-b", "build", callback=_checked(segment_problem, "--build"),
              help="Build to verify in every service that has it (default: each service's current release).")
@CONCURRENCY
@shared("where")
def verify_command(**options: Any) -> None:
    """Check that every object of a published release exists, decodes (gzip at the key, brotli at
    <key>.br) to the SHA-256 its release.json records, and has its content type and cache control;
    also through aws.cdn over HTTP when it is set. Exits 1 listing every difference."""
    app.require_verified(ui.show(app.verify(workspace(), reporter=REPORTER, **options)))


@cli.command("diff", short_help="Show what changed between two releases (sizes, files, sources, commits).")
@click.option("--from", "from_build", metavar="BUILD|local", callback=_checked(segment_problem, "--from"),
              help="Release to compare from (default: each service's current release in releases.json).")
@click.option("--to", "to_build", metavar="BUILD|local", default="local", show_default=True,
              callback=_checked(segment_problem, "--to"),
              help="Release to compare to; `local` builds the workspace as s3push would.")
@shared("where", "select", result="Print the differences as one JSON object on stdout.")
def diff_command(from_build: str | None, to_build: str) -> None:
    """Show what changed between two releases of the selected services: bundles added, removed or
    changed with raw/gzip/brotli bytes before and after, files and source files, and the git
    commits between them. Unchanged services take one line."""
    if from_build == to_build:
        raise click.BadParameter("--from and --to name the same release", param_hint="--to")
    ui.show(app.diff(workspace(), from_build=from_build, to_build=to_build, reporter=REPORTER))


@cli.command("s3delete", short_help="Delete exactly the objects of one published release.")
@click.argument("release", metavar="SERVICE/BUILD | BUILD",
                callback=_checked(segment_problem, "SERVICE/BUILD | BUILD", parts=True))
@click.option("--no-prompt", "-n", is_flag=True, help="Delete without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="List the objects that would be deleted; change nothing.")
@click.option("--force", is_flag=True, help="Also delete the release that releases.json marks as current.")
@shared("where", "select", result="Print the deleted keys as JSON on stdout.")
def s3delete(release: str, no_prompt: bool, **options: Any) -> None:
    """Delete exactly the objects of one release: <env>/<service>/<build>/ (a build of every
    selected service when only BUILD is given)."""
    asking = ui.Console(ask=not (no_prompt or options["dry_run"]))  # before the configuration is read
    ui.show(app.delete(workspace(), release, reporter=asking, **options))


@cli.group("cache", short_help="Show or trim the local and shared caches.")
def cache_group() -> None:
    """Show or trim bosco's caches: the local folder and the shared store (cache.remote)."""


@cache_group.command("stats")
@click.option("--remote", is_flag=True, help="Also list the shared cache (cache.remote).")
@shared("where", result="Print the figures as JSON on stdout.")
def cache_stats(remote: bool) -> None:
    """Entries and size of each cache folder (one per bosco code version)."""
    ui.show(app.cache_stats(workspace(), remote=remote))


@cache_group.command("prune")
@click.option("--remote", is_flag=True, help="Also delete the shared cache's entries of other bosco versions.")
@shared("where", result="Print the bytes deleted as JSON on stdout.")
def cache_prune(remote: bool) -> None:
    """Delete the entries of other bosco code versions and trim the local folder to cache.maxsize MB."""
    ui.show(app.cache_prune(workspace(), remote=remote))


@cli.command("config", short_help="Print the resolved configuration (secrets masked) and its files.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on configuration keys bosco does not read.")
@shared("where", result="Print the resolved configuration as JSON.")
def config_command(strict: bool) -> None:
    """Print the resolved configuration (secrets masked) and the files it came from: one `key = value
    # origin` line per value (the file, BOSCO_* variable or option that set it, or `default`)."""
    ui.show(app.configuration(workspace(strict=strict)))


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of bosco-service.json (for editors)."""
    click.echo(docs.schema(), nl=False)


@cli.command("docs")
@click.argument("topic", required=False)
def docs_command(topic: str | None) -> None:
    """Print a page of bosco's reference (manifest, configuration, ...)."""
    if topic is not None and topic not in docs.TOPICS:
        raise click.BadParameter(f"{topic!r} is not a page; pages: {', '.join(docs.TOPICS)}", param_hint="TOPIC")
    ui.show_docs(topic)


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

