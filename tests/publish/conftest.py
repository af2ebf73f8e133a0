"""Fixtures of the publish tests: moto's standalone S3 server on 127.0.0.1, a bucket per test, the
fixture workspace publishing to it, and a fault-injecting proxy."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from .s3support import REGION, FaultProxy, assert_consistent, write_workspace

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """URL of moto's standalone S3 server, started on a free port of 127.0.0.1 for the session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials (moto accepts any), no real AWS config files, a private compression cache."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def s3(moto_url: str):
    """A boto3 S3 client talking to the moto server."""
    return boto3.client("s3", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def bucket(s3, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty bucket for this test; when the test has passed, the bucket must satisfy the
    consistency rule (``assert_consistent``: nothing published dangles). A test that deletes
    objects or writes release records behind bosco's back is marked ``tampers_bucket``: then only
    the links of the pages and fragments are checked."""
    name = f"bosco-test-{next(_buckets)}"
    s3.create_bucket(Bucket=name)
    yield name
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        assert_consistent(s3, name, tampered=request.node.get_closest_marker("tampers_bucket") is not None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item (``rep_call``), so fixtures can see the outcome."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def workspace(tmp_path: Path, moto_url: str, bucket: str) -> Path:
    """The fixture workspace, environment ``tes`` publishing to ``bucket`` on the moto server."""
    return write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                             "cdn": "https://cdn.example.com", "attempts": 2})


@pytest.fixture
def fault_proxy(moto_url: str) -> Iterator[FaultProxy]:
    """A running ``FaultProxy`` in front of the moto server."""
    proxy = FaultProxy(moto_url)
    proxy.thread.start()
    for _ in range(500):
        if proxy.server.started:
            break
        threading.Event().wait(0.01)
    assert proxy.server.started
    yield proxy
    proxy.stall_suffix, proxy.stall_delete = None, False
    proxy.server.should_exit = True
    proxy.thread.join(10)
    proxy.socket.close()
