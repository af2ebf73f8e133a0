#!/usr/bin/env python3
"""What provenance, the pre-push diff and duplicate detection add to an s3push, on the benchmark workspace.

    python3 bench/provenance.py [--workspace /tmp/bosco-bench/workspace]

Needs the `bench` extra (moto server). Copies the workspace to a temporary folder, makes every
service a git repository (one commit), starts `python -m moto.server` on a free 127.0.0.1 port,
publishes build 1 (`bosco s3push -n`), then changes one JS file in one service and commits it.
It prints `bosco diff` and the duplicate warnings, then times, in one process on the built asset
set (the machine may be shared: the load average is printed):

  - duplicates.find (cold: no file facts cached; warm: a second call, as cdn after a rebuild)
  - provenance.collect (git status is part of the build; this is the history walk, cold disk cache
    and warm) and the release records
  - the diff: compressing the bundles (cold and warm compression cache; the push reuses the bodies),
    reading the current release indexes from S3 and comparing
and, as the baseline in the same run, the whole `bosco s3push -n -b 2` of the changed workspace.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from publish import start_moto, timed  # noqa: E402

GIT = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT}, check=True, capture_output=True)


def clock(label: str, func, *args):
    start = time.perf_counter()
    value = func(*args)
    print(f"  {label:<58} {time.perf_counter() - start:7.3f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bosco-bench/workspace"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bosco-prov-"))
    ws = tmp / "ws"
    shutil.copytree(args.workspace, ws)
    services = sorted(p for p in ws.iterdir() if (p / "bosco-service.json").is_file())
    for repo in services:
        git(repo, "init", "-q", "-b", "main")
        git(repo, "remote", "add", "origin", f"https://ci:secret-token@git.example.com/team/{repo.name}.git")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"{repo.name}: import")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "XDG_CACHE_HOME": str(tmp / "cache"), "AWS_CONFIG_FILE": str(tmp / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none")}
    moto, url = start_moto(env)
    try:
        import boto3

        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket="bench")
        (ws / ".bosco").mkdir(exist_ok=True)
        (ws / ".bosco" / "bench.json").write_text(
            f'{{"aws": {{"bucket": "bench", "endpoint": "{url}", "region": "us-east-1"}}}}')
        bosco = [sys.executable, "-m", "bosco", "-W", str(ws), "-e", "bench"]
        first, _ = timed([*bosco, "s3push", "-n", "-b", "1"], env)
        print(f"s3push -b 1 (first, cold caches): {first:.1f} s")
        changed = services[0]
        script = next(changed.glob("public/js/*.js"))
        script.write_text(script.read_text() + "\nconsole.log('bench change');\n")
        git(changed, "commit", "-q", "-am", "log a bench line")
        wall, diff_text = timed([*bosco, "diff"], env)
        print(f"\n$ bosco -e bench diff   ({wall:.1f} s, a whole process: build + diff)\n{diff_text}")
        run_in_process(ws, env)
        push, _ = timed([*bosco, "s3push", "-n", "-b", "2"], env)
        print(f"\nbaseline: whole `bosco s3push -n -b 2` of the changed workspace: {push:.1f} s")
        print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def run_in_process(ws: Path, env: dict[str, str]) -> None:
    os.environ.update(env)
    from bosco import cache, duplicates, provenance
    from bosco.config import load_config
    from bosco.diff import diff_releases, local_indexes, read_release
    from bosco.pipeline import BuildOptions, build_asset_set
    from bosco.publish.compress import CompressionCache, default_cache_dir
    from bosco.publish.plan import PublishOptions, released_outputs
    from bosco.publish.s3 import s3_target
    from bosco.sizes import compressed_sizes
    from bosco.workspace import discover_services

    config = load_config(ws, "bench")
    services, _ = discover_services(ws, config)
    options = BuildOptions(build="2", minify=True, bundle=True, sri=True, base_url="/bench")
    print("\nin one process, on the built asset set of build 2:")
    asset_set = clock("build the asset set (includes duplicates.find and git status)", build_asset_set,
                      services, options)
    from bosco.gitinfo import repo_info

    clock(f"git status of the {len(services)} repositories (repo_info, one after another)",
          lambda: [repo_info(s.path) for s in services])
    duplicates._files.clear()
    found = clock("duplicates.find, cold (every file read and hashed)", duplicates.find, asset_set.services)
    clock("duplicates.find, warm (stat only, as after a cdn rebuild)", duplicates.find, asset_set.services)
    outputs = released_outputs(asset_set, PublishOptions("bench", "2"))
    cache._memory.clear()
    cached = os.environ["XDG_CACHE_HOME"]
    os.environ["XDG_CACHE_HOME"] = cached + "-empty"  # no history cached on disk either
    clock("provenance.collect, cold (one git log per repository)", provenance.collect, asset_set.services, outputs)
    os.environ["XDG_CACHE_HOME"] = cached
    records = clock("provenance.collect, warm (history cached by HEAD)", provenance.collect, asset_set.services,
                    outputs)
    bundles = [o for o in outputs if o.kind == "bundle"]
    cold = CompressionCache(None, config.brotli.quality, config.brotli.mapquality, os.cpu_count() or 1)
    with cold:
        clock(f"compress {len(bundles)} bundles, cold (what the push would do anyway)", compressed_sizes, bundles,
              cold)
    with CompressionCache(default_cache_dir(), config.brotli.quality, config.brotli.mapquality,
                          os.cpu_count() or 1) as warm:
        sizes = clock("compressed sizes, warm cache (bodies stored by the first push)", compressed_sizes, bundles,
                      warm)
    target = s3_target(config, "bench", 16)
    names = [s.name for s in asset_set.services]
    before = clock("read 20 releases.json + release.json from S3", lambda: {n: read_release(target, n, None)
                                                                             for n in names})
    recs = {n: p.record() for n, p in records.items()}
    after = local_indexes(names, outputs, recs, sizes, "2")
    clock("diff_releases (compare, commit subjects from git)", diff_releases, before, after,
          {s.name: s.git for s in asset_set.services}, "current", "2")
    print(f"\nduplicate warnings ({len(found)}):")
    for d in found:
        print(f"warning: duplicate: {d.describe()}")


if __name__ == "__main__":
    main()
