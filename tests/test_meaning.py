"""Bundles that never change meaning: CSS comments, empty custom properties, @import conditions,
legal comments, classic-script checks, map association and asset order."""

from __future__ import annotations

from pathlib import Path

from trustkit import PUBLISH, build, output, service, write_outputs

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
