#!/usr/bin/env python3
"""Benchmark `bosco build` and `bosco cdn` on the 20-service workspace from ../shared/bench.

    python3 bench/build.py [--workspace /tmp/bosco-bench/workspace] [--runs 3] [--against REF] [--new REF]

Prints, median of --runs, one row per figure of the speed targets, for this checkout ("new") and,
with --against REF (a git commit of this repository, e.g. the main of a day ago), for that code
("base", extracted with `git archive` and run with the same interpreter) in the same run:

  - cold minified build, whole process, empty cache: wall seconds, CPU seconds (user + system of
    the process and its workers), peak RSS (the largest of the process and its workers); ratio to
    the floor measured in the same run: one Python process that reads every JS/CSS file and runs
    rjsmin/rcssmin (no verification, bundling, maps, hashing or writing)
  - the same against `esbuild --minify --sourcemap` of the distinct JS and CSS files (npm `esbuild`,
    installed by this script into a folder under the system temp dir)
  - warm build, nothing changed: `build --out` into the folder of a previous build, cache kept
  - `bosco cdn` and `bosco cdn minify` (cold cache): time from start until a fragment is answered

The machine is shared: the load average before and after is printed with the figures, and CPU
seconds are less sensitive to other processes than wall seconds. Each measured version's modules
are compiled to bytecode first, as installing a package does (with PYTHONDONTWRITEBYTECODE set, an
uncompiled checkout would compile every module on every start).
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
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
REPO = HERE.parent
# ../shared/bench beside the main checkout (a worktree under wt/ looks two levels up)
SHARED = next((p for p in (HERE.parents[1] / "shared", HERE.parents[2] / "shared") if p.is_dir()),
              HERE.parents[1] / "shared") / "bench" / "make_workspace.py"
ESBUILD = "esbuild@0.23.1"
BASELINE = """
import glob, sys, rjsmin, rcssmin
root = sys.argv[1]
for path in sorted(glob.glob(root + '/*/public/js/*.js')):
    rjsmin.jsmin(open(path, encoding='utf-8').read())
for path in sorted(glob.glob(root + '/*/public/css/*.css')):
    rcssmin.cssmin(open(path, encoding='utf-8').read())
"""
SCRATCH = Path(tempfile.mkdtemp(prefix="bosco-bench-"))


class Code:
    """One version of bosco to measure: ``name`` and the folder put first on PYTHONPATH (None: this checkout)."""

    def __init__(self, name: str, path: Path | None) -> None:
        self.name, self.path = name, path

    def env(self, cache: Path | None) -> dict[str, str]:
        """The environment with XDG_CACHE_HOME at ``cache`` (a fresh empty folder when None: cold)."""
        env = dict(os.environ, XDG_CACHE_HOME=str(cache or tempfile.mkdtemp(dir=SCRATCH)))
        if self.path is not None:
            env["PYTHONPATH"] = str(self.path) + os.pathsep + env.get("PYTHONPATH", "")
        return env


def extract(ref: str) -> Path:
    """The ``bosco`` package and templates of commit ``ref``, in a scratch folder."""
    folder = SCRATCH / f"code-{ref}"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for package, source in (("templates", "templates"), ("docs", "docs")):  # pyproject's package-dir mapping
        if (folder / source).is_dir() and not (folder / "bosco" / package).exists():
            (folder / "bosco" / package).symlink_to(folder / source)
    return folder


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, with waited-for workers) and peak RSS (MB) of one
    child process (wait4: the largest of the process and its workers)."""
    start = time.perf_counter()
    # from a neutral folder: ``python -m`` puts the current folder first on sys.path, and the
    # checkout's own bosco would shadow the version on PYTHONPATH (--against measured the checkout)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=SCRATCH)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_fragment(code: Code, workspace: Path, minify: bool) -> float:
    """Seconds from spawning `bosco cdn` (cold cache) to a 200 for a fragment."""
    port = free_port()
    argv = [sys.executable, "-m", "bosco", "-W", str(workspace), "cdn", "--port", str(port)] + (
        ["minify"] if minify else [])
    url = f"http://127.0.0.1:{port}/svc-01/local/html/top.js.html"
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=code.env(None), cwd=SCRATCH)
    try:
        while time.perf_counter() - start < 120:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.005)
        sys.exit("bosco cdn did not answer within 120 s")
    finally:
        proc.terminate()
        proc.wait(10)


def median(runs: int, fn) -> tuple[float, ...]:
    results = [fn() for _ in range(runs)]
    return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))


def esbuild_binary() -> Path | None:
    """npm's esbuild, installed once into a folder under the system temp dir; None without npm."""
    folder = Path(tempfile.gettempdir()) / "bosco-bench-esbuild"
    binary = folder / "node_modules" / ".bin" / "esbuild"
    if not binary.exists() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder), ESBUILD],
                       check=False, capture_output=True)
    return binary if binary.exists() else None


def distinct(workspace: Path) -> list[Path]:
    """One path per distinct content among the workspace's JS and CSS files."""
    seen: dict[str, Path] = {}
    for path in sorted(workspace.glob("*/public/js/*.js")) + sorted(workspace.glob("*/public/css/*.css")):
        seen.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return list(seen.values())


def esbuild_run(binary: Path, files: list[Path]) -> tuple[float, float, float]:
    folder = Path(tempfile.mkdtemp(dir=SCRATCH))
    inputs = []
    for n, path in enumerate(files):  # distinct names: esbuild writes one output per input name
        copy = folder / "in" / f"{n:02d}-{path.name}"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, copy)
        inputs.append(str(copy))
    return run([str(binary), *inputs, "--minify", "--sourcemap", "--log-level=error", f"--outdir={folder}/out"],
               dict(os.environ))


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (``/proc/loadavg``)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bosco-bench/workspace"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REF", help="also measure bosco at this git commit (same run)")
    parser.add_argument("--new", metavar="REF", help="measure this git commit as the new code (default: the checkout)")
    args = parser.parse_args()
    if not (args.workspace / "svc-01").is_dir():
        subprocess.run([sys.executable, str(SHARED), "--fetch", "--services", "20", "--root", str(args.workspace)],
                       check=True)
    new = Code("new", extract(args.new) if args.new else None)
    codes = [new] + ([Code(f"base {args.against}", extract(args.against))] if args.against else [])
    for code in codes:
        compileall.compile_dir(str((code.path or REPO) / "bosco"), quiet=1)
    js = sum(p.stat().st_size for p in args.workspace.glob("*/public/js/*.js")) / 1e6
    css = sum(p.stat().st_size for p in args.workspace.glob("*/public/css/*.css")) / 1e6
    print(f"workspace {args.workspace}: JS {js:.2f} MB, CSS {css:.2f} MB; median of {args.runs}; "
          f"load average before: {loadavg()}")
    binary = esbuild_binary()
    floor = median(args.runs, lambda: run([sys.executable, "-c", BASELINE, str(args.workspace)], dict(os.environ)))
    files = distinct(args.workspace)
    esb = median(args.runs, lambda: esbuild_run(binary, files)) if binary else None
    rows = [("floor: read + rjsmin/rcssmin only", floor, "")]
    if esb:
        rows.append((f"esbuild --minify --sourcemap, {len(files)} distinct files", esb, ""))
    for code in codes:
        out = SCRATCH / f"out-{code.name.split()[0]}"
        warm_cache = Path(tempfile.mkdtemp(dir=SCRATCH))

        def build(cache: Path | None, fresh: bool, code: Code = code, out: Path = out):
            def once():
                if fresh:
                    shutil.rmtree(out, ignore_errors=True)
                return run([sys.executable, "-m", "bosco", "-W", str(args.workspace), "build", "--out", str(out)],
                           code.env(cache))
            return once

        cold = median(args.runs, build(None, True))
        build(warm_cache, True)()
        warm = median(args.runs, build(warm_cache, False))
        cdn = median(args.runs, lambda code=code: (first_fragment(code, args.workspace, False), 0, 0))
        cdn_min = median(args.runs, lambda code=code: (first_fragment(code, args.workspace, True), 0, 0))
        rows += [
            (f"{code.name}: cold minified build", cold,
             f"{cold[0] / floor[0]:.2f}x floor" + (f", {cold[0] / esb[0]:.2f}x esbuild" if esb else "")),
            (f"{code.name}: warm build, nothing changed", warm, ""),
            (f"{code.name}: cdn, first fragment", cdn, ""),
            (f"{code.name}: cdn minify, first fragment", cdn_min, "cold cache"),
        ]
    shutil.rmtree(SCRATCH, ignore_errors=True)
    print(f"{'what':<52}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}  note")
    for name, (wall, cpu, mem), note in rows:
        print(f"{name:<52}{wall:>8.3f}{cpu or float('nan'):>8.2f}{mem or float('nan'):>9.1f}  {note}")
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
