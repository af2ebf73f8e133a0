"""bosco build --out into a folder it already wrote: when nothing it depends on changed it writes
nothing and reports what a full run reports, without building; any change builds again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bosco import stamps

from .gitsupport import commit, git_workspace
from .s3support import run, write_workspace


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


SKIPPED = "nothing changed since the last build into"


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    # the files here are milliseconds old: trust their stat at once (bosco waits until a file is
    # older than a coarse file system's clock tick, ``stamps.RACY_NS``; the test edits come later)
    monkeypatch.setattr(stamps, "RACY_NS", 0)
    workspace = write_workspace(tmp_path / "ws", {})
    (workspace / "app-web/public/css/site.css").write_text('@import "parts/vars.css";\nbody { color: red; }\n')
    (workspace / "app-web/public/css/parts").mkdir()
    (workspace / "app-web/public/css/parts/vars.css").write_text(".vars { margin: 0; }\n")
    out = tmp_path / "out"
    first = run(workspace, "build", "--out", str(out), "-v")
    assert first.exit_code == 0, first.output
    assert SKIPPED not in first.stderr
    return workspace, out


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (same length) in place, keeping the mtime: only ctime and bytes tell."""
    st = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_nothing_changed_reports_what_a_full_run_reports(built, monkeypatch):
    workspace, out = built
    before = files(out)
    again = run(workspace, "build", "--out", str(out), "--json", "-v")
    assert again.exit_code == 0, again.output
    assert SKIPPED in again.stderr
    assert files(out) == before
    monkeypatch.setenv("BOSCO_CACHE", "0")  # no folder state: a full build that finds every file in place
    full = run(workspace, "build", "--out", str(out), "--json", "-v")
    assert SKIPPED not in full.stderr
    assert json.loads(again.stdout) == json.loads(full.stdout)
    assert json.loads(full.stdout)["written"] == 0
    assert again.stderr.replace(f"detail: {SKIPPED} {out}: not built again\n", "") == full.stderr


@pytest.mark.parametrize("change", ["input", "import", "new file", "new file, folder time kept", "option", "config",
                                    "output"])
def test_any_change_builds_again(built, change):
    workspace, out = built
    web = workspace / "app-web"
    args = ["build", "--out", str(out)]
    if change == "input":
        edit(web / "public/js/a.js", "40", "41")
    elif change == "import":
        edit(web / "public/css/parts/vars.css", "margin: 0", "margin: 7")
    elif change == "new file":
        (web / "public/img/new.png").write_bytes(b"\x89PNG new")
    elif change == "new file, folder time kept":  # as `tar x`, `rsync -t` or `cp -p` leave a folder they fill
        st = (web / "public/img").stat()
        (web / "public/img/new.png").write_bytes(b"\x89PNG new")
        os.utime(web / "public/img", ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "option":
        args += ["-b", "56"]
    elif change == "config":
        (workspace / ".bosco/bosco.json").write_text(json.dumps({"fragments": {"sri": False}}))
    else:
        (out / "app-web/default/js/top.js").write_text("tampered")
    again = run(workspace, *args, "-v")
    assert again.exit_code == 0, again.output
    assert SKIPPED not in again.stderr
    written = files(out)
    if change == "input":
        assert b"41" in written["app-web/default/js/top.js"]
    elif change == "import":
        assert b"margin:7" in written["app-web/default/css/main.css"]
    elif change.startswith("new file"):
        assert written["app-web/default/img/new.png"] == b"\x89PNG new"
    elif change == "option":
        assert "app-web/56/js/top.js" in written
    elif change == "config":
        assert b"integrity" not in written["app-web/default/html/top.js.html"]
    else:
        assert written["app-web/default/js/top.js"] != b"tampered"
    third = run(workspace, *args, "-v")
    assert SKIPPED in third.stderr and files(out) == written


def test_a_bundle_taken_from_the_cache_still_depends_on_its_imports(built, tmp_path):
    """A second folder built from cached bundles records the files those bundles were made from."""
    workspace, _ = built
    other = tmp_path / "other"
    assert run(workspace, "build", "--out", str(other), "-v").exit_code == 0  # every bundle from the cache
    edit(workspace / "app-web/public/css/parts/vars.css", "margin: 0", "margin: 7")
    again = run(workspace, "build", "--out", str(other), "-v")
    assert SKIPPED not in again.stderr
    assert b"margin:7" in (other / "app-web/default/css/main.css").read_bytes()


def test_a_new_commit_or_an_uncommitted_file_builds_again(tmp_path, monkeypatch):
    """The release records the git facts of each service: a commit that changes no published file,
    or a new untracked file, is a change."""
    monkeypatch.setattr(stamps, "RACY_NS", 0)
    workspace, _ = git_workspace(tmp_path / "ws", {})
    web, out = workspace / "app-web", tmp_path / "out"
    assert run(workspace, "build", "--out", str(out), "-v").exit_code == 0
    assert SKIPPED in run(workspace, "build", "--out", str(out), "-v").stderr
    (web / "README.md").write_text("notes\n")
    untracked = run(workspace, "build", "--out", str(out), "-v")
    assert SKIPPED not in untracked.stderr
    assert json.loads((out / "app-web/default/release.json").read_text())["git"]["dirty"] is True
    sha = commit(web, "notes")
    again = run(workspace, "build", "--out", str(out), "-v")
    assert SKIPPED not in again.stderr
    assert json.loads((out / "app-web/default/release.json").read_text())["git"]["commit"] == sha


def test_a_build_after_the_unchanged_check_runs_git_status_once_per_repository(tmp_path, monkeypatch):
    """The unchanged check reads every service's git facts; the build that follows records those
    instead of running ``git status`` again (a real git behind a PATH wrapper that logs its calls)."""
    monkeypatch.setattr(stamps, "RACY_NS", 0)
    workspace, _ = git_workspace(tmp_path / "ws", {})
    real, log, wrapper = shutil.which("git"), tmp_path / "git-calls.log", tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    first = run(workspace, "build", "--out", str(out), "-v")
    assert first.exit_code == 0, first.output
    assert SKIPPED not in first.stderr
    statuses = [line for line in log.read_text().splitlines() if " status " in f" {line} "]
    assert len(statuses) == 2  # app-web and app-other, once each
    release = json.loads((out / "app-web/default/release.json").read_text())["git"]
    assert release["dirty"] is False and release["branch"] == "main"


def test_nothing_changed_loads_neither_the_build_nor_the_publish_modules(built):
    """The unchanged check answers before the build pipeline, the minifiers and the publish code
    load (a fresh interpreter, as the ``bosco`` command starts)."""
    workspace, out = built
    code = ("import sys\nfrom bosco.cli import cli\n"
            "try:\n    cli(sys.argv[1:], prog_name='bosco')\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('bosco', 'rich', 'numpy')))))")
    done = subprocess.run([sys.executable, "-c", code, "-W", str(workspace), "-e", "tes", "build", "--out", str(out),
                           "-v"], capture_output=True, text=True, check=True)
    assert SKIPPED in done.stderr
    loaded = set(done.stdout.split())
    assert "bosco.noop" in loaded
    assert not loaded & {"bosco.pipeline", "bosco.bundle", "bosco.publish.plan", "bosco.publish.execute",
                         "bosco.publish.compress", "bosco.publish.audit", "rich.progress", "rich.table", "numpy"}


def test_a_damaged_compiled_template_is_compiled_again(tmp_path):
    """A compiled template in the cache folder that cannot be read back (cut short by a crash, say)
    is compiled again: no traceback, and the same pages as with a sound cache."""
    from jinja2.bccache import bc_magic

    workspace = write_workspace(tmp_path / "ws", {})
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def build(out: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bosco", "-W", str(workspace), "build", "--out", str(out)],
                              env=env, capture_output=True, text=True)

    first = build(tmp_path / "one")
    assert first.returncode == 0, first.stderr
    compiled = list((tmp_path / "cache").glob("bosco/*/templates/__jinja2_*.cache"))
    assert compiled
    for path in compiled:
        path.write_bytes(path.read_bytes()[:len(bc_magic) + 3])  # the magic, then part of the checksum
    again = build(tmp_path / "two")
    assert again.returncode == 0, again.stderr
    pages = {p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.html")}
    assert pages and all((tmp_path / "two" / p).read_bytes() == (tmp_path / "one" / p).read_bytes() for p in pages)
