"""Syntax checks and verified minification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from trustkit import PUBLISH, build, output, service, write_outputs

from bosco import verify
from bosco.assets import collect
from bosco.cli import cli
from bosco.pipeline import BuildOptions, build_asset_set
from bosco.sourcemap import decode_mappings
from bosco.syntax import css_facts, js_facts
from bosco.verify import align, check_output, minify_verified
from bosco.workspace import load_service

NESTED = "var b = 'x';\nvar s = `${b ? `, ${b}` : ''}!`;\nconsole.log(JSON.stringify(s));\n"


def test_js_syntax_error_names_line_column_and_line():
    problem = js_facts("var a = 1;\nvar b = (2 + ;\n").problem
    assert problem is not None
    assert problem.describe("js/a.js") == "js/a.js:2:7: syntax error at `= (2 +`\n    var b = (2 + ;"


def test_css_syntax_errors():
    assert css_facts('.a { content: "x; }\n').problem.describe("c.css") == (
        'c.css:1:15: unterminated string\n    .a { content: "x; }')
    assert css_facts(".a { color: red;\n.b { x: y }\n").problem.describe("c.css") == (
        "c.css:1:4: `{` is never closed\n    .a { color: red;")
    assert css_facts(".a { x: y } }\n").problem.describe("c.css") == "c.css:1:13: unexpected `}`\n    .a { x: y } }"
    assert css_facts("/* open\n.a{}").problem.describe("c.css") == "c.css:1:1: unterminated comment\n    /* open"
    valid = "@container card (min-width: 4px) { .a { b: c } }\n@keyframes k { 16.67% { x: 0\\0 } }\n"
    assert css_facts(valid).problem is None
    # brackets pair up by kind, first problem first; brackets in escapes, strings and comments do not count
    assert css_facts(".a\\{ { content: \"}\" } /* ( */ .b { c: '[' }\n").problem is None
    for text, problem in [(".a { b: f(x] }", "1:12: unexpected `]`"), (".a { ( } )", "1:8: unexpected `}`"),
                          (".a { x: \"y }\n ] }", "1:9: unterminated string"),
                          ("] .a { x: \"y }", "1:1: unexpected `]`"), (".a { [ \"x", "1:8: unterminated string"),
                          (".a { b { c: d }", "1:4: `{` is never closed"),
                          ("@media (a { }", "1:8: `(` is never closed"), (".a { b: [c ( }", "1:14: unexpected `}`")]:
        assert css_facts(text).problem.describe("c.css").split("\n")[0] == f"c.css:{problem}", text


def test_syntax_error_fails_build_with_service_path_line_col(tmp_path: Path):
    repo = service(tmp_path, "svc", {"js/ok.js": "var ok = 1;\n", "js/bad.js": "f();\nvar x = (1 +;\n"},
                   {"js": {"top": ["js/ok.js", "js/bad.js"]}})
    result = build(repo)
    assert result.all_errors == ("js/top: js/bad.js:2:7: syntax error at `= (1 +`\n    var x = (1 +;",)
    # the file is still served, unminified, so the browser shows its own error too
    assert output(result, "svc/default/js/top.js") == (
        b"var ok=1;\nf();\nvar x = (1 +;\n//# sourceMappingURL=top.js.map\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["build", "-W", str(tmp_path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "error: svc: js/top: js/bad.js:2:7: syntax error at `= (1 +`" in res.output
    assert not (tmp_path / "out").exists()


def test_cdn_shows_syntax_error_of_single_files(tmp_path: Path):
    repo = service(tmp_path, "svc", {"css/a.css": ".a { color: red;\n"}, {"css": {"main": ["css/a.css"]}})
    result = build(repo, BuildOptions())
    assert result.all_errors == ("css/main: css/a.css:1:4: `{` is never closed\n    .a { color: red;",)
    assert output(result, "svc/local/css/a.css") == b".a { color: red;\n"
    index = build_asset_set([load_service(repo)], BuildOptions()).get("index.html").data.decode()
    assert '<div class="error">css/a.css:1:4: `{` is never closed\n    .a { color: red;</div>' in index


def test_quick_first_pass_skips_the_syntax_check_of_single_files_and_is_incomplete(tmp_path: Path):
    repo = service(tmp_path, "svc", {"css/a.css": ".a { color: red;\n", "js/ok.js": "var ok = 1;\n"},
                   {"css": {"main": ["css/a.css"]}, "js": {"top": ["js/ok.js"]}})
    quick = build(repo, BuildOptions(quick=True))
    assert quick.all_errors == () and not quick.complete
    complete = build(repo, BuildOptions())
    assert complete.complete
    # the same bytes; the concatenation is mapped line by line until the complete pass maps every token
    served, final = ({o.key: o.data for o in b.outputs} for b in (quick, complete))
    assert served.keys() == final.keys() and all(served[k] == final[k] for k in final if not k.endswith(".map"))
    maps = [json.loads(b["svc/local/js/top.js.map"])["mappings"] for b in (served, final)]
    assert maps == ["AAAA", "AAAA,IAAI,GAAG,EAAE,CAAC"]
    assert complete.all_errors == ("css/main: css/a.css:1:4: `{` is never closed\n    .a { color: red;",)


def test_cdn_serves_then_shows_syntax_errors_after_its_second_pass(tmp_path: Path):
    import sys

    import httpx
    from live import until

    from conftest import running_cdn

    service(tmp_path, "svc", {"js/bad.js": "var a = (1 +;\n"}, {"js": {"top": ["js/bad.js"]}})
    with running_cdn([sys.executable, "-m", "bosco", "-W", str(tmp_path), "cdn"], tmp_path, dict(os.environ),
                     tmp_path / "cdn.log") as (base, _):
        assert httpx.get(base + "/svc/local/js/bad.js").content == b"var a = (1 +;\n"
        until(lambda: "js/bad.js:1:" in httpx.get(base + "/").text, 60, "the syntax error on the index page")


def test_nested_template_literal_is_repaired(tmp_path: Path, node):
    result = minify_verified("js", NESTED)
    assert result.code == "var b='x';var s=`${b ? `, ${b}` : ''}!`;console.log(JSON.stringify(s));"
    assert (result.fault, result.repaired) == (
        None, "the minifier changed whitespace inside a string or template at line 2:18")
    source, minified = tmp_path / "src.js", tmp_path / "min.js"
    source.write_text(NESTED)
    minified.write_text(result.code)
    assert node.run_file(minified) == node.run_file(source) == '", x!"\n'


def test_repaired_file_is_a_detail_not_a_warning_and_same_output_in_node(tmp_path: Path, node):
    repo = service(tmp_path, "svc", {"js/a.js": NESTED}, {"js": {"top": ["js/a.js"]}})
    result = build(repo)
    assert result.all_errors == ()
    assert result.all_warnings == ()  # information that needs no action: shown with -v
    assert result.all_details == ("js/top: js/a.js: the minifier changed whitespace inside a string or template "
                                  "at line 2:18; repaired from the source",)
    write_outputs(result, tmp_path / "out")
    assert node.run_file(tmp_path / "out/svc/default/js/top.js") == node.run_file(repo / "js/a.js")


def test_rejected_css_output_is_shipped_unminified_with_one_warning(tmp_path: Path):
    css = '.a { background: url( "a b.png" ) }\n'
    repo = service(tmp_path, "svc", {"css/a.css": css, "css/a b.png": b"png"}, {"css": {"main": ["css/a.css"]},
                                                                               "img": {"main": ["css/*.png"]}})
    result = build(repo)
    assert result.all_warnings == ("css/main: css/a.css: the minifier changed whitespace inside a string or "
                                   "template at line 1:25; shipped unminified",)
    assert output(result, "svc/default/css/main.css") == (
        b'.a { background: url( "a b.png" ) }\n/*# sourceMappingURL=main.css.map */\n')


def test_verification_rejects_glued_tokens_and_changed_parse():
    def reason(type_, text, output):
        info = js_facts(text) if type_ == "js" else css_facts(text)
        result = check_output(type_, text, output, info)
        return result if isinstance(result, str) else None

    assert reason("js", "a = b + +c;", "a=b++c;") == "the minifier joined two tokens at line 1:7"
    assert reason("js", "x = typeof y;", "x=typeofy;") == "the minifier joined two tokens at line 1:10"
    assert reason("js", "function f(){return\nx}", "function f(){return x}") == (
        "the minifier removed the line break that ends a statement at line 1:19")
    repaired = check_output("js", "a = 'p q';", "a='pq';", js_facts("a = 'p q';"))
    assert (repaired.repaired, repaired.fault) == (
        "a='p q';", "the minifier changed whitespace inside a string or template at line 1:7")
    assert reason("js", "a = 1; // c\nb = 2;", "a=1;b=3;") == "the minifier changed the code at line 2:5"
    assert reason("js", "a = 1; // c\nb = 2;", "a=1;b=2;") is None
    assert reason("css", ".a :first-child { x: y }", ".a:first-child{x:y}") == (
        "the minifier joined two tokens at line 1:2")
    assert reason("css", "@supports not (display: grid) {}", "@supports not(display:grid){}") == (
        "the minifier joined two tokens at line 1:13")
    assert reason("css", ".a { width: calc(1px + 2px); }", ".a{width:calc(1px+2px)}") == (
        "the minifier joined two tokens at line 1:20")
    assert reason("css", ".a { --x: 0px; }", ".a{--x:0}") == "the minifier changed the code at line 1:12"
    assert reason("css", ".a { width: calc(1px + 2px); }", ".a{width:calc(1px + 2px)}") is None


CSS_HAZARDS = {
    ".a { width: clamp(1rem, 2vw + 1rem, 3rem); height: min(10px + 2px, 5vh); margin: max(1px - 2px, 0px); }":
        ".a{width:clamp(1rem,2vw + 1rem,3rem);height:min(10px + 2px,5vh);margin:max(1px - 2px,0px)}",
    "@supports not (display: grid) { .a { float: left; } }": "@supports not (display:grid){.a{float:left}}",
    "@container card (min-width: 400px) { .a { color: red; } }": "@container card (min-width:400px){.a{color:red}}",
    ".a { background: url(\"data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'><rect width='1'/>"
    "</svg>\"); }":
        ".a{background:url(\"data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'><rect width='1'/>"
        "</svg>\")}",
    "@media screen { .a :first-child { color: red; } }": "@media screen{.a :first-child{color:red}}",
    ".a { --x: 0px; width: calc(10px + var(--x)); }": ".a{--x:0px;width:calc(10px + var(--x))}",
}


def test_rcssmin_keeps_meaning_of_csscompressor_hazards():
    for source, expected in CSS_HAZARDS.items():
        result = minify_verified("css", source)
        assert (result.code, result.fault) == (expected, None)


def test_a_comment_before_a_colon_in_an_at_rule_is_minified_and_mapped(tmp_path: Path):
    # rcssmin keeps ``a :hover`` apart inside an @media block and its ``;`` before ``}``; the space
    # where the input had only a comment goes (``a/**/:hover`` is ``a:hover``). The alignment of that
    # repaired output raised ValueError (a traceback from the build).
    css = "@media print{a/**/:hover;}\n"
    result = minify_verified("css", css)
    assert (result.code, result.fault) == ("@media print{a:hover;}", None)
    repo = service(tmp_path, "svc", {"css/a.css": css}, {"css": {"main": ["css/a.css"]}})
    built = build(repo)
    assert built.all_warnings == ()
    assert output(built, "svc/default/css/main.css") == (
        b"@media print{a:hover;}\n/*# sourceMappingURL=main.css.map */\n")
    mappings = json.loads(output(built, "svc/default/css/main.css.map"))["mappings"]
    assert [s[:4] for s in decode_mappings(mappings)[0]] == [
        (0, 0, 0, 0), (1, 0, 0, 1), (7, 0, 0, 7), (12, 0, 0, 12), (13, 0, 0, 13), (14, 0, 0, 18),
        (15, 0, 0, 19), (21, 0, 0, 25)]


def test_selecting_csscompressor_warns(tmp_path: Path):
    service(tmp_path, "svc", {"css/a.css": ".a { color: red; }\n"}, {"css": {"main": ["css/a.css"]}})
    (tmp_path / ".bosco").mkdir()
    (tmp_path / ".bosco/bosco.json").write_text(json.dumps({"css": {"minifier": "csscompressor"}}))
    res = CliRunner().invoke(cli, ["build", "-W", str(tmp_path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert ("warning: css.minifier csscompressor 0.9.5 is known to corrupt modern CSS (clamp()/min()/max() "
            "arithmetic, @supports not (, @container name (, whitespace in quoted data-URI SVGs, .a :first-child "
            "inside @media, --x: 0px used in calc()); its output is not verified; rcssmin is the default"
            ) in " ".join(res.output.split())
    assert (tmp_path / "out/svc/default/css/main.css").read_text() == (
        ".a{color:red}\n/*# sourceMappingURL=main.css.map */\n")


def test_results_are_cached_on_disk_by_content(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "var cachedOnDisk = 1 + 2;\n"
    first = minify_verified("js", text)
    files = list((tmp_path / "bosco").rglob("*"))
    assert [p for p in files if p.is_file()]
    from bosco import cache

    cache._memory.clear()
    assert minify_verified("js", text) == first


def test_publish_options_verify(tmp_path: Path):
    assert PUBLISH.minify and PUBLISH.sri


def prewarm(type_, items, workers):
    """Compute every distinct missing item ahead in worker processes, as a build does; how many were computed."""
    with verify.Prewarm(workers) as ahead:
        ahead.add(type_, items)
    return ahead.computed


def test_prewarm_computes_each_distinct_missing_text_once_in_worker_processes(tmp_path: Path, monkeypatch):
    from bosco import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache._memory.clear()
    texts = [f"var prewarmed{i} = `${{a ? `, ${{b}}` : ''}}` + {i};\n" for i in range(3)]
    assert prewarm("js", texts + texts, workers=2) == 3
    assert prewarm("js", texts, workers=2) == 0  # all cached now
    for text in texts:
        cached = minify_verified("js", text)
        cache._memory.clear()
        monkeypatch.setenv("BOSCO_CACHE", "0")
        assert minify_verified("js", text) == cached  # a fresh computation gives the same result
        monkeypatch.delenv("BOSCO_CACHE")
    assert prewarm("js", ["var single = 1;\n"], workers=2) == 0  # one missing text is not worth a pool


def test_prewarm_covers_css_with_rebased_urls_so_the_build_computes_nothing(tmp_path: Path, monkeypatch):
    from bosco import cache
    from bosco.bundle import minify_inputs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache._memory.clear()
    repo = service(tmp_path, "svc", {"css/sub/a.css": ".a { background: url(../img/x.png) }\n",
                                     "css/b.css": ".b {\n  color: red;\n}\n", "css/img/x.png": b"png"},
                   {"css": {"main": ["css/sub/a.css", "css/b.css"]}, "img": {"main": ["css/img/*.png"]}})
    svc = load_service(repo)
    assets = next(b for b in collect(repo, svc.manifest).bundles if b.type == "css").assets
    items = minify_inputs("svc", repo, "css", "main", assets, "default")
    assert items == [(".a { background: url(img/x.png) }\n", ".a { background: url(../img/x.png) }\n",
                      ((21, 33, 9),)), (".b {\n  color: red;\n}\n", None, ())]  # url rebased to the bundle
    assert prewarm("css", items, workers=2) == 2
    monkeypatch.setattr(verify, "_compute", lambda *a, **k: pytest.fail("computed after prewarm"))
    result = build(repo)
    assert output(result, "svc/default/css/main.css").startswith(b".a{background:url(img/x.png)}\n.b{color:red}")


def test_only_joins_the_alignment_cannot_prove_are_reparsed():
    def unproven(text, output):
        aligned = align("js", text, output, js_facts(text))
        assert not isinstance(aligned, str), aligned
        return None if aligned.unproven is None else text[aligned.unproven:]

    # line breaks rjsmin removes where no semicolon can be inserted: proven by the alignment alone
    assert unproven("a = {\n  b: 1,\n  c: [1,\n 2]\n};\nf(a)\n  .then(g);\n", "a={b:1,c:[1,2]};f(a).then(g);") is None
    assert unproven("x = (a\n  / b);\nreturn_ = c;\nd = e\n", "x=(a/b);return_=c;d=e") is None
    assert unproven("documentElement$1\n  .appendChild(t);", "documentElement$1.appendChild(t);") is None
    assert unproven("x = a.return\n  + 1;", "x=a.return+1;") is None
    # joins where automatic semicolon insertion or tokenizing may differ: the output is re-parsed
    assert unproven("function f(){async\nx}", "function f(){async x}") == "c\nx}"
    assert unproven("a\n++b", "a++b") == "a\n++b"
    assert unproven("x = 1.\ny = 2", "x=1.y=2") == ".\ny = 2"
    assert unproven("x = 1 .toString()", "x=1.toString()") == "1 .toString()"
    assert unproven("function f(){return a}", "function f(){return\na}") == "n a}"
    assert check_output("js", "function f(){return\n+x}", "function f(){return+x}", js_facts(
        "function f(){return\n+x}")) == "the minifier removed the line break that ends a statement at line 1:19"
    for text, minified in [("a\n++b", "a++b"),
                           ("x = 1.\ny = 2", "x=1.y=2"), ("x = 1 .toString()", "x=1.toString()"),
                           ("function f(){return a}", "function f(){return\na}")]:
        assert check_output("js", text, minified, js_facts(text)) == (
            "the minified code parses differently from the input")


def test_a_join_that_makes_an_html_like_comment_is_rejected(node):
    # ``a < !--b`` compares; in ``a<!--b`` an HTML-like comment (ECMA-262 B.1.1) hides the rest of
    # the line of a classic script. tree-sitter reads both as the same tokens: a re-parse cannot tell.
    text = "var a = 1, b = 2, x = a < !--b;\nconsole.log(x, b);\n"
    glued = "var a=1,b=2,x=a<!--b;\nconsole.log(x,b);"
    assert (node.run(text), node.run(glued)) == ("false 1\n", "1 2\n")
    reason = "the minifier made an HTML-like comment (`<!--`) at line 1:25"
    assert check_output("js", text, glued, js_facts(text)) == reason
    result = minify_verified("js", text)
    assert (result.code, result.file_map, result.fault) == (text, None, reason + "; shipped unminified")
    # in a string, regex or template it is text: minified as usual
    for text, minified in [("s = '<!--' + a < !b;", "s='<!--'+a<!b;"),
                           ("r = /<!--/.test(s) < !b;", "r=/<!--/.test(s)<!b;"),
                           ("r = /<!--/.test(s) < !b;", "r=/<!--/.test(s)<!b;"),
                           ("t = `<!--${a}` < !b;", "t=`<!--${a}`<!b;")]:
        result = minify_verified("js", text)
        assert (result.code, result.fault) == (minified, None)


LEGAL_JOINS = """var out = [];
out.push(4 / /*! d */ 2);
(function () { var y = function (v) { return v * 2 }, z = 3, x; x = y //! call
(z); out.push(x) })();
(function () { let a = 1 /*! c */ ; out.push(a) })();
out.push(/re/ /*! c */.test('are'));
(function () { var a = true; function b() { out.push('b') } if (a) /*! c */ b() })();
(function () { var a = 1
/*! c */
;[1, 2].forEach(function (v) { out.push(v) }) })();
(function () { var a = 5, g = 1; out.push(a /*! c */ / 2 / g) })();
(function () { var a = 5; out.push(a /*! c */-/*! d */-a, a /*! c */+ /*! d */+a) })();
(function () { function t() { throw /*! c */ 1 } try { t() } catch (e) { out.push(e) } })();
(function () { var a = 1; a
/*! c */++
a; out.push(a) })();
out.push(typeof /*! c */ 1, { get /*! c */ x() { return 7 } }.x);
(function () { var async = 1; out.push(async /*!
*/ + 1) })();
label: /*! c */ for (;;) { break /*! d */ label }
console.log(JSON.stringify(out)) //! end"""


def test_legal_comments_go_back_into_their_gaps_without_a_new_parse(monkeypatch, node):
    # each comment returns between the two tokens it was between, with the line break it brings
    # (a ``//!`` comment's own, one inside ``/*! */``) that the input had there too: nothing to re-parse
    # (the output without them still is where the alignment cannot prove a join: ``a\n++b``)
    parse = verify.js_tree_size
    monkeypatch.setattr(verify, "js_tree_size", lambda text: pytest.fail("parsed again") if "/*!" in text
                        else parse(text))
    result = minify_verified("js", LEGAL_JOINS)
    assert (result.fault, result.legal) == (None, ())
    assert result.code == (
        "var out=[];out.push(4/ /*! d */2);(function(){var y=function(v){return v*2},z=3,x;x=y\n//! call\n(z);"
        "out.push(x)})();(function(){let a=1/*! c */;out.push(a)})();out.push(/re/ /*! c */.test('are'));"
        "(function(){var a=true;function b(){out.push('b')}if(a)/*! c */b()})();(function(){var a=1/*! c */;"
        "[1,2].forEach(function(v){out.push(v)})})();(function(){var a=5,g=1;out.push(a/*! c *//2/g)})();"
        "(function(){var a=5;out.push(a/*! c */- /*! d */-a,a/*! c */+ /*! d */+a)})();(function(){function t(){"
        "throw /*! c */1}try{t()}catch(e){out.push(e)}})();(function(){var a=1;a\n/*! c */++\na;out.push(a)})();"
        "out.push(typeof /*! c */1,{get /*! c */x(){return 7}}.x);(function(){var async=1;out.push(async/*!\n*/+1)"
        "})();label:/*! c */for(;;){break /*! d */label}\nconsole.log(JSON.stringify(out))//! end\n")
    assert node.run(result.code) == node.run(LEGAL_JOINS) == '[2,6,1,true,"b",1,2,2.5,10,10,1,2,"number",7,2]\n'


def test_a_classic_script_is_parsed_once_for_its_facts(monkeypatch):
    from bosco import syntax

    parser, parsed = syntax._js_parser(), []

    class Counting:
        def parse(self, *args, **kwargs):
            parsed.append(1)
            return parser.parse(*args, **kwargs)

    monkeypatch.setattr(syntax, "_js_parser", Counting)
    # ``<!--`` or ``-->`` in the text: ``classic`` parses it to find them, ``js_facts`` takes that parse
    for text, parses in [("var s = '<!-- x -->'; /* c */ await(1);\n", 1), ("x = 1; <!-- note\ny = `${2}`;\n", 2),
                         ("import x from 'y';\ns = '-->';\n", 1)]:
        parsed.clear()
        read = syntax.classic(text)
        found = syntax.js_facts(read)
        assert len(parsed) == parses
        assert found == syntax.js_facts("".join(list(read)))  # the same text, another object: parsed anew
        assert len(parsed) == parses + 1
        parsed.clear()
        assert syntax.problem("js", syntax.classic(text)) == found.problem and len(parsed) == parses
    assert syntax.js_facts("x = 1; //-- note\ny = `${2}`;\n").holes == ((22, 26),)
