#!/usr/bin/env python3
"""Benchmark `bosco cdn` under a slow-client flood.

    python3 bench/flood.py [--clients 200] [--slow 200] [--seconds 5] [--fd-limit N] [--source DIR]

Serves a one-service workspace holding a 100 KB JS file with `bosco cdn` (a subprocess on a free
127.0.0.1 port), then runs `--clients` keep-alive HTTP/1.1 clients that GET that file back to back
for `--seconds`, twice: alone, and while `--slow` slowloris clients hold connections (each sends a
partial request head, then one more header byte a second, and reconnects when the server closes it).
Prints requests/s, p50/p99 latency and errors of each run, and how many slow connections the server
closed. `--fd-limit N` runs the server with at most N file descriptors (RLIMIT_NOFILE; 256 is
macOS's default). `--source DIR` runs the bosco of another checkout (e.g. the main branch) as the baseline.
Every loop is bounded in time and only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KEY = "svc/local/js/big.js"


def workspace(root: Path) -> Path:
    svc = root / "svc"
    (svc / "js").mkdir(parents=True)
    line = "var value{0} = function (x) {{ return x * {0}; }};\n"
    text = "".join(line.format(i) for i in range(2600))[:100 * 1024]
    (svc / "js" / "big.js").write_text(text)
    (svc / "bosco-service.json").write_text('{"assets": {"js": {"big": ["js/big.js"]}}}')
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def keep_alive_client(port: int, until: float, latencies: list[float], errors: list[str]) -> None:
    request = f"GET /{KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    reader = writer = None
    while time.monotonic() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            errors.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def slow_client(port: int, stop: asyncio.Event, closed: list[int]) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while not stop.is_set():
                writer.write(b"X")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        closed[0] += 1
                        break
                except asyncio.TimeoutError:
                    pass
            writer.close()
        except OSError:
            closed[0] += 1
            await asyncio.sleep(0.1)


async def run(port: int, clients: int, slow: int, seconds: float) -> dict[str, float]:
    stop = asyncio.Event()
    closed = [0]
    slow_tasks = [asyncio.create_task(slow_client(port, stop, closed)) for _ in range(slow)]
    if slow:
        await asyncio.sleep(2.0)  # let the flood connect first
    latencies: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    until = start + seconds
    await asyncio.gather(*(keep_alive_client(port, until, latencies, errors) for _ in range(clients)))
    elapsed = time.monotonic() - start
    stop.set()
    await asyncio.wait(slow_tasks, timeout=5) if slow_tasks else None
    ordered = sorted(latencies) or [float("nan")]
    return {"requests/s": len(latencies) / elapsed, "p50 ms": 1000 * statistics.median(ordered),
            "p99 ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))], "errors": len(errors),
            "slow closed": closed[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fd-limit", type=int, help="RLIMIT_NOFILE of the server process")
    parser.add_argument("--source", type=Path, help="checkout whose bosco to run (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = workspace(Path(tmp) / "ws")
        port = free_port()
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        if args.source:
            env["PYTHONPATH"] = str(args.source.resolve())
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, args.fd_limit))
                 ) if args.fd_limit else None
        with open(Path(tmp) / "log", "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "bosco", "cdn", "--port", str(port)], cwd=root,
                                      env=env, stdout=subprocess.DEVNULL, stderr=log, preexec_fn=limit)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/{KEY}", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        sys.exit("bosco cdn did not start:\n" + (Path(tmp) / "log").read_text())
                    time.sleep(0.2)
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"bosco cdn ({args.source or 'this checkout'}), {args.clients} keep-alive clients, 100 KB asset, "
                  f"{args.seconds:g} s per run, fd limit {args.fd_limit or 'inherited'}; load average {load}")
            for slow in (0, args.slow):
                figures = asyncio.run(run(port, args.clients, slow, args.seconds))
                label = f"with {slow} slow clients" if slow else "no slow clients"
                print(f"  {label:>22}: " + ", ".join(
                    f"{name} {value:,.0f}" if name != "p50 ms" and name != "p99 ms" else f"{name} {value:.1f}"
                    for name, value in figures.items() if slow or name != "slow closed"))
            log = (Path(tmp) / "log").read_text()
            print(f"  server log: {log.count('Traceback')} tracebacks, {len(log.splitlines())} lines")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
