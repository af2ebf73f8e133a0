"""Bundles that never change meaning: CSS comments, empty custom properties, @import conditions,
legal comments, classic-script checks, map association and asset order."""

from __future__ import annotations

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
    css = ('.a { background-image: image-set("../img/a.png" 1x, url(../img/b.png) 2x); }\n'
           ".b { background-image: -webkit-image-set('../img/a.png' 1x, \"data:image/png;base64,AA==\" 2x); }\n"
           '.c { content: "../img/a.png"; }\n')
    repo = service(tmp_path, "svc", {"public/styles/site.css": css, "public/img/a.png": b"a", "public/img/b.png": b"b"},
                   {"basePath": "public", "css": {"main": ["styles/site.css"]}, "img": {"main": ["img/*"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        '.a { background-image: image-set("../img/a.png" 1x, url(../img/b.png) 2x); }\n'
        ".b { background-image: -webkit-image-set('../img/a.png' 1x, \"data:image/png;base64,AA==\" 2x); }\n"
        '.c { content: "../img/a.png"; }\n/*# sourceMappingURL=main.css.map */\n')
