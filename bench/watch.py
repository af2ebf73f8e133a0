"""Benchmark: time from an atomic save (write a temp file, rename it over the original) to the
server returning the new bytes, as ``bosco cdn -w`` runs it (ServedAssetSet + CdnServer on
127.0.0.1, inotify, started with ``ServedAssetSet.serve`` like the CLI).

Two workspaces, each in both modes (unminified: the file's own key; minify: the bundle key):

- *small*: a throwaway service whose ``js/main`` bundle is 50 files of ~20 KB; one file is saved.
  Targets: median <= 25 ms unminified, <= 40 ms minify.
- *400 KB*: a copy of the 20-service real-library workspace (``/tmp/bosco-bench/workspace``, made
  by ``../shared/bench/make_workspace.py --fetch``; pass ``--workspace DIR`` for another), all
  services served, ``svc-01`` watched; its 418 KB ``public/js/chart.js`` (the ``top`` bundle) is
  saved. Target: median <= 60 ms in both modes.

20 saves per case, 0.2 s apart, made by a client process of its own that polls the key every
millisecond (in the server's process its requests would compete for the interpreter lock). Each
case prints median, p95 and max next to the baseline measured in the same run: a one-shot
``build_service`` of the watched service in the same mode (the build work alone, without the swap
and the HTTP round trips). The load average is printed before and
after: the machine is shared, so compare figures taken at similar load.

Run: ``python bench/watch.py [--workspace DIR] [--saves N]`` (a minute or two; the first minified
build of the 20 services fills the verify cache).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bosco.config import load_config
from bosco.pipeline import BuildOptions, build_service
from bosco.server import AssetHolder, CdnServer
from bosco.watch import SETTLE, ServedAssetSet
from bosco.workspace import discover_services, load_service

FILES = 50
FILE_BYTES = 20_000
TARGET = 25  # the file of the small service that is saved
BIG_SERVICE, BIG_FILE, BIG_BUNDLE = "svc-01", "public/js/chart.js", "js/top.js"
TARGETS = {("small", False): 25, ("small", True): 40, ("400 KB", False): 60, ("400 KB", True): 60}


def make_small(root: Path) -> Path:
    repo = root / "app-big"
    (repo / "public/js").mkdir(parents=True)
    (repo / "bosco-service.json").write_text(json.dumps(
        {"service": {"name": "app-big"}, "assets": {"basePath": "public", "js": {"main": ["js/*.js"]}}}))
    for i in range(FILES):
        lines, size, n = [], 0, 0
        while size < FILE_BYTES:
            line = f"function f{i}_{n}(a, b) {{ var total = a + b * {n}; return total > {n} ? total : b; }}\n"
            lines.append(line)
            size += len(line)
            n += 1
        (repo / f"public/js/f{i:03d}.js").write_text(f"/* file {i} */\n" + "".join(lines))
    return root


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(root: Path, service_name: str, rel: str, bundle: str, minify: bool,
            saves: int) -> tuple[list[float], float]:
    """Latencies (ms) of ``saves`` atomic saves of ``rel`` in ``service_name``, and the one-shot build
    baseline of that service (ms, median of 5)."""
    options = BuildOptions(minify=minify, bundle=minify)
    services, warnings = discover_services(root, load_config(root, "local", env={}))
    repo = next(s.path for s in services if s.name == service_name)
    baseline = []
    for _ in range(5):
        start = time.perf_counter()
        build_service(load_service(repo), options)
        baseline.append((time.perf_counter() - start) * 1000)
    holder = AssetHolder()
    server = CdnServer(holder, "127.0.0.1", 0)
    session = ServedAssetSet(services, [repo], options, holder, warnings)
    server.start()
    session.serve(quick=not minify)
    key = f"{service_name}/local/{bundle}" if minify else f"{service_name}/local/{rel.split('/', 1)[1]}"
    target = repo / rel
    original = target.read_text()
    try:
        # the saving and polling client runs in a process of its own, as a browser and an editor
        # do: in this one it would take the interpreter lock from the server it measures
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            latencies = pool.apply(save_and_poll, (server.port, key, target, minify, saves))
    finally:
        session.stop()
        server.stop()
        target.write_text(original)
    return latencies, statistics.median(baseline)


def save_and_poll(port: int, key: str, target: Path, minify: bool, saves: int) -> list[float]:
    """The client side of ``measure`` (in a process of its own): ``saves`` atomic saves of ``target``,
    each timed until ``key`` answers with the saved marker (polled every millisecond); ms each."""
    original = target.read_text()
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        assert http.get(f"/{key}").status_code == 200, key
        for save in range(saves):
            marker = f"var saved_{int(minify)}_{save}={save};"  # survives minification as is
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(original + marker + "\n")
            start = time.perf_counter()
            os.replace(tmp, target)
            deadline = start + 10
            while marker.encode() not in http.get(f"/{key}").content:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"save {save}: the server did not return the new bytes within 10 s")
                time.sleep(0.001)
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(0.2)  # let the next save be a save of its own, not part of this one
    return latencies


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bosco-bench/workspace"),
                        help="the 20-service workspace to copy (default: /tmp/bosco-bench/workspace)")
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; {args.saves} atomic saves per case; settle {SETTLE * 1000:.0f} ms; "
          f"load average {loadavg()}")
    print(f"{'case':<8}{'mode':<11}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'build ms':>10}{'target ms':>11}"
          f"{'':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("small", make_small(Path(tmp) / "small"), "app-big", f"public/js/f{TARGET:03d}.js", "js/main.js")]
        if (args.workspace / BIG_SERVICE / BIG_FILE).is_file():
            copy = Path(tmp) / "big"
            shutil.copytree(args.workspace, copy, symlinks=True)
            cases.append(("400 KB", copy, BIG_SERVICE, BIG_FILE, BIG_BUNDLE))
        else:
            print(f"(no {args.workspace / BIG_SERVICE / BIG_FILE}: the 400 KB case is skipped; make the workspace "
                  f"with ../shared/bench/make_workspace.py --fetch)")
        for name, root, service, rel, bundle in cases:
            for minify in (False, True):
                latencies, baseline = measure(root, service, rel, bundle, minify, args.saves)
                median = statistics.median(latencies)
                target = TARGETS[(name, minify)]
                print(f"{name:<8}{'minify' if minify else 'unminified':<11}{median:>10.1f}"
                      f"{percentile(latencies, 95):>9.1f}{max(latencies):>9.1f}{baseline:>10.1f}{target:>11}"
                      f"{'  ok' if median <= target else '  MISSED':>6}", flush=True)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
