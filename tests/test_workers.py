"""bosco's worker processes (``bosco.workers``)."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import bosco
from bosco import workers


def _faults_of_a_second_block(size: int) -> int:
    """Minor page faults of touching a ``size``-byte block allocated after one of that size was freed."""
    first = bytearray(size)
    first[::4096] = b"\1" * len(first[::4096])
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = bytearray(size)
    second[::4096] = b"\1" * len(second[::4096])
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_workers_reuse_freed_memory_instead_of_mapping_new_pages():
    # 16 MB: above glibc's default mmap threshold, so without the workers' malloc settings each
    # block is mapped anew and every page faults again (4,097 here); with them the second block
    # reuses the first one's pages
    with workers.process_pool(1) as pool:
        assert pool.submit(_faults_of_a_second_block, 16 << 20).result() < 64


SCRIPT = """
import os, sys
from bosco import workers
os.chdir(sys.argv[1])
with workers.process_pool(1) as pool:
    print(pool.submit(eval, "__import__('bosco').__file__").result())
"""


def test_workers_ignore_a_bosco_package_in_the_current_folder(tmp_path: Path) -> None:
    """A folder holding a package named ``bosco`` (a checkout of another bosco version, say) is not
    where the workers' server imports bosco from when it is the current folder: the server runs
    ``python -c``, whose first ``sys.path`` entry is the current folder, so its workers ran that
    folder's code (minify results cached under this bosco's code version; a build failed with a
    traceback when that code did not import)."""
    (tmp_path / "bosco").mkdir()
    (tmp_path / "bosco" / "__init__.py").write_text("FAKE = True\n")
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path / "elsewhere", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == bosco.__file__


def test_terminate_while_a_submit_is_starting_the_manager_fails_its_future():
    """``terminate()`` while another thread's ``submit()`` has queued its work item but not yet
    started the pool's manager thread (it starts a worker first: slow on a loaded machine): the
    future still fails at once and the manager thread ends (it was left unjoined and then died on
    the closed result queue, so the waiting thread hung)."""
    pool = workers.process_pool(1)
    starting = threading.Event()
    start_worker = pool._adjust_process_count

    def slow_start() -> None:  # holds the window between queueing the item and starting the manager
        starting.set()
        time.sleep(0.3)
        start_worker()

    pool._adjust_process_count = slow_start  # type: ignore[method-assign]
    outcome: dict[str, BaseException] = {}

    def wait_for_a_result() -> None:
        try:
            pool.submit(time.sleep, 60).result()
        except (BrokenProcessPool, CancelledError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=wait_for_a_result, daemon=True)  # a hang must not hang pytest's exit
    thread.start()
    assert starting.wait(30.0)
    manager_threads = {t for t in threading.enumerate() if "ExecutorManagerThread" in type(t).__name__}
    pool.terminate()
    thread.join(30.0)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], (BrokenProcessPool, CancelledError))
    assert not [  # the pool's manager thread ended
        t for t in threading.enumerate() if "ExecutorManagerThread" in type(t).__name__ and t not in manager_threads
    ]
