"""Real git repositories for the provenance tests: ``git init``, commits, remotes, made with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .s3support import FILES, write_workspace

TOKEN = "ghp_s3cr3tT0ken"
ORIGIN = f"https://deploy:{TOKEN}@git.example.com/team/app-web.git"

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


def git_workspace(root: Path, aws: dict) -> tuple[Path, dict[str, str]]:
    """The publish fixture workspace with app-web a repository (two commits, origin with a token)
    and app-other one with a detached HEAD. Returns the workspace and the SHAs by name."""
    workspace = write_workspace(root, aws)
    web = workspace / "app-web"
    first = init_repo(web, ORIGIN, "first")
    (web / "public/js/b.js").write_bytes(FILES["app-web"]["public/js/b.js"] + b"console.log('b');\n")
    second = commit(web, "b logs")
    other = init_repo(workspace / "app-other")
    git(workspace / "app-other", "checkout", "-q", "--detach")
    return workspace, {"first": first, "second": second, "other": other}
