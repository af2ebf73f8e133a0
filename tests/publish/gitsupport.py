"""Real git repositories for the provenance tests: ``git init``, commits, remotes, made with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    """Run ``git args`` in ``repo`` (fixed identity, no system config) and return its stripped stdout."""
    env = {**os.environ, **IDENTITY}
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def init_repo(repo: Path, origin: str | None = None, message: str = "initial") -> str:
    """Make ``repo`` a git repository on branch ``main`` with everything committed; returns the SHA."""
    git(repo, "init", "-q", "-b", "main")
    if origin:
        git(repo, "remote", "add", "origin", origin)
    return commit(repo, message)


def commit(repo: Path, message: str) -> str:
    """Commit every change in ``repo`` (``git add -A``) and return the new HEAD SHA."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")
