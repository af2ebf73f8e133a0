#!/usr/bin/env python3
"""Copy the example workspace to DEST and make each service a git repository of its own.

    python3 examples/git_workspace.py /tmp/example && cd /tmp/example && bosco build --out /tmp/out

Each service gets one commit on branch `main` and an `origin` remote, so provenance (the `git`
record of release.json), `bosco diff` and the uncommitted-changes check of `s3push` can be tried
on it (README, "Provenance"). DEST must not exist yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "workspace"
IDENTITY = {"GIT_AUTHOR_NAME": "bosco example", "GIT_AUTHOR_EMAIL": "example@example.com",
            "GIT_COMMITTER_NAME": "bosco example", "GIT_COMMITTER_EMAIL": "example@example.com"}


def make(dest: Path) -> list[Path]:
    """Copy the example to ``dest`` (without build output) and commit each service; returns the repos."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    repos = sorted(p for p in dest.iterdir() if (p / "bosco-service.json").is_file())
    env = {**os.environ, **IDENTITY}
    for repo in repos:
        (repo / ".gitignore").write_text("dist/\n")
        origin = f"https://git.example.com/shop/{repo.name}.git"
        for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", origin], ["add", "-A"],
                     ["commit", "-q", "-m", f"{repo.name}: initial import"]):
            subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    return repos


if __name__ == "__main__":
    if len(sys.argv) != 2 or Path(sys.argv[1]).exists():
        sys.exit("usage: python3 examples/git_workspace.py DEST (a folder that does not exist yet)")
    for repo in make(Path(sys.argv[1])):
        print(repo)
