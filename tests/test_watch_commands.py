"""Watch builds (build.watch.command): ready detection, restarts, timeouts, no orphans."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from live import Live, until
from markupsafe import escape

from bosco.commands import ReadyDetector, strip_ansi

REPO = Path(__file__).resolve().parent.parent


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[32mbuilt\x1b[0m \x1b[1;4mok\x1b[m \x1b]0;title\x07done\x1b[2K") == "built ok done"


def test_ready_detector_joins_chunks_and_strips_colours() -> None:
    detector = ReadyDetector("built ok")
    assert detector.feed("compiling...\n\x1b[32mbui") == 0
    assert detector.feed("lt\x1b[0m \x1b[1mok\x1b[0m in 3 ms\n") == 1
    assert detector.feed("built ok") == 1  # counted once, not again with the next chunk
    assert detector.feed("\n") == 0
    assert detector.feed("\x1b[3") == 0  # an escape sequence split across chunks
    assert detector.feed("2mbuilt ok, built ok") == 2


@pytest.fixture
def live_build(fixture_ws):
    sessions: list[Live] = []

    def start(manifest: dict | None = None, **kwargs) -> Live:
        root = fixture_ws("watchbuild")
        if manifest is not None:
            (root / "app-live/bosco-service.json").write_text(json.dumps(manifest))
        session = Live(root, ["app-live"], **kwargs)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def manifest(command, ready: str = "built ok", timeout: int = 5000) -> dict:
    return {"service": {"name": "app-live"},
            "build": {"watch": {"command": command, "ready": ready, "timeout": timeout}},
            "assets": {"basePath": "dist", "js": {"live": ["live.js"]}}}


def test_watch_build_ready_rebuilds_each_time(live_build) -> None:
    w = live_build()
    repo = w.root / "app-live"
    w.wait_bytes("app-live/local/live.js", b"var build = 1;\n")
    first = w.wait_rebuild("app-live")
    assert first.reasons == ("watch build ready",) and first.ok
    assert first.changed == ("app-live/local/html/live.js.html", "app-live/local/js/live.js",  # was missing
                             "app-live/local/js/live.js.map", "app-live/local/live.js")
    (repo / "rebuild.flag").touch()
    w.wait_bytes("app-live/local/live.js", b"var build = 2;\n")
    assert w.wait_rebuild("app-live", 2).changed == ("app-live/local/js/live.js", "app-live/local/js/live.js.map",
                                                     "app-live/local/live.js")
    # its writes into dist/ are not rebuilds of their own: only the ready text is
    (repo / "rebuild.flag").touch()
    w.wait_bytes("app-live/local/live.js", b"var build = 3;\n")
    until(lambda: not (repo / "rebuild.flag").exists())
    w.wait_rebuild("app-live", 3)  # reported just after its bytes are served
    assert w.count("app-live") == 3
    assert ("app-live", "compiling...") in w.output
    assert ("app-live", "\x1b[32mbuilt\x1b[0m \x1b[1mok\x1b[0m in 3 ms") in w.output
    assert w.problems == []


def test_watch_build_that_exits_is_reported_and_restarted(live_build) -> None:
    script = "import sys; open('runs.log', 'a').write('run\\n'); print('crashing'); sys.exit(3)"
    w = live_build(manifest(["python3", "-c", script]), watch_build_backoff=0.05)
    runs = w.root / "app-live/runs.log"
    until(lambda: runs.exists() and runs.read_text().count("run") >= 3, what="two restarts")
    command = f"python3 -c {script}"
    assert w.problems[:2] == [
        ("app-live", f"watch build `{command}` exited with code 3; restarting in 0.05 s"),
        ("app-live", f"watch build `{command}` exited with code 3; restarting in 0.1 s"),
    ]
    assert str(escape(f"watch build `{command}` exited with code 3")) in w.get("").text  # on the index page


def test_watch_build_that_never_prints_ready_times_out_and_is_stopped(live_build) -> None:
    script = ("import subprocess, time; child = subprocess.Popen(['sleep', '60']); "
              "open('child.pid', 'w').write(str(child.pid)); print('working', flush=True); time.sleep(60)")
    w = live_build(manifest(f'python3 -c "{script}"', ready="compiled", timeout=300))
    expected = ("app-live", f"watch build `python3 -c \"{script}\"` did not print 'compiled' within 300 ms")
    until(lambda: expected in w.problems, what="the timeout message")
    child = int(until(lambda: (p := w.root / "app-live/child.pid").exists() and p.read_text()))
    assert not gone(child)
    w.session.stop()  # what Ctrl-C does: the shell, python and its child all end
    until(lambda: gone(child), what="the watch build's child to end")


def test_ctrl_c_leaves_no_orphans(fixture_ws) -> None:
    root = fixture_ws("watchbuild")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "bosco", "cdn", "-p", "0", "-w", "app-live", "-v"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    # one terminal line per rebuild: service, time taken, why, what changed (the first build failed:
    # dist/ did not exist before the watch build made it, so this one recovers)
    rebuilt = re.compile(r"^app-live: recovered in \d+ ms \(watch build ready\): "
                         r"app-live/local/html/live\.js\.html, app-live/local/js/live\.js, "
                         r"app-live/local/js/live\.js\.map and 1 more$")
    try:
        until(lambda: any(rebuilt.match(line) for line in lines), what="the rebuild line")
        watch_pid = int((root / "app-live/watch.pid").read_text())
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    until(lambda: gone(watch_pid), what="the watch build to end with bosco")
    reader.join(10)
    assert "app-live | compiling...\n" in lines


def test_watch_build_that_cannot_start_is_reported(live_build) -> None:
    w = live_build(manifest(["no-such-watch-command", "--watch"]), watch_build_backoff=0.05)
    expected = ("app-live", "watch build `no-such-watch-command --watch` could not start: No such file or directory")
    until(lambda: w.problems.count(expected) >= 2, what="the start failure, reported again on retry")
    assert str(escape(expected[1])) in w.get("").text
