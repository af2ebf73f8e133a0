"""Size budgets: format validation naming the file, build --out and s3push failing over budget."""

from __future__ import annotations

import json
from pathlib import Path

import brotli
import pytest
from zlib_ng import gzip_ng

from bosco.budgets import Rule, check, parse
from bosco.config import load_config
from bosco.errors import ConfigError

from .s3support import MANIFESTS, keys, run, write_workspace


def set_budgets(workspace: Path, budgets: dict, service: str | None = None) -> None:
    if service:
        manifest = {**MANIFESTS[service], "budgets": budgets}
        (workspace / service / "bosco-service.json").write_text(json.dumps(manifest))
    else:
        (workspace / ".bosco" / "bosco.json").write_text(json.dumps({"budgets": budgets}))


def sizes_of(out: Path, key: str) -> dict[str, int]:
    data = (out / key).read_bytes()
    return {"raw": len(data), "gzip": len(gzip_ng.compress(data, 9, mtime=0)),
            "br": len(brotli.compress(data, mode=brotli.MODE_TEXT, quality=11))}


def test_parse_units_encodings_and_precedence():
    rules = parse({"js/*": "1.5 kB br", "app-web:css/main": "2 KiB gzip", "*:js/t?p": "3 MB raw",
                   "growth": "10%"}, lambda key: "bosco.json")
    assert [(r.service, r.bundle, r.encoding, r.limit, r.percent) for r in rules] == [
        ("*", "js/*", "br", 1500, None), ("app-web", "css/main", "gzip", 2048, None),
        ("*", "js/t?p", "raw", 3_000_000, None), ("*", "*/*", "br", None, 10.0)]
    sizes = {"raw": 5000, "gzip": 1200, "br": 1100}
    later = Rule("*", "js/top", "br", 1000, None, 'js/top: "1000 B br"', "manifest")
    over = check({"app-web/1/js/top.js": ("app-web", "js/top", sizes)}, (*rules, later),
                 {"app-web/1/js/top.js": {"raw": 4000, "gzip": 1000, "br": 900}})
    assert [(v.encoding, v.size, v.limit, v.excess) for v in over] == [("br", 1100, 1000, 100), ("br", 1100, 990, 110)]
    assert over[0].describe() == 'app-web/1/js/top.js: 1,100 bytes br, limit 1,000 (js/top: "1000 B br" in ' \
        'manifest), 100 over'


@pytest.mark.parametrize(("budgets", "message"), [
    ({"js/*": "150 kB"}, 'budgets.js/* must be <number> <B|kB|MB|KiB|MiB> <raw|gzip|br>, e.g. "150 kB br", '
                         "not '150 kB'"),
    ({"js/*": "150 parsecs br"}, "budgets.js/* must be <number>"),
    ({"js/*": 150}, 'budgets.js/* must be a string like "150 kB br", not 150'),
    ({"top": "1 kB br"}, "budgets key 'top' must be [SERVICE:]TYPE/TAG"),
    ({"growth": "ten percent"}, 'budgets.growth must be a percentage like "10%"'),
    ({"growth": "10% zip"}, 'budgets.growth must be a percentage'),
])
def test_invalid_config_budgets_name_the_file(tmp_path, budgets, message):
    (tmp_path / ".bosco").mkdir()
    (tmp_path / ".bosco" / "bosco.json").write_text(json.dumps({"budgets": budgets}))
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path, "local", env={})
    assert str(raised.value).startswith(f"{tmp_path / '.bosco' / 'bosco.json'}: ")
    assert message in str(raised.value)


def test_build_out_fails_over_budget_and_writes_nothing(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    reference = tmp_path / "reference"
    assert run(workspace, "build", "--out", str(reference)).exit_code == 0
    top = sizes_of(reference, "app-web/default/js/top.js")
    set_budgets(workspace, {"js/*": f"{top['br'] - 5} B br"})
    out = tmp_path / "out"
    result = run(workspace, "build", "--out", str(out))
    assert result.exit_code == 1
    bosco_json = workspace / ".bosco" / "bosco.json"
    assert (f"error: over budget: app-web/default/js/top.js: {top['br']:,} bytes br, limit {top['br'] - 5:,} "
            f"(js/*: '{top['br'] - 5} B br' in {bosco_json}), 5 over (--ignore-budgets publishes anyway)"
            in result.stderr)
    assert result.stderr.count("over budget") == 1
    assert not out.exists() or not any(out.rglob("*"))
    ignored = run(workspace, "build", "--out", str(out), "--ignore-budgets")
    assert ignored.exit_code == 0 and "warning: over budget: app-web/default/js/top.js" in ignored.stderr


def test_manifest_budgets_override_config_and_bad_ones_name_the_manifest(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    set_budgets(workspace, {"js/*": "10 B gzip"})
    set_budgets(workspace, {"js/top": "100 kB gzip"}, "app-web")
    result = run(workspace, "build", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    over = [line for line in result.stderr.splitlines() if "over budget" in line]
    assert len(over) == 1 and "app-other/default/js/bottom.js" in over[0]
    set_budgets(workspace, {"app-other:js/top": "1 kB br"}, "app-web")
    bad = run(workspace, "build", "--out", str(tmp_path / "out"))
    assert bad.exit_code == 1
    manifest = workspace / "app-web" / "bosco-service.json"
    assert (f"error: app-web: {manifest}: budgets key 'app-other:js/top' must be TYPE/TAG (this service's bundles)"
            in bad.stderr)


def test_s3push_fails_over_budget_and_growth_against_the_current_release(tmp_path, moto_url, s3, bucket):
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1"})
    assert run(workspace, "s3push", "-n", "-b", "1").exit_code == 0
    br_before = s3.head_object(Bucket=bucket, Key="tes/app-web/1/js/top.js.br")["ContentLength"]
    (workspace / "app-web/public/js/b.js").write_text("answer = answer + 2;\n" + "".join(
        f"console.log('line {i}', answer);\n" for i in range(40)))
    set_budgets(workspace, {"growth": "50%"})
    before = keys(s3, bucket)
    result = run(workspace, "s3push", "-n", "-b", "2", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    problem = next(e for e in report["errors"] if e.startswith("over budget: app-web/2/js/top.js"))
    assert f"limit {int(br_before * 1.5):,} (growth: '50%', previous {br_before:,} in " in problem
    assert keys(s3, bucket) == before
    pushed = run(workspace, "s3push", "-n", "-b", "2", "--json", "--ignore-budgets")
    assert pushed.exit_code == 0, pushed.output
    [violation] = json.loads(pushed.stdout)["budgets"]
    br_after = s3.head_object(Bucket=bucket, Key="tes/app-web/2/js/top.js.br")["ContentLength"]
    assert violation == {"bundle": "app-web/2/js/top.js", "encoding": "br", "size": br_after,
                         "limit": int(br_before * 1.5), "excess": br_after - int(br_before * 1.5),
                         "rule": "growth: '50%', previous " + f"{br_before:,}",
                         "origin": str(workspace / ".bosco" / "bosco.json")}
