"""External build commands declared in ``build.command`` (one-shot; cwd = the service repo)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bosco.errors import BuildCommandError
from bosco.manifest import BuildSpec

TAIL_LINES = 20


def describe(command: str | tuple[str, ...]) -> str:
    """The command as one readable line."""
    return command if isinstance(command, str) else " ".join(command)


def run_build(repo: Path, spec: BuildSpec) -> str:
    """Run ``spec.command`` in ``repo`` (a string through the shell, a list as argv) and return its
    combined output. Raises ``BuildCommandError`` with the exit code and the last 20 output lines
    when it exits non-zero, or the reason when it cannot start."""
    assert spec.command is not None
    try:
        proc = subprocess.run(
            spec.command,
            cwd=repo,
            shell=isinstance(spec.command, str),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError as exc:
        raise BuildCommandError(
            f"build command `{describe(spec.command)}` could not start: {exc.strerror}",
            f"fix build.command in {repo / 'bosco-service.json'}",
        ) from exc
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(output.rstrip().splitlines()[-TAIL_LINES:])
        raise BuildCommandError(
            f"build command `{describe(spec.command)}` failed with exit code "
            f"{proc.returncode}" + (f"\n{tail}" if tail else ""),
            f"run it in {repo} to see the full output",
        )
    return output
