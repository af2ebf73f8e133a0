"""bosco's worker processes: one kind of process pool for every CPU-bound stage (verifying
minification, brotli), with one start method, that never outlives the bosco process.

Pools use the ``forkserver`` start method: workers are forked from a clean single-threaded server
process (which preloads ``PRELOAD``), never from bosco itself, which runs upload, watch and server
threads (forking a threaded process can deadlock the child; see the ``multiprocessing`` docs,
"Contexts and start methods"). The forkserver and its workers ignore SIGINT (a terminal's Ctrl-C
reaches the whole foreground process group; bosco decides when its workers stop: see
``start_server``), submitting work is never cut short by Ctrl-C (a half-started worker would fail
noisily), and each worker watches the bosco process from a thread: when bosco is gone (``kill -9``
included) the worker exits within ``PARENT_POLL`` seconds, or as soon as a C call holding the GIL
returns. (The parent-death signal of prctl(2) cannot do this here: a forkserver worker's parent is
the forkserver, which every worker keeps alive, and the signal follows the thread that forked, not
the process.) ``stop_all()`` ends every pool at once (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import forkserver
from typing import Any

from bosco.stopping import interrupts_deferred

START_METHOD = "forkserver"
PRELOAD = ["bosco.verify", "bosco.publish.compress"]  # imported once in the forkserver, not per worker
PARENT_POLL = 0.2  # seconds between a worker's checks that bosco still runs
# glibc malloc in the workers (mallopt(3)): blocks up to 32 MB (the most M_MMAP_THRESHOLD takes) come
# from the heap, and up to 128 MB freed at its top stay there, so the next file's numpy arrays reuse
# memory already mapped instead of mapping and zero-filling new pages (the verify workers' page faults
# on the bench's 16 files: about 40% fewer, ~0.1 s less system CPU; same peak RSS)
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 128 << 20
TERMINATE_WAIT = 1.0  # seconds a terminated worker gets to exit

_pools: set[WorkerPool] = set()
_lock = threading.Lock()


def alive(pid: int) -> bool:
    """True while process ``pid`` runs; a zombie (ended, not yet reaped) counts as gone (proc(5))."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _watch(pid: int) -> None:
    while alive(pid):
        threading.Event().wait(PARENT_POLL)
    os._exit(1)


def start_server() -> None:
    """Start the forkserver now if it does not run yet. From the main thread, SIGINT is ignored
    while it starts, so the forkserver and every worker forked from it ignore a terminal's Ctrl-C
    from birth (an ignored signal stays ignored across exec; Python then installs no handler)."""
    context = multiprocessing.get_context(START_METHOD)
    context.set_forkserver_preload(PRELOAD)
    if threading.current_thread() is not threading.main_thread():
        _ensure_running()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _ensure_running() -> None:
    """``forkserver.ensure_running()`` with ``PYTHONSAFEPATH`` set for the server it starts: it runs
    ``python -c``, whose first ``sys.path`` entry is the current folder (Python 3.11's forkserver
    ignores the ``sys.path`` it is given), so a ``bosco`` package there (another checkout) was what
    it preloaded and its workers ran. ``PYTHONSAFEPATH`` (Python 3.11+, "Command line and
    environment" in the Python docs) leaves that entry out; the variable is set only while the
    server starts."""
    if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:  # running: nothing starts
        forkserver.ensure_running()
        return
    previous = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        forkserver.ensure_running()
    finally:
        if previous is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = previous


def _tune_malloc() -> None:
    """``MMAP_THRESHOLD`` and ``TRIM_THRESHOLD`` for this process's malloc, where it is glibc's
    (elsewhere ``mallopt`` is missing and nothing changes)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD


def _init_worker(bosco_pid: int) -> None:
    """Worker initializer: ignore SIGINT, exit when process ``bosco_pid`` is gone, keep freed
    memory for reuse (``_tune_malloc``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _tune_malloc()
    threading.Thread(target=_watch, args=(bosco_pid,), name="bosco-watch-parent", daemon=True).start()


class WorkerPool(ProcessPoolExecutor):
    """A ``ProcessPoolExecutor`` that ``stop_all()`` can end; make one with ``process_pool()``.
    Leaving a ``with`` block by an exception (Ctrl-C included) terminates the workers instead of
    waiting for the queued work."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self.terminate()
            return False
        return bool(super().__exit__(exc_type, exc, tb))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with _lock:
            _pools.discard(self)
        super().shutdown(wait, cancel_futures=cancel_futures)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with interrupts_deferred():
            return super().submit(fn, *args, **kwargs)

    def terminate(self) -> None:
        """Cancel queued work and terminate the workers (SIGTERM) without waiting for their tasks;
        every future not done then raises ``CancelledError`` or ``BrokenProcessPool``."""
        # Read under the pool's shutdown lock, which marks it shut down too: a submit() in another
        # thread adds its work item, starts a worker and only then the manager thread, all under that
        # lock. Read outside it, the manager could still be None while that submit() goes on to
        # start it; closing the result queue below under a manager never joined then killed it
        # ("OSError: handle is closed") before it failed the pending futures: their waiters hung.
        # Once marked shut down, no later submit() starts a manager (it raises RuntimeError).
        # ``running`` is the live dict, read before shutdown() drops the attribute.
        with self._shutdown_lock:
            self._shutdown_thread = True
            running = getattr(self, "_processes", None)
            manager = getattr(self, "_executor_manager_thread", None)
            results = getattr(self, "_result_queue", None)
        self.shutdown(wait=False, cancel_futures=True)
        processes = list(running.values()) if running is not None else []
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.terminate()
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                process.join(TERMINATE_WAIT)
                if process.exitcode is None:  # still running (a loaded machine): SIGKILL cannot wait
                    process.kill()
                    process.join()
        # A worker terminated while sending its result leaves the pool's manager thread reading
        # the rest of that message, which never comes while this process holds the pipe's write
        # end too: its pending futures would never complete (their waiters, and Python's exit,
        # which joins that thread, would hang). With the workers gone, closing that end ends the
        # read (EOF): the manager thread then fails every pending future with BrokenProcessPool and
        # releases the queues (their semaphores would otherwise be reported as leaked by
        # multiprocessing's resource tracker).
        if results is not None:
            with contextlib.suppress(OSError):
                results._writer.close()
        if manager is not None:
            manager.join()
        if results is not None:
            results.close()


def process_pool(workers: int) -> WorkerPool:
    """A pool of ``workers`` processes (started on first submit) whose workers die with bosco.

    Close it with ``shutdown()`` or ``with``; ``stop_all()`` also ends it."""
    start_server()
    context = multiprocessing.get_context(START_METHOD)
    pool = WorkerPool(workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),))
    with _lock:
        _pools.add(pool)
    return pool


def stop_all() -> None:
    """End every running pool now (Ctrl-C, SIGTERM of bosco): see ``WorkerPool.terminate``."""
    with _lock:
        pools = list(_pools)
    for pool in pools:
        pool.terminate()
