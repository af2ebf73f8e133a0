"""External build commands: one-shot ``build.command`` and long-running ``build.watch.command``
(cwd = the service repo; docs/manifest.md, "Build commands")."""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bosco.config import BuildSection
from bosco.errors import BuildCommandError
from bosco.manifest import BuildSpec

TAIL_LINES = 20
DEFAULT_TIMEOUT_MS = BuildSection.timeout  # build.timeout when neither the manifest nor the config sets it
STOP_GRACE = 1.0  # seconds a stopped process group gets between SIGTERM and SIGKILL

_running: set[subprocess.Popen[bytes]] = set()  # build commands running now (stop_all ends them)
_running_lock = threading.Lock()


def describe(command: str | tuple[str, ...]) -> str:
    """The command as one readable line."""
    return command if isinstance(command, str) else " ".join(command)


def stop_groups(procs: list[subprocess.Popen[bytes]], grace: float = STOP_GRACE) -> None:
    """End the process group of each of ``procs`` still running (each started with
    ``start_new_session``): SIGTERM to every group, then SIGKILL to each group after ``grace``
    seconds (its leader may have exited while children it started still run)."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_all(grace: float = STOP_GRACE) -> None:
    """End every running ``build.command`` process group (Ctrl-C, SIGTERM): see ``stop_groups``."""
    with _running_lock:
        procs = list(_running)
    stop_groups(procs, grace)


def _tail(output: bytes) -> str:
    lines = output.decode("utf-8", "replace").rstrip().splitlines()[-TAIL_LINES:]
    return "".join(f"\n{line}" for line in lines)


def run_build_command(repo: Path, spec: BuildSpec, default_timeout_ms: int = DEFAULT_TIMEOUT_MS) -> str:
    """Run ``spec.command`` in ``repo`` (a string through the shell, a list as argv) in its own
    process group and return its combined output.

    The command may run ``spec.command_timeout_ms`` (else ``default_timeout_ms``) milliseconds;
    then its whole process group is stopped (SIGTERM, SIGKILL after ``STOP_GRACE`` s). Raises
    ``BuildCommandError`` with the exit code (or the timeout) and the last 20 output lines, or the
    reason when it cannot start. Any other exception while it runs (Ctrl-C) stops the group too."""
    assert spec.command is not None
    from bosco.stopping import interrupts_deferred

    timeout_ms = spec.command_timeout_ms or default_timeout_ms
    try:
        with interrupts_deferred():  # a Ctrl-C as it starts still finds it in ``_running``
            proc = subprocess.Popen(
                spec.command,
                cwd=repo,
                shell=isinstance(spec.command, str),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            with _running_lock:
                _running.add(proc)
    except OSError as exc:
        raise BuildCommandError(
            f"build command `{describe(spec.command)}` could not start: {exc.strerror}",
            f"fix build.command in {repo / 'bosco-service.json'}",
        ) from exc
    try:
        output, _ = proc.communicate(timeout=timeout_ms / 1000)
    except subprocess.TimeoutExpired as expired:
        stop_groups([proc])
        try:  # what the command printed, unless a process that left its group still holds the pipe
            output, _ = proc.communicate(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired as again:
            output = again.output or expired.output or b""
        raise BuildCommandError(
            f"build command `{describe(spec.command)}` timed out after {timeout_ms / 1000:g} s" + _tail(output),
            f"find out why it does not end by running it in {repo}, or raise build.timeout (ms) in "
            f"{repo / 'bosco-service.json'} or the configuration",
        ) from None
    except BaseException:
        stop_groups([proc])
        raise
    finally:
        with _running_lock:
            _running.discard(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    if proc.returncode != 0:
        raise BuildCommandError(
            f"build command `{describe(spec.command)}` failed with exit code {proc.returncode}" + _tail(output),
            f"run it in {repo} to see the full output",
        )
    return output.decode("utf-8", "replace")


# CSI sequences (colours, cursor moves), OSC sequences (titles, links) and two-byte escapes, as
# terminals interpret them (ECMA-48); what is left is the text a person reads.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
OUTPUT_TAIL = 65536  # characters of unmatched output kept while looking for the ready text


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves, OSC titles and links)."""
    return ANSI_ESCAPE.sub("", text)


class ReadyDetector:
    """Finds ``ready`` in a stream of output chunks, ANSI codes stripped, across chunk boundaries.

    ``feed(chunk)`` returns how many new occurrences the accumulated output now completes; text up
    to the end of a match is consumed, so each occurrence counts once."""

    def __init__(self, ready: str) -> None:
        self.ready = ready
        self._pending = ""

    def feed(self, chunk: str) -> int:
        self._pending += chunk
        cut = self._pending.rfind("\x1b", -32)
        if cut >= 0 and not ANSI_ESCAPE.match(self._pending, cut):  # continues in the next chunk
            head, tail = self._pending[:cut], self._pending[cut:]
        else:
            head, tail = self._pending, ""
        clean = strip_ansi(head)
        count = 0
        start = clean.find(self.ready)
        while start >= 0:
            count += 1
            clean = clean[start + len(self.ready):]
            start = clean.find(self.ready)
        self._pending = (clean + tail)[-OUTPUT_TAIL:]
        return count


class WatchCommand:
    """One service's long-running ``build.watch.command``, supervised in a thread.

    The command runs in ``repo`` in its own process group (a string through the shell, a list as
    argv). ``on_output(line)`` gets each output line with ANSI codes kept; ``on_ready()`` is called
    for every occurrence of ``spec.ready`` in the output (ANSI stripped, split chunks joined);
    ``on_problem(message)`` reports a start failure, an exit (the command is restarted after a
    backoff that doubles from ``backoff`` up to ``max_backoff`` seconds, reset by a ready) and a
    first ready not seen within ``spec.timeout_ms``. ``stop()`` ends the whole process group
    (SIGTERM, then SIGKILL after ``grace`` seconds)."""

    def __init__(
        self,
        service: str,
        repo: Path,
        spec: BuildSpec,
        on_ready: Callable[[], None],
        on_problem: Callable[[str], None],
        on_output: Callable[[str], None] | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        grace: float = 3.0,
    ) -> None:
        assert spec.watch_command is not None
        self.service, self.repo, self.spec = service, repo, spec
        self.on_ready, self.on_problem, self.on_output = on_ready, on_problem, on_output
        self.backoff, self.max_backoff, self.grace = backoff, max_backoff, grace
        self.starts = 0
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name=f"watch-build-{service}", daemon=True)

    @property
    def command(self) -> str:
        return describe(self.spec.watch_command or "")

    def start(self) -> WatchCommand:
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            try:
                self._proc = subprocess.Popen(
                    self.spec.watch_command,  # type: ignore[arg-type]
                    cwd=self.repo,
                    shell=isinstance(self.spec.watch_command, str),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                self.on_problem(f"watch build `{self.command}` could not start: {exc.strerror}")
                return None
            self.starts += 1
            return self._proc

    def _supervise(self) -> None:
        delay = self.backoff
        while not self._stopping.is_set():
            proc = self._spawn()
            seen_ready = self._pump(proc) if proc else False
            if self._stopping.is_set():
                return
            delay = self.backoff if seen_ready else delay
            if proc:
                self.on_problem(f"watch build `{self.command}` exited with code {proc.wait()}; "
                                f"restarting in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)

    def _pump(self, proc: subprocess.Popen[bytes]) -> bool:
        """Read ``proc``'s output until it closes; True when ready was seen."""
        assert proc.stdout is not None
        seen = threading.Event()
        timer = threading.Timer(self.spec.timeout_ms / 1000, self._timed_out, (seen,))
        timer.daemon = True
        timer.start()
        detector = ReadyDetector(self.spec.ready)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        line = ""
        fd = proc.stdout.fileno()
        try:
            while chunk := os.read(fd, 65536):
                text = decoder.decode(chunk)
                if self.on_output:
                    line += text
                    *lines, line = line.split("\n")
                    for complete in lines:
                        self.on_output(complete.rstrip("\r"))
                for _ in range(detector.feed(text)):
                    seen.set()
                    if not self._stopping.is_set():
                        self.on_ready()
        finally:
            timer.cancel()
            proc.stdout.close()
        if self.on_output and line:
            self.on_output(line.rstrip("\r"))
        return seen.is_set()

    def _timed_out(self, seen: threading.Event) -> None:
        if not seen.is_set() and not self._stopping.is_set():
            self.on_problem(f"watch build `{self.command}` did not print {self.spec.ready!r} within "
                            f"{self.spec.timeout_ms} ms")

    def stop(self) -> None:
        """End the process group and the supervisor thread (idempotent)."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None:
            stop_groups([proc], self.grace)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.grace + 5)
