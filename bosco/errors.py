"""The bosco exception hierarchy: every error a user can cause is a BoscoError.

The CLI prints ``str(error)`` as one red line, then ``error.hint`` when set, and exits 1.
"""

from __future__ import annotations


class BoscoError(Exception):
    """Base of all user-facing errors.

    ``message`` names the file (and line/column for JSON) when there is one; ``hint`` says what to do.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(BoscoError):
    """A configuration file or option is invalid."""


class ManifestError(BoscoError):
    """A ``bosco-service.json`` is not valid JSON or does not follow docs/manifest.md.

    ``where`` names the offending key as the message shows it (``files.app.js[0]``), so the loader
    can add its line and column; None when the error is not about one key."""

    def __init__(self, message: str, hint: str | None = None, where: str | None = None) -> None:
        super().__init__(message, hint)
        self.where = where


class BuildCommandError(BoscoError):
    """A service's external ``build.command`` failed (non-zero exit or could not start)."""


class BundleError(BoscoError):
    """A bundle could not be produced (for example a minifier failure)."""


class PublishError(BoscoError):
    """Writing a release to its target failed."""


class ProblemsError(BoscoError):
    """The inputs of a build or publish have problems (a service error, a missing setting, a bundle
    over budget...): ``problems`` lists every one; nothing was published or written."""

    def __init__(self, message: str, hint: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.problems = list(problems or [])


class Cancelled(BoscoError):
    """A confirmation was declined: nothing changed."""


class InputFileError(BoscoError):
    """A file that an input names cannot be used: it resolves outside its service repository, is not a
    regular file (FIFO, socket, device, folder, broken symlink), cannot be read or decoded, or holds
    JSON nested too deeply. The message names the file; the file was not read (or not used)."""
