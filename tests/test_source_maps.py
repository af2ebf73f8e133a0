"""Exact source maps, checked with the `source-map` npm package run by node."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import httpx
from trustkit import PUBLISH, build, output, service, write_outputs

from bosco.pipeline import BuildOptions, build_asset_set
from bosco.server import AssetHolder, CdnServer
from bosco.workspace import load_service

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "workspace"
A_JS = """// first file: a line comment, a block comment and a template literal
/* block
   comment */
function greet(name, times) {
  const parts = [];
  for (let i = 0; i < times; i += 1) {
    parts.push(`hello ${name} #${i}`);
  }
  return parts.join(', ');
}
"""
B_JS = """var total = 0;
for (const n of [1, 2, 3]) {   total   +=   n * 2;   }
console.log(greet('ada', 2), total, 'é ünïcode 😀', typeof total === 'number');
"""
STYLE = """/* header */
.card  >  .title :first-child { color : #123456 ; margin: 0 auto; }
@media (max-width: 40em) {
  .card { padding: calc(1rem + 2px); font-family: "Open Sans", sans-serif; }
}
"""


def test_minified_js_and_css_map_every_token(tmp_path: Path, node, map_checker):
    repo = service(tmp_path, "svc", {"js/a.js": A_JS, "js/b.js": B_JS, "css/s.css": STYLE},
                   {"js": {"top": ["js/a.js", "js/b.js"]}, "css": {"main": ["css/s.css"]}})
    result = build(repo)
    assert result.all_errors == () and result.all_warnings == ()
    write_outputs(result, tmp_path / "out")
    js, css = tmp_path / "out/svc/default/js/top.js", tmp_path / "out/svc/default/css/main.css"
    source_map = json.loads(output(result, "svc/default/js/top.js.map"))
    assert source_map["file"] == "top.js"
    assert source_map["sources"] == ["svc/js/a.js", "svc/js/b.js"]
    assert source_map["sourcesContent"] == [A_JS, B_JS]
    assert js.read_text().count("sourceMappingURL") == 1
    assert js.read_text().endswith("\n//# sourceMappingURL=top.js.map\n")
    assert css.read_text().endswith("\n/*# sourceMappingURL=main.css.map */\n")
    js_check = map_checker(js, js.with_name("top.js.map"), "js")
    assert (js_check["checked"], js_check["bad"]) == (43, [])
    css_check = map_checker(css, css.with_name("main.css.map"), "css")
    assert (css_check["checked"], css_check["bad"]) == (19, [])
    assert node.run_file(js) == "hello ada #0, hello ada #1 12 é ünïcode 😀 true\n"


def test_concatenated_bundle_maps_every_token(tmp_path: Path, map_checker):
    repo = service(tmp_path, "svc", {"js/a.js": A_JS, "js/b.js": B_JS}, {"js": {"top": ["js/a.js", "js/b.js"]}})
    result = build(repo, BuildOptions(build="default", bundle=True, minify=False))
    write_outputs(result, tmp_path / "out")
    js = tmp_path / "out/svc/default/js/top.js"
    assert js.read_text() == A_JS + ";\n" + B_JS + "//# sourceMappingURL=top.js.map\n"
    check = map_checker(js, js.with_name("top.js.map"), "js")
    assert (check["checked"], check["bad"]) == (45, [])


MAP_LOOKUP = r"""
const fs = require('fs');
const { SourceMapConsumer } = require('source-map');
const [codePath, mapPath, needle] = process.argv.slice(1);
const code = fs.readFileSync(codePath, 'utf8').split('\n');
(async () => {
  const consumer = await new SourceMapConsumer(JSON.parse(fs.readFileSync(mapPath, 'utf8')));
  const line = code.findIndex((l) => l.includes(needle));
  const pos = consumer.originalPositionFor({ line: line + 1, column: code[line].indexOf(needle) });
  console.log(JSON.stringify([pos.source, pos.line, pos.column, pos.name]));
})();
"""


def test_already_minified_map_is_composed(tmp_path: Path, node):
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE / "app-checkout", workspace / "app-checkout")
    result = build(workspace / "app-checkout", BuildOptions(build="default", bundle=True, minify=True))
    write_outputs(result, tmp_path / "out")
    js = tmp_path / "out/app-checkout/default/js/vendor-min.js"
    lookup = node.run(MAP_LOOKUP, str(js), str(js.with_name("vendor-min.js.map")), "n){return")
    assert json.loads(lookup) == ["app-checkout/vendor/tiny.js", 1, 22, None]
    assert (workspace / "app-checkout/vendor/tiny.js").exists() is False  # reached through sourcesContent
    assert js.read_text().count("sourceMappingURL") == 1


def inline_vendor_map(workspace: Path, comment: str | None = None) -> Path:
    """app-checkout whose already-minified vendor file carries ``comment`` (default: its own map as
    a base64 ``data:`` URL) instead of naming the map file, which is gone."""
    shutil.copytree(EXAMPLE / "app-checkout", workspace / "app-checkout")
    vendor = workspace / "app-checkout/vendor"
    inline = base64.b64encode((vendor / "tiny.min.js.map").read_bytes()).decode()
    (vendor / "tiny.min.js.map").unlink()
    comment = comment or f"data:application/json;charset=utf-8;base64,{inline}"
    js = vendor / "tiny.min.js"
    js.write_text(js.read_text().replace("sourceMappingURL=tiny.min.js.map", f"sourceMappingURL={comment}"))
    manifest = workspace / "app-checkout/bosco-service.json"
    manifest.write_text(manifest.read_text().replace(', "tiny.min.js.map"', ""))
    return workspace / "app-checkout"


def test_inline_data_url_map_of_an_already_minified_file_is_composed(tmp_path: Path, node):
    result = build(inline_vendor_map(tmp_path / "ws"), BuildOptions(build="default", bundle=True, minify=True))
    write_outputs(result, tmp_path / "out")
    js = tmp_path / "out/app-checkout/default/js/vendor-min.js"
    lookup = node.run(MAP_LOOKUP, str(js), str(js.with_name("vendor-min.js.map")), "n){return")
    assert json.loads(lookup) == ["app-checkout/vendor/tiny.js", 1, 22, None]
    assert js.read_text().count("sourceMappingURL") == 1 and "base64" not in js.read_text()
    assert result.all_warnings == () and result.all_errors == ()


def test_remote_map_url_of_an_already_minified_file_is_a_warning_not_a_fetch(tmp_path: Path):
    result = build(inline_vendor_map(tmp_path / "ws", "file:///etc/tiny.min.js.map"),
                   BuildOptions(build="default", bundle=True, minify=True))
    assert result.all_warnings == (
        "js/vendor-min: vendor/tiny.min.js: sourceMappingURL 'file:///etc/tiny.min.js.map' is not a path in the "
        "repository, so bosco does not read it and maps the bundle to the minified file (list the map beside the "
        "file)",)
    sources = json.loads(output(result, "app-checkout/default/js/vendor-min.js.map"))["sources"]
    assert sources == ["app-checkout/vendor/tiny.min.js"]


def test_undecodable_data_url_map_of_an_already_minified_file_is_an_error(tmp_path: Path):
    result = build(inline_vendor_map(tmp_path / "ws", "data:application/json;base64,%%%not-base64"),
                   BuildOptions(build="default", bundle=True, minify=True))
    assert result.all_errors == (
        "js/vendor-min: vendor/tiny.min.js: sourceMappingURL data: URL cannot be decoded (RFC 2397); not used",)


def test_map_is_served_as_json(tmp_path: Path):
    service(tmp_path, "svc", {"js/a.js": A_JS}, {"js": {"top": ["js/a.js"]}})
    holder = AssetHolder(build_asset_set([load_service(tmp_path / "svc")], PUBLISH))
    server = CdnServer(holder, "127.0.0.1", 0).start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/svc/default/js/top.js.map")
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["sources"] == ["svc/js/a.js"]


def test_encoded_segments_round_trip_for_small_and_huge_values():
    import numpy as np

    from bosco.sourcemap import MapWriter, decode_mappings, encode_segments

    gen_line = np.array([0, 0, 0, 2, 2])
    gen_col = np.array([0, 5, 100_000_000, 0, 31])
    src_line = np.array([3, 3, 0, 7, 7])
    src_col = np.array([0, 15, 2**30, 1, 0])
    writer = MapWriter("x.js")
    writer.append(0, writer.add_source("svc/x.js", None), encode_segments(gen_line, gen_col, src_line, src_col))
    assert decode_mappings(writer.to_dict()["mappings"]) == [
        [(0, 0, 3, 0), (5, 0, 3, 15), (100_000_000, 0, 0, 2**30)], [], [(0, 0, 7, 1), (31, 0, 7, 0)]]


def _one_by_one(gen_line, gen_col, src_line, src_col) -> str:
    """The mappings of these segments written one at a time (``MapWriter.segment``, ``vlq`` per value)."""
    from bosco.sourcemap import MapWriter

    writer = MapWriter("x.js")
    src = writer.add_source("svc/x.js", None)
    for segment in zip(gen_line.tolist(), gen_col.tolist(), src_line.tolist(), src_col.tolist(), strict=True):
        writer.segment(segment[0], segment[1], src, *segment[2:])
    return writer.to_dict()["mappings"]


def _vectorised(gen_line, gen_col, src_line, src_col) -> str:
    from bosco.sourcemap import MapWriter, encode_segments

    writer = MapWriter("x.js")
    writer.append(0, writer.add_source("svc/x.js", None), encode_segments(gen_line, gen_col, src_line, src_col))
    return writer.to_dict()["mappings"]


def test_vectorised_vlq_writes_what_vlq_writes_value_by_value():
    import re

    import numpy as np

    import bosco

    cases = [
        ([0], [0], [0], [0]),  # one segment: no tail
        ([3], [7], [2], [9]),  # starting on a later line
        ([0, 0, 0, 5, 5, 9], [0, 15, 16, 0, 31, 32], [0, 0, 9, 2, 2, 0], [0, 15, 0, 3, 1, 0]),  # empty lines
        ([0, 0, 1, 1], [0, 2**31, 0, 2**40], [2**35, 0, 2**33, 1], [2**36 + 5, 0, 17, 2**32]),  # large, negative
        ([0, 1, 2, 3], [15, 16, 31, 32], [15, 16, 31, 32], [511, 512, 1023, 1024]),  # digit-count edges
    ]
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        scale = int(rng.choice([2, 40, 5000, 10**7, 2**45]))
        gen_line = np.sort(rng.integers(0, int(rng.choice([1, 3, 50])), n))
        gen_col = rng.integers(0, scale, n)
        order = np.lexsort((gen_col, gen_line))
        cases.append((gen_line, gen_col[order], rng.integers(0, scale, n), rng.integers(0, scale, n)))
    # every token of real files, mapped to itself and to the token after next (negative deltas)
    for path in (Path(bosco.__file__).parent / "verify.py", Path(__file__).parent / "map_check.js"):
        text = path.read_text(encoding="utf-8")
        starts = [m.start() for m in re.finditer(r"\w+|\S", text)]
        line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        line = np.searchsorted(line_starts, starts, side="right") - 1
        col = np.array(starts) - np.array(line_starts)[line]
        cases.append((line, col, line, col))
        cases.append((line, col, np.roll(line, -2), np.roll(col, -2)))
    for case in cases:
        arrays = [np.array(values, dtype=np.int64) for values in case]
        assert _vectorised(*arrays) == _one_by_one(*arrays)


def test_map_json_is_exactly_the_compact_json_of_the_map():
    import json

    from bosco.sourcemap import MapWriter

    big = "/* \u00e9 \"quoted\" \\ \u2028 \U0001f600 */\n" * 500  # escaped once, then reused
    for _ in range(2):
        writer = MapWriter("top.js")
        writer.lines(0, writer.add_source("svc/a.js", big), 500)
        writer.lines(500, writer.add_source("svc/b.js", None), 1)
        writer.lines(501, writer.add_source("svc/c \"d\".js", "x = '\u00e9';\n"), 1)
        assert writer.to_json() == json.dumps(writer.to_dict(), separators=(",", ":")).encode()
    empty = MapWriter("empty.js")
    assert empty.to_json() == json.dumps(empty.to_dict(), separators=(",", ":")).encode()


def test_map_json_of_minified_files_is_exactly_the_compact_json_of_the_map():
    import json

    from bosco.sourcemap import MapWriter
    from bosco.verify import minify_verified

    # long: its escaped content is kept and reused
    js = "".join(f"var s{i} = \"\u00e9 \\\" {i}\";  /* \U0001f600 */\n"
                 f"function f{i}(a, b) {{\n  return a + b * {i};\n}}\n" for i in range(200))
    css = ".a  >  .b { content: \"\u2028 \\\"\" ;  color : red }\n"
    for _ in range(2):
        writer = MapWriter("top.js")
        line = 0
        for name, type_, text in (("svc/a.js", "js", js), ("svc/b.css", "css", css), ("svc/\"c\".js", "js", js)):
            result = minify_verified(type_, text)
            assert result.file_map is not None and result.fault is None
            writer.append(line, writer.add_source(name, text), result.file_map)
            line += result.code.count("\n") + 1
        writer.segment(line, 3, writer.add_source("svc/d.js", None), 2**33, 1)
        assert writer.to_json() == json.dumps(writer.to_dict(), separators=(",", ":")).encode()


def test_a_shared_entry_whose_map_is_not_a_mappings_text_is_ignored():
    from dataclasses import replace

    from bosco.verify import decode_minified, encode_minified, minify_verified

    result = minify_verified("js", "var a = 1;\nvar b = a + 2;\n")
    assert decode_minified(encode_minified(result)) == result
    # the tail goes into the map's JSON as it is: a quote would end the string
    assert decode_minified(encode_minified(replace(result, file_map=replace(
        result.file_map, tail=result.file_map.tail + '","x":"')))) is None
