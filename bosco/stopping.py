"""Stopping bosco: Ctrl-C (SIGINT) and SIGTERM end every command promptly, with no traceback and no
process left behind.

``handle_signals()`` makes SIGTERM raise ``KeyboardInterrupt`` like Ctrl-C does, so one code path
stops the command; ``stop_children()`` ends what bosco started (``build.command`` process groups,
worker pools); ``exit_after_stop(code)`` ends the process without waiting for threads still blocked
in a system call (an S3 request, a build still starting), which Python cannot interrupt.
An interrupted command exits with ``INTERRUPTED`` (128 + SIGINT, the shell convention).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from bosco import commands

INTERRUPTED = 128 + signal.SIGINT

_stopping = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def handle_signals() -> None:
    """SIGTERM raises ``KeyboardInterrupt`` in the main thread, as SIGINT does (main thread only)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def stop_children() -> None:
    """End every running ``build.command`` process group and worker pool. Further SIGINT/SIGTERM
    are ignored from here on (the process is stopping; a second Ctrl-C must not interrupt the
    clean-up with a traceback)."""
    global _stopping
    _stopping = True
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    workers = sys.modules.get("bosco.workers")  # never imported: no pool was started
    if workers is not None:
        workers.stop_all()
    commands.stop_all()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back Ctrl-C/SIGTERM (main thread only) until the block ends, then raise
    ``KeyboardInterrupt``: a worker or build command is never left started but untracked (an
    interrupt right after ``fork`` would otherwise abort ``Popen`` before it returns the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pending and previous[signal.SIGINT] is not signal.SIG_IGN:
        raise KeyboardInterrupt


def stopping() -> bool:
    """True once ``stop_children()`` ran."""
    return _stopping


def exit_after_stop(code: int) -> None:
    """Flush stdout/stderr and end the process with ``code`` at once (no thread is joined).

    First the semaphores of the stopped worker pools are released as a normal exit releases them
    (``multiprocessing.util``'s exit finalizers, which ``os._exit`` skips), then multiprocessing's
    resource tracker is ended: it would otherwise print "leaked semaphore objects" warnings after
    ``interrupted`` for one a signal caught between its release and its unregistering (already
    released: nothing is left behind)."""
    if "multiprocessing.resource_tracker" in sys.modules:  # worker pools ran (multiprocessing loads only then)
        from multiprocessing import resource_tracker, util

        with contextlib.suppress(Exception):
            util._run_finalizers(0)  # what multiprocessing's own atexit handler runs first
        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        if tracker:
            with contextlib.suppress(OSError):
                os.kill(tracker, signal.SIGKILL)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
