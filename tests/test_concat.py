"""Concatenation never changes what the code means: each hazard runs the bundle with node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import build

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def workspace(tmp_path: Path, files: dict[str, str | bytes], kind: str = "js") -> Path:
    """A one-service workspace whose ``<kind>.all`` bundle lists ``files`` in order."""
    repo = tmp_path / "ws" / "svc"
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    manifest = {"service": {"name": "svc"}, "assets": {kind: {"all": list(files)}}}
    (repo / "bosco-service.json").write_text(json.dumps(manifest))
    return tmp_path / "ws"


def run_bundle(tmp_path: Path, files: dict[str, str | bytes], minify: bool) -> str:
    asset_set = build(workspace(tmp_path, files), bundle=True, minify=minify)
    assert asset_set.errors == []
    bundle = tmp_path / "bundle.js"
    bundle.write_bytes(asset_set.get("svc/local/js/all.js").data)
    proc = subprocess.run(["node", str(bundle)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


MODES = pytest.mark.parametrize("minify", [False, True], ids=["concat", "minify"])


@MODES
def test_file_without_semicolon_cannot_call_the_next_iife(tmp_path, minify):
    out = run_bundle(tmp_path, {
        "a.js": "var greet = function () { console.log('a called') }\nvar config = { name: 'a' }",
        "b.js": "(function () { console.log('b ran') })()\n",
    }, minify)
    assert out == "b ran\n"


@MODES
def test_trailing_line_comment_without_newline_cannot_swallow_the_next_file(tmp_path, minify):
    out = run_bundle(tmp_path, {
        "a.js": "console.log('a')\n// the end, no newline",
        "b.js": "console.log('b')\n",
    }, minify)
    assert out == "a\nb\n"


@MODES
def test_code_then_comment_on_last_line_and_next_file_starting_with_paren(tmp_path, minify):
    out = run_bundle(tmp_path, {
        "a.js": "class Cart {}\nglobalThis.Cart = Cart // exported",
        "b.js": "(() => console.log(typeof globalThis.Cart))()\n",
    }, minify)
    assert out == "function\n"


@MODES
def test_bom_in_the_middle_is_removed(tmp_path, minify):
    out = run_bundle(tmp_path, {
        "a.js": "console.log('a');\n",
        "b.js": "\ufeffconsole.log('b \u20ac');\n".encode(),
    }, minify)
    assert out == "a\nb \u20ac\n"


@MODES
def test_per_file_source_map_comments_are_not_left_in_the_middle(tmp_path, minify):
    files = {
        "a.js": "console.log('a');\n//# sourceMappingURL=a.js.map\n",
        "b.js": "console.log('b');\n//# sourceMappingURL=b.js.map",
    }
    assert run_bundle(tmp_path, files, minify) == "a\nb\n"
    code = build(workspace(tmp_path / "again", files), bundle=True, minify=minify).get("svc/local/js/all.js").data
    assert code.decode().count("sourceMappingURL") == 1
    assert code.endswith(b"\n//# sourceMappingURL=all.js.map\n")


def test_unminified_bundle_maps_each_token_to_itself_in_its_source(tmp_path):
    from bosco.sourcemap import decode_mappings

    asset_set = build(workspace(tmp_path, {"a.js": "var a = 1;\nvar b = 2;\n", "b.js": "var c = 3;\n"}), bundle=True)
    source_map = json.loads(asset_set.get("svc/local/js/all.js.map").data)
    assert source_map["sources"] == ["svc/a.js", "svc/b.js"]
    # a.js lines 0 and 1 -> bundle lines 0 and 1; b.js line 0 -> bundle line 2; var, name, =, value and ;
    tokens = [0, 4, 6, 8, 9]
    assert decode_mappings(source_map["mappings"]) == [[(col, source, line, col) for col in tokens]
                                                       for source, line in ((0, 0), (0, 1), (1, 0))]


def test_css_bom_removed_and_charset_hoisted_once(tmp_path):
    files = {"a.css": '@charset "UTF-8";\n.a { color: red; }\n', "b.css": "\ufeff.b { content: '\u2713'; }\n".encode()}
    asset_set = build(workspace(tmp_path, files, kind="css"), bundle=True)
    code = asset_set.get("svc/local/css/all.css").data.decode()
    assert code == (
        '@charset "UTF-8";\n\n.a { color: red; }\n.b { content: \'\u2713\'; }\n/*# sourceMappingURL=all.css.map */\n'
    )


@pytest.mark.parametrize("text, expected", [
    ("var a;\n//# sourceMappingURL=a.js.map\n", ((7, 36, "a.js.map"),)),
    ("//# sourceMappingURL=a.js.map", ((0, 29, "a.js.map"),)),  # the whole file: found from its start
    ("var a;\n//@ sourceMappingURL=a.js.map  \n\n", ((7, 38, "a.js.map"),)),  # with its trailing blanks
    ("var s = '//# sourceMappingURL=x.map';\nvar b;\n", ()),  # in a string, not at the end
])
def test_a_single_map_comment_at_the_end_of_a_file_is_found_without_a_parse(text, expected):
    from bosco.syntax import map_comments

    assert map_comments("js", text) == expected
