"""bosco stops cleanly: worker processes die with it (kill -9, SIGTERM), a stuck build command times
out, Ctrl-C and SIGTERM end every command promptly with no traceback and no orphaned process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from live import interrupted, until

WAIT = 30.0  # seconds any bounded wait below may take on a loaded machine


def children(pid: int) -> dict[int, int]:
    """``{child pid: parent pid}`` of every live process in ``pid``'s process tree (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            if fields[0] != b"Z":
                parents[int(entry)] = int(fields[1])
    tree: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        found = {child: parent for child, parent in parents.items() if parent in frontier and child not in tree}
        tree.update(found)
        frontier = set(found)
    return tree


def alive(pids) -> set[int]:
    """The ``pids`` still running (zombies count as gone)."""
    result = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            result.add(pid)
    return result




def big_js_workspace(root: Path, files: int = 4, lines: int = 40000) -> Path:
    """A workspace with one service whose JS bundle has ``files`` large distinct files: a cold
    minified build verifies them in worker processes for a few seconds."""
    svc = root / "svc"
    (svc / "js").mkdir(parents=True)
    for n in range(files):
        body = "".join(f"var v{n}_{i} = function (x) {{ return x * {i} + {n}; }};\n" for i in range(lines))
        (svc / "js" / f"f{n}.js").write_text(body)
    (svc / "bosco-service.json").write_text(json.dumps({"assets": {"js": {"all": ["js/*.js"]}}}))
    return root


def bosco(*args: str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "bosco", *args], cwd=cwd, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def private_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def in_pool_phase(proc: subprocess.Popen) -> dict[int, int]:
    """bosco's process tree once worker processes run (the forkserver and at least one worker
    forked from it), else ``{}``; fails when bosco ended first."""
    if proc.poll() is not None:
        pytest.fail(f"bosco exited with {proc.returncode} before its workers started")
    tree = children(proc.pid)
    workers = [pid for pid, parent in tree.items() if parent != proc.pid]
    return tree if workers else {}


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM", "Ctrl-C in a terminal"])
def test_workers_do_not_outlive_bosco(tmp_path: Path, how: str) -> None:
    root = big_js_workspace(tmp_path / "ws")
    log = tmp_path / "log"
    proc = bosco("build", "--out", str(tmp_path / "out"), cwd=root, env=private_env(tmp_path), log=log)
    try:
        tree = until(lambda: in_pool_phase(proc), WAIT, "worker processes")
        if how == "Ctrl-C in a terminal":  # the terminal signals the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        proc.wait(WAIT)
        until(lambda: not alive(tree), WAIT, f"no survivor among {sorted(tree)}")
    finally:
        proc.kill()
        proc.wait()
    if how != "kill -9":
        output = log.read_text()  # complete: multiprocessing's resource tracker, in the tree, has ended too
        assert proc.returncode == 130, output
        assert output.endswith("interrupted\n"), output  # no resource tracker warning about leaked semaphores
        assert "Traceback" not in output, output
        assert not (tmp_path / "out").exists()


def hung_workspace(root: Path, build: dict, good: bool = True) -> Path:
    """A workspace with service ``hung`` whose ``build`` block is ``build`` (``HANG`` prints a line,
    writes the pid of its ``sleep`` to ``pid`` and never ends; the asset it would build is missing,
    so ``cdn`` runs it too) and, with ``good``, a plain service ``good``."""
    hung = root / "hung"
    hung.mkdir(parents=True)
    (hung / "bosco-service.json").write_text(json.dumps({"assets": {"js": {"h": ["js/h.js"]}}, "build": build}))
    if good:
        (root / "good" / "js").mkdir(parents=True)
        (root / "good" / "js" / "g.js").write_text("var g = 1;\n")
        (root / "good" / "bosco-service.json").write_text(json.dumps({"assets": {"js": {"g": ["js/g.js"]}}}))
    return root


HANG = "echo starting the build; sleep 300 & echo $! > pid; wait"


def group_gone(root: Path) -> bool:
    """True once the hung command's ``sleep`` (whose pid it wrote) no longer runs."""
    pid_file = root / "hung" / "pid"
    return pid_file.exists() and pid_file.read_text().strip() != "" and not alive([int(pid_file.read_text())])


def test_a_build_command_that_never_ends_times_out(tmp_path: Path) -> None:
    from bosco.commands import run_build_command
    from bosco.errors import BuildCommandError
    from bosco.manifest import load_manifest

    root = hung_workspace(tmp_path, {"command": HANG, "timeout": 300}, good=False)
    spec = load_manifest(root / "hung" / "bosco-service.json").build
    assert spec is not None and spec.command_timeout_ms == 300
    with pytest.raises(BuildCommandError) as raised:
        run_build_command(root / "hung", spec)
    assert str(raised.value) == f"build command `{HANG}` timed out after 0.3 s\nstarting the build"
    assert group_gone(root)  # the whole process group was stopped, not just the shell


def test_build_timeout_from_the_configuration_fails_the_build_like_any_failed_build(tmp_path: Path) -> None:
    root = hung_workspace(tmp_path / "ws", {"command": HANG})
    (root / ".bosco").mkdir()
    (root / ".bosco" / "bosco.json").write_text(json.dumps({"build": {"timeout": 500}}))
    log = tmp_path / "log"
    proc = bosco("build", "--out", str(tmp_path / "out"), cwd=root, env=private_env(tmp_path), log=log)
    assert proc.wait(WAIT) == 1
    output = log.read_text()
    assert f"error: hung: build command `{HANG}` timed out after 0.5 s\nstarting the build\n" in output
    assert "Traceback" not in output
    assert group_gone(root)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [0, -5, 1e30, 86_400_001, "10", True, 1.5])
def test_build_timeout_must_be_a_sane_number_of_milliseconds(tmp_path: Path, value) -> None:
    from bosco.config import load_config
    from bosco.errors import ConfigError, ManifestError
    from bosco.manifest import load_manifest

    root = hung_workspace(tmp_path, {"command": "true", "timeout": value}, good=False)
    manifest = root / "hung" / "bosco-service.json"
    with pytest.raises(ManifestError) as raised:
        load_manifest(manifest)
    assert str(raised.value) == (f"{manifest}:1:69: build.timeout must be a whole number of milliseconds from 1 to "
                                 f"86400000, not {json.dumps(value)}")
    (root / ".bosco").mkdir()
    (root / ".bosco" / "bosco.json").write_text(json.dumps({"build": {"timeout": value}}))
    with pytest.raises(ConfigError, match=r"build.timeout must be a whole number of milliseconds from 1 to 86400000"):
        load_config(root, "local", env={})


def started(root: Path, proc: subprocess.Popen) -> bool:
    """True once the hung build command runs (it wrote its pid); fails when bosco ended first."""
    if proc.poll() is not None:
        pytest.fail(f"bosco exited with {proc.returncode} before the build command started")
    pid_file = root / "hung" / "pid"
    return pid_file.exists() and pid_file.read_text().strip() != ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_a_stuck_build_and_its_command(tmp_path: Path, sig: int) -> None:
    root = hung_workspace(tmp_path / "ws", {"command": HANG})
    log = tmp_path / "log"
    proc = bosco("build", "--out", str(tmp_path / "out"), cwd=root, env=private_env(tmp_path), log=log)
    interrupted(proc, sig, log, lambda: started(root, proc), "the build command", WAIT)
    until(lambda: group_gone(root), WAIT, "the build command's process group to end")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cdn_while_its_first_build_is_stuck_and_a_request_waits(tmp_path: Path, sig: int) -> None:
    from conftest import free_port

    root = hung_workspace(tmp_path / "ws", {"command": HANG})
    log = tmp_path / "log"
    port = free_port()
    proc = bosco("cdn", "--port", str(port), cwd=root, env=private_env(tmp_path), log=log)
    waiting = None
    try:
        until(lambda: started(root, proc), WAIT, "the build command")
        waiting = socket.create_connection(("127.0.0.1", port), timeout=WAIT)  # waits for the first build
        waiting.sendall(b"GET /good/local/js/g.js HTTP/1.1\r\nHost: localhost\r\n\r\n")
        proc.send_signal(sig)
        assert proc.wait(WAIT) == 0
    finally:
        proc.kill()
        proc.wait()
        if waiting:
            waiting.close()
    output = log.read_text()
    assert output.endswith("stopped\n")
    assert "Traceback" not in output
    until(lambda: group_gone(root), WAIT, "the build command's process group to end")


CTRL_C_AS_CDN_STARTS = '''
import os, sys
from bosco import cli
from bosco.app import Cdn

sig, port = int(sys.argv[1]), sys.argv[2]
start_first_build = Cdn._ready


def start_first_build_then_ctrl_c(self):
    start_first_build(self)
    os.kill(os.getpid(), sig)  # before uvicorn installs its signal handlers


Cdn._ready = start_first_build_then_ctrl_c
sys.argv = ["bosco", "cdn", "--port", port]
cli.main()
'''


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_as_cdn_starts_its_first_build_stops_it_with_the_documented_status(tmp_path: Path, sig: int) -> None:
    """Ctrl-C (or SIGTERM) arriving while ``bosco cdn`` starts its first build, before its server
    takes the signals, still prints ``stopped`` and exits 0 (it escaped as ``interrupted``, 130)."""
    from conftest import free_port

    root = hung_workspace(tmp_path / "ws", {"command": HANG})
    done = subprocess.run([sys.executable, "-c", CTRL_C_AS_CDN_STARTS, str(int(sig)), str(free_port())], cwd=root,
                          env=private_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=120, start_new_session=True)
    output = done.stdout.decode()
    assert (done.returncode, output.splitlines()[-1]) == (0, "stopped"), output
    assert "Traceback" not in output
    if (root / "hung" / "pid").exists():  # the build command had started: it is stopped with bosco
        until(lambda: group_gone(root), WAIT, "the build command's process group to end")


HALF_SENT = '''
import struct, sys, threading
from pathlib import Path


def half_sent(marker):
    """Write the 4-byte header of a 1 MiB result to the pool's result pipe and stop there, as a
    worker terminated while sending a large result leaves it."""
    frame = sys._getframe()
    while frame.f_code.co_name != "_process_worker":
        frame = frame.f_back
    frame.f_locals["result_queue"]._writer._send(struct.pack("!i", 1 << 20))
    Path(marker).touch()
    threading.Event().wait()


def sleeps(data):
    threading.Event().wait()
'''

TERMINATE = '''
import json, sys, threading
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from halfsent import half_sent, sleeps
from bosco import workers

marker = Path(sys.argv[1])
pool = workers.process_pool(2)
futures = [pool.submit(half_sent, str(marker))] + [pool.submit(sleeps, b"x" * (1 << 20)) for _ in range(6)]
while not marker.exists():
    threading.Event().wait(0.05)
outcomes = []


def wait(future):
    try:
        future.result()
    except (BrokenProcessPool, CancelledError) as exc:
        outcomes.append(type(exc).__name__)


waiters = [threading.Thread(target=wait, args=(f,)) for f in futures]
for waiter in waiters:
    waiter.start()
pool.terminate()
for waiter in waiters:
    waiter.join(60)
print(json.dumps(outcomes))
'''


def test_a_terminated_pool_fails_every_waiting_future_and_lets_python_exit(tmp_path: Path) -> None:
    # a worker terminated while sending its result left the pool's manager thread reading the rest
    # of that message forever: the futures it had not answered stayed pending (their waiters, and
    # Python's exit, which joins that thread, hung)
    (tmp_path / "halfsent.py").write_text(HALF_SENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", TERMINATE, str(tmp_path / "sent")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert len(outcomes) == 7 and set(outcomes) <= {"BrokenProcessPool", "CancelledError"}
    assert outcomes.count("BrokenProcessPool") >= 1  # the half-sent result's future
