"""A non-editable ``pip install`` in a fresh venv serves the example workspace (templates packaged) and
prints the packaged reference pages and manifest schema.

This is the slow test of the suite (pip builds and installs the package: tens of seconds);
it is marked ``slow`` and still runs by default: it is the only check that the package ships its
templates, reference pages and schema.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import REPO, running_cdn

pytestmark = pytest.mark.slow

START_TIMEOUT = 120.0  # seconds for `bosco cdn` to build the example and answer
PIP_TIMEOUT = 480.0


def tracked_copy(dest: Path) -> Path:
    """Copy the repository's tracked files (no build artefacts, venvs or caches) to ``dest``."""
    listing = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, listing.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # tracked but deleted in the working tree: skip
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_non_editable_install_serves_the_example_workspace(tmp_path):
    source = tracked_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, bosco = venv / "bin" / "python", venv / "bin" / "bosco"
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
                         capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    where = subprocess.run([str(python), "-c", "import bosco.templates as t; print(t.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    templates = Path(where).parent
    assert templates.is_relative_to(venv), where  # imported from the venv, not from a source tree
    packaged = {p.name for p in templates.iterdir()}
    assert {"_layout.html", "index.html", "repos.html", "fragment.js.html", "fragment.css.html"} <= packaged

    schema = subprocess.run([str(bosco), "schema"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert json.loads(schema) == json.loads((REPO / "docs" / "bosco-service.schema.json").read_text())
    for topic in ("manifest", "configuration", "commands", "layout", "api"):
        page = subprocess.run([str(bosco), "docs", topic], cwd=tmp_path, capture_output=True, text=True, check=True)
        assert page.stdout == (REPO / "docs" / f"{topic}.md").read_text(), topic

    workspace = shutil.copytree(source / "examples" / "workspace", tmp_path / "workspace")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    log = tmp_path / "cdn.log"
    with running_cdn([str(bosco), "cdn"], workspace, env, log, START_TIMEOUT) as (base, index):
        port = base.rsplit(":", 1)[1]
        assert index.status_code == 404
        for name in ("app-home", "app-checkout", "app-reports", "service-api"):
            assert f"<h2>{name}</h2>" in index.text
        assert 'class="error"' not in index.text

        fragment = httpx.get(base + "/app-home/local/html/bottom.js.html")
        assert fragment.status_code == 200
        local = f"http://localhost:{port}/app-home/local/js"
        assert fragment.text == (f'<script src="{local}/lib/dom-ready.js"></script>\n'
                                 f'<script src="{local}/lib/format.js"></script>\n'
                                 f'<script src="{local}/app.js"></script>\n')

        script = httpx.get(base + "/app-home/local/js/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.content == (workspace / "app-home" / "public" / "js" / "app.js").read_bytes()

        generated = httpx.get(base + "/app-reports/local/reports.js")  # made by the build.command
        assert generated.status_code == 200
        assert generated.content == (workspace / "app-reports" / "dist" / "reports.js").read_bytes()

        repos = httpx.get(base + "/repos")
        assert repos.status_code == 200
        assert "JSON API behind the shop front ends; ships no front-end assets." in repos.text
    output = log.read_text()
    assert f"listening on http://127.0.0.1:{port}/" in output
    assert f"http://localhost:{port}/\n" in output
    assert "Traceback" not in output
