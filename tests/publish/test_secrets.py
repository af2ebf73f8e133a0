"""No secret reaches the terminal while publishing: the userinfo of aws.endpoint is masked in retry
lines, connection errors and --json failures."""

from __future__ import annotations

import json
import re
import socket

from .s3support import REGION, keys, run, write_workspace

USERINFO = "minio-user:Sup3r-s3cret"


def with_userinfo(url: str) -> str:
    return url.replace("://", f"://{USERINFO}@", 1)


def test_retry_lines_mask_the_endpoint_userinfo(tmp_path, fault_proxy, s3, bucket):
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": with_userinfo(fault_proxy.url),
                                                  "region": REGION, "attempts": 2})
    fault_proxy.fail_suffix = f"/{bucket}/tes/app-web/55/js/top.js.br"
    fault_proxy.failures = 1
    result = run(workspace, "s3push", "-n", "-b", "55")
    assert result.exit_code == 0, result.output
    masked = fault_proxy.url.replace("://", "://****@")
    retries = [line for line in result.stderr.splitlines() if line.startswith("retry:")]
    assert retries == [f"retry: retrying PutObject {masked}/{bucket}/tes/app-web/55/js/top.js.br (attempt 2 of 2) "
                       "after: HTTP 500 InternalError"]
    assert "Sup3r-s3cret" not in result.output and "minio-user" not in result.output
    assert "tes/app-web/55/release.json" in keys(s3, bucket)


def test_connection_errors_mask_the_endpoint_userinfo(tmp_path, bucket):
    with socket.socket() as probe:  # a port nothing listens on: every connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = with_userinfo(f"http://127.0.0.1:{port}")
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": endpoint, "region": REGION,
                                                  "attempts": 2})
    result = run(workspace, "s3push", "-n", "-b", "55", "--json")
    assert result.exit_code == 1
    base = f"http://\\*\\*\\*\\*@127.0.0.1:{port}/{bucket}"  # the first request lists the environment's folders
    url = f"{base}\\?list-type=2&prefix=tes%2F&delimiter=%2F&encoding-type=url"
    lines = result.stderr.splitlines()
    retries = [line for line in lines if line.startswith("retry:")]
    assert retries and all(re.fullmatch(
        f'retry: retrying ListObjectsV2 {base} \\(attempt 2 of 2\\) after: Could not connect to the endpoint URL: '
        f'"{url}"', line) for line in retries), retries
    error = f's3://{bucket}/tes/: Could not connect to the endpoint URL: "{url}"'
    assert re.fullmatch(f"error: {error}", lines[-2]), lines[-2]
    assert lines[-1] == "hint: check aws.endpoint, aws.region and your AWS credentials"
    report = json.loads(result.stdout)
    assert re.fullmatch(error, report["errors"][-1])
    assert "Sup3r-s3cret" not in result.output and "minio-user" not in result.output


def test_config_error_never_echoes_a_secret_value(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {"bucket": "b", "secret": 271828182845, "key": "AKIAOK"})
    result = run(workspace, "config")
    assert result.exit_code == 1
    tes = workspace / ".bosco" / "tes.json"
    column = tes.read_text().index('"secret"') + 1
    assert result.stderr.splitlines() == [
        f"error: {tes}:1:{column}: aws.secret must be a string (an AWS secret access key), not ****",
        f"hint: fix aws.secret in {tes}",
    ]
    (tes).write_text(json.dumps({"aws": {"endpoint": f"ftp://{USERINFO}@files.example.com/"}}))
    result = run(workspace, "config")
    assert result.stderr.splitlines()[0] == (
        f'error: {tes}:1:10: aws.endpoint must be an http:// or https:// URL, not "ftp://****@files.example.com/"')
    assert "Sup3r-s3cret" not in result.output
