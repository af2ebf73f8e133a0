#!/usr/bin/env python3
"""Benchmark `bosco cdn --remote ENV`: latency of published objects served through its caching proxy.

    python3 bench/remote.py [--workspace /tmp/bosco-bench/workspace] [--requests 50]

Needs the `test` extra (moto's S3 server). Publishes the workspace (default: examples/workspace)
as build 1 of environment `bench` to moto's S3 server on 127.0.0.1 (bucket readable by anyone, so
the server's path-style URL stands in for `aws.cdn`), then serves a copy of the workspace without
its first service with `bosco cdn --remote bench` and prints, for that service's first fragment,
bundle and source map (Accept-Encoding: br): the first fetch (from the upstream, stored on disk),
the median of the next requests (served from the stored copy), the median of requests that
revalidate a stale copy (a second push of build `default` with `aws.shortcache` max-age=0: a
conditional GET answered 304 each time), and the same key served from the workspace (the
baseline, measured in the same run). Also the time `bosco cdn --remote` takes to answer its
first request. The load average is printed with the figures (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx
from moto.server import ThreadedMotoServer

from bosco.commands import stop_groups

HERE = Path(__file__).resolve().parent
BOSCO = [sys.executable, "-m", "bosco"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(root: Path, aws: dict) -> None:
    (root / ".bosco").mkdir(exist_ok=True)
    (root / ".bosco" / "bench.json").write_text(json.dumps({"aws": aws}))


def push(root: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([*BOSCO, "-W", str(root), "-e", "bench", "-q", "s3push", "-n", *args], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"s3push failed:\n{proc.stderr}")


def serve(root: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([*BOSCO, "-W", str(root), "cdn", "--remote", "bench", "--port", str(port)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            sys.exit(f"bosco cdn exited:\n{log.read_text()}")
        try:
            httpx.get(base + "/", timeout=60)
            return proc, base, time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(0.05)


def service_name(folder: Path) -> str:
    """The name of the service in ``folder``: ``service.name`` of its manifest, else the folder name."""
    manifest = json.loads((folder / "bosco-service.json").read_text())
    return (manifest.get("service") or {}).get("name") or folder.name


def stop(proc: subprocess.Popen) -> None:
    """End bosco cdn and its worker processes (its own session): SIGTERM, SIGKILL after 60 s."""
    stop_groups([proc], grace=60)


def timed(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path, headers={"Accept-Encoding": "br"})
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        sys.exit(f"{path}: {response.status_code}")
    return elapsed


def measure(base: str, keys: list[str], requests: int) -> dict[str, tuple[float, float]]:
    """Per key: (first request ms, median ms of the next ``requests``)."""
    figures = {}
    with httpx.Client(base_url=base) as client:
        for key in keys:
            first = timed(client, "/" + key)
            figures[key] = (first, statistics.median(timed(client, "/" + key) for _ in range(requests)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, default=HERE.parent / "examples" / "workspace")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bosco-bench-remote-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "XDG_CACHE_HOME": str(tmp / "cache")}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    s3.create_bucket(Bucket="bench")
    s3.put_bucket_policy(Bucket="bench", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bench/*"}]}))
    aws = {"bucket": "bench", "endpoint": moto, "region": "us-east-1"}
    try:
        publisher = shutil.copytree(args.workspace, tmp / "publisher", symlinks=True)
        configure(publisher, {**aws, "shortcache": "public, max-age=0, must-revalidate"})
        push(publisher, env, "-b", "1")
        index = json.loads(s3.get_object(Bucket="bench", Key=next(
            o["Key"] for o in s3.list_objects_v2(Bucket="bench", Prefix="bench/")["Contents"]
            if o["Key"].endswith("/1/release.json")))["Body"].read())
        service = index["service"]
        bundle = next(b for b in index["bundles"] if b.get("key"))
        keys = [bundle["fragment"], bundle["key"], bundle["key"] + ".map"]
        developer = shutil.copytree(args.workspace, tmp / "developer", symlinks=True)
        shutil.rmtree(next(p for p in developer.iterdir() if (p / "bosco-service.json").is_file()
                           and service_name(p) == service))
        configure(developer, {**aws, "cdn": f"{moto}/bench"})
        proc, base, startup = serve(developer, env, tmp / "cdn.log")
        try:
            remote = measure(base, keys, args.requests)
        finally:
            stop(proc)
        push(publisher, env)  # build default: every key max-age=0, so each request revalidates
        stale_keys = [k.replace(f"{service}/1/", f"{service}/default/", 1) for k in keys]
        proc, base, _ = serve(developer, env, tmp / "cdn2.log")
        try:
            stale = measure(base, stale_keys, args.requests)
        finally:
            stop(proc)
        local_root = shutil.copytree(args.workspace, tmp / "local", symlinks=True)
        configure(local_root, aws)
        proc, base, _ = serve(local_root, env, tmp / "cdn3.log")
        local_key = f"{service}/local/html/{bundle['fragment'].rsplit('/', 1)[1]}"
        try:
            local = measure(base, [local_key], args.requests)
        finally:
            stop(proc)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"workspace {args.workspace}, remote service {service}, {args.requests} requests per figure, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"bosco cdn --remote: first answer {startup * 1000:.0f} ms after start (release list read from the bucket)")
    for key, (first, cached) in remote.items():
        print(f"  {key}: first fetch {first:.1f} ms, stored copy {cached:.2f} ms (median)")
    for key, (first, cached) in stale.items():
        print(f"  {key}: first fetch {first:.1f} ms, revalidated (304) {cached:.2f} ms (median)")
    for key, (_, cached) in local.items():
        print(f"  baseline, from the workspace: {key}: {cached:.2f} ms (median)")


if __name__ == "__main__":
    main()
