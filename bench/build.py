#!/usr/bin/env python3
"""Benchmark `bosco build` and `bosco cdn` on the 20-service workspace from ../shared/bench.

    python3 bench/build.py [--workspace /tmp/bosco-bench/workspace] [--runs 5]

Prints, median of --runs, whole-process wall time and peak RSS of `bosco build` with and without
minification, and the time from starting `bosco cdn` until it answers its first request. The
baseline, measured in the same run, is the irreducible work: one Python process that reads every
JS/CSS file of the workspace and minifies it with rjsmin/rcssmin (no verification, bundling, maps,
hashing or writing). "cold" runs get an empty XDG_CACHE_HOME each (no verified-minify cache);
"warm" runs reuse one filled by a previous build. The original npm Bosco took 9.7 s and 733 MB for
the minified build of this workspace (figure given in the issue, not re-measured here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench" / "make_workspace.py"
BOSCO = [sys.executable, "-m", "bosco"]
BASELINE = """
import glob, sys, rjsmin, rcssmin
root = sys.argv[1]
for path in sorted(glob.glob(root + '/*/public/js/*.js')):
    rjsmin.jsmin(open(path, encoding='utf-8').read())
for path in sorted(glob.glob(root + '/*/public/css/*.css')):
    rcssmin.cssmin(open(path, encoding='utf-8').read())
"""


def run(argv: list[str], cache: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, via wait4 (the largest of the process and
    its worker processes). ``cache`` is its XDG_CACHE_HOME; None gives a fresh empty one (cold)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cache_env(cache))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


SCRATCH = Path(tempfile.mkdtemp(prefix="bosco-bench-"))


def cache_env(cache: Path | None) -> dict[str, str]:
    """The environment with XDG_CACHE_HOME at ``cache``, or at a fresh empty folder (cold) when None."""
    return dict(os.environ, XDG_CACHE_HOME=str(cache or tempfile.mkdtemp(dir=SCRATCH)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_byte(workspace: Path, minify: bool) -> float:
    """Seconds from spawning `bosco cdn` to a 200 for a fragment."""
    port = free_port()
    argv = BOSCO + ["-W", str(workspace), "cdn", "--port", str(port)] + (["minify"] if minify else [])
    url = f"http://127.0.0.1:{port}/svc-01/local/html/top.js.html"
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cache_env(None))
    try:
        while time.perf_counter() - start < 60:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.005)
        sys.exit("bosco cdn did not answer within 60 s")
    finally:
        proc.terminate()
        proc.wait(10)


def median_of(runs: int, fn) -> tuple[float, float]:
    results = [fn() for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bosco-bench/workspace"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (args.workspace / "svc-01").is_dir():
        subprocess.run([sys.executable, str(SHARED), "--fetch", "--services", "20", "--root", str(args.workspace)],
                       check=True)
    out = SCRATCH / "out"

    warm_cache = Path(tempfile.mkdtemp(dir=SCRATCH))

    def build(*extra: str, cache: Path | None = None):
        def once():
            shutil.rmtree(out, ignore_errors=True)
            return run(BOSCO + ["-W", str(args.workspace), "build", "--out", str(out), *extra], cache)
        return once

    js = sum(p.stat().st_size for p in args.workspace.glob("*/public/js/*.js")) / 1e6
    css = sum(p.stat().st_size for p in args.workspace.glob("*/public/css/*.css")) / 1e6
    print(f"workspace {args.workspace}: 20 services, JS {js:.2f} MB, CSS {css:.2f} MB; median of {args.runs}")
    base_t, base_m = median_of(args.runs, lambda: run([sys.executable, "-c", BASELINE, str(args.workspace)]))
    min_t, min_m = median_of(args.runs, build())
    build(cache=warm_cache)()
    warm_t, warm_m = median_of(args.runs, build(cache=warm_cache))
    raw_t, raw_m = median_of(args.runs, build("--no-minify"))
    cdn_t = statistics.median(first_byte(args.workspace, False) for _ in range(args.runs))
    cdn_min_t = statistics.median(first_byte(args.workspace, True) for _ in range(args.runs))
    shutil.rmtree(SCRATCH, ignore_errors=True)
    rows = [
        ("baseline: read + rjsmin/rcssmin only", base_t, base_m, ""),
        ("bosco build (minified), cold cache", min_t, min_m,
         f"{min_t / base_t:.2f}x baseline; target < 1 s, < 200 MB"),
        ("bosco build (minified), warm cache", warm_t, warm_m, f"{warm_t / base_t:.2f}x baseline"),
        ("bosco build --no-minify", raw_t, raw_m, f"{raw_t / base_t:.2f}x baseline"),
    ]
    print(f"{'what':<40}{'wall s':>9}{'peak MB':>9}  note")
    for name, wall, mem, note in rows:
        print(f"{name:<40}{wall:>9.3f}{mem:>9.1f}  {note}")
    print(f"{'bosco cdn: first fragment answered':<40}{cdn_t:>9.3f}{'':>9}  target < 0.5 s")
    print(f"{'bosco cdn minify: first fragment':<40}{cdn_min_t:>9.3f}")
    print("for scale (issue figure, not re-measured): npm Bosco 5.0.2 minified build 9.7 s, 733 MB")


if __name__ == "__main__":
    main()
