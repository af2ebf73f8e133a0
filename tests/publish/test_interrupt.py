"""Ctrl-C (SIGINT) or SIGTERM of s3push while an upload hangs, and of s3delete: exit 130 at once, no
traceback, and what was published stays consistent (no release index for an incomplete release)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from live import interrupted

from .s3support import REGION, keys, write_workspace

WAIT = 30.0


def bosco(workspace: Path, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "bosco", "-W", str(workspace), "-e", "tes", *args],
                                env=dict(os.environ), stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)




@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_push_exits_130_and_writes_no_release_index(tmp_path, fault_proxy, s3, bucket, sig):
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": fault_proxy.url, "region": REGION,
                                                  "attempts": 1})
    fault_proxy.stall_suffix = f"/{bucket}/tes/app-web/55/css/main.css"
    log = tmp_path / "log"
    proc = bosco(workspace, log, "s3push", "-n", "-b", "55")
    interrupted(proc, sig, log, lambda: fault_proxy.stalled or proc.poll() is not None, "the stalled upload",
                WAIT)
    fault_proxy.stall_suffix = None
    stored = keys(s3, bucket)
    assert "tes/app-web/55/css/main.css" not in stored
    assert not [k for k in stored if k.endswith(("release.json", "releases.json", "index.html"))]




def assert_consistent(s3, bucket: str) -> None:
    """Every release index names only stored objects; every releases.json names only stored indexes."""
    stored = keys(s3, bucket)
    for key in stored:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith("/release.json"):
            objects = [o["key"] for entry in json.loads(body)["objects"] for o in entry["stored"]]
            assert objects and not [k for k in objects if f"tes/{k}" not in stored], key
        elif key.endswith("/releases.json"):
            assert not [r for r in json.loads(body)["releases"] if f"tes/{r['index']}" not in stored], key


def test_interrupted_delete_exits_130_and_leaves_no_index_of_a_partial_release(tmp_path, fault_proxy, s3, bucket):
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": fault_proxy.url, "region": REGION,
                                                  "attempts": 1})
    log = tmp_path / "log"
    for build in ("55", "56"):
        assert bosco(workspace, log, "s3push", "-n", "-b", build).wait(WAIT) == 0, log.read_text()
    fault_proxy.stall_delete = True  # the release index goes first; the deletion of the objects hangs
    proc = bosco(workspace, log, "s3delete", "-n", "55")
    interrupted(proc, signal.SIGINT, log, lambda: fault_proxy.stalled or proc.poll() is not None,
                "the stalled delete", WAIT)
    fault_proxy.stall_delete = False
    stored = keys(s3, bucket)
    assert [k for k in stored if "/55/" in k]  # interrupted before the objects were deleted ...
    assert_consistent(s3, bucket)  # ... and no index names them
