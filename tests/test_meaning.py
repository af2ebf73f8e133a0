"""Bundles that never change meaning: CSS comments, empty custom properties, @import conditions,
legal comments, classic-script checks, map association and asset order."""

from __future__ import annotations

import json
from pathlib import Path

from trustkit import build, output, service, write_outputs

from bosco.pipeline import BuildOptions
from bosco.syntax import css_facts
from bosco.verify import check_output

CONCAT = BuildOptions(build="7", bundle=True, minify=False)


def test_a_comment_between_two_selector_parts_is_no_combinator(tmp_path: Path, map_checker):
    css = (".a/**/.b { color: red; }\na/**/:hover { color: blue; }\n#x/* note */.y { top: 0; }\n"
           "input/**/[type=text] { left: 0; }\n.m { margin: 1px/**/2px; font: 12px/**/serif; }\n"
           ".n { width: calc(1px/**/+ 2px); }\n@media/**/screen { .c { x: y; } }\n.d .e { x: y; }\n")
    repo = service(tmp_path, "svc", {"css/a.css": css}, {"css": {"main": ["css/a.css"]}})
    result = build(repo)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/default/css/main.css").decode() == (
        ".a.b{color:red}a:hover{color:blue}#x.y{top:0}input[type=text]{left:0}"
        ".m{margin:1px/**/2px;font:12px/**/serif}.n{width:calc(1px+ 2px)}"
        "@media/**/screen{.c{x:y}}.d .e{x:y}\n/*# sourceMappingURL=main.css.map */\n")
    write_outputs(result, tmp_path / "out")
    bundle = tmp_path / "out/svc/default/css/main.css"
    check = map_checker(bundle, bundle.with_name("main.css.map"), "css")
    assert check["badCount"] == 0 and check["checked"] == 38


def test_the_verifier_takes_out_whitespace_put_where_the_input_had_only_a_comment():
    for text, minified, fixed in [
        (".a/**/.b{x:y}", ".a .b{x:y}", ".a.b{x:y}"),
        (".a{b:c/**/d}", ".a{b:c d}", ".a{b:c/**/d}"),
        (".a{b:c/*x*/,d}", ".a{b:c ,d}", ".a{b:c,d}"),
        ("@media screen and/**/(x:y){a{b:c}}", "@media screen and (x:y){a{b:c}}",
         "@media screen and/**/(x:y){a{b:c}}"),
    ]:
        aligned = check_output("css", text, minified, css_facts(text))
        assert not isinstance(aligned, str) and aligned.repaired == fixed, text


def test_empty_custom_properties_keep_their_space(tmp_path: Path):
    css = ".btn {\n  --bs-btn-font-family: ;\n  --bs-x:;\n  --bs-y: ;\n}\n.c { --z: }\n"
    repo = service(tmp_path, "svc", {"css/a.css": css}, {"css": {"main": ["css/a.css"]}})
    result = build(repo)
    assert result.all_warnings == ()
    assert output(result, "svc/default/css/main.css").decode() == (
        ".btn{--bs-btn-font-family: ;--bs-x:;--bs-y: }.c{--z: }\n/*# sourceMappingURL=main.css.map */\n")


def test_import_conditions_become_the_blocks_around_the_inlined_rules(tmp_path: Path, map_checker):
    files = {
        "css/a.css": '@charset "UTF-8";\n@layer base, theme;\n@import "p/print.css" print;\n'
                     '@import url(p/layer.css) layer(theme);\n@import "p/anon.css" layer;\n'
                     "@import 'p/all.css' layer(base) supports(display: grid) screen and (min-width: 40em);\n"
                     '@import "p/sup.css" supports(not (display: grid));\n.a { color: red; }\n',
        "css/p/print.css": '@import "inner.css" (orientation: landscape);\n.print { display: none; }\n',
        "css/p/inner.css": ".inner { x: y; }\n",
        "css/p/layer.css": ".l { x: y; }\n",
        "css/p/anon.css": ".anon { x: y; }",
        "css/p/all.css": "/* all */\n.all { x: y; }\n\n",
        "css/p/sup.css": ".sup { x: y; }\n",
    }
    repo = service(tmp_path, "svc", files, {"css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        '@charset "UTF-8";\n'
        "@layer base, theme;@media print{@media (orientation: landscape){.inner { x: y; }}}\n"
        "@media print{\n.print { display: none; }}\n"
        "@layer theme{.l { x: y; }}\n"
        "@layer{.anon { x: y; }}\n"
        "@layer base{@supports (display: grid){@media screen and (min-width: 40em){/* all */\n.all { x: y; }}}}\n"
        "\n"
        "@supports not (display: grid){.sup { x: y; }}\n"
        "\n@layer base, theme;\n\n\n\n\n\n.a { color: red; }\n"
        "/*# sourceMappingURL=main.css.map */\n")
    minified = build(repo, BuildOptions(build="7", bundle=True, minify=True))
    assert minified.all_errors == () and minified.all_warnings == ()
    assert output(minified, "svc/7/css/main.css").decode() == (
        '@charset "UTF-8";\n'
        "@layer base,theme;@media print{@media (orientation:landscape){.inner{x:y}}}\n"
        "@media print{.print{display:none}}\n"
        "@layer theme{.l{x:y}}\n"
        "@layer{.anon{x:y}}\n"
        "@layer base{@supports (display:grid){@media screen and (min-width:40em){.all{x:y}}}}\n"
        "@supports not (display:grid){.sup{x:y}}\n"
        "@layer base,theme;.a{color:red}\n"
        "/*# sourceMappingURL=main.css.map */\n")
    write_outputs(minified, tmp_path / "out")
    css = tmp_path / "out/svc/7/css/main.css"
    check = map_checker(css, css.with_name("main.css.map"), "css")
    # the block rules bosco wrote map to the start of the file they wrap; the hoisted @charset is unmapped
    assert check["checked"] == 53
    assert {(b["token"], b["at"][1]) for b in check["bad"] if b["source"]} == {
        (token, 0) for token in ("layer", "base", "theme", "media", "print", "orientation", "landscape", "supports",
                                 "display", "grid", "screen", "and", "min-width", "40em", "not")}


def test_external_import_inside_a_conditional_import_takes_its_condition(tmp_path: Path):
    files = {"css/a.css": '@import "p.css" print;\n.a { x: y; }\n',
             "css/p.css": '@import url(https://fonts.example/f.css);\n.p { x: y; }\n'}
    repo = service(tmp_path, "svc", files, {"css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        "@import url(https://fonts.example/f.css) print;\n@media print{\n.p { x: y; }}\n\n.a { x: y; }\n"
        "/*# sourceMappingURL=main.css.map */\n")


def test_imports_browsers_ignore_stay_ignored_with_a_warning(tmp_path: Path):
    css = ('@import "ok.css";\n.a { x: y; }\n@import "late.css";\n@media print { @import "inner.css"; }\n'
           '@import url(https://x.example/late.css);\n')
    files = {"css/a.css": css, "css/ok.css": ".ok { x: y; }\n", "css/late.css": ".late { x: y; }\n",
             "css/inner.css": ".inner { x: y; }\n"}
    repo = service(tmp_path, "svc", files, {"css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == ()
    assert result.all_warnings == tuple(
        f"css/main: css/a.css:{line}: @import {url!r} follows a rule or sits in a block, so browsers ignore it; "
        f"bosco leaves it ignored (move it to the top of the file to use it)"
        for line, url in ((3, "late.css"), (4, "inner.css"), (5, "https://x.example/late.css")))
    assert output(result, "svc/7/css/main.css").decode() == (
        ".ok { x: y; }\n\n.a { x: y; }\n" + css[css.index('@import "late'):] + "/*# sourceMappingURL=main.css.map */\n")


def test_image_set_strings_are_rebased_like_url(tmp_path: Path):
    css = ('.a { background-image: image-set("../../img/a.png" 1x, url(../../img/b.png) 2x); }\n'
           ".b { background-image: -webkit-image-set('../../img/a.png' 1x, \"data:image/png;base64,AA==\" 2x); }\n"
           '.c { content: "../../img/a.png"; }\n')
    repo = service(tmp_path, "svc", {"public/styles/deep/site.css": css, "public/img/a.png": b"a",
                                     "public/img/b.png": b"b"},
                   {"basePath": "public", "css": {"main": ["styles/deep/site.css"]}, "img": {"main": ["img/*"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        '.a { background-image: image-set("../img/a.png" 1x, url(../img/b.png) 2x); }\n'
        ".b { background-image: -webkit-image-set('../img/a.png' 1x, \"data:image/png;base64,AA==\" 2x); }\n"
        '.c { content: "../../img/a.png"; }\n/*# sourceMappingURL=main.css.map */\n')


def run_bundle(node, result, key: str, folder: Path) -> str:
    write_outputs(result, folder)
    script = folder / "run.js"
    script.write_text("var out = [];\n" + (folder / key).read_text() + "\nconsole.log(JSON.stringify(out));\n")
    return node.run_file(script)


def test_html_like_comments_cr_line_ends_and_hashbangs_run_as_browsers_run_them(tmp_path: Path, node, map_checker):
    files = {
        "js/a.js": "out.push(1 <!-- an HTML-like comment, as old pages wrote\n);\n",
        "js/b.js": "#!/usr/bin/env node\nout.push('b');\n",
        "js/c.js": "out.push('cr')\rvar n = 2\r++n\rout.push(n)\r",
        "js/d.js": "var x = 5;\n  --> closing comment ends the line\nout.push(x-->4);\n",
    }
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/*.js"]}})
    result = build(repo)
    assert result.all_errors == ()
    assert result.all_warnings == ("js/top: js/b.js:1:1: a hashbang line (#!/usr/bin/env node) is a syntax error "
                                   "after other code in a bundle; bosco turned it into a comment",)
    code = output(result, "svc/default/js/top.js").decode()
    assert code == ("out.push(1);\nout.push('b');\nout.push('cr')\nvar n=2\n++n\nout.push(n)\n;\n"
                    "var x=5;out.push(x-->4);\n//# sourceMappingURL=top.js.map\n")
    assert run_bundle(node, result, "svc/default/js/top.js", tmp_path / "out") == '[1,"b","cr",3,true]\n'
    bundle = tmp_path / "out/svc/default/js/top.js"
    check = map_checker(bundle, bundle.with_name("top.js.map"), "js")
    assert check["badCount"] == 0 and check["checked"] == 23


def test_module_syntax_is_an_error_naming_file_line_column(tmp_path: Path):
    files = {"js/a.js": "var a = 1;\n", "js/m.js": "var b = 2;\n  export const z = 1;\n",
             "js/meta.js": "var url = import.meta.url;\n", "js/dyn.js": "var p = typeof import('x');\n",
             "js/wait.js": "async function f() { await g(); }\nawait(1);\nif (f) { await f(); }\n"}
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/a.js", "js/m.js", "js/meta.js", "js/dyn.js",
                                                           "js/wait.js"]}})
    hint = ("is module syntax: a <script> runs this file as a classic script (compile it to a classic script, "
            'or load it with <script type="module"> outside bosco)')
    expected = (f"js/top: js/m.js:2:3: `export` {hint}\n      export const z = 1;",
                f"js/top: js/meta.js:1:11: `import` {hint}\n    var url = import.meta.url;",
                f"js/top: js/wait.js:3:10: `await` {hint}\n    if (f) {{ await f(); }}")
    assert build(repo).all_errors == expected
    assert build(repo, BuildOptions()).all_errors == expected  # cdn: each file its own <script>


def test_use_strict_after_another_directive_is_seen(tmp_path: Path):
    files = {"js/a.js": "var a = 1;\n", "js/b.js": "'use asm';\n/* why */ \"use strict\";\nvar b = 2;\n"}
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/a.js", "js/b.js"], "first": ["js/b.js", "js/a.js"]}})
    assert build(repo).all_warnings == (
        "js/top: js/b.js starts with 'use strict' but follows non-strict files in the bundle, so it runs non-strict",
        "js/first: js/b.js starts with 'use strict', which makes the non-strict files concatenated after it strict "
        "too (js/a.js)")


def test_glob_order_is_node_glob_7_locale_order(tmp_path: Path, node):
    names = ["_u.js", "1.js", "a b.js", "a_b.js", "a-b.js", "a.b.js", "a.js", "A.js", "ab.js", "aB.js", "Ab.js",
             "alpha.js", "b.js", "B.js", "Mid.js", "x10.js", "x9.js", "Z.js", "zeta.js", "a,b.js", "a;b.js", "a!b.js",
             "a(b.js", "a[b.js", "a@b.js", "a&b.js", "a#b.js", "a%b.js", "a+b.js", "a=b.js", "a~b.js", "a$b.js",
             "sub/x.js", "sub.js"]
    order = json.loads(node.run(f"console.log(JSON.stringify({json.dumps(names)}.sort((a, b) => "
                                "a.localeCompare(b, 'en'))))"))
    assert order[:19] == ["_u.js", "1.js", "a b.js", "a_b.js", "a-b.js", "a,b.js", "a;b.js", "a!b.js", "a.b.js",
                          "a.js", "A.js", "a(b.js", "a[b.js", "a@b.js", "a&b.js", "a#b.js", "a%b.js", "a+b.js",
                          "a=b.js"]
    files = {f"js/{name}": f"out.push({json.dumps(name)});\n" for name in names}
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/**/*.js"]}})
    result = build(repo, CONCAT)
    listed = [source.split("/", 2)[2] for source in json.loads(output(result, "svc/7/js/top.js.map"))["sources"]]
    assert listed == order


def test_only_real_source_mapping_comments_are_stripped(tmp_path: Path, node):
    files = {
        "js/a.js": "out.push(`line\n//# sourceMappingURL=kept.map\n`.length);\r\n//# sourceMappingURL=a.js.map\r\n",
        "js/b.js": "out.push('b');\n/*# sourceMappingURL=b.js.map */\n",
        "js/c.js": "out.push(`c\n//# sourceMappingURL=c.js.map`.length)",  # a template, to the file's end
        "css/a.css": '.a { content: "/*# sourceMappingURL=kept.map */"; }\r\n/*# sourceMappingURL=a.css.map */\r\n',
    }
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/a.js", "js/b.js", "js/c.js"]},
                                            "css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/js/top.js").decode() == (
        "out.push(`line\n//# sourceMappingURL=kept.map\n`.length);\r\n\r\n"
        "out.push('b');\n\n"
        "out.push(`c\n//# sourceMappingURL=c.js.map`.length)\n;\n"
        "//# sourceMappingURL=top.js.map\n")
    assert output(result, "svc/7/css/main.css").decode() == (
        '.a { content: "/*# sourceMappingURL=kept.map */"; }\r\n\r\n/*# sourceMappingURL=main.css.map */\n')
    assert run_bundle(node, result, "svc/7/js/top.js", tmp_path / "out") == '[35,"b",31]\n'


def test_a_css_map_comment_on_the_last_line_needs_no_scan(monkeypatch):
    from bosco import syntax

    scanned = []
    scan = syntax.css_facts
    monkeypatch.setattr(syntax, "css_facts", lambda text: scanned.append(text) or scan(text))
    assert syntax.map_comments("css", ".a{}\r\n/*# sourceMappingURL=a.css.map */\r\n") == ((6, 39, "a.css.map"),)
    assert scanned == []
    # a comment that may still be open before that line, or a string going on into it: scanned
    for text in ["/* open\n/*# sourceMappingURL=a.css.map */", '.a{content:"x\\\n/*# sourceMappingURL=a.css.map */',
                 "/* a */ /* b\n/*# sourceMappingURL=a.css.map */"]:
        assert syntax.map_comments("css", text) == () and scanned[-1] == text


def test_composed_map_of_rewritten_minified_css_is_exact(tmp_path: Path, map_checker):
    from bosco.sourcemap import MapWriter

    source = '@charset "UTF-8";\n.logo {\n  background: url(../../img/a.png);\n  color: red;\n}\n'
    minified = '@charset "UTF-8";.logo{background:url(../../img/a.png);color:red}\n'
    writer = MapWriter("site.min.css")
    src = writer.add_source("../../../src/site.css", source)
    for col, line, src_col in ((0, 0, 0), (17, 1, 0), (18, 1, 1), (23, 2, 2), (34, 2, 14), (55, 3, 2), (61, 3, 9)):
        writer.segment(0, col, src, line, src_col)

    files = {"src/site.css": source,
             "public/css/sub/site.min.css": minified + "/*# sourceMappingURL=site.min.css.map */\n",
             "public/css/sub/site.min.css.map": json.dumps(writer.to_dict()), "public/img/a.png": b"png"}
    repo = service(tmp_path, "svc", files, {"basePath": "public", "alreadyMinified": True,
                                            "css": {"main": ["css/sub/site.min.css", "css/sub/site.min.css.map"]},
                                            "img": {"main": ["img/*"]}})
    result = build(repo, BuildOptions(build="7", bundle=True, minify=True))
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        '@charset "UTF-8";\n.logo{background:url(../img/a.png);color:red}\n\n/*# sourceMappingURL=main.css.map */\n')
    write_outputs(result, tmp_path / "out")
    bundle = tmp_path / "out/svc/7/css/main.css"
    check = map_checker(bundle, bundle.with_name("main.css.map"), "css")
    # every token maps to the library's source; the rewritten url's parts map to where the url began;
    # the hoisted @charset is not mapped
    assert check["checked"] == 10
    assert [(b["token"], b["source"], b["found"]) for b in check["bad"]] == [
        ("charset", None, ""), ('"UTF-8"', None, "")] + [
        (token, "svc/src/site.css", "url(../../img/a.png)") for token in ("img", "a", "png")]


def test_maps_are_found_by_comment_then_file_map_then_stem_map(tmp_path: Path):
    from bosco.sourcemap import MapWriter

    def own_map(name: str, source: str) -> str:
        writer = MapWriter(name)
        writer.segment(0, 0, writer.add_source(source, "var x = 1;\n"), 0, 0)
        return json.dumps(writer.to_dict())

    files = {
        "js/jquery.min.js": "var x=1;\n//# sourceMappingURL=jquery.min.map\n",
        "js/jquery.min.map": own_map("j", "jq.js"),
        "js/stem.min.js": "var s=1;\n", "js/stem.min.map": own_map("s", "stem.js"),
        "js/full.min.js": "var f=1;\n", "js/full.min.js.map": own_map("f", "full.js"),
        "js/other.min.js": "var o=1;\n//# sourceMappingURL=maps/o.map\n", "js/maps/o.map": own_map("o", "o.js"),
        "js/orphan.map": own_map("x", "orphan.js"),
    }
    repo = service(tmp_path, "svc", files, {"alreadyMinified": True, "js": {"top": [
        "js/jquery.min.js", "js/stem.min.js", "js/full.min.js", "js/other.min.js", "js/*.map", "js/maps/*.map"]}})
    result = build(repo)
    assert result.all_errors == ()
    assert result.all_warnings == (
        "js/top: js/orphan.map: listed as a source map, but no file of the bundle names it (by its sourceMappingURL "
        "comment, <file>.map or <stem>.map), so it is not used",)
    assert json.loads(output(result, "svc/default/js/top.js.map"))["sources"] == [
        "svc/js/jq.js", "svc/js/stem.js", "svc/js/full.js", "svc/js/maps/o.js"]


LEGAL_JS = ("/*! lib A v1 | MIT */\nvar a = 1;\n//! lib B\nout.push(a); /* @license C */\n"
            "function f() { /*! inner */ return 4 / /*! d */ 2; }\nout.push(f());\n")
LEGAL_CSS = "/*! x */\n.a { color: red }\n/* @preserve y */\n.b { c: d }\n/* plain */\n"


def test_legal_comments_are_kept_inline_by_default(tmp_path: Path, node, map_checker):
    files = {"js/a.js": LEGAL_JS, "js/b.js": "out.push('b'); // plain\n", "css/a.css": LEGAL_CSS}
    repo = service(tmp_path, "svc", files, {"js": {"top": ["js/*.js"]}, "css": {"main": ["css/a.css"]}})
    result = build(repo)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/default/js/top.js").decode() == (
        "/*! lib A v1 | MIT */var a=1;//! lib B\nout.push(a);/* @license C */function f(){/*! inner */return 4/ "
        "/*! d */2;}\nout.push(f());\nout.push('b');\n//# sourceMappingURL=top.js.map\n")
    assert output(result, "svc/default/css/main.css").decode() == (
        "/*! x */.a{color:red}/* @preserve y */.b{c:d}\n/*# sourceMappingURL=main.css.map */\n")
    assert run_bundle(node, result, "svc/default/js/top.js", tmp_path / "out") == '[1,2,"b"]\n'
    for key in ("js/top.js", "css/main.css"):
        bundle = tmp_path / "out/svc/default" / key
        check = map_checker(bundle, bundle.with_name(bundle.name + ".map"), key[:key.index("/")])
        assert check["badCount"] == 0 and check["checked"] > 5


def test_legal_comments_eof_linked_and_none(tmp_path: Path, node, map_checker):
    repo = service(tmp_path, "svc", {"js/a.js": LEGAL_JS, "css/a.css": LEGAL_CSS},
                   {"js": {"top": ["js/a.js"]}, "css": {"main": ["css/a.css"]}})
    code = "var a=1;out.push(a);function f(){return 4/2;}\nout.push(f());\n"
    comments = "/*! lib A v1 | MIT */\n//! lib B\n/* @license C */\n/*! inner */\n/*! d */\n"
    expected = {
        "eof": (code + comments, ".a{color:red}.b{c:d}\n/*! x */\n/* @preserve y */\n"),
        "linked": (code + "/*! For license information please see top.js.LEGAL.txt */\n",
                   ".a{color:red}.b{c:d}\n/*! For license information please see main.css.LEGAL.txt */\n"),
        "none": (code, ".a{color:red}.b{c:d}\n"),
    }
    for mode, (js, css) in expected.items():
        result = build(repo, BuildOptions(build="default", minify=True, bundle=True, legal_comments=mode))
        assert output(result, "svc/default/js/top.js").decode() == js + "//# sourceMappingURL=top.js.map\n"
        assert output(result, "svc/default/css/main.css").decode() == css + "/*# sourceMappingURL=main.css.map */\n"
        legal = {o.key: o.data.decode() for o in result.outputs if o.key.endswith(".LEGAL.txt")}
        assert legal == ({"svc/default/js/top.js.LEGAL.txt": comments,
                          "svc/default/css/main.css.LEGAL.txt": "/*! x */\n/* @preserve y */\n"} if mode == "linked"
                         else {})
        assert run_bundle(node, result, "svc/default/js/top.js", tmp_path / mode) == "[1,2]\n"
        bundle = tmp_path / mode / "svc/default/js/top.js"
        check = map_checker(bundle, bundle.with_name("top.js.map"), "js")
        assert check["badCount"] == 0 and check["checked"] == 14


def test_legal_comments_setting_is_validated(tmp_path: Path):
    import pytest

    from bosco.config import load_config
    from bosco.errors import ConfigError

    (tmp_path / ".bosco").mkdir()
    (tmp_path / ".bosco" / "bosco.json").write_text('{"minify": {"legalcomments": "external"}}')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path)})
    assert str(caught.value) == (f"{tmp_path / '.bosco' / 'bosco.json'}:1:13: minify.legalcomments must be "
                                 f"\"inline\" or \"eof\" or \"linked\" or \"none\", not \"external\"")
