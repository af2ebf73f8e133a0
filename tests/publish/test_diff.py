"""bosco diff and s3push's pre-push diff: releases on moto's S3 server, services in real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

from .gitsupport import commit, git_workspace
from .s3support import MANIFESTS, run, write_workspace


def setup_two_releases(tmp_path: Path, moto_url: str, bucket: str) -> tuple[Path, dict[str, str]]:
    """Build 1 published from the git workspace, then two commits in app-web: b.js grows and a
    new bundle js/extra appears."""
    workspace, sha = git_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1"})
    assert run(workspace, "s3push", "-n", "-b", "1").exit_code == 0
    web = workspace / "app-web"
    (web / "public/js/b.js").write_text("answer = answer + 2;\nconsole.log('the answer is', answer);\n")
    sha["grow"] = commit(web, "b says more")
    (web / "public/js/c.js").write_text("console.log('extra');\n")
    manifest = json.loads(json.dumps(MANIFESTS["app-web"]))
    manifest["assets"]["js"]["extra"] = ["js/c.js"]
    (web / "bosco-service.json").write_text(json.dumps(manifest))
    sha["extra"] = commit(web, "extra bundle")
    return workspace, sha


def stored(s3, bucket: str, key: str) -> dict[str, int]:
    def size(k: str) -> int:
        return s3.head_object(Bucket=bucket, Key=f"tes/{k}")["ContentLength"]

    raw = len(s3.get_object(Bucket=bucket, Key=f"tes/{key}")["Body"].read())  # boto3 does not decode gzip
    return {"gzip": raw, "br": size(key + ".br")}


def test_diff_local_against_the_current_release(tmp_path, moto_url, s3, bucket):
    workspace, sha = setup_two_releases(tmp_path, moto_url, bucket)
    result = run(workspace, "diff", "--json")
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout)
    assert (diff["from"], diff["to"]) == ("current", "local")
    other, web = diff["services"]
    assert other == {"service": "app-other", "status": "unchanged", "from": "1", "to": "local", "bundles": [],
                     "files": {"added": [], "removed": [], "changed": []},
                     "sources": {"added": [], "removed": [], "changed": []},
                     "git": {"from": sha["other"], "to": sha["other"], "range": None, "commits": None}}
    assert web["status"] == "changed" and (web["from"], web["to"]) == ("1", "local")
    assert web["sources"] == {"added": ["app-web/public/js/c.js"], "removed": [],
                              "changed": ["app-web/public/js/b.js"]}
    assert web["git"] == {"from": sha["second"], "to": sha["extra"],
                          "range": f"{sha['second'][:7]}..{sha['extra'][:7]}",
                          "commits": [{"commit": sha["extra"], "subject": "extra bundle"},
                                      {"commit": sha["grow"], "subject": "b says more"}]}
    rows = {r["bundle"]: r for r in web["bundles"]}
    assert set(rows) == {"js/top.js", "js/extra.js"}
    assert rows["js/extra.js"]["status"] == "added" and rows["js/extra.js"]["raw"]["before"] == 0
    top = rows["js/top.js"]
    before = stored(s3, bucket, "app-web/1/js/top.js")
    assert top["status"] == "changed"
    assert (top["gzip"]["before"], top["br"]["before"]) == (before["gzip"], before["br"])
    # the same bytes pushed as build 2 are stored at exactly the sizes the diff announced
    pushed = run(workspace, "s3push", "-n", "-b", "2", "--json")
    assert pushed.exit_code == 0, pushed.output
    after = stored(s3, bucket, "app-web/2/js/top.js")
    assert (top["gzip"]["after"], top["br"]["after"]) == (after["gzip"], after["br"])
    assert top["br"]["delta"] == after["br"] - before["br"]
    sizes = {b: next(o["size"] for o in json.loads(s3.get_object(Bucket=bucket, Key=f"tes/app-web/{b}/release.json")
                                                  ["Body"].read())["objects"] if o["key"] == f"app-web/{b}/js/top.js")
             for b in ("1", "2")}
    assert top["raw"] == {"before": sizes["1"], "after": sizes["2"], "delta": sizes["2"] - sizes["1"]}
    assert json.loads(pushed.stdout)["diff"]["services"][1]["bundles"] == web["bundles"]
    text = run(workspace, "diff", "--from", "1", "--to", "2")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "diff 1 -> 2"
    assert lines[1] == "app-other: unchanged (1 -> 2)"
    assert lines[2] == f"app-web: changed (1 -> 2, git {sha['second'][:7]}..{sha['extra'][:7]})"
    assert f"  {sha['grow'][:7]} b says more" in lines
    assert any(line.startswith("  + js/extra.js  raw 0 -> ") for line in lines)
    assert "  sources: +app-web/public/js/c.js, ~app-web/public/js/b.js" in lines


def test_s3push_shows_the_diff_before_asking(tmp_path, moto_url, s3, bucket):
    workspace, sha = setup_two_releases(tmp_path, moto_url, bucket)
    result = run(workspace, "s3push", "--dry-run", "-b", "2")
    assert result.exit_code == 0, result.output
    assert "diff current -> 2" in result.stderr
    assert f"app-web: changed (1 -> 2, git {sha['second'][:7]}..{sha['extra'][:7]})" in result.stderr
    assert "app-other: unchanged (1 -> 2)" in result.stderr
    first = run(workspace, "-r", "app-other", "s3push", "-n", "-b", "3", "--json")
    assert json.loads(first.stdout)["diff"]["services"][0]["status"] == "unchanged"


def test_a_service_without_release_is_added(tmp_path, moto_url, s3, bucket):
    workspace, _ = git_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1"})
    result = run(workspace, "diff", "--json")
    assert result.exit_code == 0, result.output
    web = json.loads(result.stdout)["services"][1]
    assert web["status"] == "added" and web["from"] is None and web["sources"] is None
    assert {r["bundle"]: r["raw"]["before"] for r in web["bundles"]} == {"js/top.js": 0, "css/main.css": 0}
    assert run(workspace, "diff", "--from", "local", "--to", "local").exit_code == 2


def test_diff_json_failure_is_one_json_object_on_stdout(tmp_path, moto_url):
    workspace = write_workspace(tmp_path / "ws", {"bucket": "no-such-bucket", "endpoint": moto_url,
                                                  "region": "us-east-1", "attempts": 1})
    result = run(workspace, "diff", "--from", "1", "--to", "2", "--json")
    assert result.exit_code == 1
    failure = json.loads(result.stdout)
    assert failure["ok"] is False and failure["hint"] == "create the bucket or fix aws.bucket"
    assert [e.split(": ")[0] for e in failure["errors"]] == ["s3://no-such-bucket/tes/app-other/1/release.json"]


def test_diff_reads_the_bucket_before_building(tmp_path, moto_url):
    workspace = write_workspace(tmp_path / "ws", {"bucket": "no-such-bucket", "endpoint": moto_url,
                                                  "region": "us-east-1", "attempts": 1})
    manifest = workspace / "app-web/bosco-service.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "build": {"command": "touch built"}}))
    result = run(workspace, "diff", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["hint"] == "create the bucket or fix aws.bucket"
    assert not (workspace / "app-web/built").exists()  # the build.command never ran
