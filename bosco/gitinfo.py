"""Git facts per service repo (GitPython): commit, branch, dirty files, origin, per-file history.

A service folder may be a repository of its own or a folder inside one (``search_parent_directories``);
paths given to and returned by this module are relative to the service folder, POSIX-style. Every
repository is read with at most two ``git`` processes: ``git status`` once per build, and one
``git log --name-only`` walk of the whole history for the last commit of every file, cached per
HEAD commit (and shallow boundary) in memory and in bosco's cache folder (``bosco.cache``).
Credentials in the ``origin`` URL (``https://user:token@host/...``, query strings) are never read
out of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bosco import cache


def _gitpython() -> Any:
    """GitPython's ``git`` package, imported on first use (it costs more start-up time than a command
    that reads no repository should pay), or None without a git executable (every folder is then
    "not a repository")."""
    try:
        import git
    except ImportError:  # pragma: no cover - git is installed wherever bosco's tests run
        return None
    return git


LOG_FORMAT = "%x01%H"  # one \x01 before each commit's SHA, then its NUL-terminated file names (-z)


@dataclass(frozen=True)
class RepoInfo:
    """What git knows about one service folder.

    ``commit`` is the full SHA of HEAD (None in a repository without commits); ``branch`` the checked
    out branch, None when HEAD is detached; ``origin`` the ``origin`` remote's URL without
    credentials (None when there is no such remote); ``changes`` maps each path (relative to the
    service folder) with uncommitted changes to its two-letter ``git status --porcelain`` code
    (``" M"``, ``"A "``, ``"??"`` untracked...); ignored files are not listed. ``root`` is the
    repository's working tree, ``prefix`` the service folder inside it (``""`` or ``"sub/dir/"``).
    ``shallow`` lists the boundary commits of a shallow clone (git's ``shallow`` file: ``git clone
    --depth``), None for a complete history; deepening a clone (``git fetch --unshallow``) changes
    the last commit of files under the same HEAD."""

    root: str
    prefix: str
    commit: str | None
    branch: str | None
    origin: str | None
    changes: dict[str, str]
    shallow: str | None = None

    @property
    def dirty(self) -> bool:
        """True when any file of the service folder has uncommitted changes (untracked files count)."""
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        """``{"commit", "branch", "detached", "dirty", "origin"}``: what a release records."""
        return {"commit": self.commit, "branch": self.branch, "detached": self.branch is None,
                "dirty": self.dirty, "origin": self.origin}

    def describe(self) -> str:
        """One short line: ``main@1a2b3c4 (dirty) https://host/x.git``."""
        where = self.branch or "detached"
        commit = self.commit[:7] if self.commit else "no commits"
        return f"{where}@{commit}" + (" (dirty)" if self.dirty else "") + (f" {self.origin}" if self.origin else "")


def public_url(url: str) -> str:
    """``url`` without credentials: the user name and password of a URL with a scheme (RFC 3986
    userinfo), its query and fragment are dropped (``https://user:token@host/x.git?t=1`` ->
    ``https://host/x.git``); an scp-like ``git@host:path`` keeps its (public) user name."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _run_git(repo: Any, *args: str) -> str:
    return repo.git.execute(["git", *args], strip_newline_in_stdout=False)


def _changes(repo: Any, prefix: str) -> dict[str, str]:
    """``git status`` of the service folder: path relative to it -> two-letter status code."""
    raw = _run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", prefix or ".")
    changes: dict[str, str] = {}
    entries = iter(raw.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(entries, None)  # the rename/copy source follows as its own entry
        if path.startswith(prefix):
            changes[path[len(prefix):]] = code
    return changes


def _shallow(repo: Any) -> str | None:
    """The boundary commits of a shallow clone (the ``shallow`` file of its git folder), else None."""
    try:
        return (Path(repo.common_dir) / "shallow").read_text()
    except (OSError, ValueError):
        return None


def repo_info(folder: Path) -> RepoInfo | None:
    """The git facts of ``folder`` (a service folder), or None when it is not inside a git working
    tree (or git is not installed). Runs one ``git status`` process; never raises for a broken or
    unreadable repository (that is None too)."""
    git = _gitpython()
    if git is None:
        return None
    try:
        repo = git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None
    try:
        if repo.bare or repo.working_tree_dir is None:
            return None
        root = Path(repo.working_tree_dir).resolve()
        rel = Path(folder).resolve().relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # a new repository: HEAD names a branch without commits
            commit = None
        branch = None if repo.head.is_detached else repo.head.reference.name
        origin = next((public_url(r.url) for r in repo.remotes if r.name == "origin"), None)
        return RepoInfo(str(root), prefix, commit, branch, origin, _changes(repo, prefix), _shallow(repo))
    except (git.GitError, OSError, ValueError):
        return None
    finally:
        repo.close()


def _history(info: RepoInfo) -> dict[str, str]:
    """Path (relative to the service folder) -> SHA of the last commit that touched it, for every
    file in the history of HEAD under the service folder: one ``git log --name-only -z`` walk."""
    assert info.commit is not None
    name = cache.key("git-last-commits", info.root, info.prefix, info.commit, info.shallow or "")
    found = cache.load(name)
    if isinstance(found, dict):
        return found
    repo = _gitpython().Repo(info.root)
    try:
        raw = _run_git(repo, "-c", "core.quotePath=false", "log", f"--format={LOG_FORMAT}", "--name-only", "-z",
                       info.commit, "--", info.prefix or ".")
    finally:
        repo.close()
    last: dict[str, str] = {}
    for record in raw.split("\x01")[1:]:
        sha, *paths = record.split("\0")
        for path in paths:
            path = path.lstrip("\n")
            if path.startswith(info.prefix):
                last.setdefault(path[len(info.prefix):], sha)
    cache.store(name, last)
    return last


def last_commits(info: RepoInfo, paths: list[str]) -> dict[str, str | None]:
    """For each path (relative to the service folder) the full SHA of the last commit of HEAD's
    history that touched it, None for a path never committed (untracked, ignored or generated).
    Raises ``git.GitCommandError`` when the history cannot be read."""
    history = _history(info) if info.commit else {}
    return {path: history.get(path) for path in paths}


def commits_between(info: RepoInfo, old: str, new: str, limit: int = 50) -> list[dict[str, str]] | None:
    """The commits reachable from ``new`` but not from ``old`` that touch the service folder, newest
    first, at most ``limit``: ``[{"commit": full SHA, "subject": first line}]``. None when the local
    repository does not have both commits (a shallow clone, an unfetched branch)."""
    git = _gitpython()
    repo = git.Repo(info.root)
    try:
        raw = _run_git(repo, "log", "--format=%H %s", f"--max-count={limit}", f"{old}..{new}", "--",
                       info.prefix or ".")
    except git.GitCommandError:
        return None
    finally:
        repo.close()
    return [{"commit": sha, "subject": subject} for sha, _, subject in (line.partition(" ") for line in
                                                                        raw.splitlines() if line)]
