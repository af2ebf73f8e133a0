"""Duplicate detection across the workspace: same bytes, one library in several versions (file name,
license banner, vendored package.json); reported by build, cdn's index page and s3push --json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from bosco.cli import cli

from conftest import build

APP = b"console.log('app');\n"
FILES = {
    "web": {
        "public/js/jquery-1.11.0-min.js": b"/*! jQuery v1.11.0 */\nvar jq = 1;\n",
        "public/js/app.js": APP,
        "public/js/copy.js": APP,
        "public/js/empty.js": b"",
        "public/js/foo.js": b"/*!\n * Foo Widgets v1.2.0\n */\nvar foo = 1;\n",
    },
    "shop": {
        "public/js/jquery-3.7.1.min.js": b"/*! jQuery v3.7.1 */\nvar jq = 3;\n",
        "public/js/app.js": APP,
        "public/js/empty.js": b"",
        "public/vendor/lodash/lodash.js": b"var _ = 20;\n",
        "public/vendor/lodash/package.json": b'{"name": "lodash", "version": "4.17.20"}',
        "public/js/widgets.js": b"/*!\n * Foo Widgets v2.0.0\n */\nvar foo = 2;\n",
        "public/js/embeds.js": b"/* Kit, version 6 */\nvar kit = 1;\n/*! jQuery v2.2.4 */\nvar jq = 2;\n",
        "package.json": b'{"name": "shop", "version": "9.9.9"}',
    },
    "admin": {"public/lib/lodash@4.17.21.js": b"var _ = 21;\n", "public/js/admin.js": b"var admin = 1;\n"},
}
MANIFESTS = {
    "web": {"assets": {"basePath": "public", "js": {"top": ["js/jquery-1.11.0-min.js", "js/app.js", "js/copy.js",
                                                           "js/empty.js"], "extra": ["js/foo.js"]}}},
    "shop": {"assets": {"basePath": "public", "js": {"top": ["js/jquery-3.7.1.min.js", "js/app.js", "js/empty.js",
                                                            "vendor/lodash/lodash.js", "js/widgets.js",
                                                            "js/embeds.js"]}}},
    "admin": {"assets": {"basePath": "public", "js": {"top": ["js/admin.js"]}},
              "libraries": [{"basePath": "public/lib", "glob": "*.js"}]},
}


def workspace(root: Path) -> Path:
    (root / ".bosco").mkdir(parents=True)
    for service, files in FILES.items():
        (root / service).mkdir()
        (root / service / "bosco-service.json").write_text(json.dumps(MANIFESTS[service]))
        for rel, data in files.items():
            (root / service / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / service / rel).write_bytes(data)
    return root


def test_same_bytes_and_library_versions_are_found(tmp_path):
    asset_set = build(workspace(tmp_path / "ws"), build="1", minify=True, bundle=True)
    found = [(d.kind, d.name, [(p.path, p.where, p.version, p.source) for p in d.places], d.saved)
             for d in asset_set.duplicates]
    assert found == [
        ("bytes", hashlib.sha256(APP).hexdigest(), [("shop/public/js/app.js", "shop/1/js/top.js", "", ""),
                                                    ("web/public/js/app.js", "web/1/js/top.js", "", ""),
                                                    ("web/public/js/copy.js", "web/1/js/top.js", "", "")],
         2 * len(APP)),
        ("versions", "foo-widgets", [("web/public/js/foo.js", "web/1/js/extra.js", "1.2.0", "banner"),
                                     ("shop/public/js/widgets.js", "shop/1/js/top.js", "2.0.0", "banner")],
         len(FILES["web"]["public/js/foo.js"])),
        ("versions", "jquery", [("web/public/js/jquery-1.11.0-min.js", "web/1/js/top.js", "1.11.0", "file name"),
                                ("shop/public/js/jquery-3.7.1.min.js", "shop/1/js/top.js", "3.7.1", "file name")],
         len(FILES["shop"]["public/js/jquery-3.7.1.min.js"])),  # all copies but the largest
        ("versions", "lodash", [("shop/public/vendor/lodash/lodash.js", "shop/1/js/top.js", "4.17.20", "package.json"),
                                ("admin/public/lib/lodash@4.17.21.js", "vendor/library/lodash@4.17.21.js", "4.17.21",
                                 "file name")], 12),
    ]
    assert asset_set.duplicates[0].describe() == (
        f"same {len(APP)} bytes 3 times: shop/public/js/app.js in shop/1/js/top.js; web/public/js/app.js in "
        f"web/1/js/top.js; web/public/js/copy.js in web/1/js/top.js ({2 * len(APP)} bytes to save)")
    # nothing is dropped: the bundle still holds both copies
    assert asset_set.outputs["web/1/js/top.js"].data.count(b"console.log(\"app\")") + \
        asset_set.outputs["web/1/js/top.js"].data.count(b"console.log('app')") == 2


def test_build_warns_and_the_index_page_lists_them(tmp_path):
    ws = workspace(tmp_path / "ws")
    result = CliRunner().invoke(cli, ["-W", str(ws), "build", "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning: duplicate: ")]
    assert len(lines) == 4 and lines[2].startswith("warning: duplicate: jquery in 2 versions: 1.11.0 (file name) ")
    page = (tmp_path / "out" / "index.html").read_text()
    total = (2 * len(APP) + len(FILES["web"]["public/js/foo.js"])
             + len(FILES["shop"]["public/js/jquery-3.7.1.min.js"]) + 12)
    assert f"4 findings: a page loading every copy downloads {total} bytes it does not need" in page
    assert "<tr><td>lodash in several versions</td>" in page
    assert "4.17.20 (package.json) shop/public/vendor/lodash/lodash.js (12 bytes) in shop/default/js/top.js" in page
