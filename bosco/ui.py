"""Every line a user sees: the two consoles and one wording per kind of line.

Results go to stdout (``out``), messages to stderr (``err``). Three renderings: human (rich
markup and colours; progress bars only on a terminal), quiet (``-q``: only errors and results), and
verbose (``-v``: also details that need no action and build output). ``--json`` results are printed
by the commands on stdout as one JSON object. Paths are never hard-wrapped (``soft_wrap``).
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from bosco.redact import redact

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
_always = Console(stderr=True, highlight=False, soft_wrap=True)  # errors: shown even with -q


class Mode:
    """The rendering chosen on the command line: ``quiet`` (``-q``), ``verbose`` (``-v``) and
    ``traceback`` (``--traceback``: a Python traceback with an error)."""

    quiet = False
    verbose = False
    traceback = False


mode = Mode()


def configure(quiet: bool | None = None, verbose: bool | None = None, traceback: bool | None = None) -> None:
    """Set the rendering (None leaves a setting as it is); ``quiet`` silences ``err`` but errors."""
    if quiet is not None:
        mode.quiet = err.quiet = quiet
    if verbose is not None:
        mode.verbose = verbose
    if traceback is not None:
        mode.traceback = traceback


def plural(count: int, word: str) -> str:
    """``"1 error"``, ``"2 errors"``: the one wording for counts."""
    return f"{count} {word}{'' if count == 1 else 's'}"


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
