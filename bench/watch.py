"""Benchmark: time from ``os.replace`` of one file of a ~1 MB JS bundle to the server returning it.

A throwaway workspace with one watched service whose ``js/main`` bundle is 50 files of ~20 KB is
served by ``bosco cdn -w`` machinery (WatchSession + CdnServer on 127.0.0.1, inotify). For each mode
(unminified: the file's own key; minify: the bundle key) the benchmark saves one file 20 times by
writing a temp file and renaming it over the original, and polls the server until the new bytes
come back. It prints median and p95 in ms, next to the baseline measured in the same run: a
one-shot ``build_service`` of that service in the same mode (the build work alone, without the
quiet period, the swap and the HTTP round trips).

Run: ``python bench/watch.py`` (about 15 s). Target: median under 100 ms unminified.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bosco.pipeline import BuildOptions, build_service
from bosco.server import AssetHolder, CdnServer
from bosco.watch import SETTLE, WatchSession
from bosco.workspace import load_service

FILES = 50
FILE_BYTES = 20_000
SAVES = 20
TARGET = 25  # the file that is saved


def make_workspace(root: Path) -> Path:
    repo = root / "app-big"
    (repo / "public/js").mkdir(parents=True)
    (repo / "bosco-service.json").write_text(json.dumps(
        {"service": {"name": "app-big"}, "assets": {"basePath": "public", "js": {"main": ["js/*.js"]}}}))
    for i in range(FILES):
        lines, size = [], 0
        n = 0
        while size < FILE_BYTES:
            line = f"function f{i}_{n}(a, b) {{ var total = a + b * {n}; return total > {n} ? total : b; }}\n"
            lines.append(line)
            size += len(line)
            n += 1
        (repo / f"public/js/f{i:03d}.js").write_text(f"/* file {i} */\n" + "".join(lines))
    return repo


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(repo: Path, minify: bool) -> tuple[list[float], float]:
    """Latencies (ms) of SAVES saves, and the one-shot build baseline (ms, median of 5)."""
    options = BuildOptions(minify=minify, bundle=minify)
    service = load_service(repo)
    baseline = []
    for _ in range(5):
        start = time.perf_counter()
        build_service(load_service(repo), options)
        baseline.append((time.perf_counter() - start) * 1000)
    holder = AssetHolder()
    server = CdnServer(holder, "127.0.0.1", 0)
    session = WatchSession([service], [repo], options, holder)
    server.start()
    session.serve()
    key = "app-big/local/js/main.js" if minify else f"app-big/local/js/f{TARGET:03d}.js"
    target = repo / f"public/js/f{TARGET:03d}.js"
    original = target.read_text()
    latencies = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert http.get(f"/{key}").status_code == 200
            for save in range(SAVES):
                marker = f"var saved_{int(minify)}_{save}={save};"  # survives minification as is
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_text(original + marker + "\n")
                start = time.perf_counter()
                os.replace(tmp, target)
                deadline = start + 10
                while marker.encode() not in http.get(f"/{key}").content:
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"save {save}: the server did not return the new bytes within 10 s")
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.2)  # let the next save be a save of its own, not part of this one
    finally:
        session.stop()
        server.stop()
        target.write_text(original)
    return latencies, statistics.median(baseline)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_workspace(Path(tmp))
        size = sum(p.stat().st_size for p in (repo / "public/js").iterdir())
        print(f"bundle: {FILES} files, {size / 1e6:.2f} MB; {SAVES} atomic saves per mode; "
              f"settle {SETTLE * 1000:.0f} ms; python {sys.version.split()[0]}")
        print(f"{'mode':<11}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'one-shot build ms':>19}{'median/build':>14}")
        for minify in (False, True):
            latencies, baseline = measure(repo, minify)
            median = statistics.median(latencies)
            print(f"{'minify' if minify else 'unminified':<11}{median:>10.1f}{percentile(latencies, 95):>9.1f}"
                  f"{max(latencies):>9.1f}{baseline:>19.1f}{median / baseline:>14.2f}")


if __name__ == "__main__":
    main()
