"""What a person sees of the command line: whole one-line summaries, argument errors before
configuration errors, no empty line from a progress bar in logs, which environment s3push used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bosco.cli import cli


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BOSCO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))


def tiny_workspace(root: Path) -> Path:
    (root / ".bosco").mkdir(parents=True)
    (root / ".bosco" / "tes.json").write_text(json.dumps({"aws": {"bucket": "b"}}))
    (root / "app" / "js").mkdir(parents=True)
    (root / "app" / "js" / "a.js").write_text("var a = 1;\n")
    (root / "app" / "bosco-service.json").write_text(json.dumps({"assets": {"js": {"top": ["js/a.js"]}}}))
    return root


def test_help_shows_whole_one_line_summaries():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=72)
    summaries: dict[str, str] = {}
    for line in result.stdout.split("Commands:\n", 1)[1].splitlines():  # continuation lines are indented
        if line[:3].strip():
            name, _, text = line.strip().partition(" ")
            summaries[name] = text.strip()
        else:
            summaries[name] += " " + line.strip()
    assert set(summaries) == set(cli.commands)
    for name, command in cli.commands.items():
        assert summaries[name] == command.get_short_help_str(limit=1_000), name  # never cut to fit
    assert summaries["docs"] == "Print a page of bosco's reference (manifest, configuration, ...)."


def test_command_help_has_no_python_docstring_markup():
    names = [*cli.commands, *(f"cache {name}" for name in cli.commands["cache"].commands)]
    for name in names:
        text = CliRunner().invoke(cli, [*name.split(), "--help"]).stdout
        assert "``" not in text and ":func:" not in text, name
    assert "one `key = value # origin` line per value" in CliRunner().invoke(cli, ["config", "--help"]).stdout


@pytest.mark.parametrize("args", [["cdn", "-w", "app-("], ["s3delete", "-n", "app/.."], ["s3delete", "-n", "a/b/c"],
                                  ["-r", "(", "config"], ["build", "--out", "x", "-b", ".."], ["s3push", "-b", "a/b"],
                                  ["-r", "x", "verify"], ["diff", "--from", "7", "--to", "7"]])
def test_argument_errors_come_before_configuration_errors(tmp_path, args):
    root = tiny_workspace(tmp_path / "ws")
    (root / ".bosco" / "bosco.json").write_text('{"cdn": {"port": 1,}}')  # broken: never read
    result = CliRunner().invoke(cli, ["-W", str(root), *args])
    assert result.exit_code == 2, result.output
    assert "bosco.json" not in result.stderr


@pytest.mark.parametrize("command", ["s3push", "s3delete"])
def test_a_confirmation_without_a_terminal_is_named_before_configuration_errors(tmp_path, command):
    root = tiny_workspace(tmp_path / "ws")
    (root / ".bosco" / "bosco.json").write_text('{"cdn": {"port": 1,}}')  # broken: never read
    result = CliRunner().invoke(cli, ["-W", str(root), command, *(["7"] if command == "s3delete" else [])])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: stdin is not a terminal, so the confirmation cannot be asked",
                                          "hint: pass -n to run without confirmation"]


def test_progress_bars_leave_no_empty_line_in_logs(tmp_path):
    root = tiny_workspace(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    result = subprocess.run([sys.executable, "-m", "bosco", "-W", str(root), "build", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] != "" and "" not in lines
    assert lines[-1].startswith("wrote 6 files")


def test_s3push_without_a_bucket_says_which_environment_it_used(tmp_path):
    root = tiny_workspace(tmp_path / "ws")
    result = CliRunner().invoke(cli, ["-W", str(root), "s3push", "-n"])
    assert result.exit_code == 1
    assert "error: aws.bucket is not set (put it in .bosco/local.json or BOSCO_AWS_BUCKET)" in result.stderr
    folder = root / ".bosco"
    assert result.stderr.splitlines()[-1] == (
        f"hint: the environment is local (the default: no -e given); pick one with -e ENV (environments with a "
        f"file in {folder}: tes), or set aws.bucket in {folder / 'local.json'} or BOSCO_AWS_BUCKET")
    chosen = CliRunner().invoke(cli, ["-W", str(root), "-e", "prod", "s3delete", "-n", "7"])
    assert chosen.exit_code == 1
    assert chosen.stderr.splitlines()[-1].startswith("hint: the environment is -e prod; pick one with -e ENV")


def test_the_example_builds_with_no_warning_and_details_only_with_v(example, tmp_path):
    git = ["git", "-C", str(example), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    quiet = CliRunner().invoke(cli, ["-W", str(example), "build", "--out", str(tmp_path / "out")])
    assert quiet.exit_code == 0, quiet.output
    assert [line for line in quiet.stderr.splitlines() if line.startswith(("warning", "error", "detail"))] == []
    verbose = CliRunner().invoke(cli, ["-W", str(example), "-v", "build", "--out", str(tmp_path / "out2")])
    assert verbose.exit_code == 0, verbose.output
    assert ("detail: app-home: js/bottom: public/js/lib/format.js: the minifier changed whitespace inside a string "
            "or template at line 22:29; repaired from the source") in verbose.stderr.splitlines()
    assert "warning" not in verbose.stderr


def test_publishing_does_not_import_the_build_layer():
    code = ("import sys, bosco.publish.execute, bosco.publish.delete, bosco.publish.audit, bosco.publish.local; "
            "print(sorted(m for m in sys.modules if m in ('bosco.pipeline', 'bosco.bundle', 'bosco.verify')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_quiet_shows_only_errors_and_traceback_is_separate_from_verbose(tmp_path):
    root = tiny_workspace(tmp_path / "ws")
    (root / ".bosco" / "bosco.json").write_text(json.dumps({"cdn": {"prot": 1}}))  # a warning
    loud = CliRunner().invoke(cli, ["-W", str(root), "build", "--out", str(tmp_path / "a")])
    assert loud.exit_code == 0 and "warning:" in loud.stderr and "wrote " in loud.stderr
    quiet = CliRunner().invoke(cli, ["-W", str(root), "-q", "build", "--out", str(tmp_path / "b")])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert (tmp_path / "b" / "app" / "default" / "js" / "top.js").is_file()
    (root / "app" / "js" / "a.js").unlink()
    failed = CliRunner().invoke(cli, ["-W", str(root), "build", "--out", str(tmp_path / "c"), "-q"])
    assert failed.exit_code == 1
    assert [line.split(":")[0] for line in failed.stderr.splitlines()] == ["error", "error", "hint"]
    verbose = CliRunner().invoke(cli, ["-W", str(root), "-v", "build", "--out", str(tmp_path / "c")])
    assert verbose.exit_code == 1 and "Traceback" not in verbose.stderr
    traced = CliRunner().invoke(cli, ["-W", str(root), "--traceback", "build", "--out", str(tmp_path / "c")])
    assert traced.exit_code == 1 and "Traceback (most recent call last)" in traced.stderr


def test_build_json_is_one_object_with_exact_keys(tmp_path):
    root = tiny_workspace(tmp_path / "ws")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["-W", str(root), "-q", "build", "--out", str(out), "-b", "7", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "out": str(out), "environment": "local", "build": "7",
                                         "services": ["app"], "written": 6, "unchanged": 0,
                                         "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
                                         "warnings": []}
    (root / "app" / "js" / "a.js").unlink()
    failed = CliRunner().invoke(cli, ["-W", str(root), "-q", "build", "--out", str(out), "--json"])
    assert failed.exit_code == 1
    report = json.loads(failed.stdout)
    assert list(report) == ["ok", "errors", "hint"] and report["ok"] is False
    assert report["errors"][-1] == f"1 error; nothing written to {out}"
    assert report["errors"][0].startswith("app: js/top: js/a.js: no file matches under")


def test_cdn_json_prints_one_object_per_event(example, tmp_path):
    from conftest import running_cdn

    log = tmp_path / "cdn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    with running_cdn([sys.executable, "-m", "bosco", "cdn", "-q", "--json"], example, env, log) as (base, _):
        deadline = time.monotonic() + 120
        while '"serving"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    events = [json.loads(line) for line in log.read_text().splitlines()]  # -q: nothing but JSON
    assert events[0] == {"event": "listening", "url": f"{base}/"}
    port = base.rsplit(":", 1)[1]
    serving = events[1]
    assert list(serving) == ["event", "url", "services", "assets", "minified", "warnings", "errors"]
    assert serving["event"] == "serving" and serving["url"] == f"http://localhost:{port}/"
    assert serving["services"] == ["app-home", "app-checkout", "app-reports", "service-api"]
    assert serving["assets"] > 0 and serving["minified"] is False
    assert serving["warnings"] == serving["errors"] == []


def test_cdn_quiet_still_shows_a_failed_rebuild(example, tmp_path):
    """-q shows errors only: a rebuild that fails (a syntax error saved in a watched file) is one."""
    from live import atomic_write, until

    from conftest import running_cdn

    log = tmp_path / "cdn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    app_js = example / "app-home" / "public" / "js" / "app.js"
    good = app_js.read_bytes()
    line = good.count(b"\n") + 2  # after an empty line
    command = [sys.executable, "-m", "bosco", "cdn", "-q", "--json", "-w", "app-home"]
    with running_cdn(command, example, env, log):
        until(lambda: '"watching"' in log.read_text(), what="the first build checked and watched")
        atomic_write(app_js, good + b"\nfunction (\n")
        until(lambda: "rebuild failed" in log.read_text(), what="the failed rebuild on stderr")
    stderr = [text for text in log.read_text().splitlines() if not text.startswith("{")]  # stdout: JSON events
    assert len(stderr) == 2 and stderr[0].startswith("app-home: rebuild failed in ")
    assert stderr[0].endswith(f" ms: js/bottom: public/js/app.js:{line}:1: syntax error at `function (`")
    assert stderr[1] == "    function ("


def test_one_atomic_writer_for_published_files_and_cache_entries(tmp_path):
    from bosco.files import write_atomic
    from bosco.publish.local import write_file

    write_file(tmp_path / "out" / "a.js", b"1;")
    write_atomic(tmp_path / "cache" / "entry", b"x")
    assert (tmp_path / "out" / "a.js").stat().st_mode & 0o777 == 0o644  # published: readable by the web server
    assert (tmp_path / "cache" / "entry").stat().st_mode & 0o777 == 0o600  # the user's own cache
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "out", b"y")  # a folder cannot be replaced by a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]  # no temporary file left behind
