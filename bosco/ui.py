"""Every line a user sees: the one reporter of the command line and the rendering of every result.

Results go to stdout (``out``), messages to stderr (``err``). Three renderings: human (rich
markup and colours; progress bars only on a terminal), ``--json`` (a result is one JSON object on
stdout; ``bosco cdn --json`` prints one JSON object per event and line) and quiet (``-q``: only
errors and results); ``-v`` adds details that need no action and build output, ``--traceback`` the
Python traceback of an error. Secrets are masked in every message (``bosco.redact``). Paths are
never hard-wrapped (``soft_wrap``).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.text import Text

from bosco import app
from bosco.app import plural
from bosco.errors import BoscoError, Cancelled
from bosco.redact import redact

if TYPE_CHECKING:  # progress bars, tables and the verify report load when first shown
    from rich.table import Table

    from bosco.publish.audit import VerifyReport

# emoji=False: names, paths and patterns are printed as typed (rich would turn "a:fire:.js" into an
# emoji, and loads its table of emoji codes for the first line printed)
err = RichConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = RichConsole(highlight=False, soft_wrap=True, emoji=False)
_always = RichConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # errors: shown even with -q
__all__ = ["Console", "configure", "detail", "err", "error", "mode", "out", "plural", "show", "warning"]


class Mode:
    """The rendering chosen on the command line: ``quiet`` (``-q``), ``verbose`` (``-v``),
    ``traceback`` (``--traceback``: a Python traceback with an error) and ``json`` (``--json``)."""

    quiet = False
    verbose = False
    traceback = False
    json = False
    shown = False  # a result was printed on stdout (with --json, a failure adds no second object)


mode = Mode()


def configure(quiet: bool | None = None, verbose: bool | None = None, traceback: bool | None = None,
              as_json: bool | None = None) -> None:
    """Set the rendering (None leaves a setting as it is); ``quiet`` silences ``err`` but errors."""
    if quiet is not None:
        mode.quiet = err.quiet = quiet
    if verbose is not None:
        mode.verbose = verbose
    if traceback is not None:
        mode.traceback = traceback
    if as_json is not None:
        mode.json, mode.shown = as_json, False


def warning(text: str) -> None:
    """A problem that does not stop the command (hidden with ``-q``)."""
    err.print(f"[yellow]warning:[/] {escape(redact(text))}")


def error(text: str, hint: str | None = None) -> None:
    """A problem that fails the command, with what to do about it; shown even with ``-q``."""
    _always.print(f"[bold red]error:[/] {escape(redact(text))}")
    if hint:
        _always.print(f"[dim]hint: {escape(redact(hint))}[/]")


def detail(text: str) -> None:
    """Information that needs no action: shown only with ``-v``."""
    if mode.verbose:
        err.print(f"[dim]detail: {escape(redact(text))}[/]")


def traceback_text(text: str) -> None:
    """A Python traceback (``--traceback``), secrets masked, shown even with ``-q``."""
    _always.print(redact(text), markup=False)


def failure(exc: BoscoError, traceback: str) -> None:
    """A command failed with ``exc``: a declined confirmation is one yellow line; else its traceback
    (``--traceback``), with ``--json`` one ``{"ok": false, "errors", "hint"}`` object on stdout
    (every problem found, then the error) and the red line with its hint."""
    hint = exc.hint
    if isinstance(exc, Cancelled):
        err.print(f"[yellow]cancelled[/]: {escape(str(exc).removeprefix('cancelled: '))}")
        return
    if mode.traceback:
        traceback_text(traceback)
    if mode.json and not mode.shown:
        errors = [redact(e) for e in [*getattr(exc, "problems", []), str(exc)]]
        click.echo(json.dumps({"ok": False, "errors": errors, "hint": hint and redact(hint)}, indent=2))
    error(str(exc), hint)


class Console(app.Reporter):
    """The reporter of the command line: renders what a use case tells as ``mode`` says. ``ask``
    False (``-n``, ``--dry-run``) answers every confirmation yes without asking; with ``ask``, raises
    ``BoscoError`` when stdin is not a terminal (a confirmation would hang)."""

    def __init__(self, ask: bool = False) -> None:
        if ask and not sys.stdin.isatty():
            raise BoscoError("stdin is not a terminal, so the confirmation cannot be asked",
                             "pass -n to run without confirmation")
        self.ask = ask
        self._lock = threading.Lock()

    def detail(self, text: str) -> None:
        detail(text)

    def warning(self, text: str) -> None:
        warning(text)

    def error(self, text: str) -> None:
        error(text)

    def status(self, text: str) -> None:
        err.print(redact(text), markup=False)

    def retry(self, text: str) -> None:
        err.print(f"[yellow]retry:[/] {escape(redact(text))}")

    def changes(self, diff: dict[str, Any]) -> None:
        print_diff(diff, err)

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[str], None]]:
        """A transient progress bar on stderr (label, bar, done/total, description, elapsed time),
        only on a terminal: elsewhere (CI logs, pipes) it would leave an empty line and nothing else
        (and rich's progress module is not even imported: ``bosco cdn`` builds its first answer meanwhile)."""
        if not err.is_terminal:
            yield lambda description: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("", total=total)
            yield lambda description: bar.update(task, advance=1, description=description)

    def confirm(self, question: str) -> bool:
        return not self.ask or click.confirm(question, default=False, err=True, show_default=False, prompt_suffix=" ")

    def output(self, service: str, line: str) -> None:
        if mode.verbose:  # a watch build's output line, its colours kept
            err.print(Text.assemble((f"{service} | ", "dim"), Text.from_ansi(line)))

    def event(self, name: str, **fields: Any) -> None:
        """A ``bosco cdn`` event: its human line on stderr and, with ``--json``, one JSON line on stdout
        (flushed at once: a reader follows the stream)."""
        trace = fields.pop("traceback", None)
        _EVENTS.get(name, lambda **_: None)(**fields)
        if name == "problem" and fields.get("hint"):
            if mode.traceback and trace:
                traceback_text(trace)
            error(fields["message"], fields.pop("hint"))
        if mode.json:
            with self._lock:
                click.echo(json.dumps({"event": name, **fields}))
                sys.stdout.flush()


def _serving(url: str, services: list[str], assets: int, minified: bool, **_: Any) -> None:
    err.print(f"[green]serving[/] {plural(len(services), 'service')}, {plural(assets, 'asset')} "
              f"({'minified bundles' if minified else 'source files'})")
    if not mode.json:
        out.print(url, markup=False)


def _rebuild(service: str, ok: bool, changed: list[str], removed: list[str], reasons: list[str], errors: list[str],
             ms: float, recovered: bool) -> None:
    """One terminal line per rebuild: service, what changed, time taken."""
    if not ok:  # an error: shown even with -q
        _always.print(f"[red]{escape(service)}: rebuild failed[/] in {ms:.0f} ms: {escape(redact(errors[0]))}")
        return
    keys = [*changed, *(f"-{k}" for k in removed)]
    what = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "") if keys else "no change"
    cause = ", ".join(reasons[:2]) + (" …" if len(reasons) > 2 else "")
    if recovered:
        err.print(f"[green]{escape(service)}: recovered[/] in {ms:.0f} ms ({escape(cause)}): {escape(what)}")
    else:
        err.print(f"[green]{escape(service)}[/]: {escape(what)} ({escape(cause)}) in {ms:.0f} ms")


def _problem(service: str | None, message: str, hint: str | None = None) -> None:
    if not hint:  # with a hint it is an error line (Console.event)
        err.print(f"[yellow]{escape(service + ': ' if service else '')}{escape(message)}[/]")


_EVENTS: dict[str, Callable[..., None]] = {
    "listening": lambda url: err.print(f"listening on {url} (Ctrl-C to stop)", markup=False),
    "serving": _serving,
    "watching": lambda services, livereload: err.print(f"[green]watching[/] {escape(', '.join(services))}"
                                                       + (" (live reload on)" if livereload else "")),
    "rebuild": _rebuild,
    "problem": _problem,
    "remote": lambda environment, online, status: err.print(status, markup=False),
    "stopped": lambda: err.print("stopped"),
}


def print_diff(diff: dict[str, Any], console: RichConsole) -> None:
    """``bosco.diff.describe`` lines: changed services in bold, additions green, removals red."""
    from bosco.diff import describe

    for line in describe(diff):
        style = "bold" if not line.startswith(" ") else "green" if line.startswith("  +") else \
            "red" if line.startswith("  -") else None
        console.print(Text(line, style=style or ""))


def _size(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _push(result: app.PushResult) -> None:
    """The bundle table and the totals line on stdout, then the verification."""
    from rich import box
    from rich.table import Table

    report = result.report
    if not mode.json:
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
    if result.verify is not None:
        _verified(result.verify)


def _verified(report: VerifyReport) -> None:
    """Every difference of a ``VerifyReport`` on stderr, or the count of what was verified."""
    for line in report.differences:
        err.print(f"[red]difference:[/] {escape(redact(line))}")
    if report.ok:
        checked, releases = plural(report.checked, "object"), plural(len(report.releases), "release")
        err.print(f"[green]verified[/] {checked} of {releases}: {escape(', '.join(report.releases))}")


def _built(result: app.BuildResult) -> None:
    err.print(f"[green]wrote[/] {result.written} files ({result.bytes:,} bytes), {result.unchanged} unchanged, "
              f"for {plural(len(result.services), 'service')} to {escape(str(result.out))}")


def _deleted(result: app.DeleteResult) -> None:
    if not mode.json:
        for key in result.deleted:
            out.print(key, markup=False)
    err.print(f"[green]{'would delete' if result.dry_run else 'deleted'}[/] {len(result.deleted)} objects")


def _diffed(result: app.DiffResult) -> None:
    if not mode.json:
        print_diff(result.diff, out)


def _configuration(report: app.ConfigReport) -> None:
    if not mode.json:
        err.print(f"workspace: {report.root}   environment: {report.environment}", markup=False)
        for source in report.sources:
            err.print(f"  read {source}", markup=False)
        for key, value, origin in report.rows:
            out.print(f"{key} = {json.dumps(value)}  # {origin}", markup=False)


def _cache_table(title: str, rows: list[Any]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=escape(title), box=box.SIMPLE)
    for column in ("folder", "entries", "MB", ""):
        table.add_column(column, justify="left" if column in ("folder", "") else "right")
    for row in rows:
        table.add_row(row.name, str(row.entries), f"{row.bytes / 1e6:.1f}", "current" if row.current else "old")
    return table


def _cache_stats(result: app.CacheStats) -> None:
    if not mode.json:
        out.print(_cache_table(f"local cache {result.folder} (cache.maxsize {result.maxsize} MB)", result.local))
        if result.remote is not None:
            out.print(_cache_table(f"shared cache {result.remote_url}", result.remote))


def _pruned(result: app.PruneResult) -> None:
    err.print(f"[green]local:[/] deleted {result.local / 1e6:.1f} MB")
    if result.remote is not None:
        err.print(f"[green]shared:[/] deleted {result.remote / 1e6:.1f} MB of {escape(str(result.remote_url))}")


_RESULTS: dict[str, Callable[[Any], None]] = {  # by class name: bosco.publish.audit loads only for a verify
    "BuildResult": _built, "PushResult": _push, "DeleteResult": _deleted, "DiffResult": _diffed,
    "CacheStats": _cache_stats, "PruneResult": _pruned, "VerifyReport": _verified, "ConfigReport": _configuration,
}


def show(result: Any) -> Any:
    """A use case's result: with ``--json`` its ``to_json()`` as one object on stdout, and its human
    rendering (lines on stderr in both modes, tables and lists on stdout without ``--json``).
    Returns ``result``."""
    if mode.json:
        click.echo(json.dumps(result.to_json(), indent=2))
        mode.shown = True
    _RESULTS[type(result).__name__](result)
    return result


def show_docs(topic: str | None) -> None:
    """``bosco docs``: the reference page ``topic`` (a key of ``bosco.docs.TOPICS``), else the list of pages."""
    from bosco import docs

    if topic is not None:
        click.echo(docs.page(topic), nl=False)
    for name, summary in docs.TOPICS.items() if topic is None else ():
        out.print(f"{name:<14} {summary}", markup=False)
