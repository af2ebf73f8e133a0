"""Asset keys (docs/layout.md) for every manifest shape and mode, on tests/fixtures/keys."""

from __future__ import annotations

import json

from conftest import FIXTURES, build

KEYS = FIXTURES / "keys"


def test_unminified_cdn_keys_are_source_files_fragments_and_concatenations():
    asset_set = build(KEYS)
    assert sorted(asset_set.outputs) == [
        "asset/robots.txt",
        "custom-name/local/c.js",
        "custom-name/local/html/top.js.html",
        "custom-name/local/js/top.js",
        "custom-name/local/js/top.js.map",
        "index.html",
        "svc-a/local/css/a.css",
        "svc-a/local/css/b.css",
        "svc-a/local/css/main.css",
        "svc-a/local/css/main.css.map",
        "svc-a/local/html/bottom.js.html",
        "svc-a/local/html/main.css.html",
        "svc-a/local/html/top.js.html",
        "svc-a/local/img/logo.png",
        "svc-a/local/js/bottom.js",
        "svc-a/local/js/bottom.js.map",
        "svc-a/local/js/lib/m.js",
        "svc-a/local/js/top.js",
        "svc-a/local/js/z.js",
        "svc-b/local/css/upload.css",
        "svc-b/local/css/upload.css.map",
        "svc-b/local/html/upload.css.html",
        "svc-b/local/html/upload.js.html",
        "svc-b/local/html/vendor.js.html",
        "svc-b/local/js/upload.js",
        "svc-b/local/js/upload.js.map",
        "svc-b/local/js/vendor.js",
        "svc-b/local/js/vendor.js.map",
        "svc-b/local/upload/one.js",
        "svc-b/local/upload/up.css",
        "svc-b/local/v.min.js",
        "svc-b/local/v.min.js.map",
        "vendor/library/shim/s.js",
    ]
    assert asset_set.errors == []
    # svc-a's js/top.js is a file of its own: it keeps its key, the top bundle's concatenation is not served
    svc_a = next(s for s in asset_set.services if s.name == "svc-a")
    assert svc_a.all_details == ("js/top: the concatenation is not served: svc-a/local/js/top.js is the key of a file",)
    assert asset_set.get("svc-a/local/js/top.js").kind == "file"
    assert asset_set.get("svc-a/local/js/top.js.map") is None


def test_minified_keys_are_bundles_maps_and_fragments():
    asset_set = build(KEYS, minify=True, bundle=True, build="55")
    assert sorted(asset_set.outputs) == [
        "asset/robots.txt",
        "custom-name/55/html/top.js.html",
        "custom-name/55/js/top.js",
        "custom-name/55/js/top.js.map",
        "index.html",
        "svc-a/55/css/main.css",
        "svc-a/55/css/main.css.map",
        "svc-a/55/html/bottom.js.html",
        "svc-a/55/html/main.css.html",
        "svc-a/55/html/top.js.html",
        "svc-a/55/img/logo.png",
        "svc-a/55/js/bottom.js",
        "svc-a/55/js/bottom.js.map",
        "svc-a/55/js/top.js",
        "svc-a/55/js/top.js.map",
        "svc-b/55/css/upload.css",
        "svc-b/55/css/upload.css.map",
        "svc-b/55/html/upload.css.html",
        "svc-b/55/html/upload.js.html",
        "svc-b/55/html/vendor.js.html",
        "svc-b/55/js/upload.js",
        "svc-b/55/js/upload.js.map",
        "svc-b/55/js/vendor.js",
        "svc-b/55/js/vendor.js.map",
        "vendor/library/shim/s.js",
    ]


def test_recursive_glob_order_is_sorted_dotfiles_excluded_and_duplicates_kept_first():
    asset_set = build(KEYS)
    fragment = asset_set.get("svc-a/local/html/bottom.js.html").data.decode()
    # js/**/*.js: lib/m.js, top.js, z.js (node-glob 7 order, .hidden.js excluded); the explicit js/top.js
    # matched again keeps its first position.
    assert fragment == (
        '<script src="/svc-a/local/js/lib/m.js"></script>\n'
        '<script src="/svc-a/local/js/top.js"></script>\n'
        '<script src="/svc-a/local/js/z.js"></script>\n'
    )


def test_css_fragment_lists_files_in_declaration_order():
    fragment = build(KEYS).get("svc-a/local/html/main.css.html").data.decode()
    assert fragment == (
        '<link rel="stylesheet" href="/svc-a/local/css/b.css" type="text/css" media="all" />\n'
        '<link rel="stylesheet" href="/svc-a/local/css/a.css" type="text/css" media="all" />\n'
    )


def test_minified_fragment_has_one_tag_for_the_bundle_with_base_url():
    asset_set = build(KEYS, minify=True, bundle=True, build="55", base_url="https://cdn.example.com/tes")
    assert asset_set.get("svc-a/55/html/bottom.js.html").data.decode() == (
        '<script src="https://cdn.example.com/tes/svc-a/55/js/bottom.js"></script>\n'
    )


def test_bundle_content_follows_glob_order():
    code = build(KEYS, minify=True, bundle=True).get("svc-a/local/js/bottom.js").data.decode()
    assert code.index("svc-a lib/m") < code.index("svc-a top") < code.index("svc-a z")
    assert code.endswith("//# sourceMappingURL=bottom.js.map\n")


def test_files_sections_use_their_own_base_path():
    asset_set = build(KEYS)
    assert asset_set.get("svc-b/local/upload/one.js").data == (KEYS / "svc-b/src/upload/one.js").read_bytes()
    assert asset_set.get("svc-b/local/v.min.js").data == (KEYS / "svc-b/vendor/v.min.js").read_bytes()


def test_already_minified_is_not_minified_and_its_map_becomes_the_bundle_map():
    asset_set = build(KEYS, minify=True, bundle=True)
    code = asset_set.get("svc-b/local/js/vendor.js").data.decode()
    assert code == 'console.log("svc-b vendor");\n//# sourceMappingURL=vendor.js.map\n'
    source_map = json.loads(asset_set.get("svc-b/local/js/vendor.js.map").data)
    assert source_map["sources"] == ["svc-b/vendor/v.js"]
    assert source_map["sourcesContent"] == ["// vendor\nconsole.log( \"svc-b vendor\" );\n"]
    assert source_map["mappings"] == "AACA"
    # the map file listed in the section is a map, not code: it is not in the fragment
    assert asset_set.get("svc-b/local/html/vendor.js.html").data.decode() == (
        '<script src="/svc-b/local/js/vendor.js"></script>\n'
    )


def test_minified_bundle_map_names_repo_relative_sources_with_content():
    source_map = json.loads(build(KEYS, minify=True, bundle=True).get("svc-a/local/js/bottom.js.map").data)
    assert source_map["version"] == 3
    assert source_map["file"] == "bottom.js"
    assert source_map["sources"] == ["svc-a/public/js/lib/m.js", "svc-a/public/js/top.js", "svc-a/public/js/z.js"]
    assert source_map["sourcesContent"][1] == "console.log('svc-a top');\n"


def test_unknown_types_are_ignored_with_a_warning():
    asset_set = build(KEYS)
    [svc_a] = [s for s in asset_set.services if s.name == "svc-a"]
    assert svc_a.warnings == (
        f"{KEYS / 'svc-a/bosco-service.json'}: unknown asset type assets.images ignored "
        "(known: js, css, img, html, swf, fonts, pdf, json)",
    )
    assert not any("/old" in key for key in asset_set.outputs)


def test_tag_filter_keeps_only_that_bundle_plus_shared_files():
    asset_set = build(KEYS, minify=True, bundle=True, bundle_tag="top")
    assert sorted(asset_set.outputs) == [
        "asset/robots.txt",
        "custom-name/local/html/top.js.html",
        "custom-name/local/js/top.js",
        "custom-name/local/js/top.js.map",
        "index.html",
        "svc-a/local/html/top.js.html",
        "svc-a/local/js/top.js",
        "svc-a/local/js/top.js.map",
        "vendor/library/shim/s.js",
    ]


def test_service_with_only_a_service_section_contributes_nothing():
    asset_set = build(KEYS)
    [svc_d] = [s for s in asset_set.services if s.name == "svc-d"]
    assert svc_d.outputs == () and svc_d.errors == ()
