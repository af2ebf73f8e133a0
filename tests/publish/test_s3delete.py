"""bosco s3delete against moto's S3 server: exact prefixes, pagination, the current release."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from .s3support import assert_consistent, keys, page_links, run, stored_bytes


def push(workspace, build: str) -> None:
    result = run(workspace, "s3push", "-n", "-b", build)
    assert result.exit_code == 0, result.output


def releases(s3, bucket: str, service: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"tes/{service}/releases.json")["Body"].read())


def test_build_1_never_matches_build_10(workspace, s3, bucket):
    push(workspace, "1")
    push(workspace, "10")
    ten = keys(s3, bucket, "tes/app-web/10/")
    one = keys(s3, bucket, "tes/app-web/1/")
    result = run(workspace, "s3delete", "app-web/1", "-n", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["target"] == f"s3://{bucket}/tes/"
    assert sorted(report["deleted"]) == sorted(k.removeprefix("tes/") for k in one)
    assert keys(s3, bucket, "tes/app-web/1/") == {}
    assert keys(s3, bucket, "tes/app-web/10/") == ten
    assert keys(s3, bucket, "tes/app-other/1/") != {}
    record = releases(s3, bucket, "app-web")
    assert record["current"] == "10" and [r["build"] for r in record["releases"]] == ["10"]
    assert "deleted " + str(len(one)) + " objects" in result.stderr


def test_current_release_is_refused_unless_forced(workspace, s3, bucket):
    push(workspace, "1")
    push(workspace, "2")
    before = keys(s3, bucket)
    refused = run(workspace, "s3delete", "app-web/2", "-n")
    assert refused.exit_code == 1
    assert "app-web/2 is the current release in releases.json; nothing deleted" in refused.stderr
    assert "--force" in refused.stderr
    assert keys(s3, bucket) == before
    forced = run(workspace, "s3delete", "app-web/2", "-n", "--force")
    assert forced.exit_code == 0, forced.output
    assert keys(s3, bucket, "tes/app-web/2/") == {}
    assert releases(s3, bucket, "app-web")["current"] == "1"


def test_index_page_follows_filtered_pushes_and_deletes(workspace, s3, bucket):
    push(workspace, "54")
    assert run(workspace, "s3push", "-n", "-b", "55", "-r", "^app-web$").exit_code == 0
    # the filtered push regenerated the page: app-web at 55, app-other still at 54
    links = page_links(s3, bucket)
    assert {"app-web/55/js/top.js", "app-web/55/html/top.js.html", "app-other/54/js/bottom.js"} <= links
    assert not [k for k in links if k.startswith(("app-web/54/", "app-other/55/"))]
    result = run(workspace, "s3delete", "app-web/54", "-n")  # not current: allowed
    assert result.exit_code == 0, result.output
    assert_consistent(s3, bucket)  # the page never linked app-web/54 after the filtered push
    forced = run(workspace, "s3delete", "app-other/54", "-n", "--force")  # the only app-other release
    assert forced.exit_code == 0, forced.output
    assert not [k for k in page_links(s3, bucket) if k.startswith("app-other/")]
    assert "<h2>app-other</h2>" not in stored_bytes(s3, bucket, "tes/index.html").decode()
    assert run(workspace, "s3delete", "app-web/55", "-n", "--force").exit_code == 0
    assert [k for k in keys(s3, bucket) if k.startswith("tes/index.html")] == []  # no release left: no page


def test_build_alone_deletes_it_for_every_service(workspace, s3, bucket):
    push(workspace, "1")
    push(workspace, "2")
    result = run(workspace, "s3delete", "1", "-n")
    assert result.exit_code == 0, result.output
    assert keys(s3, bucket, "tes/app-web/1/") == {} and keys(s3, bucket, "tes/app-other/1/") == {}
    assert keys(s3, bucket, "tes/app-web/2/") != {}
    assert "tes/index.html" in keys(s3, bucket)  # shared keys are not part of any release


def test_more_than_1000_objects_are_all_deleted(workspace, s3, bucket):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: s3.put_object(Bucket=bucket, Key=f"tes/big/7/file-{n:04d}.js", Body=b"x"),
                      range(1205)))
    s3.put_object(Bucket=bucket, Key="tes/big/70/keep.js", Body=b"y")
    result = run(workspace, "s3delete", "big/7", "-n", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["deleted"]) == 1205
    assert keys(s3, bucket, "tes/big/") == {"tes/big/70/keep.js": keys(s3, bucket)["tes/big/70/keep.js"]}


def test_dry_run_and_prompt_rules(workspace, s3, bucket):
    push(workspace, "1")
    push(workspace, "2")
    before = keys(s3, bucket)
    dry = run(workspace, "s3delete", "app-web/1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "app-web/1/release.json" in dry.stdout.splitlines()
    no_tty = run(workspace, "s3delete", "app-web/1")
    assert no_tty.exit_code == 1 and "pass -n" in no_tty.stderr
    assert keys(s3, bucket) == before


def test_unknown_release_and_bad_names(workspace, s3, bucket):
    push(workspace, "1")
    missing = run(workspace, "s3delete", "app-web/9", "-n")
    assert missing.exit_code == 1
    assert f"no objects found for app-web/9 in s3://{bucket}/tes/" in missing.stderr
    bad = run(workspace, "s3delete", "app-web/..", "-n")
    assert bad.exit_code == 2 and '".." cannot be a key segment' in bad.stderr  # a usage error, before any S3 call


def test_service_release_is_deleted_from_a_workspace_without_that_service(tmp_path, moto_url, s3, bucket):
    root = tmp_path / "empty"
    (root / ".bosco").mkdir(parents=True)
    (root / ".bosco" / "tes.json").write_text(json.dumps({"aws": {"bucket": bucket, "endpoint": moto_url,
                                                                  "region": "us-east-1"}}))
    s3.put_object(Bucket=bucket, Key="tes/retired/3/js/a.js", Body=b"a")
    result = run(root, "s3delete", "retired/3", "-n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["retired/3/js/a.js"]
    assert keys(s3, bucket) == {}
    everywhere = run(root, "s3delete", "3", "-n")
    assert everywhere.exit_code == 1 and "no service found in workspace" in everywhere.stderr


def test_json_failure_is_one_json_object_on_stdout(workspace, s3, bucket):
    result = run(workspace, "s3delete", "9", "-n", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False, "errors": [f"no objects found for 9 in s3://{bucket}/tes/"],
        "hint": "check the build name and -e; keys are <env>/<service>/<build>/"}
