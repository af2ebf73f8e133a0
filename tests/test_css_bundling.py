"""CSS bundling: url() rebasing, one @charset, @import hoisting and inlining."""

from __future__ import annotations

from pathlib import Path

from trustkit import build, output, service, write_outputs

from bosco.css import rebase, scan
from bosco.pipeline import BuildOptions

CONCAT = BuildOptions(build="7", bundle=True, minify=False)


def test_rebase_in_key_space():
    assert rebase("../fonts/a.woff2?v=1#iefix", "svc/7/styles/deep/x.css", "svc/7/css/main.css") == (
        "../styles/fonts/a.woff2?v=1#iefix", "svc/7/styles/fonts/a.woff2")
    for url in ("data:image/png;base64,AA==", "http://x/a.png", "https://x/a.png", "//cdn/a.png", "/a.png", "#f", ""):
        assert rebase(url, "svc/7/styles/x.css", "svc/7/css/main.css") is None


def test_scan_finds_imports_and_urls_in_any_case_outside_comments_and_strings():
    text = ('@import URL("a.css") screen;\n/* url(no.png) */ .a{b:Url( x.png )}\n.b{c:"url(no)";d:x-url(no)}\n'
            ".c{e:\u0131mage-set('i.png' 1x)}\n.d{f:-WEBKIT-IMAGE-SET(\"w.png\" 2x,url(v.png) 1x)}\n.e{g:aurl(no)}\n"
            "/* open comment url(no)")
    # \u0131 (dotless i) is an 'i' under the IGNORECASE matching the scan has always used
    assert scan(text) == (("import", 0, 28, "a.css", 13, 18), ("url", 52, 64, "x.png", 57, 62),
                          ("url", 110, 115, "i.png", 110, 115), ("url", 146, 151, "w.png", 146, 151),
                          ("url", 156, 166, "v.png", 160, 165))


def test_relative_urls_resolve_from_the_bundle(tmp_path: Path):
    css = ("@font-face { src: url(../fonts/a.woff2?v=1) format('woff2'), url('../fonts/a.woff'); }\n"
           '.logo { background: url("img/logo.png"), url(data:image/png;base64,AA==); }\n'
           ".x { background: url(https://cdn.example/x.png) url(//cdn.example/y.png) url(/root.png); }\n"
           "/* url(../ignored.png) */\n")
    repo = service(tmp_path, "svc", {"public/styles/deep/site.css": css, "public/styles/fonts/a.woff2": b"w2",
                                     "public/styles/fonts/a.woff": b"w", "public/styles/deep/img/logo.png": b"p"},
                   {"basePath": "public", "css": {"main": ["styles/deep/site.css"]},
                    "fonts": {"main": ["styles/fonts/*"]}, "img": {"main": ["styles/deep/img/*"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == () and result.all_warnings == ()
    assert output(result, "svc/7/css/main.css").decode() == (
        "@font-face { src: url(../styles/fonts/a.woff2?v=1) format('woff2'), url('../styles/fonts/a.woff'); }\n"
        '.logo { background: url("../styles/deep/img/logo.png"), url(data:image/png;base64,AA==); }\n'
        ".x { background: url(https://cdn.example/x.png) url(//cdn.example/y.png) url(/root.png); }\n"
        "/* url(../ignored.png) */\n"
        "/*# sourceMappingURL=main.css.map */\n")


def test_url_to_a_file_outside_the_asset_set_warns(tmp_path: Path):
    repo = service(tmp_path, "svc", {"css/a.css": ".a { background: url(../img/missing.png); }\n"},
                   {"css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_warnings == (
        "css/main: css/a.css: url(../img/missing.png) points at svc/7/img/missing.png, which is not in the asset set",)


def test_url_outside_the_asset_set_warns_once_per_file_and_target(tmp_path: Path):
    # Font Awesome's stylesheet names each webfont in several @font-face rules: one line per font file
    css = ("@font-face { src: url(../webfonts/a.woff2) format('woff2'), url(../webfonts/a.ttf); }\n"
           "@font-face { font-weight: 900; src: url(../webfonts/a.woff2) format('woff2'); }\n"
           ".x { background: url('../webfonts/a.woff2?v=2'); }\n")
    repo = service(tmp_path, "svc", {"css/a.css": css, "css/b.css": css}, {"css": {"main": ["css/a.css", "css/b.css"]}})
    result = build(repo, CONCAT)
    assert result.all_warnings == tuple(
        f"css/main: css/{name}.css: url({url}) points at svc/7/webfonts/{target}, which is not in the asset set"
        for name in "ab" for url, target in (("../webfonts/a.woff2", "a.woff2"), ("../webfonts/a.ttf", "a.ttf")))


def test_one_charset_first_and_imports(tmp_path: Path, map_checker):
    files = {
        "css/a.css": '@charset "UTF-8";\n@import url("https://fonts.example/css?family=A");\n'
                     '@import "parts/base.css";\n.a { content: "é"; }\n',
        "css/b.css": '@charset "UTF-8";\n@import url(//cdn.example/b.css) screen;\n@import "parts/base.css";\n'
                     ".b { color: red; }\n",
        "css/parts/base.css": ".base { background: url(../../img/bg.png); }\n",
        "img/bg.png": b"png",
    }
    repo = service(tmp_path, "svc", files, {"css": {"main": ["css/a.css", "css/b.css"]}, "img": {"main": ["img/*"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == ()
    # a.css imports its external sheet first: in order; b.css's comes after the rules of a.css (and
    # of base.css, which a.css inlines): hoisted above them, which changes the cascade
    assert result.all_warnings == (
        "css/main: css/b.css:2: @import '//cdn.example/b.css' goes to the top of the bundle, above the rules of "
        "css/parts/base.css that came before it, so those rules now win where they conflict (import it from the "
        "page, before the bundle, to keep the order)",)
    assert output(result, "svc/7/css/main.css").decode() == (
        '@charset "UTF-8";\n'
        '@import url("https://fonts.example/css?family=A");\n'
        "@import url(//cdn.example/b.css) screen;\n"
        ".base { background: url(../img/bg.png); }\n"
        # the statements that moved leave their line breaks (the lines of the rest are kept)
        "\n\n\n"
        '.a { content: "é"; }\n'
        "\n\n\n"
        ".b { color: red; }\n"
        "/*# sourceMappingURL=main.css.map */\n")
    minified = build(repo, BuildOptions(build="7", bundle=True, minify=True))
    assert output(minified, "svc/7/css/main.css").decode() == (
        '@charset "UTF-8";\n'
        '@import url("https://fonts.example/css?family=A");\n'
        "@import url(//cdn.example/b.css) screen;\n"
        ".base{background:url(../img/bg.png)}\n"
        '.a{content:"é"}\n'
        ".b{color:red}\n"
        "/*# sourceMappingURL=main.css.map */\n")
    write_outputs(minified, tmp_path / "out")
    css = tmp_path / "out/svc/7/css/main.css"
    check = map_checker(css, css.with_name("main.css.map"), "css")
    # every token maps to its place in the file on disk; a rebased url maps to where the old url began
    # the hoisted @charset/@import lines are not mapped
    assert {(b["line"], b["source"]) for b in check["bad"] if b["line"] <= 3} == {(1, None), (2, None), (3, None)}
    assert check["checked"] == 24
    assert [(b["token"], b["source"], b["at"], b["found"]) for b in check["bad"] if b["line"] > 3] == [
        ("img", "svc/css/parts/base.css", [1, 24], "../../img/bg.png); }"),
        ("bg", "svc/css/parts/base.css", [1, 24], "../../img/bg.png); }"),
        ("png", "svc/css/parts/base.css", [1, 24], "../../img/bg.png); }"),
    ]


def test_external_import_after_a_conditional_local_import_warns_that_the_order_changes(tmp_path: Path):
    files = {"css/a.css": '@import "print.css" print;\n@import url(https://fonts.example/f.css);\n.a { x: y; }\n',
             "css/print.css": ".p { color: black; }\n"}
    result = build(service(tmp_path, "svc", files, {"css": {"main": ["css/a.css"]}}), CONCAT)
    assert result.all_warnings == (
        "css/main: css/a.css:2: @import 'https://fonts.example/f.css' goes to the top of the bundle, above the "
        "rules of css/print.css that came before it, so those rules now win where they conflict (import it from "
        "the page, before the bundle, to keep the order)",)
    assert output(result, "svc/7/css/main.css").decode().startswith(
        "@import url(https://fonts.example/f.css);\n@media print{.p { color: black; }}\n")


def test_unresolvable_import_is_an_error_naming_both_files(tmp_path: Path):
    repo = service(tmp_path, "svc", {"css/a.css": '@import "missing.css";\n.a { x: y; }\n'},
                   {"css": {"main": ["css/a.css"]}})
    result = build(repo, CONCAT)
    assert result.all_errors == (
        "css/main: css/a.css:1: @import 'missing.css' -> css/missing.css: does not exist",)
