"""Git provenance of releases: real git repositories in tmp folders, build --out and s3push to moto."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import runpy

from bosco import app, stamps
from bosco.gitinfo import last_commits, public_url, repo_info

from .gitsupport import TOKEN, commit, git, git_workspace, init_repo
from .s3support import FILES, keys, run, write_workspace


def test_build_out_records_commit_branch_origin_and_last_commit_per_file(tmp_path):
    workspace, sha = git_workspace(tmp_path / "ws", {"cdn": "https://cdn.example.com"})
    out = tmp_path / "out"
    result = run(workspace, "build", "--out", str(out), "-b", "7")
    assert result.exit_code == 0, result.output
    index = json.loads((out / "app-web/7/release.json").read_bytes())
    assert index["git"] == {"commit": sha["second"], "branch": "main", "detached": False, "dirty": False,
                            "origin": "https://git.example.com/team/app-web.git"}
    b_js = (workspace / "app-web/public/js/b.js").read_bytes()
    assert index["sources"]["app-web/public/js/a.js"] == {
        "sha256": hashlib.sha256(FILES["app-web"]["public/js/a.js"]).hexdigest(), "commit": sha["first"]}
    assert index["sources"]["app-web/public/js/b.js"] == {"sha256": hashlib.sha256(b_js).hexdigest(),
                                                          "commit": sha["second"]}
    assert index["sources"]["app-web/site/favicon.ico"]["commit"] == sha["first"]
    top = next(o for o in index["objects"] if o["key"] == "app-web/7/js/top.js")
    assert top["sources"] == ["app-web/public/js/a.js", "app-web/public/js/b.js"]
    other = json.loads((out / "app-other/7/release.json").read_bytes())
    assert other["git"] == {"commit": sha["other"], "branch": None, "detached": True, "dirty": False,
                            "origin": None}
    assert f"app-web: git main@{sha['second'][:7]} https://git.example.com/team/app-web.git" in result.stderr
    assert f"app-other: git detached@{sha['other'][:7]}" in result.stderr
    page = (out / "index.html").read_text()
    assert f"git main <code>{sha['second'][:12]}</code> https://git.example.com/team/app-web.git" in page
    assert "warning" not in result.stderr
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert TOKEN.encode() not in written and TOKEN not in result.output and b"deploy" not in written


def test_a_folder_outside_git_is_recorded_as_null_with_one_warning(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    init_repo(workspace / "app-web")
    out = tmp_path / "out"
    result = run(workspace, "build", "--out", str(out))
    assert result.exit_code == 0, result.output
    index = json.loads((out / "app-other/default/release.json").read_bytes())
    assert index["git"] is None
    assert index["sources"]["app-other/src/x.js"] == {
        "sha256": hashlib.sha256(FILES["app-other"]["src/x.js"]).hexdigest(), "commit": None}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ['warning: not in a git repository, recorded without provenance ("git": null): app-other']
    assert "not a git repository" in (out / "index.html").read_text()


def test_s3push_refuses_uncommitted_published_files_unless_allow_dirty(tmp_path, moto_url, s3, bucket):
    aws = {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1"}
    workspace, _ = git_workspace(tmp_path / "ws", aws)
    web = workspace / "app-web"
    (web / "public/js/a.js").write_bytes(b"var answer = 41;\n")
    (web / "public/img/new.svg").write_bytes(b"<svg/>\n")
    (web / "notes.txt").write_text("not published\n")
    result = run(workspace, "s3push", "-n", "-b", "8")
    assert result.exit_code == 1
    assert ("error: app-web: uncommitted changes in files it would publish: public/img/new.svg (??), "
            "public/js/a.js ( M) (commit them, or pass --allow-dirty)") in result.stderr
    assert "notes.txt" not in result.stderr and "app-other: uncommitted" not in result.stderr
    assert keys(s3, bucket) == {}
    out = tmp_path / "out"
    built = run(workspace, "build", "--out", str(out))
    assert built.exit_code == 0 and "warning: app-web: uncommitted changes in files it would publish" in built.stderr
    pushed = run(workspace, "s3push", "-n", "-b", "8", "--allow-dirty", "--json")
    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert report["git"]["app-web"]["dirty"] is True and report["git"]["app-other"]["dirty"] is False
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/8/release.json")["Body"].read())
    assert index["git"]["dirty"] is True
    assert index["sources"]["app-web/public/img/new.svg"]["commit"] is None
    page = gzip.decompress(s3.get_object(Bucket=bucket, Key="tes/index.html")["Body"].read()).decode()
    assert "uncommitted changes" in page


def test_last_commits_follow_renames_subfolders_and_new_commits(tmp_path):
    repo = tmp_path / "mono"
    service = repo / "services" / "web"
    (service / "js").mkdir(parents=True)
    (service / "js" / "a.js").write_text("a\n")
    (service / "js" / "b c.js").write_text("b\n")
    (repo / "README").write_text("top\n")
    first = init_repo(repo, "git@github.com:team/mono.git")
    git(repo, "mv", "services/web/js/a.js", "services/web/js/z.js")
    renamed = commit(repo, "rename")
    info = repo_info(service)
    assert info is not None and info.prefix == "services/web/" and info.origin == "git@github.com:team/mono.git"
    assert last_commits(info, ["js/z.js", "js/b c.js", "js/none.js", "README"]) == {
        "js/z.js": renamed, "js/b c.js": first, "js/none.js": None, "README": None}
    (service / "js" / "b c.js").write_text("b2\n")
    again = commit(repo, "b again")
    info = repo_info(service)
    assert info.commit == again and last_commits(info, ["js/b c.js"]) == {"js/b c.js": again}
    (service / "js" / "z.js").write_text("dirty\n")
    assert repo_info(service).changes == {"js/z.js": " M"}
    assert repo_info(tmp_path) is None


def test_a_shallow_clone_deepened_under_the_same_head_records_the_older_last_commits(tmp_path, monkeypatch):
    """In a ``git clone --depth 1`` every file's last commit is the shallow boundary; after ``git
    fetch --unshallow`` (same HEAD) the release records the real ones, in a build --out run again
    into the same folder too (the history and the run are not taken from the cache)."""
    monkeypatch.setattr(stamps, "RACY_NS", 0)  # the replay would apply at once (``stamps.RACY_NS``)
    workspace, sha = git_workspace(tmp_path / "ws", {})
    clone = tmp_path / "clone"
    (clone / ".bosco").mkdir(parents=True)
    git(tmp_path, "clone", "-q", "--depth", "1", (workspace / "app-web").as_uri(), str(clone / "app-web"))
    out = tmp_path / "out"

    def a_js_commit() -> str:
        result = run(clone, "build", "--out", str(out))
        assert result.exit_code == 0, result.output
        return json.loads((out / "app-web/default/release.json").read_bytes())["sources"]["app-web/public/js/a.js"][
            "commit"]

    assert a_js_commit() == sha["second"]  # the only commit a depth-1 clone has
    git(clone / "app-web", "fetch", "-q", "--unshallow")
    assert a_js_commit() == sha["first"]


def test_public_url_drops_every_credential():
    assert public_url(f"https://user:{TOKEN}@host.example/x.git") == "https://host.example/x.git"
    assert public_url(f"https://{TOKEN}@host.example:8443/x.git?private_token=1#f") == "https://host.example:8443/x.git"
    assert public_url("ssh://git:pw@host/x.git") == "ssh://host/x.git"
    assert public_url("git@github.com:team/x.git") == "git@github.com:team/x.git"


def test_the_example_workspace_script_makes_one_clean_repository_per_service(tmp_path):
    from conftest import REPO

    make = runpy.run_path(str(REPO / "examples" / "git_workspace.py"))["make"]
    repos = make(tmp_path / "example")
    assert [r.name for r in repos] == ["app-checkout", "app-home", "app-reports", "service-api"]
    for repo in repos:
        info = repo_info(repo)
        assert info is not None and info.prefix == "" and info.branch == "main" and not info.dirty
        assert info.origin == f"https://git.example.com/shop/{repo.name}.git"
    out = tmp_path / "out"
    result = run(tmp_path / "example", "build", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "app-home/default/release.json").read_bytes())["git"]["commit"] == repo_info(
        repos[1]).commit


class _SavesAfterBuilding(app.Reporter):
    """A reporter that saves ``path`` with ``data`` as soon as the build reports ``service`` built,
    before the release's provenance is read: an editor saving during a publish."""

    def __init__(self, service, path, data):
        self.service, self.path, self.data = service, path, data

    @contextlib.contextmanager
    def progress(self, label, total):
        def advance(name):
            if name == self.service:
                self.path.write_bytes(self.data)
        yield advance


def test_release_json_records_the_bytes_built_not_a_file_saved_after_the_build(tmp_path):
    """A source saved again between its bundle's build and the reading of the release's provenance:
    ``sources`` records the SHA-256 of the bytes in the bundle (they came from the whole-bundle
    cache, keyed by that digest), not of the new file (it recorded the new file's digest beside a
    bundle built from the old bytes)."""
    workspace = write_workspace(tmp_path / "ws", {})
    a_js = workspace / "app-web/public/js/a.js"
    old = FILES["app-web"]["public/js/a.js"]
    ws = app.open_workspace(workspace)
    app.build_to(ws, tmp_path / "first")  # the bundle of the old bytes is cached whole
    app.build_to(ws, tmp_path / "out", reporter=_SavesAfterBuilding("app-web", a_js, b"var answer = 41;\n"))
    index = json.loads((tmp_path / "out/app-web/default/release.json").read_bytes())
    assert b"answer=40" in (tmp_path / "out/app-web/default/js/top.js").read_bytes()
    assert index["sources"]["app-web/public/js/a.js"]["sha256"] == hashlib.sha256(old).hexdigest()
