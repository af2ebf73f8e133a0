"""Every command with a result prints it with --json as one JSON object on stdout with exact keys,
and -q leaves stderr empty on success (errors only); a failure is one {"ok": false, ...} object."""

from __future__ import annotations

import json

import pytest

from .s3support import REGION, run, write_workspace

PUSH = ["ok", "environment", "build", "target", "dry_run", "bundles", "totals", "objects", "git", "diff", "budgets",
        "duplicates"]


def quiet_json(workspace, *args: str) -> dict:
    """Run ``bosco -q ARGS --json``: exit 0, nothing on stderr, one JSON object on stdout."""
    result = run(workspace, "-q", *args, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


@pytest.fixture
def workspace(tmp_path, moto_url, s3, bucket):
    """The fixture workspace with aws.cdn the moto server's URL of the bucket, readable by anyone."""
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
    return write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                             "cdn": f"{moto_url}/{bucket}", "attempts": 2})


def test_publishing_commands_print_one_object_with_exact_keys(workspace, s3, bucket):
    dry = quiet_json(workspace, "s3push", "-b", "1", "--dry-run")
    assert list(dry) == PUSH and dry["dry_run"] is True
    pushed = quiet_json(workspace, "s3push", "-n", "-b", "1", "--verify")
    assert list(pushed) == [*PUSH, "verify"]
    assert list(pushed["verify"]) == ["ok", "environment", "releases", "checked", "differences"]
    quiet_json(workspace, "s3push", "-n", "-b", "2")
    verified = quiet_json(workspace, "verify", "-b", "1")
    assert list(verified) == ["ok", "environment", "releases", "checked", "differences"] and verified["ok"] is True
    diff = quiet_json(workspace, "diff", "--from", "1", "--to", "2")
    assert list(diff) == ["ok", "from", "to", "services"]
    assert list(diff["services"][0]) == ["service", "status", "from", "to", "bundles", "files", "sources", "git"]
    deleted = quiet_json(workspace, "s3delete", "-n", "1")
    assert list(deleted) == ["ok", "target", "dry_run", "deleted"] and deleted["dry_run"] is False
    assert {k.split("/")[1] for k in deleted["deleted"]} == {"1"}


def test_local_commands_print_one_object_with_exact_keys(workspace, tmp_path):
    assert list(quiet_json(workspace, "cache", "stats")) == ["local"]
    assert list(quiet_json(workspace, "cache", "stats")["local"]) == ["folder", "folders"]
    assert quiet_json(workspace, "cache", "prune") == {"local": 0}
    config = quiet_json(workspace, "config")
    assert list(config)[:3] == ["cdn", "css", "minify"] and config["aws"]["bucket"].startswith("bosco-test-")
    built = quiet_json(workspace, "build", "--out", str(tmp_path / "out"))
    assert list(built) == ["ok", "out", "environment", "build", "services", "written", "unchanged", "bytes",
                           "warnings"]


@pytest.mark.parametrize("args", [["verify", "-b", "9"], ["s3delete", "-n", "9"], ["diff", "-e", "none"],
                                  ["s3push", "-n", "-b", "9", "nope"]])
def test_a_failure_is_one_object_with_every_error_and_the_hint(workspace, s3, bucket, args):
    result = run(workspace, "-q", *args, "--json")
    assert result.exit_code == 1
    failure = json.loads(result.stdout)
    assert list(failure) == ["ok", "errors", "hint"] and failure["ok"] is False
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["error", "hint"]
    assert result.stderr.splitlines()[0] == f"error: {failure['errors'][-1]}"


def test_selection_options_only_on_the_commands_they_affect(workspace):
    for args in (["-r", "app", "config"], ["-t", "x", "verify"], ["-s", "cache", "stats"]):
        result = run(workspace, *args)
        assert result.exit_code == 2, args
        assert "does not apply to this command" in result.stderr
    assert "--repo" not in run(workspace, "verify", "--help").stdout
    assert "--repo" in run(workspace, "s3delete", "--help").stdout
