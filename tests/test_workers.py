"""bosco's worker processes (``bosco.workers``)."""

from __future__ import annotations

import resource
import sys

import pytest

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
