"""Subresource integrity on published fragments; 'use strict' concatenation hazard."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from click.testing import CliRunner
from trustkit import build, output, service, write_outputs

from bosco.bundle import is_strict
from bosco.cli import cli
from bosco.pipeline import BuildOptions

STRICT = "'use strict';\nfunction strictThis() { return this === undefined; }\nconsole.log('a', strictThis());\n"
SLOPPY = "// sloppy\nfunction sloppyThis() { return this === undefined; }\nconsole.log('b', sloppyThis());\n"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_build_fragments_carry_integrity_and_crossorigin(tmp_path: Path):
    service(tmp_path, "svc", {"js/a.js": "var a = 1;\n", "css/a.css": ".a { color: red; }\n"},
            {"js": {"top": ["js/a.js"]}, "css": {"main": ["css/a.css"]}})
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["build", "-W", str(tmp_path), "-o", str(out), "-b", "9"])
    assert res.exit_code == 0, res.output
    js, css = (out / "svc/9/js/top.js").read_bytes(), (out / "svc/9/css/main.css").read_bytes()
    assert (out / "svc/9/html/top.js.html").read_text() == (
        f'<script src="/svc/9/js/top.js" integrity="{sri(js)}" crossorigin="anonymous"></script>\n')
    assert (out / "svc/9/html/main.css.html").read_text() == (
        f'<link rel="stylesheet" href="/svc/9/css/main.css" type="text/css" media="all" integrity="{sri(css)}" '
        f'crossorigin="anonymous" />\n')


def test_sri_can_be_turned_off_and_is_off_in_cdn(tmp_path: Path):
    repo = service(tmp_path, "svc", {"js/a.js": "var a = 1;\n"}, {"js": {"top": ["js/a.js"]}})
    (tmp_path / ".bosco").mkdir()
    (tmp_path / ".bosco/bosco.json").write_text('{"fragments": {"sri": false}}')
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["build", "-W", str(tmp_path), "-o", str(out)]).exit_code == 0
    assert (out / "svc/default/html/top.js.html").read_text() == '<script src="/svc/default/js/top.js"></script>\n'
    cdn = build(repo, BuildOptions(minify=True, bundle=True))
    assert output(cdn, "svc/local/html/top.js.html") == b'<script src="/svc/local/js/top.js"></script>\n'


def test_leading_use_strict_makes_the_bundle_strict(tmp_path: Path, node):
    repo = service(tmp_path, "svc", {"js/strict.js": STRICT, "js/sloppy.js": SLOPPY},
                   {"js": {"top": ["js/strict.js", "js/sloppy.js"]}})
    result = build(repo)
    assert result.all_warnings == (
        "js/top: js/strict.js starts with 'use strict', which makes the non-strict files concatenated after it "
        "strict too (js/sloppy.js)",)
    write_outputs(result, tmp_path / "out")
    # the hazard is real: sloppy.js prints false on its own and true in the bundle; bosco does not rewrite
    assert node.run_file(repo / "js/sloppy.js") == "b false\n"
    assert node.run_file(tmp_path / "out/svc/default/js/top.js") == "a true\nb true\n"


def test_later_use_strict_is_no_longer_a_directive(tmp_path: Path, node):
    repo = service(tmp_path, "svc", {"js/strict.js": STRICT, "js/sloppy.js": SLOPPY},
                   {"js": {"top": ["js/sloppy.js", "js/strict.js"]}})
    result = build(repo)
    assert result.all_warnings == (
        "js/top: js/strict.js starts with 'use strict' but follows non-strict files in the bundle, so it runs "
        "non-strict",)
    write_outputs(result, tmp_path / "out")
    assert node.run_file(repo / "js/strict.js") == "a true\n"
    assert node.run_file(tmp_path / "out/svc/default/js/top.js") == "b false\na false\n"


def test_all_strict_or_all_sloppy_is_fine(tmp_path: Path):
    repo = service(tmp_path, "svc", {"js/a.js": STRICT, "js/b.js": '/* x */ "use strict"; var b;\n'},
                   {"js": {"top": ["js/*.js"]}})
    assert build(repo).all_warnings == ()


def test_strict_detection_reads_only_the_prologue():
    assert is_strict("/** x * y **/\n// c\n  'use strict';\nvar a;")
    assert not is_strict("/* a */ x(); 'use strict';")
    # no backtracking through later comments or whitespace when there is no directive
    assert not is_strict("/* header */\n" + "x(); /* c */\n" * 20000)
    assert not is_strict(" " * 5000 + "x")
