#!/usr/bin/env python3
"""Benchmark verified minification and exact source maps against esbuild.

    python3 bench/bundle.py [--libs DIR] [--workspace /tmp/bosco-bench/workspace]

Corpus: real library files from the npm registry, installed once with npm into ``--libs``
(default ``$TMPDIR/bosco-bench-bundle``) together with the ``esbuild`` package: about 5 MB of JS
(jQuery, lodash, d3, Vue, three, React DOM, Moment) and 1.5 MB of CSS (Bootstrap, Bulma, Foundation,
Font Awesome, animate.css, normalize.css). Without npm the corpus is generated.

Prints MB/s (input bytes per second, best of 3, one core) of each stage of bosco's per-file work:
minify alone (rjsmin/rcssmin), verify (tree-sitter parse of the input, alignment; the output is
parsed again only where the alignment cannot prove a join), map generation (segments + VLQ), the
total without cache (cold) and with the disk cache (warm), next to ``esbuild --minify --sourcemap``
on the same files in the same run (one process, wall time), and the gzip sizes of both outputs.
With ``--workspace``, also the wall time of ``bosco build`` on that workspace with an empty cache,
then again with the cache it filled.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JS = ["jquery/dist/jquery.js", "lodash/lodash.js", "d3/dist/d3.js", "vue/dist/vue.global.js", "three/build/three.cjs",
      "react-dom/umd/react-dom.development.js", "moment/moment.js"]
CSS = ["bootstrap/dist/css/bootstrap.css", "bulma/css/bulma.css", "foundation-sites/dist/css/foundation.css",
       "@fortawesome/fontawesome-free/css/all.css", "animate.css/animate.css", "normalize.css/normalize.css",
       "bootstrap/dist/css/bootstrap.rtl.css"]
PACKAGES = ["jquery@3.7.1", "lodash@4.17.21", "d3@7.9.0", "vue@3.4.38", "three@0.160.0", "react-dom@18.3.1",
            "moment@2.30.1", "bootstrap@5.3.3", "bulma@1.0.2", "foundation-sites@6.8.1",
            "@fortawesome/fontawesome-free@6.5.2", "animate.css@4.1.1", "normalize.css@8.0.1", "esbuild@0.23.1"]


def corpus(libs: Path) -> tuple[dict[str, str], dict[str, str], Path | None]:
    """``(js files, css files, esbuild binary)``: name -> text; generated when npm is unavailable."""
    modules = libs / "node_modules"
    if not all((modules / p).is_file() for p in JS + CSS) and shutil.which("npm"):
        libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(libs), *PACKAGES],
                       check=False, capture_output=True, timeout=600)
    if all((modules / p).is_file() for p in JS + CSS):
        read = {p: (modules / p).read_text(encoding="utf-8") for p in JS + CSS}
        esbuild = modules / ".bin" / "esbuild"
        return {p: read[p] for p in JS}, {p: read[p] for p in CSS}, esbuild if esbuild.exists() else None
    print("npm registry unreachable: using a generated corpus", file=sys.stderr)
    js = "".join(f"function f{i}(a, b) {{\n  // add\n  return `${{a}} + ${{b}}` + (a + b) * {i};\n}}\n"
                 for i in range(60000))
    css = "".join(f".c{i} > .d :hover {{ color: #{i % 4096:03x}; margin: 0 auto; }}\n" for i in range(30000))
    return {"generated.js": js}, {"generated.css": css}, None


def best(func, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def stages(type_: str, files: dict[str, str]) -> dict[str, float]:
    """Seconds per stage over ``files`` (best of 3), and fault lines."""
    from bosco import cache
    from bosco.syntax import facts
    from bosco.verify import _minify, check_output, minify_verified, segments

    infos = {name: facts(type_, text) for name, text in files.items()}
    outputs = {name: _minify(type_, text) for name, text in files.items()}
    aligned = {name: check_output(type_, files[name], outputs[name], infos[name]) for name in files}
    for name, result in aligned.items():
        fault = result if isinstance(result, str) else result.fault
        if fault:
            print(f"  verification: {name}: {fault}")

    def verify() -> None:
        for name, text in files.items():
            check_output(type_, text, outputs[name], facts(type_, text))

    def maps() -> None:
        for name, result in aligned.items():
            if not isinstance(result, str):
                segments(type_, result.repaired or outputs[name], result.origin, result.literal, files[name])

    def total() -> None:
        cache._memory.clear()
        for text in files.values():
            minify_verified(type_, text)

    os.environ["BOSCO_CACHE"] = "0"
    figures = {"minify": best(lambda: [_minify(type_, t) for t in files.values()]), "verify": best(verify),
               "map": best(maps), "total (cold)": best(total)}
    del os.environ["BOSCO_CACHE"]
    with tempfile.TemporaryDirectory() as folder:
        os.environ["XDG_CACHE_HOME"] = folder
        total()
        figures["total (warm)"] = best(total)
    return figures


def bosco_output(type_: str, files: dict[str, str]) -> bytes:
    from bosco.verify import minify_verified

    return "\n".join(minify_verified(type_, t).code for t in files.values()).encode()


def esbuild_run(esbuild: Path, type_: str, files: dict[str, str]) -> tuple[float, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        src = Path(folder) / "src"
        paths = []
        for i, text in enumerate(files.values()):
            path = src / f"f{i}.{type_}"
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        argv = [str(esbuild), *paths, "--minify", "--sourcemap", "--log-level=error", f"--outdir={folder}/out"]
        seconds = best(lambda: subprocess.run(argv, check=True))
        out = b"\n".join((Path(folder) / "out" / f"f{i}.{type_}").read_bytes() for i in range(len(paths)))
    return seconds, out


def build_times(workspace: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "XDG_CACHE_HOME": folder}
        argv = [sys.executable, "-m", "bosco", "build", "-W", str(workspace), "-o", f"{folder}/out"]
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(argv, check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - start)
            shutil.rmtree(f"{folder}/out")
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--libs", type=Path, default=Path(tempfile.gettempdir()) / "bosco-bench-bundle")
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args()
    js, css, esbuild = corpus(args.libs)
    mb = {type_: sum(len(t.encode()) for t in files.values()) / 1e6 for type_, files in (("js", js), ("css", css))}
    print(f"corpus: JS {mb['js']:.2f} MB ({len(js)} files), CSS {mb['css']:.2f} MB ({len(css)} files)")
    for type_, files in (("js", js), ("css", css)):
        print(f"\n{type_.upper()} ({mb[type_]:.2f} MB)")
        figures = stages(type_, files)
        if esbuild:
            figures["esbuild --minify --sourcemap"], theirs = esbuild_run(esbuild, type_, files)
        print(f"  {'stage':<30} {'seconds':>8} {'MB/s':>8}")
        for stage, seconds in figures.items():
            print(f"  {stage:<30} {seconds:8.3f} {mb[type_] / seconds:8.1f}")
        if esbuild:
            ratio = figures["total (cold)"] / figures["esbuild --minify --sourcemap"]
            print(f"  bosco cold total / esbuild: {ratio:.1f}x")
        ours = bosco_output(type_, files)
        line = f"  gzip -9 size: bosco {len(gzip.compress(ours, 9)):,} B"
        if esbuild:
            line += f", esbuild {len(gzip.compress(theirs, 9)):,} B"
        print(line)
    if args.workspace:
        cold, warm = build_times(args.workspace)
        print(f"\nbosco build {args.workspace}: cold cache {cold:.2f} s, warm cache {warm:.2f} s (wall, one process)")


if __name__ == "__main__":
    main()
